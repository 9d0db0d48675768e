"""Mutated templates through the whole validate path: a report of problems, never a traceback."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amibake.core import load_template, prepare_builds
from amibake.errors import AmibakeError, TemplateError

BASE: dict[str, Any] = {
    "variables": {"region": "us-east-1", "name": "img", "secret": "x"},
    "sensitive-variables": ["secret"],
    "builders": [
        {
            "type": "amazon-ebs",
            "name": "b1",
            "region": "{{user `region`}}",
            "source_ami": "ami-12345678",
            "instance_type": "t2.micro",
            "ssh_username": "ubuntu",
            "ami_name": "{{user `name`}}-{{timestamp}}",
            "tags": {"Name": "{{ .SourceAMIName }}"},
            "launch_block_device_mappings": [{"device_name": "/dev/sda1", "volume_size": 8}],
        }
    ],
    "provisioners": [
        {"type": "shell", "inline": ["echo hi"], "only": ["b1"]},
        {"type": "file", "content": "x", "destination": "/tmp/x"},
    ],
    "post-processors": [["manifest", {"type": "checksum", "checksum_types": ["sha256"]}]],
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.text(max_size=12),
    st.sampled_from(["{{", "}}", "{{user `nope`}}", "{{ .Foo }}", "{{timestamp | x}}", "5m", "-1", "true"]),
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = paths(BASE)[1:]
KEYS = st.sampled_from(
    ["ami_name", "ssh_port", "type", "only", "override", "pause_before", "max_retries", "inline", "x", "_c"]
)


@st.composite
def mutated(draw: Any) -> Any:
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = doc
        try:
            for p in path[:-1]:
                parent = parent[p]
            last = path[-1]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[last] = draw(values)
            elif action == "delete":
                del parent[last]
            elif isinstance(parent[last], dict):
                parent[last][draw(KEYS)] = draw(values)
        except (KeyError, IndexError, TypeError):
            continue
    return doc


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_templates_never_raise_anything_else(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.json"
        path.write_text(json.dumps(doc))
        cwd = os.getcwd()
        os.chdir(d)
        try:
            run = load_template(path)
            prepare_builds(run)
        except TemplateError as e:
            assert e.problems
            assert all(str(p) for p in e.problems)
            # a problem names where it is
            assert all(p.key or p.pos for p in e.problems), e.problems
        except AmibakeError:
            pass
        finally:
            os.chdir(cwd)


def test_base_template_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(BASE))
    builds, _ = prepare_builds(load_template(path))
    assert [b.name for b in builds] == ["b1"]
