"""The shell and file provisioners over the SSH communicator, against the stack's real sshd."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from amibake.communicator.ssh import SSHCommunicator, SSHSettings, connect
from amibake.errors import BuildError
from amibake.provisioners.file.config import FileConfig
from amibake.provisioners.file.provisioner import FileProvisioner
from amibake.provisioners.shell.config import ShellConfig
from amibake.provisioners.shell.provisioner import ExitCodeError, ShellProvisioner
from tests.stackkit import Stack
from tests.unit.test_provisioners_local import RecordingUi, make_env

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def comm(stack: Stack) -> Iterator[SSHCommunicator]:
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    c = connect(SSHSettings(host="127.0.0.1", port=stack.sshd.port, username=stack.sshd.user,
                            private_key_pem=key, timeout=20))
    yield c
    c.close()


@pytest.fixture
def remote_dir(comm: SSHCommunicator) -> Iterator[str]:
    out: list[str] = []
    assert comm.run("mktemp -d /tmp/amibake-prov.XXXXXX", stdout=out.append) == 0
    yield out[0]
    comm.run(f"rm -rf {out[0]}")


def remote_lines(comm: SSHCommunicator, command: str) -> list[str]:
    out: list[str] = []
    assert comm.run(command, stdout=out.append) == 0
    return out


@pytest.mark.effect("provisioner/shell", "inline", "environment_vars", "env", "remote_folder")
def test_shell_inline_over_ssh(comm: SSHCommunicator, remote_dir: str) -> None:
    ui = RecordingUi()
    config = ShellConfig(
        inline=['echo "hello $FOO from $(whoami)"', "echo warn >&2", 'echo "$PACKER_BUILD_NAME/$BAR"'],
        environment_vars=["FOO=it's quoted"],
        env={"BAR": "$HOME not expanded"},
        remote_folder=remote_dir,
    )
    prov = ShellProvisioner(config, make_env(ui, build_name="basic", builder_type="amazon-ebs"))
    prov.provision(comm, {})
    assert ui.of("message") == ["hello it's quoted from amibuild", "basic/$HOME not expanded"]
    assert ui.of("error") == ["warn"]
    assert ui.of("say")[0].startswith("Provisioning with shell script: ")
    assert prov.remote_path.startswith(remote_dir + "/script_")
    assert remote_lines(comm, f"ls -A {remote_dir}") == []  # the script was removed


@pytest.mark.effect("provisioner/shell", "script", "remote_path", "skip_clean")
def test_shell_script_file_with_crlf_over_ssh(comm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_bytes(b"#!/bin/sh\r\nset -e\r\necho \"type=$PACKER_BUILDER_TYPE\"\r\n")
    ui = RecordingUi()
    config = ShellConfig(script=str(script), remote_path=f"{remote_dir}/run.sh", skip_clean=True)
    ShellProvisioner(config, make_env(ui)).provision(comm, {})
    assert ui.of("message") == ["type=iso"]
    assert remote_lines(comm, f"stat -c %a {remote_dir}/run.sh") == ["755"]


def test_shell_failure_over_ssh(comm: SSHCommunicator, remote_dir: str) -> None:
    config = ShellConfig(inline=["echo before", "exit 3"], remote_folder=remote_dir)
    ui = RecordingUi()
    with pytest.raises(ExitCodeError) as info:
        ShellProvisioner(config, make_env(ui)).provision(comm, {})
    assert str(info.value) == "Script exited with non-zero exit status: 3.Allowed exit codes are: [0]"
    assert ui.of("message") == ["before"]


def test_shell_env_var_file_over_ssh(comm: SSHCommunicator, remote_dir: str) -> None:
    ui = RecordingUi()
    config = ShellConfig(inline=['echo "[$A]"'], environment_vars=["A=x y 'z'"], use_env_var_file=True,
                         remote_folder=remote_dir)
    ShellProvisioner(config, make_env(ui)).provision(comm, {})
    assert ui.of("message") == ["[x y 'z']"]
    assert remote_lines(comm, f"ls -A {remote_dir}") == []


@pytest.mark.effect("provisioner/shell", "inline_shebang", "env_var_format", "remote_folder", "remote_file",
                    "skip_clean")
def test_shell_shebang_var_format_and_remote_file_over_ssh(comm: SSHCommunicator, remote_dir: str) -> None:
    ui = RecordingUi()
    config = ShellConfig(
        inline=['echo "$FOO|${BASH_VERSION:+bash}"'],
        inline_shebang="/bin/bash -e",
        environment_vars=["FOO=bar"],
        env_var_format="%s='%s-formatted' ",
        remote_folder=remote_dir,
        remote_file="named.sh",
        skip_clean=True,
    )
    ShellProvisioner(config, make_env(ui)).provision(comm, {})
    assert ui.of("message") == ["bar-formatted|bash"]
    assert remote_lines(comm, f"head -1 {remote_dir}/named.sh") == ["#!/bin/bash -e"]


@pytest.mark.effect("provisioner/file", "source", "destination", "content")
def test_file_upload_file_and_trees_over_ssh(comm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    hello = tmp_path / "hello.txt"
    hello.write_text("hello world\n")
    os.chmod(hello, 0o640)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "top.txt").write_text("top")
    (tree / "sub" / "deep.txt").write_text("deep")
    ui = RecordingUi()
    env = make_env(ui)
    FileProvisioner(FileConfig(source=str(hello), destination=f"{remote_dir}/"), env).provision(comm, {})
    FileProvisioner(FileConfig(source=str(hello), destination=f"{remote_dir}/renamed.txt"), env).provision(
        comm, {}
    )
    comm.run(f"mkdir {remote_dir}/itself {remote_dir}/contents")
    FileProvisioner(FileConfig(source=str(tree), destination=f"{remote_dir}/itself"), env).provision(comm, {})
    FileProvisioner(FileConfig(source=f"{tree}/", destination=f"{remote_dir}/contents"), env).provision(
        comm, {}
    )
    FileProvisioner(FileConfig(content="made of content", destination=f"{remote_dir}/c.txt"), env).provision(
        comm, {}
    )
    assert ui.of("say")[:2] == [
        f"Uploading {hello} => {remote_dir}/",
        f"Uploading {hello} => {remote_dir}/renamed.txt",
    ]
    assert remote_lines(comm, f"cat {remote_dir}/hello.txt {remote_dir}/renamed.txt") == ["hello world"] * 2
    assert remote_lines(comm, f"stat -c %a {remote_dir}/hello.txt") == ["640"]
    found = remote_lines(comm, f"cd {remote_dir} && find itself contents -type f | sort")
    assert found == [
        "contents/sub/deep.txt", "contents/top.txt", "itself/tree/sub/deep.txt", "itself/tree/top.txt"
    ]
    assert remote_lines(comm, f"cat {remote_dir}/c.txt; echo") == ["made of content"]


@pytest.mark.effect("provisioner/file", "direction", "source", "destination")
def test_file_download_over_ssh(comm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    comm.run(f"mkdir -p {remote_dir}/d/sub && echo one > {remote_dir}/d/sub/one && echo f > {remote_dir}/f")
    ui = RecordingUi()
    env = make_env(ui)
    out = tmp_path / "out"
    FileProvisioner(
        FileConfig(source=f"{remote_dir}/f", destination=f"{out}/", direction="download"), env
    ).provision(comm, {})
    FileProvisioner(
        FileConfig(source=f"{remote_dir}/f", destination=f"{out}/x/renamed", direction="download"), env
    ).provision(comm, {})
    FileProvisioner(
        FileConfig(source=f"{remote_dir}/d/", destination=f"{out}/", direction="download"), env
    ).provision(comm, {})
    assert (out / "f").read_text() == "f\n"
    assert (out / "x" / "renamed").read_text() == "f\n"
    assert (out / "d" / "sub" / "one").read_text() == "one\n"
    assert ui.of("say")[0] == f"Downloading {remote_dir}/f => {out}/f"


# The script kills the sshd process serving its own connection (the first ``sshd`` above it), as a
# reboot would drop the connection; the communicator reconnects for the clean-up.
KILL_OWN_SSHD = r"""
echo before
p=$$
while [ "$p" -gt 1 ]; do
  case "$(cat /proc/$p/comm)" in sshd*) kill -9 "$p"; sleep 5; exit 0;; esac
  p=$(awk '{print $4}' /proc/$p/stat)
done
exit 1
"""


@pytest.fixture
def own_comm(stack: Stack) -> Iterator[SSHCommunicator]:
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    c = connect(SSHSettings(host="127.0.0.1", port=stack.sshd.port, username=stack.sshd.user,
                            private_key_pem=key, timeout=20))
    yield c
    c.close()


@pytest.mark.effect("provisioner/shell", "expect_disconnect")
@pytest.mark.parametrize("expect", [True, False])
def test_shell_disconnect_over_ssh(own_comm: SSHCommunicator, remote_dir: str, expect: bool) -> None:
    ui = RecordingUi()
    config = ShellConfig(inline=[KILL_OWN_SSHD], remote_folder=remote_dir, expect_disconnect=expect)
    prov = ShellProvisioner(config, make_env(ui))
    if expect:
        prov.provision(own_comm, {})
        assert remote_lines(own_comm, f"ls -A {remote_dir}") == []  # cleaned up after reconnecting
    else:
        with pytest.raises(BuildError, match="Script disconnected unexpectedly"):
            prov.provision(own_comm, {})
    assert ui.of("message") == ["before"]
