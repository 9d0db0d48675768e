"""The WS-Man emulation against the real client: Packer 1.6.6's WinRM communicator (masterzen/winrm and
packer-community/winrmcp) connects to tests/winrm_emulation.py, uploads a file and runs a command; and
amibake's communicator sends the same commands for the same connect and upload (uuids and base64
chunks aside), so the emulator is checked against Packer and amibake against the emulator."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from amibake.communicator.winrm import connect
from amibake.communicator.winrm_settings import WinRMSettings
from tests.winrm_emulation import Recorded, WinRMEmulator

PACKER = shutil.which("packer")
PASSWORD = "Packer-Win-Pa55"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


pytestmark = [pytest.mark.stack, pytest.mark.packer]


def shape(c: Recorded) -> str:
    """A command with what differs between runs blanked: uuids, and the base64 of an upload chunk."""
    if c.script is not None:
        return "powershell: " + UUID.sub("<uuid>", c.script)
    return UUID.sub("<uuid>", re.sub(r"^echo [A-Za-z0-9+/=]+ >>", "echo <base64> >>", c.command_line))


def test_packer_connects_uploads_and_runs_and_amibake_sends_the_same(tmp_path: Path) -> None:
    content = b"uploaded by packer\r\n" * 600  # two winrmcp chunks
    (tmp_path / "up.txt").write_bytes(content)
    template = {
        "builders": [{"type": "null", "communicator": "winrm", "winrm_host": "127.0.0.1",
                      "winrm_username": "Administrator", "winrm_password": PASSWORD, "winrm_timeout": "60s",
                      "winrm_port": 0}],
        "provisioners": [{"type": "file", "source": "up.txt", "destination": "C:\\app\\up.txt"},
                         {"type": "windows-shell", "inline": ["ipconfig"]}],
    }
    with WinRMEmulator("Administrator", PASSWORD) as emu:
        emu.respond(r"script\.bat\"$", stdout="Windows IP Configuration\r\n")
        template["builders"][0]["winrm_port"] = emu.port
        (tmp_path / "t.json").write_text(json.dumps(template))
        env = {**os.environ, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1", "HOME": str(tmp_path)}
        res = subprocess.run([PACKER or "packer", "build", "-color=false", "t.json"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
        packer = list(emu.commands)
    out = res.stdout
    for line in ("==> null: Using winrm communicator to connect: 127.0.0.1",
                 "==> null: Waiting for WinRM to become available...", "    null: WinRM connected.",
                 "==> null: Connected to WinRM!", "    null: Windows IP Configuration"):
        assert line in out, out
    assert emu.files["C:\\app\\up.txt"] == content
    assert emu.files["c:\\Windows\\Temp\\script.bat"] == b"ipconfig\n"
    assert packer[-1].command_line.endswith('"c:/Windows/Temp/script.bat"')
    assert emu.auth_failures == 0

    # amibake's communicator, same connect and same upload, on a fresh "instance"
    with WinRMEmulator("Administrator", PASSWORD) as emu2:
        comm = connect(WinRMSettings(host="127.0.0.1", port=emu2.port, username="Administrator",
                                     password=PASSWORD, timeout=30))
        comm.upload("C:\\app\\up.txt", tmp_path / "up.txt")
        comm.close()
        ours = list(emu2.commands)
        assert emu2.files["C:\\app\\up.txt"] == content
    # Packer may run its connect check more than once (it retries after a pause); the rest is the upload
    checks = [c for c in packer if c.script is not None and "WinRM connected." in c.script]
    packer_upload = [shape(c) for c in packer[len(checks):len(checks) + len(ours) - 1]]
    assert [shape(c) for c in ours] == [shape(checks[0]), *packer_upload]
    # three chunks of base64 for 12,000 bytes (winrmcp's 5,958-byte chunks), then the restore and cleanup
    assert [s.split(" >>")[0] for s in packer_upload[:-2]] == ["echo <base64>"] * 3


def test_packer_authenticates_with_ntlm(tmp_path: Path) -> None:
    """winrm_use_ntlm: Packer's masterzen/winrm (go-ntlmssp, no message encryption) logs in to the
    emulation with NTLM when Basic is off, as amibake's communicator does (tests/unit)."""
    (tmp_path / "up.txt").write_bytes(b"over ntlm\r\n")
    with WinRMEmulator("Administrator", PASSWORD, ntlm=True, basic=False) as emu:
        template = {"builders": [{"type": "null", "communicator": "winrm", "winrm_host": "127.0.0.1",
                                  "winrm_port": emu.port, "winrm_username": "Administrator",
                                  "winrm_password": PASSWORD, "winrm_timeout": "60s",
                                  "winrm_use_ntlm": True}],
                    "provisioners": [{"type": "file", "source": "up.txt", "destination": "C:\\up.txt"}]}
        (tmp_path / "t.json").write_text(json.dumps(template))
        env = {**os.environ, "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1", "HOME": str(tmp_path)}
        res = subprocess.run([PACKER or "packer", "build", "-color=false", "t.json"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stdout + res.stderr
        assert emu.ntlm_logins >= 1 and emu.ntlm_refused == [] and emu.auth_failures == 0
        assert emu.files["C:\\up.txt"] == b"over ntlm\r\n"
