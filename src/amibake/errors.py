"""The exception tree. Library code raises these; only the CLI turns them into exit codes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """A place in a user's file. ``line`` and ``column`` are 1-based; either may be unknown."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        s = self.file
        if self.line is not None:
            s += f":{self.line}"
            if self.column is not None:
                s += f":{self.column}"
        return s


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input.

    ``key`` is the key path inside the template (``builders[0].ami_name``,
    ``source.amazon-ebs.ubuntu.ssh_port``) and ``pos`` where it stands, when known.
    """

    message: str
    key: str | None = None
    pos: Pos | None = None

    def __str__(self) -> str:
        where = []
        if self.pos is not None:
            where.append(str(self.pos))
        if self.key:
            where.append(self.key)
        return (": ".join(where) + ": " if where else "") + self.message


class AmibakeError(Exception):
    """Base of every error amibake reports to the user (never shown with a traceback)."""

    exit_code = 1


class UserInputError(AmibakeError):
    """Bad input: a template, a variable, a flag. Carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem | str]) -> None:
        self.problems: list[Problem] = [p if isinstance(p, Problem) else Problem(p) for p in problems]
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        lines = [f"{len(self.problems)} errors occurred:"]
        lines += [f"* {p}" for p in self.problems]
        return "\n".join(lines)


class TemplateError(UserInputError):
    """A template that cannot be loaded or fails validation."""


class InterpolationError(AmibakeError):
    """A template expression (``{{ ... }}`` or HCL) that cannot be parsed or evaluated."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message)


class BuildError(AmibakeError):
    """A step of a build failed."""


class CommunicatorError(AmibakeError):
    """SSH (or another communicator) could not connect or run a command."""


class Interrupted(AmibakeError):
    """The build was interrupted by a signal."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by signal {signum}")
