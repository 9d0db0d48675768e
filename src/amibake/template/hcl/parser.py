"""A parser for HCL2 native syntax (bodies, expressions, string templates and heredocs).

Why not python-hcl2: it returns values as re-serialised expression strings, treats a heredoc as one
opaque token and keeps no positions in its dict output, so an evaluator on top of it would re-parse
strings and lose ``file:line:col``. This recursive-descent parser is small, keeps the position of
every node and follows the HCL native syntax spec directly (identifiers may contain ``-``, newlines
end an attribute except inside brackets, ``~`` strip markers, ``<<-`` indented heredocs).
"""

from __future__ import annotations

import bisect
import re

from amibake.template.hcl import ast as A
from amibake.template.hcl.diagnostics import HclError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"(?a)[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n")

_BINARY_LEVELS: list[list[str]] = [
    ["||"],
    ["&&"],
    ["==", "!="],
    ["<=", ">=", "<", ">"],
    ["+", "-"],
    ["*", "/", "%"],
]


#: how deep expressions may nest (brackets, braces, parentheses, calls, unary operators, templates).
#: Real templates nest a handful of levels; deeper input is refused here, at its position, before it
#: exhausts the interpreter's stack in the parser or the evaluator (Go's HCL has no limit)
MAX_NESTING = 64


