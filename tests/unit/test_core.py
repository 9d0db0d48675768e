"""Variables, build selection and preparation of JSON templates (amibake.core, template.variables)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amibake.core import RunContext, load_template, prepare_builds, select_builds
from amibake.errors import TemplateError
from amibake.template.json_loader import load_json
from amibake.template.variables import parse_var_flag, resolve_json_variables


def builder(name: str = "amazon-ebs", **kw: Any) -> dict[str, Any]:
    b = {
        "type": "amazon-ebs",
        "name": name,
        "region": "us-east-1",
        "source_ami": "ami-12345678",
        "instance_type": "t2.micro",
        "ssh_username": "ubuntu",
        "ami_name": "test-{{timestamp}}",
    }
    b.update(kw)
    return b


def write(tmp_path: Path, doc: dict[str, Any], name: str = "t.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc, indent=2))
    return p


def problems_of(fn: Any) -> list[str]:
    with pytest.raises(TemplateError) as e:
        fn()
    return [str(p) for p in e.value.problems]


def test_variable_precedence(tmp_path: Path) -> None:
    doc = {"variables": {"a": "default", "b": "default", "c": "default"}, "builders": [builder()]}
    t = load_json(write(tmp_path, doc))
    vf1 = write(tmp_path, {"a": "file1", "b": "file1"}, "v1.json")
    vf2 = write(tmp_path, {"b": "file2"}, "v2.json")
    values = resolve_json_variables(t, [vf1, vf2], {"c": "cli"})
    assert values == {"a": "file1", "b": "file2", "c": "cli"}


def test_required_variables_all_reported(tmp_path: Path) -> None:
    t = load_json(write(tmp_path, {"variables": {"x": None, "y": None, "z": "ok"}, "builders": [builder()]}))
    msgs = problems_of(lambda: resolve_json_variables(t))
    assert msgs[0].endswith("required variable not set: x") and msgs[1].endswith(
        "required variable not set: y"
    )
    assert "t.json:1:" in msgs[0] or "t.json:" in msgs[0]
    assert resolve_json_variables(t, cli_vars={"x": "1", "y": "2"})["x"] == "1"


def test_variables_refer_to_each_other_and_env(tmp_path: Path) -> None:
    doc = {
        "variables": {
            "bang": "bang{{user `baz`}}",
            "baz": "{{user `foo`}}baz",
            "foo": "{{env `AMIBAKE_TEST_FOO`}}",
        },
        "builders": [builder()],
    }
    t = load_json(write(tmp_path, doc))
    values = resolve_json_variables(t, env={"AMIBAKE_TEST_FOO": "bar"})
    assert values == {"foo": "bar", "baz": "barbaz", "bang": "bangbarbaz"}


def test_variable_cycle_is_reported(tmp_path: Path) -> None:
    doc = {"variables": {"a": "{{user `b`}}", "b": "{{user `a`}}"}, "builders": [builder()]}
    t = load_json(write(tmp_path, doc))
    msgs = problems_of(lambda: resolve_json_variables(t))
    assert any("cycle" in m for m in msgs)


def test_env_is_an_error_outside_variables(tmp_path: Path) -> None:
    doc = {"builders": [builder(ami_name="x-{{env `HOME`}}")]}
    run = load_template(write(tmp_path, doc))
    msgs = problems_of(lambda: prepare_builds(run))
    assert any("ami_name" in m and "env" in m for m in msgs), msgs


def test_min_packer_version(tmp_path: Path) -> None:
    run = load_template(write(tmp_path, {"min_packer_version": "99.0.0", "builders": [builder()]}))
    (msg,) = problems_of(lambda: prepare_builds(run))
    assert "requires Packer version 99.0.0" in msg
    run = load_template(write(tmp_path, {"min_packer_version": "1.5.0", "builders": [builder()]}))
    builds, _ = prepare_builds(run)
    assert len(builds) == 1


def test_only_except_with_globs(tmp_path: Path) -> None:
    doc = {"builders": [builder("web-1"), builder("web-2"), builder("db")]}
    t = load_json(write(tmp_path, doc))
    names = lambda only=(), exc=(): [s.name for _, s in select_builds(t, only, exc)]  # noqa: E731
    assert names() == ["web-1", "web-2", "db"]
    assert names(only=["web-*"]) == ["web-1", "web-2"]
    assert names(exc=["web-1"]) == ["web-2", "db"]
    assert names(only=["db", "web-2"]) == ["web-2", "db"]


def test_prepare_interpolates_per_build(tmp_path: Path) -> None:
    doc = {
        "variables": {"region": "eu-west-1"},
        "builders": [builder("one", region="{{user `region`}}", ami_name="img-{{build_name}}-{{timestamp}}")],
        "provisioners": [
            {
                "type": "shell",
                "inline": ["echo {{build_name}} {{build_type}}"],
                "override": {"one": {"inline": ["o"]}},
            }
        ],
    }
    run = load_template(write(tmp_path, doc))
    run.timestamp = 1700000000
    (b,) = prepare_builds(run)[0]
    assert b.builder.config.region == "eu-west-1"
    assert b.builder.config.ami_name == "img-one-1700000000"
    assert b.provisioners[0].config.inline == ["o"]


def test_late_fields_are_left_for_build_time(tmp_path: Path) -> None:
    doc = {
        "builders": [builder(tags={"Src": "{{ .SourceAMIName }}"}, ami_description="from {{ .SourceAMI }}")]
    }
    run = load_template(write(tmp_path, doc))
    (b,) = prepare_builds(run)[0]
    assert b.builder.raw["tags"] == {"Src": "{{ .SourceAMIName }}"}
    assert b.builder.raw["ami_description"] == "from {{ .SourceAMI }}"


def test_late_field_syntax_still_checked(tmp_path: Path) -> None:
    doc = {"builders": [builder(tags={"Src": "{{ .SourceAMIName "})]}
    run = load_template(write(tmp_path, doc))
    msgs = problems_of(lambda: prepare_builds(run))
    assert any("tags" in m for m in msgs), msgs


def test_every_problem_of_every_build_at_once(tmp_path: Path) -> None:
    doc = {
        "builders": [builder("a", ami_nmae="x"), builder("b", ssh_port="not-a-port")],
        "provisioners": [{"type": "shell"}, {"type": "goss"}],
    }
    run = load_template(write(tmp_path, doc))
    msgs = problems_of(lambda: prepare_builds(run))
    joined = "\n".join(msgs)
    assert 'did you mean "ami_name"' in joined
    assert "ssh_port" in joined
    assert 'unknown provisioner type "goss"' in joined
    assert any("provisioners[0]" in m for m in msgs)


def test_unknown_builder_type_named_once(tmp_path: Path) -> None:
    run = load_template(write(tmp_path, {"builders": [{"type": "virtualbox-iso"}]}))
    (msg,) = problems_of(lambda: prepare_builds(run))
    assert 'unknown builder type "virtualbox-iso"' in msg


def test_sensitive_values_are_secrets(tmp_path: Path) -> None:
    doc = {"variables": {"pw": "hunter22"}, "sensitive-variables": ["pw"], "builders": [builder()]}
    run = load_template(write(tmp_path, doc))
    assert isinstance(run, RunContext)
    assert run.secrets() == ["hunter22"]


@pytest.mark.parametrize(
    ("flag", "expected"), [("a=b", ("a", "b")), ("a=b=c", ("a", "b=c")), ("a=", ("a", ""))]
)
def test_parse_var_flag(flag: str, expected: tuple[str, str]) -> None:
    assert parse_var_flag(flag) == expected


def test_parse_var_flag_rejects_missing_equals() -> None:
    with pytest.raises(TemplateError):
        parse_var_flag("novalue")
