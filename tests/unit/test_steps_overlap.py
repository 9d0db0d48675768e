"""steps/overlap.py: lanes of steps run at once, and teardown started before the build ends.

Deterministic: steps meet on events (a wait that would never end if the lanes ran one after the
other fails on its timeout), never on sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from amibake.errors import BuildError
from amibake.steps.context import BuildCancelled, StepContext
from amibake.steps.overlap import ConcurrentSteps, run_lanes, start_early_teardown
from amibake.steps.runner import StepRunner

#: long enough never to be reached when the code is right; a wrong (sequential) run fails on it
MEET = 10.0


@dataclass
class Ui:
    lines: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.lines.append(message)

    def message(self, message: str) -> None:
        self.lines.append(message)

    def error(self, message: str) -> None:
        self.lines.append(f"error: {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, question: str) -> str:
        return ""


@dataclass
class Fn:
    name: str
    fn: Callable[[StepContext], None]

    def run(self, ctx: StepContext) -> None:
        self.fn(ctx)


def test_lanes_run_at_once_and_each_lane_in_order() -> None:
    ctx = StepContext(ui=Ui())
    a_started, b_started = threading.Event(), threading.Event()
    order: list[str] = []

    def a(c: StepContext) -> None:
        a_started.set()
        # only returns if lane b runs at the same time
        assert b_started.wait(MEET)
        order.append("a")

    def b(c: StepContext) -> None:
        b_started.set()
        assert a_started.wait(MEET)
        order.append("b")

    def b2(c: StepContext) -> None:
        order.append("b2")
        c.defer("undo b2", lambda: None)

    ConcurrentSteps([[Fn("A", a)], [Fn("B", b), Fn("B2", b2)]]).run(ctx)
    assert sorted(order) == ["a", "b", "b2"] and order.index("b") < order.index("b2")
    # the undo went on the build's stack, named after the step that registered it
    assert [(u.description, u.step) for u in ctx.pending()] == [("undo b2", "B2")]


def test_a_failing_lane_cancels_the_others_and_everything_made_is_undone() -> None:
    ui = Ui()
    ctx = StepContext(ui=ui)
    made = threading.Event()
    undone: list[str] = []
    later_ran: list[str] = []

    def key(c: StepContext) -> None:
        c.defer("key pair k", lambda: undone.append("key"))
        made.set()
        # cancelled by the other lane's failure (a lane that ignored it would hang here until MEET)
        assert c.cancel.wait(MEET)
        c.check_cancel()

    def group(c: StepContext) -> None:
        assert made.wait(MEET)
        raise BuildError("cannot create the group")

    steps = [ConcurrentSteps([[Fn("StepKeyPair", key), Fn("Later", lambda c: later_ran.append("x"))],
                              [Fn("StepSecurityGroup", group)]]),
             Fn("Launch", lambda c: later_ran.append("launch"))]
    with pytest.raises(BuildError, match="cannot create the group"):
        StepRunner(ctx).run(steps)
    assert undone == ["key"] and later_ran == []
    assert not ctx.cancel.is_set()  # the build itself was not cancelled: it failed


def test_the_builds_cancel_reaches_every_lane() -> None:
    ctx = StepContext(ui=Ui())
    waiting = [threading.Event(), threading.Event()]
    seen: list[int] = []

    def waiter(i: int) -> Callable[[StepContext], None]:
        def fn(c: StepContext) -> None:
            waiting[i].set()
            if c.cancel.wait(MEET):
                seen.append(i)
            c.check_cancel()
        return fn

    def cancel_when_both_wait() -> None:
        for ev in waiting:
            ev.wait(MEET)
        ctx.cancel.set()

    t = threading.Thread(target=cancel_when_both_wait)
    t.start()
    with pytest.raises(BuildCancelled):
        run_lanes(ctx, [[Fn("A", waiter(0))], [Fn("B", waiter(1))]])
    t.join()
    assert sorted(seen) == [0, 1]


def test_early_teardown_runs_the_named_steps_undos_once_newest_first() -> None:
    ui = Ui()
    ctx = StepContext(ui=ui)
    calls: list[str] = []
    release = threading.Event()

    def undo(name: str) -> Callable[[], None]:
        def fn() -> None:
            if name == "instance":
                # the early cleanup is still busy while the build goes on
                assert release.wait(MEET)
            calls.append(name)
        return fn

    for step, name in (("StepKeyPair", "key"), ("StepSecurityGroup", "group"),
                       ("StepRunSourceInstance", "instance")):
        ctx.current_step = step
        ctx.defer(name, undo(name))
    ctx.current_step = "StepCreateAMI"
    ctx.defer("intermediary AMI", undo("intermediary"))  # not a temporary of the named steps
    ctx.on_failure("AMI", undo("ami"))
    ctx.current_step = "StepAMIRegionCopy"
    thread = start_early_teardown(ctx, {"StepKeyPair", "StepSecurityGroup", "StepRunSourceInstance"}, "x")
    assert thread is not None
    # the build goes on while the instance is being removed
    ctx.on_failure("copy", undo("copy"))
    release.set()
    thread.join(MEET)
    assert calls == ["instance", "group", "key"]
    # the runner's cleanup on success: the named undos are not run again, the others are
    StepRunner(ctx).unwind(include_rollback=False)
    assert calls == ["instance", "group", "key", "intermediary"]
    assert start_early_teardown(StepContext(ui=Ui()), {"StepKeyPair"}, "x") is None


def test_a_failure_while_the_early_teardown_runs_waits_for_it_and_removes_nothing_twice() -> None:
    ui = Ui()
    ctx = StepContext(ui=ui)
    calls: list[str] = []
    copy_undone = threading.Event()

    def terminate() -> None:
        # still terminating when the copy fails; the copy's rollback runs meanwhile
        assert copy_undone.wait(MEET)
        calls.append("instance")

    def broken_group() -> None:
        calls.append("group (failed)")
        raise BuildError("DependencyViolation")

    ctx.current_step = "StepSecurityGroup"
    ctx.defer("security group sg-1", broken_group)
    ctx.current_step = "StepRunSourceInstance"
    ctx.defer("instance i-1", terminate)
    ctx.current_step = "StepCreateAMI"
    ctx.on_failure("AMI ami-1", lambda: calls.append("ami"))

    def copy_rollback() -> None:
        calls.append("copy")
        copy_undone.set()

    def copy(c: StepContext) -> None:
        start_early_teardown(c, {"StepSecurityGroup", "StepRunSourceInstance"}, "the temporaries")
        c.on_failure("AMI ami-2 (copy)", copy_rollback)
        raise BuildError("copy failed")

    with pytest.raises(BuildError, match="copy failed"):
        StepRunner(ctx).run([Fn("StepAMIRegionCopy", copy)])
    # the copy's rollback first (newest), then the wait for the early cleanup, then the older
    # rollback; the group's failed removal is reported once and not tried again
    assert calls == ["copy", "instance", "group (failed)", "ami"]
    assert ctx.leftovers == ["security group sg-1"]
    assert [line for line in ui.lines if line.startswith("error:")] == [
        "error: Error during cleanup (security group sg-1): DependencyViolation"]
