"""Communicators are registered plugins: a type Packer accepts but amibake cannot connect with is
refused by name at validate (Packer 1.6.6 validates ``communicator = "docker"`` on amazon-ebs, then
fails in the build, after launching, with "unknown communicator type: docker")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from amibake import registry
from amibake.cli.main import cli

EBS = {"type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-12345678", "instance_type": "t2.micro",
       "ssh_username": "ubuntu", "ami_name": "amibake-test"}
NULL = {"type": "null", "ssh_host": "127.0.0.1", "ssh_username": "u", "ssh_private_key_file": "key"}


def validate(tmp_path: Path, builder: dict[str, str]) -> tuple[int, str]:
    from amibake.cli import commands  # noqa: F401  (registers the verbs)

    path = tmp_path / "t.json"
    (tmp_path / "key").write_text("not read at validate\n")
    path.write_text(json.dumps({"builders": [builder]}))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        res = CliRunner().invoke(cli, ["validate", str(path)])
    return res.exit_code, res.output


def test_the_registry_knows_which_communicators_run() -> None:
    runs = {t: registry.lookup("communicator", t).runnable for t in registry.known("communicator")}  # type: ignore[union-attr]
    assert runs == {"ssh": True, "none": True, "winrm": True, "docker": False,
                    "dockerWindowsContainer": False}


@pytest.mark.parametrize("builder", [EBS, NULL], ids=["amazon-ebs", "null"])
@pytest.mark.parametrize("comm", ["docker", "dockerWindowsContainer"])
def test_a_docker_communicator_is_refused_by_name(tmp_path: Path, builder: dict[str, str], comm: str) -> None:
    code, out = validate(tmp_path, {**builder, "communicator": comm})
    assert code == 1, out
    said = f'builders[0].communicator: communicator "{comm}" is not supported by amibake yet: '
    assert said + "it connects to a container that only a docker builder starts" in out, out


@pytest.mark.parametrize("builder", [EBS, NULL], ids=["amazon-ebs", "null"])
def test_ssh_and_none_validate(tmp_path: Path, builder: dict[str, str]) -> None:
    for comm in ("ssh", "none"):
        code, out = validate(tmp_path, {**builder, "communicator": comm})
        assert code == 0 and "The configuration is valid." in out, (comm, out)


def test_winrm_validates_for_amazon_ebs_with_basic_or_ntlm(tmp_path: Path) -> None:
    for extra in ({}, {"winrm_use_ntlm": True}):
        template = {**EBS, "communicator": "winrm", "winrm_username": "Administrator", **extra}
        code, out = validate(tmp_path, template)
        assert code == 0 and "The configuration is valid." in out, out
