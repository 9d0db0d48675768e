"""The parse tree of Go's text/template (``src/text/template/parse/node.go``)."""

from __future__ import annotations

from amibake.template.gotemplate.lexer import _Number


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
