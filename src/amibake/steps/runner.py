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
``ctx.leftovers``. A journal that can no longer be written stops the build after the step that
found it (``ctx.journal_failed``), never an undo: every undo runs, and the end of the cleanup says
what the journal is missing. With ``debug``, the runner pauses after each step, as
``packer build -debug``.
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
        #: how many journal problems the last report covered
        self._journal_reported = 0

    def run(self, steps: Sequence[Step]) -> None:
        """Run ``steps``; raise the first failure (after undoing, unless told not to)."""
        try:
            for step in steps:
                self._run_step(step)
                self.ctx.check_journal()
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
            self._report_journal()
            return
        if ctx.pending():
            ctx.pause("cleanup", interruptible=False)
        self.unwind(include_rollback=True)

    def unwind(self, *, include_rollback: bool) -> None:
        """Run the registered undos, newest first; report and keep going past failures (of the
        undo, of the journal, or of the output the report goes to)."""
        ctx = self.ctx
        while True:
            with ctx._lock:
                if not ctx.undo_stack:
                    break
                undo: Undo = ctx.undo_stack.pop()
            if undo.kind == "rollback" and not include_rollback:
                continue
            try:
                undo.fn()
            except Exception as exc:
                ctx.leftovers.append(undo.description)
                _report(ctx, f"Error during cleanup ({undo.description}): {_message(exc)}")
        self._report_journal()

    def _report_journal(self) -> None:
        """Once per build: what the journal is missing, after every undo has run."""
        ctx = self.ctx
        with ctx._lock:
            problems = list(ctx.journal_errors)
        if not problems or self._journal_reported == len(problems):
            return
        self._journal_reported = len(problems)
        _report(ctx, (
            f"The run journal could not be written: {problems[0]}"
            + (f" (and {len(problems) - 1} more record(s) missing)" if len(problems) > 1 else "")
            + ". Every cleanup step still ran; anything one could not remove is named in its own error "
            "and carries the build's amibake:run-id tag, which `amibake cleanup` searches by."
        ))


def _report(ctx: StepContext, text: str) -> None:
    """An error line that cannot stop the cleanup (stderr may be full too)."""
    try:
        ctx.ui.error(text)
    except Exception:  # an unwritable output must not cut the remaining undos short
        pass


def _message(exc: BaseException) -> str:
    if isinstance(exc, AmibakeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
