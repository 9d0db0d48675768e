"""The powershell and windows-shell provisioners over the SSH communicator (what Windows OpenSSH gives),
against the stack's real sshd.

The sshd runs commands with /bin/sh, not cmd.exe, so each test puts a stand-in ``cmd`` (a POSIX sh
script in the test's remote temporary directory) in front of Packer's default execute_command, which
is handed over verbatim on the stand-in's stdin (a quoted here-document: no shell expansion). The
stand-in records its arguments and stdin and answers with a configured output and exit status; the
test then reads what reached the remote side: the command line as Packer would send it to cmd.exe,
and the uploaded script, env var file and cleanup script.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from amibake.communicator.ssh import SSHCommunicator, SSHSettings, connect
from amibake.errors import BuildError
from amibake.provisioners.powershell.config import PowershellConfig
from amibake.provisioners.powershell.provisioner import PowershellProvisioner
from amibake.provisioners.windows_shell.config import WindowsShellConfig
from amibake.provisioners.windows_shell.provisioner import WindowsShellProvisioner
from tests.stackkit import Stack
from tests.unit.test_provisioners_local import RecordingUi, make_env

pytestmark = pytest.mark.stack

#: Packer 1.6.6's default powershell execute_command, copied from its source (defaultExecuteCommand)
PACKER_PS_COMMAND = (
    "powershell -executionpolicy bypass \"& { if (Test-Path variable:global:ProgressPreference)"
    "{set-variable -name variable:global:ProgressPreference -value 'SilentlyContinue'};"
    ". {{.Vars}}; &'{{.Path}}'; exit $LastExitCode }\""
)
#: Packer 1.6.6's default windows-shell execute_command
PACKER_CMD_COMMAND = '{{.Vars}}"{{.Path}}"'

FAKE_CMD = """#!/bin/sh
# stand-in for cmd.exe: records its argv and stdin, prints the configured output, exits the code
d=$(dirname "$0")
{ printf 'argv:'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\\n'; cat; printf -- '---\\n'; } \\
  >> "$d/calls.log"
cat "$d/output" 2>/dev/null
exit "$(cat "$d/code" 2>/dev/null || echo 0)"
"""


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
    assert comm.run("mktemp -d /tmp/amibake-winprov.XXXXXX", stdout=out.append) == 0
    comm.upload(f"{out[0]}/cmd", FAKE_CMD.encode(), mode=0o755)
    yield out[0]
    comm.run(f"rm -rf {out[0]}")


def through_fake_cmd(remote_dir: str, packer_command: str) -> str:
    """An execute_command handing Packer's command line, verbatim, to the stand-in ``cmd``."""
    return f"{remote_dir}/cmd <<'AMIBAKE_CMD_LINE'\n{packer_command}\nAMIBAKE_CMD_LINE"


def read(comm: SSHCommunicator, path: str) -> bytes:
    buf = io.BytesIO()
    comm.download(path, buf)
    return buf.getvalue()


def calls(comm: SSHCommunicator, remote_dir: str) -> list[str]:
    """The command lines the stand-in received (argv is empty: the line came on stdin)."""
    text = read(comm, f"{remote_dir}/calls.log").decode()
    out = []
    for chunk in text.split("---\n")[:-1]:
        argv, _, stdin = chunk.partition("\n")
        assert argv == "argv:"
        out.append(stdin.removesuffix("\n"))
    return out


@pytest.mark.effect("provisioner/powershell", "inline", "environment_vars", "env", "execute_command",
                    "remote_path", "remote_env_var_path")
def test_powershell_inline_over_ssh(comm: SSHCommunicator, remote_dir: str) -> None:
    comm.upload(f"{remote_dir}/output", b"hello from powershell\r\n")
    ui = RecordingUi()
    config = PowershellConfig(
        inline=["Write-Host \"$env:GREETING\"", "exit 0"],
        environment_vars=["GREETING=it's $5 \"now\""],
        env={"ZED": "`z`"},
        remote_path=f"{remote_dir}/script.ps1",
        remote_env_var_path=f"{remote_dir}/env.ps1",
        execute_command=through_fake_cmd(remote_dir, PACKER_PS_COMMAND),
    )
    prov = PowershellProvisioner(config, make_env(ui, build_name="win", builder_type="amazon-ebs"))
    prov.cleanup_path = f"{remote_dir}/cleanup.ps1"  # Packer's fixed c:/Windows/Temp is not on this host
    prov.provision(comm, {})

    def line(path: str) -> str:
        return PACKER_PS_COMMAND.replace("{{.Vars}}", f"{remote_dir}/env.ps1").replace("{{.Path}}", path)

    assert calls(comm, remote_dir) == [line(f"{remote_dir}/script.ps1"), line(f"{remote_dir}/cleanup.ps1")]
    assert read(comm, f"{remote_dir}/env.ps1") == (
        b'$env:GREETING="it`\'s `$5 `"now`""; $env:PACKER_BUILDER_TYPE="amazon-ebs"; '
        b'$env:PACKER_BUILD_NAME="win"; $env:ZED="``z``"; '
    )
    assert read(comm, f"{remote_dir}/script.ps1") == b'Write-Host "$env:GREETING"\nexit 0\n'
    assert read(comm, f"{remote_dir}/cleanup.ps1") == "".join(
        f"if (Test-Path {p}) {{Remove-Item {p}}}\n"
        for p in (f"{remote_dir}/env.ps1", f"{remote_dir}/script.ps1", f"{remote_dir}/cleanup.ps1")
    ).encode()
    assert ui.of("message") == ["hello from powershell", "hello from powershell"]


@pytest.mark.effect("provisioner/powershell", "valid_exit_codes", "script")
def test_powershell_exit_codes_over_ssh(comm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    script = tmp_path / "setup.ps1"
    script.write_bytes(b"Install-WindowsFeature Web-Server\r\n")
    comm.upload(f"{remote_dir}/code", b"3\n")  # sh exit statuses are 8-bit

    def config(**kw: object) -> PowershellConfig:
        return PowershellConfig(script=str(script), remote_path=f"{remote_dir}/setup.ps1",
                                remote_env_var_path=f"{remote_dir}/env.ps1", skip_clean=True,
                                execute_command=through_fake_cmd(remote_dir, PACKER_PS_COMMAND), **kw)

    PowershellProvisioner(config(valid_exit_codes=[0, 3]), make_env(RecordingUi())).provision(comm, {})
    assert read(comm, f"{remote_dir}/setup.ps1") == b"Install-WindowsFeature Web-Server\r\n"
    with pytest.raises(BuildError) as info:
        PowershellProvisioner(config(), make_env(RecordingUi())).provision(comm, {})
    assert str(info.value) == "Script exited with non-zero exit status: 3.Allowed exit codes are: [0]"
    assert len(calls(comm, remote_dir)) == 2  # skip_clean: no cleanup command either time


@pytest.mark.effect("provisioner/windows-shell", "inline", "environment_vars", "execute_command",
                    "remote_path", "valid_exit_codes")
def test_windows_shell_over_ssh(comm: SSHCommunicator, remote_dir: str) -> None:
    comm.upload(f"{remote_dir}/output", b"C:\\> done\r\n")
    ui = RecordingUi()
    config = WindowsShellConfig(
        inline=["echo %FOO%", "exit /b 0"],
        environment_vars=["FOO=a & b"],
        remote_path=f"{remote_dir}/script.bat",
        execute_command=through_fake_cmd(remote_dir, PACKER_CMD_COMMAND),
    )
    env = make_env(ui, build_name="win", builder_type="amazon-ebs")
    WindowsShellProvisioner(config, env).provision(comm, {})
    assert calls(comm, remote_dir) == [
        f'set "FOO=a & b" && set "PACKER_BUILDER_TYPE=amazon-ebs" && set "PACKER_BUILD_NAME=win" && '
        f'"{remote_dir}/script.bat"'
    ]
    assert read(comm, f"{remote_dir}/script.bat") == b"echo %FOO%\nexit /b 0\n"
    assert ui.of("message") == ["C:\\> done"]
    comm.upload(f"{remote_dir}/code", b"1\n")
    with pytest.raises(BuildError, match="non-zero exit status: 1"):
        WindowsShellProvisioner(config, make_env(RecordingUi())).provision(comm, {})
