"""Canonical formatting of HCL2 files, as ``packer fmt`` does it (HCL's ``hclwrite.Format``).

The formatter works on tokens, never on the text of lines: :func:`tokenize` splits a file the way
HCL's scanner does (quoted templates with nested ``${ }`` / ``%{ }`` sequences, heredocs, the three
comment forms, numbers, identifiers, operators) and remembers how many spaces stood before each
token. :func:`format_tokens` then changes only those space counts, in three passes:

1. indentation: two spaces per level, a level being opened by a line with more opening than
   closing brackets (``{ [ ( ${ %{``) and closed by the line that balances them;
2. spacing between the tokens of a line (one space around ``=`` and binary operators, none inside
   brackets, before commas, around dots, after a function name...);
3. alignment: the ``=`` of consecutive one-line attributes and trailing comments of consecutive
   lines are put in one column.

The text of every token is kept, so heredoc bodies, string contents and comments never change,
blank lines are kept as they are, and no newline is added at the end of the file (hclwrite adds
none either). Formatting is idempotent.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from amibake.errors import Pos, Problem, TemplateError
from amibake.template.jsonpos import read_source


class Kind(Enum):
    IDENT = "identifier"
    NUMBER = "number"
    COMMENT = "comment"
    NEWLINE = "newline"
    OQUOTE = "opening quote"
    CQUOTE = "closing quote"
    QUOTED_LIT = "string"
    QUOTED_NEWLINE = "newline in a quoted string"
    OHEREDOC = "heredoc"
    CHEREDOC = "heredoc end marker"
    STRING_LIT = "heredoc text"
    INTERP = "${"
    CONTROL = "%{"
    SEQ_END = "template sequence end"
    OBRACE = "{"
    CBRACE = "}"
    OBRACK = "["
    CBRACK = "]"
    OPAREN = "("
    CPAREN = ")"
    EQUAL = "="
    EQUAL_OP = "=="
    NOT_EQUAL = "!="
    LT = "<"
    LTE = "<="
    GT = ">"
    GTE = ">="
    AND = "&&"
    OR = "||"
    BANG = "!"
    PLUS = "+"
    MINUS = "-"
    STAR = "*"
    SLASH = "/"
    PERCENT = "%"
    DOT = "."
    COMMA = ","
    COLON = ":"
    QUESTION = "?"
    ELLIPSIS = "..."
    DOUBLE_COLON = "::"
    FAT_ARROW = "=>"
    OTHER = "character"  # & | ~ ^ ; ` ' : valid to the scanner, rejected by the parser
    INVALID = "invalid character"
    EOF = "end of file"


@dataclass
class Token:
    kind: Kind
    text: str
    #: spaces before the token; the only thing formatting changes
    spaces: int
    line: int
    column: int


_OPEN = {Kind.OBRACE, Kind.OBRACK, Kind.OPAREN, Kind.INTERP, Kind.CONTROL}
_CLOSE = {Kind.CBRACE, Kind.CBRACK, Kind.CPAREN, Kind.SEQ_END}

_PUNCT: list[tuple[str, Kind]] = [
    ("...", Kind.ELLIPSIS),
    ("==", Kind.EQUAL_OP),
    ("!=", Kind.NOT_EQUAL),
    (">=", Kind.GTE),
    ("<=", Kind.LTE),
    ("&&", Kind.AND),
    ("||", Kind.OR),
    ("::", Kind.DOUBLE_COLON),
    ("=>", Kind.FAT_ARROW),
    ("[", Kind.OBRACK),
    ("]", Kind.CBRACK),
    ("(", Kind.OPAREN),
    (")", Kind.CPAREN),
    (".", Kind.DOT),
    (",", Kind.COMMA),
    ("*", Kind.STAR),
    ("/", Kind.SLASH),
    ("%", Kind.PERCENT),
    ("+", Kind.PLUS),
    ("-", Kind.MINUS),
    ("=", Kind.EQUAL),
    ("<", Kind.LT),
    (">", Kind.GT),
    ("!", Kind.BANG),
    ("?", Kind.QUESTION),
    (":", Kind.COLON),
]

_SPACES = re.compile(r"[ \t]+")
_NEWLINE = re.compile(r"\r?\n")
_COMMENT = re.compile(r"(?:#|//)[^\n]*\n?|/\*.*?\*/", re.DOTALL)
_HEREDOC = re.compile(r"<<(-?)([^\W\d][\w-]*)(\r?\n)")
_NUMBER = re.compile(r"[0-9](?:(?:[0-9.]|[eE][+-]?[0-9])*(?:[0-9]|[eE][+-]?[0-9]))?")
_IDENT = re.compile(r"[^\W\d][\w-]*")
_TEMPLATE_OPEN = re.compile(r"([$%])\{~?")
_QUOTED_LIT = re.compile(r"(?:\\[^\r\n]|\$\$\{|%%\{|\$(?!\{)|%(?!\{)|[^$%\"\\\r\n])+")
_QUOTED_NEWLINES = re.compile(r"[\r\n]+")
_HEREDOC_LIT = re.compile(r"(?:\$\$\{|%%\{|\$(?!\{)|%(?!\{)|[^$%\r\n])*(?:\r?\n)?")


class _Frame:
    """One scanner mode on the mode stack."""

    __slots__ = ("braces", "line_start", "marker", "mode")

    def __init__(self, mode: str, marker: str = "") -> None:
        self.mode = mode  # "main", "string" or "heredoc"
        self.braces = 0  # main: braces opened since this frame began
        self.marker = marker  # heredoc: its closing marker
        self.line_start = True  # heredoc: at the start of a line


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.col = 1
        self.pending_spaces = 0
        self.tokens: list[Token] = []

    def emit(self, kind: Kind, end: int) -> None:
        text = self.text[self.i : end]
        self.tokens.append(Token(kind, text, self.pending_spaces, self.line, self.col))
        self.pending_spaces = 0
        self.advance(end)

    def advance(self, end: int) -> None:
        chunk = self.text[self.i : end]
        nl = chunk.count("\n")
        if nl:
            self.line += nl
            self.col = len(chunk) - chunk.rfind("\n")
        else:
            self.col += len(chunk)
        self.i = end

    def run(self) -> list[Token]:
        stack = [_Frame("main")]
        text = self.text
        while self.i < len(text):
            frame = stack[-1]
            if frame.mode == "main":
                self.main(stack, frame)
            elif frame.mode == "string":
                self.string(stack)
            else:
                self.heredoc(stack, frame)
        self.tokens.append(Token(Kind.EOF, "", self.pending_spaces, self.line, self.col))
        return self.tokens

    def main(self, stack: list[_Frame], frame: _Frame) -> None:
        text, i = self.text, self.i
        m = _SPACES.match(text, i)
        if m:
            self.pending_spaces += m.end() - i
            self.advance(m.end())
            return
        for rx, kind in ((_NEWLINE, Kind.NEWLINE), (_COMMENT, Kind.COMMENT)):
            m = rx.match(text, i)
            if m:
                self.emit(kind, m.end())
                return
        m = _HEREDOC.match(text, i)
        if m:
            self.emit(Kind.OHEREDOC, m.end())
            stack.append(_Frame("heredoc", m.group(2)))
            return
        for rx, kind in ((_NUMBER, Kind.NUMBER), (_IDENT, Kind.IDENT)):
            m = rx.match(text, i)
            if m:
                self.emit(kind, m.end())
                return
        c = text[i]
        if c == "{":
            frame.braces += 1
            self.emit(Kind.OBRACE, i + 1)
        elif c == "}" or text.startswith("~}", i):
            end = i + (1 if c == "}" else 2)
            if frame.braces == 0 and len(stack) > 1:
                self.emit(Kind.SEQ_END, end)
                stack.pop()
            else:
                frame.braces -= 1
                self.emit(Kind.CBRACE if c == "}" else Kind.SEQ_END, end)
        elif c == '"':
            self.emit(Kind.OQUOTE, i + 1)
            stack.append(_Frame("string"))
        else:
            for s, kind in _PUNCT:
                if text.startswith(s, i):
                    self.emit(kind, i + len(s))
                    return
            self.emit(Kind.OTHER if c in "&|~^;`'" else Kind.INVALID, i + 1)

    def template_open(self, stack: list[_Frame]) -> bool:
        m = _TEMPLATE_OPEN.match(self.text, self.i)
        if not m:
            return False
        self.emit(Kind.INTERP if m.group(1) == "$" else Kind.CONTROL, m.end())
        stack.append(_Frame("main"))
        return True

    def string(self, stack: list[_Frame]) -> None:
        text, i = self.text, self.i
        if self.template_open(stack):
            return
        if text[i] == '"':
            self.emit(Kind.CQUOTE, i + 1)
            stack.pop()
            return
        for rx, kind in ((_QUOTED_LIT, Kind.QUOTED_LIT), (_QUOTED_NEWLINES, Kind.QUOTED_NEWLINE)):
            m = rx.match(text, i)
            if m:
                self.emit(kind, m.end())
                return
        self.emit(Kind.INVALID, i + 1)

    def heredoc(self, stack: list[_Frame], frame: _Frame) -> None:
        text, i = self.text, self.i
        if frame.line_start:
            nl = text.find("\n", i)
            if nl >= 0 and text[i:nl].strip() == frame.marker:
                end = nl - 1 if text[nl - 1] == "\r" and nl - 1 >= i else nl
                self.emit(Kind.CHEREDOC, end)
                self.emit(Kind.NEWLINE, nl + 1)
                stack.pop()
                return
        if self.template_open(stack):
            frame.line_start = False
            return
        m = _HEREDOC_LIT.match(text, i)
        assert m is not None  # the pattern matches the empty string
        if m.end() == i:  # a lone "$" or "%" before "{" cannot happen: template_open took it
            self.emit(Kind.INVALID, i + 1)
            return
        frame.line_start = m.group().endswith("\n")
        self.emit(Kind.STRING_LIT, m.end())


def tokenize(text: str) -> list[Token]:
    """Split HCL2 source into tokens (the last one is :attr:`Kind.EOF`)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return _Scanner(text).run()


