"""The amazon configs' refusals with the key each is reported under (the file/line/key a user is
shown), not only their text. Written for the survivors of the config_* mutation sample
(docs/mutation.md); tests/unit/test_config_amazon.py checks the rules both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amibake.config.base import CheckContext, decode
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig
from tests.unit.test_config_amazon import BASE

AT = "source.amazon-ebs.x"
SPOT = (
    "Spot instances do not support modification, which is required when either `ena_support` or "
    "`sriov_support` are set. Please ensure you use an AMI that already has either SR-IOV or ENA enabled."
)
ROOT = {"source_device_name": "/dev/xvdf", "device_name": "/dev/xvda", "volume_size": 8, "volume_type": "gp2"}
SURROGATE = {"ami_virtualization_type": "hvm", "launch_block_device_mappings": [{"device_name": "/dev/xvdf"}]}


def problems(cls: type, **over: Any) -> list[tuple[str, str | None]]:
    _, found, _ = decode(cls, {**BASE, **over}, CheckContext(template_dir=Path("."), key_path=AT))
    return [(p.message, p.key) for p in found if "points to bad file" not in p.message]


def test_spot_with_ena_is_refused_at_spot_price() -> None:
    assert problems(EbsConfig, spot_price="auto", ena_support=True) == [(SPOT, f"{AT}.spot_price")]
    surrogate = problems(
        EbsSurrogateConfig, spot_price="auto", ena_support=True, ami_root_device=ROOT, **SURROGATE
    )
    assert surrogate == [(SPOT, f"{AT}.spot_price")]


def test_both_tenancies_are_refused_at_tenancy() -> None:
    assert problems(EbsConfig, tenancy="dedicated", placement={"tenancy": "default"}) == [
        ("Error: Please set only one of placement.tenancy and tenancy (deprecated)", f"{AT}.tenancy")
    ]


def test_amazon_instance_names_each_missing_option() -> None:
    files = {"x509_cert_path": "c", "x509_key_path": "k"}
    assert problems(InstanceConfig, s3_bucket="b", **files) == [
        ("account_id is required", f"{AT}.account_id")
    ]
    assert problems(InstanceConfig, account_id="1", **files) == [("s3_bucket is required", f"{AT}.s3_bucket")]


def test_a_gp2_root_device_with_iops_is_refused_at_ami_root_device() -> None:
    assert problems(EbsSurrogateConfig, ami_root_device={**ROOT, "iops": 100}, **SURROGATE) == [
        ("iops may not be specified for a gp2 volume", f"{AT}.ami_root_device")
    ]
    assert (
        problems(EbsSurrogateConfig, ami_root_device={**ROOT, "volume_type": "io1", "iops": 100}, **SURROGATE)
        == []
    )


def test_run_config_refusals_name_their_keys() -> None:
    assert problems(EbsConfig, spot_instance_types=["t3.micro"]) == [
        (
            "either instance_type or spot_instance_types must be specified, not both",
            f"{AT}.spot_instance_types",
        )
    ]
    assert problems(
        EbsConfig, spot_price="auto", instance_type="t2.micro", enable_unlimited_credits=True
    ) == [
        (
            "Error: Unlimited credits cannot be used in conjunction with Spot Instances",
            f"{AT}.enable_unlimited_credits",
        )
    ]
    assert problems(EbsConfig, spot_price="auto", enable_nitro_enclave=True) == [
        (
            "Error: Nitro Enclave cannot be used in conjunction with Spot Instances",
            f"{AT}.enable_nitro_enclave",
        ),
        (
            "Error: Nitro Enclaves cannot be used in conjunction with burstable instance types: t3.micro",
            f"{AT}.enable_nitro_enclave",
        ),
    ]


def test_fast_launch_problems_name_their_keys() -> None:
    refused = (
        '"fast_launch" is not supported by amibake yet: Windows fast launch (EnableFastLaunch) is not '
        "implemented yet",
        f"{AT}.fast_launch",
    )
    assert problems(EbsConfig, fast_launch={"max_parallel_launches": 3}) == [
        refused,
        (
            "max_parallel_launches must be >= 6, provided value is 3",
            f"{AT}.fast_launch.max_parallel_launches",
        ),
    ]
    assert problems(EbsConfig, fast_launch={"enable_fast_launch": True, "template_version": 2}) == [
        refused,
        (
            'fast_launch_template_config region "us-east-1": launch template version specified without an '
            "ID or name",
            f"{AT}.fast_launch.region_launch_templates[0]",
        ),
    ]
    named = {"enable_fast_launch": True, "template_version": 2, "template_name": "t"}
    assert problems(EbsConfig, fast_launch=named) == [refused]


def test_region_kms_key_ids_problems_name_their_keys() -> None:
    assert problems(EbsConfig, region_kms_key_ids={"us-west-2": "k"}) == [
        ("Region us-west-2 is in region_kms_key_ids but not in ami_regions", f"{AT}.region_kms_key_ids"),
        (
            "If you have set either region_kms_key_ids or kms_key_id, encrypt_boot must also be true.",
            f"{AT}.encrypt_boot",
        ),
        ('"k" is not a valid KMS Key Id.', f"{AT}.region_kms_key_ids"),
    ]
