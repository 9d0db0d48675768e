"""``amibake build`` of a Windows amazon-ebs template over WinRM, as a user runs it: moto for EC2, the
WS-Management emulation (tests/winrm_emulation.py) as the instance. powershell inline and script with
environment variables and valid_exit_codes, elevated powershell, a windows-restart in the middle (the
emulation reboots; the build waits and goes on), windows-shell; a failing script fails the build and
leaves nothing. The WinRM and elevated passwords appear in no output and no debug log."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.endstate import end_state, leftovers
from tests.stackkit import MotoServer, Stack, amibake_exe
from tests.winrm_emulation import WinRMEmulator

pytestmark = pytest.mark.stack

WINRM_PASSWORD = "Winrm-Canary-Pa55"
ELEVATED_PASSWORD = "Elev-Canary-7x!"


@pytest.fixture
def windows() -> Iterator[WinRMEmulator]:
    with WinRMEmulator("Administrator", WINRM_PASSWORD) as emu:
        emu.respond(r'shutdown /r /f /t 0 /c "packer restart"', reboot=2.0)
        emu.respond(r"restarted\.", stdout="WIN-EMU restarted.\r\n")
        yield emu


def template(emu: WinRMEmulator, provisioners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "variables": {"winpass": ""},
        "sensitive-variables": ["winpass"],
        "builders": [{
            "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
            "instance_type": "t2.micro", "communicator": "winrm", "winrm_host": "127.0.0.1",
            "winrm_port": emu.port, "winrm_username": "Administrator", "winrm_password": "{{user `winpass`}}",
            "winrm_timeout": "60s", "ami_name": f"win-{uuid.uuid4().hex[:8]}",
        }],
        "provisioners": provisioners,
    }


def build(stack: Stack, work: Path, doc: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], str]:
    (work / "t.json").write_text(json.dumps(doc, indent=1))
    log = work / "debug.log"
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(work / "state"), "PACKER_LOG": "1",
           "PACKER_LOG_PATH": str(log), "AMIBAKE_NO_SERVER": "1"}
    argv = [amibake_exe(), "build", "-color=false", "-var", f"winpass={WINRM_PASSWORD}", "t.json"]
    r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    return r, log.read_text() if log.exists() else ""


def provisioner_lines(emu: WinRMEmulator) -> list[str]:
    """The command lines of the provisioners (not the communicator's upload chunks and scripts), without
    the test restart and its abort (whether they reach the instance before it goes down is a race)."""
    racy = ('shutdown /r /f /t 60 /c "packer restart test"', "shutdown /a")
    out = []
    for rec in emu.commands:
        script = rec.script or ""
        if rec.command_line.startswith("echo ") or "$tmp_file_path" in script or "WinRM connected." in script:
            continue
        if rec.command_line not in racy:
            out.append(rec.command_line)
    return out


@pytest.mark.effect("provisioner/powershell", "inline", "script", "environment_vars", "valid_exit_codes",
                    "elevated_user", "elevated_password")
@pytest.mark.effect("provisioner/windows-restart", "restart_timeout")
@pytest.mark.effect("provisioner/windows-shell", "inline")
def test_windows_build_over_winrm(stack: Stack, moto: MotoServer, windows: WinRMEmulator,
                                  tmp_path: Path) -> None:
    script = tmp_path / "features.ps1"
    script.write_bytes(b"Install-WindowsFeature Web-Server\r\n")
    windows.respond(r"&'C:/Windows/Temp/inline\.ps1'", stdout="inline ran\r\n")
    windows.respond(r"&'C:/Windows/Temp/features\.ps1'", stdout="needs a restart\r\n", exit_code=3010)
    # the elevated task's log, which Packer prints, happens to show the password: redacted
    windows.respond(r"packer-elevated-shell-", stdout=f"task ran with {ELEVATED_PASSWORD}\r\n")
    windows.respond(r'"c:/Windows/Temp/script\.bat"', stdout="after the restart\r\n")
    doc = template(windows, [
        {"type": "powershell", "inline": ["Write-Output $env:ROLE"], "environment_vars": ["ROLE=web"],
         "remote_path": "C:/Windows/Temp/inline.ps1"},
        {"type": "powershell", "script": str(script), "valid_exit_codes": [0, 3010],
         "remote_path": "C:/Windows/Temp/features.ps1"},
        {"type": "windows-restart", "restart_timeout": "1m"},
        {"type": "powershell", "inline": ["whoami"], "elevated_user": "Administrator",
         "elevated_password": ELEVATED_PASSWORD},
        {"type": "windows-shell", "inline": ["echo done"]},
    ])
    r, log = build(stack, tmp_path, doc)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = provisioner_lines(windows)
    assert windows.reboots == 1
    restart = lines.index('shutdown /r /f /t 0 /c "packer restart"')
    assert "&'C:/Windows/Temp/inline.ps1'" in lines[0] and "&'C:/Windows/Temp/features.ps1'" in lines[2]
    assert lines[restart + 1].startswith("powershell.exe -EncodedCommand")  # the check after the reboot
    assert lines[restart + 2].startswith('powershell -executionpolicy bypass -file "C:/Windows/Temp/packer-')
    assert lines[-1].endswith('"c:/Windows/Temp/script.bat"')
    assert windows.files["C:\\Windows\\Temp\\features.ps1"] == b"Install-WindowsFeature Web-Server\r\n"
    [wrapper] = [v for k, v in windows.files.items() if "packer-elevated-shell-" in k]
    assert f'$password = "{ELEVATED_PASSWORD}"'.encode() in wrapper  # on the instance, as Packer does
    for text in ("amazon-ebs: inline ran", "amazon-ebs: needs a restart",
                 "amazon-ebs: WIN-EMU restarted.", "amazon-ebs: Machine successfully restarted, moving on",
                 "amazon-ebs: task ran with <sensitive>", "amazon-ebs: after the restart"):
        assert text in r.stdout, r.stdout
    for channel in (r.stdout, r.stderr, log):
        assert WINRM_PASSWORD not in channel
        assert ELEVATED_PASSWORD not in channel
    assert log, "PACKER_LOG=1 wrote no debug log"
    state = end_state(stack.env(), regions=["us-east-1"])
    assert leftovers(state) == {}
    assert [img["name"] for img in state["us-east-1"]["images"]] == [doc["builders"][0]["ami_name"]]


def test_failing_script_fails_the_build_and_leaves_nothing(stack: Stack, moto: MotoServer,
                                                          windows: WinRMEmulator, tmp_path: Path) -> None:
    windows.respond(r"&'C:/Windows/Temp/fail\.ps1'", stderr="it broke\r\n", exit_code=7)
    doc = template(windows, [{"type": "powershell", "inline": ["throw 'x'"],
                              "remote_path": "C:/Windows/Temp/fail.ps1"}])
    r, _ = build(stack, tmp_path, doc)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Script exited with non-zero exit status: 7.Allowed exit codes are: [0]" in r.stderr + r.stdout
    assert "amazon-ebs: it broke" in r.stdout
    state = end_state(stack.env(), regions=["us-east-1"])
    assert leftovers(state) == {}
    assert not state["us-east-1"]["images"]
