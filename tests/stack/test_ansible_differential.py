"""Packer 1.6.6 and amibake build one JSON template with an ``ansible`` and an ``ansible-local``
provisioner (tests/stack/data/ansible/differential) against the same stack: the same files, with the
same content and owners, end up on the "instance", and the same end state in the emulator.

Packer 1.6.6's proxy adapter needs the usual workaround against this machine's OpenSSH and
ansible-core (it offers only ``ssh-rsa`` host keys, hashicorp/packer #11733, and its SFTP breaks):
``--ssh-extra-args "-o HostKeyAlgorithms=+ssh-rsa -o PubkeyAcceptedKeyTypes=+ssh-rsa"`` and
``ANSIBLE_SSH_TRANSFER_METHOD=scp`` with ``ANSIBLE_SCP_EXTRA_ARGS=-O``. The template carries them;
amibake accepts them (its own proxy needs none of them: tests/stack/test_ansible.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from amibake.communicator.ssh import SSHCommunicator
from tests.endstate import comparable, end_state, leftovers
from tests.stack.test_ansible import BIN, DATA, comm, files, remote_ansible  # noqa: F401  (comm: fixture)
from tests.stackkit import Stack

PACKER = shutil.which("packer")

pytestmark = [pytest.mark.stack, pytest.mark.packer]


@pytest.fixture(autouse=True)
def _packer_166() -> None:
    """Without Packer the comparison cannot run: a failure in CI, a skip elsewhere."""
    if PACKER is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("packer 1.6.6 not installed (required in CI)")
        pytest.skip("packer 1.6.6 not installed")


@pytest.fixture
def out_root() -> Iterator[str]:
    root = f"/tmp/amibake-e2e-{uuid.uuid4().hex[:10]}"
    yield root
    subprocess.run(["rm", "-rf", root], check=False)


def build(tool: str, stack: Stack, env: dict[str, str], work: Path, out_dir: str) -> str:
    args = ["build", "-color=false", f"-var=ec2_endpoint={env['AWS_ENDPOINT_URL']}",
            f"-var=ssh_port={stack.sshd.port}", f"-var=ssh_username={stack.sshd.user}",
            f"-var=out_dir={out_dir}", f"-var=ansible_playbook={BIN / 'ansible-playbook'}",
            f"-var=remote_ansible_playbook={remote_ansible('ansible-playbook')}", "ansible.json"]
    argv = [PACKER or "packer", *args] if tool == "packer" else [sys.executable, "-m", "amibake", *args]
    full_env = {**os.environ, **env, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1",
                "AWS_POLL_DELAY_SECONDS": "1", "AWS_MAX_ATTEMPTS": "60"}
    full_env.pop("AWS_ENDPOINT_URL", None)  # both tools get the endpoint from the template
    r = subprocess.run(argv, cwd=work, env=full_env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{tool}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_same_effects_as_packer(stack: Stack, aws_env: dict[str, str], tmp_path: Path, out_root: str,
                                comm: SSHCommunicator) -> None:  # noqa: F811
    shutil.copytree(DATA / "differential", tmp_path, dirs_exist_ok=True)
    effects, states = {}, {}
    for tool in ("packer", "amibake"):
        stack.moto.reset()
        out = build(tool, stack, aws_env, tmp_path, f"{out_root}/{tool}")
        assert "Provisioning with Ansible..." in out and "PLAY RECAP" in out, out
        effects[tool] = files(comm, f"{out_root}/{tool}")
        state = end_state(aws_env, ("us-east-1",))
        assert leftovers(state) == {}, tool
        states[tool] = comparable(state)
    user = stack.sshd.user
    assert effects["amibake"] == effects["packer"] == {
        f"{kind}-{name}": value
        for kind in ("local", "remote")
        for name, value in (("info.txt", (user, f"build=ans builder=amazon-ebs user={user}")),
                            ("root.txt", ("root", "written with become")),
                            ("handler.txt", (user, "handler ran")))
    }
    assert states["amibake"] == states["packer"]
