"""BuildEnv.add_secret: a password learnt during a build (Windows password, elevated password) is
blanked from then on in every line of the run's console, not only in the build's own messages."""

from __future__ import annotations

import io
from pathlib import Path

from amibake.api import BuildEnv
from amibake.ui.console import Console


def _env() -> tuple[BuildEnv, io.StringIO]:
    out = io.StringIO()
    console = Console(out=out, err=out, color=False)
    return BuildEnv("b", "null", Path("."), console.build_ui("b")), out


def test_added_secret_is_blanked_in_every_later_line() -> None:
    env, out = _env()
    env.ui.say("before: Pa55-w0rd!")
    env.add_secret("Pa55-w0rd!")
    env.ui.say("after: Pa55-w0rd!")
    env.ui.message("message: Pa55-w0rd!")
    text = out.getvalue()
    assert "before: Pa55-w0rd!" in text
    assert "after: <sensitive>" in text and "message: <sensitive>" in text
    assert text.count("Pa55-w0rd!") == 1
    assert env.secrets == ["Pa55-w0rd!"]


def test_empty_and_repeated_secrets() -> None:
    env, out = _env()
    env.add_secret("")
    env.add_secret("s3cret-value")
    env.add_secret("s3cret-value")
    assert env.secrets == ["s3cret-value"]
    env.ui.say("x s3cret-value y")
    assert "x <sensitive> y" in out.getvalue()
