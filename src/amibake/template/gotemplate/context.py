"""What a template sees when it is rendered (:class:`Context`) and the errors of the engine.

The engine reads its context through the :class:`Context` protocol, so it does not depend on
the :class:`~amibake.template.interpolate.InterpContext` dataclass (nor on the plugin defaults
that dataclass carries).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from amibake.errors import InterpolationError


class Context(Protocol):
    """Everything a template string may refer to (see ``InterpContext`` for each field)."""

    user_vars: Mapping[str, str]
    allow_env: bool
    env: Mapping[str, str] | None
    build_name: str | None
    build_type: str | None
    template_dir: str | None
    init_time: datetime
    packer_version: str
    data: Any
    keep_unknown_fields: bool
    build_fn_data: Mapping[str, Any] | None
    secrets_out: list[str] | None
    extra_funcs: Mapping[str, Callable[..., str]]
    renamed_funcs: Mapping[str, str]

    @property
    def timestamp(self) -> int:
        """``{{timestamp}}``: the run's start as Unix seconds."""
        ...

    def functions(self) -> frozenset[str]:
        """The names of the functions usable in a template."""
        ...


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class TemplateSyntaxError(InterpolationError):
    """A string that is not a valid template (Go's parse errors)."""

    def __init__(self, detail: str, offset: int, line: int) -> None:
        self.detail = detail
        self.line = line
        super().__init__(f"template: root:{line}: {detail}", offset)


class TemplateExecError(InterpolationError):
    """A template that failed while being rendered (Go's ``ExecError``)."""

    def __init__(self, detail: str, offset: int, line: int, column: int, context: str) -> None:
        self.detail = detail
        self.line = line
        self.column = column
        self.context = context
        super().__init__(f'template: root:{line}:{column}: executing "root" at <{context}>: {detail}', offset)


class DeepInterpolationError(InterpolationError):
    """An error in one string of a config, worded as Packer's ``RenderMap``.

    ``key`` is the top-level key (what Packer names), ``key_path`` the full path to the string
    (``tags.Name``, ``run_tags.Name``, ``inline[2]``), ``value`` the string and ``cause`` the error.
    """

    def __init__(self, verb: str, key: str, key_path: str, value: str, cause: InterpolationError) -> None:
        self.key = key
        self.key_path = key_path
        self.value = value
        self.cause = cause
        head = f"{verb} '{key}': " if key else ""
        super().__init__(f"{head}{cause.message} in:\n\n{value}", cause.offset)


def _line_col(text: str, pos: int) -> tuple[int, int]:
    """Go's 1-based line and 0-based *byte* column of ``pos``."""
    before = text[:pos]
    nl = before.rfind("\n")
    return before.count("\n") + 1, len(before[nl + 1 :].encode("utf-8", "surrogatepass"))
