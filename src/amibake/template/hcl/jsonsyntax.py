"""HCL's JSON syntax (``*.pkr.json``, ``*.pkrvars.json``) turned into the native parser's :class:`A.Body`.

Follows https://github.com/hashicorp/hcl/blob/main/json/spec.md. JSON cannot tell an attribute from a
block, so the schema Packer decodes each body with decides: a property named after a block type
at that level defines blocks (an object is one block, an array of objects several, ``null`` none;
each label is one level of nested object keys); every other property is an attribute. Attribute
values map to expressions: strings are native-syntax *templates* (parsed by the native template
parser, so ``"${var.x}"`` and ``%{ if }`` behave alike and ``"$${"`` is a literal ``${``), numbers,
booleans and ``null`` literals, arrays tuples, objects object constructors (keys are templates too).
A variable's ``type`` is a static type expression: its string is parsed as a native expression.
The property ``"//"`` in a body is a comment and ignored.

Plugin bodies (sources, data sources, provisioners, post-processors) have no schema here, so
their nested blocks stay attribute values: ``"launch_block_device_mappings": [{...}]`` decodes to
the same list of dicts as the native blocks, ``"source_ami_filter": {...}`` to the same dict.

Every node gets the real ``line:col`` and offsets of the JSON file (also inside strings with
escapes), so evaluation errors point into the ``.pkr.json`` file. Differences from HCL's Go
implementation: a property name repeated within one JSON object is an error even where HCL would
read it as more blocks of one type (write an array instead); ``dynamic`` blocks are not expanded
inside plugin bodies.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from amibake.errors import Pos
from amibake.template import jsonpos
from amibake.template.hcl import ast as A
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.parser import Parser, parse_expression
from amibake.template.jsonpos import PosDict, PosList

#: block type -> (number of labels, schema of its body); "" is the top level of a template
_Schema = dict[str, tuple[int, str]]
_SCHEMAS: dict[str, _Schema] = {
    "": {
        "variable": (1, "variable"),
        "local": (1, "plain"),
        "source": (2, "plain"),
        "data": (2, "plain"),
        "locals": (0, "plain"),
        "packer": (0, "packer"),
        "build": (0, "build"),
        "variables": (0, "plain"),
    },
    "build": {
        "source": (1, "plain"),
        "provisioner": (1, "plain"),
        "post-processor": (1, "plain"),
        "post-processors": (0, "post-processors"),
        "error-cleanup-provisioner": (1, "plain"),
        "hcp_packer_registry": (0, "plain"),
    },
    "post-processors": {"post-processor": (1, "plain")},
    "packer": {"required_plugins": (0, "plain")},
    "variable": {"validation": (0, "plain")},
    "plain": {},
}
#: attributes read by static analysis (a type expression), per body schema
_STATIC_EXPRS: dict[str, frozenset[str]] = {"variable": frozenset({"type"})}
_WS = re.compile(r"[ \t\n\r]*")


def parse_json_body(text: str, filename: str, *, varfile: bool = False) -> A.Body:
    """Parse a ``.pkr.json`` file (or, ``varfile``, a ``.pkrvars.json`` file: attributes only).

    Raises :class:`HclError` (with ``file:line:col``) for invalid JSON or a shape the schema rejects.
    """
    value, problems = jsonpos.loads(filename, text)
    if problems:
        p = problems[0]
        pos = p.pos or Pos(filename)
        raise HclError(p.message, filename, pos.line, pos.column, p.key)
    conv = _Converter(text, filename)
    try:
        return conv.body(value, conv.skip_ws(0), "" if not varfile else "plain", top=True)
    except RecursionError:
        raise HclError("Error parsing JSON: nested too deeply", filename, 1, 1) from None


class _Converter:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self._nl = [m.start() for m in re.finditer("\n", text)]

    # --- positions -----------------------------------------------------------------------

    def line_col(self, offset: int) -> tuple[int, int]:
        n = bisect.bisect_left(self._nl, offset)
        line_start = self._nl[n - 1] + 1 if n > 0 else 0
        return n + 1, offset - line_start + 1

    def offset(self, pos: Pos) -> int:
        line, col = pos.line or 1, pos.column or 1
        return (self._nl[line - 2] + 1 if line >= 2 else 0) + col - 1

    def skip_ws(self, i: int) -> int:
        m = _WS.match(self.text, i)
        return m.end() if m else i

    def string_end(self, i: int) -> int:
        """Offset of the closing quote of the JSON string opening at ``i``."""
        j = i + 1
        text = self.text
        while text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j

    def value_offset(self, key_offset: int) -> int:
        """Where the value of the property whose key starts at ``key_offset`` starts."""
        i = self.skip_ws(self.string_end(key_offset) + 1)
        return self.skip_ws(i + 1)  # past ':'

    def after_value(self, value: Any, i: int) -> int:
        """Offset just past the JSON value starting at ``i``."""
        if isinstance(value, (PosDict, PosList)):
            close = "}" if isinstance(value, PosDict) else "]"
            if not value:
                return self.skip_ws(i + 1) + 1
            if isinstance(value, PosDict):
                # keys are unique (duplicates were rejected), so the last one is last in the text
                name = next(reversed(value))
                end = self.after_value(value[name], self.value_offset(self.offset(value.key_pos[name])))
            else:
                end = self.after_value(value[-1], self.offset(value.item_pos[-1]))
            end = self.skip_ws(end)
            assert self.text[end] == close
            return end + 1
        if isinstance(value, str):
            return self.string_end(i) + 1
        return json.JSONDecoder().raw_decode(self.text, i)[1]

    def error(self, message: str, offset: int) -> HclError:
        line, col = self.line_col(offset)
        return HclError(message, self.filename, line, col)

    # --- bodies and blocks ---------------------------------------------------------------

    def props(self, obj: Any, at: int, what: str) -> list[tuple[str, Any, int]]:
        """The properties of a body (an object, or at the top an array of objects), in order."""
        if isinstance(obj, PosDict):
            return [(k, v, self.offset(obj.key_pos[k])) for k, v in obj.items()]
        raise self.error(f"{what}: expected a JSON object, found {_kind(obj)}", at)

    def body(self, obj: Any, at: int, schema: str, top: bool = False) -> A.Body:
        out = A.Body()
        if top and isinstance(obj, PosList):
            props = [p for o, i in zip(obj, obj.item_pos) for p in self.props(o, self.offset(i), "a body")]
        else:
            props = self.props(obj, at, "the top level" if top else "a block body")
        blocks = _SCHEMAS[schema]
        for name, value, key_at in props:
            if name == "//":
                continue
            vat = self.value_offset(key_at)
            if name in blocks:
                nlabels, inner = blocks[name]
                for blk in self.blocks(name, value, vat, key_at, nlabels, inner, []):
                    out.blocks.append(blk)
                    out.order.append(blk)
                continue
            line, col = self.line_col(key_at)
            if name in out.attributes:
                first = out.attributes[name]
                raise HclError(
                    f'Duplicate argument: "{name}" was already set at line {first.line}',
                    self.filename,
                    line,
                    col,
                )
            if name in _STATIC_EXPRS.get(schema, ()):
                expr = self.static_expr(value, vat)
            else:
                expr = self.expr(value, vat)
            attr = A.Attribute(name, expr, line, col)
            out.attributes[name] = attr
            out.order.append(attr)
        return out

    def blocks(
        self, typ: str, value: Any, at: int, key_at: int, nlabels: int, schema: str, labels: list[str]
    ) -> list[A.Block]:
        if value is None:
            return []
        if nlabels > len(labels):
            props: list[tuple[str, Any, int]] = []
            if isinstance(value, PosDict):
                props = self.props(value, at, typ)
            elif isinstance(value, PosList):
                for item, ipos in zip(value, value.item_pos):
                    props.extend(self.props(item, self.offset(ipos), f"the labels of a {typ} block"))
            else:
                raise self.error(
                    f"Incorrect JSON value type: a JSON object is required whose property names are the "
                    f'"{typ}" block\'s labels, found {_kind(value)}',
                    at,
                )
            if not props:
                raise self.error(
                    "Missing block label: at least one object property is required, whose name is the "
                    f'"{typ}" block\'s label',
                    at,
                )
            out: list[A.Block] = []
            for name, v, kat in props:
                out.extend(self.blocks(typ, v, self.value_offset(kat), kat, nlabels, schema, [*labels, name]))
            return out
        if isinstance(value, PosDict):
            items: list[tuple[Any, int]] = [(value, at)]
        elif isinstance(value, PosList):
            items = [(v, self.offset(p)) for v, p in zip(value, value.item_pos)]
        else:
            raise self.error(
                "Incorrect JSON value type: either a JSON object or a JSON array is required, "
                f'representing the contents of one or more "{typ}" blocks; found {_kind(value)}',
                at,
            )
        out = []
        for v, vat in items:
            if not isinstance(v, PosDict):
                raise self.error(f'a "{typ}" block body must be a JSON object, found {_kind(v)}', vat)
            # the block stands at its last label (or its type when it has none and is one object)
            line, col = self.line_col(key_at if (labels or v is value) else vat)
            out.append(A.Block(typ, list(labels), self.body(v, vat, schema), line, col))
        return out

    # --- expressions ---------------------------------------------------------------------

    def expr(self, value: Any, at: int) -> A.Node:
        if isinstance(value, str):
            return self.template(value, at)
        if isinstance(value, PosDict):
            items: list[tuple[A.Node, A.Node]] = []
            for k, v in value.items():
                kat = self.offset(value.key_pos[k])
                items.append((self.template(k, kat), self.expr(v, self.value_offset(kat))))
            return A.ObjectCons(*self.node_at(at, self.after_value(value, at)), items)
        if isinstance(value, PosList):
            elems = [self.expr(v, self.offset(p)) for v, p in zip(value, value.item_pos)]
            return A.TupleCons(*self.node_at(at, self.after_value(value, at)), elems)
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            value = int(value)  # as the native parser reads 1.0 or 1e3
        return A.Literal(*self.node_at(at, self.after_value(value, at)), value)

    def node_at(self, start: int, end: int) -> tuple[int, int, int, int]:
        line, col = self.line_col(start)
        return line, col, start, end

    def template(self, s: str, at: int) -> A.Node:
        """A JSON string as a standalone native template, positioned in the JSON file."""
        close = self.string_end(at)
        return self._native(s, at, close, lambda p: _template(p))

    def static_expr(self, value: Any, at: int) -> A.Node:
        """A type expression: a JSON string's content is a native-syntax expression."""
        if not isinstance(value, str):
            raise self.error(
                f'a type expression must be a JSON string such as "list(string)", found {_kind(value)}', at
            )
        close = self.string_end(at)
        return self._native(value, at, close, None)

    def _native(self, s: str, at: int, close: int, build: Callable[[Parser], A.Node] | None) -> A.Node:
        raw = _raw_offsets(self.text, at, close)
        try:
            if build is None:
                node = parse_expression(s, self.filename)
            else:
                node = build(Parser(s, self.filename))
        except HclError as e:
            off = _offset_in(s, e.line or 1, e.col or 1)
            raise self.error(e.message, raw[min(off, len(s))]) from None
        self._relocate(node, raw)
        if build is not None:  # the template itself spans the quotes, as in native syntax
            node.line, node.col = self.line_col(at)
            node.start, node.end = at, close + 1
        return node

    def _relocate(self, obj: Any, raw: list[int]) -> None:
        if isinstance(obj, list | tuple):
            for x in obj:
                self._relocate(x, raw)
            return
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return
        if isinstance(obj, A.Node):
            obj.start = raw[min(obj.start, len(raw) - 1)]
            obj.end = raw[min(obj.end, len(raw) - 1)]
            obj.line, obj.col = self.line_col(obj.start)
        for f in dataclasses.fields(obj):
            self._relocate(getattr(obj, f.name), raw)


def _template(p: Parser) -> A.Node:
    parts = p.parse_template_parts(quoted=False, end=len(p.text))
    return p._template_node(0, parts)


def _raw_offsets(text: str, open_quote: int, close_quote: int) -> list[int]:
    """For each character of the decoded JSON string, the file offset it comes from (and one past)."""
    out: list[int] = []
    i = open_quote + 1
    while i < close_quote:
        out.append(i)
        if text[i] != "\\":
            i += 1
        elif text[i + 1] != "u":
            i += 2
        else:
            cp = int(text[i + 2 : i + 6], 16)
            nxt = text[i + 6 : i + 8]
            if 0xD800 <= cp < 0xDC00 and nxt == "\\u" and 0xDC00 <= int(text[i + 8 : i + 12], 16) < 0xE000:
                i += 12  # a surrogate pair decodes to one character
            else:
                i += 6
    out.append(close_quote)
    return out


def _offset_in(s: str, line: int, col: int) -> int:
    starts = [0] + [m.end() for m in re.finditer("\n", s)]
    return starts[min(line, len(starts)) - 1] + col - 1


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if v is None:
        return "null"
    return "a number"
