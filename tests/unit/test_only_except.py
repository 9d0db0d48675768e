"""``-only`` / ``-except`` through the command line, on legacy JSON and HCL2 templates.

Driven in-process (``amibake.cli.main.main``). ``validate``: a template whose second build is broken
is valid exactly when the selection leaves that build out, and the error names only that build.
The expected verdicts are Packer 1.6.6's (``packer validate`` on the same templates: JSON names a
build by its ``name``; HCL2 by ``type.name``, with glob patterns). ``build``: null builders whose
shell-local provisioner leaves a file per build show which builds ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amibake.cli.main import main

EBS = {"region": "us-east-1", "source_ami": "ami-12345678", "instance_type": "t2.micro", "ssh_username": "u"}

HCL_BROKEN_B = """
source "amazon-ebs" "a" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "u"
  ami_name      = "a-{{timestamp}}"
}
source "amazon-ebs" "b" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "u"
}
build {
  sources = ["source.amazon-ebs.a", "source.amazon-ebs.b"]
}
"""

JSON_BROKEN_B = {"builders": [
    {"type": "amazon-ebs", "name": "a", "ami_name": "a-{{timestamp}}", **EBS},
    {"type": "amazon-ebs", "name": "b", **EBS},  # no ami_name
]}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize(("flags", "valid"), [
    ([], False),
    (["-only=amazon-ebs.a"], True),
    (["-only=*.a"], True),
    (["-except=amazon-ebs.b"], True),
    (["-only=amazon-ebs.b"], False),
    (["-except=amazon-ebs.a"], False),
    (["-only=amazon-ebs.a,amazon-ebs.b"], False),
])
def test_validate_hcl2(
    flags: list[str], valid: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.pkr.hcl").write_text(HCL_BROKEN_B)
    code, out = run(["validate", *flags, "t.pkr.hcl"], capsys)
    if valid:
        assert code == 0, out
        assert "The configuration is valid." in out
        assert "amazon-ebs.b" not in out and "ami_name" not in out, out
    else:
        assert code == 1, out
        assert "source.amazon-ebs.b.ami_name: ami_name must be specified" in out, out
        assert "amazon-ebs.a" not in out, out
        assert "Traceback" not in out


@pytest.mark.parametrize(("flags", "valid"), [
    ([], False),
    (["-only=a"], True),
    (["-except=b"], True),
    (["-only=b"], False),
    (["-except=a"], False),
    (["-only=a,b"], False),
])
def test_validate_json(
    flags: list[str], valid: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.json").write_text(json.dumps(JSON_BROKEN_B))
    code, out = run(["validate", *flags, "t.json"], capsys)
    if valid:
        assert code == 0, out
        assert "The configuration is valid." in out
        assert "builders[1]" not in out and "ami_name" not in out, out
    else:
        assert code == 1, out
        assert "builders[1].ami_name: ami_name must be specified" in out, out
        assert "builders[0]" not in out, out


def _null_hcl(tmp_path: Path) -> str:
    return f"""
source "null" "a" {{
  communicator = "none"
}}
source "null" "b" {{
  communicator = "none"
}}
build {{
  sources = ["source.null.a", "source.null.b"]
  provisioner "shell-local" {{
    inline = ["echo $PACKER_BUILD_NAME > {tmp_path}/ran-$PACKER_BUILD_NAME"]
  }}
}}
"""


def _null_json(tmp_path: Path) -> str:
    return json.dumps({
        "builders": [{"type": "null", "name": n, "communicator": "none"} for n in ("a", "b")],
        "provisioners": [{"type": "shell-local",
                          "inline": [f"echo $PACKER_BUILD_NAME > {tmp_path}/ran-$PACKER_BUILD_NAME"]}],
    })


@pytest.mark.parametrize(("fmt", "flags", "ran"), [
    ("hcl2", [], {"null.a", "null.b"}),  # an HCL2 build's PACKER_BUILD_NAME is type.name
    ("hcl2", ["-only=null.a"], {"null.a"}),
    ("hcl2", ["-except=null.a"], {"null.b"}),
    ("hcl2", ["-only=null.*", "-except=null.b"], {"null.a"}),
    ("json", [], {"a", "b"}),
    ("json", ["-only=a"], {"a"}),
    ("json", ["-except=a"], {"b"}),
])
def test_build_runs_only_the_selected_builds(
    fmt: str, flags: list[str], ran: set[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "t.pkr.hcl" if fmt == "hcl2" else "t.json"
    (tmp_path / name).write_text(_null_hcl(tmp_path) if fmt == "hcl2" else _null_json(tmp_path))
    code, out = run(["build", "-color=false", *flags, name], capsys)
    assert code == 0, out
    assert {p.name.removeprefix("ran-") for p in tmp_path.glob("ran-*")} == ran, out


def test_validate_json_knows_builds_by_name_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON build is not known as ``type.name``: ``-only=amazon-ebs.a`` selects nothing (Packer
    1.6.6 then validates nothing; amibake says that no build matches)."""
    (tmp_path / "t.json").write_text(json.dumps(JSON_BROKEN_B))
    code, out = run(["validate", "-only=amazon-ebs.a", "t.json"], capsys)
    assert "The configuration is valid." not in out and "builders[" not in out, out
    assert code == 1 and "no build matches -only/-except" in out, out


@pytest.mark.parametrize(("flags", "valid"), [
    ([], False),
    (["-only=web.amazon-ebs.a"], True),
    (["-except=web.amazon-ebs.b"], True),
    (["-only=web.*", "-except=web.amazon-ebs.b"], True),
    (["-only=web.amazon-ebs.b"], False),
    (["-only=web.*"], False),
])
def test_validate_hcl2_named_build(
    flags: list[str], valid: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A named build block's sources are ``<build name>.<type>.<name>`` (verdicts as Packer 1.6.6's)."""
    (tmp_path / "t.pkr.hcl").write_text(HCL_BROKEN_B.replace("build {", 'build {\n  name = "web"'))
    code, out = run(["validate", *flags, "t.pkr.hcl"], capsys)
    if valid:
        assert code == 0 and "The configuration is valid." in out and "ami_name" not in out, out
    else:
        assert code == 1 and "amazon-ebs.b.ami_name: ami_name must be specified" in out, out
