"""The functions of a template: Packer's (``packer-plugin-sdk/template/interpolate/funcs.go``),
the ones plugins add (given by the context), and Go's builtins (``src/text/template/funcs.go``)."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from amibake.template.gotemplate.context import Context
from amibake.template.gotemplate.goformat import (
    INVALID,
    _go_format,
    _go_type,
    _sprint,
    _truth,
    sprintf,
)

# ---------------------------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------------------------

#: packer-plugin-sdk ``interpolate.ErrVariableNotSetString``: ``{{user `x`}}`` of a variable not
#: (yet) set, in the variables section. Packer's variable resolution retries on this message.
ERR_VARIABLE_NOT_SET = "Error: variable not set:"

#: packer-plugin-sdk ``packerbuilderdata.PlaceholderMsg``: a build-data value containing it is a
#: placeholder, and ``{{ build `X` }}`` then renders as ``{{.X}}`` for a later pass.
PLACEHOLDER_MSG = "To set this dynamically in the Packer template, you must use the `build` function"


class _FuncError(Exception):
    """A function's returned error (Go: ``error calling NAME: MSG``)."""


class _Func(NamedTuple):
    params: tuple[str, ...]
    impl: Callable[..., Any]
    variadic: str | None = None  # type of the ...args after params


# parameter types of functions
_STR, _INT, _ANY = "string", "int", "interface {}"


_NETWORK_FUNCS = {
    "aws_secretsmanager": "AWS Secrets Manager",
    "aws_secretsmanager_raw": "AWS Secrets Manager",
    "consul_key": "Consul",
    "vault": "Vault",
}


def _f_split(ctx: Context, k: str, sep: str, i: int) -> str:
    parts = list(k) if sep == "" else k.split(sep)
    if len(parts) <= i:
        raise _FuncError(
            f"the substring {i} was unavailable using the separator value, {sep}, "
            f"only {len(parts)} values were found"
        )
    if i < 0:
        raise _FuncError(f"runtime error: index out of range [{i}]")
    return parts[i]


def _f_build_name(ctx: Context) -> str:
    if not ctx.build_name:
        raise _FuncError("build_name not available")
    return ctx.build_name


def _f_build_type(ctx: Context) -> str:
    if not ctx.build_type:
        raise _FuncError("build_type not available")
    return ctx.build_type


def _f_env(ctx: Context, k: str) -> str:
    if not ctx.allow_env:
        raise _FuncError("env vars are not allowed here")
    env = os.environ if ctx.env is None else ctx.env
    return env.get(k, "")


def _f_isotime(ctx: Context, *fmt: str) -> str:
    from amibake.template import gotime

    if not fmt:
        return gotime.format_time(ctx.init_time, gotime.RFC3339)
    if len(fmt) > 1:
        raise _FuncError(f"too many values, 1 needed: [{' '.join(fmt)}]")
    return gotime.format_time(ctx.init_time, fmt[0])


def _f_strftime(ctx: Context, fmt: str) -> str:
    from amibake.template import gotime

    return gotime.strftime(fmt, ctx.init_time)


def _f_pwd(ctx: Context) -> str:
    return os.getcwd()


def _f_template_dir(ctx: Context) -> str:
    if not ctx.template_dir:
        raise _FuncError("template path not available")
    return ctx.template_dir


def _f_timestamp(ctx: Context) -> str:
    return str(ctx.timestamp)


def _f_uuid(ctx: Context) -> str:
    import time

    from amibake.template import fixed

    if fixed.active():
        return fixed.FIXED_UUID

    b = os.urandom(12)
    unix = int(time.time()) & 0xFFFFFFFF
    return f"{unix:08x}-{b[0:2].hex()}-{b[2:4].hex()}-{b[4:6].hex()}-{b[6:8].hex()}{b[8:].hex()}"


def _f_user(ctx: Context, k: str) -> str:
    if k in ctx.user_vars:
        return ctx.user_vars[k]
    if ctx.allow_env:
        raise _FuncError(f"{ERR_VARIABLE_NOT_SET} {k}")
    return ""


def _f_packer_version(ctx: Context) -> str:
    if not ctx.packer_version:
        raise _FuncError("packer_version not available")
    return ctx.packer_version


def _network(name: str) -> Callable[..., str]:
    def impl(ctx: Context, *args: str) -> str:
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


def _f_sed(ctx: Context, expression: str, input_string: str) -> str:
    raise _FuncError(
        "template function `sed` is deprecated use `replace` or `replace_all` instead."
        "Documentation: https://www.packer.io/docs/templates/engine"
    )


def _f_build(ctx: Context, s: str) -> str:
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


