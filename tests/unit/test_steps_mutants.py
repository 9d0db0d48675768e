"""The step runner's and context's details that mutation testing (docs/mutation.md) found untested
in-process: the exact text of what the runner reports (ask, abort, a failing undo, the journal), the
answers it accepts, pause points, sleeps, and the Ui whose output failures never stop a build."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from amibake.errors import BuildError
from amibake.steps import context as context_module
from amibake.steps.context import (
    BuildCancelled,
    JournalUnwritable,
    StepContext,
    SturdyUi,
    Undo,
    pause_requested,
)
from amibake.steps.runner import ASK_PROMPT, StepRunner


@dataclass
class RecUi:
    lines: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    fail_errors: bool = False

    def say(self, message: str) -> None:
        self.lines.append(f"say {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"msg {message}")

    def error(self, message: str) -> None:
        if self.fail_errors:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.lines.append(f"err {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        self.lines.append(f"progress {label} {fraction}")

    def ask(self, question: str) -> str:
        self.lines.append(f"ask {question}")
        return self.answers.pop(0) if self.answers else ""


@dataclass
class FnStep:
    name: str
    fn: Callable[[StepContext], None]

    def run(self, ctx: StepContext) -> None:
        self.fn(ctx)


def make(on_error: str = "cleanup", answers: list[str] | None = None) -> tuple[StepContext, RecUi]:
    ui = RecUi(answers=list(answers or []))
    return StepContext(ui=ui, on_error=on_error), ui


def deferring(*names: str, log: list[str], rollback: bool = False) -> FnStep:
    def fn(ctx: StepContext) -> None:
        for name in names:
            (ctx.on_failure if rollback else ctx.defer)(f"delete {name}", lambda n=name: log.append(n))

    return FnStep("make-" + "-".join(names), fn)


def failing(name: str, exc: Exception | None = None) -> FnStep:
    def fn(ctx: StepContext) -> None:
        raise exc or BuildError(f"{name} failed")

    return FnStep(name, fn)


# ---- the runner's messages ---------------------------------------------------------------------


def test_ask_reports_the_error_and_the_step_then_asks_the_prompt() -> None:
    ctx, ui = make("ask", answers=["c"])
    with pytest.raises(BuildError):
        StepRunner(ctx).run([failing("boot")])
    assert ui.lines == ["err boot failed\n\n==> Step 'boot' failed", f"ask {ASK_PROMPT}"]
    assert ASK_PROMPT == ("[c] Clean up and exit, [a] abort without cleanup, or [r] retry step "
                          "(build may fail even if retry succeeds)?")


def test_a_non_amibake_error_is_shown_with_its_type() -> None:
    ctx, ui = make("ask", answers=["c"])
    with pytest.raises(ValueError):
        StepRunner(ctx).run([failing("boot", ValueError("bad value"))])
    assert ui.lines[0] == "err ValueError: bad value\n\n==> Step 'boot' failed"


@pytest.mark.parametrize(("answers", "tries"), [
    (["  R  "], 2), (["retry"], 2), (["x", "?", "r"], 2), (["r", "r"], 3),
])
def test_answers_are_read_by_their_first_letter_whatever_the_case(answers: list[str], tries: int) -> None:
    ctx, ui = make("ask", answers=answers)
    count: list[int] = []

    def flaky(ctx: StepContext) -> None:
        count.append(1)
        if len(count) < tries:
            raise BuildError("not yet")

    StepRunner(ctx).run([FnStep("flaky", flaky)])
    assert len(count) == tries
    assert ui.lines.count(f"ask {ASK_PROMPT}") == len(answers)


def test_abort_by_answer_lists_what_is_left_newest_first() -> None:
    log: list[str] = []
    ctx, ui = make("ask", answers=["Abort"])
    with pytest.raises(BuildError):
        StepRunner(ctx).run([deferring("key", "sg", log=log), failing("x")])
    assert log == [] and ctx.leftovers == ["delete sg", "delete key"]
    assert ui.lines[-3:] == ["err Skipping cleanup (-on-error=ask); these resources are left behind:",
                             "err   - delete sg", "err   - delete key"]


def test_abort_with_nothing_left_says_nothing() -> None:
    ctx, ui = make("abort")
    with pytest.raises(BuildError):
        StepRunner(ctx).run([failing("x")])
    assert ui.lines == [] and ctx.leftovers == []


def test_a_cancelled_ask_build_is_not_asked_and_cleans_up() -> None:
    log: list[str] = []
    ctx, ui = make("ask", answers=["a"])

    def cancel_then_fail(ctx: StepContext) -> None:
        ctx.cancel.set()
        raise BuildError("failed while cancelling")

    with pytest.raises(BuildError):
        StepRunner(ctx).run([deferring("key", log=log), FnStep("c", cancel_then_fail)])
    assert log == ["key"] and ui.lines == []


def test_a_cancellation_inside_a_step_is_never_asked_about() -> None:
    log: list[str] = []
    ctx, ui = make("ask", answers=["r"])

    def cancelled(ctx: StepContext) -> None:
        raise BuildCancelled()

    with pytest.raises(BuildCancelled, match=r"^Build was cancelled\.$"):
        StepRunner(ctx).run([deferring("key", log=log), FnStep("c", cancelled)])
    assert log == ["key"] and ui.lines == []


def test_a_failing_undo_is_reported_with_its_description_and_error() -> None:
    ctx, ui = make()

    def step(ctx: StepContext) -> None:
        ctx.defer("delete a", lambda: None)
        ctx.defer("delete b", lambda: (_ for _ in ()).throw(RuntimeError("gone wrong")))
        ctx.on_failure("delete c", lambda: (_ for _ in ()).throw(BuildError("not found")))

    with pytest.raises(BuildError):
        StepRunner(ctx).run([FnStep("s", step), failing("x")])
    assert ui.lines == ["err Error during cleanup (delete c): not found",
                        "err Error during cleanup (delete b): RuntimeError: gone wrong"]
    assert ctx.leftovers == ["delete c", "delete b"]


def test_an_unwritable_output_does_not_cut_the_cleanup_short() -> None:
    log: list[str] = []
    ctx, ui = make()
    ui.fail_errors = True

    def step(ctx: StepContext) -> None:
        ctx.defer("delete a", lambda: log.append("a"))
        ctx.defer("delete b", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
        ctx.journal_failed("cannot write the run journal j")

    with pytest.raises(JournalUnwritable):
        StepRunner(ctx).run([FnStep("s", step)])
    assert log == ["a"] and ctx.leftovers == ["delete b"]


def test_the_step_being_run_is_known_while_it_runs_and_to_its_undos() -> None:
    seen: list[str] = []
    ctx, _ = make()

    def step(ctx: StepContext) -> None:
        seen.append(ctx.current_step)
        ctx.defer("delete a", lambda: None)

    runner = StepRunner(ctx)
    runner._run_step(FnStep("create-a", step))
    assert seen == ["create-a"] and ctx.current_step == ""
    assert ctx.pending() == [Undo("delete a", ctx.undo_stack[0].fn, "teardown", "create-a")]
    with pytest.raises(BuildError):
        runner._run_step(failing("x"))
    assert ctx.current_step == ""


def test_debug_pauses_name_the_step() -> None:
    ctx, ui = make()
    ctx.debug = True
    StepRunner(ctx).run([FnStep("one", lambda ctx: None)])
    assert ui.lines == ["ask Pausing after run of step 'one'. Press enter to continue."]


# ---- the journal ---------------------------------------------------------------------------------


def test_a_journal_failure_stops_the_build_after_the_step_and_is_reported_once() -> None:
    log: list[str] = []
    ctx, ui = make()

    def step(ctx: StepContext) -> None:
        ctx.defer("delete a", lambda: log.append("a"))
        ctx.journal_failed("cannot write the run journal j: disk full")
        ctx.journal_failed("second")
        ctx.journal_failed("third")

    runner = StepRunner(ctx)
    with pytest.raises(JournalUnwritable) as caught:
        runner.run([FnStep("s", step), FnStep("never", lambda ctx: log.append("never"))])
    assert str(caught.value) == ("cannot write the run journal j: disk full; stopping the build and "
                                 "removing what it created")
    assert log == ["a"]
    assert ui.lines == [
        "err The run journal could not be written: cannot write the run journal j: disk full (and 2 more "
        "record(s) missing). Every cleanup step still ran; anything one could not remove is named in its "
        "own error and carries the build's amibake:run-id tag, which `amibake cleanup` searches by."]
    runner.unwind(include_rollback=True)
    assert len(ui.lines) == 1  # nothing new to report
    ctx.journal_failed("fourth")
    runner.unwind(include_rollback=True)
    assert len(ui.lines) == 2 and "(and 3 more record(s) missing)" in ui.lines[1]


def test_a_single_journal_problem_is_reported_without_a_count() -> None:
    ctx, ui = make("abort")
    ctx.journal_failed("cannot write j")
    with pytest.raises(JournalUnwritable):
        StepRunner(ctx).run([FnStep("s", lambda ctx: None)])
    assert ui.lines == [
        "err The run journal could not be written: cannot write j. Every cleanup step still ran; anything "
        "one could not remove is named in its own error and carries the build's amibake:run-id tag, "
        "which `amibake cleanup` searches by."]


def test_check_journal_passes_while_nothing_failed() -> None:
    ctx, _ = make()
    ctx.check_journal()
    ctx.journal_failed("first")
    ctx.journal_failed("second")
    with pytest.raises(JournalUnwritable, match=r"^first; stopping"):
        ctx.check_journal()


# ---- pause points and sleeps -----------------------------------------------------------------------


@pytest.mark.parametrize(("at", "point", "paused"), [
    ("", "cleanup", False), ("cleanup", "cleanup", True), ("wait-x, cleanup ,", "cleanup", True),
    ("*", "after-run-instances", True), ("cleanup", "after-run-instances", False),
    ("clean", "cleanup", False), (" , ", "cleanup", False), ("wait-x,cleanup", "cleanup", True),
    ("wait-x cleanup", "cleanup", False),
])
def test_pause_points_are_named_in_a_comma_list(
    at: str, point: str, paused: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", at)
    monkeypatch.delenv("AMIBAKE_PAUSE_SECONDS", raising=False)
    assert pause_requested(point) == (3600.0 if paused else None)
    expected = f"amibake: paused at {point} (pid {os.getpid()})\n" if paused else ""
    assert capsys.readouterr().err == expected


@pytest.mark.parametrize(("seconds", "expected"), [("2.5", 2.5), ("-4", 0.0), ("soon", 3600.0), ("0", 0.0)])
def test_pause_seconds(seconds: str, expected: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", "p")
    monkeypatch.setenv("AMIBAKE_PAUSE_SECONDS", seconds)
    assert pause_requested("p") == expected


def test_no_pause_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMIBAKE_PAUSE_AT", raising=False)
    assert pause_requested("cleanup") is None


def test_a_pause_waits_on_cancel_unless_it_must_not_be_interrupted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(context_module.time, "sleep", slept.append)
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", "*")
    monkeypatch.setenv("AMIBAKE_PAUSE_SECONDS", "30")
    waited: list[float | None] = []

    class Ev(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout)
            return False

    ctx, _ = make()
    ctx.cancel = Ev()
    ctx.pause("wait-x")
    assert waited == [30.0] and slept == []
    assert capsys.readouterr().err == f"amibake: paused at wait-x (pid {os.getpid()})\n"
    ctx.pause("cleanup", interruptible=False)
    assert waited == [30.0] and slept == [30.0]
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", "other")
    ctx.pause("wait-x")
    ctx.pause("cleanup", interruptible=False)
    assert waited == [30.0] and slept == [30.0]


def test_the_cleanup_pause_comes_only_when_there_is_something_to_undo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points: list[tuple[str, bool]] = []
    monkeypatch.setattr(StepContext, "pause",
                        lambda self, point, *, interruptible=True: points.append((point, interruptible)))
    ctx, _ = make()
    with pytest.raises(BuildError):
        StepRunner(ctx).run([failing("x")])
    assert points == []
    ctx, _ = make()
    with pytest.raises(BuildError):
        StepRunner(ctx).run([deferring("a", log=[]), failing("x")])
    assert points == [("cleanup", False)]


def test_sleep_without_cancel_sleeps_never_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(context_module.time, "sleep", slept.append)
    ctx, _ = make()
    ctx.sleep(2.0)
    ctx.sleep(-1.0)
    assert slept == [2.0, 0.0]


def test_sleep_with_cancel_waits_never_negative_and_returns_when_not_cancelled() -> None:
    waited: list[float | None] = []

    class Ev(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout)
            return False

    ctx, _ = make()
    ctx.sleep(-3.0, Ev())
    ctx.sleep(0.5, Ev())
    assert waited == [0.0, 0.5]


def test_check_cancel_and_cancelled() -> None:
    ctx, _ = make()
    assert not ctx.cancelled
    ctx.check_cancel()
    ctx.cancel.set()
    assert ctx.cancelled
    with pytest.raises(BuildCancelled, match=r"^Build was cancelled\.$"):
        ctx.check_cancel()


# ---- SturdyUi: output failures lose the line, never the build ----------------------------------------


class BrokenUi:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def _raise(self, *_args: object) -> None:
        raise self.exc

    say = message = error = progress = _raise

    def ask(self, question: str) -> str:
        raise self.exc


def test_sturdy_ui_passes_everything_through() -> None:
    inner = RecUi(answers=["yes"])
    ui = SturdyUi(inner)
    ui.say("s")
    ui.message("m")
    ui.error("e")
    ui.progress("p", 0.5)
    assert ui.ask("q?") == "yes"
    assert inner.lines == ["say s", "msg m", "err e", "progress p 0.5", "ask q?"]


def test_sturdy_ui_loses_lines_on_os_errors_and_asks_no_one() -> None:
    ui = SturdyUi(BrokenUi(OSError(errno.EFBIG, "File too large")))
    ui.say("s")
    ui.message("m")
    ui.error("e")
    ui.progress("p", None)
    assert ui.ask("q?") == ""


@pytest.mark.parametrize("method", ["say", "message", "error", "progress", "ask"])
def test_sturdy_ui_lets_other_errors_through(method: str) -> None:
    ui = SturdyUi(BrokenUi(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        getattr(ui, method)(*(("p", 0.5) if method == "progress" else ("x",)))


def test_two_journal_problems_are_counted() -> None:
    ctx, ui = make()
    ctx.journal_failed("first")
    ctx.journal_failed("second")
    with pytest.raises(JournalUnwritable):
        StepRunner(ctx).run([FnStep("s", lambda ctx: None)])
    assert ui.lines[0].startswith(
        "err The run journal could not be written: first (and 1 more record(s) missing).")


def test_a_rollback_knows_the_step_that_registered_it() -> None:
    ctx, _ = make()

    def step(ctx: StepContext) -> None:
        ctx.on_failure("deregister ami", lambda: None)

    StepRunner(ctx)._run_step(FnStep("create-image", step))
    (undo,) = ctx.pending()
    assert (undo.description, undo.kind, undo.step) == ("deregister ami", "rollback", "create-image")
