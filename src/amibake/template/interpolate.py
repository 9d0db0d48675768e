"""Packer's legacy-JSON ``{{ }}`` interpolation: a parser and evaluator of Go's text/template.

Packer renders every string of a JSON template with Go's ``text/template`` and the function set of
``packer-plugin-sdk/template/interpolate/funcs.go`` (plus ``clean_resource_name`` that the amazon
builders add). This module reimplements the part of that language templates use:

* text outside ``{{ }}`` copied verbatim; ``{{-`` / ``-}}`` trim the white space next to them
  (the marker needs a space: ``{{-3}}`` is the number -3); ``{{/* comments */}}``;
* pipelines ``a | b c`` (the piped value becomes the *last* argument), parenthesised
  sub-pipelines, ``$x := ...`` variables, and the operands ``.``, ``.Field.Sub``, ``$``,
  raw ``\\`strings\\``` and ``"Go strings"``, numbers, character constants, ``true``/``false``/``nil``;
* Packer's functions and Go's builtins (``print``, ``printf``, ``len``, ``index``, ``eq``...);
* the control actions ``{{if}}``/``{{else if}}``/``{{else}}``/``{{end}}``, ``{{range}}`` (lists,
  maps in key order, integers as in Go 1.24, ``$i, $v :=``, ``{{else}}`` when empty,
  ``{{break}}``/``{{continue}}``) and ``{{with}}``/``{{else with}}``, with Go's truth (false, 0,
  nil, a missing key and empty strings/lists/maps are false) and variable scoping (a variable
  lives until the ``{{end}}`` of the block that declares it).

The named templates ``define``/``template``/``block`` are not evaluated: they are reported as an
"unsupported action" (a Packer template is one string; none of the corpus uses them). The Go 1.18+
``break``/``continue``, Go 1.23 ``else with`` and Go 1.24 range over an integer are accepted,
as current Packer does; Packer 1.6.6 (Go 1.15) rejected them.

Error messages follow Go's (``template: root:1: function "x" not defined``,
``template: root:1:3: executing "root" at <user>: wrong number of args for user: want 1 got 0``)
because Packer prints them unchanged.

Lexer, parser and evaluator follow ``src/text/template/parse/{lex,parse}.go`` and
``src/text/template/exec.go`` of Go; each Packer function follows its Go original.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, NamedTuple

import amibake
from amibake.errors import InterpolationError

__all__ = [
    "AMAZON_BUILDER_FUNCS",
    "BUILD_DATA_COMMON_KEYS",
    "BUILD_DATA_FIELDS_AMAZON",
    "BUILD_DATA_GENERATED",
    "ERR_VARIABLE_NOT_SET",
    "LATE_FIELDS_AMAZON",
    "LATE_FIELDS_BY_BUILDER",
    "PLACEHOLDER_MSG",
    "DeepInterpolationError",
    "InterpContext",
    "ListNode",
    "Node",
    "TemplateExecError",
    "TemplateSyntaxError",
    "available_functions",
    "build_data_keys",
    "check",
    "complete_build_data",
    "parse",
    "placeholder_build_data",
    "references",
    "render",
    "render_deep",
    "render_repeat",
    "user_references",
    "validate",
]

# ---------------------------------------------------------------------------------------------
# Amazon builder facts
# ---------------------------------------------------------------------------------------------

#: The config keys each amazon builder leaves out of its first interpolation pass (in Prepare)
#: and renders later, at build time, with the build data (``{{ .SourceAMI }}``...). They are still
#: *parsed* in Prepare, so an unknown function in them is an error before the build starts.
#: Source: the ``InterpolateFilter: &interpolate.RenderFilter{Exclude: ...}`` list of each
#: builder's ``Prepare`` in github.com/hashicorp/packer-plugin-amazon (HEAD of 2026-07):
#: ``builder/ebs/builder.go``, ``builder/ebssurrogate/builder.go``, ``builder/ebsvolume/builder.go``,
#: ``builder/instance/builder.go``, ``builder/chroot/builder.go``. Packer 1.6.6's copies in
#: ``builder/amazon/*/builder.go`` are the same lists without ``fleet_tags``/``fleet_tag`` (keys
#: that 1.6.6 did not have at all). The filter compares keys case-insensitively.
LATE_FIELDS_BY_BUILDER: Mapping[str, frozenset[str]] = {
    "amazon-ebs": frozenset({
        "ami_description", "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags",
        "run_volume_tag", "spot_tags", "spot_tag", "snapshot_tags", "snapshot_tag", "tags", "tag",
    }),
    "amazon-ebssurrogate": frozenset({
        "ami_description", "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags",
        "run_volume_tag", "snapshot_tags", "snapshot_tag", "spot_tags", "spot_tag", "tags", "tag",
    }),
    "amazon-ebsvolume": frozenset({
        "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags", "run_volume_tag",
        "spot_tags", "spot_tag", "tags", "tag",
    }),
    "amazon-instance": frozenset({
        "ami_description", "bundle_upload_command", "bundle_vol_command", "fleet_tags", "fleet_tag",
        "run_tags", "run_volume_tags", "snapshot_tags", "tags", "spot_tags",
    }),
    "amazon-chroot": frozenset({
        "ami_description", "snapshot_tags", "snapshot_tag", "tags", "tag", "root_volume_tags",
        "root_volume_tag", "command_wrapper", "post_mount_commands", "pre_mount_commands",
        "mount_path",
    }),
}  # fmt: skip

#: Union of :data:`LATE_FIELDS_BY_BUILDER`.
LATE_FIELDS_AMAZON: frozenset[str] = frozenset().union(*LATE_FIELDS_BY_BUILDER.values())

#: The build data the amazon builders offer to late fields (``{{ .SourceAMI }}``), from
#: packer-plugin-amazon ``common/build_filter.go``/``step_source_ami_info.go`` (``BuildInfoTemplate``).
BUILD_DATA_FIELDS_AMAZON: frozenset[str] = frozenset({
    "BuildRegion", "SourceAMI", "SourceAMIName", "SourceAMIOwner", "SourceAMIOwnerName",
    "SourceAMICreationDate", "SourceAMITags",
})  # fmt: skip

#: packer ``packer/provisioner.go`` ``BuilderDataCommonKeys``: the build data every builder offers
#: to ``{{ build `X` }}`` (JSON) and ``build.X`` (HCL2), whatever its type.
BUILD_DATA_COMMON_KEYS: tuple[str, ...] = (
    "ID", "Host", "Port", "User", "Password", "ConnType", "PackerRunUUID", "PackerHTTPPort",
    "PackerHTTPIP", "PackerHTTPAddr", "SSHPublicKey", "SSHPrivateKey", "WinRMPassword",
)  # fmt: skip

#: The keys each builder adds (its ``Prepare``'s generated-data list): packer-plugin-amazon
#: ``common/interpolate_build_info.go`` ``GetGeneratedDataList`` for every amazon builder,
#: plus ``Device`` and ``MountPath`` for amazon-chroot (``builder/chroot/builder.go``). Not
#: ``SourceAMITags``: a map, offered only to the builder's own late fields (``{{ .SourceAMITags.X }}``),
#: never to ``build``. The null builder adds none.
_AMAZON_GENERATED = (
    "SourceAMIName", "BuildRegion", "SourceAMI", "SourceAMICreationDate", "SourceAMIOwner",
    "SourceAMIOwnerName",
)  # fmt: skip
BUILD_DATA_GENERATED: Mapping[str, tuple[str, ...]] = {
    "amazon-ebs": _AMAZON_GENERATED,
    "amazon-ebssurrogate": _AMAZON_GENERATED,
    "amazon-ebsvolume": _AMAZON_GENERATED,
    "amazon-instance": _AMAZON_GENERATED,
    "amazon-chroot": (*_AMAZON_GENERATED, "Device", "MountPath"),
    "null": (),
}


def build_data_keys(builder_type: str) -> tuple[str, ...]:
    """Every key ``{{ build `X` }}`` / ``build.X`` may name in a build of ``builder_type``."""
    return BUILD_DATA_COMMON_KEYS + BUILD_DATA_GENERATED.get(builder_type, ())


def complete_build_data(builder_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every key of :func:`build_data_keys` the builder did not supply set to Go's
    ``<no value>``: what Packer's two passes give (``{{ build `Host` }}`` becomes ``{{.Host}}`` in
    Prepare, then renders against the build's data, where a missing key prints ``<no value>``)."""
    out: dict[str, Any] = {k: "<no value>" for k in build_data_keys(builder_type)}
    out.update(data)
    return out


#: Functions the amazon builders add to their interpolation context
#: (packer-plugin-amazon ``common/template_funcs.go``: ``TemplateFuncs``). Not available in
#: provisioner or post-processor configs. ``clean_ami_name``, its name before Packer 1.5, is
#: rejected by Packer 1.6.6 and by current Packer alike (``function "clean_ami_name" not
#: defined``), and so it is here.
AMAZON_BUILDER_FUNCS: frozenset[str] = frozenset({"clean_resource_name"})

#: packer-plugin-sdk ``interpolate.ErrVariableNotSetString``: ``{{user `x`}}`` of a variable not
#: (yet) set, in the variables section. Packer's variable resolution retries on this message.
ERR_VARIABLE_NOT_SET = "Error: variable not set:"

#: packer-plugin-sdk ``packerbuilderdata.PlaceholderMsg``: a build-data value containing it is a
#: placeholder, and ``{{ build `X` }}`` then renders as ``{{.X}}`` for a later pass.
PLACEHOLDER_MSG = "To set this dynamically in the Packer template, you must use the `build` function"

