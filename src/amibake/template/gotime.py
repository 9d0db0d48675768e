"""Go's time layouts (``time.Time.Format``) and the C-style ``strftime`` Packer offers.

Packer's ``{{isotime "2006-01-02"}}`` formats its start time with Go's *layout language*: a
layout is an example rendering of Go's reference time ``Mon Jan 2 15:04:05 MST 2006``, and each
recognised piece of it (``2006``, ``Jan``, ``15``, ``.000``, ``Z07:00``...) is replaced by the
matching part of the time being formatted; everything else is copied verbatim.

:func:`tokenize_layout` follows Go's ``nextStdChunk`` (``src/time/format.go``) token for token,
including its quirks: ``Jan``/``Mon`` only count when not followed by a lower-case letter,
``_2006`` is a literal ``_`` followed by the year, a run of ``0``/``9`` after ``.`` or ``,`` is a
fractional second only when no further digit follows, and a bare ``1``, ``2``, ``3``, ``4``, ``5``
are month, day, 12-hour, minute and second.

:func:`strftime` is ``github.com/jehiah/go-strftime`` as vendored by Packer: each ``%X`` it knows
is translated to one Go layout token; unknown ``%X`` pairs are copied as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

__all__ = [
    "RFC3339",
    "RFC3339_NANO",
    "Std",
    "StdToken",
    "format_time",
    "strftime",
    "tokenize_layout",
]

#: ``time.RFC3339``, what ``{{isotime}}`` uses without an argument
RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"


class Std(Enum):
    """The layout elements of Go's ``time`` package (its ``std*`` constants)."""

    LONG_MONTH = "January"
    MONTH = "Jan"
    NUM_MONTH = "1"
    ZERO_MONTH = "01"
    LONG_WEEKDAY = "Monday"
    WEEKDAY = "Mon"
    DAY = "2"
    UNDER_DAY = "_2"
    ZERO_DAY = "02"
    UNDER_YEAR_DAY = "__2"
    ZERO_YEAR_DAY = "002"
    HOUR = "15"
    HOUR12 = "3"
    ZERO_HOUR12 = "03"
    MINUTE = "4"
    ZERO_MINUTE = "04"
    SECOND = "5"
    ZERO_SECOND = "05"
    LONG_YEAR = "2006"
    YEAR = "06"
    PM = "PM"
    LOWER_PM = "pm"
    TZ = "MST"
    ISO8601_TZ = "Z0700"
    ISO8601_SECONDS_TZ = "Z070000"
    ISO8601_SHORT_TZ = "Z07"
    ISO8601_COLON_TZ = "Z07:00"
    ISO8601_COLON_SECONDS_TZ = "Z07:00:00"
    NUM_TZ = "-0700"
    NUM_SECONDS_TZ = "-070000"
    NUM_SHORT_TZ = "-07"
    NUM_COLON_TZ = "-07:00"
    NUM_COLON_SECONDS_TZ = "-07:00:00"
    FRAC_SECOND0 = ".000"  # fixed number of digits
    FRAC_SECOND9 = ".999"  # trailing zeros (and the separator) trimmed


@dataclass(frozen=True)
class StdToken:
    """One recognised layout element; ``digits``/``sep`` only matter for fractional seconds."""

    std: Std
    digits: int = 0
    sep: str = "."


_ZERO_X = {
    "1": Std.ZERO_MONTH,
    "2": Std.ZERO_DAY,
    "3": Std.ZERO_HOUR12,
    "4": Std.ZERO_MINUTE,
    "5": Std.ZERO_SECOND,
    "6": Std.YEAR,
}

# (literal, element) tried in this order after a '-' or a 'Z' (longest first, as Go does)
_NUM_TZ = (
    ("-070000", Std.NUM_SECONDS_TZ),
    ("-07:00:00", Std.NUM_COLON_SECONDS_TZ),
    ("-0700", Std.NUM_TZ),
    ("-07:00", Std.NUM_COLON_TZ),
    ("-07", Std.NUM_SHORT_TZ),
)
_ISO_TZ = (
    ("Z070000", Std.ISO8601_SECONDS_TZ),
    ("Z07:00:00", Std.ISO8601_COLON_SECONDS_TZ),
    ("Z0700", Std.ISO8601_TZ),
    ("Z07:00", Std.ISO8601_COLON_TZ),
    ("Z07", Std.ISO8601_SHORT_TZ),
)


def _starts_lower(s: str, i: int) -> bool:
    return i < len(s) and "a" <= s[i] <= "z"


def _is_digit(s: str, i: int) -> bool:
    return i < len(s) and "0" <= s[i] <= "9"


