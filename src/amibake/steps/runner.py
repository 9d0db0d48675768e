"""Run a build's steps in order; undo what they created, as ``-on-error`` says.

A step is anything with a ``name`` and a ``run(ctx)`` method. Steps register their undos on the
:class:`~amibake.steps.context.StepContext` (``ctx.defer`` / ``ctx.on_failure``) the moment a resource
exists. When the steps end:

* success: every *teardown* is run, newest first; *rollbacks* are dropped (the outputs are kept);
* failure or cancellation, by ``on_error``:

  - ``cleanup`` (default): every undo, teardown and rollback, newest first; then the error is raised;
  - ``abort`` and ``run-cleanup-provisioner``: nothing is undone; what is left is listed by name;
  - ``ask``: ``[c]`` cleans up, ``[a]`` aborts, ``[r]`` runs the failed step again.

A failing undo is reported and the others still run; what could not be undone is kept in
``ctx.leftovers``. With ``debug``, the runner pauses after each step, as ``packer build -debug``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from amibake.errors import AmibakeError
from amibake.steps.context import BuildCancelled, StepContext, Undo


class Step(Protocol):
    name: str

    def run(self, ctx: StepContext) -> None: ...


ASK_PROMPT = (
    "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step "
    "(build may fail even if retry succeeds)?"
)


class StepRunner:
    def __init__(self, ctx: StepContext) -> None:
        self.ctx = ctx
        self._user_abort = False

    def run(self, steps: Sequence[Step]) -> None:
        """Run ``steps``; raise the first failure (after undoing, unless told not to)."""
        try:
            for step in steps:
                self._run_step(step)
        except BaseException as exc:
            # KeyboardInterrupt lands here too: a cancelled build still cleans up
            self._after_failure(exc)
            raise
        self.unwind(include_rollback=False)

    def _run_step(self, step: Step) -> None:
        ctx = self.ctx
        while True:
            ctx.check_cancel()
            ctx.current_step = step.name
            try:
                step.run(ctx)
            except BuildCancelled:
                raise
            except Exception as exc:
                if ctx.on_error == "ask" and not ctx.cancelled:
                    answer = self._ask(step, exc)
                    if answer == "r":
                        continue
                    if answer == "a":
                        self._user_abort = True
                raise
            finally:
                ctx.current_step = ""
            break
        if ctx.debug:
            ctx.ui.ask(f"Pausing after run of step '{step.name}'. Press enter to continue.")

    def _ask(self, step: Step, exc: Exception) -> str:
        self.ctx.ui.error(f"{_message(exc)}\n\n==> Step {step.name!r} failed")
        while True:
            answer = self.ctx.ui.ask(ASK_PROMPT).strip().lower()[:1]
            if answer in ("c", "a", "r"):
                return answer
            if answer == "":
                # no terminal to ask on: the safe choice
                return "c"

    def _after_failure(self, exc: BaseException) -> None:
        ctx = self.ctx
        abort = self._user_abort or (
            ctx.on_error in ("abort", "run-cleanup-provisioner") and not isinstance(exc, BuildCancelled)
        )
        if abort:
            left = [u.description for u in reversed(ctx.pending())]
            ctx.leftovers.extend(left)
            if left:
                ctx.ui.error(
                    f"Skipping cleanup (-on-error={ctx.on_error}); these resources are left behind:"
                )
                for description in left:
                    ctx.ui.error(f"  - {description}")
            return
        if ctx.pending():
            ctx.pause("cleanup", interruptible=False)
        self.unwind(include_rollback=True)

    def unwind(self, *, include_rollback: bool) -> None:
        """Run the registered undos, newest first; report and keep going past failures."""
        ctx = self.ctx
        while True:
            with ctx._lock:
                if not ctx.undo_stack:
                    return
                undo: Undo = ctx.undo_stack.pop()
            if undo.kind == "rollback" and not include_rollback:
                continue
            try:
                undo.fn()
            except Exception as exc:
                ctx.leftovers.append(undo.description)
                ctx.ui.error(f"Error during cleanup ({undo.description}): {_message(exc)}")


def _message(exc: BaseException) -> str:
    if isinstance(exc, AmibakeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
