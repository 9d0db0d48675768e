"""The ``ansible`` and ``ansible-local`` provisioners through ``amibake build``, with real playbooks
(tests/stack/data/ansible) against the stack's sshd, and the proxy adapter's security.

The effects are read back over SSH: the files the playbooks wrote on the "instance", their content
and their owner (``become`` writes as root). The stack's instance is this machine's ``amibuild``
user; ``ansible-local`` runs the venv's ansible-playbook there with the system's Python 3 (a path
computed here, the product assumes nothing of the kind).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amibake.communicator.ssh import SSHCommunicator, SSHSettings, connect
from tests.endstate import end_state, leftovers
from tests.stack.test_build_cli import amibake, builder
from tests.stackkit import Stack

pytestmark = pytest.mark.stack

DATA = Path(__file__).parent / "data" / "ansible"
BIN = Path(sys.executable).parent


def remote_ansible(tool: str) -> str:
    """How the stack's login user runs the venv's ``tool``: /usr/bin/python3 with the venv's packages
    (the venv's own interpreter lives under root's home)."""
    purelib = sysconfig.get_paths()["purelib"]
    return f"PYTHONPATH={purelib} /usr/bin/python3 {BIN / tool}"


@pytest.fixture(scope="module")
def comm(stack: Stack) -> Iterator[SSHCommunicator]:
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    c = connect(SSHSettings(host="127.0.0.1", port=stack.sshd.port, username=stack.sshd.user,
                            private_key_pem=key, timeout=20))
    yield c
    c.close()


@pytest.fixture
def marker() -> Iterator[str]:
    tag = uuid.uuid4().hex[:10]
    yield f"/tmp/amibake-e2e-{tag}"
    subprocess.run(f"rm -rf /tmp/amibake-e2e-{tag}*", shell=True, check=False)


def remote(comm: SSHCommunicator, command: str) -> str:
    lines: list[str] = []
    status = comm.run(command, stdout=lines.append, stderr=lines.append)
    assert status == 0, (command, lines)
    return "\n".join(lines)


def files(comm: SSHCommunicator, directory: str) -> dict[str, tuple[str, str]]:
    """``name -> (owner, content)`` of each file in the remote ``directory``."""
    out = remote(comm, f"cd {directory} && for f in *; do stat -c '%U' \"$f\"; cat \"$f\"; echo '@@'; done")
    result: dict[str, tuple[str, str]] = {}
    names = remote(comm, f"ls {directory}").split()
    for name, chunk in zip(names, out.split("\n@@")):
        owner, _, content = chunk.strip("\n").partition("\n")
        result[name] = (owner, content)
    return result


def galaxy_role(where: Path) -> Path:
    """The greeter role as a tarball (what a galaxy requirements file can name with ``src:``)."""
    tarball = where / "greeter.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(DATA / "roles_src" / "greeter", arcname="greeter")
    tarball.chmod(0o644)
    return tarball


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.effect("provisioner/ansible", "playbook_file", "extra_arguments", "ansible_env_vars",
                    "ansible_ssh_extra_args", "ansible_proxy_key_type", "groups", "empty_groups",
                    "host_alias", "user", "local_port", "inventory_directory", "keep_inventory_file",
                    "galaxy_file", "roles_path", "use_sftp", "sftp_command")
@pytest.mark.effect("provisioner/ansible-local", "playbook_file", "playbook_files", "playbook_dir",
                    "playbook_paths", "role_paths", "group_vars", "host_vars", "inventory_file",
                    "inventory_groups", "galaxy_file", "galaxy_command", "extra_arguments",
                    "staging_directory", "clean_staging_directory", "command")
def test_ansible_through_the_proxy_and_ansible_local(
    stack: Stack, aws_env: dict[str, str], tmp_path: Path, marker: str, comm: SSHCommunicator
) -> None:
    out_dir, local_dir = f"{marker}-proxy", f"{marker}-local"
    staging, staging2 = f"{marker}-staging", f"{marker}-staging2"
    tarball = galaxy_role(tmp_path)
    (tmp_path / "requirements.yml").write_text(f"roles:\n  - name: greeter\n    src: {tarball}\n")
    # ansible-local: the galaxy tarball travels in playbook_dir (the instance cannot read tmp_path)
    pbdir = tmp_path / "pbdir"
    pbdir.mkdir()
    (pbdir / "local.j2").write_text((DATA / "local" / "dir" / "local.j2").read_text())
    galaxy_role(pbdir)
    (tmp_path / "local-requirements.yml").write_text(
        f"roles:\n  - name: greeter\n    src: {staging}/greeter.tar.gz\n")
    (tmp_path / "inv").mkdir()
    port = free_port()
    template: dict[str, Any] = {
        "variables": {"secret": "s3cr3t-ansible-canary"},
        "sensitive-variables": ["secret"],
        "builders": [builder(stack, "ans")],
        "provisioners": [
            {
                "type": "ansible",
                "playbook_file": str(DATA / "site.yml"),
                "user": "proxyuser",
                "ansible_proxy_key_type": "rsa",
                "host_alias": "stackhost",
                "groups": ["web", "db"],
                "empty_groups": ["empty"],
                "local_port": port,
                "inventory_directory": str(tmp_path / "inv"),
                "keep_inventory_file": True,
                "galaxy_file": str(tmp_path / "requirements.yml"),
                "roles_path": str(tmp_path / "roles"),
                "use_sftp": True,
                "sftp_command": f"sh -c 'touch {marker}-sftp-used; exec /usr/lib/sftp-server -e'",
                "ansible_env_vars": [f"ANSIBLE_ROLES_PATH={tmp_path / 'roles'}",
                                     "AMIBAKE_ANSIBLE_TEST=from-env"],
                "ansible_ssh_extra_args": ["-o IdentitiesOnly=yes",
                                           f"-o UserKnownHostsFile={tmp_path / 'known_hosts'}"],
                "extra_arguments": ["-e", f"out_dir={out_dir}", "-e", "secret_value={{user `secret`}}"],
            },
            {
                "type": "ansible-local",
                "command": remote_ansible("ansible-playbook"),
                "galaxy_command": remote_ansible("ansible-galaxy"),
                "playbook_file": str(DATA / "local" / "local.yml"),
                "playbook_dir": str(pbdir),
                "playbook_paths": [str(DATA / "local" / "extra")],
                "role_paths": [str(DATA / "local" / "roles" / "localrole")],
                "group_vars": str(DATA / "local" / "group_vars"),
                "inventory_groups": ["web"],
                "galaxy_file": str(tmp_path / "local-requirements.yml"),
                "staging_directory": staging,
                "extra_arguments": ["-e", f"out_dir={local_dir}"],
            },
            {
                "type": "ansible-local",
                "command": remote_ansible("ansible-playbook"),
                "playbook_files": [str(DATA / "local" / "extra" / "second.yml")],
                "inventory_file": str(DATA / "local" / "inventory.ini"),
                "host_vars": str(DATA / "local" / "host_vars"),
                "staging_directory": staging2,
                "clean_staging_directory": True,
                "extra_arguments": ["-e", f"out_dir={local_dir}", "-e", "extra_value=xyz",
                                    "--limit", "stackhost"],
            },
        ],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    r = amibake(["build", "-color=false", "t.json"], aws_env, tmp_path, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "==> ans: Provisioning with Ansible..." in out
    assert "    ans: Setting up proxy adapter for Ansible...." in out
    assert "    ans: PLAY RECAP" in out  # the playbook's output, with the build's prefix
    assert "s3cr3t-ansible-canary" not in out

    # ansible, through the proxy
    got = files(comm, out_dir)
    assert got["facts.txt"] == (stack.sshd.user, f"{stack.sshd.user} Linux")
    assert got["role.txt"] == (stack.sshd.user, "greeter role")  # from the galaxy requirements
    assert got["handler.txt"] == (stack.sshd.user, "handler ran")
    assert got["root.txt"] == ("root", "written with become")
    owner, info = got["info.txt"]
    assert owner == stack.sshd.user
    assert info.splitlines() == [
        "build=ans", "builder=amazon-ebs", "host=stackhost", "groups=db,web",
        "all_groups=all,db,empty,ungrouped,web", "secret=s3cr3t-ansible-canary", "env=from-env"]
    remote(comm, f"test -e {marker}-sftp-used")  # use_sftp: sftp_command served the transfers
    (inventory,) = (tmp_path / "inv").iterdir()  # kept, in inventory_directory
    assert inventory.name.startswith("packer-provisioner-ansible")
    line = inventory.read_text().splitlines()[0]
    alias, host, user, port_kv = line.split()
    assert (alias, host, user) == ("stackhost", "ansible_host=127.0.0.1", "ansible_user=proxyuser")
    assert port <= int(port_kv.removeprefix("ansible_port=")) < port + 10
    assert inventory.read_text().count("stackhost ansible_host") == 3  # the host, then [web] and [db]
    assert "[empty]" in inventory.read_text()
    # the proxy's host key (ansible_proxy_key_type) went to the known_hosts of ansible_ssh_extra_args
    assert " ssh-rsa " in (tmp_path / "known_hosts").read_text()

    # ansible-local
    got = files(comm, local_dir)
    assert got["local-role.txt"] == (stack.sshd.user, f"local role as {stack.sshd.user}")
    assert got["role.txt"] == (stack.sshd.user, "greeter role")
    assert got["local-handler.txt"] == (stack.sshd.user, "handler ran")
    assert got["local-root.txt"] == ("root", "written with become")
    assert got["local-info.txt"][1].splitlines() == [
        "build=ans", "builder=amazon-ebs", "groups=web", "from_group_vars=web group vars"]
    assert got["local-second.txt"][1] == "host=stackhost from_host_vars=stackhost host vars extra=xyz"
    remote(comm, f"test -f {staging}/playbooks/extra/second.yml && test -d {staging}/galaxy_roles/greeter")
    remote(comm, f"test ! -e {staging2}")  # clean_staging_directory
    assert leftovers(end_state(aws_env, ("us-east-1",))) == {}


@pytest.mark.effect("provisioner/ansible", "use_proxy", "inventory_file_template", "skip_version_check",
                    "command")
def test_ansible_straight_to_the_instance(
    stack: Stack, aws_env: dict[str, str], tmp_path: Path, marker: str, comm: SSHCommunicator
) -> None:
    """use_proxy = false: Ansible's own ssh reaches the instance's sshd with the build's key pair."""
    out_dir = f"{marker}-direct"
    (tmp_path / "roles").mkdir()
    with tarfile.open(galaxy_role(tmp_path)) as tar:
        tar.extractall(tmp_path / "roles", filter="data")
    template = {
        "builders": [builder(stack, "direct")],
        "provisioners": [{
            "type": "ansible",
            "use_proxy": False,
            "command": str(BIN / "ansible-playbook"),
            "skip_version_check": True,
            "playbook_file": str(DATA / "site.yml"),
            "inventory_file_template": "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} "
                                       "ansible_port={{ .Port }} via_template=yes\n",
            "ansible_env_vars": [f"ANSIBLE_ROLES_PATH={tmp_path / 'roles'}"],
            "ansible_ssh_extra_args": [f"-o UserKnownHostsFile={tmp_path / 'known_hosts'}"],
            "extra_arguments": ["-e", f"out_dir={out_dir}", "-vvv"],
        }],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    r = amibake(["build", "-color=false", "t.json"], aws_env, tmp_path, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Not using Proxy adapter for Ansible run:" in out
    assert "Setting up proxy adapter" not in out
    # Ansible connected to the sshd's own port, as the communicator's user
    assert f"ESTABLISH SSH CONNECTION FOR USER: {stack.sshd.user}" in out
    assert f"-o Port={stack.sshd.port}" in out or f"-p {stack.sshd.port}" in out or \
        f"'Port={stack.sshd.port}'" in out, out
    assert "via_template" not in (tmp_path / "known_hosts").read_text()
    assert "ssh-ed25519" in (tmp_path / "known_hosts").read_text()  # the sshd's key, not the proxy's
    got = files(comm, out_dir)
    assert got["role.txt"] == (stack.sshd.user, "greeter role")
    assert got["root.txt"] == ("root", "written with become")
    assert got["handler.txt"] == (stack.sshd.user, "handler ran")
    info = got["info.txt"][1].splitlines()
    assert info[:4] == ["build=direct", "builder=amazon-ebs", "host=default", "groups=ungrouped"]
    assert leftovers(end_state(aws_env, ("us-east-1",))) == {}


def test_failing_play_fails_the_build_and_leaves_nothing(
    stack: Stack, aws_env: dict[str, str], tmp_path: Path
) -> None:
    template = {
        "builders": [builder(stack, "failing")],
        "provisioners": [{"type": "ansible", "playbook_file": str(DATA / "fail.yml"),
                          "user": stack.sshd.user}],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    r = amibake(["build", "-color=false", "t.json"], aws_env, tmp_path, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "TASK [this task fails]" in out
    assert "Error executing Ansible: Non-zero exit status: exit status 2" in out
    assert "Build 'failing' errored after" in out
    state = end_state(aws_env, ("us-east-1",))
    assert leftovers(state) == {}
    assert state["us-east-1"]["images"] == []
    assert all(i["state"] == "terminated" for i in state["us-east-1"]["instances"])


def test_proxy_accepts_only_its_key_and_listens_on_loopback(comm: SSHCommunicator) -> None:
    from amibake.provisioners.ansible.adapter import Adapter

    adapter = Adapter(comm, "ansible-user")
    adapter.start()
    try:
        (sock,) = adapter._server.sockets
        assert sock.getsockname()[0] == "127.0.0.1"
        right = asyncssh.read_private_key(adapter.private_key_file)
        assert oct(Path(adapter.private_key_file).stat().st_mode & 0o777) == "0o600"
        wrong = asyncssh.generate_private_key("ecdsa-sha2-nistp256")

        async def attempt(user: str, key: asyncssh.SSHKey) -> str:
            async with asyncssh.connect("127.0.0.1", adapter.port, username=user, client_keys=[key],
                                        known_hosts=None, agent_path=None, password=None,
                                        preferred_auth="publickey") as conn:
                result = await conn.run("echo forwarded as $(id -un)", check=True)
                return str(result.stdout).strip()

        import asyncio

        assert asyncio.run(attempt("ansible-user", right)) == f"forwarded as {comm.settings.username}"
        for user, key in (("ansible-user", wrong), ("someone-else", right)):
            with pytest.raises(asyncssh.PermissionDenied):
                asyncio.run(attempt(user, key))
        # nothing answers on this machine's other addresses
        others = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        for address in others - {"127.0.0.1"}:
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, adapter.port))
    finally:
        key_file = adapter.private_key_file
        adapter.close()
    assert not Path(key_file).exists()
    with socket.socket() as s, pytest.raises(OSError):
        s.connect(("127.0.0.1", adapter.port))


def test_proxy_link_is_not_compressed(comm: SSHCommunicator, tmp_path: Path) -> None:
    """Ansible's ssh asks for compression (``-C``); on the loopback link to the proxy it would only cost
    CPU, so the proxy offers none and the session still works."""
    from amibake.provisioners.ansible.adapter import Adapter

    adapter = Adapter(comm, "ansible-user")
    adapter.start()
    try:
        r = subprocess.run(
            ["ssh", "-v", "-C", "-F", "none", "-i", adapter.private_key_file, "-o", "IdentitiesOnly=yes",
             "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
             "-o", "BatchMode=yes", "-p", str(adapter.port), "ansible-user@127.0.0.1", "echo over the proxy"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        adapter.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "over the proxy"
    kex = [line for line in r.stderr.splitlines() if "kex: " in line and "compression:" in line]
    assert len(kex) == 2, r.stderr  # client->server and server->client
    assert all(line.rstrip().endswith("compression: none") for line in kex), kex


def test_proxy_starts_the_next_sftp_command_ahead(comm: SSHCommunicator, marker: str,
                                                  tmp_path: Path) -> None:
    """After a first sftp session, the next one's ``sftp_command`` is already running when it is asked
    for; a session with another environment gets a fresh one; the adapter's close ends the one left."""
    from amibake.provisioners.ansible.adapter import Adapter

    log = f"{marker}-sftp.log"
    adapter = Adapter(comm, "ansible-user",
                      sftp_command=f"sh -c 'echo start >> {log}; /usr/lib/sftp-server -e; echo end >> {log}'")
    adapter.start()
    key = asyncssh.read_private_key(adapter.private_key_file)

    def count(word: str, want: int) -> int:
        deadline = time.monotonic() + 30
        while True:
            got = remote(comm, f"cat {log} 2>/dev/null || true").split().count(word)
            if got >= want or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    async def transfer(name: str, env: dict[str, str]) -> None:
        src = tmp_path / name
        src.write_text(f"{name} through the proxy\n")
        async with asyncssh.connect("127.0.0.1", adapter.port, username="ansible-user", client_keys=[key],
                                    known_hosts=None, agent_path=None, password=None) as conn, \
                conn.start_sftp_client(env=env) as sftp:
            await sftp.put(str(src), f"{marker}-{name}")

    import asyncio

    try:
        asyncio.run(transfer("one", {"LC_AMIBAKE": "a"}))
        assert count("start", 2) == 2  # its own, and one ahead
        asyncio.run(transfer("two", {"LC_AMIBAKE": "a"}))
        assert count("start", 3) == 3  # used the one ahead, started the next
        asyncio.run(transfer("three", {"LC_AMIBAKE": "b"}))
        assert count("start", 5) == 5  # another environment: a fresh one, and one ahead for it
    finally:
        adapter.close()
    assert count("end", 5) == 5  # all ended, the one left over included
    for name in ("one", "two", "three"):
        assert remote(comm, f"cat {marker}-{name}") == f"{name} through the proxy"
