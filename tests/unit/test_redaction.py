"""The debug log's redacting filter: registered secrets, PEM private keys, AWS secret keys."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.ui.redact import RedactingFilter

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAxyz\nabcdef\n-----END RSA PRIVATE KEY-----"


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("amibake", logging.DEBUG, __file__, 1, msg, args, None)


def test_registered_secret_is_blanked_in_args_too() -> None:
    f = RedactingFilter(["s3cr3t-value"])
    rec = _record("password is %s", "s3cr3t-value")
    assert f.filter(rec)
    assert "s3cr3t-value" not in rec.getMessage()
    assert "<sensitive>" in rec.getMessage()


def test_pem_blocks_are_blanked_raw_and_escaped() -> None:
    f = RedactingFilter([])
    assert "MIIE" not in f.redact(f"key: {PEM} end")
    escaped = repr(f"<keyMaterial>{PEM}</keyMaterial>".encode())
    assert "MIIE" not in f.redact(escaped)


def test_key_material_and_secret_access_key_fields() -> None:
    f = RedactingFilter([])
    assert "abc123" not in f.redact('{"KeyMaterial": "abc123"}')
    assert "zzz999" not in f.redact("aws_secret_access_key = zzz999")


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=3, max_size=30).filter(lambda s: s.strip() == s and "<" not in s),
       st.text(max_size=40), st.text(max_size=40))
def test_a_secret_never_survives(secret: str, before: str, after: str) -> None:
    f = RedactingFilter([secret])
    out = f.redact(before + secret + after)
    assert secret not in out or secret in "<sensitive>"


# --- every encoding a secret takes on its way to an output ------------------------------------

SPECIAL = "p@ss w0rd'!,x%y&z"


def _encodings(secret: str, before: str = "pre ", after: str = " post") -> dict[str, str]:
    """``secret`` inside a longer text, the way each channel carries it."""
    import base64
    import json
    import shlex
    import urllib.parse
    from xml.sax.saxutils import escape

    whole = before + secret + after
    return {
        "raw": whole,
        "xml": escape(whole),
        "xml-attr": escape(whole, {'"': "&quot;", "'": "&apos;"}),
        "json": json.dumps({"v": whole}),
        "json-ascii": json.dumps({"v": whole}, ensure_ascii=True),
        "url": "Action=RunInstances&UserData=" + urllib.parse.quote(whole, safe="-_.~"),
        "url-plus": urllib.parse.urlencode({"Value": whole}),
        "shell": "sh -c " + shlex.quote(whole),
        "shell-arg": shlex.join(["echo", secret, "x"]),
        "repr": f"have the string {whole!r}",
        "xml-of-json": escape(json.dumps(whole)),
        "url-of-shell": urllib.parse.quote(shlex.quote(secret)),
        "base64": base64.b64encode(whole.encode()).decode(),
        "base64-aligned": base64.b64encode(secret.encode()).decode(),
        "base64-1": base64.b64encode(("x" + secret + "yz").encode()).decode(),
        "base64-2": base64.b64encode(("xy" + secret).encode()).decode(),
    }


def _leaks(secret: str, out: str) -> bool:
    return secret in out


def test_a_special_secret_is_blanked_in_every_encoding() -> None:
    from amibake.ui.redact import Redactor

    r = Redactor([SPECIAL])
    for name, text in _encodings(SPECIAL).items():
        out = r(text)
        assert "<sensitive>" in out, name
        # what is left around the placeholder must not spell the secret in that encoding either
        assert _encodings(SPECIAL)[name] != out, name
        for form_name, form in _encodings(SPECIAL, "", "").items():
            if form_name in ("raw", "repr", "base64", "base64-1", "base64-2", "json", "url-plus"):
                continue
            assert form not in out, (name, form_name)
        assert SPECIAL not in out, name


def test_the_ssh_password_in_a_quoted_remote_command_line() -> None:
    from amibake.ui.redact import Redactor

    r = Redactor([SPECIAL])
    line = "chmod +x /tmp/x; PASSWORD='p@ss w0rd'\"'\"'!,x%y&z' /tmp/script.sh"
    assert "w0rd" not in r(line)


def test_short_values_are_left_alone_and_lines_of_a_key_are_redacted() -> None:
    from amibake.ui.redact import Redactor

    r = Redactor(["ab", "line-one-of-key\nline-two-of-key"])
    assert r("ab cd") == "ab cd"
    assert "line-two-of-key" not in r("... line-two-of-key ...")


def test_secrets_added_later_are_redacted_by_a_build_ui() -> None:
    from amibake.ui.redact import RedactingUi

    seen: list[str] = []

    class Inner:
        def say(self, m: str) -> None:
            seen.append(m)

        message = error = say

        def progress(self, label: str, fraction: float | None) -> None:
            seen.append(label)

        def ask(self, q: str) -> str:
            seen.append(q)
            return ""

    secrets: list[str] = []
    ui = RedactingUi(Inner(), secrets)
    secrets.append("late-secret-&-value")
    ui.say("key late-secret-&amp;-value end")
    ui.error("late-secret-&-value")
    assert all("late-secret" not in s for s in seen), seen


def test_a_log_filter_redacts_exception_text_too() -> None:
    f = RedactingFilter(["s3cr3t-value"])
    try:
        raise ValueError("boom s3cr3t-value")
    except ValueError:
        import sys

        rec = logging.LogRecord("amibake", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert f.filter(rec)
    text = logging.Formatter().format(rec)
    assert "s3cr3t-value" not in text


_secret_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=3, max_size=24
).filter(lambda s: s.strip() == s and s.strip() and "<sensitive>" not in s and ">" not in s)


def _per_char_encoders() -> dict[str, Callable[[str], str]]:
    """Encodings that map each character on its own: the secret's form inside an encoded text is
    the encoding of the secret."""
    import json
    import urllib.parse
    from xml.sax.saxutils import escape

    return {
        "raw": lambda s: s,
        "xml": escape,
        "xml-attr": lambda s: escape(s, {'"': "&quot;", "'": "&apos;"}),
        "json": lambda s: json.dumps(s)[1:-1],
        "json-utf8": lambda s: json.dumps(s, ensure_ascii=False)[1:-1],
        "url": lambda s: urllib.parse.quote(s, safe="-_.~"),
        "url-plus": lambda s: urllib.parse.quote_plus(s),
        "shell-single": lambda s: s.replace("'", "'\"'\"'"),
        "escape": lambda s: s.encode("unicode_escape").decode("ascii"),
        "xml-of-json": lambda s: escape(json.dumps(s)[1:-1]),
        "url-of-shell": lambda s: urllib.parse.quote(s.replace("'", "'\"'\"'"), safe="-_.~"),
        "json-of-xml": lambda s: json.dumps(escape(s))[1:-1],
    }


@settings(max_examples=150, deadline=None)
@given(_secret_text, st.text(max_size=10), st.text(max_size=10))
def test_any_secret_in_any_encoding_never_survives(secret: str, before: str, after: str) -> None:
    from amibake.ui.redact import Redactor

    r = Redactor([secret])
    for name, enc in _per_char_encoders().items():
        out = r(enc(before + secret + after))
        form = enc(secret)
        assert form not in out or form in "<sensitive>", (name, form, out)
        assert secret not in out or secret in "<sensitive>", (name, out)


@settings(max_examples=100, deadline=None)
@given(_secret_text.filter(lambda s: len(s.encode()) >= 9), st.text(max_size=6), st.text(max_size=6))
def test_base64_of_a_text_holding_the_secret_loses_it(secret: str, before: str, after: str) -> None:
    import base64

    from amibake.ui.redact import Redactor

    r = Redactor([secret])
    data = (before + secret + after).encode()
    out = r(base64.b64encode(data).decode())
    assert "<sensitive>" in out


# --- validate errors: a sensitive value is never quoted -----------------------------------------

_MISUSE = """
variable "secret" {
  type      = string
  sensitive = true
}
variable "n" {
  type      = number
  sensitive = true
  default   = 1
}
locals {
  a = cidrhost(var.secret, 1)
  b = formatdate("YYYY", var.secret)
  c = yamldecode(var.secret)
  d = jsondecode(var.secret)
  e = base64decode(var.secret)
  f = timeadd("2020-01-01T00:00:00Z", var.secret)
  g = parseint(var.secret, 10)
}
"""


def _validate(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    import contextlib
    import io
    import os
    from unittest import mock

    from amibake.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            rc = 0
        except SystemExit as exc:
            rc = int(exc.code or 0)
    return rc, out.getvalue() + err.getvalue()


@settings(max_examples=60, deadline=None)
@given(_secret_text.filter(lambda s: len(s) >= 4 and "\0" not in s and "${" not in s and "%{" not in s))
def test_validate_errors_never_show_a_sensitive_value(secret: str) -> None:
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        tpl = Path(d) / "t.pkr.hcl"
        tpl.write_text(_MISUSE)
        varfile = Path(d) / "v.pkrvars.hcl"
        varfile.write_text(f"n = {json.dumps(secret)}\n")
        runs = [
            (["validate", "-var", f"secret={secret}", "-var", f"n={secret}", str(tpl)], {}),
            (["validate", str(tpl)], {"PKR_VAR_secret": secret, "PKR_VAR_n": secret}),
            (["validate", "-var", f"secret={secret}", f"-var-file={varfile}", str(tpl)], {}),
        ]
        for argv, env in runs:
            rc, text = _validate(argv, env)
            assert rc == 1 and "Error" in text, text
            for enc in _per_char_encoders().values():
                form = enc(secret)
                assert form not in text or form in "<sensitive>", (form, text)
