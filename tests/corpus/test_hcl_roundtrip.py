"""Every JSON corpus template that ``amibake validate`` accepts still validates after
``amibake hcl2_upgrade``, with the same variable values, as a user would run it: the upgraded
file is written into a temporary copy of the template's directory (the corpus is read-only), and
JSON var files become ``-var`` flags (HCL2 reads only ``.pkrvars.hcl`` var files).

Where the upgraded template does not validate, the reason is listed in ``hcl_disagreements.tsv``.

Each HCL2 corpus template is validated from its own directory, with Packer's environment, and
compared with Packer 1.6.6's recorded run by verdict and reason class (``tests/corpus/reasons.py``);
differences are listed in the same file with claims that :func:`test_listed_claims_are_true` checks.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from amibake.cli.main import cli
from tests.corpus.corpus import Entry, entries
from tests.corpus.reasons import amibake_messages, check_claim, compare, packer_messages, read_listed, reasons
from tests.corpus.test_json_corpus import PACKER_ENV

JSON_ENTRIES = [e for e in entries() if e.is_json]
TSV = Path(__file__).with_name("hcl_disagreements.tsv")


def invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    import amibake.cli.commands  # noqa: F401  (registers the verbs)

    monkeypatch.chdir(cwd)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(k, raising=False)
    for k, v in PACKER_ENV.items():
        monkeypatch.setenv(k, v)
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


def accepted_json() -> list[Entry]:
    """The JSON entries amibake accepts, as test_json_corpus establishes: Packer's verdict where no
    disagreement is listed, else the listed one."""
    listed = read_listed(Path(__file__).with_name("json_disagreements.tsv"))
    return [
        e for e in JSON_ENTRIES
        if (listed[e.dir].verdict if e.dir in listed else "accept" if e.packer_accepts_today else "reject")
        == "accept"
    ]


def test_thirteen_json_templates_are_accepted() -> None:
    assert len(accepted_json()) == 13


@pytest.mark.parametrize("entry", accepted_json(), ids=lambda e: e.dir[:3])
def test_upgraded_template_validates(entry: Entry, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = invoke(["validate", *entry.args(), entry.file], entry.path, monkeypatch)
    assert code == 0, f"amibake validate rejects the JSON template (see test_json_corpus):\n{output}"
    shutil.copytree(entry.path, workdir, symlinks=True)
    hcl = f"{entry.file}.pkr.hcl"
    code, output = invoke(["hcl2_upgrade", "-output-file", hcl, entry.file], workdir, monkeypatch)
    assert code == 0, output
    code, output = invoke(["validate", *var_flags(entry, workdir), hcl], workdir, monkeypatch)
    assert "Traceback" not in output
    verdict = "accept" if code == 0 else "reject"
    known = read_listed(TSV, "roundtrip").get(entry.dir)
    if known is not None:
        assert verdict == known.verdict, f"listed disagreement no longer holds ({known.reason}):\n{output}"
        assert known.amibake_reason in map(str, reasons(amibake_messages(output))), output
        return
    assert verdict == "accept", f"upgraded template of {entry.dir} does not validate:\n{output}"


def test_listed_claims_are_true(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    by_dir = {e.dir: e for e in entries()}

    def validate(args: list[str], cwd: Path) -> tuple[int, str]:
        return invoke(["validate", *args], cwd, monkeypatch)

    own = 0
    for kind in ("roundtrip", "hcl2"):
        for dir_, row in read_listed(TSV, kind).items():
            assert row.verdict in ("accept", "reject"), dir_
            assert row.claims and len(row.reason) > 20, dir_
            own += row.reason.startswith("DISAGREEMENT")
            for claim in row.claims:
                assert check_claim(by_dir[dir_], claim, validate, tmp_path) == "", (dir_, claim)
    assert own <= 4


HCL_ENTRIES = [e for e in entries() if not e.is_json]


def from_template_dir(entry: Entry) -> tuple[list[str], Path]:
    """The entry's validate arguments as run from the template's own directory (where its
    relative paths, such as 047's ``user_data_file = "./bootstrap_win.ps1"``, are meant to resolve);
    a directory entry runs from the entry's directory."""
    if entry.file == ".":
        return [*entry.args(), "."], entry.path
    cwd = (entry.path / entry.file).parent
    args = [f"-var-file={os.path.relpath(entry.path / f, cwd)}" for f in entry.var_files]
    return [*args, *(f"-var={v}" for v in entry.dummy_vars), Path(entry.file).name], cwd


@pytest.mark.parametrize("entry", HCL_ENTRIES, ids=lambda e: e.dir[:3])
def test_hcl2_template_validates_as_packer(entry: Entry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``amibake validate`` of each HCL2 corpus template (data sources configured, not executed)
    against the verdict of the Packer the authors targeted (1.6.6's, unless 1.6.6 rejected only a
    feature newer than itself) and 1.6.6's reason class; other outcomes are listed in the TSV."""
    args, cwd = from_template_dir(entry)
    code, output = invoke(["validate", *args], cwd, monkeypatch)
    assert code in (0, 1), output
    assert "Traceback" not in output
    verdict = "accept" if code == 0 else "reject"
    if entry.validate_exit == 0:  # 1.6.6 accepted it: a floor, no listing can lower it
        assert verdict == "accept", output
        return
    packer = reasons(packer_messages(entry))
    ours = reasons(amibake_messages(output)) if code else []
    assert code == 0 or ours, output
    differs = compare(packer, ours) if ours else ""
    known = read_listed(TSV, "hcl2").get(entry.dir)
    expected = "accept" if entry.packer_accepts_today else "reject"
    if known is not None:
        assert verdict == known.verdict, f"listed outcome no longer holds ({known.reason}):\n{output}"
        assert known.packer_reason == str(packer[0]), packer
        assert known.amibake_reason in map(str, ours), f"{known.amibake_reason} not in {ours}"
        assert differs or verdict != expected, f"{entry.dir} now agrees with Packer: remove its row"
        return
    assert verdict == expected, f"Packer: {expected}; amibake said:\n{output}\n1.6.6: {entry.first_error}"
    assert not differs, f"{differs}\namibake said:\n{output}"