def _ends_line(tok: Token) -> bool:
    return tok.kind is Kind.NEWLINE or (tok.kind is Kind.COMMENT and tok.text.endswith("\n"))


def _bracket_change(tok: Token) -> int:
    if tok.kind in _OPEN:
        return 1
    if tok.kind in _CLOSE:
        return -1
    return 0


def _columns(tokens: list[Token]) -> int:
    n = 0
    for t in tokens:
        n += t.spaces + sum(1 for ch in t.text if not unicodedata.combining(ch))
    return n


@dataclass
class _Line:
    lead: list[Token]
    assign: list[Token] | None = None
    comment: list[Token] | None = None


def _lines(tokens: list[Token]) -> list[_Line]:
    lines: list[_Line] = []
    start = 0
    for i, tok in enumerate(tokens):
        if tok.kind is Kind.EOF:
            lines.append(_Line(tokens[start:i]))
            break
        if _ends_line(tok):
            lines.append(_Line(tokens[start : i + 1]))
            start = i + 1
    for line in lines:
        lead = line.lead
        if len(lead) > 1 and lead[-1].kind is Kind.COMMENT:
            line.comment = lead[-1:]
            lead = line.lead = lead[:-1]
        for i, tok in enumerate(lead):
            if i > 0 and tok.kind is Kind.EQUAL:
                if sum(_bracket_change(t) for t in lead[i:]) == 0:
                    line.assign = lead[i:]
                    line.lead = lead[:i]
                break
    return lines