def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class InterpContext:
    """Everything a template string may refer to when it is rendered."""

    #: ``{{user `x`}}``. An unknown name renders as "" (Packer's ``funcGenUser``), except when
    #: ``allow_env`` is set (the variables section) where it is "Error: variable not set: x".
    user_vars: Mapping[str, str] = field(default_factory=dict)
    #: ``{{env `X`}}`` (and the secret stores) are only allowed in variable defaults.
    allow_env: bool = False
    #: the environment for ``env``; None: ``os.environ``
    env: Mapping[str, str] | None = None
    build_name: str | None = None
    build_type: str | None = None
    #: absolute directory of the template (``{{template_dir}}``)
    template_dir: str | None = None
    #: the run's start (Packer's ``interpolate.InitTime``, UTC): what ``{{timestamp}}``, ``isotime``
    #: and ``strftime`` show. The run owns this clock (``RunContext.init_time``, read once per
    #: command) and hands it to every context it makes; the default is only for a lone context.
    init_time: datetime = field(default_factory=_now)
    packer_version: str = amibake.PACKER_COMPAT_VERSION
    #: ``.Field`` values: a mapping (missing keys render ``<no value>`` as in Go) or an object
    #: whose attributes are the fields (a missing one is an error, as for a Go struct)
    data: Any = None
    #: True: an action that uses a ``.Field`` missing from ``data`` (or ``build`` while
    #: ``build_fn_data`` is None) is left verbatim, for a later pass with the build data
    keep_unknown_fields: bool = False
    #: ``{{ build `ID` }}`` values; None: not available (Packer's error, or verbatim with
    #: ``keep_unknown_fields``)
    build_fn_data: Mapping[str, Any] | None = None
    #: functions a plugin adds (the amazon builders: ``clean_resource_name``); pass
    #: ``frozenset()`` for provisioner and post-processor configs
    extra_funcs: frozenset[str] = AMAZON_BUILDER_FUNCS
    #: where ``aws_secretsmanager`` records each value it read (the run redacts them); None: nowhere
    secrets_out: list[str] | None = None

    @property
    def timestamp(self) -> int:
        """``{{timestamp}}``: the run's start as Unix seconds."""
        return int(self.init_time.timestamp())

    def with_time(self, when: datetime) -> InterpContext:
        """A copy whose timestamp/isotime/strftime all use ``when``."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return replace(self, init_time=when)

    def functions(self) -> frozenset[str]:
        return available_functions(self.extra_funcs)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class TemplateSyntaxError(InterpolationError):
    """A string that is not a valid template (Go's parse errors)."""

    def __init__(self, detail: str, offset: int, line: int) -> None:
        self.detail = detail
        self.line = line
        super().__init__(f"template: root:{line}: {detail}", offset)


class TemplateExecError(InterpolationError):
    """A template that failed while being rendered (Go's ``ExecError``)."""

    def __init__(self, detail: str, offset: int, line: int, column: int, context: str) -> None:
        self.detail = detail
        self.line = line
        self.column = column
        self.context = context
        super().__init__(f'template: root:{line}:{column}: executing "root" at <{context}>: {detail}', offset)


class DeepInterpolationError(InterpolationError):
    """An error in one string of a config, worded as Packer's ``RenderMap``.

    ``key`` is the top-level key (what Packer names), ``key_path`` the full path to the string
    (``tags.Name``, ``run_tags.Name``, ``inline[2]``), ``value`` the string and ``cause`` the error.
    """

    def __init__(self, verb: str, key: str, key_path: str, value: str, cause: InterpolationError) -> None:
        self.key = key
        self.key_path = key_path
        self.value = value
        self.cause = cause
        head = f"{verb} '{key}': " if key else ""
        super().__init__(f"{head}{cause.message} in:\n\n{value}", cause.offset)


def _line_col(text: str, pos: int) -> tuple[int, int]:
    """Go's 1-based line and 0-based *byte* column of ``pos``."""
    before = text[:pos]
    nl = before.rfind("\n")
    return before.count("\n") + 1, len(before[nl + 1 :].encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------------------------------------
# Lexer (Go's text/template/parse/lex.go)
# ---------------------------------------------------------------------------------------------


class _T(IntEnum):
    ERROR = 0
    BOOL = 1
    CHAR = 2
    CHAR_CONSTANT = 3
    COMPLEX = 4
    ASSIGN = 5
    DECLARE = 6
    EOF = 7
    FIELD = 8
    IDENTIFIER = 9
    LEFT_DELIM = 10
    LEFT_PAREN = 11
    NUMBER = 12
    PIPE = 13
    RAW_STRING = 14
    RIGHT_DELIM = 15
    RIGHT_PAREN = 16
    SPACE = 17
    STRING = 18
    TEXT = 19
    VARIABLE = 20
    KEYWORD = 30  # keywords come after this
    BLOCK = 31
    DOT = 32
    DEFINE = 33
    ELSE = 34
    END = 35
    IF = 36
    NIL = 37
    RANGE = 38
    TEMPLATE = 39
    WITH = 40
    BREAK = 41
    CONTINUE = 42


_KEYWORDS = {
    ".": _T.DOT,
    "block": _T.BLOCK,
    "break": _T.BREAK,
    "continue": _T.CONTINUE,
    "define": _T.DEFINE,
    "else": _T.ELSE,
    "end": _T.END,
    "if": _T.IF,
    "nil": _T.NIL,
    "range": _T.RANGE,
    "template": _T.TEMPLATE,
    "with": _T.WITH,
}
#: named templates: rejected with a clear message (no Packer template uses them; see the module doc)
_UNSUPPORTED_KEYWORDS = {_T.BLOCK, _T.DEFINE, _T.TEMPLATE}

_SPACE = " \t\r\n"


class _Item(NamedTuple):
    typ: _T
    pos: int
    val: str

    def go_string(self) -> str:
        """Go's ``item.String()``, as used in "unexpected X in Y"."""
        if self.typ == _T.EOF:
            return "EOF"
        if self.typ == _T.ERROR:
            return self.val
        if self.typ > _T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


def _go_quote(s: str) -> str:
    """``strconv.Quote``."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES_REV:
            out.append(_GO_ESCAPES_REV[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _go_rune(ch: str) -> str:
    """``fmt`` ``%#U``: ``U+0021 '!'``."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class _LexError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        self.message = message
        self.pos = pos


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[_Item] = []

    def run(self) -> list[_Item]:
        try:
            self._lex_all()
        except _LexError as e:
            self.items.append(_Item(_T.ERROR, e.pos, e.message))
        return self.items

    def _emit(self, typ: _T, start: int, end: int) -> None:
        self.items.append(_Item(typ, start, self.text[start:end]))

    def _lex_all(self) -> None:
        text = self.text
        pos = 0
        while True:
            x = text.find("{{", pos)
            if x < 0:
                if pos < len(text):
                    self._emit(_T.TEXT, pos, len(text))
                self.items.append(_Item(_T.EOF, len(text), ""))
                return
            trim = _has_left_trim(text, x + 2)
            seg_end = x
            if trim:
                seg_end = pos + len(text[pos:x].rstrip(_SPACE))
            if seg_end > pos:
                self._emit(_T.TEXT, pos, seg_end)
            after = x + 2 + (2 if trim else 0)
            if text.startswith("/*", after):
                pos = self._lex_comment(after)
                continue
            self.items.append(_Item(_T.LEFT_DELIM, x, "{{"))
            pos = self._lex_action(after)

    def _at_right_delim(self, pos: int) -> tuple[bool, bool]:
        text = self.text
        if _has_right_trim(text, pos) and text.startswith("}}", pos + 2):
            return True, True
        if text.startswith("}}", pos):
            return True, False
        return False, False

    def _lex_comment(self, start: int) -> int:
        text = self.text
        end = text.find("*/", start + 2)
        if end < 0:
            raise _LexError("unclosed comment", start)
        pos = end + 2
        delim, trim = self._at_right_delim(pos)
        if not delim:
            raise _LexError("comment ends before closing delimiter", start)
        pos += (2 if trim else 0) + 2
        if trim:
            pos += len(text[pos:]) - len(text[pos:].lstrip(_SPACE))
        return pos

    def _at_terminator(self, pos: int) -> bool:
        text = self.text
        if pos >= len(text):
            return True
        ch = text[pos]
        return ch in _SPACE or ch in ".,|:)(" or text.startswith("}}", pos)

    def _lex_action(self, pos: int) -> int:
        """Lex the inside of an action starting at ``pos``; return the position after ``}}``."""
        text = self.text
        n = len(text)
        paren = 0
        while True:
            delim, trim = self._at_right_delim(pos)
            if delim:
                if paren == 0:
                    if trim:
                        pos += 2
                    self.items.append(_Item(_T.RIGHT_DELIM, pos, "}}"))
                    pos += 2
                    if trim:
                        pos += len(text[pos:]) - len(text[pos:].lstrip(_SPACE))
                    return pos
                raise _LexError("unclosed left paren", pos)
            if pos >= n:
                raise _LexError("unclosed action", pos)
            start = pos
            r = text[pos]
            pos += 1
            if r in _SPACE:
                while pos < n and text[pos] in _SPACE:
                    pos += 1
                # a trim-marked closing delimiter begins with a space: leave that one
                if _has_right_trim(text, pos - 1) and text.startswith("}}", pos + 1):
                    pos -= 1
                    if pos == start:
                        continue
                self._emit(_T.SPACE, start, pos)
            elif r == "=":
                self._emit(_T.ASSIGN, start, pos)
            elif r == ":":
                if pos >= n or text[pos] != "=":
                    raise _LexError("expected :=", start)
                pos += 1
                self._emit(_T.DECLARE, start, pos)
            elif r == "|":
                self._emit(_T.PIPE, start, pos)
            elif r == '"':
                pos = self._lex_quote(start)
            elif r == "`":
                end = text.find("`", pos)
                if end < 0:
                    raise _LexError("unterminated raw quoted string", start)
                pos = end + 1
                self._emit(_T.RAW_STRING, start, pos)
            elif r == "$":
                pos = self._lex_field_or_variable(start, pos, _T.VARIABLE)
            elif r == "'":
                pos = self._lex_char(start)
            elif r == "." and pos < n and not ("0" <= text[pos] <= "9"):
                pos = self._lex_field_or_variable(start, pos, _T.FIELD)
            elif r in "+-." or "0" <= r <= "9":
                pos = self._lex_number(start)
            elif _is_alnum(r):
                pos = self._lex_identifier(start)
            elif r == "(":
                paren += 1
                self._emit(_T.LEFT_PAREN, start, pos)
            elif r == ")":
                paren -= 1
                if paren < 0:
                    raise _LexError("unexpected right paren", start)
                self._emit(_T.RIGHT_PAREN, start, pos)
            elif ord(r) < 0x80 and r.isprintable():
                self._emit(_T.CHAR, start, pos)
            else:
                raise _LexError(f"unrecognized character in action: {_go_rune(r)}", start)

    def _lex_identifier(self, start: int) -> int:
        text = self.text
        pos = start
        while pos < len(text) and _is_alnum(text[pos]):
            pos += 1
        if not self._at_terminator(pos):
            raise _LexError(f"bad character {_go_rune(text[pos])}", start)
        word = text[start:pos]
        kw = _KEYWORDS.get(word)
        if kw is not None and kw > _T.KEYWORD:
            self._emit(kw, start, pos)
        elif word in ("true", "false"):
            self._emit(_T.BOOL, start, pos)
        else:
            self._emit(_T.IDENTIFIER, start, pos)
        return pos

    def _lex_field_or_variable(self, start: int, pos: int, typ: _T) -> int:
        text = self.text
        if self._at_terminator(pos):  # "." or "$" alone
            self._emit(_T.VARIABLE if typ == _T.VARIABLE else _T.DOT, start, pos)
            return pos
        while pos < len(text) and _is_alnum(text[pos]):
            pos += 1
        if not self._at_terminator(pos):
            raise _LexError(f"bad character {_go_rune(text[pos])}", start)
        self._emit(typ, start, pos)
        return pos

    def _lex_quoted(self, start: int, quote: str, what: str) -> int:
        text = self.text
        pos = start + 1
        while True:
            if pos >= len(text) or text[pos] == "\n":
                raise _LexError(f"unterminated {what}", start)
            ch = text[pos]
            pos += 1
            if ch == "\\":
                if pos >= len(text) or text[pos] == "\n":
                    raise _LexError(f"unterminated {what}", start)
                pos += 1
            elif ch == quote:
                return pos

    def _lex_quote(self, start: int) -> int:
        pos = self._lex_quoted(start, '"', "quoted string")
        self._emit(_T.STRING, start, pos)
        return pos

    def _lex_char(self, start: int) -> int:
        pos = self._lex_quoted(start, "'", "character constant")
        self._emit(_T.CHAR_CONSTANT, start, pos)
        return pos

    def _scan_number(self, pos: int) -> tuple[bool, int]:
        text = self.text

        def accept(p: int, valid: str) -> tuple[bool, int]:
            if p < len(text) and text[p] in valid:
                return True, p + 1
            return False, p

        def run(p: int, valid: str) -> int:
            while p < len(text) and text[p] in valid:
                p += 1
            return p

        _, pos = accept(pos, "+-")
        digits = "0123456789_"
        ok, pos = accept(pos, "0")
        if ok:
            for prefix, ds in (("xX", "0123456789abcdefABCDEF_"), ("oO", "01234567_"), ("bB", "01_")):
                ok2, pos = accept(pos, prefix)
                if ok2:
                    digits = ds
                    break
        pos = run(pos, digits)
        ok, pos = accept(pos, ".")
        if ok:
            pos = run(pos, digits)
        if len(digits) == 11:
            ok, pos = accept(pos, "eE")
            if ok:
                _, pos = accept(pos, "+-")
                pos = run(pos, "0123456789_")
        if len(digits) == 23:
            ok, pos = accept(pos, "pP")
            if ok:
                _, pos = accept(pos, "+-")
                pos = run(pos, "0123456789_")
        _, pos = accept(pos, "i")
        if pos < len(text) and _is_alnum(text[pos]):
            return False, pos + 1
        return True, pos

    def _lex_number(self, start: int) -> int:
        text = self.text
        ok, pos = self._scan_number(start)
        if not ok:
            raise _LexError(f"bad number syntax: {_go_quote(text[start:pos])}", start)
        if pos < len(text) and text[pos] in "+-":
            ok, pos = self._scan_number(pos)
            if not ok or text[pos - 1] != "i":
                raise _LexError(f"bad number syntax: {_go_quote(text[start:pos])}", start)
            self._emit(_T.COMPLEX, start, pos)
            return pos
        self._emit(_T.NUMBER, start, pos)
        return pos


def _has_left_trim(text: str, pos: int) -> bool:
    return text.startswith("-", pos) and pos + 1 < len(text) and text[pos + 1] in _SPACE


def _has_right_trim(text: str, pos: int) -> bool:
    return pos + 1 < len(text) and text[pos] in _SPACE and text[pos + 1] == "-"


# ---------------------------------------------------------------------------------------------
# Go literals
# ---------------------------------------------------------------------------------------------

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_GO_ESCAPES_REV = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


class _SyntaxErr(ValueError):
    pass


def _unquote_char(s: str, i: int, quote: str) -> tuple[int | str, int]:
    """One (possibly escaped) character of a Go literal: (byte value or str, next index)."""
    c = s[i]
    if c == quote:
        raise _SyntaxErr("invalid syntax")
    if c != "\\":
        return c, i + 1
    if i + 1 >= len(s):
        raise _SyntaxErr("invalid syntax")
    e = s[i + 1]
    i += 2
    if e in _GO_ESCAPES:
        return _GO_ESCAPES[e], i
    if e in "xuU":
        n = {"x": 2, "u": 4, "U": 8}[e]
        digits = s[i : i + n]
        if len(digits) != n or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise _SyntaxErr("invalid syntax")
        v = int(digits, 16)
        if e == "x":
            return v, i + n
        if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
            raise _SyntaxErr("invalid syntax")
        return chr(v), i + n
    if "0" <= e <= "7":
        digits = s[i - 1 : i + 2]
        if len(digits) != 3 or any(d not in "01234567" for d in digits):
            raise _SyntaxErr("invalid syntax")
        v = int(digits, 8)
        if v > 255:
            raise _SyntaxErr("invalid syntax")
        return v, i + 2
    if e in "'\"":
        if e != quote:
            raise _SyntaxErr("invalid syntax")
        return e, i
    raise _SyntaxErr("invalid syntax")


def _go_unquote(q: str) -> str:
    """``strconv.Unquote`` for a double-quoted or raw string literal."""
    if q[0] == "`":
        return q[1:-1].replace("\r", "")
    body = q[1:-1]
    buf = bytearray()
    i = 0
    while i < len(body):
        v, i = _unquote_char(body, i, '"')
        if isinstance(v, int):
            buf.append(v)
        else:
            buf.extend(v.encode("utf-8", "surrogatepass"))
    # \x and octal escapes can make invalid UTF-8; Go keeps the bytes, we show U+FFFD for them
    return buf.decode("utf-8", "replace")


class _Number(NamedTuple):
    text: str
    is_int: bool = False
    int_value: int = 0
    is_uint: bool = False
    is_float: bool = False
    float_value: float = 0.0
    is_complex: bool = False
    complex_value: complex = 0j


_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def _parse_go_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)`` without the range check (None: not an integer)."""
    s = text
    sign = 1
    if s[:1] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s or s[0] == "_" or s[-1] == "_" or "__" in s:
        return None
    try:
        low = s.lower()
        if low.startswith(("0x", "0o", "0b")):
            return sign * int(s, 0)
        if len(s) > 1 and s[0] == "0":
            body = s[1:].lstrip("_")
            if body and all(c in "01234567_" for c in body):
                return sign * int(body.replace("_", ""), 8)
            return None
        if all(c in "0123456789_" for c in s):
            return sign * int(s.replace("_", ""))
    except ValueError:
        return None
    return None


def _parse_number(text: str, typ: _T) -> _Number:
    """Go's ``parse.newNumber``; raises _SyntaxErr with Go's message."""
    if typ == _T.CHAR_CONSTANT:
        try:
            v, i = _unquote_char(text, 1, "'")
        except _SyntaxErr:
            raise _SyntaxErr("invalid syntax") from None
        if text[i:] != "'":
            raise _SyntaxErr(f"malformed character constant: {text}")
        code = v if isinstance(v, int) else ord(v)
        return _Number(text, True, code, True, True, float(code))
    if typ == _T.COMPLEX or (text.endswith("i") and _float_or_none(text[:-1]) is not None):
        try:
            c = complex(text.replace("_", "").replace("i", "j"))
        except ValueError:
            raise _SyntaxErr(f"illegal number syntax: {_go_quote(text)}") from None
        if c.imag == 0:
            return _Number(text, c.real == int(c.real), int(c.real), False, True, c.real)
        return _Number(text, is_complex=True, complex_value=c)
    iv = _parse_go_int(text)
    if iv is not None:
        if _INT64_MIN <= iv <= _INT64_MAX:
            return _Number(text, True, iv, iv >= 0, True, float(iv))
        if 0 <= iv <= _UINT64_MAX:
            return _Number(text, False, 0, True, True, float(iv))
    f = _float_or_none(text)
    if f is not None:
        if not any(c in text for c in ".eEpP"):
            raise _SyntaxErr(f"integer overflow: {text}")
        is_int = f == f and abs(f) < 2**63 and float(int(f)) == f
        return _Number(text, is_int, int(f) if is_int else 0, False, True, f)
    raise _SyntaxErr(f"illegal number syntax: {_go_quote(text)}")


def _float_or_none(text: str) -> float | None:
    if not text or any(c not in "0123456789+-._eExXpPabcdefABCDEF" for c in text):
        return None
    try:
        if text.lower().lstrip("+-").startswith("0x"):
            return float.fromhex(text.replace("_", ""))
        return float(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# Parse tree
# ---------------------------------------------------------------------------------------------


class Node:
    """A node of the parse tree; ``pos`` is its offset in the template string. Treat as immutable."""

    __slots__ = ("pos",)
    _fields: tuple[str, ...] = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def go_string(self) -> str:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash((type(self).__name__, *(getattr(self, f) for f in self._fields)))

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


class TextNode(Node):
    __slots__ = ("text",)
    _fields = ("pos", "text")

    def __init__(self, pos: int, text: str) -> None:
        self.pos, self.text = pos, text

    def go_string(self) -> str:
        return self.text


class IdentifierNode(Node):
    __slots__ = ("name",)
    _fields = ("pos", "name")

    def __init__(self, pos: int, name: str) -> None:
        self.pos, self.name = pos, name

    def go_string(self) -> str:
        return self.name


class FieldNode(Node):
    __slots__ = ("idents",)
    _fields = ("pos", "idents")

    def __init__(self, pos: int, idents: tuple[str, ...]) -> None:
        self.pos, self.idents = pos, idents

    def go_string(self) -> str:
        return "".join("." + i for i in self.idents)


class VariableNode(Node):
    __slots__ = ("idents",)
    _fields = ("pos", "idents")

    def __init__(self, pos: int, idents: tuple[str, ...]) -> None:
        self.pos, self.idents = pos, idents  # idents[0] is "$" or "$name"

    def go_string(self) -> str:
        return ".".join(self.idents)


class DotNode(Node):
    __slots__ = ()

    def go_string(self) -> str:
        return "."


class NilNode(Node):
    __slots__ = ()

    def go_string(self) -> str:
        return "nil"


class BoolNode(Node):
    __slots__ = ("value",)
    _fields = ("pos", "value")

    def __init__(self, pos: int, value: bool) -> None:
        self.pos, self.value = pos, value

    def go_string(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    __slots__ = ("number",)
    _fields = ("pos", "number")

    def __init__(self, pos: int, number: _Number) -> None:
        self.pos, self.number = pos, number

    def go_string(self) -> str:
        return self.number.text


class StringNode(Node):
    __slots__ = ("quoted", "text")
    _fields = ("pos", "quoted", "text")

    def __init__(self, pos: int, quoted: str, text: str) -> None:
        self.pos, self.quoted, self.text = pos, quoted, text

    def go_string(self) -> str:
        return self.quoted


class CommandNode(Node):
    __slots__ = ("args",)
    _fields = ("pos", "args")

    def __init__(self, pos: int, args: tuple[Node, ...]) -> None:
        self.pos, self.args = pos, args

    def go_string(self) -> str:
        parts = []
        for a in self.args:
            s = a.go_string()
            parts.append(f"({s})" if isinstance(a, PipeNode) else s)
        return " ".join(parts)


class PipeNode(Node):
    __slots__ = ("cmds", "decl", "is_assign")
    _fields = ("pos", "decl", "is_assign", "cmds")

    def __init__(
        self, pos: int, decl: tuple[VariableNode, ...], is_assign: bool, cmds: tuple[CommandNode, ...]
    ) -> None:
        self.pos, self.decl, self.is_assign, self.cmds = pos, decl, is_assign, cmds

    def go_string(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(v.go_string() for v in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(c.go_string() for c in self.cmds)


class ChainNode(Node):
    __slots__ = ("fields", "node")
    _fields = ("pos", "node", "fields")

    def __init__(self, pos: int, node: Node, fields: tuple[str, ...]) -> None:
        self.pos, self.node, self.fields = pos, node, fields

    def go_string(self) -> str:
        s = self.node.go_string()
        if isinstance(self.node, PipeNode):
            s = f"({s})"
        return s + "".join("." + f for f in self.fields)


class ActionNode(Node):
    """``{{ pipeline }}``; ``source`` is the action as written, ``{{`` to ``}}`` (trim markers included)."""

    __slots__ = ("pipe", "source")
    _fields = ("pos", "pipe", "source")

    def __init__(self, pos: int, pipe: PipeNode, source: str) -> None:
        self.pos, self.pipe, self.source = pos, pipe, source

    def go_string(self) -> str:
        return "{{" + self.pipe.go_string() + "}}"


class ListNode(Node):
    __slots__ = ("nodes",)
    _fields = ("pos", "nodes")

    def __init__(self, pos: int, nodes: tuple[Node, ...]) -> None:
        self.pos, self.nodes = pos, nodes

    def go_string(self) -> str:
        return "".join(n.go_string() for n in self.nodes)


class BranchNode(Node):
    """``{{if}}``, ``{{range}}`` or ``{{with}}`` (Go's ``BranchNode``): ``pipe``, the ``list`` run
    when it holds, and the optional ``else_list``. ``source`` is the whole block as written, from
    the ``{{`` of its opening action to the ``}}`` of its ``{{end}}``. ``else_if`` marks an
    ``{{else if}}``/``{{else with}}`` link, which Go parses as an ``if``/``with`` alone inside the
    ``else_list`` of the previous one (so it has no source of its own)."""

    __slots__ = ("else_if", "else_list", "list", "pipe", "source")
    _fields = ("pos", "pipe", "list", "else_list", "else_if", "source")
    keyword = ""

    def __init__(
        self,
        pos: int,
        pipe: PipeNode,
        list: ListNode,  # Go's name
        else_list: ListNode | None,
        source: str,
        else_if: bool = False,
    ) -> None:
        self.pos, self.pipe, self.list, self.else_list = pos, pipe, list, else_list
        self.source, self.else_if = source, else_if

    def go_string(self) -> str:
        s = "{{" + self.keyword + " " + self.pipe.go_string() + "}}" + self.list.go_string()
        if self.else_list is not None:
            s += "{{else}}" + self.else_list.go_string()
        return s + "{{end}}"


class IfNode(BranchNode):
    __slots__ = ()
    keyword = "if"


class RangeNode(BranchNode):
    __slots__ = ()
    keyword = "range"


class WithNode(BranchNode):
    __slots__ = ()
    keyword = "with"


class BreakNode(Node):
    """``{{break}}`` (inside a ``{{range}}``)."""

    __slots__ = ()

    def go_string(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    """``{{continue}}`` (inside a ``{{range}}``)."""

    __slots__ = ()

    def go_string(self) -> str:
        return "{{continue}}"


class _ElseNode(Node):
    """``{{else}}`` while parsing; never in a finished tree."""

    __slots__ = ()

    def go_string(self) -> str:
        return "{{else}}"


class _EndNode(Node):
    """``{{end}}`` while parsing; never in a finished tree."""

    __slots__ = ()

    def go_string(self) -> str:
        return "{{end}}"


# ---------------------------------------------------------------------------------------------
# Parser (Go's text/template/parse/parse.go)
# ---------------------------------------------------------------------------------------------

_OPERAND_START = {
    _T.BOOL, _T.CHAR_CONSTANT, _T.COMPLEX, _T.DOT, _T.FIELD, _T.IDENTIFIER, _T.NUMBER, _T.NIL,
    _T.RAW_STRING, _T.STRING, _T.VARIABLE, _T.LEFT_PAREN,
}  # fmt: skip


#: Go stops at 10000 nested parentheses ("max expression depth exceeded"); a recursive Python
#: parser and evaluator must stop far earlier. No real template comes near this.
_MAX_DEPTH = 50


class _Parser:
    def __init__(self, text: str, funcs: Collection[str] | None) -> None:
        self.text = text
        self.items = _Lexer(text).run()
        self.i = 0
        self.funcs = funcs
        self.vars = ["$"]
        self.depth = 0
        self.last = self.items[0]
        self.action_line = 0
        self.range_depth = 0
        self.control_depth = 0

    # token stream
    def next(self) -> _Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.last = item
        return item

    def backup(self) -> None:
        self.i -= 1

    def peek(self) -> _Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> _Item:
        while True:
            t = self.next()
            if t.typ != _T.SPACE:
                return t

    def peek_non_space(self) -> _Item:
        t = self.next_non_space()
        self.backup()
        return t

    def error(self, message: str, pos: int | None = None) -> TemplateSyntaxError:
        at = self.last.pos if pos is None else pos
        return TemplateSyntaxError(message, at, _line_col(self.text, at)[0])

    def unexpected(self, token: _Item, context: str) -> TemplateSyntaxError:
        if token.typ == _T.ERROR:
            extra = ""
            line = _line_col(self.text, token.pos)[0]
            if self.action_line and self.action_line != line:
                extra = f" in action started at root:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.error(token.val + extra, token.pos)
        return self.error(f"unexpected {token.go_string()} in {context}", token.pos)

    # grammar
    def parse(self) -> ListNode:
        nodes: list[Node] = []
        while self.peek().typ != _T.EOF:
            node = self.text_or_action()
            if isinstance(node, _ElseNode | _EndNode):
                raise self.error(f"unexpected {node.go_string()}", node.pos)
            nodes.append(node)
        return ListNode(0, tuple(nodes))

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ == _T.TEXT:
            return TextNode(token.pos, token.val)
        if token.typ == _T.LEFT_DELIM:
            self.action_line = _line_col(self.text, token.pos)[0]
            try:
                return self.action(token)
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    def item_list(self) -> tuple[ListNode, Node]:
        """Nodes up to the ``{{else}}`` or ``{{end}}`` that closes them (Go's ``itemList``)."""
        pos = self.peek_non_space().pos
        nodes: list[Node] = []
        while (peek := self.peek_non_space()).typ != _T.EOF:
            node = self.text_or_action()
            if isinstance(node, _ElseNode | _EndNode):
                return ListNode(pos, tuple(nodes)), node
            nodes.append(node)
        raise self.error("unexpected EOF", peek.pos)

    def action(self, delim: _Item) -> Node:
        token = self.next_non_space()
        typ = token.typ
        if typ in _UNSUPPORTED_KEYWORDS:
            raise self.error(
                f'unsupported action "{token.val}": amibake does not implement named templates '
                "(define/template/block)",
                token.pos,
            )
        if typ == _T.END:
            self.expect_close(token.val)
            return _EndNode(token.pos)
        if typ == _T.ELSE:
            # "{{else if ...}}" / "{{else with ...}}": leave the if/with for parse_control
            if self.peek_non_space().typ not in (_T.IF, _T.WITH):
                self.expect_close(token.val)
            return _ElseNode(token.pos)
        if typ in (_T.BREAK, _T.CONTINUE):
            self.expect_close("{{" + token.val + "}}")
            if self.range_depth == 0:
                raise self.error(f"{{{{{token.val}}}}} outside {{{{range}}}}")
            return BreakNode(token.pos) if typ == _T.BREAK else ContinueNode(token.pos)
        if typ in (_T.IF, _T.RANGE, _T.WITH):
            return self.control(delim, token)
        self.backup()
        pipe = self.pipeline("command", _T.RIGHT_DELIM)
        end = self.last.pos + 2  # self.last is the closing "}}"
        return ActionNode(delim.pos, pipe, self.text[delim.pos : end])

    def expect_close(self, context: str) -> None:
        closing = self.next_non_space()
        if closing.typ != _T.RIGHT_DELIM:
            raise self.unexpected(closing, context)

    def control(self, delim: _Item, keyword: _Item, else_if: bool = False) -> BranchNode:
        """``{{if}}``/``{{range}}``/``{{with}}`` up to its ``{{end}}`` (Go's ``parseControl``)."""
        context = keyword.val
        if self.control_depth >= _MAX_DEPTH:
            raise self.error(f"max control nesting depth exceeded ({_MAX_DEPTH})", keyword.pos)
        self.control_depth += 1
        n_vars = len(self.vars)
        pipe = self.pipeline(context, _T.RIGHT_DELIM)
        if context == "range":
            self.range_depth += 1
        body, nxt = self.item_list()
        if context == "range":
            self.range_depth -= 1
        else_list: ListNode | None = None
        if isinstance(nxt, _ElseNode):
            peek = self.peek()
            if (context, peek.typ) in (("if", _T.IF), ("with", _T.WITH)):
                # {{if a}}x{{else if b}}y{{end}} is {{if a}}x{{else}}{{if b}}y{{end}}{{end}}
                self.next()
                inner = self.control(delim, peek, else_if=True)
                else_list = ListNode(nxt.pos, (inner,))
            else:
                else_list, nxt = self.item_list()
                if not isinstance(nxt, _EndNode):
                    raise self.error(f"expected end; found {nxt.go_string()}")
        del self.vars[n_vars:]
        self.control_depth -= 1
        source = "" if else_if else self.text[delim.pos : self.last.pos + 2]
        cls = {"if": IfNode, "range": RangeNode, "with": WithNode}[context]
        return cls(keyword.pos, pipe, body, else_list, source, else_if)

    def pipeline(self, context: str, end: _T) -> PipeNode:
        start = self.peek_non_space()
        decl: list[VariableNode] = []
        is_assign = False
        while (v := self.peek_non_space()).typ == _T.VARIABLE:
            mark = self.i
            v = self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (_T.ASSIGN, _T.DECLARE):
                self.next_non_space()
                is_assign = nxt.typ == _T.ASSIGN
                if is_assign and v.val not in self.vars:
                    raise self.error(f"undefined variable {_go_quote(v.val)}", v.pos)
                decl.append(VariableNode(v.pos, (v.val,)))
                self.vars.append(v.val)
                break
            if nxt.typ == _T.CHAR and nxt.val == ",":
                self.next_non_space()
                decl.append(VariableNode(v.pos, (v.val,)))
                self.vars.append(v.val)
                if context == "range" and len(decl) < 2:
                    after = self.peek_non_space()
                    if after.typ in (_T.VARIABLE, _T.RIGHT_DELIM, _T.RIGHT_PAREN):
                        continue  # $i, $v := ...
                    raise self.error("range can only initialize variables", after.pos)
                raise self.error(f"too many declarations in {context}", nxt.pos)
            self.i = mark
            break
        cmds: list[CommandNode] = []
        while True:
            token = self.next_non_space()
            if token.typ == end:
                if not cmds:
                    raise self.error(f"missing value for {context}", token.pos)
                for i, c in enumerate(cmds[1:]):
                    if isinstance(c.args[0], BoolNode | DotNode | NilNode | NumberNode | StringNode):
                        raise self.error(f"non executable command in pipeline stage {i + 2}", c.pos)
                return PipeNode(start.pos, tuple(decl), is_assign, tuple(cmds))
            if token.typ in _OPERAND_START:
                self.backup()
                cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def command(self) -> CommandNode:
        pos = self.peek_non_space().pos
        args: list[Node] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.typ == _T.SPACE:
                continue
            if token.typ in (_T.RIGHT_DELIM, _T.RIGHT_PAREN):
                self.backup()
            elif token.typ != _T.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not args:
            raise self.error("empty command", pos)
        return CommandNode(pos, tuple(args))

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == _T.FIELD:
            pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ == _T.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(node.pos, node.idents + tuple(fields))
            if isinstance(node, VariableNode):
                return VariableNode(node.pos, node.idents + tuple(fields))
            if isinstance(node, BoolNode | StringNode | NumberNode | NilNode | DotNode):
                raise self.error(f"unexpected . after term {_go_quote(node.go_string())}", pos)
            return ChainNode(pos, node, tuple(fields))
        return node

    def term(self) -> Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == _T.IDENTIFIER:
            if self.funcs is not None and token.val not in self.funcs:
                raise self.error(f"function {_go_quote(token.val)} not defined", token.pos)
            return IdentifierNode(token.pos, token.val)
        if typ == _T.DOT:
            return DotNode(token.pos)
        if typ == _T.NIL:
            return NilNode(token.pos)
        if typ == _T.VARIABLE:
            if token.val not in self.vars:
                raise self.error(f"undefined variable {_go_quote(token.val)}", token.pos)
            return VariableNode(token.pos, (token.val,))
        if typ == _T.FIELD:
            return FieldNode(token.pos, (token.val[1:],))
        if typ == _T.BOOL:
            return BoolNode(token.pos, token.val == "true")
        if typ in (_T.CHAR_CONSTANT, _T.COMPLEX, _T.NUMBER):
            try:
                return NumberNode(token.pos, _parse_number(token.val, typ))
            except _SyntaxErr as e:
                raise self.error(str(e), token.pos) from None
        if typ == _T.LEFT_PAREN:
            if self.depth >= _MAX_DEPTH:
                raise self.error("max expression depth exceeded", token.pos)
            self.depth += 1
            pipe = self.pipeline("parenthesized pipeline", _T.RIGHT_PAREN)
            self.depth -= 1
            return pipe
        if typ in (_T.STRING, _T.RAW_STRING):
            try:
                return StringNode(token.pos, token.val, _go_unquote(token.val))
            except _SyntaxErr as e:
                raise self.error(str(e), token.pos) from None
        self.backup()
        return None


def parse(text: str, funcs: Collection[str] | None = None) -> ListNode:
    """Parse a template string. With ``funcs``, an unknown function is an error (as in Go).

    Raises :class:`TemplateSyntaxError` (an :class:`InterpolationError`) with Go's message.
    """
    return _Parser(text, funcs).parse()


def validate(text: str, ctx: InterpContext) -> None:
    """Packer's ``interpolate.Validate``: the string parses and every function exists."""
    if "{{" in text:
        parse(text, ctx.functions())


# ---------------------------------------------------------------------------------------------
# Values (Go's reflect/fmt, as far as templates see them)
# ---------------------------------------------------------------------------------------------


class _Invalid:
    """Go's zero ``reflect.Value``: a missing map key; prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


class _NoFinal:
    """Go's ``missingVal``: no piped-in value."""


INVALID: Any = _Invalid()
_NO_FINAL: Any = _NoFinal()

# parameter types of functions
_STR, _INT, _ANY = "string", "int", "interface {}"


def _go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    if v is None:
        return "interface {}"
    return type(v).__name__


def _go_float(f: float) -> str:
    """``fmt`` ``%v`` of a float64: ``strconv.FormatFloat(f, "g", -1, 64)``."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    r = repr(f)
    sign = "-" if r.startswith("-") else ""
    mant, _, exp_s = r.lstrip("-").partition("e")
    exp = int(exp_s) if exp_s else 0
    int_part, _, frac = mant.partition(".")
    frac = frac.rstrip("0") if frac != "0" else ""
    digits = (int_part + frac).lstrip("0")
    # decimal exponent of the first significant digit
    if int_part.strip("0"):
        dp = len(int_part.lstrip("0")) + exp
    else:
        dp = exp - (len(frac) - len(frac.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    x = dp - 1
    if x < -4 or x >= 6:  # %v is shortest %g: exponent form below 1e-4 and from 1e+06 on
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{sign}{digits}{'0' * (dp - len(digits))}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _go_format(v: Any) -> str:
    """``fmt.Sprint`` of one value (``%v``)."""
    if v is INVALID:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, complex):
        im = _go_float(v.imag)
        return f"({_go_float(v.real)}{'' if im.startswith(('-', '+')) else '+'}{im}i)"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{_go_format(k)}:{_go_format(x)}" for k, x in items) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(_go_format(x) for x in v) + "]"
    return str(v)


def _truth(v: Any) -> bool:
    if v is INVALID or v is None:
        return False
    if isinstance(v, bool | int | float | complex | str | Mapping | list | tuple):
        return bool(v)
    return True


# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------


class _FuncError(Exception):
    """A function's returned error (Go: ``error calling NAME: MSG``)."""


class _Func(NamedTuple):
    params: tuple[str, ...]
    impl: Callable[..., Any]
    variadic: str | None = None  # type of the ...args after params


_NETWORK_FUNCS = {
    "aws_secretsmanager": "AWS Secrets Manager",
    "aws_secretsmanager_raw": "AWS Secrets Manager",
    "consul_key": "Consul",
    "vault": "Vault",
}


def _f_split(ctx: InterpContext, k: str, sep: str, i: int) -> str:
    parts = list(k) if sep == "" else k.split(sep)
    if len(parts) <= i:
        raise _FuncError(
            f"the substring {i} was unavailable using the separator value, {sep}, "
            f"only {len(parts)} values were found"
        )
    if i < 0:
        raise _FuncError(f"runtime error: index out of range [{i}]")
    return parts[i]


def _f_build_name(ctx: InterpContext) -> str:
    if not ctx.build_name:
        raise _FuncError("build_name not available")
    return ctx.build_name


def _f_build_type(ctx: InterpContext) -> str:
    if not ctx.build_type:
        raise _FuncError("build_type not available")
    return ctx.build_type


def _f_env(ctx: InterpContext, k: str) -> str:
    if not ctx.allow_env:
        raise _FuncError("env vars are not allowed here")
    env = os.environ if ctx.env is None else ctx.env
    return env.get(k, "")


def _f_isotime(ctx: InterpContext, *fmt: str) -> str:
    from amibake.template import gotime

    if not fmt:
        return gotime.format_time(ctx.init_time, gotime.RFC3339)
    if len(fmt) > 1:
        raise _FuncError(f"too many values, 1 needed: [{' '.join(fmt)}]")
    return gotime.format_time(ctx.init_time, fmt[0])


def _f_strftime(ctx: InterpContext, fmt: str) -> str:
    from amibake.template import gotime

    return gotime.strftime(fmt, ctx.init_time)


def _f_pwd(ctx: InterpContext) -> str:
    return os.getcwd()


def _f_template_dir(ctx: InterpContext) -> str:
    if not ctx.template_dir:
        raise _FuncError("template path not available")
    return ctx.template_dir


def _f_timestamp(ctx: InterpContext) -> str:
    return str(ctx.timestamp)


def _f_uuid(ctx: InterpContext) -> str:
    import time

    from amibake.template import fixed

    if fixed.active():
        return fixed.FIXED_UUID

    b = os.urandom(12)
    unix = int(time.time()) & 0xFFFFFFFF
    return f"{unix:08x}-{b[0:2].hex()}-{b[2:4].hex()}-{b[4:6].hex()}-{b[6:8].hex()}{b[8:].hex()}"


def _f_user(ctx: InterpContext, k: str) -> str:
    if k in ctx.user_vars:
        return ctx.user_vars[k]
    if ctx.allow_env:
        raise _FuncError(f"{ERR_VARIABLE_NOT_SET} {k}")
    return ""


def _f_packer_version(ctx: InterpContext) -> str:
    if not ctx.packer_version:
        raise _FuncError("packer_version not available")
    return ctx.packer_version


def _network(name: str) -> Callable[..., str]:
    def impl(ctx: InterpContext, *args: str) -> str:
        if not ctx.allow_env:
            # Packer's own wording for use outside the variables section
            raise _FuncError(
                {
                    "consul_key": "consul_key is not allowed here",
                    "vault": "Vault vars are only allowed in the variables section",
                }.get(name, "AWS Secrets Manager is only allowed in the variables section")
            )
        if name == "aws_secretsmanager" and not args:
            raise _FuncError("secret name must be provided")
        if name == "aws_secretsmanager" and len(args) > 2:
            raise _FuncError("only secret name and optional secret key can be provided.")
        if name == "aws_secretsmanager":
            from amibake.template.aws_secrets import AwsSecretError, get_aws_secret

            try:
                value = get_aws_secret(args[0], args[1] if len(args) > 1 else "")
            except AwsSecretError as e:
                raise _FuncError(str(e)) from None
            if ctx.secrets_out is not None and value and value not in ctx.secrets_out:
                ctx.secrets_out.append(value)
            return value
        raise _FuncError(
            f"amibake does not support the {name} function (it reads {_NETWORK_FUNCS[name]} "
            "over the network); pass the value with -var or -var-file instead"
        )

    return impl


def _f_sed(ctx: InterpContext, expression: str, input_string: str) -> str:
    raise _FuncError(
        "template function `sed` is deprecated use `replace` or `replace_all` instead."
        "Documentation: https://www.packer.io/docs/templates/engine"
    )


def _f_build(ctx: InterpContext, s: str) -> str:
    data = ctx.build_fn_data
    if data is None:
        raise _FuncError(
            f"Error validating build variable: the given variable {s} will not be passed into your plugin."
        )
    if s not in data:
        raise _FuncError(f"loaded data, but couldnt find {s} in it.")
    v = data[s]
    if isinstance(v, str):
        return f"{{{{.{s}}}}}" if PLACEHOLDER_MSG in v else v
    # Packer renders the {{.X}} its first pass left with the build's data: Go's formatting of the value
    return _go_format(v)


def _f_replace_all(ctx: InterpContext, old: str, new: str, src: str) -> str:
    return src.replace(old, new)


def _f_replace(ctx: InterpContext, old: str, new: str, n: int, src: str) -> str:
    return src.replace(old, new, n if n >= 0 else -1)


def _f_upper(ctx: InterpContext, s: str) -> str:
    # Go maps rune by rune (no "ß" -> "SS")
    return "".join(u if len(u := c.upper()) == 1 else c for c in s)


def _f_lower(ctx: InterpContext, s: str) -> str:
    return "".join(c.lower()[0] for c in s)


_CLEAN_ALLOWED = frozenset(b"()[] ./-'@_")


def _f_clean_resource_name(ctx: InterpContext, s: str) -> str:
    """packer-plugin-amazon ``templateCleanAMIName``: byte by byte, anything but ASCII letters,
    digits and ``( ) [ ] space . / - ' @ _`` becomes ``-`` (so a 2-byte UTF-8 char gives ``--``)."""
    out = bytearray()
    for b in s.encode("utf-8", "surrogatepass"):
        ok = 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in _CLEAN_ALLOWED
        out.append(b if ok else 0x2D)
    return out.decode("ascii")


# Go builtins (text/template/funcs.go), the commonly useful ones


def _b_and(ctx: InterpContext, first: Any, *rest: Any) -> Any:
    for v in (first, *rest):
        if not _truth(v):
            return v
    return rest[-1] if rest else first


def _b_or(ctx: InterpContext, first: Any, *rest: Any) -> Any:
    for v in (first, *rest):
        if _truth(v):
            return v
    return rest[-1] if rest else first


def _b_not(ctx: InterpContext, v: Any) -> bool:
    return not _truth(v)


def _b_len(ctx: InterpContext, v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, Mapping | list | tuple):
        return len(v)
    raise _FuncError(f"len of type {_go_type(v)}")


def _b_index(ctx: InterpContext, item: Any, *indexes: Any) -> Any:
    if item is None or item is INVALID:
        raise _FuncError("index of untyped nil")
    for ix in indexes:
        if isinstance(item, Mapping):
            item = item.get(ix, INVALID)
        elif isinstance(item, list | tuple | str):
            if isinstance(ix, bool) or not isinstance(ix, int):
                raise _FuncError(f"cannot index slice/array with type {_go_type(ix)}")
            seq: Any = item.encode() if isinstance(item, str) else item
            if not 0 <= ix < len(seq):
                raise _FuncError(f"index out of range: {ix}")
            item = seq[ix]
        else:
            raise _FuncError(f"can't index item of type {_go_type(item)}")
    return item


def _sprint(args: Sequence[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_go_format(a))
    return "".join(out)


def _b_print(ctx: InterpContext, *args: Any) -> str:
    return _sprint(args)


def _b_println(ctx: InterpContext, *args: Any) -> str:
    return " ".join(_go_format(a) for a in args) + "\n"


def _b_printf(ctx: InterpContext, fmt: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the verbs templates use: %v %s %d %q %t %x %%."""
    out: list[str] = []
    i = 0
    argi = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c if c != "%" else "%!(NOVERB)")
            i += 1
            continue
        verb = fmt[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[argi]
        argi += 1
        is_int = isinstance(a, int) and not isinstance(a, bool)
        if verb in "vs" or (verb == "d" and is_int) or (verb == "t" and isinstance(a, bool)):
            out.append(_go_format(a))
        elif verb == "q" and isinstance(a, str):
            out.append(_go_quote(a))
        elif verb == "x" and isinstance(a, str):
            out.append(a.encode().hex())
        elif verb == "x" and isinstance(a, int) and not isinstance(a, bool):
            out.append(format(a, "x") if a >= 0 else "-" + format(-a, "x"))
        else:
            out.append(f"%!{verb}({_go_type(a)}={_go_format(a)})")
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={_go_format(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _basic_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return "invalid"


def _b_eq(ctx: InterpContext, a: Any, *bs: Any) -> bool:
    if not bs:
        raise _FuncError("missing argument for comparison")
    ka = _basic_kind(a)
    for b in bs:
        kb = _basic_kind(b)
        if ka == "invalid" or kb == "invalid":
            if a is None or b is None or a is INVALID or b is INVALID:
                if (a is None or a is INVALID) and (b is None or b is INVALID):
                    return True
                continue
            raise _FuncError("invalid type for comparison")
        if ka != kb:
            raise _FuncError("incompatible types for comparison")
        if a == b:
            return True
    return False


def _b_ne(ctx: InterpContext, a: Any, b: Any) -> bool:
    return not _b_eq(ctx, a, b)


def _b_lt(ctx: InterpContext, a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka in ("invalid", "bool", "complex") or kb in ("invalid", "bool", "complex"):
        raise _FuncError("invalid type for comparison")
    if ka != kb:
        raise _FuncError("incompatible types for comparison")
    return bool(a < b)


def _b_le(ctx: InterpContext, a: Any, b: Any) -> bool:
    return _b_lt(ctx, a, b) or _b_eq(ctx, a, b)


def _b_gt(ctx: InterpContext, a: Any, b: Any) -> bool:
    return not _b_le(ctx, a, b)


def _b_ge(ctx: InterpContext, a: Any, b: Any) -> bool:
    return not _b_lt(ctx, a, b)


def _b_html(ctx: InterpContext, *args: Any) -> str:
    s = _sprint(args)
    rep = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\x00": "\ufffd"}
    return "".join(rep.get(c, c) for c in s)


def _b_js(ctx: InterpContext, *args: Any) -> str:
    s = _sprint(args)
    rep = {
        "\\": "\\\\", "'": "\\'", '"': "\\\"", "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
        "=": "\\u003D", "\n": "\\u000A", "\r": "\\u000D", "\t": "\\u0009",
    }  # fmt: skip
    return "".join(rep.get(c, c) for c in s)


def _b_urlquery(ctx: InterpContext, *args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(args), safe="")


def _unsupported_builtin(name: str) -> Callable[..., Any]:
    def impl(ctx: InterpContext, *args: Any) -> Any:
        raise _FuncError(f"amibake does not support the Go template builtin {name}")

    return impl


_PACKER_FUNCS: Mapping[str, _Func] = {
    "build_name": _Func((), _f_build_name),
    "build_type": _Func((), _f_build_type),
    "env": _Func((_STR,), _f_env),
    "isotime": _Func((), _f_isotime, variadic=_STR),
    "strftime": _Func((_STR,), _f_strftime),
    "pwd": _Func((), _f_pwd),
    "split": _Func((_STR, _STR, _INT), _f_split),
    "template_dir": _Func((), _f_template_dir),
    "timestamp": _Func((), _f_timestamp),
    "uuid": _Func((), _f_uuid),
    "user": _Func((_STR,), _f_user),
    "packer_version": _Func((), _f_packer_version),
    "consul_key": _Func((_STR,), _network("consul_key")),
    "vault": _Func((_STR, _STR), _network("vault")),
    "sed": _Func((_STR, _STR), _f_sed),
    "build": _Func((_STR,), _f_build),
    "aws_secretsmanager": _Func((), _network("aws_secretsmanager"), variadic=_STR),
    "aws_secretsmanager_raw": _Func((_STR,), _network("aws_secretsmanager_raw")),
    "replace": _Func((_STR, _STR, _INT, _STR), _f_replace),
    "replace_all": _Func((_STR, _STR, _STR), _f_replace_all),
    "upper": _Func((_STR,), _f_upper),
    "lower": _Func((_STR,), _f_lower),
}

_PLUGIN_FUNCS: Mapping[str, _Func] = {
    "clean_resource_name": _Func((_STR,), _f_clean_resource_name),
}

_GO_BUILTINS: Mapping[str, _Func] = {
    "and": _Func((_ANY,), _b_and, variadic=_ANY),
    "or": _Func((_ANY,), _b_or, variadic=_ANY),
    "not": _Func((_ANY,), _b_not),
    "len": _Func((_ANY,), _b_len),
    "index": _Func((_ANY,), _b_index, variadic=_ANY),
    "print": _Func((), _b_print, variadic=_ANY),
    "printf": _Func((_STR,), _b_printf, variadic=_ANY),
    "println": _Func((), _b_println, variadic=_ANY),
    "eq": _Func((_ANY,), _b_eq, variadic=_ANY),
    "ne": _Func((_ANY, _ANY), _b_ne),
    "lt": _Func((_ANY, _ANY), _b_lt),
    "le": _Func((_ANY, _ANY), _b_le),
    "gt": _Func((_ANY, _ANY), _b_gt),
    "ge": _Func((_ANY, _ANY), _b_ge),
    "html": _Func((), _b_html, variadic=_ANY),
    "js": _Func((), _b_js, variadic=_ANY),
    "urlquery": _Func((), _b_urlquery, variadic=_ANY),
    "call": _Func((_ANY,), _unsupported_builtin("call"), variadic=_ANY),
    "slice": _Func((_ANY,), _unsupported_builtin("slice"), variadic=_ANY),
}


def available_functions(extra: Collection[str] = AMAZON_BUILDER_FUNCS) -> frozenset[str]:
    """Names usable in a template: Go's builtins, Packer's functions and the plugin's ``extra``."""
    return _functions_with(frozenset(extra))


@functools.lru_cache(maxsize=16)
def _functions_with(extra: frozenset[str]) -> frozenset[str]:
    return frozenset(_GO_BUILTINS) | frozenset(_PACKER_FUNCS) | (extra & frozenset(_PLUGIN_FUNCS))


def _lookup_func(name: str) -> _Func | None:
    return _PACKER_FUNCS.get(name) or _PLUGIN_FUNCS.get(name) or _GO_BUILTINS.get(name)


# ---------------------------------------------------------------------------------------------
# Evaluator (Go's text/template/exec.go)
# ---------------------------------------------------------------------------------------------


class _ExecErr(Exception):
    def __init__(self, detail: str, node: Node) -> None:
        self.detail = detail
        self.node = node


class _Break(Exception):
    """``{{break}}`` unwinding to its ``{{range}}`` (Go's ``walkBreak`` panic)."""


class _Continue(Exception):
    """``{{continue}}`` unwinding to its ``{{range}}`` (Go's ``walkContinue`` panic)."""


class _RenderLater(Exception):
    """Late rendering: part of the string needs data that is missing now *and* values that exist
    only now (a variable, the dot of a ``range``); the whole string is left for the later pass."""


class _Late:
    """The value of a variable whose declaration was left verbatim for the later pass."""


_LATE: Any = _Late()

#: a ``{{range}}`` stops after this many iterations in one rendering (Go has no limit, but a
#: runaway ``{{range 99999999}}`` must not hang a build)
_MAX_RANGE_STEPS = 100_000


@dataclass
class _Refs:
    """What a node needs from outside itself (for late rendering)."""

    dot_fields: set[str] = field(default_factory=set)  # top names of .Fields of the current dot
    root_fields: set[str] = field(default_factory=set)  # top names of $.Fields
    variables: set[str] = field(default_factory=set)  # $x used or assigned, declared outside
    uses_dot: bool = False  # . alone, on the current dot
    uses_root: bool = False  # $ alone
    uses_build: bool = False
    uses_loop: bool = False  # {{break}}/{{continue}} of an enclosing range

    def collect(self, node: Node, on_dot: bool, in_range: bool, scope: set[str]) -> None:
        """``scope``: the variables declared so far inside the node being examined (in the
        order they are run, so a use before a declaration is of an outside variable)."""
        if isinstance(node, FieldNode):
            if on_dot:
                self.dot_fields.add(node.idents[0])
        elif isinstance(node, DotNode):
            self.uses_dot |= on_dot
        elif isinstance(node, VariableNode):
            name = node.idents[0]
            if name != "$":
                if name not in scope:
                    self.variables.add(name)
            elif len(node.idents) > 1:
                self.root_fields.add(node.idents[1])
            else:
                self.uses_root = True
        elif isinstance(node, IdentifierNode):
            self.uses_build |= node.name == "build"
        elif isinstance(node, BreakNode | ContinueNode):
            self.uses_loop |= not in_range
        elif isinstance(node, PipeNode):
            for c in node.cmds:
                self.collect(c, on_dot, in_range, scope)
            for v in node.decl:
                name = v.idents[0]
                if not node.is_assign:
                    scope.add(name)
                elif name not in scope:
                    self.variables.add(name)  # "=" sets a variable of the outside
        elif isinstance(node, CommandNode):
            for a in node.args:
                self.collect(a, on_dot, in_range, scope)
        elif isinstance(node, ChainNode):
            self.collect(node.node, on_dot, in_range, scope)
        elif isinstance(node, ActionNode):
            self.collect(node.pipe, on_dot, in_range, scope)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.collect(n, on_dot, in_range, scope)
        elif isinstance(node, BranchNode):
            # variables declared in the block end with it; the else list does not see those of
            # the list (it runs instead of it)
            inner = set(scope)
            self.collect(node.pipe, on_dot, in_range, inner)
            # the body of with/range runs on a new dot; "if" and every else_list on this one
            is_if, is_range = isinstance(node, IfNode), isinstance(node, RangeNode)
            self.collect(node.list, on_dot and is_if, in_range or is_range, set(inner))
            if node.else_list is not None:
                self.collect(node.else_list, on_dot, in_range, inner)


def _refs_of(node: ActionNode | BranchNode) -> _Refs:
    refs = _Refs()
    refs.collect(node, on_dot=True, in_range=False, scope=set())
    return refs


def _last_at(node: Node) -> Node:
    """The node Go's ``state.at`` recorded last while evaluating ``node``: where Go reports an
    error about the value of a whole pipeline (``range can't iterate over``)."""
    if isinstance(node, PipeNode):
        return _last_at(node.cmds[-1])
    if isinstance(node, CommandNode):
        first = node.args[0]
        if isinstance(first, IdentifierNode) and len(node.args) > 1:
            return _last_at(node.args[-1])
        if isinstance(first, PipeNode):
            return _last_at(first)
        return first
    return node


def _map_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Keys in Go's ``fmtsort`` order: numbers by value, strings by bytes."""
    try:
        return sorted(m, key=lambda k: (not isinstance(k, int | float), k))
    except TypeError:
        return sorted(m, key=lambda k: (_go_type(k), _go_format(k)))


class _State:
    def __init__(self, text: str, ctx: InterpContext) -> None:
        self.text = text
        self.ctx = ctx
        self.funcs = ctx.functions()
        self.vars: list[tuple[str, Any]] = [("$", ctx.data if ctx.data is not None else INVALID)]
        self.range_steps = 0
        self.refs: dict[int, _Refs] = {}

    def error(self, err: _ExecErr) -> TemplateExecError:
        line, col = _line_col(self.text, err.node.pos)
        return TemplateExecError(err.detail, err.node.pos, line, col, err.node.go_string())

    # statements (Go's state.walk)
    def walk(self, dot: Any, nodes: ListNode, out: list[str], on_root: bool) -> None:
        """Render ``nodes`` into ``out``. ``on_root``: dot is still the data (not the dot of a
        ``with``/``range``), so a ``.Field`` missing from the data is one to render later."""
        # A part left verbatim keeps its trim markers ("{{-", "-}}"), which the later pass applies to
        # the text then next to it. Text that is next to it only because an action between them was
        # rendered now would be trimmed then, and not in a single pass: such white space is written
        # as a string-literal action, which no trim marker touches.
        trims_next = False  # the last piece written is a verbatim part ending in "-}}"
        adjacent = False  # ... and nothing was rendered after it yet
        for node in nodes.nodes:
            if isinstance(node, TextNode):
                text = node.text
                if trims_next and not adjacent and text[:1].isspace():
                    text = _protect_leading_space(text)
                out.append(text)
                trims_next = False
            elif isinstance(node, ActionNode | BranchNode) and self.render_later(node, on_root):
                if isinstance(node, BranchNode) and node.else_if:
                    raise _RenderLater
                source = node.source
                if source.startswith("{{-"):
                    # an adjacent text was trimmed by the parser already: white space left at the end
                    # of the output now came from elsewhere, and a single pass would keep it
                    done = "".join(out)
                    if done[-1:].isspace():
                        out[:] = [_protect_trailing_space(done)]
                out.append(source)
                trims_next, adjacent = source.endswith("-}}"), True
                if isinstance(node, ActionNode):
                    for v in node.pipe.decl:
                        self.set_var(v.idents[0], _LATE, declare=not node.pipe.is_assign)
            elif isinstance(node, ActionNode):
                value = self.pipeline(dot, node.pipe)
                adjacent = False
                if not node.pipe.decl:
                    text = _go_format(value)
                    if trims_next and text[:1].isspace():
                        text = _protect_leading_space(text)
                    if text:
                        trims_next = False
                    out.append(text)
            elif isinstance(node, RangeNode):
                self.walk_range(dot, node, out, on_root)
            elif isinstance(node, BranchNode):
                self.walk_if_or_with(dot, node, out, on_root)
            elif isinstance(node, BreakNode):
                raise _Break
            elif isinstance(node, ContinueNode):
                raise _Continue

    def render_later(self, node: ActionNode | BranchNode, on_root: bool) -> bool:
        """With ``keep_unknown_fields``: True if ``node`` needs data missing now (a ``.Field``,
        ``build`` without build data, a variable declared by an action left for later)."""
        if not self.ctx.keep_unknown_fields:
            return False
        refs = self.refs.get(id(node))
        if refs is None:
            refs = self.refs[id(node)] = _refs_of(node)
        data = self.ctx.data
        later = any(not _has_field(data, f) for f in refs.root_fields) or (
            refs.uses_build and self.ctx.build_fn_data is None
        )
        if on_root:
            later = later or any(not _has_field(data, f) for f in refs.dot_fields)
        # the data as a whole ("{{.}}", "$") is incomplete in this pass
        later = later or refs.uses_root or (on_root and refs.uses_dot)
        local = refs.uses_loop or (not on_root and (refs.uses_dot or bool(refs.dot_fields)))
        for name in refs.variables:
            value = next((v for n, v in reversed(self.vars) if n == name), INVALID)
            if value is _LATE:
                later = True
            else:
                local = True
        if later and local:
            raise _RenderLater
        return later

    def walk_if_or_with(self, dot: Any, node: BranchNode, out: list[str], on_root: bool) -> None:
        mark = len(self.vars)
        try:
            value = self.pipeline(dot, node.pipe)
            if _truth(value):
                if isinstance(node, WithNode):
                    self.walk(value, node.list, out, on_root=False)
                else:
                    self.walk(dot, node.list, out, on_root)
            elif node.else_list is not None:
                self.walk(dot, node.else_list, out, on_root)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: RangeNode, out: list[str], on_root: bool) -> None:
        start = len(self.vars)
        try:
            value = self.pipeline(dot, node.pipe)
            decl = node.pipe.decl
            items: Iterator[tuple[Any, Any]]
            if isinstance(value, list | tuple):
                items = enumerate(value)
            elif isinstance(value, Mapping):
                items = ((k, value[k]) for k in _map_keys(value))
            elif isinstance(value, int) and not isinstance(value, bool):  # Go 1.24: range over int
                if len(decl) > 1:
                    raise _ExecErr(
                        f"can't use {value} to iterate over more than one variable", _last_at(node.pipe)
                    )
                items = ((INVALID, i) for i in range(value))
            elif value is INVALID:  # a missing key or nil: no iteration
                items = iter(())
            else:
                raise _ExecErr(f"range can't iterate over {_go_format(value)}", _last_at(node.pipe))
            mark = len(self.vars)
            ran = False
            for index, elem in items:
                ran = True
                self.range_steps += 1
                if self.range_steps > _MAX_RANGE_STEPS:
                    raise _ExecErr(
                        f"amibake stops a template after {_MAX_RANGE_STEPS} range iterations",
                        _last_at(node.pipe),
                    )
                if decl and node.pipe.is_assign:
                    self.set_var(decl[0].idents[0], index if len(decl) > 1 else elem, declare=False)
                    if len(decl) > 1:
                        self.set_var(decl[1].idents[0], elem, declare=False)
                elif decl:  # := pushed the variables: $v on top, $i under it
                    self.vars[mark - 1] = (self.vars[mark - 1][0], elem)
                    if len(decl) > 1:
                        self.vars[mark - 2] = (self.vars[mark - 2][0], index)
                try:
                    self.walk(elem, node.list, out, on_root=False)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[mark:]
            if not ran and node.else_list is not None:
                self.walk(dot, node.else_list, out, on_root)
        finally:
            del self.vars[start:]

    # variables
    def var_value(self, name: str, node: Node) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise _ExecErr(f"undefined variable: {name}", node)

    def set_var(self, name: str, value: Any, declare: bool) -> None:
        if declare:
            self.vars.append((name, value))
            return
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.vars.append((name, value))

    # evaluation
    def pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
            if value is None:  # an interface{} holding nil: Go digs it out to an invalid value
                value = INVALID
        for v in pipe.decl:
            self.set_var(v.idents[0], value, declare=not pipe.is_assign)
        return value

    def not_a_function(self, args: Sequence[Node], final: Any, node: Node) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            raise _ExecErr(f"can't give argument to non-function {args[0].go_string()}", node)

    def command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            return self.field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final, first)
            return self.pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.variable(dot, first, cmd.args, final)
        self.not_a_function(cmd.args, final, first)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise _ExecErr("nil is not a command", first)
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        raise _ExecErr(f"can't evaluate command {_go_quote(first.go_string())}", first)

    def ideal_constant(self, node: NumberNode) -> Any:
        n = node.number
        if n.is_complex:
            return n.complex_value
        t = n.text.lower()
        is_hex_int = t.lstrip("+-").startswith("0x") and "p" not in t
        if n.is_float and not is_hex_int and not t.startswith("'") and any(c in t for c in ".ep"):
            return n.float_value
        if n.is_int:
            return n.int_value
        if n.is_uint:
            raise _ExecErr(f"{n.text} overflows int", node)
        return INVALID

    def chain(self, dot: Any, chain: ChainNode, args: Sequence[Node] | None, final: Any) -> Any:
        if isinstance(chain.node, NilNode):
            raise _ExecErr(f"indirection through explicit nil in {chain.go_string()}", chain)
        receiver = self.arg(dot, _ANY, chain.node)
        return self.field_chain(dot, receiver, chain, chain.fields, args, final)

    def variable(self, dot: Any, node: VariableNode, args: Sequence[Node] | None, final: Any) -> Any:
        value = self.var_value(node.idents[0], node)
        if len(node.idents) == 1:
            self.not_a_function(args or [node], final, node)
            return value
        return self.field_chain(dot, value, node, node.idents[1:], args, final)

    def field_chain(
        self,
        dot: Any,
        receiver: Any,
        node: Node,
        idents: Sequence[str],
        args: Sequence[Node] | None,
        final: Any,
    ) -> Any:
        for name in idents[:-1]:
            receiver = self.field(name, node, None, _NO_FINAL, receiver)
        return self.field(idents[-1], node, args, final, receiver)

    def field(self, name: str, node: Node, args: Sequence[Node] | None, final: Any, receiver: Any) -> Any:
        if receiver is INVALID:
            return INVALID
        if receiver is None:
            raise _ExecErr(f"nil pointer evaluating interface {{}}.{name}", node)
        has_args = (args is not None and len(args) > 1) or final is not _NO_FINAL
        if isinstance(receiver, Mapping):
            if has_args:
                raise _ExecErr(f"{name} is not a method but has arguments", node)
            return receiver.get(name, INVALID)
        is_object = not isinstance(receiver, str | int | float | complex | bool | list | tuple)
        if is_object and not name.startswith("_") and hasattr(receiver, name):
            if has_args:
                raise _ExecErr(f"{name} is not a method but has arguments", node)
            return getattr(receiver, name)
        raise _ExecErr(f"can't evaluate field {name} in type {_go_type(receiver)}", node)

    def function(
        self, dot: Any, node: IdentifierNode, cmd: Node, args: Sequence[Node] | None, final: Any
    ) -> Any:
        name = node.name
        spec = _lookup_func(name) if name in self.funcs else None
        if spec is None:
            raise _ExecErr(f'"{name}" is not a defined function', node)
        call_args = list(args[1:]) if args else []
        num_in = len(call_args) + (0 if final is _NO_FINAL else 1)
        num_fixed = len(spec.params)
        if spec.variadic is not None:
            if num_in < num_fixed:
                raise _ExecErr(
                    f"wrong number of args for {name}: want at least {num_fixed} got {len(call_args)}", node
                )
        elif num_in != num_fixed:
            raise _ExecErr(f"wrong number of args for {name}: want {num_fixed} got {num_in}", node)
        argv: list[Any] = []
        for i, a in enumerate(call_args):
            typ = spec.params[i] if i < num_fixed else spec.variadic
            assert typ is not None
            argv.append(self.arg(dot, typ, a))
        if final is not _NO_FINAL:
            i = num_in - 1
            typ = spec.params[i] if i < num_fixed else spec.variadic
            assert typ is not None
            argv.append(self.validate_type(final, typ, node))
        try:
            return spec.impl(self.ctx, *argv)
        except _FuncError as e:
            raise _ExecErr(f"error calling {name}: {e}", cmd) from None

    def validate_type(self, value: Any, typ: str, node: Node) -> Any:
        if value is INVALID:
            if typ == _ANY:
                return None
            raise _ExecErr(f"invalid value; expected {typ}", node)
        if typ == _ANY:
            return value
        got = _go_type(value)
        if got != typ:
            raise _ExecErr(f"wrong type for value; expected {typ}; got {got}", node)
        return value

    def arg(self, dot: Any, typ: str, n: Node) -> Any:
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ, n)
        if isinstance(n, NilNode):
            if typ == _ANY:
                return None
            raise _ExecErr(f"cannot assign nil to {typ}", n)
        if isinstance(n, FieldNode):
            return self.validate_type(self.field_chain(dot, dot, n, n.idents, [n], _NO_FINAL), typ, n)
        if isinstance(n, VariableNode):
            return self.validate_type(self.variable(dot, n, None, _NO_FINAL), typ, n)
        if isinstance(n, PipeNode):
            return self.validate_type(self.pipeline(dot, n), typ, n)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.function(dot, n, n, None, _NO_FINAL), typ, n)
        if isinstance(n, ChainNode):
            return self.validate_type(self.chain(dot, n, None, _NO_FINAL), typ, n)
        if typ == _STR:
            if isinstance(n, StringNode):
                return n.text
            raise _ExecErr(f"expected string; found {n.go_string()}", n)
        if typ == _INT:
            if isinstance(n, NumberNode) and n.number.is_int:
                return n.number.int_value
            raise _ExecErr(f"expected integer; found {n.go_string()}", n)
        # interface{}
        if isinstance(n, BoolNode):
            return n.value
        if isinstance(n, NumberNode):
            return self.ideal_constant(n)
        if isinstance(n, StringNode):
            return n.text
        raise _ExecErr(f"can't handle {n.go_string()} for arg of type {typ}", n)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    children: Sequence[Node] = ()
    if isinstance(node, ListNode):
        children = node.nodes
    elif isinstance(node, ActionNode):
        children = (node.pipe,)
    elif isinstance(node, PipeNode):
        children = node.cmds
    elif isinstance(node, CommandNode):
        children = node.args
    elif isinstance(node, ChainNode):
        children = (node.node,)
    elif isinstance(node, BranchNode):
        children = (node.pipe, node.list)
        if node.else_list is not None:
            children = (*children, node.else_list)
    for c in children:
        yield from _walk(c)


def _has_field(data: Any, name: str) -> bool:
    if data is None:
        return False
    if isinstance(data, Mapping):
        return name in data
    return not name.startswith("_") and hasattr(data, name)


def _protect_leading_space(text: str) -> str:
    body = text.lstrip()
    return "{{" + _go_quote(text[: len(text) - len(body)]) + "}}" + body


def _protect_trailing_space(text: str) -> str:
    body = text.rstrip()
    return body + "{{" + _go_quote(text[len(body) :]) + "}}"


def render(text: str, ctx: InterpContext) -> str:
    """Render one template string (Packer's ``interpolate.RenderOnce``).

    With ``ctx.keep_unknown_fields``, an action or a whole ``{{if}}``/``{{range}}``/``{{with}}``
    block that needs a ``.Field`` missing from ``ctx.data`` (or ``build`` without build data) is
    left verbatim for a later pass; if such a part also needs values that exist only in this pass
    (a variable set here, the dot of a ``range``), the whole string is left verbatim."""
    if "{{" not in text:
        return text
    tree = parse(text, ctx.functions())
    state = _State(text, ctx)
    out: list[str] = []
    try:
        state.walk(state.vars[0][1], tree, out, on_root=True)
    except _ExecErr as e:
        raise state.error(e) from None
    except _RenderLater:
        return text
    return "".join(out)


def render_repeat(text: str, ctx: InterpContext, limit: int = 100) -> str:
    """Packer's ``interpolate.Render``: render again while the output changes (a value can
    contain another template). Packer uses it for build names, ``max_retries`` and shell-local
    commands. ``limit`` guards against a template that keeps growing."""
    for _ in range(limit):
        rendered = render(text, ctx)
        if rendered == text:
            return rendered
        text = rendered
    raise InterpolationError(f"template still changing after {limit} renderings: {text[:200]}")


# ---------------------------------------------------------------------------------------------
# Whole configurations
# ---------------------------------------------------------------------------------------------


def _walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str):
                yield f"{path}.{k}" if path else k, k
            yield from _walk_strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _walk_strings(v, f"{path}[{i}]")


