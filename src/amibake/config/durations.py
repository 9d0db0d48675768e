"""Go durations (``1h2m3.5s``, ``300ms``): the one parser of them, and their ``String()`` form.

:func:`parse_duration_ns` is Go's ``time.ParseDuration`` (integer nanoseconds, Go's errors);
:func:`parse_duration` gives float seconds. Every other reader of a duration calls these and
converts at its own site (``timedelta``, seconds) and says there where it deliberately differs.

Packer decodes ``time.Duration`` options with mapstructure's ``StringToTimeDurationHookFunc``:
a string goes through Go's ``time.ParseDuration`` (a unit is required except for ``0``), and
a JSON number is weakly converted to the underlying int64, i.e. read as *nanoseconds*. HCL2 types
those options as strings, so there a bare number such as ``300`` fails with "missing unit".
:data:`Duration` accepts both as Packer's JSON path does and records a warning for bare numbers.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

#: nanoseconds per unit: Go's ``time.unitMap``
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
#: one element: ``[0-9]*(\.[0-9]*)?`` then the unit, which runs to the next digit or dot (ASCII
#: digits only, as in Go: ``\d`` would take other scripts' digits)
_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_MAX = 1 << 63


class DurationError(ValueError):
    """A string that is not a Go duration; the message is Go's."""


def go_quote(text: str) -> str:
    """Go's ``time.quote``, used in its duration errors: ``"`` and ``\\`` escaped, and each byte of a
    control or non-ASCII character's UTF-8 as ``\\xNN`` (an undecodable byte of a command-line
    argument, held as a surrogate, as the byte itself)."""
    out = ['"']
    for c in text:
        if c < " " or c >= "\x80":
            try:
                raw = c.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raw = c.encode("utf-8", "surrogatepass")
            out += [f"\\x{b:02x}" for b in raw]
        else:
            out.append("\\" + c if c in '"\\' else c)
    out.append('"')
    return "".join(out)


def _fraction(digits: str) -> tuple[int, float]:
    """Go's ``leadingFraction``: the digits as an integer and its float64 scale, accumulating
    precision only while the integer fits an int64."""
    value, scale = 0, 1.0
    for ch in digits:
        if value > (_MAX - 1) // 10:
            break
        bigger = value * 10 + ord(ch) - 48
        if bigger > _MAX:
            break
        value, scale = bigger, scale * 10
    return value, scale


def parse_duration_ns(text: str) -> int:
    r"""Go's ``time.ParseDuration``: ``[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`` or ``0`` as integer
    nanoseconds, with Go's error messages, checked in Go's order. A fraction is truncated to the
    nanosecond and the result must fit an int64, as in Go (``1.5ns`` is 1ns;
    ``-2562047h47m16.854775808s`` is the least duration)."""
    quoted = go_quote(text)
    invalid = f"time: invalid duration {quoted}"
    body = text
    neg = False
    if body and body[0] in "+-":
        neg = body[0] == "-"
        body = body[1:]
    if body == "0":
        return 0
    if body == "":
        raise DurationError(invalid)
    total = 0
    pos = 0
    while pos < len(body):
        m = _PART.match(body, pos)
        assert m is not None  # every group may be empty
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        value = int(whole or "0")
        if value > _MAX:  # Go's leadingInt overflows before the unit is read
            raise DurationError(invalid)
        if not whole and not frac:  # no digits: ".s", "-.s", "s", " 5s"
            raise DurationError(invalid)
        if not unit:
            raise DurationError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise DurationError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        scale = _UNITS[unit]
        if value > _MAX // scale:
            raise DurationError(invalid)
        value *= scale
        f, fscale = _fraction(frac or "")
        if f > 0:
            # Go scales the fraction in float64 ("nanosecond accurate for fractions of hours")
            value += int(float(f) * (float(scale) / fscale))
            if value > _MAX:
                raise DurationError(invalid)
        total += value
        if total > _MAX:
            raise DurationError(invalid)
        pos = m.end()
    if neg:
        return -total
    if total > _MAX - 1:
        raise DurationError(invalid)
    return total


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds, with Go's error messages (see :func:`parse_duration_ns`)."""
    return parse_duration_ns(text) / 1e9


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
        if not math.isfinite(value) or abs(value) >= _MAX:
            # Go: a JSON number beyond float64 does not decode, and a duration is an int64 of nanoseconds
            raise PydanticCustomError(
                "duration", "the number {got} is out of range for a duration (at most {max} nanoseconds)",
                {"got": repr(value), "max": _MAX - 1})
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