class Parser:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.i = 0
        self.depth = 0  # > 0 inside brackets, where newlines are insignificant
        self.nesting = 0  # expressions being parsed, one inside the other
        self._nl = [m.start() for m in re.finditer("\n", text)]

    # --- positions and errors --------------------------------------------------------------

    def line_col(self, offset: int) -> tuple[int, int]:
        n = bisect.bisect_left(self._nl, offset)
        line_start = self._nl[n - 1] + 1 if n > 0 else 0
        return n + 1, offset - line_start + 1

    def error(self, message: str, offset: int | None = None) -> HclError:
        line, col = self.line_col(self.i if offset is None else offset)
        return HclError(message, self.filename, line, col)

    def _describe_here(self) -> str:
        if self.i >= len(self.text):
            return "end of file"
        ch = self.text[self.i]
        if ch == "\n":
            return "newline"
        m = _IDENT.match(self.text, self.i)
        return repr(m.group(0)) if m else repr(ch)

    # --- low-level scanning ----------------------------------------------------------------

    def peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def ws(self, newlines: bool | None = None) -> None:
        nl = self.depth > 0 if newlines is None else newlines
        text, n = self.text, len(self.text)
        while self.i < n:
            ch = text[self.i]
            if ch in " \t\r" or (ch == "\n" and nl):
                self.i += 1
            elif ch == "#" or text.startswith("//", self.i):
                j = text.find("\n", self.i)
                self.i = n if j < 0 else j
            elif text.startswith("/*", self.i):
                j = text.find("*/", self.i + 2)
                if j < 0:
                    raise self.error("unterminated comment")
                self.i = j + 2
            else:
                break

    def expect(self, s: str, what: str | None = None) -> None:
        self.ws()
        if not self.peek(s):
            raise self.error(f"expected {what or repr(s)}, found {self._describe_here()}")
        self.i += len(s)

    def ident(self) -> str | None:
        m = _IDENT.match(self.text, self.i)
        if not m:
            return None
        self.i = m.end()
        return m.group(0)

    # --- bodies ----------------------------------------------------------------------------

    def parse_file(self) -> A.Body:
        body = self.parse_body(top=True)
        self.ws(True)
        if self.i < len(self.text):
            raise self.error(f"unexpected {self._describe_here()}")
        return body

    def parse_body(self, top: bool) -> A.Body:
        body = A.Body()
        saved_depth, self.depth = self.depth, 0
        while True:
            self.ws(True)
            if self.i >= len(self.text) or self.peek("}"):
                break
            start = self.i
            line, col = self.line_col(start)
            name = self.ident()
            if name is None:
                raise self.error(f"expected an argument or block name, found {self._describe_here()}")
            self.ws(False)
            if self.peek("=") and not self.peek("=="):
                self.i += 1
                self.ws(False)
                expr = self.parse_expr()
                if name in body.attributes:
                    prev = body.attributes[name]
                    raise self.error(
                        f'Duplicate argument: the argument "{name}" was already set at line {prev.line}',
                        start,
                    )
                attr = A.Attribute(name, expr, line, col)
                body.attributes[name] = attr
                body.order.append(attr)
            else:
                labels: list[str] = []
                while True:
                    self.ws(False)
                    if self.peek("{"):
                        break
                    if self.peek('"'):
                        labels.append(self.parse_label())
                        continue
                    label = self.ident()
                    if label is None:
                        raise self.error(
                            f"expected '=' or a block (labels then '{{') after {name!r}, "
                            f"found {self._describe_here()}"
                        )
                    labels.append(label)
                self.i += 1
                inner = self.parse_body(top=False)
                self.ws(True)
                if not self.peek("}"):
                    raise self.error(f"expected '}}' to close block {name!r}, found {self._describe_here()}")
                self.i += 1
                block = A.Block(name, labels, inner, line, col)
                body.blocks.append(block)
                body.order.append(block)
            self.ws(False)
            if self.i < len(self.text) and not self.peek("\n") and not self.peek("}"):
                raise self.error(f"expected a newline after {name!r}, found {self._describe_here()}")
        self.depth = saved_depth
        return body

    def parse_label(self) -> str:
        start = self.i
        node = self.parse_quoted()
        if isinstance(node, A.Template) and all(isinstance(p, str) for p in node.parts):
            return "".join(node.parts)
        raise self.error("block labels must be plain strings, without interpolation", start)

    # --- expressions -----------------------------------------------------------------------

    def node_at(self, start: int) -> tuple[int, int, int, int]:
        line, col = self.line_col(start)
        return line, col, start, self.i

    def parse_expr(self) -> A.Node:
        self.ws()
        start = self.i
        cond = self.parse_binary(0)
        self.ws()
        if self.peek("?"):
            self.i += 1
            self.ws()
            t = self.parse_expr()
            self.ws()
            if not self.peek(":"):
                raise self.error(f"expected ':' in conditional expression, found {self._describe_here()}")
            self.i += 1
            self.ws()
            f = self.parse_expr()
            return A.Conditional(*self.node_at(start), cond, t, f)
        return cond

    def parse_binary(self, level: int) -> A.Node:
        if level == len(_BINARY_LEVELS):
            return self.parse_unary()
        self.ws()
        start = self.i
        left = self.parse_binary(level + 1)
        while True:
            self.ws()
            op = next((o for o in _BINARY_LEVELS[level] if self.peek(o)), None)
            if op is None:
                return left
            # '=>' and '==' must not be read as '=' prefixes; '<' vs '<<' heredoc; '*' in '[*]'
            if op in ("<", ">") and self.peek(op + op):
                return left
            self.i += len(op)
            self.ws()
            right = self.parse_binary(level + 1)
            left = A.Binary(*self.node_at(start), op, left, right)

    def parse_unary(self) -> A.Node:
        self.nesting += 1
        try:
            if self.nesting > MAX_NESTING:
                raise self.error(f"expressions nest more than {MAX_NESTING} levels deep here")
            return self._parse_unary()
        finally:
            self.nesting -= 1

    def _parse_unary(self) -> A.Node:
        self.ws()
        start = self.i
        if self.peek("!") and not self.peek("!="):
            self.i += 1
            return A.Unary(*self.node_at(start), "!", self.parse_unary())
        if self.peek("-"):
            self.i += 1
            operand = self.parse_unary()
            return A.Unary(*self.node_at(start), "-", operand)
        return self.parse_postfix()

    def parse_postfix(self) -> A.Node:
        start = self.i
        node = self.parse_primary()
        return self.parse_traversals(node, start, splat_ok=True)

    def parse_traversals(self, node: A.Node, start: int, splat_ok: bool, attr_only: bool = False) -> A.Node:
        while True:
            save = self.i
            self.ws()
            if self.peek(".") and not self.peek(".."):
                self.i += 1
                if self.peek("*"):
                    if attr_only or not splat_ok:
                        raise self.error("a splat cannot follow another splat here")
                    self.i += 1
                    item = A.SplatItem(*self.node_at(self.i))
                    each = self.parse_traversals(item, self.i, splat_ok=False, attr_only=True)
                    node = A.Splat(*self.node_at(start), node, each)
                    continue
                m = _NUMBER.match(self.text, self.i)
                if m and m.group(0).isascii() and m.group(0).isdigit():
                    self.i = m.end()
                    key = A.Literal(*self.node_at(m.start()), int(m.group(0)))
                    node = A.Index(*self.node_at(start), node, key)
                    continue
                name = self.ident()
                if name is None:
                    raise self.error(f"expected an attribute name after '.', found {self._describe_here()}")
                node = A.GetAttr(*self.node_at(start), node, name)
            elif self.peek("[") and not attr_only:
                self.i += 1
                self.depth += 1
                self.ws()
                if self.peek("*"):
                    self.i += 1
                    self.expect("]")
                    self.depth -= 1
                    if not splat_ok:
                        raise self.error("a splat cannot follow another splat here")
                    item = A.SplatItem(*self.node_at(self.i))
                    each = self.parse_traversals(item, self.i, splat_ok=False)
                    node = A.Splat(*self.node_at(start), node, each)
                    continue
                idx = self.parse_expr()
                self.expect("]")
                self.depth -= 1
                node = A.Index(*self.node_at(start), node, idx)
            else:
                self.i = save
                return node

    def parse_primary(self) -> A.Node:
        self.ws()
        start = self.i
        text = self.text
        if self.i >= len(text):
            raise self.error("expected an expression, found end of file")
        ch = text[self.i]
        m = _NUMBER.match(text, self.i)
        if m is not None:
            self.i = m.end()
            s = m.group(0)
            if len(s) > 4300:  # Python refuses longer int conversions; no template needs one
                raise self.error(f"a number literal of {len(s):,} characters is too long (at most 4,300)",
                                 start)
            value: int | float = int(s) if s.isdigit() else float(s)
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                value = int(value)
            return A.Literal(*self.node_at(start), value)
        if ch == '"':
            return self.parse_quoted()
        if text.startswith("<<", self.i):
            return self.parse_heredoc()
        if ch == "(":
            self.i += 1
            self.depth += 1
            inner = self.parse_expr()
            self.expect(")")
            self.depth -= 1
            return A.Paren(*self.node_at(start), inner)
        if ch == "[":
            return self.parse_tuple()
        if ch == "{":
            return self.parse_object()
        name = self.ident()
        if name is None:
            raise self.error(f"expected an expression, found {self._describe_here()}")
        if name == "true":
            return A.Literal(*self.node_at(start), True)
        if name == "false":
            return A.Literal(*self.node_at(start), False)
        if name == "null":
            return A.Literal(*self.node_at(start), None)
        save = self.i
        if self.peek("::"):  # provider-namespaced function: provider::name::fn
            while self.peek("::"):
                self.i += 2
                part = self.ident()
                if part is None:
                    raise self.error("expected a function name after '::'")
                name += "::" + part
        self.ws(False)
        if self.peek("("):
            return self.parse_call(name, start)
        self.i = save
        return A.Variable(*self.node_at(start), name)

    def parse_call(self, name: str, start: int) -> A.Node:
        self.i += 1
        self.depth += 1
        args: list[A.Node] = []
        expand = False
        while True:
            self.ws()
            if self.peek(")"):
                break
            args.append(self.parse_expr())
            self.ws()
            if self.peek("..."):
                self.i += 3
                expand = True
                self.ws()
                if not self.peek(")"):
                    raise self.error("'...' may only follow the last argument")
                break
            if self.peek(","):
                self.i += 1
                continue
            if not self.peek(")"):
                raise self.error(
                    f"expected ',' or ')' in the arguments of {name}(), found {self._describe_here()}"
                )
        self.i += 1
        self.depth -= 1
        return A.Call(*self.node_at(start), name, args, expand)

    def _at_keyword(self, word: str) -> bool:
        m = _IDENT.match(self.text, self.i)
        return bool(m and m.group(0) == word)

    def parse_for_head(self) -> tuple[str | None, str, A.Node]:
        self.i += 3
        self.ws()
        first = self.ident()
        if first is None:
            raise self.error("expected a variable name after 'for'")
        self.ws()
        second = None
        if self.peek(","):
            self.i += 1
            self.ws()
            second = self.ident()
            if second is None:
                raise self.error("expected a second variable name after ','")
        self.ws()
        if not self._at_keyword("in"):
            raise self.error(f"expected 'in' in for expression, found {self._describe_here()}")
        self.i += 2
        coll = self.parse_expr()
        if second is None:
            return None, first, coll
        return first, second, coll

    def parse_tuple(self) -> A.Node:
        start = self.i
        self.i += 1
        self.depth += 1
        self.ws()
        if self._at_keyword("for"):
            k, v, coll = self.parse_for_head()
            self.expect(":")
            value = self.parse_expr()
            cond = self._for_cond()
            self.expect("]")
            self.depth -= 1
            return A.ForExpr(*self.node_at(start), k, v, coll, None, value, cond)
        items: list[A.Node] = []
        while True:
            self.ws()
            if self.peek("]"):
                break
            items.append(self.parse_expr())
            self.ws()
            if self.peek(","):
                self.i += 1
            elif not self.peek("]"):
                raise self.error(f"expected ',' or ']' in a list, found {self._describe_here()}")
        self.i += 1
        self.depth -= 1
        return A.TupleCons(*self.node_at(start), items)

    def _for_cond(self) -> A.Node | None:
        self.ws()
        if self._at_keyword("if"):
            self.i += 2
            return self.parse_expr()
        return None

    def parse_object(self) -> A.Node:
        start = self.i
        self.i += 1
        self.depth += 1
        self.ws()
        if self._at_keyword("for"):
            k, v, coll = self.parse_for_head()
            self.expect(":")
            key = self.parse_expr()
            self.expect("=>")
            value = self.parse_expr()
            self.ws()
            group = False
            if self.peek("..."):
                self.i += 3
                group = True
            cond = self._for_cond()
            self.expect("}")
            self.depth -= 1
            return A.ForExpr(*self.node_at(start), k, v, coll, key, value, cond, group)
        items: list[tuple[A.Node, A.Node]] = []
        while True:
            self.ws()
            if self.peek("}"):
                break
            kstart = self.i
            key = self.parse_expr()
            if isinstance(key, A.Variable):
                key = A.Literal(*self.node_at(kstart), key.name)
            self.ws()
            if (self.peek("=") and not self.peek("==")) or self.peek(":"):
                self.i += 1
            else:
                raise self.error(f"expected '=' or ':' after an object key, found {self._describe_here()}")
            value = self.parse_expr()
            items.append((key, value))
            self.ws()
            if self.peek(","):
                self.i += 1
        self.i += 1
        self.depth -= 1
        return A.ObjectCons(*self.node_at(start), items)

    # --- templates -------------------------------------------------------------------------

    def parse_quoted(self) -> A.Node:
        start = self.i
        self.i += 1
        parts = self.parse_template_parts(quoted=True, end=len(self.text))
        return self._template_node(start, parts)

    def _template_node(self, start: int, parts: list[object]) -> A.Node:
        if len(parts) == 1 and isinstance(parts[0], A.Node):
            return A.TemplateWrap(*self.node_at(start), parts[0])
        return A.Template(*self.node_at(start), [p for p in parts if p != ""])

    def parse_heredoc(self) -> A.Node:
        start = self.i
        m = _HEREDOC.match(self.text, self.i)
        if not m:
            raise self.error("expected a heredoc marker (<<EOT or <<-EOT) followed by a newline")
        indent, marker = m.group(1) == "-", m.group(2)
        body_start = m.end()
        close = re.compile(r"^[ \t]*" + re.escape(marker) + r"[ \t]*\r?$", re.M)
        cm = close.search(self.text, body_start)
        if not cm:
            raise self.error(f"unterminated heredoc: no closing {marker!r} line", start)
        body_end = cm.start()
        self.i = body_start
        parts = self.parse_template_parts(quoted=False, end=body_end)
        self.i = cm.end()
        if indent:
            parts = _dedent_parts(parts, self.text[body_start:body_end])
        return self._template_node(start, parts)

    def parse_template_parts(self, quoted: bool, end: int) -> list[object]:
        """Parse up to the closing quote (quoted) or ``end``; returns nested parts."""
        root: list[object] = []
        stack: list[tuple[str, object, list[object]]] = []  # (kind, directive, outer parts)
        cur = root
        buf: list[str] = []
        strip_next = False
        text = self.text

        def flush() -> None:
            nonlocal strip_next
            s = "".join(buf)
            buf.clear()
            if strip_next:
                s = s.lstrip(" \t\r\n")
                strip_next = False
            if s:
                cur.append(s)

        def strip_prev() -> None:
            flush()
            if cur and isinstance(cur[-1], str):
                cur[-1] = cur[-1].rstrip(" \t\r\n")

        while True:
            if self.i >= end:
                if quoted:
                    raise self.error("unterminated string: missing closing '\"'")
                break
            ch = text[self.i]
            if quoted and ch == '"':
                self.i += 1
                break
            if quoted and ch == "\n":
                raise self.error("unterminated string: a quoted string cannot contain a newline")
            if quoted and ch == "\\":
                buf.append(self._escape())
                continue
            if text.startswith("$${", self.i) or text.startswith("%%{", self.i):
                buf.append(text[self.i + 1 : self.i + 3])
                self.i += 3
                continue
            if text.startswith("${", self.i):
                self.i += 2
                if self.peek("~"):
                    self.i += 1
                    strip_prev()
                else:
                    flush()
                self.depth += 1
                expr = self.parse_expr()
                self.ws()
                self.depth -= 1
                if self.peek("~"):
                    self.i += 1
                    strip_next = True
                if not self.peek("}"):
                    raise self.error(
                        f"expected '}}' to close the interpolation, found {self._describe_here()}"
                    )
                self.i += 1
                cur.append(expr)
                continue
            if text.startswith("%{", self.i):
                dstart = self.i
                self.i += 2
                if self.peek("~"):
                    self.i += 1
                    strip_prev()
                else:
                    flush()
                self.depth += 1
                self.ws()
                word = self.ident()
                if word == "if":
                    cond = self.parse_expr()
                    d: object = A.IfDirective(cond, [], [])
                    stack.append(("if", d, cur))
                    cur.append(d)
                    cur = d.then  # type: ignore[attr-defined]
                elif word == "else":
                    if not stack or stack[-1][0] != "if":
                        raise self.error("%{ else } without a matching %{ if }", dstart)
                    _kind, d, outer = stack.pop()
                    stack.append(("else", d, outer))
                    cur = d.else_  # type: ignore[attr-defined]
                elif word == "endif":
                    if not stack or stack[-1][0] not in ("if", "else"):
                        raise self.error("%{ endif } without a matching %{ if }", dstart)
                    cur = stack.pop()[2]
                elif word == "for":
                    self.i -= 3
                    k, v, coll = self.parse_for_head()
                    d = A.ForDirective(k, v, coll, [])
                    stack.append(("for", d, cur))
                    cur.append(d)
                    cur = d.body
                elif word == "endfor":
                    if not stack or stack[-1][0] != "for":
                        raise self.error("%{ endfor } without a matching %{ for }", dstart)
                    cur = stack.pop()[2]
                else:
                    raise self.error(
                        f"unknown template directive {word!r}: expected if, else, endif, for or endfor",
                        dstart,
                    )
                self.ws()
                self.depth -= 1
                if self.peek("~"):
                    self.i += 1
                    strip_next = True
                if not self.peek("}"):
                    raise self.error(f"expected '}}' to close the directive, found {self._describe_here()}")
                self.i += 1
                continue
            buf.append(ch)
            self.i += 1
        flush()
        if stack:
            raise self.error(f"missing %{{ end{'for' if stack[-1][0] == 'for' else 'if'} }} in template")
        return root

    def _escape(self) -> str:
        text = self.text
        nxt = text[self.i + 1 : self.i + 2]
        simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
        if nxt in simple:
            self.i += 2
            return simple[nxt]
        if nxt in ("u", "U"):
            width = 4 if nxt == "u" else 8
            digits = text[self.i + 2 : self.i + 2 + width]
            if len(digits) == width and all(c in "0123456789abcdefABCDEF" for c in digits):
                self.i += 2 + width
                try:
                    return chr(int(digits, 16))
                except (ValueError, OverflowError):
                    pass
            raise self.error(f"invalid \\{nxt} escape: expected {width} hex digits")
        raise self.error(f"invalid escape sequence \\{nxt}: use \\\\ for a backslash")


