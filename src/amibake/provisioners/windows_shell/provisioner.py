"""Packer's ``windows-shell`` provisioner (Packer 1.6.6 ``provisioner/windows-shell``; ``env`` as later
Packer versions added it).

Each script (``inline`` is written to one) is uploaded to ``remote_path`` (default
``c:/Windows/Temp/script.bat``) and run through the build's communicator with ``execute_command``
(default ``{{.Vars}}"{{.Path}}"``), where ``{{.Vars}}`` sets each variable with ``set "KEY=value" && ``.
The script is uploaded as it is (no line ending conversion) and never removed, as Packer does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from amibake.api import BuildEnv
from amibake.errors import BuildError, CommunicatorError
from amibake.provisioners.shell.provisioner import (
    RETRY_DELAY_SECONDS,
    check_exit_code,
    env_vars,
    go_sprintf,
    retry_start,
    run_streamed,
    seconds,
    write_temp_script,
)

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.windows_shell")

DEFAULT_REMOTE_PATH = "c:/Windows/Temp/script.bat"
DEFAULT_EXECUTE_COMMAND = '{{.Vars}}"{{.Path}}"'
DEFAULT_ENV_VAR_FORMAT = 'set "%s=%s" && '
DEFAULT_START_RETRY_TIMEOUT = 300.0


class WindowsShellProvisioner:
    """Packer's ``windows-shell`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        c = config
        self.execute_command: str = c.execute_command or DEFAULT_EXECUTE_COMMAND
        self.env_var_format: str = c.env_var_format or DEFAULT_ENV_VAR_FORMAT
        self.remote_path: str = c.remote_path or DEFAULT_REMOTE_PATH
        self.start_retry_timeout = seconds(c.start_retry_timeout) or DEFAULT_START_RETRY_TIMEOUT
        self.retry_delay = RETRY_DELAY_SECONDS

    def flattened_env_vars(self, build_data: Mapping[str, Any]) -> str:
        """Packer's ``createFlattenedEnvVars``: values as they are (no escaping), sorted by name."""
        c = self.config
        variables = env_vars(self.env.build_name, self.env.builder_type, build_data,
                             c.environment_vars or (), c.env)
        return "".join(go_sprintf(self.env_var_format, k, variables[k]) for k in sorted(variables))

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        c, ui = self.config, self.env.ui
        ui.say("Provisioning with windows-shell...")
        scripts = [str(c.script)] if c.script else [str(s) for s in (c.scripts or [])]
        temps: list[str] = []
        try:
            if c.inline:
                commands = [self.env.render(cmd, build_data) for cmd in c.inline]
                text = "".join(f"{cmd}\n" for cmd in commands)
                temps.append(write_temp_script(text, "windows-shell-provisioner"))
                scripts.append(temps[-1])
            for path in scripts:
                ui.say(f"Provisioning with shell script: {path}")
                try:
                    with open(path, "rb") as f:
                        content = f.read()
                except OSError as exc:
                    raise BuildError(f"Error opening shell script: {exc}") from exc
                data = {**build_data, "Vars": self.flattened_env_vars(build_data), "Path": self.remote_path}
                command = self.env.render(self.execute_command, data)
                status = retry_start(lambda body=content, cmd=command: self._upload_and_run(comm, body, cmd),  # type: ignore[misc]
                                     self.start_retry_timeout, self.env.cancel, self.retry_delay)
                check_exit_code(status, c.valid_exit_codes)
        finally:
            for t in temps:
                try:
                    os.remove(t)
                except OSError:
                    pass

    def _upload_and_run(self, comm: Communicator, content: bytes, command: str) -> int:
        ui = self.env.ui
        try:
            comm.upload(self.remote_path, content)
        except CommunicatorError as exc:
            raise CommunicatorError(f"Error uploading script: {exc}") from exc
        return run_streamed(comm, command, ui, self.env.build_name)
