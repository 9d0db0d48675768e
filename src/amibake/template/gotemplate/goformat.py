"""Go's formatting of the values a template sees: ``fmt`` ``%v`` (``_go_format``), ``strconv.Quote``,
``fmt.Sprint`` and ``fmt.Sprintf`` for the verbs templates use, and Go's truth of a value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_GO_ESCAPES_REV = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(s: str) -> str:
    """``strconv.Quote``."""
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES_REV:
            out.append(_GO_ESCAPES_REV[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _go_rune(ch: str) -> str:
    """``fmt`` ``%#U``: ``U+0021 '!'``."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() else code


# ---------------------------------------------------------------------------------------------
# Values (Go's reflect/fmt, as far as templates see them)
# ---------------------------------------------------------------------------------------------


class _Invalid:
    """Go's zero ``reflect.Value``: a missing map key; prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


INVALID: Any = _Invalid()


def _go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "string"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, list | tuple):
        return "[]interface {}"
    if v is None:
        return "interface {}"
    return type(v).__name__


def _go_float(f: float) -> str:
    """``fmt`` ``%v`` of a float64: ``strconv.FormatFloat(f, "g", -1, 64)``."""
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if str(f).startswith("-") else "0"
    r = repr(f)
    sign = "-" if r.startswith("-") else ""
    mant, _, exp_s = r.lstrip("-").partition("e")
    exp = int(exp_s) if exp_s else 0
    int_part, _, frac = mant.partition(".")
    frac = frac.rstrip("0") if frac != "0" else ""
    digits = (int_part + frac).lstrip("0")
    # decimal exponent of the first significant digit
    if int_part.strip("0"):
        dp = len(int_part.lstrip("0")) + exp
    else:
        dp = exp - (len(frac) - len(frac.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    x = dp - 1
    if x < -4 or x >= 6:  # %v is shortest %g: exponent form below 1e-4 and from 1e+06 on
        m = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{m}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= len(digits):
        return f"{sign}{digits}{'0' * (dp - len(digits))}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def _go_format(v: Any) -> str:
    """``fmt.Sprint`` of one value (``%v``)."""
    if v is INVALID:
        return "<no value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, complex):
        im = _go_float(v.imag)
        return f"({_go_float(v.real)}{'' if im.startswith(('-', '+')) else '+'}{im}i)"
    if isinstance(v, Mapping):
        items = sorted(v.items(), key=lambda kv: str(kv[0]))
        return "map[" + " ".join(f"{_go_format(k)}:{_go_format(x)}" for k, x in items) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(_go_format(x) for x in v) + "]"
    return str(v)


def _truth(v: Any) -> bool:
    if v is INVALID or v is None:
        return False
    if isinstance(v, bool | int | float | complex | str | Mapping | list | tuple):
        return bool(v)
    return True


def _sprint(args: Sequence[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_go_format(a))
    return "".join(out)


def sprintf(fmt: str, args: Sequence[Any]) -> str:
    """``fmt.Sprintf`` for the verbs templates and ``env_var_format`` use: %v %s %d %q %t %x %%,
    with Go's ``%!verb(type=value)``, ``%!(MISSING)``, ``%!(EXTRA ...)`` and ``%!(NOVERB)`` for
    mismatches (flags and widths are not read). HCL's ``format`` follows cty, not Go's fmt."""
    out: list[str] = []
    i = 0
    argi = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%" or i + 1 >= len(fmt):
            out.append(c if c != "%" else "%!(NOVERB)")
            i += 1
            continue
        verb = fmt[i + 1]
        i += 2
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[argi]
        argi += 1
        is_int = isinstance(a, int) and not isinstance(a, bool)
        if verb in "vs" or (verb == "d" and is_int) or (verb == "t" and isinstance(a, bool)):
            out.append(_go_format(a))
        elif verb == "q" and isinstance(a, str):
            out.append(_go_quote(a))
        elif verb == "x" and isinstance(a, str):
            out.append(a.encode().hex())
        elif verb == "x" and isinstance(a, int) and not isinstance(a, bool):
            out.append(format(a, "x") if a >= 0 else "-" + format(-a, "x"))
        else:
            out.append(f"%!{verb}({_go_type(a)}={_go_format(a)})")
    if argi < len(args):
        extra = ", ".join(f"{_go_type(a)}={_go_format(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