def _std_at(layout: str, i: int) -> tuple[StdToken, int] | None:
    """The layout element starting at ``layout[i]`` and where it ends, or None (a literal char)."""
    c = layout[i]
    rest = layout[i:]
    if c == "J" and rest.startswith("Jan"):
        if rest.startswith("January"):
            return StdToken(Std.LONG_MONTH), i + 7
        if not _starts_lower(layout, i + 3):
            return StdToken(Std.MONTH), i + 3
    elif c == "M":
        if rest.startswith("Mon"):
            if rest.startswith("Monday"):
                return StdToken(Std.LONG_WEEKDAY), i + 6
            if not _starts_lower(layout, i + 3):
                return StdToken(Std.WEEKDAY), i + 3
        if rest.startswith("MST"):
            return StdToken(Std.TZ), i + 3
    elif c == "0":
        if len(rest) >= 2 and "1" <= rest[1] <= "6":
            return StdToken(_ZERO_X[rest[1]]), i + 2
        if rest.startswith("002"):
            return StdToken(Std.ZERO_YEAR_DAY), i + 3
    elif c == "1":
        if rest.startswith("15"):
            return StdToken(Std.HOUR), i + 2
        return StdToken(Std.NUM_MONTH), i + 1
    elif c == "2":
        if rest.startswith("2006"):
            return StdToken(Std.LONG_YEAR), i + 4
        return StdToken(Std.DAY), i + 1
    elif c == "_":
        if rest.startswith("_2"):
            # "_2006" is a literal "_" followed by the year: handled by the caller seeing
            # no element at "_" and then "2006" at the next position.
            if rest.startswith("_2006"):
                return None
            return StdToken(Std.UNDER_DAY), i + 2
        if rest.startswith("__2"):
            return StdToken(Std.UNDER_YEAR_DAY), i + 3
    elif c == "3":
        return StdToken(Std.HOUR12), i + 1
    elif c == "4":
        return StdToken(Std.MINUTE), i + 1
    elif c == "5":
        return StdToken(Std.SECOND), i + 1
    elif c == "P":
        if rest.startswith("PM"):
            return StdToken(Std.PM), i + 2
    elif c == "p":
        if rest.startswith("pm"):
            return StdToken(Std.LOWER_PM), i + 2
    elif c == "-":
        for lit, std in _NUM_TZ:
            if rest.startswith(lit):
                return StdToken(std), i + len(lit)
    elif c == "Z":
        for lit, std in _ISO_TZ:
            if rest.startswith(lit):
                return StdToken(std), i + len(lit)
    elif c in ".," and len(rest) >= 2 and rest[1] in "09":
        ch = rest[1]
        j = i + 1
        while j < len(layout) and layout[j] == ch:
            j += 1
        if not _is_digit(layout, j):
            std = Std.FRAC_SECOND0 if ch == "0" else Std.FRAC_SECOND9
            return StdToken(std, digits=j - (i + 1), sep=c), j
    return None


def tokenize_layout(layout: str) -> list[str | StdToken]:
    """Split a Go layout into literal strings and :class:`StdToken` elements, as Go reads it."""
    out: list[str | StdToken] = []
    lit_start = 0
    i = 0
    while i < len(layout):
        found = _std_at(layout, i)
        if found is None:
            i += 1
            continue
        tok, end = found
        if i > lit_start:
            out.append(layout[lit_start:i])
        out.append(tok)
        i = lit_start = end
    if lit_start < len(layout):
        out.append(layout[lit_start:])
    return out


_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _pad(n: int, width: int) -> str:
    """Go's ``appendInt``: zero-padded to ``width``, the sign before the padding."""
    if n < 0:
        return "-" + str(-n).zfill(width)
    return str(n).zfill(width)


def _zone(dt: datetime) -> tuple[str, int]:
    """(Go zone abbreviation or "", offset in seconds east of UTC)."""
    off = dt.utcoffset()
    offset = 0 if off is None else int(off.total_seconds())
    name = dt.tzname() or ""
    if dt.tzinfo is None or dt.tzinfo is UTC or (offset == 0 and name in ("UTC", "UTC+00:00")):
        return "UTC", offset
    if name.startswith("UTC") and (len(name) == 3 or name[3] in "+-"):
        # Python's name for a bare fixed offset; Go has no name for such a zone
        return "", offset
    return name, offset


