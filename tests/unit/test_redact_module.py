"""ui.redact is the one module that knows how to redact: its rules (replacement text, lengths,
longest-first matching, patterns, secret option names), its fallbacks, and each channel's use of it
(console, machine-readable lines, a build's Ui, the debug log filter, error messages)."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import pytest

from amibake.errors import Pos, Problem, TemplateError, UserInputError
from amibake.ui import redact as redact_module
from amibake.ui.console import Console
from amibake.ui.redact import (
    MIN_LENGTH,
    SENSITIVE,
    RedactingFilter,
    RedactingUi,
    Redactor,
    is_secret_option,
    leaves,
    redact,
    without_secrets,
)

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAxyz\n-----END RSA PRIVATE KEY-----"


def test_the_replacement_text_is_packers() -> None:
    assert SENSITIVE == "<sensitive>"
    assert Redactor(["hunter2"])("pw=hunter2") == "pw=<sensitive>"


def test_forms_are_matched_longest_first() -> None:
    """A secret inside a longer secret never leaves the rest of the longer one behind."""
    r = Redactor(["abc123", "abc123xyz-long"])
    assert r("[abc123xyz-long] [abc123]") == f"[{SENSITIVE}] [{SENSITIVE}]"
    assert redact("a-secret-b-sec", ["sec", "secret"]) == f"a-{SENSITIVE}-b-{SENSITIVE}"


def test_values_shorter_than_the_minimum_are_not_secrets() -> None:
    short = "x" * (MIN_LENGTH - 1)
    r = Redactor([short, "", "abc"])
    assert r.secrets == ["abc"]
    assert r(f"{short} abc") == f"{short} {SENSITIVE}"


def test_secrets_are_kept_once_and_sorted() -> None:
    r = Redactor(["zzz-secret", "aaa-secret"])
    r.add("zzz-secret", 42)  # type: ignore[arg-type]  # a non-string is ignored
    assert r.secrets == ["aaa-secret", "zzz-secret"]


def test_the_one_off_redact_with_no_secrets_leaves_the_text_as_it_is() -> None:
    """redact() without secrets is the identity; a Redactor blanks key patterns even with none."""
    text = f"key: {PEM} aws_secret_access_key=zzz999"
    assert redact(text, []) == text
    blanked = Redactor()(text)
    assert "MIIE" not in blanked and "zzz999" not in blanked


def test_patterns_can_be_turned_off() -> None:
    r = Redactor(["hunter22"], patterns=False)
    assert r(f"{PEM} hunter22") == f"{PEM} {SENSITIVE}"


def test_a_lone_surrogate_falls_back_to_pythons_re() -> None:
    """RE2 takes UTF-8 only: a text holding an undecodable byte (a surrogate) is redacted by re."""
    r = Redactor(["s3cr3t-value"])
    assert r("\udcff s3cr3t-value \udcfe") == f"\udcff {SENSITIVE} \udcfe"


def test_python_re_is_used_when_re2_refuses_the_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    import re2

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise re2.error("pattern too large")

    monkeypatch.setattr(re2, "compile", refuse)
    r = Redactor(["s3cr3t-value"])
    assert isinstance(r._rx, re.Pattern) and r._rx.pattern == r._alts
    assert r("a s3cr3t-value b") == f"a {SENSITIVE} b"
    assert redact_module._compile("abc").pattern == "abc"


def test_leaves_are_every_string_and_number_inside_a_value() -> None:
    value = {"a": ["one", 2, 3.5, None, True], "b": {"c": ("four",), "d": {"five"}}, "e": frozenset({"six"})}
    assert sorted(leaves(value)) == sorted(["one", "2", "3.5", "four", "five", "six"])
    assert leaves("plain") == ["plain"]
    assert leaves(None) == [] and leaves(False) == []


def test_without_secrets_keeps_keys_and_positions_and_takes_any_input_error() -> None:
    pos = Pos("t.pkr.hcl", 3, 5)
    err = UserInputError([Problem("bad value hunter22", "var.pw", pos), Problem("other")])
    out = without_secrets(err, ["hunter22"])
    assert isinstance(out, TemplateError)
    assert out.problems == [Problem(f"bad value {SENSITIVE}", "var.pw", pos), Problem("other")]
    assert "hunter22" not in str(out)
    # the patterns apply with no secrets too
    assert "MIIE" not in without_secrets(TemplateError([Problem(PEM)]), []).problems[0].message


@pytest.mark.parametrize(
    ("name", "secret"),
    [("ssh_password", True), ("winrm_password", True), ("secret_key", True), ("token", True),
     ("vault_token", True), ("mfa_code", True), ("access_key", True), ("ssh_private_key", True),
     ("SSH_PASSWORD", True), ("ssh_private_key_file", False), ("ssh_username", False), ("region", False)],
)
def test_secret_option_names(name: str, secret: bool) -> None:
    assert is_secret_option(name) is secret


def test_the_console_redacts_every_line_and_each_machine_readable_field() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(out=out, err=err, color=False, redactor=Redactor(["hunter22"]))
    console.say("say hunter22")
    console.error("error hunter22")
    ui = console.build_ui("b")
    ui.say("step hunter22")
    ui.message("detail hunter22")
    ui.error("failed hunter22")
    assert "hunter22" not in out.getvalue() + err.getvalue()
    assert f"==> b: step {SENSITIVE}" in out.getvalue()

    machine = io.StringIO()
    mconsole = Console(out=machine, machine_readable=True, redactor=Redactor(["p@ss,word"]))
    mconsole.say("p@ss,word")
    mconsole.machine_line("b", "artifact", "0", "id", "p@ss,word")
    mconsole.build_ui("b").message("p@ss,word")
    text = machine.getvalue()
    assert "p@ss" not in text and "%!(PACKER_COMMA)word" not in text
    assert text.count(SENSITIVE) == 3


def test_a_build_ui_redacts_every_method_with_secrets_added_later() -> None:
    seen: list[str] = []

    class Inner:
        def say(self, m: str) -> None:
            seen.append(m)

        message = error = say

        def progress(self, label: str, fraction: float | None) -> None:
            seen.append(label)

        def ask(self, q: str) -> str:
            seen.append(q)
            return "answer"

    secrets: list[str] = ["first-secret"]
    ui = RedactingUi(Inner(), secrets)
    ui.say("first-secret")
    secrets.append("later-secret")
    ui.message("later-secret first-secret")
    ui.error("later-secret")
    ui.progress("copying later-secret", 0.5)
    assert ui.ask("continue with later-secret?") == "answer"
    assert seen == [SENSITIVE, f"{SENSITIVE} {SENSITIVE}", SENSITIVE, f"copying {SENSITIVE}",
                    f"continue with {SENSITIVE}?"]


def test_the_log_filter_shares_the_run_redactor() -> None:
    """The debug log filter uses the console's Redactor: a secret added to it later is blanked."""
    shared = Redactor()
    f = RedactingFilter(shared)
    assert f.redactor is shared
    shared.add("added-later")
    rec = logging.LogRecord("amibake", logging.DEBUG, __file__, 1, "value %s %d", ("added-later", 7), None)
    assert f.filter(rec)
    assert rec.getMessage() == f"value {SENSITIVE} 7" and rec.args is None


def test_a_secret_with_a_lone_surrogate_is_redacted_and_does_not_crash() -> None:
    """A secret read from a non-UTF-8 environment holds lone surrogates (os.environ's
    surrogateescape): adding it must not raise, and it is still blanked."""
    r = Redactor(["ab\udcffcdef"])
    assert r("x ab\udcffcdef y") == f"x {SENSITIVE} y"


def test_a_non_ascii_secret_with_a_quote_inside_a_longer_repr_is_redacted() -> None:
    """repr of a string holding a double quote quotes with ' and escapes the secret's ' while
    keeping its non-ASCII characters: that form is blanked too."""
    secret = "pä'ss-wd"
    text = repr('say "' + secret + '"')
    assert "ss-wd" in text
    assert "ss-wd" not in Redactor([secret])(text)