def _dedent_parts(parts: list[object], raw: str) -> list[object]:
    lines = [ln for ln in raw.split("\n") if ln.strip()]
    n = min((len(ln) - len(ln.lstrip(" \t")) for ln in lines), default=0)
    if n == 0:
        return parts
    pat = re.compile(r"(^|\n)[ \t]{0," + str(n) + "}")

    def fix(seq: list[object], at_line_start: bool) -> list[object]:
        out: list[object] = []
        for p in seq:
            if isinstance(p, str):
                if at_line_start:
                    p = pat.sub(r"\1", p)
                else:
                    p = re.sub(r"\n[ \t]{0," + str(n) + "}", "\n", p)
                out.append(p)
                at_line_start = False
            else:
                if isinstance(p, A.IfDirective):
                    p.then = fix(p.then, at_line_start)
                    p.else_ = fix(p.else_, at_line_start)
                elif isinstance(p, A.ForDirective):
                    p.body = fix(p.body, at_line_start)
                out.append(p)
                at_line_start = False
        return out

    return fix(parts, True)


def parse(text: str, filename: str) -> A.Body:
    """Parse a whole ``.pkr.hcl`` / ``.pkrvars.hcl`` file."""
    return Parser(text, filename).parse_file()


def parse_expression(text: str, filename: str = "<expression>") -> A.Node:
    """Parse one expression (a ``-var`` value, a console line)."""
    p = Parser(text, filename)
    p.depth = 1
    p.ws(True)
    node = p.parse_expr()
    p.ws(True)
    if p.i < len(text):
        raise p.error(f"unexpected {p._describe_here()} after the expression")
    return node
