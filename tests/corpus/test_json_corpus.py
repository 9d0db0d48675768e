"""Every JSON template of the corpus through ``amibake validate``, against Packer 1.6.6's recorded
run: the verdict, and the reason class (``tests/corpus/reasons.py``): Packer's first reason must be
among amibake's, and amibake may refuse nothing Packer does not. Differences are listed in
``json_disagreements.tsv``, each with claims that :func:`test_listed_claims_are_true` checks.

amibake runs in the corpus entry's directory with Packer's environment (``testing`` credentials,
``us-east-1``) and, as Packer's run had no network, an AWS endpoint where nothing listens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from amibake.cli.main import cli
from tests.corpus.corpus import Entry, entries
from tests.corpus.reasons import (
    amibake_messages,
    check_claim,
    compare,
    packer_messages,
    read_listed,
    reasons,
)

JSON_ENTRIES = [e for e in entries() if e.is_json]
TSV = Path(__file__).with_name("json_disagreements.tsv")

#: Packer's environment for the recorded runs, and no network (a closed loopback port)
PACKER_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def validate(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import amibake.cli.commands  # noqa: F401  (registers the verbs)

    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(k, raising=False)
    for k, v in PACKER_ENV.items():
        monkeypatch.setenv(k, v)

    def run(args: list[str], cwd: Path) -> tuple[int, str]:
        monkeypatch.chdir(cwd)
        result = CliRunner().invoke(cli, ["validate", *args])
        return result.exit_code, result.output

    return run


def test_corpus_has_34_json_templates() -> None:
    assert len(JSON_ENTRIES) == 34


@pytest.mark.parametrize("entry", JSON_ENTRIES, ids=lambda e: e.dir[:3])
def test_validate_matches_packer(entry: Entry, validate) -> None:  # type: ignore[no-untyped-def]
    code, output = validate([*entry.args(), entry.file], entry.path)
    assert code in (0, 1), f"unexpected exit {code}: {output}"
    assert "Traceback" not in output
    verdict = "accept" if code == 0 else "reject"
    expected = "accept" if entry.packer_accepts_today else "reject"
    packer = reasons(packer_messages(entry)) if entry.validate_exit else []
    ours = reasons(amibake_messages(output)) if code else []
    assert code == 0 or ours, output
    differs = compare(packer, ours) if packer and ours else ""
    known = read_listed(TSV).get(entry.dir)
    if known is not None:
        assert verdict == known.verdict, f"listed disagreement no longer holds ({known.reason}):\n{output}"
        assert known.packer_reason == (str(packer[0]) if packer else "-"), packer
        assert known.amibake_reason in map(str, ours), f"{known.amibake_reason} not in {ours}"
        assert differs or verdict != expected, f"{entry.dir} now agrees with Packer: remove its row"
        return
    assert verdict == expected, f"Packer: {expected}; amibake said:\n{output}\n1.6.6: {entry.first_error}"
    assert not differs, f"{differs}\namibake said:\n{output}"


def test_listed_claims_are_true(validate, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    by_dir = {e.dir: e for e in JSON_ENTRIES}
    listed = read_listed(TSV)
    assert len(listed) <= 13
    for dir_, row in listed.items():
        assert row.verdict in ("accept", "reject"), dir_
        assert row.claims and len(row.reason) > 20, dir_
        for claim in row.claims:
            assert check_claim(by_dir[dir_], claim, validate, tmp_path) == "", (dir_, claim)


def test_reason_classes_of_packers_messages() -> None:
    """The classifier reads Packer's wrapped, multi-build reports (spot checks of the record)."""
    first = {e.dir[:3]: reasons(packer_messages(e))[0] for e in JSON_ENTRIES if e.validate_exit}
    assert str(first["005"]) == "function-error aws_secretsmanager"
    assert str(first["008"]) == "unknown-option imds_support"
    assert str(first["013"]) == "unknown-provisioner goss"
    assert str(first["015"]) == "file-not-found modules"
    assert str(first["036"]) == "unknown-function clean_ami_name"
