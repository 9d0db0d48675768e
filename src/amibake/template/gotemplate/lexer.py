"""The lexer of Go's text/template (``src/text/template/parse/lex.go``) and Go's literals
(``strconv.Unquote``, ``parse.newNumber``)."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from amibake.template.gotemplate.goformat import _go_quote, _go_rune

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
