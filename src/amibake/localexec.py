"""The one place amibake starts local processes.

Commands are argv lists (never ``shell=True``). Each is echoed to the debug log
(``amibake.localexec``) with secrets redacted; its stdout and stderr are streamed line by line to
callbacks; a timeout or a cancel event stops the whole process group. :func:`run` returns the exit
status; with ``check=True`` a non-zero status raises :class:`LocalCommandError`, which names the
command, the exit status and the tail of its stderr.
"""

from __future__ import annotations

import collections
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from amibake.errors import AmibakeError
from amibake.ui.redact import Redactor, redact

__all__ = ["LocalCommandCancelled", "LocalCommandError", "LocalCommandTimeout", "describe", "redact", "run"]

log = logging.getLogger("amibake.localexec")

LineCallback = Callable[[str], None]

#: how many stderr lines a failure quotes
STDERR_TAIL_LINES = 20
#: how long a stopped process gets between SIGTERM and SIGKILL
KILL_GRACE_SECONDS = 2.0
#: how long to keep reading output after the process exited (a background child may hold the pipe)
DRAIN_SECONDS = 2.0


class LocalCommandError(AmibakeError):
    """A local command could not start, failed, timed out or was cancelled."""

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        status: int | None = None,
        stderr_tail: Sequence[str] = (),
    ) -> None:
        self.argv = list(argv)
        #: the process exit status (negative: killed by that signal), None when it never ran
        self.status = status
        self.stderr_tail = list(stderr_tail)
        text = message
        if self.stderr_tail:
            text += "\nstderr (last lines):\n" + "\n".join(f"  {line}" for line in self.stderr_tail)
        super().__init__(text)


class LocalCommandTimeout(LocalCommandError):
    """The command ran longer than its timeout and was killed."""


class LocalCommandCancelled(LocalCommandError):
    """The build was cancelled while the command ran; it was killed."""


def describe(argv: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """The command as a shell would read it, for logs and messages (secrets blanked in every form,
    shell-quoted ones included)."""
    return redact(shlex.join(argv), secrets)


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    stdout: LineCallback | None = None,
    stderr: LineCallback | None = None,
    timeout: float | None = None,
    cancel: threading.Event | None = None,
    check: bool = False,
    secrets: Sequence[str] = (),
) -> int:
    """Run ``argv`` and return its exit status (negative when killed by a signal).

    ``env`` replaces the environment when given (pass ``{**os.environ, ...}`` to extend it).
    Output lines are passed to the callbacks without their line ending, decoded as UTF-8
    (undecodable bytes replaced). ``stdin`` is ``/dev/null``.

    Raises :class:`LocalCommandError` when the command cannot start, :class:`LocalCommandTimeout`
    after ``timeout`` seconds, :class:`LocalCommandCancelled` when ``cancel`` is set, and, with
    ``check``, :class:`LocalCommandError` on a non-zero status.
    """
    if not argv:
        raise LocalCommandError("no command to run")
    argv = [str(a) for a in argv]
    shown = describe(argv, secrets)
    log.debug("Executing: %s%s", shown, f" (in {cwd})" if cwd is not None else "")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LocalCommandError(f"cannot run {shown}: {reason}", argv=argv) from exc

    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    redactor = Redactor(secrets)

    def on_stderr(line: str) -> None:
        tail.append(redactor(line))
        if stderr is not None:
            stderr(line)

    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, stdout), daemon=True, name="localexec-out"),
        threading.Thread(target=_pump, args=(proc.stderr, on_stderr), daemon=True, name="localexec-err"),
    ]
    for t in readers:
        t.start()

    deadline = None if timeout is None else time.monotonic() + timeout
    stopped: type[LocalCommandError] | None = None
    try:
        while True:
            try:
                proc.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
            if cancel is not None and cancel.is_set():
                stopped = LocalCommandCancelled
            elif deadline is not None and time.monotonic() >= deadline:
                stopped = LocalCommandTimeout
            if stopped is not None:
                _stop(proc)
                break
    except BaseException:
        _stop(proc)
        raise
    finally:
        drain_until = time.monotonic() + DRAIN_SECONDS
        for t in readers:
            t.join(max(0.0, drain_until - time.monotonic()))

    status = proc.returncode
    log.debug("Command %s exited with status %s", shown, status)
    if stopped is LocalCommandCancelled:
        raise LocalCommandCancelled(f"cancelled: {shown}", argv=argv, status=status, stderr_tail=tail)
    if stopped is LocalCommandTimeout:
        raise LocalCommandTimeout(
            f"timed out after {timeout:g}s: {shown}", argv=argv, status=status, stderr_tail=tail
        )
    if check and status != 0:
        raise LocalCommandError(
            f"{shown} {exit_description(status)}", argv=argv, status=status, stderr_tail=tail
        )
    return status


def exit_description(status: int) -> str:
    """``exited with status 3`` / ``was killed by signal 9 (SIGKILL)`` / explains 126 and 127."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = "unknown signal"
        return f"was killed by signal {-status} ({name})"
    text = f"exited with status {status}"
    if status == 127:
        text += " (command not found)"
    elif status == 126:
        text += " (command found but not executable)"
    return text


def _pump(stream: IO[bytes], callback: LineCallback | None) -> None:
    with stream:
        for raw in stream:
            if callback is None:
                continue
            line = raw.decode("utf-8", errors="replace")
            if line.endswith("\n"):
                line = line[:-1]
            try:
                callback(line)
            except Exception:  # a broken callback must not leave the pipe unread
                log.exception("output callback failed")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the process group, then kill it if it does not go."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
