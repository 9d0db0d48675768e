"""The per-build step context: the cleanup stack, cancellation and interruptible waits.

A step registers the undo of a resource on the line after the call that created it::

    instance_id = ec2.run_instance(...)
    ctx.defer(f"terminate instance {instance_id}", lambda: ec2.terminate(instance_id))

``defer`` registers *teardown* (temporaries: always undone when the build ends); ``on_failure``
registers *rollback* of an output (the AMI, its copies, its snapshots), undone only when the build
fails or is cancelled. Both live on one stack and are undone in reverse order of registration,
as Packer's runner cleans up its steps in reverse.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from amibake.api import OnError, Ui
from amibake.errors import BuildError

UndoKind = Literal["teardown", "rollback"]


class BuildCancelled(BuildError):
    """The build was cancelled (``env.cancel`` was set) between or inside steps."""

    def __init__(self, message: str = "Build was cancelled.") -> None:
        super().__init__(message)


class JournalUnwritable(BuildError):
    """The run journal could not be written: the build creates nothing more and stops."""


class SturdyUi:
    """A build's Ui whose output failures never stop a step or an undo: a stdout or stderr that hit
    a file-size limit or a full disk (``EFBIG``, ``ENOSPC``, ``EIO``) loses the line. Output is best
    effort, as in Packer; the resources are not."""

    def __init__(self, inner: Ui) -> None:
        self.inner = inner

    def say(self, message: str) -> None:
        with contextlib.suppress(OSError):
            self.inner.say(message)

    def message(self, message: str) -> None:
        with contextlib.suppress(OSError):
            self.inner.message(message)

    def error(self, message: str) -> None:
        with contextlib.suppress(OSError):
            self.inner.error(message)

    def progress(self, label: str, fraction: float | None) -> None:
        with contextlib.suppress(OSError):
            self.inner.progress(label, fraction)

    def ask(self, question: str) -> str:
        try:
            return self.inner.ask(question)
        except OSError:
            return ""  # no one to ask: the runner takes the safe choice


@dataclass
class Undo:
    """One registered cleanup: what it undoes (shown to the user) and how."""

    description: str
    fn: Callable[[], None]
    kind: UndoKind = "teardown"
    #: the step that registered it (for messages)
    step: str = ""


def pause_requested(point: str) -> float | None:
    """How long to pause at ``point`` (``AMIBAKE_PAUSE_SECONDS``, default 3600), once announced as
    ``amibake: paused at <point> (pid N)`` on stderr; None when ``AMIBAKE_PAUSE_AT`` (a comma list,
    ``*`` for every point) does not name it. Builds and ``amibake cleanup`` pause through this."""
    wanted = os.environ.get("AMIBAKE_PAUSE_AT", "")
    if not wanted:
        return None
    points = {p.strip() for p in wanted.split(",") if p.strip()}
    if point not in points and "*" not in points:
        return None
    try:
        seconds = float(os.environ.get("AMIBAKE_PAUSE_SECONDS", "3600"))
    except ValueError:
        seconds = 3600.0
    sys.stderr.write(f"amibake: paused at {point} (pid {os.getpid()})\n")
    sys.stderr.flush()
    return max(0.0, seconds)


@dataclass
class StepContext:
    """What every step of one build shares: output, cancellation and the cleanup stack."""

    ui: Ui
    cancel: threading.Event = field(default_factory=threading.Event)
    on_error: OnError = "cleanup"
    debug: bool = False
    #: the cleanup stack, oldest first
    undo_stack: list[Undo] = field(default_factory=list)
    #: the step being run (set by the runner)
    current_step: str = ""
    #: descriptions of cleanups that failed or were skipped, after the build ended
    leftovers: list[str] = field(default_factory=list)
    #: journal writes that failed (each a message naming the journal and what was not recorded);
    #: the build stops after the current step, and every undo still runs
    journal_errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def defer(self, description: str, fn: Callable[[], None]) -> None:
        """Register the teardown of a temporary resource (always run when the build ends)."""
        self._push(Undo(description, fn, "teardown", self.current_step))

    def on_failure(self, description: str, fn: Callable[[], None]) -> None:
        """Register the rollback of an output (run only when the build fails or is cancelled)."""
        self._push(Undo(description, fn, "rollback", self.current_step))

    def _push(self, undo: Undo) -> None:
        # steps may create resources from worker threads (region copies)
        with self._lock:
            self.undo_stack.append(undo)

    def journal_failed(self, problem: str) -> None:
        """A journal write failed (called by whatever writes the journal, from any thread)."""
        with self._lock:
            self.journal_errors.append(problem)

    def check_journal(self) -> None:
        """Stop the build once its journal could not be written (between steps)."""
        with self._lock:
            first = self.journal_errors[0] if self.journal_errors else ""
        if first:
            raise JournalUnwritable(f"{first}; stopping the build and removing what it created")

    def pending(self) -> list[Undo]:
        with self._lock:
            return list(self.undo_stack)

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise BuildCancelled()

    def pause(self, point: str, *, interruptible: bool = True) -> None:
        """A debugging aid: stop at a named point of the build while someone looks (or kills it).

        With ``AMIBAKE_PAUSE_AT=<point>[,<point>...]`` (``*`` for every point), reaching ``point``
        prints ``amibake: paused at <point> (pid N)`` to stderr and sleeps
        ``AMIBAKE_PAUSE_SECONDS`` (default 3600) or until the build is cancelled (Ctrl-C).
        Points: ``after-<create call>`` (``after-run-instances``, ``after-create-image``...),
        ``wait-<what>`` inside each wait (``wait-instance-running``, ``wait-image-available``...),
        ``run-checks`` as ``-checks`` start on the test instance, and ``cleanup`` as the cleanup of
        a failed or cancelled build starts (not cut short by Ctrl-C).
        """
        seconds = pause_requested(point)
        if seconds is None:
            return
        if interruptible:
            self.cancel.wait(seconds)
        else:
            time.sleep(seconds)

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> None:
        """Sleep, waking early (and raising :class:`BuildCancelled`) when ``cancel`` is set."""
        ev = cancel
        if ev is None:
            time.sleep(max(0.0, seconds))
            return
        if ev.wait(max(0.0, seconds)):
            raise BuildCancelled()
