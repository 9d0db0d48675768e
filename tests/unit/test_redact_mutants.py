"""ui.redact details that mutation testing (docs/mutation.md) found untested: each XML and JSON form
of a secret exactly (the property tests leave ``<``, ``>`` and control characters out), what is kept
around a blanked key field, the RE2 automaton doing the work, and the log filter's exception text."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

import pytest

from amibake.ui.redact import SENSITIVE, RedactingFilter, RedactingUi, Redactor


@pytest.mark.parametrize("form", [
    "p&lt;w&gt;\"q'r&amp;s",  # element text
    "p&lt;w&gt;&quot;q&apos;r&amp;s",  # attribute, named entities
    "p&lt;w&gt;&#34;q&#39;r&amp;s",  # Go's encoding/xml and html.EscapeString
    "p&lt;w&gt;&quot;q&#39;r&amp;s",  # Python's html.escape
])
def test_each_xml_form_of_a_secret_is_blanked_whole(form: str) -> None:
    assert Redactor(["p<w>\"q'r&s"])(f"[{form}]") == f"[{SENSITIVE}]"


def test_the_xml_form_of_control_characters_is_blanked_whole() -> None:
    r = Redactor(["ab\r\ncd\tef"])
    assert r("[ab&#xD;&#xA;cd&#x9;ef]") == f"[{SENSITIVE}]"


@pytest.mark.parametrize("ensure_ascii", [True, False])
def test_the_json_forms_of_a_non_ascii_secret_are_blanked_whole(ensure_ascii: bool) -> None:
    r = Redactor(["pässwörd-ü"])
    assert r(json.dumps({"v": "pässwörd-ü"}, ensure_ascii=ensure_ascii)) == '{"v": "<sensitive>"}'


@pytest.mark.parametrize(("text", "expected"), [
    ("aws_secret_access_key = zzz999 rest", f"aws_secret_access_key = {SENSITIVE} rest"),
    ('{"KeyMaterial": "abc123", "KeyName": "k"}', f'{{"KeyMaterial": "{SENSITIVE}", "KeyName": "k"}}'),
    ("<keyMaterial>abc123</keyMaterial>", f"<keyMaterial>{SENSITIVE}</keyMaterial>"),
    ("SecretAccessKey: wJal/rXU,next", f"SecretAccessKey: {SENSITIVE},next"),
])
def test_a_key_field_keeps_its_name_and_loses_its_value(text: str, expected: str) -> None:
    assert Redactor()(text) == expected


def test_utf8_text_is_redacted_by_the_re2_automaton(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's re is the fallback for text RE2 refuses (a lone surrogate), never the common path."""
    r = Redactor(["s3cr3t-value"])

    def no_fallback(*_args: Any, **_kwargs: Any) -> str:
        raise AssertionError("the re fallback was used for UTF-8 text")

    monkeypatch.setattr(re, "sub", no_fallback)
    assert r("a s3cr3t-value b") == f"a {SENSITIVE} b"


def _failing_record(msg: str) -> logging.LogRecord:
    try:
        raise ValueError(msg)
    except ValueError:
        return logging.LogRecord("amibake", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())


def test_the_log_filter_formats_and_redacts_a_records_exception() -> None:
    f = RedactingFilter(["s3cr3t-value"])
    rec = _failing_record("bad s3cr3t-value")
    assert f.filter(rec)
    assert rec.exc_info is None  # no handler can format the unredacted traceback again
    assert rec.exc_text is not None and rec.exc_text.startswith("Traceback (most recent call last):")
    assert rec.exc_text.endswith(f"ValueError: bad {SENSITIVE}")
    assert logging.Formatter().format(rec) == f"failed\n{rec.exc_text}"


def test_the_log_filter_redacts_an_exception_text_already_formatted() -> None:
    f = RedactingFilter(["s3cr3t-value"])
    rec = _failing_record("bad s3cr3t-value")
    rec.exc_text = "already formatted: s3cr3t-value"
    assert f.filter(rec)
    assert rec.exc_text == f"already formatted: {SENSITIVE}" and rec.exc_info is None
    plain = logging.LogRecord("amibake", logging.INFO, __file__, 1, "no exception", (), None)
    assert f.filter(plain)
    assert plain.exc_text is None and plain.exc_info is None


def test_a_build_ui_passes_the_progress_fraction_on() -> None:
    seen: list[tuple[str, float | None]] = []

    class Inner:
        def progress(self, label: str, fraction: float | None) -> None:
            seen.append((label, fraction))

    ui = RedactingUi(Inner(), ["s3cr3t-value"])
    ui.progress("copy s3cr3t-value", 0.25)
    ui.progress("wait", None)
    assert seen == [(f"copy {SENSITIVE}", 0.25), ("wait", None)]


@pytest.mark.parametrize("text", [
    "v=Pass%2Fw%C3%B6rd&x",  # quote(safe="")
    "v=Pass%2fw%c3%b6rd&x",  # the same with lower-case escapes (Go's and some SDKs' encoders)
    "v=Pass/w%C3%B6rd&x",  # quote() keeping "/"
    "v=Pass/w%c3%b6rd&x",
])
def test_each_url_form_of_a_secret_is_blanked_whole(text: str) -> None:
    assert Redactor(["Pass/wörd"])(text) == f"v={SENSITIVE}&x"


def test_the_double_quoted_shell_form_of_a_secret_is_blanked_whole() -> None:
    """Inside double quotes, a shell line escapes ``"``, ``\\``, ``$`` and backquotes."""
    r = Redactor(['a`b\\c"d$e-f'])
    assert r('X="a\\`b\\\\c\\"d\\$e-f" ./run') == f'X="{SENSITIVE}" ./run'


