"""The parser of Go's text/template (``src/text/template/parse/parse.go``)."""

from __future__ import annotations

from collections.abc import Collection

from amibake.template.gotemplate.context import Context, TemplateSyntaxError, _line_col
from amibake.template.gotemplate.goformat import _go_quote
from amibake.template.gotemplate.lexer import (
    _T,
    _UNSUPPORTED_KEYWORDS,
    _go_unquote,
    _Item,
    _Lexer,
    _parse_number,
    _SyntaxErr,
)
from amibake.template.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TextNode,
    VariableNode,
    WithNode,
    _ElseNode,
    _EndNode,
)

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


def validate(text: str, ctx: Context) -> None:
    """Packer's ``interpolate.Validate``: the string parses and every function exists."""
    if "{{" in text:
        parse(text, ctx.functions())
