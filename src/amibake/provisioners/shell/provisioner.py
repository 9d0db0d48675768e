"""The ``shell`` provisioner: upload scripts (or inline commands) and run them over the communicator.

Behaviour follows Packer's ``provisioner/shell``: each script is uploaded to ``remote_path``
(default ``/tmp/script_NNNN.sh``), made executable and run with ``execute_command`` (default
``chmod +x {{.Path}}; {{.Vars}} {{.Path}}``), the environment variables being passed inline as
``KEY='value' `` pairs (or through an uploaded file with ``use_env_var_file``). The helpers for
environment variables, exit codes and inline scripts are shared with ``shell-local``.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from amibake.api import BuildEnv
from amibake.communicator.base import DisconnectedError
from amibake.errors import BuildError, CommunicatorError

if TYPE_CHECKING:
    from amibake.communicator.base import Communicator

log = logging.getLogger("amibake.provisioners.shell")

T = TypeVar("T")

#: Packer's exit status for "the connection dropped while the command ran"
CMD_DISCONNECT = 2300218
#: what builders without an HTTP server put in the build data (Packer's commonsteps constants)
_HTTP_NOT_IMPLEMENTED = {
    "PackerHTTPAddr": ("PACKER_HTTP_ADDR", "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"),
    "PackerHTTPIP": ("PACKER_HTTP_IP", "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER"),
    "PackerHTTPPort": ("PACKER_HTTP_PORT", "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER"),
}

DEFAULT_EXECUTE_COMMAND = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
DEFAULT_EXECUTE_COMMAND_ENV_FILE = "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"
DEFAULT_ENV_VAR_FORMAT = "%s='%s' "
DEFAULT_ENV_VAR_FORMAT_ENV_FILE = "export %s='%s'\n"
DEFAULT_INLINE_SHEBANG = "/bin/sh -e"
DEFAULT_START_RETRY_TIMEOUT = 300.0
#: pause between two attempts to start a command (Packer's retry default)
RETRY_DELAY_SECONDS = 2.0


_USED_NUMBERS: set[int] = set()
_NUMBERS_LOCK = threading.Lock()


def unique_number() -> int:
    """Packer's random 0-9998 for default remote file names (``script_NNNN.sh``), never the same
    twice in one run: parallel builds that reach the same host (one sshd, or instances sharing a
    filesystem) must not run or delete each other's scripts. Packer draws them independently; with
    16 builds and 3 scripts each a clash is ~10% likely."""
    with _NUMBERS_LOCK:
        if len(_USED_NUMBERS) >= 9999:
            _USED_NUMBERS.clear()
        while True:
            n = random.randrange(9999)
            if n not in _USED_NUMBERS:
                _USED_NUMBERS.add(n)
                return n


class ExitCodeError(BuildError):
    """A script exited with a status not in ``valid_exit_codes``."""

    def __init__(self, code: int, allowed: Sequence[int]) -> None:
        self.code = code
        self.allowed = list(allowed)
        # Packer 1.6.6's text, missing space included
        super().__init__(
            f"Script exited with non-zero exit status: {code}."
            f"Allowed exit codes are: [{' '.join(str(c) for c in self.allowed)}]"
        )


def check_exit_code(code: int, valid_exit_codes: Sequence[int] | None) -> None:
    """Raise :class:`ExitCodeError` unless ``code`` is allowed (default: only 0)."""
    allowed = list(valid_exit_codes or [0])
    if code not in allowed:
        raise ExitCodeError(code, allowed)


def quote_value(value: str) -> str:
    """Escape single quotes for a value Packer places inside ``'...'``."""
    return value.replace("'", "'\"'\"'")


def go_sprintf(fmt: str, *args: str) -> str:
    """Packer's ``fmt.Sprintf(env_var_format, key, value)``: Go's verbs, so ``%q`` quotes."""
    from amibake.template.gotemplate.goformat import sprintf

    return sprintf(fmt, args)


def split_env_var(kv: str) -> tuple[str, str]:
    """``KEY=value`` -> (key, value); raises BuildError for anything else (as Packer's Prepare)."""
    key, sep, value = kv.partition("=")
    if not sep or not key:
        raise BuildError(f"Environment variable not in format 'key=value': {kv}")
    return key, value


def env_vars(
    build_name: str,
    builder_type: str,
    build_data: Mapping[str, Any],
    environment_vars: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables a script gets, values *unescaped*: Packer's own, then
    ``environment_vars`` (``KEY=value``), then ``env`` (which wins on duplicates)."""
    result: dict[str, str] = {"PACKER_BUILD_NAME": build_name, "PACKER_BUILDER_TYPE": builder_type}
    for data_key, (var, sentinel) in _HTTP_NOT_IMPLEMENTED.items():
        value = build_data.get(data_key)
        if value is not None and value != sentinel:
            result[var] = str(value)
    for kv in environment_vars:
        key, value = split_env_var(kv)
        result[key] = value
    for key, value in (env or {}).items():
        result[key] = str(value)
    return result


def flatten_env_vars(variables: Mapping[str, str], env_var_format: str) -> str:
    """Packer's ``{{.Vars}}``: each ``env_var_format`` % (key, quoted value), keys sorted.

    Packer leaves ``PACKER_BUILD_NAME`` and ``PACKER_BUILDER_TYPE`` unescaped; build names
    cannot hold a quote anyway, so every value is escaped here.
    """
    return "".join(go_sprintf(env_var_format, k, quote_value(variables[k])) for k in sorted(variables))


def to_unix_newlines(data: bytes) -> bytes:
    """Packer's UnixReader: every line ends with ``\\n`` (a ``\\r`` before it is dropped)."""
    if not data:
        return b""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return b"".join((line[:-1] if line.endswith(b"\r") else line) + b"\n" for line in lines)


def inline_script(shebang: str, commands: Iterable[str]) -> str:
    """The temporary script Packer writes for ``inline``."""
    text = f"#!{shebang}\n" if shebang else ""
    return text + "".join(f"{c}\n" for c in commands)


def write_temp_script(content: str, prefix: str = "packer-shell", suffix: str = "") -> str:
    """Write ``content`` to a new private temp file and return its path (the caller removes it)."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(content)
    return path


def clean_output_line(line: str) -> str:
    """Packer's ``cleanOutputLine``: trailing whitespace off, keep what follows the last ``\\r``."""
    line = line.rstrip()
    idx = line.rfind("\r")
    return line[idx + 1 :] if idx >= 0 else line


def run_streamed(comm: Communicator, command: str, ui: Any, build_name: str) -> int:
    """Run ``command`` with its output lines (cleaned as Packer does) said as they come, stdout as
    messages and stderr as errors; the exit status, or :data:`CMD_DISCONNECT` when the connection
    dropped (Packer's ``packersdk.CmdDisconnect``, which the restart-aware callers retry on)."""
    log.debug("[%s] running: %s", build_name, command)
    try:
        return comm.run(
            command,
            stdout=lambda line: ui.message(clean_output_line(line)),
            stderr=lambda line: ui.error(clean_output_line(line)),
        )
    except DisconnectedError:
        return CMD_DISCONNECT


def seconds(value: Any) -> float:
    """A duration option as seconds: None/"" -> 0, numbers (seconds), timedelta, or a Go duration
    (``1m30s``) read by :func:`amibake.config.durations.parse_duration`.

    Deliberately laxer than Go's ``time.ParseDuration``: blanks around the text are ignored and a
    blank text is 0, as None is; a number is seconds (a typed config's :data:`Duration` already
    turned a JSON number into seconds)."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    from amibake.config.durations import DurationError, parse_duration

    text = str(value).strip()
    if not text:
        return 0.0
    try:
        return parse_duration(text)
    except DurationError:
        raise BuildError(f"invalid duration {value!r} (expected e.g. 30s, 5m, 1h30m)") from None


def go_duration(secs: float) -> str:
    """Format seconds as Go's ``time.Duration.String()`` (``5s``, ``1m30s``, ``1h0m0s``, ``500ms``)."""
    from amibake.config.durations import format_duration

    return format_duration(secs)



def retry_start(
    fn: Callable[[], T],
    timeout: float,
    cancel: threading.Event | None = None,
    delay: float = RETRY_DELAY_SECONDS,
) -> T:
    """Packer's ``retry.Config{StartTimeout}``: call ``fn`` again (after ``delay``) while it raises
    :class:`CommunicatorError`, until ``timeout`` seconds have passed (0: forever) or cancel."""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    while True:
        try:
            return fn()
        except CommunicatorError as exc:
            log.info("Retryable error: %s", exc)
            if cancel is not None and cancel.is_set():
                raise
            if deadline is not None and time.monotonic() >= deadline:
                raise
        if cancel is not None:
            if cancel.wait(delay):
                raise BuildError("cancelled while retrying to start a command")
        else:
            time.sleep(delay)


class ShellProvisioner:
    """Packer's ``shell`` provisioner."""

    def __init__(self, config: Any, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        c = config
        self.use_env_var_file = bool(getattr(c, "use_env_var_file", False))
        self.env_var_format: str = c.env_var_format or (
            DEFAULT_ENV_VAR_FORMAT_ENV_FILE if self.use_env_var_file else DEFAULT_ENV_VAR_FORMAT
        )
        self.execute_command: str = c.execute_command or (
            DEFAULT_EXECUTE_COMMAND_ENV_FILE if self.use_env_var_file else DEFAULT_EXECUTE_COMMAND
        )
        self.inline_shebang: str = c.inline_shebang or DEFAULT_INLINE_SHEBANG
        self.start_retry_timeout = seconds(c.start_retry_timeout) or DEFAULT_START_RETRY_TIMEOUT
        self.remote_folder: str = c.remote_folder or "/tmp"
        remote_file = c.remote_file or f"script_{unique_number()}.sh"
        self.remote_path: str = c.remote_path or f"{self.remote_folder}/{remote_file}"
        self.pause_after = seconds(c.pause_after)
        self.retry_delay = RETRY_DELAY_SECONDS

    # -- the provisioner ------------------------------------------------------------------------

    def provision(self, comm: Communicator, build_data: Mapping[str, Any]) -> None:
        c, ui = self.config, self.env.ui
        scripts = [str(s) for s in (c.scripts or [])]
        if c.script:
            scripts.append(str(c.script))
        temps: list[str] = []
        try:
            if c.inline:
                commands = [self.env.render(cmd, build_data) for cmd in c.inline]
                temps.append(write_temp_script(inline_script(self.inline_shebang, commands)))
                scripts.append(temps[-1])

            variables = env_vars(
                self.env.build_name, self.env.builder_type, build_data, c.environment_vars or (), c.env
            )
            flattened = flatten_env_vars(variables, self.env_var_format)
            env_var_file = ""
            if self.use_env_var_file:
                env_var_file = self._upload_env_var_file(comm, flattened)

            data = {**build_data, "Vars": flattened, "EnvVarFile": env_var_file, "Path": self.remote_path}
            command = self.env.render(self.execute_command, data)
            for path in scripts:
                ui.say(f"Provisioning with shell script: {path}")
                self._run_script(comm, path, command)
                if not c.skip_clean:
                    self._remove_remote(comm, self.remote_path)
            if not c.skip_clean and env_var_file:
                self._remove_remote(comm, env_var_file)
        finally:
            for t in temps:
                try:
                    os.remove(t)
                except OSError:
                    pass

        if self.pause_after > 0:
            ui.say(f"Pausing {go_duration(self.pause_after)} after this provisioner...")
            if self.env.cancel.wait(self.pause_after):
                raise BuildError("cancelled while pausing after the shell provisioner")

    # -- steps -----------------------------------------------------------------------------------

    def _read_script(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BuildError(f"Error opening shell script: {exc}") from exc
        return data if self.config.binary else to_unix_newlines(data)

    def _run_script(self, comm: Communicator, path: str, command: str) -> None:
        c, ui = self.config, self.env.ui
        content = self._read_script(path)

        def attempt() -> int:
            try:
                comm.upload(self.remote_path, content)
            except CommunicatorError as exc:
                raise CommunicatorError(f"Error uploading script: {exc}") from exc
            try:
                comm.run(f"chmod 0755 {self.remote_path}")
            except CommunicatorError as exc:
                raise CommunicatorError(
                    f"Error chmodding script file to 0755 in remote machine: {exc}"
                ) from exc
            return run_streamed(comm, command, ui, self.env.build_name)

        status = retry_start(attempt, self.start_retry_timeout, self.env.cancel, self.retry_delay)
        if status == CMD_DISCONNECT:
            if not c.expect_disconnect:
                raise BuildError(
                    "Script disconnected unexpectedly. If you expected your script to disconnect, "
                    'i.e. from a restart, you can try adding `"expect_disconnect": true` or '
                    '`"valid_exit_codes": [0, 2300218]` to the shell provisioner parameters.'
                )
            return
        check_exit_code(status, c.valid_exit_codes)

    def _upload_env_var_file(self, comm: Communicator, content: str) -> str:
        data = content.encode("utf-8")
        if not self.config.binary:
            data = to_unix_newlines(data)
        remote = f"{self.remote_folder}/varfile_{unique_number()}.sh"

        def attempt() -> str:
            try:
                comm.upload(remote, data)
            except CommunicatorError as exc:
                raise CommunicatorError(f"Error uploading envVarFile: {exc}") from exc
            try:
                comm.run(f"chmod 0600 {remote}")
            except CommunicatorError as exc:
                raise CommunicatorError(
                    f"Error chmodding script file to 0600 in remote machine: {exc}"
                ) from exc
            return remote

        return retry_start(attempt, self.start_retry_timeout, self.env.cancel, self.retry_delay)

    def _remove_remote(self, comm: Communicator, path: str) -> None:
        def attempt() -> None:
            try:
                status = comm.run(f"rm -f {path}")
            except DisconnectedError as exc:
                raise CommunicatorError("Disconnect while removing temporary script.") from exc
            except CommunicatorError as exc:
                raise CommunicatorError(f"Error removing temporary script at {path}: {exc}") from exc
            if status != 0:
                raise CommunicatorError(f"Error removing temporary script at {path}!")

        retry_start(attempt, self.start_retry_timeout, self.env.cancel, self.retry_delay)
