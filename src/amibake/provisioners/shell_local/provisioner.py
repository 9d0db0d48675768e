"""The ``shell-local`` provisioner: run scripts or inline commands on the machine running amibake.

As Packer's shell-local (shared with the ``shell-local`` post-processor, which calls
:func:`run_shell_local`): ``command``/``inline``/``script``/``scripts`` run one by one through
``execute_command`` (default ``["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]``), with ``{{.Vars}}``
the ``KEY='value' `` pairs; ``only_on`` limits the operating systems; the exit status is checked
against ``valid_exit_codes``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from amibake import localexec
from amibake.api import BuildEnv
from amibake.errors import BuildError
from amibake.provisioners.shell.provisioner import (
    DEFAULT_ENV_VAR_FORMAT,
    DEFAULT_INLINE_SHEBANG,
    check_exit_code,
    clean_output_line,
    env_vars,
    flatten_env_vars,
    inline_script,
    write_temp_script,
)

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.shell_local")

DEFAULT_EXECUTE_COMMAND = ("/bin/sh", "-c", "{{.Vars}} {{.Script}}")
#: the ``only_on`` names Packer accepts (Go's GOOS values)
SUPPORTED_OS = ("darwin", "freebsd", "linux", "openbsd", "solaris", "windows")


def current_os(platform: str = sys.platform) -> str:
    """This machine as Go's ``runtime.GOOS`` names it."""
    for prefix, goos in (("linux", "linux"), ("darwin", "darwin"), ("freebsd", "freebsd"),
                         ("openbsd", "openbsd"), ("sunos", "solaris"), ("win32", "windows"),
                         ("cygwin", "windows")):
        if platform.startswith(prefix):
            return goos
    return platform


def execute_command_of(config: Any, *, post_processor: bool = False) -> list[str]:
    """``execute_command`` with Packer's defaults; the post-processor wraps a single string in
    ``sh -c``."""
    cmd = config.execute_command
    if isinstance(cmd, str):
        cmd = [cmd]
    cmd = [str(c) for c in (cmd or [])]
    if not cmd:
        return list(DEFAULT_EXECUTE_COMMAND)
    if post_processor and len(cmd) == 1:
        return ["sh", "-c", *cmd]
    return cmd


def run_shell_local(
    config: Any,
    env: BuildEnv,
    build_data: Mapping[str, Any],
    execute_command: Sequence[str],
) -> None:
    """Run the scripts of a shell-local provisioner or post-processor. Raises on failure."""
    ui = env.ui
    only_on = list(getattr(config, "only_on", None) or [])
    if only_on and current_os() not in only_on:
        ui.say("Skipping shell-local due to runtime OS")
        log.info("(shell-local): skipping shell-local due to missing runtime OS")
        return

    scripts = [str(s) for s in (config.scripts or [])]
    if config.script:
        scripts.append(str(config.script))
    inline = list(config.inline or [])
    command = getattr(config, "command", None)
    if command:
        inline = [str(command)]
    temp: str | None = None
    try:
        if not scripts and inline:
            shebang = config.inline_shebang or DEFAULT_INLINE_SHEBANG
            text = inline_script(shebang, [env.render(c, build_data) for c in inline])
            ext = (getattr(config, "tempfile_extension", None) or "").lstrip(".")
            temp = write_temp_script(text, suffix=f".{ext}" if ext else "")
            os.chmod(temp, 0o700)
            scripts = [temp]

        rendered_vars = [env.render(kv, build_data) for kv in (config.environment_vars or [])]
        variables = env_vars(env.build_name, env.builder_type, build_data, rendered_vars, config.env)
        flattened = flatten_env_vars(variables, config.env_var_format or DEFAULT_ENV_VAR_FORMAT)

        for script in scripts:
            abs_script = os.path.abspath(script)
            data = {**build_data, "Vars": flattened, "Script": abs_script, "Command": abs_script}
            argv = [env.render(part, data) for part in execute_command]
            ui.say(f"Running local shell script: {script}")
            log.info("(shell-local): starting local command: %s", " ".join(argv))
            try:
                status = localexec.run(
                    argv,
                    # Packer sets PACKER_RUN_UUID in its own environment: every local process sees it
                    env={**os.environ, "PACKER_RUN_UUID": env.run_uuid} if env.run_uuid else None,
                    stdout=lambda line: ui.message(clean_output_line(line)),
                    stderr=lambda line: ui.error(clean_output_line(line)),
                    cancel=env.cancel,
                    secrets=env.secrets,
                )
            except localexec.LocalCommandCancelled:
                raise
            except localexec.LocalCommandError as exc:
                raise BuildError(
                    f"Error executing script: {abs_script}\n\n"
                    "Please see output above for more information."
                ) from exc
            check_exit_code(status, config.valid_exit_codes)
    finally:
        if temp is not None:
            try:
                os.remove(temp)
            except OSError:
                pass


class ShellLocalProvisioner:
    """Packer's ``shell-local`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        run_shell_local(self.config, self.env, build_data, execute_command_of(self.config))