def _render_value(value: Any, ctx: InterpContext, path: str, top: str) -> Any:
    if isinstance(value, str):
        try:
            return render(value, ctx)
        except InterpolationError as e:
            raise DeepInterpolationError("render", top, path, value, e) from None
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            nk = _render_value(k, ctx, sub, top) if isinstance(k, str) else k
            out[nk] = _render_value(v, ctx, sub, top)
        return out
    if isinstance(value, list):
        return [_render_value(v, ctx, f"{path}[{i}]", top) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_render_value(v, ctx, f"{path}[{i}]", top) for i, v in enumerate(value))
    return value


def render_deep(value: Any, ctx: InterpContext, skip_keys: Collection[str] = ()) -> Any:
    """Render every string inside ``value`` (Packer's ``interpolate.RenderMap``); returns a copy.

    For a mapping (a plugin config), each top-level entry is first *validated* (parsed, functions
    checked) and then rendered, except entries whose key is in ``skip_keys`` (compared without
    case, as Packer's ``RenderFilter``): those are validated but left untouched, to be rendered
    later with build data. Keys of nested mappings are rendered too; top-level keys (option
    names) are not. Errors are :class:`DeepInterpolationError` worded as Packer's
    (``invalid 'ami_name': template: root:1: ... in:\\n\\n<the string>``).
    """
    if not isinstance(value, Mapping):
        return _render_value(value, ctx, "", "")
    skip = {k.lower() for k in skip_keys}
    funcs = ctx.functions()
    out: dict[Any, Any] = {}
    for k, v in value.items():
        key = str(k)
        for path, s in _walk_strings(v, key):
            if "{{" in s:
                try:
                    parse(s, funcs)
                except InterpolationError as e:
                    raise DeepInterpolationError("invalid", key, path, s, e) from None
        if key.lower() in skip:
            out[k] = v
        else:
            out[k] = _render_value(v, ctx, key, key)
    return out


