"""The powershell, windows-shell and windows-restart provisioners over the WinRM communicator, against
the WS-Management emulation (tests/winrm_emulation.py): what reaches the "instance" (command lines,
uploaded files, the elevated task wrapper), exit codes, and a restart in the middle (the emulation
refuses connections for a while; the provisioner waits and the next one runs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from amibake.communicator.winrm import WinRMCommunicator, connect
from amibake.communicator.winrm_settings import WinRMSettings
from amibake.errors import BuildError
from amibake.provisioners.powershell.config import PowershellConfig
from amibake.provisioners.powershell.provisioner import PowershellProvisioner
from amibake.provisioners.windows_restart.config import WindowsRestartConfig
from amibake.provisioners.windows_restart.provisioner import (
    DEFAULT_RESTART_CHECK_COMMAND,
    WindowsRestartProvisioner,
)
from amibake.provisioners.windows_shell.config import WindowsShellConfig
from amibake.provisioners.windows_shell.provisioner import WindowsShellProvisioner
from tests.unit.test_provisioners_local import RecordingUi, make_env
from tests.winrm_emulation import WinRMEmulator

pytestmark = pytest.mark.stack

PASSWORD = "Winrm-Pa55!"
ELEVATED_PASSWORD = "El3vated-$ecret"
PROGRESS = ("& { if (Test-Path variable:global:ProgressPreference)"
            "{set-variable -name variable:global:ProgressPreference -value 'SilentlyContinue'};")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def emu() -> Iterator[WinRMEmulator]:
    with WinRMEmulator(username="Administrator", password=PASSWORD) as e:
        yield e


@pytest.fixture
def comm(emu: WinRMEmulator) -> Iterator[WinRMCommunicator]:
    c = connect(WinRMSettings(host="127.0.0.1", port=emu.port, username="Administrator", password=PASSWORD,
                              timeout=30))
    yield c
    c.close()


def provisioner_lines(emu: WinRMEmulator) -> list[str]:
    """The command lines the provisioners ran (not the communicator's upload and connect commands)."""
    return [line for line in emu.command_lines()
            if not line.startswith(("echo ", "powershell.exe -EncodedCommand"))
            or line == DEFAULT_RESTART_CHECK_COMMAND]


def win(path: str) -> str:
    return path.replace("/", "\\")


@pytest.mark.effect("provisioner/powershell", "inline", "script", "environment_vars", "remote_path",
                    "valid_exit_codes")
def test_powershell_inline_and_script_over_winrm(emu: WinRMEmulator, comm: WinRMCommunicator,
                                                 tmp_path: Path) -> None:
    script = tmp_path / "features.ps1"
    script.write_bytes(b"Install-WindowsFeature Web-Server\r\nexit 3010\r\n")
    emu.respond(r"&'C:/Windows/Temp/inline\.ps1'", stdout="inline ran\r\n")
    emu.respond(r"&'C:/Windows/Temp/features\.ps1'", stdout="feature installed\r\n", exit_code=3010)
    ui = RecordingUi()
    env = make_env(ui, build_name="win", builder_type="amazon-ebs")
    inline = PowershellProvisioner(PowershellConfig(inline=["Write-Output $env:ROLE"],
                                                    environment_vars=["ROLE=web $1"],
                                                    remote_path="C:/Windows/Temp/inline.ps1"), env)
    inline.provision(comm, {})
    scripted = PowershellProvisioner(PowershellConfig(script=str(script), valid_exit_codes=[0, 3010],
                                                      remote_path="C:/Windows/Temp/features.ps1"), env)
    scripted.provision(comm, {})

    def command(vars_path: str, path: str) -> str:
        return (f"powershell -executionpolicy bypass \"{PROGRESS}. {vars_path}; &'{path}'; "
                "exit $LastExitCode }\"")

    assert provisioner_lines(emu) == [
        command(inline.remote_env_var_path, "C:/Windows/Temp/inline.ps1"),
        command(inline.remote_env_var_path, inline.cleanup_path),
        command(scripted.remote_env_var_path, "C:/Windows/Temp/features.ps1"),
        command(scripted.remote_env_var_path, scripted.cleanup_path),
    ]
    assert emu.files[win(inline.remote_env_var_path)] == (
        b'$env:PACKER_BUILDER_TYPE="amazon-ebs"; $env:PACKER_BUILD_NAME="win"; $env:ROLE="web `$1"; ')
    assert emu.files["C:\\Windows\\Temp\\inline.ps1"] == b"Write-Output $env:ROLE\n"
    assert emu.files["C:\\Windows\\Temp\\features.ps1"] == script.read_bytes()
    assert emu.files[win(scripted.cleanup_path)].decode().splitlines() == [
        f"if (Test-Path {p}) {{Remove-Item {p}}}"
        for p in (scripted.remote_env_var_path, "C:/Windows/Temp/features.ps1", scripted.cleanup_path)]
    assert ui.of("message") == ["inline ran", "feature installed"]


def test_failing_powershell_script_over_winrm(emu: WinRMEmulator, comm: WinRMCommunicator) -> None:
    emu.respond(r"&'C:/Windows/Temp/fail\.ps1'", stderr="it broke\r\n", exit_code=7)
    ui = RecordingUi()
    config = PowershellConfig(inline=["throw 'x'"], remote_path="C:/Windows/Temp/fail.ps1")
    prov = PowershellProvisioner(config, make_env(ui))
    with pytest.raises(BuildError) as info:
        prov.provision(comm, {})
    assert str(info.value) == "Script exited with non-zero exit status: 7.Allowed exit codes are: [0]"
    assert ui.of("error") == ["it broke"]
    assert len(provisioner_lines(emu)) == 1  # no cleanup after a failure, as Packer


@pytest.mark.effect("provisioner/powershell", "elevated_user", "elevated_password")
def test_elevated_powershell_over_winrm(emu: WinRMEmulator, comm: WinRMCommunicator) -> None:
    emu.respond(r"packer-elevated-shell-", stdout="elevated output\r\n")
    ui = RecordingUi()
    env = make_env(ui)
    prov = PowershellProvisioner(PowershellConfig(inline=["whoami"], elevated_user="Administrator",
                                                  elevated_password=ELEVATED_PASSWORD,
                                                  remote_path="C:/Windows/Temp/elev.ps1"), env)
    prov.provision(comm, {})
    lines = provisioner_lines(emu)
    wrapper = re.fullmatch(rf'powershell -executionpolicy bypass -file '
                           rf'"(C:/Windows/Temp/packer-elevated-shell-{UUID}\.ps1)"', lines[0])
    assert wrapper is not None, lines
    text = emu.files[win(wrapper.group(1))].decode()
    task = re.search(rf'\$name = "(packer-{UUID})"', text)
    assert task is not None
    plain = (f"powershell -executionpolicy bypass \"{PROGRESS}. {prov.remote_env_var_path}; "
             f"&'C:/Windows/Temp/elev.ps1'; exit $LastExitCode }}\""
             f" > %SYSTEMROOT%/Temp/{task.group(1)}.out 2>&1")
    # Go's xml.EscapeText of the command (with the redirection Packer appends)
    inner = plain.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    inner = inner.replace("'", "&#39;")
    assert f"<Arguments>/c {inner}</Arguments>" in text
    assert "<UserId>Administrator</UserId>" in text
    assert '$password = "El3vated-`$ecret"' in text  # Packer's PowerShell escaping, on the instance only
    assert ui.of("message") == ["elevated output"]
    assert all(ELEVATED_PASSWORD not in m and "El3vated" not in m for _, m in ui.lines)
    assert ELEVATED_PASSWORD in env.secrets  # the build's output redacts it


@pytest.mark.effect("provisioner/windows-restart", "restart_timeout")
def test_restart_in_the_middle_over_winrm(emu: WinRMEmulator, comm: WinRMCommunicator) -> None:
    emu.respond(r'shutdown /r /f /t 0 /c "packer restart"', reboot=3.0)
    emu.respond(r"restarted\.", stdout="WIN-EMU restarted.\r\n")
    ui = RecordingUi()
    env = make_env(ui)
    restart = WindowsRestartProvisioner(WindowsRestartConfig(restart_timeout="1m"), env)
    restart.poll_delay = 0.5
    restart.provision(comm, {})
    WindowsShellProvisioner(WindowsShellConfig(inline=["echo after"]), env).provision(comm, {})
    assert emu.reboots == 1
    lines = provisioner_lines(emu)
    assert lines[0] == 'shutdown /r /f /t 0 /c "packer restart"'
    assert lines[-2] == DEFAULT_RESTART_CHECK_COMMAND
    assert lines[-1] == 'set "PACKER_BUILDER_TYPE=iso" && set "PACKER_BUILD_NAME=vmware" && ' \
        '"c:/Windows/Temp/script.bat"'
    assert emu.files["c:\\Windows\\Temp\\script.bat"] == b"echo after\n"
    assert ui.of("say")[:3] == ["Restarting Machine", "Waiting for machine to restart...",
                                "Machine successfully restarted, moving on"]
    assert "WIN-EMU restarted." in ui.of("message")
