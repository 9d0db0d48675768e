"""``amibake plugins installed`` lists every built-in type with what ``build`` can do with it, and
``build`` refuses a validate-only type at the start: file, block and type named, no AWS call made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amibake import registry
from amibake.cli.main import cli

#: (kind, type) -> runs? for the types whose status the issue names; the listing must hold them
EXPECTED = {
    ("builder", "amazon-ebs"): True,
    ("builder", "null"): True,
    ("builder", "amazon-chroot"): True,
    ("builder", "amazon-ebssurrogate"): True,
    ("builder", "amazon-ebsvolume"): True,
    ("builder", "amazon-instance"): True,
    ("builder", "amibake-local"): True,
    ("provisioner", "shell"): True,
    ("provisioner", "file"): True,
    ("provisioner", "shell-local"): True,
    ("provisioner", "ansible"): True,
    ("provisioner", "ansible-local"): True,
    ("provisioner", "powershell"): True,
    ("provisioner", "windows-shell"): True,
    ("provisioner", "windows-restart"): True,
    ("post-processor", "manifest"): True,
    ("post-processor", "amazon-import"): True,
    ("datasource", "amazon-ami"): True,
    ("datasource", "http"): True,
    ("datasource", "null"): True,
    ("communicator", "ssh"): True,
    ("communicator", "none"): True,
    ("communicator", "winrm"): True,
    ("communicator", "docker"): False,
    ("communicator", "dockerWindowsContainer"): False,
}


def cli_run(*args: str) -> tuple[int, str]:
    from amibake.cli import commands  # noqa: F401  (registers the verbs)

    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def sections(out: str) -> dict[str, dict[str, str]]:
    """The human listing as {heading: {type: status}}."""
    found: dict[str, dict[str, str]] = {}
    heading = ""
    for text in out.splitlines():
        if text.endswith(":") and not text.startswith(" "):
            heading = text[:-1]
            found[heading] = {}
        elif text.startswith("  ") and heading:
            name, status = text.split()
            found[heading][name] = status
        elif not text:
            heading = ""
    return found


def test_installed_follows_the_registry() -> None:
    """A spec without an implementation is validate-only; every registered type is listed."""
    listed = {(p.kind, p.type): p.runnable for p in registry.installed()}
    for (kind, type_name), runs in EXPECTED.items():
        assert listed[(kind, type_name)] is runs, (kind, type_name)
    for kind in ("builder", "provisioner", "post-processor"):
        for type_name in registry.known(kind):
            spec = registry.lookup(kind, type_name)
            assert spec is not None
            assert listed[(kind, type_name)] is bool(spec.impl)
    assert {t for k, t in listed if k == "datasource"} == {
        "amazon-ami", "amazon-parameterstore", "amazon-secretsmanager", "http", "null",
    }


def test_human_listing_by_kind() -> None:
    code, out = cli_run("plugins", "installed")
    assert code == 0, out
    got = sections(out)
    assert list(got) == ["builders", "provisioners", "post-processors", "data sources", "communicators"]
    heading = {"builder": "builders", "provisioner": "provisioners", "post-processor": "post-processors",
               "datasource": "data sources", "communicator": "communicators"}
    for (kind, type_name), runs in EXPECTED.items():
        assert got[heading[kind]][type_name] == ("run" if runs else "validate-only"), (kind, type_name)
    # shell-local is both a provisioner and a post-processor, each listed under its kind
    assert got["provisioners"]["shell-local"] == got["post-processors"]["shell-local"] == "run"
    assert sum(len(v) for v in got.values()) == len(registry.installed())
    assert "validate-only: its configuration is checked, but amibake cannot build it yet" in out


def test_machine_readable_listing() -> None:
    code, out = cli_run("plugins", "installed", "-machine-readable")
    assert code == 0, out
    rows = [line.split(",") for line in out.splitlines()]
    assert all(len(r) == 6 and r[0].isdigit() and r[1] == "" and r[2] == "plugin" for r in rows), rows
    got = {(r[3], r[4]): r[5] for r in rows}
    for key, runs in EXPECTED.items():
        assert got[key] == ("run" if runs else "validate-only"), key
    assert len(rows) == len(registry.installed())


def ebs(**extra: Any) -> dict[str, Any]:
    return {"type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-12345678",
            "instance_type": "t2.micro", "ssh_username": "u", "ami_name": "amibake-test", **extra}


#: runs amibake's CLI with every botocore request recorded in a file (and refused), so a test can
#: tell that no AWS call was even attempted; the endpoint is a closed port besides
_RUN = """
import sys
import botocore.endpoint

def refuse(self, *args, **kwargs):
    with open(sys.argv[1], "a") as f:
        f.write("request\\n")
    raise RuntimeError("an AWS request was made")

botocore.endpoint.Endpoint.make_request = refuse
if len(sys.argv) > 3 and sys.argv[2] == "--validate-only":  # runnable types made validate-only
    import dataclasses
    from amibake import registry
    registry._ensure_loaded()
    for spec in sys.argv[3].split(","):
        kind, _, name = spec.partition("/")
        registry._REGISTRY[(kind, name)] = dataclasses.replace(registry._REGISTRY[(kind, name)], impl="")
    del sys.argv[2:4]
