"""The evaluator of Go's text/template (``src/text/template/exec.go``): rendering a string, a whole
configuration, and the static inspection of a string (references, check)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amibake.errors import InterpolationError
from amibake.template.gotemplate.context import Context, DeepInterpolationError, TemplateExecError, _line_col
from amibake.template.gotemplate.functions import _ANY, _INT, _NETWORK_FUNCS, _STR, _FuncError, _lookup_func
from amibake.template.gotemplate.goformat import INVALID, _go_format, _go_quote, _go_type, _truth
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
)
from amibake.template.gotemplate.parser import parse

# ---------------------------------------------------------------------------------------------
# Evaluator (Go's text/template/exec.go)
# ---------------------------------------------------------------------------------------------


class _NoFinal:
    """Go's ``missingVal``: no piped-in value."""


_NO_FINAL: Any = _NoFinal()


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
    def __init__(self, text: str, ctx: Context) -> None:
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
        spec = _lookup_func(name, self.ctx.extra_funcs) if name in self.funcs else None
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


def render(text: str, ctx: Context) -> str:
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


def render_repeat(text: str, ctx: Context, limit: int = 100) -> str:
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


def _render_value(value: Any, ctx: Context, path: str, top: str) -> Any:
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


def render_deep(value: Any, ctx: Context, skip_keys: Collection[str] = ()) -> Any:
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


def check(text: str, ctx: Context) -> list[str]:
    """Problems found without rendering: syntax, unknown functions, wrong argument counts,
    literal arguments of the wrong type, and functions amibake cannot run. Never raises."""
    if "{{" not in text:
        return []
    try:
        tree = parse(text, ctx.functions())
    except InterpolationError as e:
        msg = e.message
        for old, new in ctx.renamed_funcs.items():
            if f'"{old}" not defined' in msg:
                msg += f" (it was renamed {new})"
        return [msg]
    problems: list[str] = []
    for node in _walk(tree):
        if isinstance(node, PipeNode):
            for stage, cmd in enumerate(node.cmds):
                problems.extend(_check_command(text, cmd, piped=stage > 0, extra=ctx.extra_funcs))
    return problems


def _check_command(
    text: str, cmd: CommandNode, piped: bool, extra: Mapping[str, Callable[..., str]]
) -> list[str]:
    first = cmd.args[0]
    if not isinstance(first, IdentifierNode):
        return []
    spec = _lookup_func(first.name, extra)
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
