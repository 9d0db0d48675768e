"""The local stack itself: moto answers EC2 over HTTP, reset empties it, sshd takes any key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack


def _ec2(env: dict[str, str]):  # type: ignore[no-untyped-def]
    return boto3.client(
        "ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def test_moto_counts_ec2_calls_and_reset_forgets(aws_env: dict[str, str], moto: MotoServer) -> None:
    ec2 = _ec2(aws_env)
    ec2.create_key_pair(KeyName="smoke")
    mark = moto.mark()
    ec2.describe_key_pairs()
    assert moto.ec2_actions() == ["CreateKeyPair", "DescribeKeyPairs"]
    assert moto.ec2_actions(since=mark) == ["DescribeKeyPairs"]
    assert moto.count_ec2_calls() == 2
    moto.reset()
    assert moto.count_ec2_calls() == 0
    assert ec2.describe_key_pairs()["KeyPairs"] == []


def test_moto_fixture_starts_clean(aws_env: dict[str, str], moto: MotoServer) -> None:
    # the previous test created a key pair; the fixture's reset removed it
    assert _ec2(aws_env).describe_key_pairs()["KeyPairs"] == []


def test_sshd_accepts_any_key(stack: Stack, tmp_path: Path) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out = subprocess.run(
        ["ssh", "-i", str(key), "-p", str(stack.sshd.port), "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
         f"{stack.sshd.user}@127.0.0.1", "id -un"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == stack.sshd.user


def test_cli_start_env_stop(tmp_path: Path) -> None:
    kit = str(Path(__file__).resolve().parents[1] / "stackkit.py")
    state = tmp_path / "st"
    pids: list[int] = []
    start = subprocess.run([sys.executable, kit, "start", "--state-dir", str(state)],
                           capture_output=True, text=True, timeout=90)
    try:
        assert start.returncode == 0, start.stderr
        exports = dict(line.removeprefix("export ").split("=", 1) for line in start.stdout.splitlines())
        assert exports["AWS_ACCESS_KEY_ID"] == "testing"
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert int(exports["AMIBAKE_SSH_PORT"]) > 0
        env = subprocess.run([sys.executable, kit, "env", "--state-dir", str(state)],
                             capture_output=True, text=True, timeout=30)
        assert env.stdout == start.stdout
        pids = [int((state / d / f"{d}.pid").read_text()) for d in ("moto", "sshd")]
        assert _ec2(exports).describe_key_pairs()["KeyPairs"] == []
    finally:
        stop = subprocess.run([sys.executable, kit, "stop", "--state-dir", str(state)],
                              capture_output=True, text=True, timeout=30)
    assert stop.returncode == 0, stop.stderr
    assert not (state / "moto" / "moto.pid").exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