from amibake.cli.main import main
main(sys.argv[2:])
"""


def build(tmp_path: Path, template: str, *args: str,
          validate_only: str = "") -> tuple[subprocess.CompletedProcess[str], float, Path]:
    state = tmp_path / "state"
    calls = tmp_path / "aws-calls"
    env = {**os.environ, "AMIBAKE_NO_SERVER": "1", "AMIBAKE_STATE_DIR": str(state), "TMPDIR": str(tmp_path),
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    start = time.monotonic()
    patch = ["--validate-only", validate_only] if validate_only else []
    r = subprocess.run([sys.executable, "-c", _RUN, str(calls), *patch, "build", *args, template],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert not calls.exists(), "an AWS request was attempted"
    assert not state.exists() or not any(state.rglob("*")), "a build journal was started"
    return r, elapsed, state


MESSAGE = ("is validated but cannot be built by amibake yet "
           "(`amibake plugins installed` lists the types it can run)")


def test_build_refuses_a_validate_only_builder_at_the_start(tmp_path: Path) -> None:
    chroot = {"type": "amazon-chroot", "region": "us-east-1", "source_ami": "ami-12345678",
              "ami_name": "chroot-image"}
    (tmp_path / "t.json").write_text(json.dumps({"builders": [chroot]}))
    r, elapsed, _ = build(tmp_path, "t.json", validate_only="builder/amazon-chroot")
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr == f'Error: t.json:1:15: builders[0]: builder type "amazon-chroot" {MESSAGE}\n'
    assert r.stdout == ""  # no build was started: no "output will be in this color" line
    assert elapsed < 20


HCL = """
source "amazon-ebs" "web" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t3.micro"
  ssh_username  = "ubuntu"
  ami_name      = "web"
}
source "amazon-chroot" "x" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  ami_name      = "chroot-image"
}
build {
  sources = ["source.amazon-ebs.web", "source.amazon-chroot.x"]
  provisioner "shell" { inline = ["true"] }
  provisioner "powershell" { inline = ["Write-Host hi"] }
  post-processor "manifest" {}
}
"""


def test_build_refuses_every_validate_only_block_of_the_selected_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The powershell provisioner (made validate-only here) would have run after the instance was launched:
    refused before that, once for both builds; -only leaves the chroot source out of the refusal."""
    (tmp_path / "t.pkr.hcl").write_text(HCL)
    (tmp_path / "play.yml").write_text("- hosts: all\n")
    monkeypatch.chdir(tmp_path)
    code, out = cli_run("validate", "t.pkr.hcl")
    assert (code, out) == (0, "The configuration is valid.\n")
    validate_only = "builder/amazon-chroot,provisioner/powershell"
    r, elapsed, _ = build(tmp_path, "t.pkr.hcl", validate_only=validate_only)
    assert r.returncode == 1, r.stdout + r.stderr
    refused = f"t.pkr.hcl:17:3: provisioner 'powershell': provisioner type \"powershell\" {MESSAGE}"
    assert r.stderr.splitlines() == [
        "Error: 2 errors occurred:",
        f'* t.pkr.hcl:9:1: source.amazon-chroot.x: builder type "amazon-chroot" {MESSAGE}',
        f"* {refused}",
    ]
    assert r.stdout == ""
    assert elapsed < 20
    r, _, _ = build(tmp_path, "t.pkr.hcl", "-only", "amazon-ebs.web", validate_only=validate_only)
    assert r.returncode == 1
    assert r.stderr == f"Error: {refused}\n"


def test_build_refuses_a_validate_only_post_processor(tmp_path: Path) -> None:
    """Every post-processor type runs now: the refusal is shown with manifest's spec made validate-only."""
    doc = {"builders": [ebs()], "post-processors": [{"type": "manifest"}]}
    (tmp_path / "t.json").write_text(json.dumps(doc, indent=2))
    r, _, _ = build(tmp_path, "t.json", validate_only="post-processor/manifest")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "post-processors[0]" in r.stderr
    assert f'post-processor type "manifest" {MESSAGE}' in r.stderr


@pytest.mark.parametrize("kind", ["provisioners", "error-cleanup-provisioner"])
def test_build_refuses_a_provisioner_that_would_only_fail_later(tmp_path: Path, kind: str) -> None:
    prov = {"type": "powershell", "inline": ["Write-Output hi"]}
    doc: dict[str, Any] = {"builders": [ebs()], "provisioners": [{"type": "shell", "inline": ["true"]}]}
    if kind == "provisioners":
        doc["provisioners"].append(prov)
    else:
        doc["error-cleanup-provisioner"] = prov
    (tmp_path / "t.json").write_text(json.dumps(doc, indent=2))
    r, _, _ = build(tmp_path, "t.json", validate_only="provisioner/powershell")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f'provisioner type "powershell" {MESSAGE}' in r.stderr