def _format_std(tok: StdToken, dt: datetime, nanos: int) -> str:
    std = tok.std
    hour = dt.hour
    if std is Std.YEAR:
        return _pad(dt.year % 100, 2)
    if std is Std.LONG_YEAR:
        return _pad(dt.year, 4)
    if std is Std.MONTH:
        return _MONTHS[dt.month - 1][:3]
    if std is Std.LONG_MONTH:
        return _MONTHS[dt.month - 1]
    if std is Std.NUM_MONTH:
        return str(dt.month)
    if std is Std.ZERO_MONTH:
        return _pad(dt.month, 2)
    if std is Std.WEEKDAY:
        return _DAYS[dt.weekday()][:3]
    if std is Std.LONG_WEEKDAY:
        return _DAYS[dt.weekday()]
    if std is Std.DAY:
        return str(dt.day)
    if std is Std.UNDER_DAY:
        return f"{dt.day:>2}"
    if std is Std.ZERO_DAY:
        return _pad(dt.day, 2)
    if std is Std.UNDER_YEAR_DAY:
        return f"{dt.timetuple().tm_yday:>3}"
    if std is Std.ZERO_YEAR_DAY:
        return _pad(dt.timetuple().tm_yday, 3)
    if std is Std.HOUR:
        return _pad(hour, 2)
    if std in (Std.HOUR12, Std.ZERO_HOUR12):
        hr = hour % 12 or 12
        return str(hr) if std is Std.HOUR12 else _pad(hr, 2)
    if std is Std.MINUTE:
        return str(dt.minute)
    if std is Std.ZERO_MINUTE:
        return _pad(dt.minute, 2)
    if std is Std.SECOND:
        return str(dt.second)
    if std is Std.ZERO_SECOND:
        return _pad(dt.second, 2)
    if std is Std.PM:
        return "PM" if hour >= 12 else "AM"
    if std is Std.LOWER_PM:
        return "pm" if hour >= 12 else "am"
    if std in (Std.FRAC_SECOND0, Std.FRAC_SECOND9):
        return _format_frac(tok, nanos)
    name, offset = _zone(dt)
    if std is Std.TZ:
        if name:
            return name
        zone = offset // 60 if offset >= 0 else -((-offset) // 60)
        sign = "+" if zone >= 0 else "-"
        zone = abs(zone)
        return f"{sign}{_pad(zone // 60, 2)}{_pad(zone % 60, 2)}"
    return _format_offset(std, offset)


def _format_offset(std: Std, offset: int) -> str:
    iso = std.name.startswith("ISO8601")
    if offset == 0 and iso:
        return "Z"
    sign = "-" if offset < 0 else "+"
    absoffset = abs(offset)
    zone = absoffset // 60
    out = sign + _pad(zone // 60, 2)
    colon = "COLON" in std.name
    if colon:
        out += ":"
    if "SHORT" not in std.name:
        out += _pad(zone % 60, 2)
    if "SECONDS" in std.name:
        if colon:
            out += ":"
        out += _pad(absoffset % 60, 2)
    return out


def _format_frac(tok: StdToken, nanos: int) -> str:
    trim = tok.std is Std.FRAC_SECOND9
    n = tok.digits
    if trim and (n == 0 or nanos == 0):
        return ""
    digits = _pad(nanos, 9)
    if n < 9:
        digits = digits[:n]
    if trim:
        digits = digits.rstrip("0")
        if not digits:
            return ""
    return tok.sep + digits


def format_time(dt: datetime, layout: str, nanosecond: int | None = None) -> str:
    """``dt.Format(layout)`` as Go does it. A naive ``dt`` is taken as UTC.

    ``nanosecond`` overrides the sub-second part (Python keeps only microseconds).
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    nanos = dt.microsecond * 1000 if nanosecond is None else nanosecond
    parts: list[str] = []
    for tok in tokenize_layout(layout):
        parts.append(tok if isinstance(tok, str) else _format_std(tok, dt, nanos))
    return "".join(parts)


#: jehiah/go-strftime's table: strftime directive -> Go layout element
_STRFTIME = {
    "B": "January",
    "b": "Jan",
    "m": "01",
    "A": "Monday",
    "a": "Mon",
    "d": "02",
    "H": "15",
    "I": "03",
    "M": "04",
    "S": "05",
    "Y": "2006",
    "y": "06",
    "p": "PM",
    "Z": "MST",
    "z": "-0700",
    "L": ".000",
}


def strftime(fmt: str, dt: datetime) -> str:
    """Packer's ``{{strftime}}``: jehiah/go-strftime's ``Format``.

    Known directives are ``%a %A %b %B %d %H %I %L %m %M %p %S %y %Y %z %Z`` and ``%%``; any
    other ``%X`` is copied as it is, and so is a trailing ``%``.
    """
    out: list[str] = []
    i = 0
    while i < len(fmt):
        ni = fmt.find("%", i)
        if ni < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:ni])
        if ni + 1 < len(fmt):
            c = fmt[ni + 1]
            if c == "%":
                out.append("%")
            elif c in _STRFTIME:
                out.append(format_time(dt, _STRFTIME[c]))
            else:
                out.append("%" + c)
        else:
            out.append("%")
        i = ni + 2
    return "".join(out)


def fixed_zone(hours: int, minutes: int = 0, name: str | None = None) -> timezone:
    """A fixed-offset zone; handy for tests of the zone elements."""
    delta = timedelta(hours=hours, minutes=minutes if hours >= 0 else -minutes)
    return timezone(delta, name) if name else timezone(delta)