# ---------------------------------------------------------------------------------------------
# Static inspection
# ---------------------------------------------------------------------------------------------


def references(text: str) -> set[str]:
    """Functions (``user``, ``isotime``) and fields (``.SourceAMI``, ``.SourceAMITags.Name``,
    ``.`` alone) a template string uses. Raises :class:`TemplateSyntaxError` if it does not parse."""
    if "{{" not in text:
        return set()
    refs: set[str] = set()
    for node in _walk(parse(text)):
        if isinstance(node, IdentifierNode):
            refs.add(node.name)
        elif isinstance(node, FieldNode):
            refs.add(node.go_string())
        elif isinstance(node, DotNode):
            refs.add(".")
        elif isinstance(node, VariableNode) and node.idents[0] == "$" and len(node.idents) > 1:
            refs.add("".join("." + i for i in node.idents[1:]))
    return refs


def user_references(text: str) -> set[str]:
    """Names given literally to ``user`` (``{{user `region`}}`` -> ``{"region"}``)."""
    if "{{" not in text:
        return set()
    names: set[str] = set()
    for node in _walk(parse(text)):
        if (
            isinstance(node, CommandNode)
            and isinstance(node.args[0], IdentifierNode)
            and node.args[0].name == "user"
            and len(node.args) == 2
            and isinstance(node.args[1], StringNode)
        ):
            names.add(node.args[1].text)
    return names


