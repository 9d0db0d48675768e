"""Go template strings of legacy JSON templates as HCL2 template strings, for ``hcl2_upgrade``.

Each call is translated the way Packer's upgrade function map does (``{{user `x`}}`` ->
``${var.x}``, ``{{timestamp}}`` -> ``${local.timestamp}``...). Calls with no automatic translation
(``lower``, ``split``, ``replace``...) are kept as Go templates with a note saying what to do; fields
such as ``{{ .Vars }}`` stay as they are. Literal text is escaped for HCL (``${`` -> ``$${``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_UNHANDLED_DOCS = "https://www.packer.io/docs/templates/hcl_templates/functions/string/"
_REPLACE_HINT = (
    "`replace(string, substring, replacement)` or `regex_replace(string, substring, replacement)`",
    f"{_UNHANDLED_DOCS}replace or {_UNHANDLED_DOCS}regex_replace",
)
#: the data source Packer's upgrade makes of each ``aws_secretsmanager`` call (``command/hcl2_upgrade.go``)
SECRETS_DATASOURCE = "amazon-secretsmanager"
#: Go template functions with no automatic HCL2 translation: (what to use instead, docs)
UNHANDLED = {
    "lower": ("`lower(var.example)`", f"{_UNHANDLED_DOCS}lower"),
    "upper": ("`upper(var.example)`", f"{_UNHANDLED_DOCS}upper"),
    "split": ("`split(separator, string)`", f"{_UNHANDLED_DOCS}split"),
    "replace": _REPLACE_HINT,
    "replace_all": _REPLACE_HINT,
    "clean_resource_name": (
        "use custom validation rules, " + _REPLACE_HINT[0],
        "https://packer.io/docs/templates/hcl_templates/variables#custom-validation-rules"
        f" , {_UNHANDLED_DOCS}replace or {_UNHANDLED_DOCS}regex_replace",
    ),
}
_ARITY = {
    "timestamp": (0, 0),
    "isotime": (0, 1),
    "strftime": (0, 1),
    "user": (1, 1),
    "env": (1, 1),
    "build": (1, 1),
    "data": (1, 1),
    "template_dir": (0, 0),
    "pwd": (0, 0),
    "packer_version": (0, 0),
    "uuid": (0, 0),
    "build_name": (0, 0),
    "build_type": (0, 0),
    "aws_secretsmanager": (1, 2),
    "lower": (1, 1),
    "upper": (1, 1),
    "split": (3, 3),
    "replace": (4, 4),
    "replace_all": (3, 3),
    "clean_resource_name": (1, 1),
}


# --- Go templates --------------------------------------------------------------------------


class GoTemplateError(Exception):
    """A Go template that does not parse or cannot be run by the upgrade's function map."""


@dataclass
class _Str:
    value: str


@dataclass
class _Num:
    text: str


@dataclass
class _Word:
    """An identifier (a function name), a field (``.ID``) or a variable (``$x``)."""

    text: str


@dataclass
class _Pipe:
    commands: list[list[Any]]


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_OPERAND = re.compile(
    r"\s*(?:(?P<raw>`[^`]*`)|(?P<str>\"(?:\\.|[^\"\\])*\")|(?P<num>[-+]?\d[\w.+-]*)"
    r"|(?P<word>[.$]?[A-Za-z_][\w.]*|\.)|(?P<p>[()|]))"
)


def _parse_pipe(src: str) -> _Pipe:
    pos = 0

    def pipe(depth: int) -> _Pipe:
        nonlocal pos
        commands: list[list[Any]] = [[]]
        while True:
            m = _OPERAND.match(src, pos)
            if m is None:
                if src[pos:].strip():
                    raise GoTemplateError(f"unexpected {src[pos:].strip()[:1]!r} in operand")
                if depth:
                    raise GoTemplateError("unclosed left paren")
                break
            pos = m.end()
            if m["raw"] is not None:
                commands[-1].append(_Str(m["raw"][1:-1]))
            elif m["str"] is not None:
                try:
                    commands[-1].append(_Str(json.loads(m["str"])))
                except ValueError:
                    raise GoTemplateError(f"bad string {m['str']}") from None
            elif m["num"] is not None:
                commands[-1].append(_Num(m["num"]))
            elif m["word"] is not None:
                commands[-1].append(_Word(m["word"]))
            elif m["p"] == "(":
                commands[-1].append(pipe(depth + 1))
            elif m["p"] == ")":
                if not depth:
                    raise GoTemplateError("unexpected right paren")
                break
            else:
                commands.append([])
        if any(not c for c in commands):
            raise GoTemplateError("missing value for command")
        return _Pipe(commands)

    return pipe(0)


def _go_string(node: Any) -> str:
    """A node as Go's template parser prints it."""
    if isinstance(node, _Str):
        return f"`{node.value}`" if "`" not in node.value else json.dumps(node.value)
    if isinstance(node, (_Num, _Word)):
        return node.text
    return "(" + " | ".join(" ".join(_go_string(a) for a in c) for c in node.commands) + ")"


def hcl_quote(s: str) -> str:
    """A string as an HCL quoted literal (``${`` and ``%{`` escaped: no interpolation)."""
    return '"' + hcl_escape(s) + '"'


def hcl_escape(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out).replace("${", "$${").replace("%{", "%%{")


