"""The publishing post-processors' configs are strict: every bad option is refused by name at validate,
in JSON and HCL2 (issue #15 part 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from amibake.cli.main import cli

BUILDER = {"type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
           "instance_type": "t2.micro",
           "ssh_username": "u", "ami_name": "x-{{timestamp}}"}


def validate(tmp_path: Path, *pps: dict[str, Any]) -> tuple[int, str]:
    (tmp_path / "t.json").write_text(json.dumps({"builders": [BUILDER], "post-processors": [list(pps)]}))
    r = CliRunner().invoke(cli, ["validate", str(tmp_path / "t.json")])
    return r.exit_code, r.output


def test_good_configs_validate(tmp_path: Path) -> None:
    code, out = validate(
        tmp_path,
        {"type": "amibake-ssm-parameter", "parameter_name": "/images/{{user `app`}}web/latest",
         "description": "d", "regions": ["us-east-1"]},
        {"type": "amibake-launch-template", "launch_template_name": "web", "source_version": "$Default",
         "make_default": True, "version_description": "v", "regions": ["us-east-1"]},
    )
    assert code == 0, out


def test_bad_options_are_refused_by_name(tmp_path: Path) -> None:
    code, out = validate(
        tmp_path,
        {"type": "amibake-ssm-parameter", "parameter_name": "/x", "overwrite": False},
        {"type": "amibake-launch-template", "launch_template_name": "web", "launch_template_id": "lt-1"},
    )
    assert code == 1
    assert 'post-processors[0][0].overwrite: unknown configuration key: "overwrite"' in out
    assert 'post-processors[0][1].launch_template_id: unknown configuration key: "launch_template_id"' in out
    code, out = validate(
        tmp_path,
        {"type": "amibake-ssm-parameter", "parameter_name": "images/web"},
        {"type": "amibake-launch-template", "source_version": "latest"},
    )
    assert code == 1
    assert "post-processors[0][0].parameter_name: parameter_name 'images/web': a hierarchical name must " \
           "start with /" in out
    assert "post-processors[0][1].launch_template_name: launch_template_name must be set" in out
    assert "source_version 'latest': expected $Latest, $Default or a version number" in out


def test_name_rules(tmp_path: Path) -> None:
    for name, why in (("", "parameter_name must be set"), ("/aws/x", "reserved"), ("/a b", "only letters"),
                      ("/" + "/".join("l" * 16), "more than 15 levels")):
        code, out = validate(tmp_path, {"type": "amibake-ssm-parameter", "parameter_name": name})
        assert code == 1 and why in out, (name, out)
    code, out = validate(tmp_path, {"type": "amibake-launch-template", "launch_template_name": "a!"})
    assert code == 1 and "launch_template_name 'a!'" in out


def test_hcl2(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text('''
source "amazon-ebs" "web" {
  region        = "us-east-1"
  source_ami    = "ami-785db401"
  instance_type = "t2.micro"
  ssh_username  = "u"
  ami_name      = "web"
}
build {
  sources = ["source.amazon-ebs.web"]
  post-processor "amibake-ssm-parameter" {
    parameter_name = "/images/web/latest"
  }
  post-processor "amibake-launch-template" {
    launch_template_name = "web"
    make_default         = true
    bogus                = 1
  }
}
''')
    r = CliRunner().invoke(cli, ["validate", str(tmp_path / "t.pkr.hcl")])
    assert r.exit_code == 1 and "bogus" in r.output and "parameter_name" not in r.output, r.output