def _indent(lines: list[_Line]) -> None:
    indents: list[int] = []
    for line in lines:
        if not line.lead:
            continue
        if line.lead[0].kind is Kind.NEWLINE:
            line.lead[0].spaces = 0
            continue
        net = 0
        for tok in line.lead:
            net += _bracket_change(tok)
            if tok.kind is Kind.OHEREDOC:
                break
        for tok in line.assign or ():
            net += _bracket_change(tok)
        if net < 0:
            closed = -net
            while closed > 0 and indents:
                if closed > indents[-1]:
                    closed -= indents.pop()
                elif closed < indents[-1]:
                    indents[-1] -= closed
                    closed = 0
                else:
                    indents.pop()
                    closed = 0
        line.lead[0].spaces = 2 * len(indents)
        if net > 0:
            indents.append(net)


_NO_SPACE_AFTER_MINUS = {
    Kind.EOF,  # stands for "no token before"
    Kind.OPAREN, Kind.OBRACE, Kind.OBRACK, Kind.EQUAL, Kind.COLON, Kind.COMMA, Kind.QUESTION,
    Kind.PLUS, Kind.STAR, Kind.SLASH, Kind.PERCENT, Kind.MINUS,
    Kind.EQUAL_OP, Kind.NOT_EQUAL, Kind.GT, Kind.GTE, Kind.LT, Kind.LTE,
    Kind.AND, Kind.OR, Kind.BANG,
}  # fmt: skip
_TEMPLATE_TEXT = {Kind.QUOTED_LIT, Kind.STRING_LIT}