@dataclass
class Translator:
    """Translates Go template strings to HCL2 template strings, remembering what they need."""

    locals_: set[str] = field(default_factory=set)
    timestamp: bool = False
    isotime: bool = False
    strftime: bool = False
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    #: for the block being written: its comments (errors met translating it)
    notes: list[str] = field(default_factory=list)
    #: set when a variable default calls anything other than ``env``
    only_env: bool = True

    def call(self, name: str, args: list[str]) -> str:
        """Run one function of the upgrade's function map; returns HCL2 template text."""
        lo, hi = _ARITY[name]
        if not lo <= len(args) <= hi:
            raise GoTemplateError(f"wrong number of args for {name}: want {lo}, got {len(args)}")
        if name != "env":
            self.only_env = False
        if name in UNHANDLED:
            instead, docs = UNHANDLED[name]
            self.notes.append(
                f'unhandled "{name}" call:\n# there is no way to automatically upgrade the "{name}"'
                f" call.\n# Please manually upgrade to {instead}\n# Visit {docs} for more infos."
            )
            shown = [args[0], args[1], args[3], args[2]] if name == "replace" else args
            return "{{ " + " ".join([name, *(a if a.isdigit() else f"`{a}`" for a in shown)]) + " }}"
        if name == "timestamp":
            self.timestamp = True
            return "${local.timestamp}"
        if name in ("isotime", "strftime"):
            if not args:
                return "${timestamp()}"
            setattr(self, name, True)
            return f"${{legacy_{name}({json.dumps(args[0])})}}"
        if name == "user":
            return f"${{{'local' if args[0] in self.locals_ else 'var'}.{args[0]}}}"
        if name == "aws_secretsmanager":
            return f"${{data.{SECRETS_DATASOURCE}.{self.secret(args)}.value}}"
        table: dict[str, Callable[[], str]] = {
            "env": lambda: f"${{env({json.dumps(args[0]) if args else ''})}}",
            "build": lambda: f"${{build.{args[0]}}}",
            "data": lambda: f"${{data.{args[0]}}}",
            "template_dir": lambda: "${path.root}",
            "pwd": lambda: "${path.cwd}",
            "packer_version": lambda: "${packer.version}",
            "uuid": lambda: "${uuidv4()}",
            "build_name": lambda: "${build.name}",
            "build_type": lambda: "${build.type}",
        }
        return table[name]()

    def secret(self, args: list[str]) -> str:
        wanted = {"name": args[0], **({"key": args[1]} if len(args) == 2 else {})}
        for sid, cfg in self.secrets.items():
            if cfg == wanted or (len(args) == 1 and cfg.get("name") == args[0]):
                return sid
        sid = f"autogenerated_{len(self.secrets) + 1}"
        self.secrets[sid] = wanted
        return sid

    def run(self, pipe: _Pipe) -> str:
        result: str | None = None
        for cmd in pipe.commands:
            head, *rest = cmd
            if result is None and not rest and not (isinstance(head, _Word) and head.text in _ARITY):
                result = self.operand(head)
                continue
            if not isinstance(head, _Word) or head.text not in _ARITY:
                what = _go_string(head)
                raise GoTemplateError(f'function "{what}" not defined')
            args = [self.operand(a) for a in rest]
            if result is not None:
                args.append(result)
            result = self.call(head.text, args)
        assert result is not None
        return result

    def operand(self, node: Any) -> str:
        if isinstance(node, _Str):
            return node.value
        if isinstance(node, _Num):
            return node.text
        if isinstance(node, _Pipe):
            return self.run(node)
        if node.text in _ARITY:
            return self.call(node.text, [])
        raise GoTemplateError(f"cannot use {node.text} as an argument here")

    def translate(self, text: str) -> str:
        """Go template text -> the inside of an HCL2 quoted template (escaped)."""
        out: list[str] = []
        pos = 0
        for m in _ACTION.finditer(text):
            lit = text[pos : m.start()]
            if m.group(1):
                lit = lit.rstrip()
            out.append(hcl_escape(lit))
            pos = m.end()
            if m.group(3):
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip())
            pipe = _parse_pipe(m.group(2))
            head = pipe.commands[0][0]
            single = len(pipe.commands) == 1 and len(pipe.commands[0]) == 1
            if single and not (isinstance(head, _Word) and head.text in _ARITY):
                # not a function: a build-time field such as {{ .Vars }}, left to the plugin
                out.append(hcl_escape("{{ " + _go_string(head) + " }}"))
                continue
            out.append(self.run(pipe))
        if "{{" in text[pos:]:
            raise GoTemplateError("unclosed action")
        out.append(hcl_escape(text[pos:]))
        return "".join(out)

    def string(self, text: str) -> str:
        """A JSON string as an HCL2 quoted template; a Go template that cannot be translated is
        kept as literal text and noted."""
        saved = (self.timestamp, self.isotime, self.strftime, dict(self.secrets), list(self.notes))
        try:
            return '"' + self.translate(text) + '"'
        except GoTemplateError as e:
            self.timestamp, self.isotime, self.strftime, self.secrets, self.notes = saved
            self.notes.append(
                f"could not parse template for following block: "
                f'"template: hcl2_upgrade: {e}" in {json.dumps(text)}'
            )
            return hcl_quote(text)
