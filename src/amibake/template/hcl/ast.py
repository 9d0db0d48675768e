"""The syntax tree of HCL2 native syntax: a body of attributes and blocks, and expressions.

Every node knows where it starts (1-based line and column) and its source span, so every
problem can name ``file:line:col`` and quote the expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    line: int
    col: int
    start: int  # offset of the first character
    end: int  # offset past the last character


# --- expressions -----------------------------------------------------------------------------


@dataclass
class Literal(Node):
    value: Any


@dataclass
class Template(Node):
    """A quoted string or heredoc: literal text and interpolations / directives."""

    parts: list[Any]  # str | Node | IfDirective | ForDirective


@dataclass
class IfDirective:
    cond: Node
    then: list[Any]
    else_: list[Any]


@dataclass
class ForDirective:
    key_var: str | None
    value_var: str
    coll: Node
    body: list[Any]


@dataclass
class TemplateWrap(Node):
    """``"${expr}"``: a template of one interpolation yields the value itself, unconverted."""

    expr: Node


@dataclass
class Variable(Node):
    name: str


@dataclass
class GetAttr(Node):
    obj: Node
    name: str


@dataclass
class Index(Node):
    obj: Node
    key: Node


@dataclass
class Splat(Node):
    """``src[*].a.b`` (or ``src.*.a``): ``each`` is applied to every element, bound to SplatItem."""

    source: Node
    each: Node


@dataclass
class SplatItem(Node):
    pass


@dataclass
class Call(Node):
    name: str
    args: list[Node]
    expand_final: bool = False


@dataclass
class Unary(Node):
    op: str
    operand: Node


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass
class Conditional(Node):
    cond: Node
    true: Node
    false: Node


@dataclass
class TupleCons(Node):
    items: list[Node]


@dataclass
class ObjectCons(Node):
    items: list[tuple[Node, Node]]


@dataclass
class ForExpr(Node):
    key_var: str | None
    value_var: str
    coll: Node
    key: Node | None  # set for object for-expressions
    value: Node
    cond: Node | None
    group: bool = False


@dataclass
class Paren(Node):
    expr: Node


# --- structure -------------------------------------------------------------------------------


@dataclass
class Attribute:
    name: str
    expr: Node
    line: int
    col: int


@dataclass
class Block:
    type: str
    labels: list[str]
    body: Body
    line: int
    col: int


@dataclass
class Body:
    attributes: dict[str, Attribute] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    #: attributes and blocks in file order (for diagnostics and stable output)
    order: list[Attribute | Block] = field(default_factory=list)
