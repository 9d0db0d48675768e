"""config.durations is Go's time.ParseDuration: Go's own test table (time_test.go), its error
messages and quoting, and the callers that read durations through it."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.config.durations import (
    DurationError,
    format_duration,
    go_quote,
    parse_duration,
    parse_duration_ns,
)
from amibake.errors import BuildError
from amibake.provisioners.shell.provisioner import go_duration, seconds

NS, US, MS, S, M, H = 1, 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0), ("5s", 5 * S), ("30s", 30 * S), ("1478s", 1478 * S),
        ("-5s", -5 * S), ("+5s", 5 * S), ("-0", 0), ("+0", 0),
        ("5.0s", 5 * S), ("5.6s", 5 * S + 600 * MS), ("5.s", 5 * S), (".5s", 500 * MS), ("1.0s", S),
        ("1.00s", S), ("1.004s", S + 4 * MS), ("1.0040s", S + 4 * MS), ("100.00100s", 100 * S + MS),
        ("10ns", 10 * NS), ("11us", 11 * US), ("12µs", 12 * US), ("12μs", 12 * US), ("13ms", 13 * MS),
        ("14s", 14 * S), ("15m", 15 * M), ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * M), ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        ("1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000),
        ("0.3333333333333333333h", 20 * M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("9223372036s854ms775us807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036854775.808us", -(1 << 63)),
        ("-9223372036s854ms775us808ns", -(1 << 63)),
        ("-2562047h47m16.854775808s", -(1 << 63)),
        ("0.100000000000000000000h", 6 * M),
        ("0.830103483285477580700h", 49 * M + 48 * S + 372539827),
        # a fraction is truncated to the nanosecond, and scaled exactly as Go does
        ("1.5ns", 1), ("1.1m", 66 * S),
    ],
)
def test_go_parse_duration_table(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == ns / 1e9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("3", 'time: missing unit in duration "3"'),
        ("-", 'time: invalid duration "-"'),
        ("s", 'time: invalid duration "s"'),
        (".", 'time: invalid duration "."'),
        ("-.", 'time: invalid duration "-."'),
        (".s", 'time: invalid duration ".s"'),
        ("+.s", 'time: invalid duration "+.s"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        ("--5s", 'time: invalid duration "--5s"'),
        (" 5s", 'time: invalid duration " 5s"'),
        ("5s ", 'time: unknown unit "s " in duration "5s "'),
        # Go quotes control and non-ASCII characters byte by byte, and escapes quotes and backslashes
        ("\udc85\udc85", 'time: invalid duration "\\x85\\x85"'),
        ("\udcffff", 'time: invalid duration "\\xffff"'),
        ("\ufffd", 'time: invalid duration "\\xef\\xbf\\xbd"'),
        ("1d\n", 'time: unknown unit "d\\x0a" in duration "1d\\x0a"'),
        ('1"\\', 'time: unknown unit "\\"\\\\" in duration "1\\"\\\\"'),
        ("٣s", 'time: invalid duration "\\xd9\\xa3s"'),  # digits of other scripts are not digits
        ("1ｓ", 'time: unknown unit "\\xef\\xbd\\x93" in duration "1\\xef\\xbd\\x93"'),
        # overflow
        ("9223372036854775810ns", 'time: invalid duration "9223372036854775810ns"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("9223372036854776us", 'time: invalid duration "9223372036854776us"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
        ("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        ("9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
        # Go reads the integer before the unit: an overflowing one is invalid whatever follows
        ("99999999999999999999d", 'time: invalid duration "99999999999999999999d"'),
        ("99999999999999999999", 'time: invalid duration "99999999999999999999"'),
    ],
)
def test_go_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as exc:
        parse_duration_ns(text)
    assert str(exc.value) == message


def test_go_quote_leaves_printable_ascii_alone() -> None:
    assert go_quote("1h 2m~") == '"1h 2m~"'
    assert go_quote("\x7f") == '"\x7f"'  # DEL is below utf8.RuneSelf: Go writes it as is


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_format_then_parse_is_the_same_nanoseconds(ns: int) -> None:
    """Go's String() of any duration parses back to it (whole nanoseconds, through Go's own units)."""
    text = _go_string(ns)
    assert parse_duration_ns(text) == ns


def _go_string(ns: int) -> str:
    """Go's Duration.String() on integers (format_duration works on float seconds)."""
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < S:
        for unit, size in (("ms", MS), ("µs", US), ("ns", NS)):
            if u >= size:
                whole, frac = divmod(u, size)
                digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0") if size > 1 else ""
                return f"{sign}{whole}{'.' + digits if digits else ''}{unit}"
    h, rest = divmod(u, H)
    m, rest = divmod(rest, M)
    whole, frac = divmod(rest, S)
    digits = str(frac).rjust(9, "0").rstrip("0")
    out = f"{h}h{m}m" if h else (f"{m}m" if m else "")
    return f"{sign}{out}{whole}{'.' + digits if digits else ''}s"


@pytest.mark.parametrize("secs", [0, 0.25, 1, 90, 3661.5, -5, 1e-6, 123456.789])
def test_shell_go_duration_is_format_duration(secs: float) -> None:
    assert go_duration(secs) == format_duration(secs)


@pytest.mark.parametrize(
    ("value", "secs"),
    [(" 5m ", 300.0), ("   ", 0.0), ("12μs", 12e-6), ("1h2m3s4ms5us6ns", 3723.004005006),
     (timedelta(minutes=2), 120.0), (300, 300.0)],
)
def test_shell_seconds_reads_go_durations_with_its_own_leniency(value: Any, secs: float) -> None:
    """shell's seconds() parses with config.durations; it deliberately ignores blanks around the text
    (a blank text is 0, as None is) and reads a number as seconds."""
    assert seconds(value) == pytest.approx(secs)


@pytest.mark.parametrize("value", ["5 minutes", "1d", "--5s", "-", "5"])
def test_shell_seconds_refuses_what_go_refuses(value: str) -> None:
    with pytest.raises(BuildError, match=r"^invalid duration .* \(expected e\.g\. 30s, 5m, 1h30m\)$"):
        seconds(value)


@pytest.mark.parametrize("number", [float("inf"), float("-inf"), float("nan"), 1e19, -1e19, 1 << 63])
def test_a_number_beyond_a_duration_is_refused_by_name(number: float) -> None:
    """A bare number is nanoseconds (an int64 in Go): one beyond it, or JSON's 1e999 (infinity here; Go's
    decoder refuses it), is a clear error, never an internal one."""
    from pydantic import BaseModel, ValidationError

    from amibake.config.durations import Duration

    class M(BaseModel):
        timeout: Duration = 0.0

    with pytest.raises(ValidationError, match="out of range for a duration"):
        M.model_validate({"timeout": number})
    assert M.model_validate({"timeout": (1 << 63) - 1024}).timeout == pytest.approx(9223372036.854775)


def test_validate_names_the_key_of_an_infinite_duration(tmp_path: Path) -> None:
    template = tmp_path / "t.json"
    template.write_text('{"builders": [{"type": "null", "communicator": "none"}], "provisioners": '
                        '[{"type": "shell", "inline": ["true"], "start_retry_timeout": 1e999}]}')
    result = subprocess.run([sys.executable, "-m", "amibake", "validate", str(template)], capture_output=True,
                            text=True, check=False, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "provisioners[0].start_retry_timeout" in result.stderr and "out of range" in result.stderr
    assert "Internal error" not in result.stderr
