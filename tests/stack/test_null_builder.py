"""The ``null`` builder and the ``artifice`` post-processor through ``amibake build``, as a user runs
them: over SSH to the stack's real sshd (the "instance" is this machine, reached on loopback), and
with ``communicator = "none"``. Also the run-wide facts every build shares: the rendered build name,
one ``PACKER_RUN_UUID`` and its places (build data, shell-local's environment, the manifest)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.stackkit import Stack, amibake_exe

pytestmark = pytest.mark.stack


def amibake(args: list[str], tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AMIBAKE_STATE_DIR": str(tmp_path / "state"), "AMIBAKE_NO_SERVER": "1"}
    return subprocess.run(
        [amibake_exe(), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture
def remote_dir() -> Iterator[str]:
    """A directory the provisioners create on the "instance" (this machine, through sshd)."""
    path = f"/tmp/amibake-null-{uuid.uuid4().hex[:10]}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "id_ed25519"
    path.write_text(asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode())
    path.chmod(0o600)
    return str(path)


def ssh_builder(stack: Stack, key_file: str, **extra: Any) -> dict[str, Any]:
    b = {
        "type": "null",
        "ssh_host": "127.0.0.1",
        "ssh_port": stack.sshd.port,
        "ssh_username": stack.sshd.user,
        "ssh_private_key_file": key_file,
        "ssh_timeout": "30s",
    }
    b.update(extra)
    return b


@pytest.mark.effect(
    "builder/null", "communicator", "ssh_host", "ssh_port", "ssh_username", "ssh_private_key_file"
)
@pytest.mark.effect("post-processor/manifest", "custom_data")
def test_null_builder_over_ssh_and_none(
    stack: Stack, tmp_path: Path, remote_dir: str, key_file: str
) -> None:
    data = "{{build_name}} {{build `ID`}} {{build `PackerRunUUID`}} {{build `Host`}} {{build `Port`}} " \
        "{{build `User`}} {{build `ConnType`}} {{build `PackerHTTPAddr`}}"
    template = {
        "variables": {"prefix": "web"},
        "builders": [
            ssh_builder(stack, key_file, name="{{user `prefix`}}-ssh"),
            {"type": "null", "name": "{{user `prefix`}}-none", "communicator": "none"},
        ],
        "provisioners": [
            {
                "type": "shell",
                "only": ["{{user `prefix`}}-ssh"],
                "inline": [f"mkdir -p {remote_dir}", f"echo \"$(whoami) {data}\" > {remote_dir}/out"],
            },
            {
                "type": "shell-local",
                "only": ["{{user `prefix`}}-none"],
                "inline": [f"echo \"$PACKER_RUN_UUID {data}\" > {tmp_path}/local-out"],
            },
        ],
        "post-processors": [
            {
                "type": "manifest",
                "output": "manifest.json",
                "custom_data": {"who": "{{build_name}}", "id": "{{build `ID`}}"},
            }
        ],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    res = amibake(["build", "-color=false", "-var", "prefix=api", "t.json"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    run_uuid = manifest["last_run_uuid"]
    assert uuid.UUID(run_uuid)
    builds = {b["name"]: b for b in manifest["builds"]}
    assert sorted(builds) == ["api-none", "api-ssh"]
    for name, b in builds.items():
        assert b["builder_type"] == "null" and b["artifact_id"] == "Null" and b["files"] is None
        assert b["packer_run_uuid"] == run_uuid
        assert b["custom_data"] == {"who": name, "id": "Null"}

    # the file the shell provisioner wrote on the "instance", as the SSH login user
    remote = Path(remote_dir, "out").read_text().split()
    assert remote == [
        stack.sshd.user, "api-ssh", "Null", run_uuid, "127.0.0.1", str(stack.sshd.port), stack.sshd.user,
        "ssh", "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
    ]
    # communicator "none": shell-local ran; PACKER_RUN_UUID in its environment is the run's
    local = (tmp_path / "local-out").read_text().split()
    assert local[:4] == [run_uuid, "api-none", "Null", run_uuid]

    out = res.stdout
    assert "==> api-ssh: Connected to SSH!" in out
    assert "--> api-ssh: Did not export anything. This is the null builder" in out
    assert "--> api-none: Did not export anything. This is the null builder" in out

    # -only names the rendered build
    res = amibake(["build", "-color=false", "-var", "prefix=api", "-only=api-none", "t.json"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "api-ssh" not in res.stdout and "--> api-none: Did not export" in res.stdout


@pytest.mark.effect("builder/null", "ssh_timeout", "ssh_wait_timeout")
@pytest.mark.parametrize("key", ["ssh_timeout", "ssh_wait_timeout"])
def test_null_builder_ssh_timeout(tmp_path: Path, stack: Stack, key_file: str, key: str) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = ssh_builder(stack, key_file, ssh_port=port)
    del b["ssh_timeout"]
    b[key] = "2s"  # the deprecated ssh_wait_timeout sets ssh_timeout
    template = {"builders": [b]}
    (tmp_path / "t.json").write_text(json.dumps(template))
    start = time.monotonic()
    res = amibake(["build", "-color=false", "t.json"], tmp_path)
    assert res.returncode == 1
    assert time.monotonic() - start < 20
    assert "timeout waiting for SSH" in res.stdout + res.stderr


@pytest.mark.effect("post-processor/artifice", "files")
def test_artifice_hands_files_to_checksum_and_manifest(tmp_path: Path) -> None:
    template = {
        "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [
            {"type": "shell-local", "inline": [
                f"mkdir -p {tmp_path}/out", f"printf one > {tmp_path}/out/a.txt",
                f"printf two > {tmp_path}/out/b.txt", f"printf no > {tmp_path}/out/c.log",
            ]}
        ],
        "post-processors": [[
            {"type": "artifice", "files": ["out/*.txt"]},
            {"type": "checksum", "checksum_types": ["sha256"], "output": "sums.txt"},
            {"type": "manifest", "output": "manifest.json", "strip_time": True},
        ]],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    res = amibake(["build", "-color=false", "t.json"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    sha = {n: hashlib.sha256(v).hexdigest() for n, v in (("a.txt", b"one"), ("b.txt", b"two"))}
    assert (tmp_path / "sums.txt").read_text() == f"{sha['a.txt']}\ta.txt\n{sha['b.txt']}\tb.txt\n"
    (build,) = json.loads((tmp_path / "manifest.json").read_text())["builds"]
    assert [f["name"] for f in build["files"]] == ["out/a.txt", "out/b.txt", "sums.txt"]
    assert [f["size"] for f in build["files"]][:2] == [3, 3]
    assert "Using these artifact files: out/a.txt, out/b.txt" in res.stdout
