"""Go time layouts and Packer's strftime (amibake.template.gotime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.template.gotime import (
    RFC3339,
    RFC3339_NANO,
    Std,
    StdToken,
    fixed_zone,
    format_time,
    strftime,
    tokenize_layout,
)

PST = timezone(timedelta(hours=-8), "PST")
# Go's time/format_test.go reference: Date(2009, February, 4, 21, 0, 57, 12345600, PDT-as-PST)
GO_T = datetime(2009, 2, 4, 21, 0, 57, 12345, tzinfo=PST)
GO_NANOS = 12345600


def go(layout: str) -> str:
    return format_time(GO_T, layout, nanosecond=GO_NANOS)


# The table of Go's own TestFormat (src/time/format_test.go)
GO_FORMAT_TESTS = [
    ("ANSIC", "Mon Jan _2 15:04:05 2006", "Wed Feb  4 21:00:57 2009"),
    ("UnixDate", "Mon Jan _2 15:04:05 MST 2006", "Wed Feb  4 21:00:57 PST 2009"),
    ("RubyDate", "Mon Jan 02 15:04:05 -0700 2006", "Wed Feb 04 21:00:57 -0800 2009"),
    ("RFC822", "02 Jan 06 15:04 MST", "04 Feb 09 21:00 PST"),
    ("RFC850", "Monday, 02-Jan-06 15:04:05 MST", "Wednesday, 04-Feb-09 21:00:57 PST"),
    ("RFC1123", "Mon, 02 Jan 2006 15:04:05 MST", "Wed, 04 Feb 2009 21:00:57 PST"),
    ("RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700", "Wed, 04 Feb 2009 21:00:57 -0800"),
    ("RFC3339", RFC3339, "2009-02-04T21:00:57-08:00"),
    ("RFC3339Nano", RFC3339_NANO, "2009-02-04T21:00:57.0123456-08:00"),
    ("Kitchen", "3:04PM", "9:00PM"),
    ("am/pm", "3pm", "9pm"),
    ("AM/PM", "3PM", "9PM"),
    ("two-digit year", "06 01 02", "09 02 04"),
    ("Janet", "Hi Janet, the Month is January", "Hi Janet, the Month is February"),
    ("Stamp", "Jan _2 15:04:05", "Feb  4 21:00:57"),
    ("StampMilli", "Jan _2 15:04:05.000", "Feb  4 21:00:57.012"),
    ("StampMicro", "Jan _2 15:04:05.000000", "Feb  4 21:00:57.012345"),
    ("StampNano", "Jan _2 15:04:05.000000000", "Feb  4 21:00:57.012345600"),
    ("DateTime", "2006-01-02 15:04:05", "2009-02-04 21:00:57"),
    ("DateOnly", "2006-01-02", "2009-02-04"),
    ("TimeOnly", "15:04:05", "21:00:57"),
    ("YearDay", "Jan  2 002 __2 2", "Feb  4 035  35 4"),
    ("Year", "2006 6 06 _6 __6 ___6", "2009 6 09 _6 __6 ___6"),
    ("Month", "Jan January 1 01 _1", "Feb February 2 02 _2"),
    ("DayOfMonth", "2 02 _2 __2", "4 04  4  35"),
    ("DayOfWeek", "Mon Monday", "Wed Wednesday"),
    ("Hour", "15 3 03 _3", "21 9 09 _9"),
    ("Minute", "4 04 _4", "0 00 _0"),
    ("Second", "5 05 _5", "57 57 _57"),
]


@pytest.mark.parametrize(("name", "layout", "want"), GO_FORMAT_TESTS, ids=[t[0] for t in GO_FORMAT_TESTS])
def test_go_format_table(name: str, layout: str, want: str) -> None:
    assert go(layout) == want


FRACTION_CASES = [
    (".0", ".0"),
    (".00", ".01"),
    (".000", ".012"),
    (".9", ""),  # .9: 0.0123456 cut to 1 digit is "0", trimmed with its separator
    (".99", ".01"),
    (".999", ".012"),
    (".999999999", ".0123456"),
    (",000", ",012"),
    (",999", ",012"),
    ("05.000", "57.012"),
    (".0000000000", ".012345600"),  # more than 9 digits still prints 9
    (".00x", ".01x"),
    (".001", ".002"),  # a digit after the run: not a fraction; "0" literal, "01" the month
    ("a.b", "a.b"),
]


@pytest.mark.parametrize(("layout", "want"), FRACTION_CASES)
def test_fractional_seconds(layout: str, want: str) -> None:
    assert go(layout) == want


def test_fraction_nine_with_zero_nanos_prints_nothing() -> None:
    t = datetime(2020, 1, 1, tzinfo=UTC)
    assert format_time(t, "05.999") == "00"
    assert format_time(t, "05.000") == "00.000"


ZONE_CASES = [
    # (offset hours, minutes, name, layout, want)
    (0, 0, None, "Z07:00", "Z"),
    (0, 0, None, "Z0700", "Z"),
    (0, 0, None, "Z07", "Z"),
    (0, 0, None, "Z070000", "Z"),
    (0, 0, None, "Z07:00:00", "Z"),
    (0, 0, None, "-07:00", "+00:00"),
    (0, 0, None, "-0700", "+0000"),
    (0, 0, None, "-07", "+00"),
    (0, 0, None, "MST", "UTC"),
    (5, 30, None, "Z07:00", "+05:30"),
    (5, 30, None, "-0700", "+0530"),
    (5, 30, None, "-07", "+05"),
    (5, 30, None, "-070000", "+053000"),
    (5, 30, None, "-07:00:00", "+05:30:00"),
    (5, 30, None, "MST", "+0530"),  # a zone without a name prints as -0700
    (-3, 0, "BRT", "MST", "BRT"),
    (-3, 0, "BRT", "Z07:00", "-03:00"),
    (-3, 0, None, "Z0700", "-0300"),
]


@pytest.mark.parametrize(("hours", "minutes", "name", "layout", "want"), ZONE_CASES)
def test_zones(hours: int, minutes: int, name: str | None, layout: str, want: str) -> None:
    t = datetime(2021, 6, 7, 8, 9, 10, tzinfo=fixed_zone(hours, minutes, name))
    assert format_time(t, layout) == want


PACKER_LAYOUTS = [
    # layouts seen in real templates' {{isotime "..."}}
    ("2006-01-02", "2024-03-05"),
    ("20060102", "20240305"),
    ("2006-01-02-150405", "2024-03-05-070809"),
    ("200601021504", "202403050708"),
    ("2006-01-02T15-04-05Z", "2024-03-05T07-08-09Z"),
    ("2006-01-02 03:04:05 PM", "2024-03-05 07:08:09 AM"),
    ("2006.01.02.15.04", "2024.03.05.07.08"),
    ("Jan 2, 2006 at 3:04pm (MST)", "Mar 5, 2024 at 7:08am (UTC)"),
    ("Monday January 2", "Tuesday March 5"),
    ("06-1-2_15h04", "24-3-5_07h08"),
    ("unixtime", "unixtime"),
    ("", ""),
    ("no tokens here!", "no tokens here!"),
    ("Mondays", "Tuesdays"),  # "Monday" then a literal "s"
    ("Monx", "Monx"),  # "Mon" + lower-case: literal
    ("MonX", "TueX"),
    ("JanX", "MarX"),
    ("_2006", "_2024"),
    ("__2006", " 65024"),  # "__2" is the padded year-day, then "0" literal and "06"
    ("15:04:05.000Z07:00", "07:08:09.123Z"),
]


@pytest.mark.parametrize(("layout", "want"), PACKER_LAYOUTS)
def test_common_layouts(layout: str, want: str) -> None:
    t = datetime(2024, 3, 5, 7, 8, 9, 123456, tzinfo=UTC)
    assert format_time(t, layout) == want


def test_hour12_edges() -> None:
    midnight = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)
    noon = datetime(2024, 1, 1, 12, 5, tzinfo=UTC)
    assert format_time(midnight, "3 03 PM pm") == "12 12 AM am"
    assert format_time(noon, "3 03 PM pm") == "12 12 PM pm"


def test_year_day_padding() -> None:
    jan1 = datetime(2024, 1, 1, tzinfo=UTC)
    dec31 = datetime(2024, 12, 31, tzinfo=UTC)
    assert format_time(jan1, "002|__2") == "001|  1"
    assert format_time(dec31, "002|__2") == "366|366"


def test_naive_datetime_is_utc() -> None:
    assert format_time(datetime(2020, 5, 6, 7, 8, 9), RFC3339) == "2020-05-06T07:08:09Z"


def test_tokenize_layout_shapes() -> None:
    assert tokenize_layout("2006-01-02") == [
        StdToken(Std.LONG_YEAR),
        "-",
        StdToken(Std.ZERO_MONTH),
        "-",
        StdToken(Std.ZERO_DAY),
    ]
    assert tokenize_layout("at .000") == ["at ", StdToken(Std.FRAC_SECOND0, 3, ".")]
    assert tokenize_layout("x,99") == ["x", StdToken(Std.FRAC_SECOND9, 2, ",")]
    assert tokenize_layout("Janet") == ["Janet"]
    assert tokenize_layout("_2006") == ["_", StdToken(Std.LONG_YEAR)]


STRFTIME_CASES = [
    ("%Y-%m-%d %H:%M:%S", "2012-06-21 02:12:56"),
    ("aaabbb0123456789%Y", "aaabbb01234567892012"),
    ("%0%1%%%2", "%0%1%%2"),
    ("%H:%M:%S%L", "02:12:56.000"),
    ("%a %A %b %B", "Thu Thursday Jun June"),
    ("%I%p", "02AM"),
    ("%y", "12"),
    ("%Z %z", "UTC +0000"),
    ("%", "%"),
    ("100%", "100%"),
    ("%e %j %Q", "%e %j %Q"),  # not in go-strftime's table: kept as written
    ("%%Y", "%Y"),
    ("", ""),
    ("%é", "%é"),
]


@pytest.mark.parametrize(("fmt", "want"), STRFTIME_CASES)
def test_strftime(fmt: str, want: str) -> None:
    # go-strftime's own tests use time.Unix(1340244776, 0) in UTC
    t = datetime.fromtimestamp(1340244776, UTC)
    assert strftime(fmt, t) == want


@given(st.text(max_size=40), st.datetimes(timezones=st.just(UTC)))
def test_format_never_fails_and_keeps_non_layout_text(layout: str, t: datetime) -> None:
    out = format_time(t, layout)
    assert isinstance(out, str)
    literal = "".join(tok for tok in tokenize_layout(layout) if isinstance(tok, str))
    assert all(ch in out for ch in literal)


@given(st.text(alphabet="abcdefghikloqrstuvwxyz !?#&*", max_size=30))
def test_text_without_layout_chars_is_unchanged(layout: str) -> None:
    assert format_time(datetime(2020, 1, 2, tzinfo=UTC), layout) == layout


@given(st.text(max_size=30), st.datetimes(timezones=st.just(UTC)))
def test_strftime_never_fails(fmt: str, t: datetime) -> None:
    assert isinstance(strftime(fmt, t), str)
