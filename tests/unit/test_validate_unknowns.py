"""``validate`` without executed data sources: a value made from a data source's output is unknown,
and no value check judges it (Packer's validate reports nothing for it). What is wrong whatever the
value is still reported: an unknown option name, an option amibake refuses, the other options' checks.

The http data source is never reached here (no network, nothing listens on its URL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from amibake.core import load_template, prepare_builds
from amibake.errors import Problem, TemplateError
from amibake.template.hcl.unknowns import at_unknown, unknown_paths, without_unknowns
from amibake.template.hcl.values import UNKNOWN_PLACEHOLDER, UnknownStr

HEAD = """
data "http" "meta" {
  url = "http://127.0.0.1:9/never"
}
locals {
  v = data.http.meta.body
}
"""

SOURCE = """
source "amazon-ebs" "a" {
  region        = "us-east-1"
  source_ami    = %(source_ami)s
  instance_type = "t3.small"
  ssh_username  = "u"
  ami_name      = "unknowns-{{timestamp}}"
%(extra)s
}
"""

BUILD = """
build {
  sources = ["source.amazon-ebs.a"]
  provisioner "shell" {
    inline           = ["echo hi"]
    environment_vars = %(env)s
  }
}
"""


def template(tmp_path: Path, *, extra: str = "", env: str = '["A=b"]', source_ami: str = "local.v") -> Path:
    p = tmp_path / "t.pkr.hcl"
    p.write_text(HEAD + SOURCE % {"extra": extra, "source_ami": source_ami} + BUILD % {"env": env})
    return p


def validate(path: Path) -> list[Problem]:
    """The problems ``amibake validate`` reports (data sources not executed)."""
    run = load_template(path, execute_datasources=False)
    try:
        prepare_builds(run)
    except TemplateError as e:
        return list(e.problems)
    return []


def messages(problems: list[Problem]) -> list[str]:
    return [f"{p.key}: {p.message}" for p in problems]


def test_unknown_values_are_not_value_checked(tmp_path: Path) -> None:
    extra = """
  ssh_port      = local.v
  ssh_timeout   = local.v
  aws_polling {
    delay_seconds = local.v
  }
  tags = { Name = local.v }
"""
    env = '["AMI=${local.v}", local.v, "X=${upper(local.v)}"]'
    assert messages(validate(template(tmp_path, extra=extra, env=env))) == []
    run = load_template(template(tmp_path, extra=extra, env=env), execute_datasources=False)
    (build,) = prepare_builds(run)[0]
    # the build's config is decoded all the same, the unknown options at their defaults
    assert build.builder.config.ssh_port == 22
    assert build.builder.raw["source_ami"] == "<unknown>"


def test_the_same_values_written_out_are_checked(tmp_path: Path) -> None:
    """The control: a template's own literal "<unknown>" is an ordinary string, checked as before."""
    extra = '  ssh_port = "<unknown>"\n  ssh_timeout = "<unknown>"\n'
    p = template(tmp_path, extra=extra, env='["<unknown>"]', source_ami='"ami-12345678"')
    got = messages(validate(p))
    assert got == [
        'source.amazon-ebs.a.ssh_port: cannot parse as int (invalid syntax): "<unknown>"',
        'source.amazon-ebs.a.ssh_timeout: time: invalid duration "<unknown>"',
        "provisioner 'shell'.environment_vars[0]: Environment variable not in format 'key=value': <unknown>",
    ]


def test_problems_about_the_option_itself_are_kept(tmp_path: Path) -> None:
    got = messages(validate(template(tmp_path, extra="  ssh_prot = local.v\n")))
    assert len(got) == 1 and got[0].startswith(
        'source.amazon-ebs.a.ssh_prot: unknown configuration key: "ssh_prot"; did you mean "ssh_port"?'), got
    got = messages(validate(template(tmp_path, extra="  spot_price_auto_product = local.v\n")))
    assert len(got) == 1 and got[0].startswith(
        'source.amazon-ebs.a.spot_price_auto_product: "spot_price_auto_product" is not supported by '
        'amibake yet'), got


def test_other_options_are_still_checked_when_an_unknown_one_failed_to_decode(tmp_path: Path) -> None:
    """ssh_port's placeholder fails the int decode; the config is decoded again without it, so the
    rest of it still gets its checks: a bad literal, and a rule across options (Prepare's)."""
    p = template(tmp_path, extra='  ssh_port = local.v\n  ssh_timeout = "5 minutes"\n')
    assert messages(validate(p)) == [
        'source.amazon-ebs.a.ssh_timeout: time: unknown unit " minutes" in duration "5 minutes"']
    p = template(tmp_path, extra="  ssh_port = local.v\n")
    p.write_text(p.read_text().replace('instance_type = "t3.small"\n', ""))
    assert messages(validate(p)) == [
        "source.amazon-ebs.a.instance_type: either instance_type or spot_instance_types must be specified"]


def test_provisioner_checks_still_apply_to_known_entries(tmp_path: Path) -> None:
    got = messages(validate(template(tmp_path, env='[local.v, "nokey"]')))
    assert got == ["provisioner 'shell'.environment_vars[1]: Environment variable not in format "
                   "'key=value': nokey"]


def test_validate_cli(tmp_path: Path) -> None:
    extra = "  ssh_port = local.v\n"
    p = template(tmp_path, extra=extra, env='["AMI=${local.v}"]')
    r = subprocess.run([sys.executable, "-m", "amibake", "validate", str(p)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env={"AMIBAKE_STATE_DIR": str(tmp_path / "state"),
                                                      "AMIBAKE_NO_SERVER": "1", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "The configuration is valid." in r.stdout


@pytest.mark.parametrize(("value", "paths"), [
    ({"a": UNKNOWN_PLACEHOLDER, "b": "<unknown>"}, ["p.a"]),
    ({"l": ["x", UNKNOWN_PLACEHOLDER], "m": {"k": UNKNOWN_PLACEHOLDER}}, ["p.l[1]", "p.m.k"]),
    ({"blocks": [{"n": UNKNOWN_PLACEHOLDER}]}, ["p.blocks[0].n"]),
])
def test_unknown_paths(value: dict[str, object], paths: list[str]) -> None:
    assert unknown_paths(value, "p") == paths
    assert unknown_paths(without_unknowns(value), "p") == []


def test_at_unknown() -> None:
    paths = ["s.a", "s.l[1]"]
    assert at_unknown(Problem("bad", key="s.a"), paths)
    assert at_unknown(Problem("bad", key="s.a.x"), paths) and at_unknown(Problem("bad", key="s.l[1]"), paths)
    assert not at_unknown(Problem("bad", key="s.ab"), paths)
    assert not at_unknown(Problem("bad", key="s.l[10]"), paths)
    assert not at_unknown(Problem('unknown configuration key: "a"', key="s.a"), paths)
    assert isinstance(UNKNOWN_PLACEHOLDER, UnknownStr) and UNKNOWN_PLACEHOLDER == "<unknown>"
