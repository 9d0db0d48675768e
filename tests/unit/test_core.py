"""Variables, build selection and preparation of JSON templates (amibake.core, template.variables)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
    run = load_template(write(tmp_path, doc), started=datetime.fromtimestamp(1700000000, UTC))
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


# --- builder names rendered with user variables (Packer's Core.initialize) ---------------------


def test_builder_name_renders_user_variables(tmp_path: Path) -> None:
    doc = {
        "variables": {"prefix": "web"},
        "builders": [
            builder("{{user `prefix`}}-a", ami_name="img-{{build_name}}"),
            builder("{{user `prefix`}}-b", ami_name="img-{{build_name}}"),
        ],
        "provisioners": [
            # provisioners name builders as written (Packer's rawName), not as rendered
            {
                "type": "shell",
                "inline": ["echo {{build_name}}"],
                "only": ["{{user `prefix`}}-a"],
                "override": {"{{user `prefix`}}-a": {"inline": ["overridden {{build_name}}"]}},
            }
        ],
    }
    run = load_template(write(tmp_path, doc), cli_vars={"prefix": "api"})
    builds = {b.name: b for b in prepare_builds(run)[0]}
    assert sorted(builds) == ["api-a", "api-b"]
    assert builds["api-a"].builder.config.ami_name == "img-api-a"
    assert [p.config.inline for p in builds["api-a"].provisioners] == [["overridden api-a"]]
    assert builds["api-b"].provisioners == []
    # -only / -except match the rendered names
    assert [b.name for b in prepare_builds(run, only=["api-b"])[0]] == ["api-b"]
    assert [b.name for b in prepare_builds(run, except_=["api-a"])[0]] == ["api-b"]
    assert [s.name for _, s in select_builds(run.template, ["{{user `prefix`}}-a"])] == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("{{build_name}}", "build_name not available"),
        ("{{build_type}}", "build_type not available"),
        ("{{env `HOME`}}", "env vars are not allowed here"),
        ("{{clean_resource_name `a`}}", 'function "clean_resource_name" not defined'),
        ("{{ build `ID` }}", "will not be passed into your plugin"),
    ],
)
def test_builder_name_refused_functions(tmp_path: Path, name: str, message: str) -> None:
    """What Packer's core context lacks when it renders names (checked against Packer 1.6.6)."""
    run_fn = lambda: load_template(write(tmp_path, {"builders": [builder(name)]}))  # noqa: E731
    with pytest.raises(TemplateError) as e:
        run_fn()
    (p,) = e.value.problems
    assert p.key == "builders[0].name"
    assert f"Error interpolating builder '{name}'" in p.message and message in p.message
    assert p.pos is not None and p.pos.line == 5  # the "name" line


def test_builder_name_rendered_clash_is_refused(tmp_path: Path) -> None:
    doc = {"variables": {"p": "x"}, "builders": [builder("{{user `p`}}-a"), builder("x-a")]}
    (msg,) = problems_of(lambda: load_template(write(tmp_path, doc)))
    assert "builders[1].name" in msg and "'x-a'" in msg and "builders[0]" in msg


def test_builder_name_functions_packer_allows(tmp_path: Path) -> None:
    doc = {"builders": [builder("{{template_dir}}/{{timestamp}}")]}
    started = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    run = load_template(write(tmp_path, doc), started=started)
    (b,) = prepare_builds(run)[0]
    assert b.name == f"{tmp_path}/{int(started.timestamp())}"


# --- one clock per run --------------------------------------------------------------------------


