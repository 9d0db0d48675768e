"""Every JSON corpus template that ``amibake validate`` accepts still validates after
``amibake hcl2_upgrade``, with the same variable values, as a user would run it: the upgraded
file is written into a temporary copy of the template's directory (the corpus is read-only), and
JSON var files become ``-var`` flags (HCL2 reads only ``.pkrvars.hcl`` var files).

Where the upgraded template does not validate, the reason is listed in ``hcl_disagreements.tsv``.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from amibake.cli.main import cli
from tests.corpus.corpus import Entry, entries

JSON_ENTRIES = [e for e in entries() if e.is_json]
TSV = Path(__file__).with_name("hcl_disagreements.tsv")


def disagreements(kind: str) -> dict[str, tuple[str, str]]:
    """``dir -> (verdict, reason)`` of the TSV's rows of one kind (``roundtrip`` or ``hcl2``)."""
    lines = [ln for ln in TSV.read_text().splitlines() if ln and not ln.startswith("#")]
    return {
        r["dir"]: (r["amibake"], r["reason"])
        for r in csv.DictReader(lines, delimiter="\t")
        if r["kind"] == kind
    }


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    import amibake.cli.commands  # noqa: F401  (registers the verbs)

    monkeypatch.chdir(cwd)
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output


def var_flags(entry: Entry, cwd: Path) -> list[str]:
    """The entry's ``-var-file`` (JSON) and ``-var`` arguments as ``-var`` flags, in order."""
    out = []
    for f in entry.var_files:
        data = json.loads((cwd / f).read_text())
        for k, v in (data or {}).items():
            out.append(f"-var={k}={v if isinstance(v, str) else json.dumps(v)}")
    out += [f"-var={v}" for v in entry.dummy_vars]
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "entry"


@pytest.mark.parametrize("entry", JSON_ENTRIES, ids=lambda e: e.dir[:3])
def test_upgraded_template_validates(entry: Entry, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = invoke(["validate", *entry.args(), entry.file], entry.path, monkeypatch)
    if code != 0:
        pytest.skip("amibake validate rejects the JSON template (see test_json_corpus)")
    shutil.copytree(entry.path, workdir, symlinks=True)
    hcl = f"{entry.file}.pkr.hcl"
    code, output = invoke(["hcl2_upgrade", "-output-file", hcl, entry.file], workdir, monkeypatch)
    assert code == 0, output
    code, output = invoke(["validate", *var_flags(entry, workdir), hcl], workdir, monkeypatch)
    assert "Traceback" not in output
    verdict = "accept" if code == 0 else "reject"
    known = disagreements("roundtrip").get(entry.dir)
    if known is not None:
        assert verdict == known[0], f"listed disagreement no longer holds ({known[1]}); output:\n{output}"
        return
    assert verdict == "accept", f"upgraded template of {entry.dir} does not validate:\n{output}"


def test_disagreements_are_explained_and_few() -> None:
    own = 0
    for kind in ("roundtrip", "hcl2"):
        for dir_, (verdict, reason) in disagreements(kind).items():
            assert verdict in ("accept", "reject"), dir_
            assert reason.startswith(("DISAGREEMENT: ", "Packer 1.9.4 rejects it too: ")), dir_
            own += reason.startswith("DISAGREEMENT")
    assert own <= 4


HCL_ENTRIES = [e for e in entries() if not e.is_json]


@pytest.mark.parametrize("entry", HCL_ENTRIES, ids=lambda e: e.dir[:3])
def test_hcl2_template_validates_as_packer(entry: Entry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``amibake validate`` of each HCL2 corpus template (data sources configured, not executed)
    against the verdict of the Packer the authors targeted: 1.6.6's, unless 1.6.6 rejected only a
    feature newer than itself; other outcomes are listed with their reason in the TSV."""
    code, output = invoke(["validate", *entry.args(), entry.file], entry.path, monkeypatch)
    assert code in (0, 1), output
    assert "Traceback" not in output
    verdict = "accept" if code == 0 else "reject"
    if entry.validate_exit == 0:  # 1.6.6 accepted it: a floor, no listing can lower it
        assert verdict == "accept", output
        return
    known = disagreements("hcl2").get(entry.dir)
    if known is not None:
        assert verdict == known[0], f"listed outcome no longer holds ({known[1]}); output:\n{output}"
        return
    expected = "accept" if entry.packer_accepts_today else "reject"
    assert verdict == expected, (
        f"Packer would {expected}; amibake said:\n{output}\n1.6.6: {entry.first_error}"
    )