def check(text: str, ctx: InterpContext) -> list[str]:
    """Problems found without rendering: syntax, unknown functions, wrong argument counts,
    literal arguments of the wrong type, and functions amibake cannot run. Never raises."""
    if "{{" not in text:
        return []
    try:
        tree = parse(text, ctx.functions())
    except InterpolationError as e:
        msg = e.message
        if '"clean_ami_name" not defined' in msg:
            msg += " (it was renamed clean_resource_name)"
        return [msg]
    problems: list[str] = []
    for node in _walk(tree):
        if isinstance(node, PipeNode):
            for stage, cmd in enumerate(node.cmds):
                problems.extend(_check_command(text, cmd, piped=stage > 0))
    return problems


def _check_command(text: str, cmd: CommandNode, piped: bool) -> list[str]:
    first = cmd.args[0]
    if not isinstance(first, IdentifierNode):
        return []
    spec = _lookup_func(first.name)
    if spec is None:
        return []
    name = first.name
    line, col = _line_col(text, first.pos)
    where = f'template: root:{line}:{col}: executing "root" at <{name}>: '
    args = cmd.args[1:]
    num_in = len(args) + (1 if piped else 0)
    fixed = len(spec.params)
    if spec.variadic is None and num_in != fixed:
        return [f"{where}wrong number of args for {name}: want {fixed} got {num_in}"]
    if spec.variadic is not None and num_in < fixed:
        return [f"{where}wrong number of args for {name}: want at least {fixed} got {len(args)}"]
    problems: list[str] = []
    for i, a in enumerate(args):
        typ = spec.params[i] if i < fixed else spec.variadic
        if typ == _STR and isinstance(a, NumberNode | BoolNode):
            problems.append(f"{where}expected string; found {a.go_string()}")
        elif typ == _INT and (
            isinstance(a, StringNode | BoolNode) or (isinstance(a, NumberNode) and not a.number.is_int)
        ):
            problems.append(f"{where}expected integer; found {a.go_string()}")
    if name in _NETWORK_FUNCS:
        problems.append(
            f"{where}amibake does not support the {name} function (it reads "
            f"{_NETWORK_FUNCS[name]} over the network); pass the value with -var or -var-file instead"
        )
    elif name == "sed":
        problems.append(
            f"{where}template function `sed` is deprecated use `replace` or `replace_all` instead"
        )
    return problems


def placeholder_build_data(keys: Collection[str]) -> dict[str, str]:
    """Build data whose every value is a placeholder: ``{{ build `X` }}`` renders ``{{.X}}``
    (what Packer gives provisioners while preparing, before the build data exists)."""
    return {k: f"Build_{k}. {PLACEHOLDER_MSG}" for k in keys}
