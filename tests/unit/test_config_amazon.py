"""Cross-field rules of the amazon builder configs, each both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amibake.config.base import CheckContext, decode
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_ami import clean_resource_name, valid_kms_key
from amibake.plugins.amazon.config_chroot import ChrootConfig
from amibake.plugins.amazon.config_ebsvolume import EbsVolumeConfig
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig

BASE: dict[str, Any] = {
    "ami_name": "packer-example 1234",
    "instance_type": "t3.micro",
    "region": "us-east-1",
    "ssh_username": "ubuntu",
    "source_ami": "ami-0123456789abcdef0",
}
KMS = "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012"


def ctx() -> CheckContext:
    return CheckContext(template_dir=Path("."), key_path="source.amazon-ebs.x")


def ebs(**over: Any) -> tuple[EbsConfig | None, list[str], list[str]]:
    raw = {**BASE, **over}
    raw = {k: v for k, v in raw.items() if v is not ...}
    cfg, problems, warnings = decode(EbsConfig, raw, ctx())
    return cfg, [p.message for p in problems], warnings


def test_minimal_valid() -> None:
    cfg, problems, warnings = ebs()
    assert problems == [] and warnings == []
    assert cfg is not None
    assert cfg.max_retries == 10
    assert cfg.shutdown_behavior == "stop"
    assert cfg.windows_password_timeout == 1200.0
    assert cfg.metadata_options.http_tokens == "optional"
    assert cfg.metadata_options.http_put_response_hop_limit == 1
    assert cfg.source_cidrs == ["0.0.0.0/0"]
    assert cfg.encrypt_boot is None and cfg.ena_support is None
    assert cfg.capacity_reservation_preference == ""


def test_newer_options_accepted() -> None:
    cfg, problems, _ = ebs(
        metadata_options={"http_tokens": "required", "http_put_response_hop_limit": "2"},
        imds_support="v2.0",
        deprecate_at="2030-01-01T00:00:00Z",
        ami_org_arns=["arn:aws:organizations::1:organization/o-1"],
        ami_ou_arns="arn:aws:organizations::1:ou/o-1/ou-1",
        source_ami=...,
        source_ami_filter={"filters": {"name": "x"}, "owners": ["amazon"], "include_deprecated": "true"},
        skip_create_ami=True,
        snapshot_tags={"a": "b"},
        placement={"tenancy": "dedicated"},
        capacity_reservation_preference="open",
        deregistration_protection={"enabled": True, "with_cooldown": False},
        fast_launch={"enable_fast_launch": False},
        tag=[{"key": "k", "value": "v"}],
        tags={"a": "1"},
    )
    assert problems == []
    assert cfg is not None
    assert cfg.metadata_options.http_put_response_hop_limit == 2
    assert cfg.ami_ou_arns == ["arn:aws:organizations::1:ou/o-1/ou-1"]
    assert cfg.source_ami_filter.include_deprecated is True
    assert cfg.all_tags == {"a": "1", "k": "v"}
    assert cfg.effective_tenancy == "dedicated"


def test_hcl_block_shapes() -> None:
    cfg, problems, _ = ebs(
        source_ami=...,
        source_ami_filter=[{"filters": {"name": "x"}, "owners": "099720109477"}],
        launch_block_device_mappings={"device_name": "/dev/sda1", "volume_size": "20"},
        tags=[{"a": "1"}, {"b": "2"}],
    )
    assert problems == []
    assert cfg is not None
    assert cfg.source_ami_filter.owners == ["099720109477"]
    assert cfg.launch_block_device_mappings[0].volume_size == 20
    assert cfg.tags == {"a": "1", "b": "2"}


def test_nested_unknown_key_and_type() -> None:
    _, problems, _ = ebs(
        source_ami_filter={"ownrs": ["x"]},
        launch_block_device_mappings=[{"device_name": "/dev/sda1", "volume_size": "big"}],
        ami_nmae="x",
    )
    assert 'unknown configuration key: "ownrs"; did you mean "owners"?' in problems
    assert 'unknown configuration key: "ami_nmae"; did you mean "ami_name"?' in problems
    assert any(p.startswith("cannot parse as int") for p in problems)
    _, probs, _ = decode(EbsConfig, {**BASE, "launch_block_device_mappings": [{"volume_sise": 1}]}, ctx())
    assert probs[0].key == "source.amazon-ebs.x.launch_block_device_mappings[0].volume_sise"


NEEDS_SOURCE = "A source_ami or source_ami_filter must be specified"
NEEDS_OWNER = "For security reasons, your source AMI filter must declare an owner."
NAME_LEN = "ami_name must be between 3 and 128 characters long"

CASES: list[tuple[dict[str, Any], str | None]] = [
    ({"source_ami": ...}, NEEDS_SOURCE),
    ({"source_ami": ..., "source_ami_filter": {"filters": {"name": "x"}}}, NEEDS_OWNER),
    ({"source_ami": ..., "source_ami_filter": {"owners": ["self"]}}, None),
    ({"ami_name": ...}, "ami_name must be specified"),
    ({"ami_name": "ab"}, NAME_LEN),
    ({"ami_name": "a" * 129}, NAME_LEN),
    ({"ami_name": "a" * 128}, None),
    ({"ami_name": "bad:name"}, "AMIName should only contain"),
    ({"ami_name": "ok (name) [1] @x/y.z-w'_"}, None),
    ({"ssh_username": ...}, "An ssh_username must be specified"),
    ({"ssh_username": ..., "communicator": "none"}, None),
    # WinRM (carried out) and Session Manager: validated as Packer does
    ({"ssh_username": ..., "communicator": "winrm", "winrm_username": "Administrator"}, None),
    ({"ssh_username": ..., "communicator": "winrm"}, "winrm_username must be specified."),
    ({"communicator": "telnet"}, "Communicator type telnet is invalid"),
    ({"ssh_interface": "session_manager"}, "no iam_instance_profile defined"),
    ({"ssh_interface": "session_manager", "iam_instance_profile": "p"}, None),
    (
        {
            "ssh_interface": "session_manager",
            "temporary_iam_instance_profile_policy_document": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["logs:*"], "Resource": "*"}],
            },
        },
        None,
    ),
    ({"ssh_interface": "bogus"}, "Unknown interface type: bogus"),
    ({"kms_key_id": KMS}, "encrypt_boot must also be true"),
    ({"kms_key_id": KMS, "encrypt_boot": True}, None),
    ({"kms_key_id": "not a key!", "encrypt_boot": True}, '"not a key!" is not a valid KMS Key Id.'),
    (
        {"region_kms_key_ids": {"us-west-2": KMS}, "encrypt_boot": True},
        "is in region_kms_key_ids but not in ami_regions",
    ),
    (
        {
            "ami_regions": ["us-west-2", "eu-west-1"],
            "region_kms_key_ids": {"us-west-2": KMS},
            "encrypt_boot": True,
        },
        "Region eu-west-1 is in ami_regions but not in region_kms_key_ids",
    ),
    ({"ami_regions": ["us-west-2"], "region_kms_key_ids": {"us-west-2": KMS}, "encrypt_boot": True}, None),
    ({"ami_users": ["123"], "encrypt_boot": True}, "Cannot share AMI encrypted with default KMS key"),
    ({"ami_users": ["123"], "encrypt_boot": True, "kms_key_id": KMS}, None),
    (
        {"snapshot_users": ["123"], "encrypt_boot": True},
        "Cannot share snapshot encrypted with default KMS key",
    ),
    ({"imds_support": "v1"}, "The only valid imds_support values"),
    ({"deprecate_at": "tomorrow"}, "deprecate_at is not a valid time"),
    ({"deprecate_at": "2030-01-01T10:00:00+02:00"}, None),
    ({"instance_type": ...}, "either instance_type or spot_instance_types must be specified"),
    ({"spot_instance_types": ["t3.micro"]}, "must be specified, not both"),
    ({"instance_type": ..., "spot_instance_types": ["t3.micro"], "spot_price": "auto"}, None),
    ({"spot_tags": {"a": "b"}}, "spot_tags should not be set when not requesting a spot instance"),
    ({"spot_tags": {"a": "b"}, "spot_price": "auto"}, None),
    ({"fleet_tags": {"a": "b"}, "spot_price": "0"}, "fleet_tags should not be set"),
    ({"block_duration_minutes": 61}, "block_duration_minutes must be multiple of 60"),
    ({"spot_allocation_strategy": "cheap"}, 'invalid spot allocation strategy "cheap"'),
    ({"spot_allocation_strategy": "price-capacity-optimized"}, None),
    ({"user_data": "x", "user_data_file": "y"}, "Only one of user_data or user_data_file can be specified."),
    ({"user_data_file": "does/not/exist.sh"}, "user_data_file not found: does/not/exist.sh"),
    ({"security_group_id": "sg-1", "security_group_ids": ["sg-2"]}, "Only one of security_group_id"),
    ({"temporary_security_group_source_cidrs": ["10.0.0.0/8", "nope"]}, "Error parsing CIDR"),
    ({"shutdown_behavior": "halt"}, "shutdown_behavior only accepts 'stop' or 'terminate' values."),
    ({"shutdown_behavior": "terminate"}, None),
    ({"enable_unlimited_credits": True, "instance_type": "m5.large"}, "is not within the supported types"),
    ({"enable_unlimited_credits": True}, None),
    ({"capacity_reservation_id": "cr-1", "capacity_reservation_group_arn": "arn"}, "mutually exclusive"),
    ({"capacity_reservation_id": "cr-1", "capacity_reservation_preference": "open"}, "mutually exclusive"),
    ({"capacity_reservation_preference": "always"}, "only accepts 'none' or 'open' values"),
    ({"tenancy": "dedicated", "placement": {"tenancy": "host"}}, "Please set only one of placement.tenancy"),
    ({"tenancy": "shared"}, "Unknown tenancy type shared"),
    ({"placement": {"host_id": "h-1", "tenancy": "dedicated"}}, "The tenancy should be `host`"),
    ({"enable_nitro_enclave": True, "instance_type": "t3.large"}, "burstable instance types"),
    ({"metadata_options": {"http_tokens": "always"}}, "http_tokens requires either optional or required"),
    ({"metadata_options": {"http_put_response_hop_limit": 65}}, "between 1 and 64"),
    ({"metadata_options": {"http_endpoint": "on"}}, "http_endpoint requires"),
    ({"metadata_options": {"instance_metadata_tags": "on"}}, "instance_metadata_tags requires"),
    ({"temporary_key_pair_type": "dsa"}, "temporary_key_pair_type requires either rsa or ed25519"),
    ({"temporary_key_pair_type": "ed25519"}, None),
    ({"ssh_keypair_name": "k"}, "ssh_private_key_file must be provided or ssh_agent_auth enabled"),
    ({"ssh_keypair_name": "k", "ssh_agent_auth": True}, None),
    (
        {"ssh_private_key_file": "no/such/key"},
        "ssh_private_key_file is invalid: stat no/such/key: no such file",
    ),
    ({"ssh_certificate_file": "c"}, "ssh_private_key_file must be specified if ssh_certificate_file"),
    (
        {"ssh_bastion_host": "b"},
        "ssh_bastion_password, ssh_bastion_private_key_file or ssh_bastion_agent_auth",
    ),
    ({"ssh_bastion_host": "b", "ssh_bastion_password": "p"}, None),
    ({"ssh_bastion_host": "b", "ssh_bastion_password": "p", "ssh_proxy_host": "p"}, "not both"),
    ({"ssh_file_transfer_method": "ftp"}, "ssh_file_transfer_method ('ftp') is invalid"),
    ({"ssh_file_transfer_method": "sftp"}, None),
    ({"ssh_local_tunnels": ["8080:localhost:80"]}, None),
    ({"ssh_remote_tunnels": ["8080-localhost"]}, "ssh_remote_tunnels ('8080-localhost') is invalid"),
    ({"ssh_local_tunnels": ["x:localhost:80"]}, "Error parsing listening port"),
    ({"access_key": "AKIA"}, "`access_key` and `secret_key` must both be either set or not set."),
    ({"access_key": "AKIA", "secret_key": "s"}, None),
    ({"launch_block_device_mappings": [{"volume_size": 8}]}, "The `device_name` must be specified"),
    (
        {
            "launch_block_device_mappings": [
                {"device_name": "/dev/xvda", "kms_key_id": KMS, "encrypted": False}
            ]
        },
        "must also have `encrypted: true`",
    ),
    (
        {
            "ami_block_device_mappings": [
                {"device_name": "/dev/xvda", "volume_type": "io1", "volume_size": 10, "iops": 1000}
            ]
        },
        "maximum ratio of provisioned IOPS",
    ),
    (
        {"ami_block_device_mappings": [{"device_name": "/dev/xvda", "volume_type": "gp3", "iops": 20000}]},
        "IOPS must be between 3000 and 16000",
    ),
    (
        {
            "ami_block_device_mappings": [
                {"device_name": "/dev/xvda", "volume_type": "gp2", "throughput": 200}
            ]
        },
        "Throughput is only valid for gp3 volumes",
    ),
    (
        {
            "launch_block_device_mappings": [
                {
                    "device_name": "/dev/xvda",
                    "volume_type": "gp3",
                    "throughput": "500",
                    "iops": "4000",
                    "volume_size": 30,
                    "delete_on_termination": "true",
                }
            ]
        },
        None,
    ),
    ({"spot_price": "auto", "ena_support": True}, "Spot instances do not support modification"),
    ({"fast_launch": {"max_parallel_launches": 2}}, "max_parallel_launches must be >= 6"),
    (
        {"fast_launch": {"region_launch_templates": [{"region": "eu-west-1", "template_id": "lt-1"}]}},
        "but the AMI won't be copied there.",
    ),
]


@pytest.mark.parametrize(("over", "expected"), CASES)
def test_ebs_rules(over: dict[str, Any], expected: str | None) -> None:
    cfg, problems, _ = ebs(**over)
    if expected is None:
        assert problems == []
        assert cfg is not None
    else:
        assert any(expected in p for p in problems), problems


def test_files_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ud.sh").write_text("#!/bin/sh\n")
    monkeypatch.chdir(tmp_path)
    _, problems, _ = ebs(user_data_file="ud.sh")
    assert problems == []


def test_check_files_off() -> None:
    cfg, problems, _ = decode(
        EbsConfig, {**BASE, "user_data_file": "nope.sh"}, CheckContext(Path("."), "b", check_files=False)
    )
    assert problems == [] and cfg is not None


def test_warnings() -> None:
    _, _, warnings = ebs(
        spot_price_auto_product="Linux/UNIX", enable_t2_unlimited=True, instance_type="t2.micro"
    )
    assert any("spot_price_auto_product is deprecated" in w for w in warnings)
    assert any("enable_t2_unlimited is deprecated" in w for w in warnings)


def test_clean_resource_name_and_kms() -> None:
    assert clean_resource_name("a:b{c}d") == "a-b-c-d"
    assert clean_resource_name("ok-name_1.2 (x)") == "ok-name_1.2 (x)"
    assert valid_kms_key("alias/my-key")
    assert valid_kms_key("12345678-1234-1234-1234-123456789012")
    assert valid_kms_key("mrk-1234abcd")
    assert valid_kms_key(KMS)
    assert not valid_kms_key("arn:aws:kms:us-east-1:123:key/xyz")


def test_surrogate() -> None:
    raw = {
        **BASE,
        "ami_virtualization_type": "hvm",
        "ami_root_device": {"source_device_name": "/dev/xvdf", "device_name": "/dev/xvda", "volume_size": 8},
        "launch_block_device_mappings": [{"device_name": "/dev/xvdf", "volume_size": 8}],
    }
    cfg, problems, _ = decode(EbsSurrogateConfig, raw, ctx())
    assert problems == [] and cfg is not None and cfg.ami_architecture == "x86_64"
    bad = {
        **raw,
        "launch_block_device_mappings": [{"device_name": "/dev/xvdg", "omit_from_artifact": True}],
        "ami_architecture": "sparc",
        "uefi_data": "x",
        "boot_mode": "legacy-bios",
    }
    _, problems2, _ = decode(EbsSurrogateConfig, bad, ctx())
    msgs = [p.message for p in problems2]
    assert "no volume with name '/dev/xvdf' is found" in msgs
    assert any("The only valid ami_architecture values" in m for m in msgs)
    assert any("You can't use uefi_data" in m for m in msgs)


def test_ebsvolume() -> None:
    raw = {k: v for k, v in BASE.items() if k != "ami_name"}
    vols = [{"device_name": "/dev/xvdf", "volume_size": 1, "snapshot_description": "d", "tags": {"a": "b"}}]
    _, problems, _ = decode(EbsVolumeConfig, {**raw, "ebs_volumes": vols}, ctx())
    assert [p.message for p in problems] == [
        "All `ebs_volumes` blocks setting `snapshot_description` must also set `snapshot_volume`."
    ]
    vols[0]["snapshot_volume"] = True
    cfg, problems, _ = decode(EbsVolumeConfig, {**raw, "ebs_volumes": vols}, ctx())
    assert problems == [] and cfg is not None and cfg.ebs_volumes[0].all_tags == {"a": "b"}
    _, problems, _ = decode(EbsVolumeConfig, {**BASE}, ctx())
    assert problems[0].message == 'unknown configuration key: "ami_name"'


def test_chroot() -> None:
    raw = {"ami_name": "chroot-ami", "source_ami": "ami-1"}
    cfg, problems, _ = decode(ChrootConfig, raw, ctx())
    assert problems == [] and cfg is not None and cfg.mount_partition == "1"
    _, problems, _ = decode(
        ChrootConfig, {**raw, "from_scratch": True, "chroot_mounts": [["proc", "proc"]]}, ctx()
    )
    msgs = [p.message for p in problems]
    assert "Each chroot_mounts entry should be three elements." in msgs
    assert "root_volume_size is required with from_scratch." in msgs
    assert "pre_mount_commands is required with from_scratch." in msgs
    _, problems, _ = decode(ChrootConfig, {**raw, "root_device_name": "xvda"}, ctx())
    assert [p.message for p in problems] == [
        "If root_device_name is specified, ami_block_device_mappings must be specified"
    ]


def test_instance(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    raw = {
        **BASE,
        "account_id": "1",
        "s3_bucket": "b",
        "x509_cert_path": str(cert),
        "x509_key_path": "nokey.pem",
    }
    _, problems, _ = decode(InstanceConfig, raw, ctx())
    assert [p.message for p in problems] == [
        "x509_key_path points to bad file: stat nokey.pem: no such file or directory"
    ]