def _space_after(subject: Token, before: Token | None, after: Token) -> bool:
    s, a = subject.kind, after.kind
    if a is Kind.NEWLINE or a is Kind.EOF:
        return False
    if s is Kind.IDENT and a is Kind.OPAREN:
        return False
    if (s is Kind.IDENT and a is Kind.DOUBLE_COLON) or (s is Kind.DOUBLE_COLON and a is Kind.IDENT):
        return False
    if s is Kind.DOT or a is Kind.DOT:
        return False
    if a is Kind.COMMA or a is Kind.ELLIPSIS:
        return False
    if s is Kind.COMMA:
        return True
    if s in _TEMPLATE_TEXT or s in (Kind.OQUOTE, Kind.OHEREDOC):
        return False
    if a in _TEMPLATE_TEXT or a in (Kind.CQUOTE, Kind.CHEREDOC):
        return False
    if s is Kind.IDENT and subject.text == "in" and before is not None and before.kind is Kind.IDENT:
        return True
    if a is Kind.OBRACK and (s in (Kind.IDENT, Kind.NUMBER) or _bracket_change(subject) < 0):
        return False
    if s is Kind.BANG:
        return False
    if s is Kind.MINUS:
        return (before.kind if before is not None else Kind.EOF) not in _NO_SPACE_AFTER_MINUS
    if s is Kind.OBRACE or a is Kind.CBRACE:
        return not (s is Kind.OBRACE and a is Kind.CBRACE)
    if s in (Kind.INTERP, Kind.CONTROL) and a is Kind.OBRACE:
        return True
    if s is Kind.CBRACE and a is Kind.SEQ_END:
        return True
    if s is Kind.SEQ_END and a in (Kind.INTERP, Kind.CONTROL):
        return False
    if _bracket_change(subject) > 0:
        return False
    return _bracket_change(after) >= 0


def _space_cell(cell: list[Token]) -> None:
    for i in range(len(cell) - 1):
        before = cell[i - 1] if i > 0 else None
        cell[i + 1].spaces = 1 if _space_after(cell[i], before, cell[i + 1]) else 0


def _spaces(lines: list[_Line]) -> None:
    for line in lines:
        _space_cell(line.lead)
        if line.assign:
            line.assign[0].spaces = 1
            _space_cell(line.assign)


def _align(lines: list[_Line]) -> None:
    def chains(has: list[bool]) -> list[range]:
        out: list[range] = []
        start = -1
        for i, h in enumerate([*has, False]):
            if h and start < 0:
                start = i
            elif not h and start >= 0:
                out.append(range(start, i))
                start = -1
        return out

    for chain in chains([line.assign is not None for line in lines]):
        width = max(_columns(lines[i].lead) for i in chain)
        for i in chain:
            assign = lines[i].assign
            assert assign is not None
            assign[0].spaces = width - _columns(lines[i].lead) + 1
    for chain in chains([line.comment is not None for line in lines]):
        widths = {i: _columns(lines[i].lead) + _columns(lines[i].assign or []) for i in chain}
        width = max(widths.values())
        for i in chain:
            comment = lines[i].comment
            assert comment is not None
            comment[0].spaces = width - widths[i] + 1


def format_tokens(tokens: list[Token]) -> None:
    """Set the ``spaces`` of every token (in place) to hclwrite's canonical layout."""
    lines = _lines(tokens)
    if tokens and tokens[-1].kind is Kind.EOF:
        tokens[-1].spaces = 0  # hclwrite keeps blanks at the very end; we drop them
    _indent(lines)
    _spaces(lines)
    _align(lines)


def render(tokens: list[Token]) -> str:
    return "".join(" " * t.spaces + t.text for t in tokens)


def check_tokens(tokens: list[Token], filename: str) -> None:
    """Reject what HCL's scanner marks invalid and brackets that do not pair up."""
    problems: list[Problem] = []
    stack: list[Token] = []
    pairs = {
        Kind.CBRACE: (Kind.OBRACE,),
        Kind.CBRACK: (Kind.OBRACK,),
        Kind.CPAREN: (Kind.OPAREN,),
        Kind.SEQ_END: (Kind.INTERP, Kind.CONTROL),
        Kind.CQUOTE: (Kind.OQUOTE,),
        Kind.CHEREDOC: (Kind.OHEREDOC,),
    }

    def at(tok: Token, message: str) -> None:
        problems.append(Problem(message, pos=Pos(filename, tok.line, tok.column)))

    for tok in tokens:
        if tok.kind in (Kind.INVALID, Kind.QUOTED_NEWLINE):
            what = "a newline" if tok.kind is Kind.QUOTED_NEWLINE else repr(tok.text)
            at(tok, f"Invalid character: {what} is not allowed here")
        elif tok.kind in (Kind.OBRACE, Kind.OBRACK, Kind.OPAREN, Kind.INTERP, Kind.CONTROL,
                          Kind.OQUOTE, Kind.OHEREDOC):  # fmt: skip
            stack.append(tok)
        elif tok.kind in pairs:
            if not stack or stack[-1].kind not in pairs[tok.kind]:
                at(tok, f"Unexpected {tok.text.strip()!r}: nothing to close here")
                break
            stack.pop()
        if problems:
            break
    if not problems and stack:
        tok = stack[-1]
        closer = {Kind.OQUOTE: "string", Kind.OHEREDOC: "heredoc"}.get(tok.kind, f"{tok.text!r}")
        at(tok, f"Unclosed {closer}: it is opened here and never closed")
    if problems:
        raise TemplateError(problems)


