"""The windows-restart provisioner against a scripted communicator that goes down after the restart
command and comes back after a number of refused commands: the exact command sequence of Packer
1.6.6's provisioner/windows-restart."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from amibake.communicator.base import LineSink
from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.windows_restart.config import WindowsRestartConfig
from amibake.provisioners.windows_restart.provisioner import (
    ABORT_REBOOT,
    DEFAULT_REGISTRY_KEYS,
    DEFAULT_RESTART_CHECK_COMMAND,
    TRY_CHECK_REBOOT,
    WindowsRestartProvisioner,
)
from tests.unit.test_powershell import RecordingComm
from tests.unit.test_provisioners_local import RecordingUi, make_env

RESTART = 'shutdown /r /f /t 0 /c "packer restart"'


def decoded(command: str) -> str:
    """The script of a ``powershell.exe -EncodedCommand`` command."""
    prefix = "powershell.exe -EncodedCommand "
    assert command.startswith(prefix), command
    return base64.b64decode(command[len(prefix):]).decode("utf-16-le")


class RebootingComm(RecordingComm):
    """Refuses ``down`` commands after the restart command (the machine rebooting); answers the
    default check with ``HOST restarted.``; ``pending`` Test-Path checks answer True."""

    def __init__(self, down: int = 2, restart_status: int = 0, try_status: int | None = None,
                 pending: int = 0) -> None:
        super().__init__()
        self.down = down
        self.restart_status = restart_status
        self.try_status = try_status
        self.pending = pending
        self.restarted = False

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        self.events.append(("run", command, b""))
        out = stdout or (lambda line: None)
        if command == self.config_restart:
            self.restarted = True
            return self.restart_status
        if command == TRY_CHECK_REBOOT and self.try_status is not None:
            status, self.try_status = self.try_status, None
            return status
        if self.restarted and self.down > 0:
            self.down -= 1
            raise CommunicatorError("connection refused")
        if command == DEFAULT_RESTART_CHECK_COMMAND:
            out("WIN-HOST restarted.")
        elif command.startswith("powershell.exe -EncodedCommand") and "Test-Path" in decoded(command):
            out("True" if self.pending > 0 else "False")
            self.pending -= 1
        else:
            out(f"ran {command}")
        return 0

    config_restart = RESTART


def provisioner(ui: RecordingUi | None = None, **kw: Any) -> WindowsRestartProvisioner:
    prov = WindowsRestartProvisioner(WindowsRestartConfig(**kw), make_env(ui))
    prov.poll_delay = 0.01
    prov.in_progress_delay = 0.01
    prov.retry_delay = 0.01
    return prov


def test_default_restart_waits_until_the_check_answers() -> None:
    ui = RecordingUi()
    comm = RebootingComm(down=3)
    provisioner(ui).provision(comm, {})
    # restart; the test restart is refused (already going down); two more refused polls; the echo
    assert comm.runs() == [RESTART, TRY_CHECK_REBOOT, DEFAULT_RESTART_CHECK_COMMAND,
                           DEFAULT_RESTART_CHECK_COMMAND, DEFAULT_RESTART_CHECK_COMMAND]
    assert decoded(DEFAULT_RESTART_CHECK_COMMAND) == \
        'echo ("{0} restarted." -f [System.Net.Dns]::GetHostName())'
    assert ui.of("say") == ["Restarting Machine", "Waiting for machine to restart...",
                            "Machine successfully restarted, moving on"]
    assert ui.of("message") == ["WIN-HOST restarted."]


def test_a_test_restart_accepted_is_aborted() -> None:
    """Vagrant's check: when the test restart is accepted, the real one had not begun: abort the test."""
    comm = RebootingComm(down=0, try_status=0)
    provisioner().provision(comm, {})
    assert comm.runs()[:3] == [RESTART, TRY_CHECK_REBOOT, ABORT_REBOOT]


def test_restart_in_progress_statuses() -> None:
    comm = RebootingComm(down=1, try_status=1115)
    provisioner().provision(comm, {})
    assert comm.runs()[:3] == [RESTART, TRY_CHECK_REBOOT, TRY_CHECK_REBOOT]
    provisioner().provision(RebootingComm(restart_status=1190), {})
    with pytest.raises(BuildError) as info:
        provisioner().provision(RebootingComm(restart_status=5), {})
    assert str(info.value) == "Restart script exited with non-zero exit status: 5"


@pytest.mark.effect("provisioner/windows-restart", "restart_command", "restart_check_command")
def test_custom_commands() -> None:
    ui = RecordingUi()
    comm = RebootingComm(down=2)
    comm.config_restart = "Restart-Computer -Force"
    provisioner(ui, restart_command="Restart-Computer -Force",
                restart_check_command="hostname").provision(comm, {})
    assert comm.runs() == ["Restart-Computer -Force", TRY_CHECK_REBOOT, "hostname", "hostname",
                           DEFAULT_RESTART_CHECK_COMMAND]
    assert ui.of("message") == ["ran hostname", "WIN-HOST restarted."]


@pytest.mark.effect("provisioner/windows-restart", "check_registry", "registry_keys")
def test_check_registry_waits_for_no_pending_key() -> None:
    comm = RebootingComm(down=0, pending=1)
    provisioner(check_registry=True, registry_keys=["HKLM:SOFTWARE\\X"]).provision(comm, {})
    checks = [decoded(c) for c in comm.runs() if c.startswith("powershell.exe") and
              c != DEFAULT_RESTART_CHECK_COMMAND]
    assert checks == ['Test-Path "HKLM:SOFTWARE\\X"', 'Test-Path "HKLM:SOFTWARE\\X"']
    comm = RebootingComm(down=0)
    provisioner(check_registry=True).provision(comm, {})
    checks = [decoded(c) for c in comm.runs() if c.startswith("powershell.exe") and
              c != DEFAULT_RESTART_CHECK_COMMAND]
    assert checks == [f'Test-Path "{k}"' for k in DEFAULT_REGISTRY_KEYS]
    comm = RebootingComm(down=0, pending=5)
    provisioner(registry_keys=["HKLM:SOFTWARE\\X"]).provision(comm, {})  # check_registry off: not read
    assert not any("Test-Path" in decoded(c) for c in comm.runs() if c.startswith("powershell.exe"))


@pytest.mark.effect("provisioner/windows-restart", "restart_timeout")
def test_restart_timeout() -> None:
    ui = RecordingUi()
    prov = provisioner(ui, restart_timeout="200ms")
    assert prov.restart_timeout == 0.2
    with pytest.raises(BuildError) as info:
        prov.provision(RebootingComm(down=10**6), {})
    assert str(info.value) == "Timeout waiting for machine to restart."
    assert ui.of("error") == ["Timeout waiting for machine to restart."]


def test_cancel_stops_the_wait() -> None:
    ui = RecordingUi()
    prov = provisioner(ui)
    prov.env.cancel.set()
    with pytest.raises(BuildError, match="Interrupt detected"):
        prov.provision(RebootingComm(down=10**6), {})