def test_one_clock_for_variables_and_builders(tmp_path: Path) -> None:
    """A variable's {{isotime}}/{{timestamp}} and a builder's are the run's clock, not import time."""
    started = datetime(2031, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    doc = {
        "variables": {"stamp": "{{timestamp}}", "iso": "{{isotime}}", "ns": "{{isotime `05.000`}}"},
        "builders": [builder(ami_name="img-{{timestamp}}-{{user `stamp`}}", ami_description="{{isotime}}")],
    }
    run = load_template(write(tmp_path, doc), started=started)
    assert run.user_vars == {"stamp": "1925089445", "iso": "2031-01-02T03:04:05Z", "ns": "05.678"}
    (b,) = prepare_builds(run)[0]
    assert b.builder.config.ami_name == "img-1925089445-1925089445"


def test_each_run_reads_its_own_clock(tmp_path: Path) -> None:
    """Two runs in one process (``amibake server`` forks workers from one warm process) do not
    share a clock read at import."""
    path = write(tmp_path, {"variables": {"t": "{{timestamp}}"}, "builders": [builder()]})
    a = load_template(path, started=datetime(2030, 1, 1, tzinfo=UTC))
    b = load_template(path, started=datetime(2030, 1, 1, 0, 0, 7, tzinfo=UTC))
    assert int(b.user_vars["t"]) - int(a.user_vars["t"]) == 7
    assert abs(load_template(path).timestamp - datetime.now(UTC).timestamp()) < 5


def test_hcl2_timestamp_and_isotime_use_the_run_clock(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text(
        'locals {\n  a = timestamp()\n  b = legacy_isotime("2006-01-02T15:04:05Z07:00")\n}\n'
        'source "amazon-ebs" "x" {\n  region = "us-east-1"\n  source_ami = "ami-12345678"\n'
        '  instance_type = "t2.micro"\n  ssh_username = "u"\n  ami_name = "n-${local.a}"\n}\n'
        'build {\n  sources = ["source.amazon-ebs.x"]\n}\n'
    )
    started = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    run = load_template(tmp_path / "t.pkr.hcl", started=started)
    assert run.template.locals == {"a": "2031-01-02T03:04:05Z", "b": "2031-01-02T03:04:05Z"}
    assert run.init_time == started


# --- build data keys: {{ build `X` }} and build.X ---------------------------------------------

AMAZON_KEYS = [
    "ID", "Host", "Port", "User", "Password", "ConnType", "PackerRunUUID", "PackerHTTPPort",
    "PackerHTTPIP", "PackerHTTPAddr", "SSHPublicKey", "SSHPrivateKey", "WinRMPassword",
    "SourceAMIName", "BuildRegion", "SourceAMI", "SourceAMICreationDate", "SourceAMIOwner",
    "SourceAMIOwnerName",
]  # fmt: skip


def _rendered_at_build(run: RunContext, build: Any, data: dict[str, Any]) -> Any:
    from amibake.api import BuildEnv
    from amibake.build import BuildHooks

    env = BuildEnv(build_name=build.name, builder_type=build.type, template_dir=tmp_dir(run), ui=None)  # type: ignore[arg-type]
    return BuildHooks(run, build, env)._config_for(build.provisioners[0], data)


def tmp_dir(run: RunContext) -> Path:
    return run.template.template_dir


def test_every_build_key_validates_and_renders_json(tmp_path: Path) -> None:
    line = " ".join(f"{k}={{{{ build `{k}` }}}}" for k in AMAZON_KEYS)
    doc = {"builders": [builder()], "provisioners": [{"type": "shell", "inline": [line]}]}
    run = load_template(write(tmp_path, doc))
    (b,) = prepare_builds(run)[0]
    data = {k: f"v-{k}" for k in AMAZON_KEYS if k != "Password"} | {"Port": 2222}
    (out,) = _rendered_at_build(run, b, data).inline
    expected = {k: f"v-{k}" for k in AMAZON_KEYS} | {"Port": "2222", "Password": "<no value>"}
    assert out == " ".join(f"{k}={expected[k]}" for k in AMAZON_KEYS)


def test_every_build_key_validates_and_renders_hcl2(tmp_path: Path) -> None:
    line = " ".join(f"{k}=${{build.{k}}}" for k in AMAZON_KEYS)
    (tmp_path / "t.pkr.hcl").write_text(
        'source "amazon-ebs" "x" {\n  region = "us-east-1"\n  source_ami = "ami-12345678"\n'
        '  instance_type = "t2.micro"\n  ssh_username = "u"\n  ami_name = "name"\n}\n'
        'build {\n  sources = ["source.amazon-ebs.x"]\n'
        f'  provisioner "shell" {{\n    inline = ["{line}"]\n  }}\n}}\n'
    )
    run = load_template(tmp_path / "t.pkr.hcl")
    (b,) = prepare_builds(run)[0]
    data = {k: f"v-{k}" for k in AMAZON_KEYS if k != "Host"} | {"Port": 22}
    (out,) = _rendered_at_build(run, b, data).inline
    expected = {k: f"v-{k}" for k in AMAZON_KEYS} | {"Port": "22", "Host": "<no value>"}
    assert out == " ".join(f"{k}={expected[k]}" for k in AMAZON_KEYS)


@pytest.mark.parametrize("key", ["Bogus", "SourceAMITags", "Device"])
def test_build_key_the_builder_never_offers_is_refused(tmp_path: Path, key: str) -> None:
    """As Packer's Prepare (checked with Packer 1.6.6): SourceAMITags is only a late field of the
    amazon builders; Device/MountPath only amazon-chroot's."""
    doc = {"builders": [builder()], "provisioners": [{"type": "shell", "inline": [f"{{{{build `{key}`}}}}"]}]}
    (msg,) = problems_of(lambda: prepare_builds(load_template(write(tmp_path, doc))))
    assert f"loaded data, but couldnt find {key} in it." in msg and "provisioners[0].inline" in msg
    (tmp_path / "t.pkr.hcl").write_text(
        'source "amazon-ebs" "x" {\n  region = "us-east-1"\n  source_ami = "ami-12345678"\n'
        '  instance_type = "t2.micro"\n  ssh_username = "u"\n  ami_name = "name"\n}\n'
        'build {\n  sources = ["source.amazon-ebs.x"]\n'
        f'  provisioner "shell" {{\n    inline = [build.{key}]\n  }}\n}}\n'
    )
    assert problems_of(lambda: load_template(tmp_path / "t.pkr.hcl"))
