"""The one error type of the HCL2 front end, carrying ``file:line:col``.

It is an :class:`~amibake.errors.InterpolationError` (a template expression that cannot be parsed
or evaluated); the loader gathers them into :class:`~amibake.errors.Problem` s of one
:class:`~amibake.errors.TemplateError`.
"""

from __future__ import annotations

from amibake.errors import InterpolationError, Pos, Problem


class HclError(InterpolationError):
    def __init__(
        self,
        message: str,
        file: str = "<expression>",
        line: int | None = None,
        col: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.col = col
        self.key = key
        super().__init__(message)

    @property
    def pos(self) -> Pos:
        return Pos(self.file, self.line, self.col)

    def problem(self) -> Problem:
        return Problem(self.message, self.key, self.pos)

    def __str__(self) -> str:
        return f"{self.pos}: {self.message}"
