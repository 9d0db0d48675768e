"""amibake-local's upload options (local/config.py): their checks, StartSnapshot's timeout in minutes, and
the options refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from amibake.config.base import CheckContext, decode
from amibake.plugins.amazon.local.config import LocalConfig

BASE = {"region": "us-east-1", "ami_name": "local-test"}


def _problems(tmp_path: Path, **over: object) -> list[str]:
    ctx = CheckContext(template_dir=tmp_path, key_path="source.amibake-local.x")
    _, problems, _ = decode(LocalConfig, {**BASE, **over}, ctx)
    return [str(p) for p in problems]


def test_defaults_are_valid(tmp_path: Path) -> None:
    assert _problems(tmp_path) == []


@pytest.mark.parametrize(("over", "text"), [
    ({"snapshot_upload_workers": 0}, "snapshot_upload_workers must be from 1 to 32"),
    ({"snapshot_upload_workers": 33}, "snapshot_upload_workers must be from 1 to 32"),
    ({"snapshot_timeout": "5m"}, "snapshot_timeout must be from 10m to 72h"),
    ({"snapshot_timeout": "73h"}, "snapshot_timeout must be from 10m to 72h"),
    ({"snapshot_kms_key_arn": "arn:aws:kms:us-east-1:1:key/k"}, "needs snapshot_encrypted = true"),
    ({"snapshot_encrypted": True, "snapshot_kms_key_arn": "alias/k"}, "must be a KMS key ARN"),
    ({"tpm_support": "v1.2"}, 'The only valid tpm_support value is "v2.0"'),
    ({"tpm_support": "v2.0", "boot_mode": "legacy-bios"}, 'tpm_support needs UEFI'),
    ({"encrypt_boot": True}, '"encrypt_boot" is not supported by amibake yet'),
    ({"force_delete_snapshot": True}, '"force_delete_snapshot" is not supported by amibake yet'),
    ({"ami_virtualization_type": "paravirtual"}, "its AMI is always hvm"),
])
def test_bad_options_are_refused_by_name(tmp_path: Path, over: dict[str, object], text: str) -> None:
    problems = _problems(tmp_path, **over)
    assert any(text in p for p in problems), problems


def test_timeout_minutes_round_up() -> None:
    assert LocalConfig.model_validate(BASE).timeout_minutes() == 0
    assert LocalConfig.model_validate({**BASE, "snapshot_timeout": "10m"}).timeout_minutes() == 10
    assert LocalConfig.model_validate({**BASE, "snapshot_timeout": "90m30s"}).timeout_minutes() == 91
