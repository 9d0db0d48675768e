"""The step runner: order, cleanup stack, -on-error policies, cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.errors import BuildError
from amibake.steps.context import BuildCancelled, StepContext
from amibake.steps.runner import StepRunner


@dataclass
class RecUi:
    lines: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.lines.append(f"say {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"msg {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"err {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, question: str) -> str:
        self.lines.append(f"ask {question}")
        return self.answers.pop(0) if self.answers else ""


@dataclass
class FnStep:
    name: str
    fn: Callable[[StepContext], None]

    def run(self, ctx: StepContext) -> None:
        self.fn(ctx)


def creating(name: str, log: list[str], *, rollback: bool = False, fail: bool = False) -> FnStep:
    def fn(ctx: StepContext) -> None:
        log.append(f"create {name}")

        def undo() -> None:
            log.append(f"undo {name}")

        if rollback:
            ctx.on_failure(f"delete {name}", undo)
        else:
            ctx.defer(f"delete {name}", undo)
        if fail:
            raise BuildError(f"{name} broke")

    return FnStep(name, fn)


def failing(name: str, log: list[str]) -> FnStep:
    def fn(ctx: StepContext) -> None:
        log.append(f"run {name}")
        raise BuildError(f"{name} failed")

    return FnStep(name, fn)


def make(on_error: str = "cleanup", answers: list[str] | None = None) -> tuple[StepContext, RecUi]:
    ui = RecUi(answers=list(answers or []))
    ctx = StepContext(ui=ui, on_error=on_error)  # type: ignore[arg-type]
    return ctx, ui


def test_success_runs_teardown_in_reverse_and_keeps_outputs() -> None:
    log: list[str] = []
    ctx, _ = make()
    StepRunner(ctx).run([creating("key", log), creating("ami", log, rollback=True), creating("sg", log)])
    assert log == ["create key", "create ami", "create sg", "undo sg", "undo key"]
    assert ctx.undo_stack == []


def test_failure_undoes_everything_newest_first_including_the_failed_step() -> None:
    log: list[str] = []
    ctx, _ = make()
    steps = [creating("key", log), creating("ami", log, rollback=True), creating("inst", log, fail=True)]
    with pytest.raises(BuildError, match="inst broke"):
        StepRunner(ctx).run(steps)
    assert log == ["create key", "create ami", "create inst", "undo inst", "undo ami", "undo key"]


def test_steps_after_the_failure_do_not_run() -> None:
    log: list[str] = []
    ctx, _ = make()
    with pytest.raises(BuildError):
        StepRunner(ctx).run([failing("a", log), creating("b", log)])
    assert log == ["run a"]


def test_failing_undo_is_reported_and_the_others_still_run() -> None:
    log: list[str] = []
    ctx, ui = make()

    def bad(ctx: StepContext) -> None:
        def boom() -> None:
            raise RuntimeError("nope")

        ctx.defer("delete bad thing", boom)

    StepRunner(ctx).run([creating("key", log), FnStep("bad", bad), creating("sg", log)])
    assert log == ["create key", "create sg", "undo sg", "undo key"]
    assert ctx.leftovers == ["delete bad thing"]
    assert any("delete bad thing" in line and "nope" in line for line in ui.lines)


def test_abort_leaves_everything_and_lists_it() -> None:
    log: list[str] = []
    ctx, ui = make("abort")
    with pytest.raises(BuildError):
        StepRunner(ctx).run([creating("key", log), creating("sg", log), failing("x", log)])
    assert log == ["create key", "create sg", "run x"]
    assert ctx.leftovers == ["delete sg", "delete key"]
    text = "\n".join(ui.lines)
    assert "delete sg" in text and "delete key" in text and "-on-error=abort" in text


def test_run_cleanup_provisioner_mode_leaves_resources_like_abort() -> None:
    log: list[str] = []
    ctx, _ = make("run-cleanup-provisioner")
    with pytest.raises(BuildError):
        StepRunner(ctx).run([creating("key", log), failing("x", log)])
    assert log == ["create key", "run x"]


def test_abort_still_runs_teardown_on_success() -> None:
    log: list[str] = []
    ctx, _ = make("abort")
    StepRunner(ctx).run([creating("key", log)])
    assert log == ["create key", "undo key"]


def test_ask_retry_then_succeed() -> None:
    log: list[str] = []
    ctx, ui = make("ask", answers=["r"])
    tries = []

    def flaky(ctx: StepContext) -> None:
        tries.append(1)
        if len(tries) == 1:
            raise BuildError("first try fails")

    StepRunner(ctx).run([creating("key", log), FnStep("flaky", flaky)])
    assert len(tries) == 2
    assert log == ["create key", "undo key"]
    assert any(line.startswith("ask [c] Clean up") for line in ui.lines)


def test_ask_abort_leaves_resources() -> None:
    log: list[str] = []
    ctx, _ = make("ask", answers=["a"])
    with pytest.raises(BuildError, match="x failed"):
        StepRunner(ctx).run([creating("key", log), failing("x", log)])
    assert log == ["create key", "run x"]
    assert ctx.leftovers == ["delete key"]


def test_ask_cleanup_and_unknown_answers() -> None:
    log: list[str] = []
    ctx, _ = make("ask", answers=["what", "C"])
    with pytest.raises(BuildError):
        StepRunner(ctx).run([creating("key", log), failing("x", log)])
    assert log == ["create key", "run x", "undo key"]


def test_ask_without_terminal_cleans_up() -> None:
    log: list[str] = []
    ctx, _ = make("ask", answers=[])
    with pytest.raises(BuildError):
        StepRunner(ctx).run([creating("key", log), failing("x", log)])
    assert log[-1] == "undo key"


def test_cancel_between_steps_cleans_up_even_with_abort() -> None:
    log: list[str] = []
    ctx, _ = make("abort")

    def cancel(ctx: StepContext) -> None:
        ctx.cancel.set()

    with pytest.raises(BuildCancelled):
        StepRunner(ctx).run(
            [
                creating("key", log),
                creating("ami", log, rollback=True),
                FnStep("c", cancel),
                creating("x", log),
            ]
        )
    assert log == ["create key", "create ami", "undo ami", "undo key"]


def test_sleep_wakes_on_cancel() -> None:
    ctx, _ = make()
    threading.Timer(0.05, ctx.cancel.set).start()
    with pytest.raises(BuildCancelled):
        ctx.sleep(5, ctx.cancel)


def test_keyboard_interrupt_cleans_up() -> None:
    log: list[str] = []
    ctx, _ = make()

    def interrupt(ctx: StepContext) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        StepRunner(ctx).run([creating("key", log), FnStep("i", interrupt)])
    assert log == ["create key", "undo key"]


def test_debug_pauses_after_each_step() -> None:
    log: list[str] = []
    ctx, ui = make()
    ctx.debug = True
    StepRunner(ctx).run([creating("key", log), creating("sg", log)])
    pauses = [line for line in ui.lines if line.startswith("ask Pausing after run of step")]
    assert len(pauses) == 2


@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=0, max_size=8),
    st.integers(min_value=0, max_value=8),
)
def test_property_undo_order_is_reverse_of_creation(kinds: list[tuple[bool, bool]], fail_at: int) -> None:
    """Whatever the mix, undos run newest first; rollbacks only when the build failed."""
    log: list[str] = []
    ctx, _ = make()
    steps = [creating(f"r{i}", log, rollback=rb) for i, (rb, _) in enumerate(kinds)]
    failed = fail_at < len(steps)
    if failed:
        steps.insert(fail_at, failing("boom", log))
    try:
        StepRunner(ctx).run(steps)
    except BuildError:
        assert failed
    created = [line.split()[1] for line in log if line.startswith("create")]
    undone = [line.split()[1] for line in log if line.startswith("undo")]
    expected = [n for n in reversed(created) if failed or not kinds[int(n[1:])][0]]
    assert undone == expected
