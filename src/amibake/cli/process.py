"""What belongs to the process of one ``amibake build``: its interrupt handling and its debug log.

The library only raises and returns (:class:`amibake.build.BuildRunner` offers
``request_cancel()``, ``left_behind()`` and ``log_secrets()``); installing signal handlers,
leaving with ``os._exit`` and adding handlers to loggers happen here, in the command's process.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from amibake.errors import AmibakeError
from amibake.ui.redact import RedactingFilter

if TYPE_CHECKING:
    from amibake.build import BuildRunner


def interrupt_handler(runner: BuildRunner, state: dict[str, int]) -> Callable[[int, Any], None]:
    """The SIGINT/SIGTERM handler of a build run; ``state`` counts the interrupts and keeps the first
    signal's number (the command then exits 128 + it)."""

    def handler(signum: int, frame: Any) -> None:
        state["count"] += 1
        state["signum"] = state["signum"] or signum
        if state["count"] == 1:
            runner.console.error("Interrupt received. Cancelling the builds and cleaning up...")
            runner.request_cancel()
        elif state["count"] == 2:
            runner.console.error(
                "Cleanup in progress: interrupting now would leave resources behind. "
                "Interrupt once more to exit immediately anyway."
            )
        else:
            left = runner.left_behind()
            runner.console.error("Exiting without finishing cleanup.")
            if left:
                runner.console.error("Left behind: " + ", ".join(left))
            runner.console.error(f"Remove what is left with: amibake cleanup --run {runner.run.run_id}")
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(128 + state["signum"])

    return handler


def install_signal_handlers(runner: BuildRunner) -> dict[str, int]:
    """First SIGINT/SIGTERM cancels the builds (they clean up, then the command exits 130/143); the
    second is refused with a message; the third exits at once, naming what is left and the command
    that removes it. Also starts the debug log when AMIBAKE_LOG / PACKER_LOG asks for one."""
    install_debug_log(runner)
    state = {"count": 0, "signum": 0}
    handler = interrupt_handler(runner, state)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    return state


def install_debug_log(
    runner: BuildRunner, environ: Mapping[str, str] | None = None
) -> logging.Handler | None:
    """AMIBAKE_LOG=1 (or PACKER_LOG=1): debug log of amibake and botocore to AMIBAKE_LOG_PATH
    (PACKER_LOG_PATH), else stderr, with every known secret redacted."""
    env = os.environ if environ is None else environ
    flag = env.get("AMIBAKE_LOG") or env.get("PACKER_LOG") or ""
    if flag.strip() in ("", "0"):
        return None
    path = env.get("AMIBAKE_LOG_PATH") or env.get("PACKER_LOG_PATH") or ""
    handler: logging.Handler
    if path:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            if stat.S_ISREG(os.fstat(fd).st_mode):  # a log left by an earlier run may be 0644
                os.fchmod(fd, 0o600)
        except OSError as exc:
            raise AmibakeError(f"cannot open the debug log {path}: {exc.strerror or exc}") from None
        handler = logging.StreamHandler(os.fdopen(fd, "a", encoding="utf-8"))
    else:
        handler = logging.StreamHandler(sys.stderr)
    secrets = runner.log_secrets()
    secrets += [env[k] for k in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN") if env.get(k)]
    redactor = runner.console.redact
    redactor.add(*secrets)
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    for name in ("amibake", "botocore", "asyncssh"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    logging.getLogger("amibake").debug("debug log started for run %s", runner.run.run_id)
    return handler
