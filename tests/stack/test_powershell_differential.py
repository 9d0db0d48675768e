"""Differential: the Windows provisioners of amibake and of Packer 1.6.6 against the same WinRM emulation.

Packer runs a ``null`` build with the WinRM communicator and five provisioners (powershell inline with
environment variables, powershell script with valid_exit_codes, elevated powershell, windows-restart with
the emulation rebooting, windows-shell); amibake runs the same provisioner blocks over its WinRM
communicator. The commands the emulation received are compared, in order, with the communicator's own
(upload chunks and restore scripts, connect check) left out and only the random parts (uuids) normalised;
so are the files the provisioners uploaded (scripts, env var files, elevated wrapper, cleanup scripts).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amibake.communicator.winrm import connect
from amibake.communicator.winrm_settings import WinRMSettings
from amibake.provisioners.powershell.config import PowershellConfig
from amibake.provisioners.powershell.provisioner import PowershellProvisioner
from amibake.provisioners.windows_restart.config import WindowsRestartConfig
from amibake.provisioners.windows_restart.provisioner import WindowsRestartProvisioner
from amibake.provisioners.windows_shell.config import WindowsShellConfig
from amibake.provisioners.windows_shell.provisioner import WindowsShellProvisioner
from tests.unit.test_provisioners_local import RecordingUi, make_env
from tests.winrm_emulation import Recorded, WinRMEmulator

pytestmark = [pytest.mark.stack, pytest.mark.packer]

PACKER = shutil.which("packer")
PASSWORD = "Winrm-Pa55!"
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _in_ci() -> bool:
    """As tests/conftest.py: ``CI`` set to any true value (1, true, yes; any case)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def _packer_166() -> None:
    """Without Packer the comparison cannot run: a failure in CI, a skip elsewhere."""
    if PACKER is None:
        if _in_ci():
            pytest.fail("packer 1.6.6 not installed (required in CI)")
        pytest.skip("packer 1.6.6 not installed")


def provisioners(script: Path) -> list[dict[str, Any]]:
    return [
        {"type": "powershell", "inline": ["Write-Output $env:ROLE", "Get-Date"],
         "environment_vars": ["ROLE=web $1 \"x\""]},
        {"type": "powershell", "script": str(script), "valid_exit_codes": [0, 3010]},
        {"type": "powershell", "inline": ["whoami"], "elevated_user": "Administrator",
         "elevated_password": "El3vated-$ecret", "execution_policy": "remotesigned"},
        {"type": "windows-restart", "restart_timeout": "1m"},
        {"type": "windows-shell", "inline": ["echo after %ROLE%"], "environment_vars": ["ROLE=db"]},
    ]


def configure(emu: WinRMEmulator) -> None:
    emu.respond(r'shutdown /r /f /t 0 /c "packer restart"', reboot=2.0)
    emu.respond(r"restarted\.", stdout="WIN-EMU restarted.\r\n")
    emu.respond(r"exit \$LastExitCode", stdout="ran\r\n")
    emu.respond(r"&'c:/Windows/Temp/script-[0-9a-f-]+\.ps1'.*" , stdout="ran\r\n")


@pytest.fixture
def emulators() -> Iterator[tuple[WinRMEmulator, WinRMEmulator]]:
    with WinRMEmulator(username="Administrator", password=PASSWORD) as a, \
            WinRMEmulator(username="Administrator", password=PASSWORD) as b:
        configure(a)
        configure(b)
        yield a, b


def _communicator_own(record: Recorded) -> bool:
    """The communicator's commands: winrmcp-style upload chunks, restore/cleanup of their temp file,
    the connect check."""
    if re.match(r'^echo [A-Za-z0-9+/=]+ >> "', record.command_line.strip()):
        return True
    script = record.script or ""
    return "$tmp_file_path" in script or script.rstrip().endswith('echo "WinRM connected."')


def normalised(emu: WinRMEmulator) -> tuple[list[str], list[tuple[str, str]]]:
    """(the provisioners' command lines, sorted (uploaded path, content) pairs) with uuids as <uuid>;
    Vagrant's test restart and its abort are left out (whether they reach the instance before it goes
    down is a race, for Packer as for amibake)."""
    racy = ('shutdown /r /f /t 60 /c "packer restart test"', "shutdown /a")
    lines = [UUID.sub("<uuid>", r.command_line) for r in emu.commands if not _communicator_own(r)]
    files = sorted((UUID.sub("<uuid>", path.replace("/", "\\").lower()),
                    UUID.sub("<uuid>", data.decode("utf-8", "replace"))) for path, data in emu.files.items())
    return [line for line in lines if line not in racy], files


def run_packer(emu: WinRMEmulator, work: Path, script: Path) -> subprocess.CompletedProcess[str]:
    template = {
        "builders": [{"type": "null", "communicator": "winrm", "winrm_host": "127.0.0.1",
                      "winrm_port": emu.port, "winrm_username": "Administrator", "winrm_password": PASSWORD,
                      "winrm_timeout": "1m"}],
        "provisioners": provisioners(script),
    }
    (work / "t.json").write_text(json.dumps(template, indent=2))
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1", "PACKER_CONFIG_DIR": str(work),
           "HOME": str(work), "TMPDIR": str(work)}
    return subprocess.run([PACKER or "packer", "build", "-color=false", "t.json"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)


def run_amibake(emu: WinRMEmulator, script: Path) -> RecordingUi:
    comm = connect(WinRMSettings(host="127.0.0.1", port=emu.port, username="Administrator", password=PASSWORD,
                                 timeout=60))
    ui = RecordingUi()
    env = make_env(ui, build_name="null", builder_type="null")
    kinds = {"powershell": (PowershellConfig, PowershellProvisioner),
             "windows-restart": (WindowsRestartConfig, WindowsRestartProvisioner),
             "windows-shell": (WindowsShellConfig, WindowsShellProvisioner)}
    try:
        for block in provisioners(script):
            options = {k: v for k, v in block.items() if k != "type"}
            config_cls, impl = kinds[block["type"]]
            impl(config_cls(**options), env).provision(comm, {"WinRMPassword": PASSWORD})
    finally:
        comm.close()
    return ui


def test_same_commands_and_files_as_packer(emulators: tuple[WinRMEmulator, WinRMEmulator],
                                           tmp_path: Path) -> None:
    packer_emu, amibake_emu = emulators
    script = tmp_path / "setup.ps1"
    script.write_bytes(b"Install-WindowsFeature Web-Server\r\nexit 0\r\n")
    r = run_packer(packer_emu, tmp_path, script)
    assert r.returncode == 0, r.stdout + r.stderr
    ui = run_amibake(amibake_emu, script)
    packer_lines, packer_files = normalised(packer_emu)
    amibake_lines, amibake_files = normalised(amibake_emu)
    assert packer_emu.reboots == amibake_emu.reboots == 1
    assert amibake_lines == packer_lines
    assert amibake_files == packer_files
    # the same output lines as Packer showed (its ui lines are "    null: <text>")
    shown = [line.split("null: ", 1)[1] for line in r.stdout.splitlines() if line.startswith("    null: ")]
    assert [m for m in ui.of("message") if m] == [m for m in shown if m and "WinRM connected." not in m]