def format_hcl(text: str, filename: str = "<stdin>", *, parse: bool = True) -> str:
    """Return ``text`` formatted canonically; raise :class:`TemplateError` if it is not valid HCL.

    ``parse`` also runs amibake's HCL2 parser over the text, as Packer does before formatting.
    """
    tokens = tokenize(text)
    check_tokens(tokens, filename)
    if parse:
        from amibake.template.hcl.diagnostics import HclError
        from amibake.template.hcl.parser import parse as parse_hcl

        try:
            parse_hcl(text, filename)
        except HclError as e:
            raise TemplateError([e.problem()]) from None
    format_tokens(tokens)
    return render(tokens)


HCL_SUFFIXES = (".pkr.hcl", ".pkrvars.hcl")


def _ignored(name: str) -> bool:
    """Editor and hidden files Packer skips in a directory."""
    return name.startswith(".") or name.endswith("~") or (name.startswith("#") and name.endswith("#"))


@dataclass
class FormatResult:
    """What :func:`format_paths` did: the files that needed formatting and the problems met."""

    changed: list[str]
    problems: list[Problem]


def unified_diff(old: str, new: str, path: str) -> str:
    """``diff -u`` of two texts, labelled ``old/PATH`` and ``new/PATH`` as Packer labels them."""
    import difflib

    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"old/{path}", f"new/{path}"
    )
    no_eol = "\n\\ No newline at end of file\n"
    return "".join(line if line.endswith("\n") else line + no_eol for line in lines)


def format_paths(
    paths: list[str],
    *,
    write: bool = True,
    diff: bool = False,
    recursive: bool = False,
    echo: Callable[[str], None],
    stdin: Callable[[], str] | None = None,
) -> FormatResult:
    """``packer fmt`` over files and directories (``-`` reads ``stdin``).

    For every file that is not canonical, ``echo`` gets its name, then its diff when ``diff``;
    the file is rewritten when ``write``. Standard input is echoed back formatted (or as it is when
    already canonical). Problems do not stop the run; they are all returned.
    """
    result = FormatResult([], [])

    def one(path: str) -> None:
        if path == "-":
            text = stdin() if stdin is not None else ""
        elif not path.endswith(HCL_SUFFIXES):
            result.problems.append(Problem(f"file {path} is not a HCL file", pos=Pos(path)))
            return
        else:
            try:
                text = read_source(path, translate_newlines=False)
            except (OSError, UnicodeDecodeError) as e:
                result.problems.append(Problem(f"failed to read {path}: {e}", pos=Pos(path)))
                return
        try:
            out = format_hcl(text, "<stdin>" if path == "-" else path)
        except TemplateError as e:
            result.problems.extend(e.problems)
            return
        except RecursionError:
            result.problems.append(Problem("the file nests too deeply to format", pos=Pos(path)))
            return
        if out == text:
            if path == "-":
                echo(out)
            return
        result.changed.append(path)
        if path == "-":
            if write:
                echo(out)
            return
        echo(f"{path}\n")
        if write:
            try:
                with open(path, "w", encoding="utf-8", newline="") as f:
                    f.write(out)
            except OSError as e:
                result.problems.append(Problem(f"failed to write {path}: {e}", pos=Pos(path)))
        if diff:
            echo(unified_diff(text, out, path))

    def walk(path: str) -> None:
        if path == "-" or not os.path.isdir(path):
            one(path)
            return
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            result.problems.append(Problem(f"Cannot read hcl directory: {e}", pos=Pos(path)))
            return
        for name in names:
            if _ignored(name):
                continue
            full = os.path.join(path, name)
            if os.path.islink(full) and os.path.isdir(full):
                continue  # as Go's filepath.Walk: a link to a directory is not followed (no cycles)
            if os.path.isdir(full):
                if recursive:
                    walk(full)
            elif full.endswith(HCL_SUFFIXES):
                one(full)

    for p in paths:
        walk(p)
    return result
