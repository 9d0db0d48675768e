"""``amibake inspect`` against ``packer inspect`` (1.6.6) on every corpus template Packer could inspect.

Packer prints a JSON template's required variables in Go's random map order: they are compared as a
set. amibake also lists post-processors for JSON templates (current Packer does), which 1.6.6 did
not: that section is left out of the comparison. Timestamps in locals are masked.
"""

from __future__ import annotations

import csv
import re

import pytest
from click.testing import CliRunner

from amibake.cli.main import cli
from tests.corpus.corpus import PACKER_166, Entry, entries


def packer_inspect(entry: Entry) -> tuple[str, str, int]:
    text = (PACKER_166 / "out" / f"{entry.dir}.inspect.txt").read_text()
    command = re.search(r"^\$ packer inspect (.+)$", text, re.M)
    code = re.search(r"^# exit status: (\d+)", text, re.M)
    assert command and code
    body = text[command.end() + 1 : code.start()]
    return command.group(1).strip(), body.rstrip("\n"), int(code.group(1))


def inspected() -> list[Entry]:
    with open(PACKER_166 / "results.tsv", newline="") as fh:
        ok = {r["dir"] for r in csv.DictReader(fh, delimiter="\t") if r["inspect_exit"] == "0"}
    return [e for e in entries() if e.dir in ok]


def normalise(text: str) -> str:
    text = re.sub(r"\b20\d{12}\b", "TIMESTAMP", text)
    lines = text.rstrip("\n").split("\n")
    # required variables of a JSON template: a set
    if "Required variables:" in lines:
        start = lines.index("Required variables:") + 2
        end = lines.index("", start)
        lines[start:end] = sorted(lines[start:end])
    if "Post-processors:" in lines:
        start = lines.index("Post-processors:") - 1
        end = lines.index("Note: If your build names contain user variables or template")
        del lines[start : end - 1]
    return "\n".join(lines)


@pytest.mark.parametrize("entry", inspected(), ids=lambda e: e.dir[:3])
def test_inspect_like_packer(entry: Entry, monkeypatch: pytest.MonkeyPatch) -> None:
    import amibake.cli.commands  # noqa: F401

    target, expected, _ = packer_inspect(entry)
    monkeypatch.chdir(entry.path)
    result = CliRunner().invoke(cli, ["inspect", target])
    assert result.exit_code == 0, result.output
    ours = normalise(result.output)
    # amibake masks sensitive variables, as current Packer does; 1.6.6's HCL2 inspect printed them
    masked = {ln.split(":", 1)[0] for ln in ours.splitlines() if ln.endswith(': "<sensitive>"')}
    theirs = "\n".join(
        f'{ln.split(":", 1)[0]}: "<sensitive>"' if ln.split(":", 1)[0] in masked else ln
        for ln in normalise(expected).splitlines()
    )
    assert ours == theirs


def test_machine_readable_inspect() -> None:
    e = next(e for e in inspected() if e.dir.startswith("010"))
    import os

    cwd = os.getcwd()
    os.chdir(e.path)
    try:
        result = CliRunner().invoke(cli, ["inspect", "-machine-readable", e.file])
    finally:
        os.chdir(cwd)
    rows = [line.split(",") for line in result.output.splitlines()]
    assert all(r[0].isdigit() for r in rows)
    variables = {r[3]: (r[4], r[5]) for r in rows if r[2] == "template-variable"}
    assert variables["arch"] == ("", "1")
    assert variables["aws_region"] == ("us-west-2", "0")
    assert next(r[2:] for r in rows if r[2] == "template-builder") == [
        "template-builder",
        "amazon-ebs",
        "amazon-ebs",
    ]
