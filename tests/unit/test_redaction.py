"""The debug log's redacting filter: registered secrets, PEM private keys, AWS secret keys."""

from __future__ import annotations

import logging

from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.build import RedactingFilter

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
