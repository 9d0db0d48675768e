"""``-checks FILE`` (issue #15, part 1): the checks file, the JUnit report, and ``validate -checks``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.checkreport import ReportError, local_name, summarise
from amibake.errors import TemplateError
from amibake.template.checks import DEFAULT_JUNIT_DIR, load_checks


def write(tmp_path: Path, data: Any, name: str = "checks.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(TemplateError) as info:
        load_checks(path)
    return [f"{p.key}|{p.pos.line if p.pos else 0}|{p.message}" for p in info.value.problems]


def test_a_checks_file_holds_provisioners_with_their_core_keys(tmp_path: Path) -> None:
    path = write(tmp_path, {"checks": [
        {"type": "shell", "inline": ["true"], "only": ["amazon-ebs.a"], "pause_before": "2s",
         "max_retries": 2},
        {"type": "file", "source": "/etc/os-release", "destination": "os", "direction": "download"},
    ], "junit_report": "/tmp/r.xml"})
    checks = load_checks(path)
    first, second = checks.blocks
    assert (first.kind, first.type, first.only, first.pause_before, first.max_retries) == (
        "provisioner", "shell", ["amazon-ebs.a"], "2s", 2)
    assert first.config == {"inline": ["true"]} and first.key_path == "checks[0]"
    assert first.pos is not None and first.pos.file == str(path) and first.pos.line == 3
    assert second.config["direction"] == "download" and second.key_path == "checks[1]"
    assert (checks.junit_report, checks.junit_dir) == ("/tmp/r.xml", DEFAULT_JUNIT_DIR)


def test_bad_checks_files_name_the_file_line_and_key(tmp_path: Path) -> None:
    assert problems(write(tmp_path, {"checks": []})) == [
        "checks|2|'checks' must be a non-empty list of provisioners"]
    assert problems(write(tmp_path, {"check": [{"type": "shell"}]}))[0].startswith(
        "check|2|unknown key in a checks file: 'check'")
    assert problems(write(tmp_path, {"checks": [{"inline": ["x"]}], "junit_dir": 3})) == [
        "checks[0]|3|missing 'type'", "junit_dir|9|expected a non-empty string, got number"]
    assert problems(write(tmp_path, "[1]")) == ["None|1|a checks file must be a JSON object, not array"]
    [broken] = problems(write(tmp_path, '{"checks": [}'))
    assert broken.startswith("None|1|")
    with pytest.raises(TemplateError, match="checks file not found"):
        load_checks(tmp_path / "missing.json")


def junit(cases: list[str], wrap: bool) -> bytes:
    body = "".join(cases)
    doc = f'<testsuite name="s">{body}</testsuite>'
    return (f"<testsuites>{doc}</testsuites>" if wrap else doc).encode()


CASE = {
    "pass": '<testcase classname="c" name="n{i}"/>',
    "failure": '<testcase classname="c" name="n{i}"><failure message="m"/></testcase>',
    "error": '<testcase classname="c" name="n{i}"><error/></testcase>',
    "skipped": '<testcase classname="c" name="n{i}"><skipped/></testcase>',
}


@given(st.lists(st.sampled_from(sorted(CASE)), max_size=30), st.booleans())
def test_the_report_counts_each_kind_of_test_case(kinds: list[str], wrap: bool) -> None:
    summary = summarise(junit([CASE[k].format(i=i) for i, k in enumerate(kinds)], wrap))
    assert summary.tests == len(kinds)
    assert (summary.failures, summary.errors, summary.skipped) == (
        kinds.count("failure"), kinds.count("error"), kinds.count("skipped"))
    assert summary.failed == bool({"failure", "error"} & set(kinds))
    assert summary.failed_cases == tuple(f"c.n{i}" for i, k in enumerate(kinds) if k in ("failure", "error"))


def test_a_report_that_is_not_junit_is_refused() -> None:
    with pytest.raises(ReportError, match="not well-formed"):
        summarise(b"<testsuite>")
    with pytest.raises(ReportError, match="root element is <html>"):
        summarise(b"<html/>")


def test_the_describe_line_names_at_most_five_failed_cases() -> None:
    summary = summarise(junit([CASE["failure"].format(i=i) for i in range(7)], True))
    assert summary.describe() == ("7 test(s), 7 failure(s), 0 error(s), 0 skipped "
                                  "(failed: c.n0, c.n1, c.n2, c.n3, c.n4 and 2 more)")


def test_report_file_names_are_safe() -> None:
    assert local_name("amazon-ebs.web") == "amazon-ebs.web.xml"
    assert local_name("../x/y z") == "_x_y_z.xml"


def validate(tmp_path: Path, template: dict[str, Any],
             checks: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "t.json").write_text(json.dumps(template))
    write(tmp_path, checks)
    return subprocess.run([sys.executable, "-m", "amibake", "validate", "-checks", "checks.json", "t.json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "AMIBAKE_NO_SERVER": "1"})


EBS = {"type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-1", "instance_type": "t3.micro",
       "ssh_username": "u", "ami_name": "checked-ami"}


def test_validate_checks_the_checks_as_provisioners(tmp_path: Path) -> None:
    ok = validate(tmp_path, {"builders": [EBS]}, {"checks": [{"type": "shell", "inline": ["true"]}]})
    assert ok.returncode == 0, ok.stderr
    bad = validate(tmp_path, {"builders": [EBS]}, {"checks": [{"type": "shell", "inlin": ["true"]}]})
    assert bad.returncode == 1
    assert "checks.json" in bad.stderr and "checks[0]" in bad.stderr and "inlin" in bad.stderr


def test_a_builder_that_cannot_test_its_image_is_refused_at_validate(tmp_path: Path) -> None:
    res = validate(tmp_path, {"builders": [{"type": "null", "communicator": "none"}]},
                   {"checks": [{"type": "shell", "inline": ["true"]}]})
    assert res.returncode == 1
    assert 'builder type "null" cannot test its image on a fresh instance' in res.stderr
    # checks that apply to no build of that type are fine
    res = validate(tmp_path, {"builders": [{"type": "null", "communicator": "none"}, EBS]},
                   {"checks": [{"type": "shell", "inline": ["true"], "only": ["amazon-ebs"]}]})
    assert res.returncode == 0, res.stderr
