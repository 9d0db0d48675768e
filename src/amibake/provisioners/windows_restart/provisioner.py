"""Packer's ``windows-restart`` provisioner (Packer 1.6.6 ``provisioner/windows-restart``).

It runs ``restart_command``, makes sure the machine is going down (Vagrant's check: schedule a test
restart; if that is accepted the real one has not started yet, so the test is aborted), then waits for
the communicator to come back: every 5 seconds it runs ``restart_check_command`` (once it succeeds) and
the PowerShell echo of Packer's default check until the echo answers ``... restarted.``; with
``check_registry`` it also waits until none of ``registry_keys`` exists. Everything within
``restart_timeout``. The communicators reconnect by themselves (WinRM connects per command, SSH
reconnects a dropped connection on the next command), so "come back" means commands succeed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv
from amibake.communicator.base import DisconnectedError
from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.powershell.provisioner import encoded_powershell
from amibake.provisioners.shell.provisioner import CMD_DISCONNECT, clean_output_line, retry_start, seconds

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.windows_restart")

DEFAULT_RESTART_COMMAND = 'shutdown /r /f /t 0 /c "packer restart"'
DEFAULT_RESTART_CHECK_COMMAND = encoded_powershell(
    'echo ("{0} restarted." -f [System.Net.Dns]::GetHostName())'
)
TRY_CHECK_REBOOT = 'shutdown /r /f /t 60 /c "packer restart test"'
ABORT_REBOOT = "shutdown /a"
DEFAULT_REGISTRY_KEYS = (
    "HKLM:SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootPending",
    "HKLM:SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\PackagesPending",
    "HKLM:Software\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\RebootInProgress",
)
DEFAULT_RESTART_TIMEOUT = 300.0
#: Packer's ``retryableSleep``: the pause before each check that the machine is back
POLL_DELAY = 5.0
#: the pause when the test restart says a restart is in progress (Packer: 10 s)
IN_PROGRESS_DELAY = 10.0
#: exit statuses of ``shutdown`` meaning a shutdown is already in progress
_IN_PROGRESS = (1115, 1190)


class _Timeout(Exception):
    pass


class WindowsRestartProvisioner:
    """Packer's ``windows-restart`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        c = config
        self.restart_command: str = c.restart_command or DEFAULT_RESTART_COMMAND
        self.restart_check_command: str = c.restart_check_command or DEFAULT_RESTART_CHECK_COMMAND
        self.restart_timeout = seconds(c.restart_timeout) or DEFAULT_RESTART_TIMEOUT
        self.registry_keys: list[str] = list(c.registry_keys or DEFAULT_REGISTRY_KEYS)
        self.poll_delay = POLL_DELAY
        self.in_progress_delay = IN_PROGRESS_DELAY
        self.retry_delay = 2.0

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        ui = self.env.ui
        ui.say("Restarting Machine")
        status = retry_start(lambda: self._run(comm, self.restart_command), self.restart_timeout,
                             self.env.cancel, self.retry_delay)
        if status not in (0, *_IN_PROGRESS):
            raise BuildError(f"Restart script exited with non-zero exit status: {status}")
        self._wait_for_restart(comm)

    # -- running commands ------------------------------------------------------------------------

    def _run(self, comm: Communicator, command: str, out: list[str] | None = None,
             deadline: float | None = None) -> int:
        """Run ``command`` with its output shown (Packer's ``RunWithUi``); ``out`` collects stdout."""
        ui = self.env.ui

        def stdout(line: str) -> None:
            if out is not None:
                out.append(line)
            ui.message(clean_output_line(line))

        timeout = None if deadline is None else max(deadline - time.monotonic(), 1.0)
        try:
            return comm.run(command, stdout=stdout, stderr=lambda line: ui.error(clean_output_line(line)),
                            timeout=timeout)
        except DisconnectedError:
            if deadline is not None:
                raise
            return CMD_DISCONNECT

    def _sleep(self, delay: float, deadline: float) -> None:
        if self.env.cancel.wait(max(0.0, min(delay, deadline - time.monotonic()))):
            raise BuildError("Interrupt detected, quitting waiting for machine to restart")
        if time.monotonic() >= deadline:
            raise _Timeout

    # -- waiting ---------------------------------------------------------------------------------

    def _wait_for_restart(self, comm: Communicator) -> None:
        ui = self.env.ui
        ui.say("Waiting for machine to restart...")
        deadline = time.monotonic() + self.restart_timeout
        try:
            self._until_going_down(comm, deadline)
            log.info("Waiting for machine to reboot with timeout: %s", self.restart_timeout)
            self._until_back(comm, deadline)
        except _Timeout:
            message = "Timeout waiting for machine to restart."
            ui.error(message)
            raise BuildError(message) from None
        ui.say("Machine successfully restarted, moving on")

    def _until_going_down(self, comm: Communicator, deadline: float) -> None:
        """Vagrant's reboot check, as Packer runs it."""
        while True:
            if time.monotonic() >= deadline:
                raise _Timeout
            log.info("Check if machine is rebooting...")
            try:
                status = self._run(comm, TRY_CHECK_REBOOT, deadline=deadline)
            except CommunicatorError:
                return  # cannot run a command: the machine is rebooting already
            if status == 1:
                return  # over SSH, already rebooting
            if status in (*_IN_PROGRESS, 1717):
                log.info("Reboot already in progress, waiting...")
                self._sleep(self.in_progress_delay, deadline)
            if status == 0:
                try:  # cancel the test restart: the real one has not begun
                    self._run(comm, ABORT_REBOOT, deadline=deadline)
                except CommunicatorError:
                    pass
                return

    def _until_back(self, comm: Communicator, deadline: float) -> None:
        """Packer's ``waitForCommunicator``."""
        custom = self.restart_check_command != DEFAULT_RESTART_CHECK_COMMAND
        log.info("Checking that communicator is connected with: '%s'", self.restart_check_command)
        while True:
            self._sleep(self.poll_delay, deadline)
            if custom:
                try:
                    self._run(comm, self.restart_check_command, deadline=deadline)
                except CommunicatorError as exc:
                    log.info("Communication connection err: %s", exc)
                    continue
                log.info("Connected to machine")
                custom = False
            out: list[str] = []
            try:
                self._run(comm, DEFAULT_RESTART_CHECK_COMMAND, out, deadline=deadline)
            except CommunicatorError as exc:
                log.info("Communication connection err: %s", exc)
            if not any("restarted." in line for line in out):
                log.info("echo didn't succeed; retrying...")
                continue
            if self.config.check_registry and self._reboot_pending(comm, deadline):
                continue
            return

    def _reboot_pending(self, comm: Communicator, deadline: float) -> bool:
        """Whether any of ``registry_keys`` exists (or could not be checked)."""
        pending = False
        for key in self.registry_keys:
            command = encoded_powershell(f'Test-Path "{key}"')
            out: list[str] = []
            log.info("Checking registry for pending reboots")
            try:
                self._run(comm, command, out, deadline=deadline)
            except CommunicatorError as exc:
                log.info("Communication connection err: %s", exc)
                pending = True
            if any("True" in line for line in out):
                log.info("RegistryKey %s exists; waiting...", key)
                pending = True
        return pending