def test_a_quote_escaped_by_the_repr_of_a_longer_string_is_blanked_whole() -> None:
    """``repr`` escapes ``'`` when the whole string holds a ``"`` too, whatever the secret holds."""
    assert Redactor(["pa'ss-wd"])(repr('say "pa\'ss-wd"')) == f"'say \"{SENSITIVE}\"'"


@pytest.mark.parametrize(("value", "expected"), [
    ("pä'ss-wd".encode(), f'b"{SENSITIVE}"'),  # repr picks double quotes: ' as is
    ("pä'ss-wd".encode() + b"'\"", f"b'{SENSITIVE}\\'\"'"),  # single quotes: ' escaped
    (b'x"' + "pä'ss-wd".encode(), f"b'x\"{SENSITIVE}'"),
])
def test_each_bytes_repr_form_of_a_secret_is_blanked_whole(value: bytes, expected: str) -> None:
    """botocore logs response bodies as ``b'...'``: UTF-8 bytes escaped, the quote chosen by the whole."""
    assert Redactor(["pä'ss-wd"])(repr(value)) == expected


def test_the_machine_readable_form_of_a_secret_is_blanked_whole() -> None:
    r = Redactor(["pass,wo\r\nrd"])
    assert r("1,b,ui,say,pass%!(PACKER_COMMA)wo\\r\\nrd") == f"1,b,ui,say,{SENSITIVE}"


@pytest.mark.parametrize("text", [
    "ä'ss-wd", "pä'ss-w",  # raw
    "\\xc3\\xa4'ss-wd", "p\\xc3\\xa4'ss-w", "p\\xc3\\xa4\\'ss-w",  # bytes repr
    "\\xe4'ss-wd", "p\\xe4'ss-w",  # ascii() and unicode_escape
])
def test_a_part_of_a_secret_in_any_form_is_left_as_it_is(text: str) -> None:
    """Only whole forms are blanked: a text holding a part of one is not redacted."""
    assert Redactor(["pä'ss-wd"])(f"[{text}]") == f"[{text}]"


@pytest.mark.parametrize(("text", "expected"), [
    ("sh -c 'p@ss w0rd' x", f"sh -c {SENSITIVE} x"),  # shlex.quote: the quotes go with the value
    ("PW='it'\"'\"'s-secret' x", f"PW={SENSITIVE} x"),  # shlex.quote's way of quoting a '
    ("PW='it'\\''s-secret' x", f"PW='{SENSITIVE}' x"),  # the other common way
])
def test_each_single_quoted_shell_form_of_a_secret_is_blanked_whole(text: str, expected: str) -> None:
    secret = "p@ss w0rd" if "p@ss" in text else "it's-secret"
    assert Redactor([secret])(text) == expected


def _b64(data: str) -> str:
    import base64

    return base64.b64encode(data.encode()).decode()


def test_the_base64_of_a_secret_on_its_own_is_blanked_with_its_padding() -> None:
    assert Redactor(["s3cr3t-val"])(f"UserData: {_b64('s3cr3t-val')}") == f"UserData: {SENSITIVE}"


@pytest.mark.parametrize("before", ["abc", "a", "ab"])
def test_the_whole_base64_groups_of_a_secret_are_blanked_at_each_alignment(before: str) -> None:
    """Inside a longer base64 text, the groups that encode bytes of the secret alone go; the groups it
    shares with the text around it stay."""
    secret = "s3cr3t-value"  # 12 bytes
    full = _b64(before + secret + "xyz")
    head = 4 if before else 0
    tail = ((len(before) + len(secret)) // 3) * 4
    assert Redactor([secret])(full) == full[:head] + SENSITIVE + full[tail:]


def test_the_url_safe_base64_of_a_secret_is_blanked() -> None:
    import base64

    secret = "?>?~~~?>?"  # base64 Pz4/fn5+Pz4/: both characters the URL-safe alphabet changes
    assert base64.b64encode(secret.encode()) == b"Pz4/fn5+Pz4/"
    assert Redactor([secret])("v=Pz4_fn5-Pz4_&x") == f"v={SENSITIVE}&x"


def test_a_short_secret_at_the_start_of_a_base64_text_loses_its_whole_groups() -> None:
    assert Redactor(["abcd"])(_b64("abcdyy")) == f"{SENSITIVE}ZHl5"  # YWJj encodes "abc"


def test_a_line_of_exactly_the_minimum_length_is_redacted_on_its_own() -> None:
    r = Redactor(["abcdefgh\nijklmnop\nshort"])
    assert r("[ijklmnop] [short]") == f"[{SENSITIVE}] [short]"


def test_the_ascii_form_with_an_escaped_quote_is_blanked_whole() -> None:
    """``ascii()`` of a longer string holding both quotes: non-ASCII as ``\\xe4``, ``'`` escaped."""
    assert Redactor(["pä'ss-wd"])(ascii('say "pä\'ss-wd"')) == f"'say \"{SENSITIVE}\"'"


def test_the_repr_form_of_a_secret_with_a_control_character_is_blanked_whole() -> None:
    """``repr`` keeps ``ä`` and writes ESC as ``\\x1b`` (JSON would write ``\\u001b``)."""
    assert Redactor(["pä\x1bss-wd"])(repr("x pä\x1bss-wd")) == f"'x {SENSITIVE}'"
