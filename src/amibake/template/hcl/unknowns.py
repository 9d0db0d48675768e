"""Values unknown during ``validate`` (data sources not executed) are not value-checked.

Without ``-evaluate-datasources``, a data source's outputs are unknown, and so is every value made
from them; in a plugin config they are Packer's placeholder ``"<unknown>"``
(:data:`~amibake.template.hcl.values.UNKNOWN_PLACEHOLDER`, typed :class:`UnknownStr`). A check of
such a value (a number, a duration, an enum, ``key=value``...) would judge the placeholder, not the
value the build will have: Packer's ``validate`` reports nothing for it, and neither does amibake.
What is wrong whatever the value (an unknown option name, an option amibake refuses) is still
reported. :func:`prepare` wraps a plugin config's decode with that rule.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from amibake.errors import Problem
from amibake.template.hcl.values import UnknownStr

C = TypeVar("C")

#: problems about an option's name, never its value: kept at an unknown value's key
_KEY_PROBLEMS = ("unknown configuration key: ", "is not supported by amibake yet")


def unknown_paths(value: Any, prefix: str = "") -> list[str]:
    """The key paths (``a.b``, ``a[0]``, as problems name them) of the unknown values in ``value``."""
    if isinstance(value, UnknownStr):
        return [prefix]
    out: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            out += unknown_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            out += unknown_paths(v, f"{prefix}[{i}]")
    return out


def without_unknowns(value: Any, paths: Collection[str] | None = None, prefix: str = "") -> Any:
    """``value`` with the unknown map entries and list items at ``paths`` (default: every one) left
    out, so that defaults stand in for them."""

    def drop(v: Any, at: str) -> bool:
        return isinstance(v, UnknownStr) and (paths is None or at in paths)

    if isinstance(value, Mapping):
        return {k: without_unknowns(v, paths, f"{prefix}.{k}" if prefix else str(k))
                for k, v in value.items() if not drop(v, f"{prefix}.{k}" if prefix else str(k))}
    if isinstance(value, list | tuple):
        return [without_unknowns(v, paths, f"{prefix}[{i}]")
                for i, v in enumerate(value) if not drop(v, f"{prefix}[{i}]")]
    return value


def at_unknown(problem: Problem, paths: list[str]) -> bool:
    """Whether ``problem`` judges an unknown value (its key is one of ``paths`` or below one)."""
    key = problem.key or ""
    if any(marker in problem.message for marker in _KEY_PROBLEMS):
        return False
    return any(key == p or key.startswith((f"{p}.", f"{p}[")) for p in paths)


def prepare(
    decode: Callable[[Mapping[str, Any]], tuple[C | None, list[Problem], list[str]]],
    raw: Mapping[str, Any],
    key_path: str,
) -> tuple[C | None, list[Problem], list[str]]:
    """``decode(raw)``, without the problems that judge unknown values. When unknown values kept the
    config from decoding (the placeholder is no number, no duration...), it is decoded again with
    those left out (their defaults stand in; the other unknown values stay placeholders): the rest
    of it is checked as if they were not set."""
    config, problems, warnings = decode(raw)
    paths = unknown_paths(raw, key_path)
    if not paths:
        return config, problems, warnings
    if config is None and any(at_unknown(p, paths) for p in problems):
        failed = {p for p in paths if any(at_unknown(q, [p]) for q in problems)}
        prefix = f"{key_path}." if key_path else ""
        relative = {p[len(prefix):] for p in failed}
        config, problems, warnings = decode(without_unknowns(raw, relative))
    return config, [p for p in problems if not at_unknown(p, paths)], warnings
