"""Steps that overlap: independent steps run at once, and teardown that starts before the build ends.

* :class:`ConcurrentSteps` runs *lanes* of steps at once, one thread per lane (the steps of a lane in
  order). Each lane gets a child :class:`StepContext` sharing the build's undo stack, lock,
  leftovers and journal errors, so each step still registers its undo the moment its resource
  exists; only cancellation is its own. When a lane fails, the others are cancelled and waited for
  before the failure is raised, so the runner unwinds everything that any lane created.
* :func:`start_early_teardown` runs, in a background thread, the teardowns that named steps
  registered (newest first, as the runner would), while the build goes on. Each of those undos
  then runs at most once: the runner's own unwind finds it done (a no-op), and waits for the
  background thread first (an undo pushed at that moment), so nothing is removed twice and the
  temporaries are removed in their usual order.

The build's runner knows nothing of this: a :class:`ConcurrentSteps` is one step to it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from amibake.errors import AmibakeError
from amibake.steps.context import BuildCancelled, StepContext, Undo
from amibake.steps.runner import Step

#: how often a wait for the lanes looks at the build's own cancel event (a Ctrl-C)
CANCEL_CHECK_SECONDS = 0.1


def child_context(ctx: StepContext) -> StepContext:
    """A context for one lane: the build's undo stack, lock, leftovers and journal errors, with a
    cancel event of its own (set when the build is cancelled or another lane fails)."""
    return StepContext(
        ui=ctx.ui, cancel=threading.Event(), on_error=ctx.on_error, debug=ctx.debug,
        undo_stack=ctx.undo_stack, leftovers=ctx.leftovers, journal_errors=ctx.journal_errors,
        _lock=ctx._lock,
    )


class ConcurrentSteps:
    """Lanes of steps run at once; to the runner, one step named after all of them."""

    def __init__(self, lanes: Sequence[Sequence[Step]]) -> None:
        self.lanes = [list(lane) for lane in lanes if lane]
        self.name = " + ".join(step.name for lane in self.lanes for step in lane)

    def run(self, ctx: StepContext) -> None:
        run_lanes(ctx, self.lanes)


def _run_lane(lane: Sequence[Step], ctx: StepContext) -> None:
    for step in lane:
        ctx.check_cancel()
        ctx.current_step = step.name
        try:
            step.run(ctx)
        finally:
            ctx.current_step = ""


def run_lanes(ctx: StepContext, lanes: Sequence[Sequence[Step]]) -> None:
    """Run ``lanes`` at once and wait for every one. The first lane to fail (in time) gives the
    error raised; the other lanes are cancelled and waited for first. A build cancelled meanwhile
    cancels every lane and raises :class:`BuildCancelled`."""
    if not lanes:
        return
    children = [child_context(ctx) for _ in lanes]
    failures: list[BaseException] = []

    def stop_all() -> None:
        for child in children:
            child.cancel.set()

    pool = ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="amibake-lane")
    try:
        futures: list[Future[None]] = [pool.submit(_run_lane, lane, child)
                                       for lane, child in zip(lanes, children, strict=True)]
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=CANCEL_CHECK_SECONDS, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=futures.index):
                    exc = fut.exception()
                    if exc is not None:
                        failures.append(exc)
                        stop_all()
                if ctx.cancel.is_set():
                    stop_all()
        except BaseException:
            # a Ctrl-C in this thread: stop the lanes, and let them finish registering their undos
            stop_all()
            wait(futures)
            raise
    finally:
        pool.shutdown(wait=True)
    if ctx.cancel.is_set():
        raise BuildCancelled()
    # a lane cancelled because another failed fails with BuildCancelled: raise the real failure
    real = [exc for exc in failures if not isinstance(exc, BuildCancelled)]
    if real or failures:
        raise (real or failures)[0]


class _Once:
    """An undo that runs at most once, whoever calls it first; a later call waits for the first."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self._lock = threading.Lock()
        self._started = False

    def __call__(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self.fn()


def start_early_teardown(ctx: StepContext, steps: Collection[str], label: str) -> threading.Thread | None:
    """Start removing, in a background thread, the teardowns the steps named ``steps`` registered,
    newest first; failures are reported and kept in ``ctx.leftovers`` as the runner's unwind does.
    Pushes an undo that waits for the thread, so the runner's unwind (on success or failure) goes
    past these undos only once they are done; they are then no-ops. None when there is nothing."""
    with ctx._lock:
        taken = [u for u in ctx.undo_stack
                 if u.kind == "teardown" and u.step in steps and not isinstance(u.fn, _Once)]
        for undo in taken:
            undo.fn = _Once(undo.fn)
    if not taken:
        return None

    def remove() -> None:
        for undo in reversed(taken):
            try:
                undo.fn()
            except Exception as exc:
                with ctx._lock:
                    ctx.leftovers.append(undo.description)
                try:
                    ctx.ui.error(f"Error during cleanup ({undo.description}): {_message(exc)}")
                except Exception:  # an unwritable output must not cut the remaining undos short
                    pass

    thread = threading.Thread(target=remove, name="amibake-early-teardown")
    thread.start()
    ctx._push(Undo(f"wait for {label}", thread.join, "teardown", ctx.current_step))
    return thread


def _message(exc: BaseException) -> str:
    if isinstance(exc, AmibakeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
