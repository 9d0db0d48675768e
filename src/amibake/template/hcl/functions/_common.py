"""What every family of functions shares: argument checks and the limits on what a template may build."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.values import (
    contains_unknown,
    to_number,
    to_string,
    type_name,
)

Func = Callable[..., Any]

#: the largest string or list a function may build: beyond it, a template asks for gigabytes
#: (``indent(1e11, ...)``, ``format("%999999999999d", 1)``, a ``setproduct`` of many lists) and is
#: refused with an error instead of exhausting memory
MAX_RESULT = 16 << 20
#: Go's fmt refuses widths and precisions above 1e6 (``%!(BADWIDTH)``)
MAX_FMT_WIDTH = 1_000_000
#: ``yamldecode``: input size, and how many values a document may expand to through its aliases
MAX_YAML_BYTES = 8 << 20
MAX_YAML_VALUES = 1_000_000
#: ``file``/``filebase64``: what a template may read
MAX_FILE_BYTES = 256 << 20


def _bounded(n: int, what: str) -> int:
    if n > MAX_RESULT:
        raise FunctionError(f"{what} would be {n:,} long, more than the {MAX_RESULT:,} amibake allows")
    return n


def _s(v: Any, what: str = "argument") -> str:
    if v is None:
        raise FunctionError(f"{what} must not be null")
    s = to_string(v)
    if not isinstance(s, str):
        raise FunctionError(f"{what}: string required")
    return s


def _n(v: Any, what: str = "argument") -> int | float:
    if v is None:
        raise FunctionError(f"{what} must not be null")
    n = to_number(v)
    if not isinstance(n, (int, float)):
        raise FunctionError(f"{what}: number required")
    return n


def _int(v: Any, what: str = "argument") -> int:
    n = _n(v, what)
    if not isinstance(n, int):
        raise FunctionError(f"{what} must be a whole number")
    return n


def _list(v: Any, what: str = "argument") -> list[Any]:
    if not isinstance(v, list):
        raise FunctionError(f"{what} must be a list, not {type_name(v)}")
    return v


def _map(v: Any, what: str = "argument") -> dict[str, Any]:
    if not isinstance(v, dict):
        raise FunctionError(f"{what} must be a map or object, not {type_name(v)}")
    return v


def _unknown_in(*args: Any) -> bool:
    return any(contains_unknown(a) for a in args)
