"""amibake's HCL2 parser against python-hcl2 on every corpus file: the same blocks, labels and keys.

amibake parses HCL2 itself to keep source positions (see ``template/hcl/parser.py``); python-hcl2,
the maintained Python HCL2 library, serves here as an independent oracle of the structure.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from amibake.template.hcl import ast as A
from amibake.template.hcl.parser import parse
from tests.corpus.corpus import CORPUS

try:
    import hcl2
except ImportError:  # the test extra; in CI its absence fails the run, never skips it
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise
    hcl2 = pytest.importorskip("hcl2")

FILES = sorted(CORPUS.glob("templates/*/**/*.pkr.hcl"))


def ours(body: A.Body) -> Counter[tuple[str, ...]]:
    """(block type, labels..., sorted keys) for each top-level block."""
    out: Counter[tuple[str, ...]] = Counter()
    for block in body.blocks:
        keys = set(block.body.attributes) | {b.type for b in block.body.blocks}
        out[(block.type, *block.labels, "|", *sorted(keys))] += 1
    return out


def theirs(doc: dict[str, Any]) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()

    def walk(block_type: str, labels: tuple[str, ...], value: Any, depth: int) -> None:
        # python-hcl2 nests labelled blocks as {label: {label2: {...}}}; LABELS gives how deep
        if depth < LABELS.get(block_type, 0) and isinstance(value, dict) and len(value) == 1:
            ((label, inner),) = value.items()
            walk(block_type, (*labels, label.strip('"')), inner, depth + 1)
            return
        keys = {k for k in value if not k.startswith("__")}
        out[(block_type, *labels, "|", *sorted(keys))] += 1

    for block_type, items in doc.items():
        if not isinstance(items, list) or block_type.startswith("__"):
            continue  # a top-level attribute, or python-hcl2's comment bookkeeping
        for item in items:
            walk(block_type, (), item, 0)
    return out


LABELS = {
    "source": 2,
    "data": 2,
    "variable": 1,
    "local": 1,
    "build": 0,
    "locals": 0,
    "packer": 0,
    "variables": 0,
    "hcp_packer_registry": 0,
}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name[:3]}/{p.name}")
def test_same_structure_as_python_hcl2(path: Path) -> None:
    text = path.read_text()
    try:
        reference = hcl2.loads(text)
    except Exception:
        pytest.skip("python-hcl2 cannot parse this file")
    assert ours(parse(text, str(path))) == theirs(reference)


def test_corpus_has_hcl_files() -> None:
    assert len(FILES) >= 30
