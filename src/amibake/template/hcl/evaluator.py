"""Evaluates HCL expressions (see :mod:`.ast`) against variables and a function table.

Every failure is an :class:`HclError` naming the file, line and column of the failing part and,
where useful, what was expected. Nothing else escapes :func:`evaluate` (Python errors raised
by a function implementation are wrapped too), so no user input can end in a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from amibake.template.hcl import ast as A
from amibake.template.hcl.diagnostics import HclError
from amibake.template.hcl.values import (
    ANY,
    BOOL,
    NUMBER,
    STRING,
    UNKNOWN,
    ConversionError,
    Type,
    convert,
    equal,
    normalize_number,
    to_bool,
    to_number,
    to_string,
    type_name,
)

_MAX_DEPTH = 200


class FunctionError(Exception):
    """Raised by a function implementation: a bad argument. The evaluator adds the position."""


class LazyObject:
    """An object whose attributes are computed on first use (``local.x``, ``data.t.n``)."""

    def __init__(self, names: list[str], resolve: Callable[[str], Any], what: str) -> None:
        self.names = names
        self._resolve = resolve
        self.what = what

    def get(self, name: str) -> Any:
        return self._resolve(name)

    def materialize(self) -> dict[str, Any]:
        return {n: self._resolve(n) for n in sorted(self.names)}


@dataclass
class Context:
    variables: Mapping[str, Any]
    functions: Mapping[str, Callable[..., Any]]
    file: str = "<expression>"
    #: the source text of ``file``, to quote an expression in errors
    text: str = ""
    #: name of the block context, e.g. "variable default": used in "not allowed here" errors
    where: str = ""
    depth: int = field(default=0)

    def child(self, extra: Mapping[str, Any]) -> Context:
        v = dict(self.variables)
        v.update(extra)
        return Context(v, self.functions, self.file, self.text, self.where, self.depth)


def evaluate(node: A.Node, ctx: Context) -> Any:
    try:
        return _eval(node, ctx)
    except HclError:
        raise
    except RecursionError:
        raise _err(ctx, node, "expression too deeply nested") from None


def _err(ctx: Context, node: A.Node | None, message: str) -> HclError:
    if node is None:
        return HclError(message, ctx.file)
    return HclError(message, ctx.file, node.line, node.col)


def source_of(ctx: Context, node: A.Node) -> str:
    if ctx.text and 0 <= node.start < node.end <= len(ctx.text):
        s = ctx.text[node.start : node.end]
        return s if len(s) <= 80 else s[:77] + "..."
    return ""


def _materialize(v: Any) -> Any:
    return v.materialize() if isinstance(v, LazyObject) else v


def _eval(node: A.Node, ctx: Context) -> Any:
    t = type(node)
    if t is A.Literal:
        return node.value  # type: ignore[attr-defined]
    if t is A.TemplateWrap:
        return _materialize(_eval(node.expr, ctx))  # type: ignore[attr-defined]
    if t is A.Template:
        return _template(node.parts, ctx, node)  # type: ignore[attr-defined]
    if t is A.Variable:
        name = node.name  # type: ignore[attr-defined]
        if name not in ctx.variables:
            if name in ("var", "local", "data", "source", "build", "path", "packer"):
                hint = f"{name}.* references are not allowed" + (f" in {ctx.where}" if ctx.where else "")
                raise _err(ctx, node, f"Variables not allowed: {hint}.")
            raise _err(ctx, node, f'Unknown variable: there is no variable named "{name}".')
        return ctx.variables[name]
    if t is A.GetAttr:
        obj = _eval(node.obj, ctx)  # type: ignore[attr-defined]
        return _get_attr(obj, node.name, node, ctx)  # type: ignore[attr-defined]
    if t is A.Index:
        obj = _eval(node.obj, ctx)  # type: ignore[attr-defined]
        key = _materialize(_eval(node.key, ctx))  # type: ignore[attr-defined]
        return _index(obj, key, node, ctx)
    if t is A.Paren:
        return _materialize(_eval(node.expr, ctx))  # type: ignore[attr-defined]
    if t is A.Splat:
        return _splat(node, ctx)  # type: ignore[arg-type]
    if t is A.SplatItem:
        return ctx.variables["\0splat"]
    if t is A.Call:
        return _call(node, ctx)  # type: ignore[arg-type]
    if t is A.Unary:
        return _unary(node, ctx)  # type: ignore[arg-type]
    if t is A.Binary:
        return _binary(node, ctx)  # type: ignore[arg-type]
    if t is A.Conditional:
        return _conditional(node, ctx)  # type: ignore[arg-type]
    if t is A.TupleCons:
        return [_materialize(_eval(x, ctx)) for x in node.items]  # type: ignore[attr-defined]
    if t is A.ObjectCons:
        out: dict[str, Any] = {}
        for k, v in node.items:  # type: ignore[attr-defined]
            key = _materialize(_eval(k, ctx))
            if key is UNKNOWN:
                return UNKNOWN
            try:
                skey = to_string(key)
            except ConversionError:
                skey = None
            if not isinstance(skey, str):
                raise _err(ctx, k, f"Incorrect key type: object keys must be strings, not {type_name(key)}.")
            out[skey] = _materialize(_eval(v, ctx))
        return out
    if t is A.ForExpr:
        return _for(node, ctx)  # type: ignore[arg-type]
    raise _err(ctx, node, f"cannot evaluate {t.__name__}")  # pragma: no cover


def _get_attr(obj: Any, name: str, node: A.Node, ctx: Context) -> Any:
    if obj is UNKNOWN:
        return UNKNOWN
    if isinstance(obj, LazyObject):
        if name not in obj.names:
            raise _err(ctx, node, f'Unsupported attribute: {obj.what} has no attribute named "{name}".')
        return obj.get(name)
    if obj is None:
        raise _err(ctx, node, f'Attempt to get attribute "{name}" from a null value.')
    if isinstance(obj, dict):
        if name not in obj:
            raise _err(
                ctx, node, f'Unsupported attribute: this object does not have an attribute named "{name}".'
            )
        return obj[name]
    raise _err(
        ctx, node, f'Unsupported attribute: cannot get attribute "{name}" of a {type_name(obj)} value.'
    )


def _index(obj: Any, key: Any, node: A.Node, ctx: Context) -> Any:
    if obj is UNKNOWN or key is UNKNOWN:
        return UNKNOWN
    if isinstance(obj, LazyObject):
        if not isinstance(key, str) or key not in obj.names:
            raise _err(ctx, node, f"Invalid index: {obj.what} has no element {key!r}.")
        return obj.get(key)
    if obj is None:
        raise _err(ctx, node, "Attempt to index a null value.")
    if key is None:
        raise _err(ctx, node, "Invalid index: can't use a null value as an index.")
    if isinstance(obj, list):
        try:
            i = to_number(key)
        except ConversionError:
            raise _err(ctx, node, f"Invalid index: a number is required, not {type_name(key)}.") from None
        if not isinstance(i, int):
            raise _err(ctx, node, "Invalid index: the index must be a whole number.")
        if not 0 <= i < len(obj):
            raise _err(ctx, node, f"Invalid index: index {i} out of range for a list of {len(obj)} elements.")
        return obj[i]
    if isinstance(obj, dict):
        try:
            k = to_string(key)
        except ConversionError:
            raise _err(ctx, node, f"Invalid index: a string key is required, not {type_name(key)}.") from None
        if k not in obj:
            raise _err(
                ctx, node, f'Invalid index: the given key "{k}" does not identify an element of this map.'
            )
        return obj[k]
    raise _err(ctx, node, f"Invalid index: a {type_name(obj)} value cannot be indexed.")


def _splat(node: A.Splat, ctx: Context) -> Any:
    src = _materialize(_eval(node.source, ctx))
    if src is UNKNOWN:
        return UNKNOWN
    if src is None:
        return []
    items = src if isinstance(src, list) else [src]
    out = []
    for item in items:
        out.append(_eval(node.each, ctx.child({"\0splat": item})))
    return out


def _template(parts: list[Any], ctx: Context, node: A.Node) -> Any:
    out: list[str] = []
    unknown = False
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif isinstance(p, A.IfDirective):
            c = _as_bool(_eval(p.cond, ctx), p.cond, ctx, "the %{ if } condition")
            if c is UNKNOWN:
                unknown = True
                continue
            v = _template(p.then if c else p.else_, ctx, node)
            if v is UNKNOWN:
                unknown = True
            else:
                out.append(v)
        elif isinstance(p, A.ForDirective):
            coll = _materialize(_eval(p.coll, ctx))
            if coll is UNKNOWN:
                unknown = True
                continue
            for k, v in _iterate(coll, p.coll, ctx):
                names = {p.value_var: v}
                if p.key_var:
                    names[p.key_var] = k
                s = _template(p.body, ctx.child(names), node)
                if s is UNKNOWN:
                    unknown = True
                else:
                    out.append(s)
        else:
            v = _materialize(_eval(p, ctx))
            if v is UNKNOWN:
                unknown = True
                continue
            if v is None:
                raise _err(ctx, p, "Invalid template interpolation value: the expression result is null.")
            try:
                out.append(to_string(v))
            except ConversionError:
                raise _err(
                    ctx,
                    p,
                    f"Invalid template interpolation value: cannot include a {type_name(v)} "
                    "in a string template; a string, number or bool is required.",
                ) from None
    return UNKNOWN if unknown else "".join(out)


def _iterate(coll: Any, node: A.Node, ctx: Context) -> list[tuple[Any, Any]]:
    if isinstance(coll, list):
        return list(enumerate(coll))
    if isinstance(coll, dict):
        return [(k, coll[k]) for k in sorted(coll)]
    if coll is None:
        raise _err(ctx, node, "Iteration over null value: a for expression needs a list, set, map or object.")
    raise _err(ctx, node, f"Iteration over non-iterable value: a {type_name(coll)} cannot be iterated.")


def _for(node: A.ForExpr, ctx: Context) -> Any:
    coll = _materialize(_eval(node.coll, ctx))
    if coll is UNKNOWN:
        return UNKNOWN
    is_obj = node.key is not None
    out_list: list[Any] = []
    out_obj: dict[str, Any] = {}
    for k, v in _iterate(coll, node.coll, ctx):
        names = {node.value_var: v}
        if node.key_var:
            names[node.key_var] = k
        c = ctx.child(names)
        if node.cond is not None:
            ok = _as_bool(_eval(node.cond, c), node.cond, c, "the for expression's 'if' condition")
            if ok is UNKNOWN:
                return UNKNOWN
            if not ok:
                continue
        val = _materialize(_eval(node.value, c))
        if not is_obj:
            out_list.append(val)
            continue
        assert node.key is not None
        key = _materialize(_eval(node.key, c))
        if key is UNKNOWN:
            return UNKNOWN
        try:
            skey = to_string(key)
        except ConversionError:
            skey = None
        if not isinstance(skey, str):
            raise _err(c, node.key, f"Invalid object key: a string is required, not {type_name(key)}.")
        if node.group:
            out_obj.setdefault(skey, []).append(val)
        elif skey in out_obj:
            raise _err(
                c,
                node.key,
                f'Duplicate object key: two elements produce the key "{skey}". '
                "Add '...' after the value expression to group them.",
            )
        else:
            out_obj[skey] = val
    return out_obj if is_obj else out_list


def _as_bool(v: Any, node: A.Node, ctx: Context, what: str) -> Any:
    v = _materialize(v)
    if v is None:
        raise _err(ctx, node, f"Invalid value for {what}: a bool is required, not null.")
    try:
        return to_bool(v)
    except ConversionError as e:
        raise _err(ctx, node, f"Invalid value for {what}: {e}.") from None


def _as_number(v: Any, node: A.Node, ctx: Context, op: str) -> Any:
    v = _materialize(v)
    if v is None:
        raise _err(
            ctx,
            node,
            f"Invalid operand: unsupported value for the {op!r} operator: a number is required, not null.",
        )
    try:
        return to_number(v)
    except ConversionError as e:
        raise _err(ctx, node, f"Invalid operand for the {op!r} operator: {e}.") from None


def _unary(node: A.Unary, ctx: Context) -> Any:
    v = _eval(node.operand, ctx)
    if node.op == "!":
        b = _as_bool(v, node.operand, ctx, "the '!' operator")
        return UNKNOWN if b is UNKNOWN else not b
    n = _as_number(v, node.operand, ctx, "-")
    return UNKNOWN if n is UNKNOWN else normalize_number(-n)


def _binary(node: A.Binary, ctx: Context) -> Any:
    op = node.op
    if op in ("&&", "||"):
        left = _as_bool(_eval(node.left, ctx), node.left, ctx, f"the {op!r} operator")
        if left is not UNKNOWN and ((op == "&&" and not left) or (op == "||" and left)):
            return left
        right = _as_bool(_eval(node.right, ctx), node.right, ctx, f"the {op!r} operator")
        if left is UNKNOWN or right is UNKNOWN:
            return UNKNOWN
        return right
    lv = _materialize(_eval(node.left, ctx))
    rv = _materialize(_eval(node.right, ctx))
    if op in ("==", "!="):
        if lv is UNKNOWN or rv is UNKNOWN:
            return UNKNOWN
        eq = equal(lv, rv)
        return eq if op == "==" else not eq
    a = _as_number(lv, node.left, ctx, op)
    b = _as_number(rv, node.right, ctx, op)
    if a is UNKNOWN or b is UNKNOWN:
        return UNKNOWN
    if op == "<":
        return bool(a < b)
    if op == ">":
        return bool(a > b)
    if op == "<=":
        return bool(a <= b)
    if op == ">=":
        return bool(a >= b)
    try:
        if op == "+":
            return normalize_number(a + b)
        if op == "-":
            return normalize_number(a - b)
        if op == "*":
            return normalize_number(a * b)
        if op == "/":
            if b == 0:
                raise _err(ctx, node, "Division by zero.")
            return normalize_number(a / b)
        if op == "%":
            if b == 0:
                raise _err(ctx, node, "Modulo by zero.")
            if isinstance(a, int) and isinstance(b, int):
                # Go's big.Int remainder truncates toward zero (sign of the dividend)
                r = abs(a) % abs(b)
                return r if a >= 0 else -r
            import math

            return normalize_number(math.fmod(a, b))
    except OverflowError:
        raise _err(ctx, node, f"Arithmetic overflow in {op!r}.") from None
    raise _err(ctx, node, f"unsupported operator {op}")  # pragma: no cover


def _conditional(node: A.Conditional, ctx: Context) -> Any:
    c = _as_bool(_eval(node.cond, ctx), node.cond, ctx, "the condition")
    if c is UNKNOWN:
        return UNKNOWN
    chosen = _materialize(_eval(node.true if c else node.false, ctx))
    return chosen


_LAZY_FUNCS = ("can", "try")


def _call(node: A.Call, ctx: Context) -> Any:
    name = node.name
    if name == "try":
        if not node.args:
            raise _err(ctx, node, "Invalid function argument: try() needs at least one argument.")
        errors: list[str] = []
        for arg in node.args:
            try:
                return _materialize(_eval(arg, ctx))
            except HclError as e:
                if e.message.startswith("Variables not allowed") or e.message.startswith("Call to unknown"):
                    raise
                errors.append(e.message)
        raise _err(ctx, node, "Error in function call: no expression succeeded:\n- " + "\n- ".join(errors))
    if name == "can":
        if len(node.args) != 1:
            raise _err(ctx, node, "Invalid function argument: can() takes exactly one argument.")
        try:
            v = _materialize(_eval(node.args[0], ctx))
        except HclError as e:
            if e.message.startswith("Variables not allowed") or e.message.startswith("Call to unknown"):
                raise
            return False
        return UNKNOWN if v is UNKNOWN else True
    if name == "convert" and "convert" not in ctx.functions and ctx.functions:
        if len(node.args) != 2:
            raise _err(ctx, node, "Invalid number of arguments: convert(value, type) takes two arguments.")
        value = _materialize(_eval(node.args[0], ctx))
        want = parse_type(node.args[1], ctx)
        try:
            return convert(value, want)
        except ConversionError as e:
            raise _err(ctx, node, f"Invalid function argument: convert(): {e}.") from None
    fn = ctx.functions.get(name)
    if fn is None:
        avail = "" if ctx.functions else " (function calls are not allowed here)"
        raise _err(ctx, node, f'Call to unknown function: there is no function named "{name}"{avail}.')
    args = [_materialize(_eval(a, ctx)) for a in node.args]
    if any(a is UNKNOWN for a in args):
        return UNKNOWN
    if node.expand_final:
        last = args.pop() if args else None
        if not isinstance(last, list):
            raise _err(
                ctx, node, "Invalid expanding argument value: the last argument before '...' must be a list."
            )
        args.extend(last)
    try:
        return fn(*args)
    except FunctionError as e:
        raise _err(ctx, node, f"Error in function call: {name}(): {e}") from None
    except ConversionError as e:
        raise _err(ctx, node, f"Invalid function argument: {name}(): {e}.") from None
    except TypeError as e:
        msg = str(e)
        if "positional argument" in msg or "required" in msg:
            raise _err(ctx, node, f"Invalid number of arguments for {name}().") from None
        raise _err(ctx, node, f"Invalid function argument: {name}(): {msg}.") from None
    except HclError:
        raise
    except (ValueError, KeyError, IndexError, OverflowError, ArithmeticError, OSError, RecursionError) as e:
        raise _err(ctx, node, f"Error in function call: {name}(): {e}") from None


# --- type expressions ------------------------------------------------------------------------


def parse_type(node: A.Node, ctx: Context) -> Type:
    """A type constraint (``list(string)``, ``object({a=string})``) from its expression."""
    if isinstance(node, A.Variable):
        prim = {"string": STRING, "number": NUMBER, "bool": BOOL, "any": ANY}
        if node.name in prim:
            return prim[node.name]
        if node.name in ("list", "map", "set"):
            return (node.name, ANY)
        raise _err(ctx, node, f'Invalid type specification: the keyword "{node.name}" is not a valid type.')
    if isinstance(node, A.Call):
        n, args = node.name, node.args
        if n in ("list", "set", "map") and len(args) == 1:
            return (n, parse_type(args[0], ctx))
        if n == "tuple" and len(args) == 1 and isinstance(args[0], A.TupleCons):
            return ("tuple", [parse_type(x, ctx) for x in args[0].items])
        if n == "object" and len(args) == 1 and isinstance(args[0], A.ObjectCons):
            attrs: dict[str, tuple[Type, bool, Any]] = {}
            for k, v in args[0].items:
                if not isinstance(k, A.Literal) or not isinstance(k.value, str):
                    raise _err(
                        ctx, k, "Invalid type specification: object attribute names must be identifiers."
                    )
                if isinstance(v, A.Call) and v.name == "optional" and 1 <= len(v.args) <= 2:
                    at = parse_type(v.args[0], ctx)
                    default = None
                    if len(v.args) == 2:
                        default = evaluate(v.args[1], Context({}, {}, ctx.file, ctx.text))
                        try:
                            default = convert(default, at)
                        except ConversionError as e:
                            raise _err(
                                ctx, v.args[1], f"Invalid default for optional attribute: {e}."
                            ) from None
                    attrs[k.value] = (at, True, default)
                else:
                    attrs[k.value] = (parse_type(v, ctx), False, None)
            return ("object", attrs)
        raise _err(ctx, node, f"Invalid type specification: {n}(...) is not a valid type constructor here.")
    raise _err(
        ctx,
        node,
        "Invalid type specification: expected a type such as string, list(string) or object({...}).",
    )
