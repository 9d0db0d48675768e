"""Every JSON template of the corpus through ``amibake validate``, against Packer's verdict."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from amibake.cli.main import cli
from tests.corpus.corpus import Entry, entries

JSON_ENTRIES = [e for e in entries() if e.is_json]


def disagreements() -> dict[str, tuple[str, str]]:
    path = Path(__file__).with_name("json_disagreements.tsv")
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return {r["dir"]: (r["amibake"], r["reason"]) for r in csv.DictReader(lines, delimiter="\t")}


def run_validate(entry: Entry, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    import amibake.cli.commands  # noqa: F401

    monkeypatch.chdir(entry.path)
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    result = CliRunner().invoke(cli, ["validate", *entry.args(), entry.file])
    return result.exit_code, result.output


def test_corpus_has_34_json_templates() -> None:
    assert len(JSON_ENTRIES) == 34


@pytest.mark.parametrize("entry", JSON_ENTRIES, ids=lambda e: e.dir[:3])
def test_validate_matches_packer(entry: Entry, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = run_validate(entry, monkeypatch)
    assert code in (0, 1), f"unexpected exit {code}: {output}"
    assert "Traceback" not in output
    verdict = "accept" if code == 0 else "reject"
    expected = "accept" if entry.packer_accepts_today else "reject"
    known = disagreements().get(entry.dir)
    if known is not None:
        assert verdict == known[0], f"listed disagreement no longer holds ({known[1]}); output:\n{output}"
        return
    assert verdict == expected, (
        f"Packer would {expected}; amibake said:\n{output}\nPacker 1.6.6: {entry.first_error}"
    )
    if code == 1:
        assert output.count("\n") >= 1


def test_disagreements_are_few_and_explained() -> None:
    d = disagreements()
    assert len(d) <= 6
    for dir_, (verdict, reason) in d.items():
        assert verdict in ("accept", "reject"), dir_
        assert len(reason) > 20, dir_
