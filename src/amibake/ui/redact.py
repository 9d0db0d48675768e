"""The one redactor: every secret, in every encoding it can take on its way to an output.

A sensitive value rarely reaches a log as typed. botocore logs the EC2 query string URL-encoded
and the XML answer with ``&amp;``; a remote command line carries it shell-quoted
(``'p@ss w0rd'"'"'!'``); a JSON body escapes its quotes and backslashes; an error message shows
Python's ``repr``; user data travels base64-encoded. Packer's ``packer.LogSecretFilter`` replaces
the raw strings only; amibake replaces each secret's derived forms too: for every registered
secret, the raw value, each long line of a multi-line one, and its XML, JSON, URL, shell-quoted
(single and double quotes), ``repr``, machine-readable and base64 (at the three byte alignments a
secret can have inside a longer encoded text) forms, each once more through XML, JSON and URL
encoding (a JSON body inside an XML answer, a shell line in a URL-encoded query). PEM private keys
and the values of key-material and secret-key fields are blanked whatever their value.

Every output channel uses this module: the console and machine-readable lines
(:mod:`amibake.ui.console`), the debug log (:class:`RedactingFilter`), a build's Ui
(:class:`RedactingUi`), local commands (:mod:`amibake.localexec`) and error messages
(:func:`without_secrets`). The rules, all here:

* the replacement text is :data:`SENSITIVE`;
* a value shorter than :data:`MIN_LENGTH` is never redacted, a line of a multi-line secret is
  redacted on its own from :data:`MIN_LINE_LENGTH`, a derived form from :data:`MIN_FORM_LENGTH`;
* the forms are matched longest first, in one pass, so a secret inside a longer one never leaves
  the rest of the longer one behind;
* a :class:`Redactor` also blanks PEM private keys and key-material and secret-key fields whatever
  their value; the one-off :func:`redact` with no secrets returns the text as it is;
* an option named like a secret (:func:`is_secret_option`) never has its value shown.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import shlex
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from amibake.errors import TemplateError, UserInputError

if TYPE_CHECKING:
    from amibake.api import Ui

SENSITIVE = "<sensitive>"
#: shorter values are not redacted: replacing every "a" or "12" would make output unreadable
MIN_LENGTH = 3
#: a line of a multi-line secret (a key, a certificate) is redacted on its own from this length
MIN_LINE_LENGTH = 8
#: a derived form shorter than this (a base64 fragment of a short secret) is not used on its own
MIN_FORM_LENGTH = 6

#: option names whose values are never shown (in a config error, a fingerprint's canonical text)
SECRET_OPTION = re.compile(r"password|secret|token|mfa_code|access_key|private_key$", re.IGNORECASE)

_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----", re.S)
_FIELDS = re.compile(
    # fields by name: key material, secret keys, an SSM session's token (botocore logs StartSession's answer)
    r"(?i)((?:<keyMaterial>|\"KeyMaterial\"\s*:\s*\"|\"TokenValue\"\s*:\s*\"|aws_secret_access_key\W+"
    r"|SecretAccessKey\W+))"
    r"[^<\"\s,}&]+"
)


def _xml(s: str) -> list[str]:
    base = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return [
        base,
        base.replace('"', "&quot;").replace("'", "&apos;"),
        base.replace('"', "&#34;").replace("'", "&#39;"),
        base.replace('"', "&quot;").replace("'", "&#39;"),
        base.replace("\r", "&#xD;").replace("\n", "&#xA;").replace("\t", "&#x9;"),
    ]


def _json(s: str) -> list[str]:
    return [json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1]]


def _url(s: str) -> list[str]:
    # surrogatepass: a secret read from a non-UTF-8 environment holds lone surrogates
    enc = {"encoding": "utf-8", "errors": "surrogatepass"}
    forms = [
        urllib.parse.quote(s, safe="-_.~", **enc),
        urllib.parse.quote(s, safe="", **enc),
        urllib.parse.quote(s, **enc),
        urllib.parse.quote_plus(s, **enc),
        urllib.parse.quote_plus(s, safe="-_.~", **enc),
    ]
    return forms + [re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms]


def _shell(s: str) -> list[str]:
    inner = s.replace("'", "'\"'\"'")
    double = re.sub(r'(["\\$`])', r"\\\1", s)
    return [shlex.quote(s), inner, inner.replace("'\"'\"'", "'\\''"), double]


def _repr(s: str) -> list[str]:
    """Python's ``repr`` of the value on its own, or inside a longer string or bytes (where the
    quote chosen, and so which quote is escaped, depends on the whole)."""
    esc = s.encode("unicode_escape").decode("ascii")
    # inside a longer string that holds a double quote, repr quotes with ' and escapes the secret's '
    # while keeping its printable non-ASCII characters: repr(s + '"') ends in "' (two characters)
    return [repr(s)[1:-1], repr(s + '"')[1:-2], esc, ascii(s)[1:-1], esc.replace("'", "\\'"),
            esc.replace('"', '\\"'), *_bytes_repr(s)]


def _bytes_repr(s: str) -> list[str]:
    """``repr`` of the UTF-8 bytes (botocore logs response bodies as ``b'...'``)."""
    body = repr(s.encode("utf-8", "surrogatepass") + b"'\"")[2:-4]
    return [body, body.replace("\\'", "'"), repr(s.encode("utf-8", "surrogatepass"))[2:-1]]


def _machine(s: str) -> list[str]:
    return [s.replace(",", "%!(PACKER_COMMA)").replace("\r", "\\r").replace("\n", "\\n")]


def _base64(s: str) -> list[str]:
    """The part of base64(prefix + s + suffix) that depends on s alone, for each alignment."""
    data = s.encode("utf-8", "surrogatepass")
    forms: list[str] = []
    for k in range(3):
        text = base64.b64encode(b"\0" * k + data).decode("ascii").rstrip("=")
        start = 4 if k else 0  # the first group mixes prefix bytes
        end = ((k + len(data)) // 3) * 4  # a trailing partial group mixes suffix bytes
        whole = base64.b64encode(b"\0" * k + data).decode("ascii")
        if k == 0:
            forms.append(whole)  # the value encoded on its own, padding included
        frag = text[start:end]
        forms += [frag, frag.replace("+", "-").replace("/", "_")]
    return forms


_ENCODERS: tuple[Callable[[str], list[str]], ...] = (_xml, _json, _url, _shell, _repr, _machine)
_OUTER: tuple[Callable[[str], list[str]], ...] = (_xml, _json, _url, _bytes_repr)


def derived_forms(secret: str) -> set[str]:
    """Every form of ``secret`` to blank out (the secret itself included)."""
    if len(secret) < MIN_LENGTH:
        return set()
    bases = [secret] + [ln.strip() for ln in secret.splitlines() if len(ln.strip()) >= MIN_LINE_LENGTH]
    forms: set[str] = set()
    for b in bases:
        first = {b}
        for enc in _ENCODERS:
            first.update(enc(b))
        forms |= first
        for f in first:
            for enc in _OUTER:
                forms.update(enc(f))
        forms.update(_base64(b))
    return {f for f in forms if f == secret or len(f) >= max(MIN_LENGTH, min(MIN_FORM_LENGTH, len(secret)))}


class Redactor:
    """Replaces every registered secret, in all its derived forms, with ``<sensitive>``.

    Thread-safe; secrets may be added while builds run (a temporary key pair's private key)."""

    def __init__(self, secrets: Iterable[str] = (), *, patterns: bool = True) -> None:
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._rx: Any = None  # RE2: one pass over the text whatever the number of forms
        self._alts = ""
        self._patterns = patterns
        self._lock = threading.Lock()
        self.add(*secrets)

    @property
    def secrets(self) -> list[str]:
        return sorted(self._secrets)

    def add(self, *secrets: str) -> None:
        with self._lock:
            new = [s for s in secrets
                   if isinstance(s, str) and len(s) >= MIN_LENGTH and s not in self._secrets]
            if not new:
                return
            for s in new:
                self._secrets.add(s)
                self._forms |= derived_forms(s)
            alts = "|".join(re.escape(a) for a in sorted(self._forms, key=len, reverse=True))
            self._alts, self._rx = alts, _compile(alts)

    def __call__(self, text: str) -> str:
        if self._patterns:
            if "PRIVATE KEY-----" in text:
                text = _PEM.sub(SENSITIVE, text)
            text = _FIELDS.sub(r"\1" + SENSITIVE, text)
        rx = self._rx
        if rx is not None:
            try:
                text = rx.sub(SENSITIVE, text)
            except (UnicodeError, ValueError, TypeError):  # a lone surrogate: RE2 takes UTF-8 only
                text = re.sub(self._alts, SENSITIVE, text)
        return text


def _compile(alternatives: str) -> Any:
    """The forms as one RE2 automaton (60x faster than Python's re on a 100 KB botocore body with
    ten secrets), or Python's re if RE2 refuses it (too large)."""
    import re2

    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    try:
        return re2.compile(alternatives, options=options)
    except (re2.error, UnicodeError):  # too large, or a lone surrogate (RE2 takes UTF-8 only)
        return re.compile(alternatives)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (in every form) blanked: for one-off use. With no secrets the text
    is returned as it is (a :class:`Redactor` would still blank PEM keys and secret-key fields)."""
    return Redactor(secrets)(text) if secrets else text


class RedactingFilter(logging.Filter):
    """A logging filter: the formatted message of each record, redacted (for the debug log)."""

    def __init__(self, secrets: Iterable[str] | Redactor = ()) -> None:
        super().__init__()
        self.redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def redact(self, text: str) -> str:
        return self.redactor(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redactor(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        record.exc_info = None
        return True


class RedactingUi:
    """A build's Ui with a live list of secrets blanked out (the build appends its temporary key and
    ``ssh_password`` to ``secrets`` while it runs)."""

    def __init__(self, inner: Ui, secrets: list[str]) -> None:
        self.inner = inner
        self.secrets = secrets
        self._redactor = Redactor()

    def _clean(self, text: str) -> str:
        self._redactor.add(*self.secrets)
        return self._redactor(text)

    def say(self, message: str) -> None:
        self.inner.say(self._clean(message))

    def message(self, message: str) -> None:
        self.inner.message(self._clean(message))

    def error(self, message: str) -> None:
        self.inner.error(self._clean(message))

    def progress(self, label: str, fraction: float | None) -> None:
        self.inner.progress(self._clean(label), fraction)

    def ask(self, question: str) -> str:
        return self.inner.ask(self._clean(question))


def leaves(value: object) -> list[str]:
    """The strings (and numbers, as text) inside a value: each is redacted on its own."""
    out: list[str] = []
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (int, float)):
            out.append(str(v))
        elif isinstance(v, dict):
            todo += list(v.values())
        elif isinstance(v, (list, tuple, set, frozenset)):
            todo += list(v)
    return out


def is_secret_option(name: str) -> bool:
    """Whether an option named ``name`` holds a secret (``ssh_password``, ``secret_key``, ``token``...)."""
    return bool(SECRET_OPTION.search(name))


def without_secrets(err: UserInputError, secrets: Iterable[str]) -> TemplateError:
    """``err`` as a :class:`TemplateError` with every secret blanked in its messages (keys and
    positions kept); the patterns of :class:`Redactor` apply even when ``secrets`` is empty."""
    r = Redactor(secrets)
    return TemplateError([dataclasses.replace(p, message=r(p.message)) for p in err.problems])