def placeholder_build_data(keys: Collection[str]) -> dict[str, str]:
    """Build data whose every value is a placeholder: ``{{ build `X` }}`` renders ``{{.X}}``
    (what Packer gives provisioners while preparing, before the build data exists)."""
    return {k: f"Build_{k}. {PLACEHOLDER_MSG}" for k in keys}


def _f_replace_all(ctx: Context, old: str, new: str, src: str) -> str:
    return src.replace(old, new)


def _f_replace(ctx: Context, old: str, new: str, n: int, src: str) -> str:
    return src.replace(old, new, n if n >= 0 else -1)


def _f_upper(ctx: Context, s: str) -> str:
    # Go maps rune by rune (no "ß" -> "SS")
    return "".join(u if len(u := c.upper()) == 1 else c for c in s)


def _f_lower(ctx: Context, s: str) -> str:
    return "".join(c.lower()[0] for c in s)


# Go builtins (text/template/funcs.go), the commonly useful ones


def _b_and(ctx: Context, first: Any, *rest: Any) -> Any:
    for v in (first, *rest):
        if not _truth(v):
            return v
    return rest[-1] if rest else first


def _b_or(ctx: Context, first: Any, *rest: Any) -> Any:
    for v in (first, *rest):
        if _truth(v):
            return v
    return rest[-1] if rest else first


def _b_not(ctx: Context, v: Any) -> bool:
    return not _truth(v)


def _b_len(ctx: Context, v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode("utf-8", "surrogatepass"))
    if isinstance(v, Mapping | list | tuple):
        return len(v)
    raise _FuncError(f"len of type {_go_type(v)}")


def _b_index(ctx: Context, item: Any, *indexes: Any) -> Any:
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


def _b_print(ctx: Context, *args: Any) -> str:
    return _sprint(args)


def _b_println(ctx: Context, *args: Any) -> str:
    return " ".join(_go_format(a) for a in args) + "\n"


def _b_printf(ctx: Context, fmt: str, *args: Any) -> str:
    return sprintf(fmt, args)


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


def _b_eq(ctx: Context, a: Any, *bs: Any) -> bool:
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


def _b_ne(ctx: Context, a: Any, b: Any) -> bool:
    return not _b_eq(ctx, a, b)


def _b_lt(ctx: Context, a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka in ("invalid", "bool", "complex") or kb in ("invalid", "bool", "complex"):
        raise _FuncError("invalid type for comparison")
    if ka != kb:
        raise _FuncError("incompatible types for comparison")
    return bool(a < b)


def _b_le(ctx: Context, a: Any, b: Any) -> bool:
    return _b_lt(ctx, a, b) or _b_eq(ctx, a, b)


def _b_gt(ctx: Context, a: Any, b: Any) -> bool:
    return not _b_le(ctx, a, b)


def _b_ge(ctx: Context, a: Any, b: Any) -> bool:
    return not _b_lt(ctx, a, b)


def _b_html(ctx: Context, *args: Any) -> str:
    s = _sprint(args)
    rep = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\x00": "\ufffd"}
    return "".join(rep.get(c, c) for c in s)


def _b_js(ctx: Context, *args: Any) -> str:
    s = _sprint(args)
    rep = {
        "\\": "\\\\", "'": "\\'", '"': "\\\"", "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
        "=": "\\u003D", "\n": "\\u000A", "\r": "\\u000D", "\t": "\\u0009",
    }  # fmt: skip
    return "".join(rep.get(c, c) for c in s)


def _b_urlquery(ctx: Context, *args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_sprint(args), safe="")


def _unsupported_builtin(name: str) -> Callable[..., Any]:
    def impl(ctx: Context, *args: Any) -> Any:
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


@functools.lru_cache(maxsize=16)
def _functions_with(extra: frozenset[str]) -> frozenset[str]:
    return frozenset(_GO_BUILTINS) | frozenset(_PACKER_FUNCS) | extra


def _lookup_func(name: str, extra: Mapping[str, Callable[..., str]] | None = None) -> _Func | None:
    """Packer's function, else a plugin's (from ``extra``, the context's), else Go's builtin."""
    found = _PACKER_FUNCS.get(name)
    if found is None and extra and name in extra:
        found = _plugin_func(extra[name])
    return found or _GO_BUILTINS.get(name)


@functools.lru_cache(maxsize=32)
def _plugin_func(fn: Callable[..., str]) -> _Func:
    """A plugin's template function (string arguments, a string result) as the engine calls it."""
    n = len(inspect.signature(fn).parameters)
    return _Func((_STR,) * n, lambda ctx, *args: fn(*args))
