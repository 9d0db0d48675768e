"""Go durations (``1h2m3.5s``, ``300ms``) as float seconds.

Packer decodes ``time.Duration`` options with mapstructure's ``StringToTimeDurationHookFunc``:
a string goes through Go's ``time.ParseDuration`` (a unit is required except for ``0``), and
a JSON number is weakly converted to the underlying int64, i.e. read as *nanoseconds*. HCL2 types
those options as strings, so there a bare number such as ``300`` fails with "missing unit".
:data:`Duration` accepts both as Packer's JSON path does and records a warning for bare numbers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d*)(?:\.(\d*))?([^0-9.]*)")


class DurationError(ValueError):
    """A string that is not a Go duration; the message is Go's."""


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds, with Go's error messages."""
    orig = text
    quoted = '"' + orig + '"'
    if text == "":
        raise DurationError(f"time: invalid duration {quoted}")
    sign = 1.0
    if text[0] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if text == "":
        raise DurationError(f"time: invalid duration {quoted}")
    total = 0.0
    pos = 0
    while pos < len(text):
        m = _PART.match(text, pos)
        if m is None or m.end() == pos:
            raise DurationError(f"time: invalid duration {quoted}")
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise DurationError(f"time: invalid duration {quoted}")
        if not unit:
            raise DurationError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise DurationError(f'time: unknown unit "{unit}" in duration {quoted}')
        number = float(f"{whole or '0'}.{frac or '0'}")
        total += number * _UNITS[unit]
        pos = m.end()
    if total > 9223372036.854775807:
        raise DurationError(f"time: invalid duration {quoted}")
    return sign * total


def format_duration(seconds: float) -> str:
    """Format seconds the way Go's ``Duration.String`` does (``1h2m3.5s``, ``300ms``, ``0s``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _trim(rest / 1e9) + "s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def _to_duration(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, bool):
        # mapstructure weakly turns a bool into 1 or 0 (nanoseconds)
        return 1e-9 if value else 0.0
    if isinstance(value, int | float):
        if value != 0 and isinstance(info.context, dict):
            warnings = info.context.get("warnings")
            if isinstance(warnings, list):
                warnings.append(
                    f"{info.field_name}: the number {value!r} has no unit and is read as "
                    f'{value!r} nanoseconds, as Packer does; write a duration such as "{value}s"'
                )
        return float(int(value)) * 1e-9
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise PydanticCustomError("duration", "{reason}", {"reason": str(exc)}) from None
    raise PydanticCustomError(
        "duration", 'expected a duration such as "5m" or "1h30s", got {got}', {"got": _kind(value)}
    )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


#: A Go duration, decoded to float seconds.
Duration = Annotated[float, BeforeValidator(_to_duration)]
