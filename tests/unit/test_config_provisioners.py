"""Provisioner and post-processor configs, the plugin registrations, and a property test that no
mutated config makes decode() raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amibake import registry
from amibake.config.base import CheckContext, PluginConfig, decode
from amibake.plugins.amazon.amazon_import.config import AmazonImportConfig
from amibake.plugins.amazon.config import EbsConfig
from amibake.postprocessors.checksum.config import ChecksumConfig
from amibake.postprocessors.compress.config import CompressConfig
from amibake.postprocessors.manifest.config import ManifestConfig
from amibake.postprocessors.shell_local.config import ShellLocalPostProcessorConfig
from amibake.provisioners.ansible.config import AnsibleConfig
from amibake.provisioners.ansible_local.config import AnsibleLocalConfig
from amibake.provisioners.file.config import FileConfig
from amibake.provisioners.powershell.config import PowershellConfig
from amibake.provisioners.shell.config import ShellConfig
from amibake.provisioners.shell_local.config import ShellLocalConfig
from amibake.provisioners.windows_restart.config import WindowsRestartConfig


def ctx() -> CheckContext:
    return CheckContext(template_dir=Path("."), key_path="provisioners[0]")


def msgs(cls: type[PluginConfig], raw: dict[str, Any]) -> list[str]:
    _, problems, _ = decode(cls, raw, ctx())
    return [p.message for p in problems]


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "s.sh").write_text("echo hi\n")
    monkeypatch.chdir(tmp_path)
    return "s.sh"


SHELL_CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"inline": ["echo hi"]}, None),
    ({"inline": "echo hi"}, None),
    ({}, "Either a script file or inline script must be specified."),
    ({"inline": []}, "Either a script file or inline script must be specified."),
    ({"script": "s.sh"}, None),
    ({"scripts": ["s.sh", "s.sh"]}, None),
    ({"script": "s.sh", "scripts": ["s.sh"]}, "Only one of script or scripts can be specified."),
    (
        {"script": "s.sh", "inline": ["x"]},
        "Only a script file or an inline script can be specified, not both.",
    ),
    ({"script": "missing.sh"}, "Bad script 'missing.sh': stat missing.sh: no such file or directory"),
    ({"inline": ["x"], "environment_vars": ["A=1", "B="]}, None),
    ({"inline": ["x"], "environment_vars": ["A"]}, "Environment variable not in format 'key=value': A"),
    ({"inline": ["x"], "environment_vars": ["=1"]}, "Environment variable not in format 'key=value': =1"),
    ({"inline": ["x"], "valid_exit_codes": "0,2"}, None),
    ({"inline": ["x"], "expect_disconnect": "true", "start_retry_timeout": "10m", "pause_after": "5s"}, None),
]


@pytest.mark.parametrize(("raw", "expected"), SHELL_CASES)
def test_shell(script: str, raw: dict[str, Any], expected: str | None) -> None:
    problems = msgs(ShellConfig, raw)
    if expected is None:
        assert problems == []
    else:
        assert expected in problems


def test_shell_defaults(script: str) -> None:
    cfg, _, _ = decode(ShellConfig, {"inline": "echo hi", "valid_exit_codes": "0,2"}, ctx())
    assert cfg is not None
    assert cfg.inline == ["echo hi"]
    assert cfg.valid_exit_codes == [0, 2]
    assert cfg.inline_shebang == "/bin/sh -e"
    assert cfg.remote_folder == "/tmp"
    assert cfg.start_retry_timeout == 300.0
    assert cfg.effective_execute_command == "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
    assert cfg.effective_env_var_format == "%s='%s' "
    cfg, _, _ = decode(ShellConfig, {"script": "s.sh", "use_env_var_file": True}, ctx())
    assert cfg is not None and cfg.all_scripts == ["s.sh"]
    assert cfg.effective_execute_command == "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"command": "echo hi"}, None),
        ({"inline": ["a", "b"]}, None),
        ({"script": "s.sh"}, None),
        ({}, "Command, Inline, Script and Scripts options cannot all be empty."),
        ({"command": "x", "inline": ["y"]}, "You may only specify one of the following options"),
        ({"script": "s.sh", "scripts": ["s.sh"]}, "You may only specify one of the following options"),
        ({"inline": ["x"], "only_on": ["linux", "beos"]}, "Invalid OS specified in only_on: 'beos'"),
        ({"inline": ["x"], "use_linux_pathing": True}, "Packer is unable to use the Command and Inline"),
        ({"inline": ["x"], "execute_command": ["bash", "-c", "{{.Vars}} {{.Script}}"]}, None),
    ],
)
def test_shell_local(script: str, raw: dict[str, Any], expected: str | None) -> None:
    for cls in (ShellLocalConfig, ShellLocalPostProcessorConfig):
        problems = msgs(cls, raw)
        assert problems == [] if expected is None else any(expected in p for p in problems), problems


def test_shell_local_pp_execute_command() -> None:
    cfg, _, _ = decode(
        ShellLocalPostProcessorConfig, {"inline": ["x"], "execute_command": "bash {{.Script}}"}, ctx()
    )
    assert cfg is not None and cfg.effective_execute_command == ["sh", "-c", "bash {{.Script}}"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"source": "s.sh", "destination": "/tmp/s.sh"}, None),
        ({"sources": ["s.sh", "s.sh"], "destination": "/tmp/"}, None),
        ({"content": "hello", "destination": "/tmp/x"}, None),
        ({"source": "s.sh"}, "Destination must be specified."),
        (
            {"source": "nope", "destination": "/tmp/x"},
            "Bad source 'nope': stat nope: no such file or directory",
        ),
        ({"source": "nope", "destination": "/tmp/x", "generated": True}, None),
        ({"source": "/remote", "destination": "local", "direction": "download"}, None),
        (
            {"source": "s.sh", "destination": "x", "direction": "sideways"},
            "Direction must be one of: download, upload.",
        ),
        ({"source": "s.sh", "content": "x", "destination": "/tmp/x"}, "source(s) conflicts with content."),
    ],
)
def test_file(script: str, raw: dict[str, Any], expected: str | None) -> None:
    problems = msgs(FileConfig, raw)
    assert problems == [] if expected is None else expected in problems, problems


def test_file_defaults(script: str) -> None:
    cfg, _, _ = decode(FileConfig, {"source": "s.sh", "sources": ["s.sh"], "destination": "/tmp"}, ctx())
    assert cfg is not None and cfg.direction == "upload" and cfg.all_sources == ["s.sh", "s.sh"]


def test_powershell_and_windows_restart() -> None:
    assert msgs(PowershellConfig, {"inline": ["Write-Host hi"]}) == []
    assert "Must supply an 'elevated_user' if 'elevated_password' provided" in msgs(
        PowershellConfig, {"inline": ["x"], "elevated_password": "p"}
    )
    assert any("invalid Trace level" in m for m in msgs(PowershellConfig, {"inline": ["x"], "debug_mode": 3}))
    cfg, problems, _ = decode(WindowsRestartConfig, {"restart_timeout": "15m"}, ctx())
    assert problems == [] and cfg is not None and cfg.restart_timeout == 900.0


def test_ansible(script: str) -> None:
    assert msgs(AnsibleConfig, {}) == ["playbook_file must be specified."]
    assert msgs(AnsibleConfig, {"playbook_file": "s.sh", "extra_arguments": ["-v"], "use_proxy": False}) == []
    assert msgs(AnsibleConfig, {"playbook_file": "p.yml"}) == [
        "playbook_file: p.yml is invalid: stat p.yml: no such file or directory"
    ]
    assert msgs(AnsibleLocalConfig, {"playbook_file": "s.sh", "playbook_files": ["s.sh"]})[0].startswith(
        "Either playbook_file or playbook_files can be specified, not both"
    )
    assert msgs(AnsibleLocalConfig, {"playbook_file": "s.sh", "playbook_dir": "s.sh"}) == [
        "playbook_dir: s.sh must point to a directory"
    ]


def test_post_processors() -> None:
    cfg, problems, _ = decode(ManifestConfig, {"strip_path": "true"}, ctx())
    assert problems == [] and cfg is not None and cfg.output == "packer-manifest.json" and cfg.strip_path
    cfg2, problems, _ = decode(ChecksumConfig, {}, ctx())
    assert problems == [] and cfg2 is not None and cfg2.checksum_types == ["md5"]
    assert msgs(ChecksumConfig, {"checksum_types": "sha256,crc"}) == ["Unrecognized checksum type: crc"]
    cfg3, problems, _ = decode(CompressConfig, {"output": "out.tar.gz", "compression_level": "20"}, ctx())
    assert problems == [] and cfg3 is not None and cfg3.effective_level == 9
    assert msgs(AmazonImportConfig, {}) == ["s3_bucket_name must be set"]
    cfg4, problems, _ = decode(AmazonImportConfig, {"s3_bucket_name": "b", "region": "us-east-1"}, ctx())
    assert problems == [] and cfg4 is not None and cfg4.effective_boot_mode == "legacy-bios"
    assert "invalid format 'iso'. Only 'ova', 'raw', 'vhd', 'vhdx', or 'vmdk' are allowed" in msgs(
        AmazonImportConfig, {"s3_bucket_name": "b", "format": "iso"}
    )
    assert "invalid platform '', 'platform' must be set for 'uefi' image imports" in msgs(
        AmazonImportConfig, {"s3_bucket_name": "b", "architecture": "arm64"}
    )


@pytest.mark.parametrize(("over", "expected"), [
    ({"boot_mode": "bios"}, [("boot_mode", "invalid boot mode \"bios\", valid values are either 'uefi', "
                                           "'legacy-bios' or 'uefi-preferred'"),
                             ("boot_mode", "invalid boot mode 'bios'. Only 'uefi' and 'legacy-bios' are "
                                           "allowed")]),
    ({"boot_mode": "uefi-preferred", "platform": "linux"},
     [("boot_mode", "invalid boot mode 'uefi-preferred'. Only 'uefi' and 'legacy-bios' are allowed")]),
    ({"format": "iso"}, [("format", "invalid format 'iso'. Only 'ova', 'raw', 'vhd', 'vhdx', or 'vmdk' are "
                                    "allowed")]),
    ({"platform": "bsd"}, [("platform", "invalid platform 'bsd'. Only 'linux' and 'windows' are allowed")]),
    ({"boot_mode": "uefi"}, [("platform", "invalid platform '', 'platform' must be set for 'uefi' image "
                                          "imports")]),
    ({"s3_encryption": "SSE"}, [("s3_encryption", "invalid s3 encryption format 'SSE'. Only 'AES256' and "
                                                  "'aws:kms' are allowed")]),
    ({"architecture": "arm64", "boot_mode": "legacy-bios"},
     [("boot_mode", "invalid boot mode 'legacy-bios' for 'arm64' architecture")]),
    ({"imds_support": "v1"}, [("imds_support", 'The only valid imds_support values are "v2.0" or the empty '
                                               "string")]),
    ({"boot_mode": "uefi", "platform": "windows", "architecture": "arm64", "imds_support": "v2.0",
      "s3_encryption": "aws:kms", "format": "vhdx"}, []),
])
def test_amazon_import_refusals(over: dict[str, str], expected: list[tuple[str, str]]) -> None:
    """Each of amazon-import's refusals (Packer's texts), alone, under the key it names."""
    _, problems, _ = decode(AmazonImportConfig, {"s3_bucket_name": "b", **over}, ctx())
    assert [((p.key or "").rsplit(".", 1)[-1], p.message) for p in problems] == expected


def test_registrations() -> None:
    assert registry.known("builder") == [
        "amazon-chroot",
        "amazon-ebs",
        "amazon-ebssurrogate",
        "amazon-ebsvolume",
        "amazon-instance",
        "amibake-local",
        "null",
    ]
    expected_prov = {
        "shell",
        "file",
        "shell-local",
        "breakpoint",
        "powershell",
        "windows-restart",
        "windows-shell",
        "ansible",
        "ansible-local",
    }
    assert expected_prov <= set(registry.known("provisioner"))
    assert {"manifest", "checksum", "compress", "shell-local", "amazon-import"} <= set(
        registry.known("post-processor")
    )
    for kind in ("builder", "provisioner", "post-processor"):
        for name in registry.known(kind):  # type: ignore[arg-type]
            spec = registry.lookup(kind, name)  # type: ignore[arg-type]
            assert spec is not None
            cls = spec.config_class()
            assert issubclass(cls, PluginConfig)
            cls.model_rebuild(force=True)  # every model builds
            for fname, info in cls.model_fields.items():
                assert info.description, f"{name}.{fname} has no description"
    assert registry.lookup("builder", "amazon-ebs").impl == "amibake.plugins.amazon.ebs:EbsBuilder"  # type: ignore[union-attr]


# -- property: mutated configs only ever produce problems ---------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["", "0", "1", "true", "1m", "300", "0x1f", "a,b", "auto"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_EBS_KEYS = sorted(EbsConfig.model_fields)
_BASE = {
    "ami_name": "x-1234",
    "instance_type": "t3.micro",
    "region": "us-east-1",
    "ssh_username": "u",
    "source_ami": "ami-1",
    "launch_block_device_mappings": [{"device_name": "/dev/xvda", "volume_size": 8}],
    "source_ami_filter": {"owners": ["self"], "filters": {"name": "x"}},
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*_EBS_KEYS, "bogus_key", "AMI_NAME"]), _values, max_size=6))
def test_mutated_ebs_config_never_raises(mutation: dict[str, Any]) -> None:
    raw = {**_BASE, **mutation}
    cfg, problems, warnings = decode(EbsConfig, raw, CheckContext(Path("."), "b", check_files=False))
    assert all(isinstance(w, str) for w in warnings)
    if cfg is None:
        assert problems


_PLUGIN_CLASSES = [
    ShellConfig,
    ShellLocalConfig,
    FileConfig,
    PowershellConfig,
    AnsibleConfig,
    ManifestConfig,
    ChecksumConfig,
    CompressConfig,
    AmazonImportConfig,
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_PLUGIN_CLASSES), st.dictionaries(st.text(max_size=10), _values, max_size=5))
def test_random_plugin_configs_never_raise(cls: type[PluginConfig], raw: dict[str, Any]) -> None:
    keys = sorted(cls.model_fields)
    raw = {keys[hash(k) % len(keys)] if k[:1] < "m" else k: v for k, v in raw.items()}
    cfg, problems, _ = decode(cls, raw, CheckContext(Path("."), "p", check_files=False))
    if cfg is None:
        assert problems
