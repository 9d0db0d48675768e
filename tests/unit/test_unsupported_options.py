"""Options a config declares but amibake does not carry out (``PluginConfig.unsupported``) are
refused by ``validate`` and ``build``: file, line and key named, the value never shown.

The plugins' real lists are checked by ``test_option_effects.py``; here a list is set on a config
class for the test, so the mechanism is proven whatever the lists hold today."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from amibake.cli.main import cli
from amibake.config.base import CheckContext, decode, unsupported_options
from amibake.plugins.amazon.amazon_import.config import AmazonImportConfig
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.postprocessors.manifest.config import ManifestConfig
from amibake.provisioners.common import ShellCommon
from amibake.provisioners.shell.config import ShellConfig

CANARY = "hunter2-canary-value"


def builder() -> dict[str, Any]:
    return {
        "type": "amazon-ebs",
        "region": "us-east-1",
        "source_ami": "ami-12345678",
        "instance_type": "t2.micro",
        "ssh_username": "u",
        "ami_name": "amibake-test",
    }


def cli_run(*args: str) -> tuple[int, str]:
    from amibake.cli import commands  # noqa: F401  (registers the verbs)

    res = CliRunner().invoke(cli, list(args))
    return res.exit_code, res.output


def test_mro_lists_are_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ShellCommon, "unsupported", {"env": "mixin reason", "script": "old"})
    monkeypatch.setattr(ShellConfig, "unsupported", {"script": "subclass reason"})
    assert unsupported_options(ShellConfig) == {"env": "mixin reason", "script": "subclass reason"}


def test_default_value_is_accepted_and_other_values_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ShellConfig, "unsupported", {"skip_clean": "a reason"})
    ctx = CheckContext(template_dir=Path("."), key_path="provisioners[0]", check_files=False)
    for raw in ({}, {"skip_clean": False}, {"skip_clean": "false"}):
        _, problems, _ = decode(ShellConfig, {"inline": ["true"], **raw}, ctx)
        assert problems == [], raw
    _, problems, _ = decode(ShellConfig, {"inline": ["true"], "Skip_Clean": "1"}, ctx)
    assert [(p.key, p.message) for p in problems] == [
        ("provisioners[0].skip_clean", '"skip_clean" is not supported by amibake yet: a reason')
    ]


@pytest.mark.parametrize("shape", ["map", "list"])
def test_nested_key_in_a_block_given_as_map_or_list(monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    monkeypatch.setattr(AccessConfig, "unsupported", {"assume_role.policy": "not yet"})
    ctx = CheckContext(template_dir=Path("."), key_path="data.x", check_files=False)
    block: Any = {"role_arn": "arn:aws:iam::123456789012:role/r", "policy": CANARY}
    raw = {"s3_bucket_name": "b", "assume_role": block if shape == "map" else [block]}
    _, problems, _ = decode(AmazonImportConfig, raw, ctx)
    assert [p.message for p in problems] == ['"assume_role.policy" is not supported by amibake yet: not yet']
    assert problems[0].key == "data.x.assume_role.policy"
    assert CANARY not in str(problems[0])
    # the block without the refused key is accepted
    ok = {"s3_bucket_name": "b", "assume_role": {"role_arn": "r"}}
    _, problems, _ = decode(AmazonImportConfig, ok, ctx)
    assert problems == []


def test_validate_json_names_file_line_and_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ManifestConfig, "unsupported", {"custom_data": "the reason"})
    t = tmp_path / "t.json"
    doc = {"builders": [builder()], "post-processors": [{"type": "manifest", "custom_data": {"k": CANARY}}]}
    t.write_text(json.dumps(doc, indent=2))
    line = next(i for i, text in enumerate(t.read_text().splitlines(), 1) if '"custom_data"' in text)
    code, out = cli_run("validate", str(t))
    assert code == 1
    assert "ami_name" not in out  # the only problem is the refusal
    assert f"t.json:{line}:" in out
    assert 'post-processors[0].custom_data' in out
    assert '"custom_data" is not supported by amibake yet: the reason' in out
    assert CANARY not in out
    assert "Traceback" not in out


def test_validate_hcl_names_file_line_and_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ShellConfig, "unsupported", {"env": "the reason"})
    t = tmp_path / "t.pkr.hcl"
    t.write_text(
        'source "amazon-ebs" "a" {\n'
        '  region        = "us-east-1"\n'
        '  source_ami    = "ami-12345678"\n'
        '  instance_type = "t2.micro"\n'
        '  ssh_username  = "u"\n'
        '  ami_name      = "amibake-test"\n'
        "}\n"
        "build {\n"
        '  sources = ["source.amazon-ebs.a"]\n'
        '  provisioner "shell" {\n'
        '    inline = ["true"]\n'
        f'    env    = {{ TOKEN = "{CANARY}" }}\n'
        "  }\n"
        "}\n"
    )
    code, out = cli_run("validate", str(t))
    assert code == 1
    assert "t.pkr.hcl:12:" in out
    assert '"env" is not supported by amibake yet: the reason' in out
    assert CANARY not in out


def test_build_refuses_before_any_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing can be created: the endpoint is a closed port, the state directory stays empty."""
    monkeypatch.setattr(ShellConfig, "unsupported", {"pause_after": "the reason"})
    state = tmp_path / "state"
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(state))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AMIBAKE_NO_SERVER", "1")
    t = tmp_path / "t.json"
    shell = {"type": "shell", "inline": ["true"], "pause_after": "5s"}
    doc = {"builders": [builder()], "provisioners": [shell]}
    t.write_text(json.dumps(doc))
    code, out = cli_run("build", str(t))
    assert code == 1
    assert '"pause_after" is not supported by amibake yet' in out
    assert "t.json:" in out
    assert not state.exists() or not any(state.rglob("*"))
