"""Date and time functions: RFC 3339 timestamps, ``formatdate``, ``timeadd``, Go time layouts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    _s,
    _unknown_in,
)
from amibake.template.hcl.values import (
    UNKNOWN,
)


def _rfc3339(ts: Any) -> datetime:
    s = _s(ts, "timestamp")
    try:
        if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", s):
            raise ValueError
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise FunctionError(f'not a valid RFC3339 timestamp: "{s}"') from None


def _rfc3339_str(t: datetime) -> str:
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ("." + f"{t.microsecond:06d}").rstrip("0")
    off = t.utcoffset()
    if not off:
        return s + "Z"
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"{s}{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


_FORMATDATE = re.compile(
    r"'[^']*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|AA|aa|mm|m|ss|s|ZZZZZ|ZZZZ|ZZZ|Z|[A-Za-z]+|[^A-Za-z']+"
)


def formatdate(fmt: Any, ts: Any) -> Any:
    if _unknown_in(fmt, ts):
        return UNKNOWN
    t, f = _rfc3339(ts), _s(fmt, "format")
    off = t.utcoffset() or timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    out = []
    for m in _FORMATDATE.finditer(f):
        tok = m.group(0)
        table = {
            "YYYY": f"{t.year:04d}",
            "YY": f"{t.year % 100:02d}",
            "MMMM": t.strftime("%B"),
            "MMM": t.strftime("%b"),
            "MM": f"{t.month:02d}",
            "M": str(t.month),
            "DD": f"{t.day:02d}",
            "D": str(t.day),
            "EEEE": t.strftime("%A"),
            "EEE": t.strftime("%a"),
            "hh": f"{t.hour:02d}",
            "h": str(t.hour),
            "HH": f"{(t.hour % 12) or 12:02d}",
            "H": str((t.hour % 12) or 12),
            "AA": "AM" if t.hour < 12 else "PM",
            "aa": "am" if t.hour < 12 else "pm",
            "mm": f"{t.minute:02d}",
            "m": str(t.minute),
            "ss": f"{t.second:02d}",
            "s": str(t.second),
            "ZZZZZ": f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}",
            "ZZZZ": f"{sign}{abs(mins) // 60:02d}{abs(mins) % 60:02d}",
            "ZZZ": "UTC" if mins == 0 else f"{sign}{abs(mins) // 60:02d}{abs(mins) % 60:02d}",
            "Z": "Z" if mins == 0 else f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}",
        }
        if tok in table:
            out.append(table[tok])
        elif tok.startswith("'"):
            out.append(tok[1:-1])
        elif tok[0].isalpha():
            raise FunctionError(f"invalid date format verb {tok!r}")
        else:
            out.append(tok)
    return "".join(out)


def parse_duration(s: str) -> timedelta:
    """Go's ``time.ParseDuration`` (the one parser, :mod:`amibake.config.durations`), around blanks
    trimmed, with this function's own message: Packer's ``timeadd`` neither trims nor words it so."""
    from amibake.config.durations import DurationError, parse_duration_ns

    try:
        return timedelta(microseconds=parse_duration_ns(s.strip()) / 1000)
    except DurationError:
        raise FunctionError(f'invalid duration "{s}"') from None


def timeadd(ts: Any, duration: Any) -> str:
    return _rfc3339_str(_rfc3339(ts) + parse_duration(_s(duration, "duration")))


_GO_LAYOUT = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|-07:00|-0700|-07|Z07:00|Z0700|\.0+|\.9+|01|02|_2|03|04|05|06|15|PM|pm|1|2|3|4|5"
)


def go_time_format(t: datetime, layout: str) -> str:
    off = t.utcoffset() or timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    hhmm = (abs(mins) // 60, abs(mins) % 60)

    def tok(m: re.Match[str]) -> str:
        k = m.group(0)
        if k.startswith(".0"):
            return "." + f"{t.microsecond:06d}{'0' * 3}"[: len(k) - 1]
        if k.startswith(".9"):
            frac = f"{t.microsecond:06d}".rstrip("0")[: len(k) - 1]
            return "." + frac if frac else ""
        zulu = mins == 0
        return {
            "January": t.strftime("%B"),
            "Jan": t.strftime("%b"),
            "Monday": t.strftime("%A"),
            "Mon": t.strftime("%a"),
            "MST": "UTC" if zulu else t.strftime("%Z") or f"{sign}{hhmm[0]:02d}{hhmm[1]:02d}",
            "2006": f"{t.year:04d}",
            "06": f"{t.year % 100:02d}",
            "01": f"{t.month:02d}",
            "1": str(t.month),
            "02": f"{t.day:02d}",
            "_2": f"{t.day:2d}",
            "2": str(t.day),
            "15": f"{t.hour:02d}",
            "03": f"{(t.hour % 12) or 12:02d}",
            "3": str((t.hour % 12) or 12),
            "04": f"{t.minute:02d}",
            "4": str(t.minute),
            "05": f"{t.second:02d}",
            "5": str(t.second),
            "PM": "AM" if t.hour < 12 else "PM",
            "pm": "am" if t.hour < 12 else "pm",
            "-07:00": f"{sign}{hhmm[0]:02d}:{hhmm[1]:02d}",
            "-0700": f"{sign}{hhmm[0]:02d}{hhmm[1]:02d}",
            "-07": f"{sign}{hhmm[0]:02d}",
            "Z07:00": "Z" if zulu else f"{sign}{hhmm[0]:02d}:{hhmm[1]:02d}",
            "Z0700": "Z" if zulu else f"{sign}{hhmm[0]:02d}{hhmm[1]:02d}",
        }[k]

    return _GO_LAYOUT.sub(tok, layout)


def _strftime(t: datetime, fmt: str) -> str:
    # github.com/jehiah/go-strftime supports the common C directives; unknown ones pass through
    try:
        return t.strftime(fmt)
    except ValueError as e:
        raise FunctionError(f"invalid strftime format: {e}") from None
