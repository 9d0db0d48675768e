"""HCL values as plain Python values, and HCL type constraints with their conversions.

Values: ``None`` (null), ``str``, ``int``/``float`` (number; integral numbers are ``int``),
``bool``, ``list`` (list, tuple and set), ``dict`` (map and object; iterated in key order, as cty
does) and :data:`UNKNOWN`, a value known only when the build runs (a data source not executed by
``validate``). Operations on an unknown value give an unknown value.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


class Unknown:
    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN: Any = Unknown()

class UnknownStr(str):
    """Packer's placeholder for an unknown value, as it goes into a plugin config. The type marks
    it: ``validate`` checks no value nobody knows yet (:mod:`amibake.template.hcl.unknowns`), while a
    template's own literal ``"<unknown>"`` is an ordinary string."""

    __slots__ = ()


#: what an unknown value becomes in a plugin config (Packer's ``hcl2shim`` placeholder)
UNKNOWN_PLACEHOLDER = UnknownStr("<unknown>")


class ConversionError(Exception):
    """A value that does not fit a type; the message says what was expected."""


def is_unknown(v: Any) -> bool:
    return v is UNKNOWN


def contains_unknown(v: Any) -> bool:
    if v is UNKNOWN:
        return True
    if isinstance(v, list):
        return any(contains_unknown(x) for x in v)
    if isinstance(v, dict):
        return any(contains_unknown(x) for x in v.values())
    return False


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if v is UNKNOWN:
        return "unknown"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "tuple"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def normalize_number(x: int | float) -> int | float:
    if isinstance(x, float) and math.isfinite(x) and x.is_integer() and abs(x) < 2**63:
        return int(x)
    return x


def number_to_string(x: int | float) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    x = normalize_number(x)
    if isinstance(x, int):
        return str(x)
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    s = repr(x)
    if "e" in s or "E" in s:
        s = format(Decimal(s), "f")
    return s


def to_string(v: Any) -> Any:
    if v is None or v is UNKNOWN or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return number_to_string(v)
    raise ConversionError(f"string required, but have {type_name(v)}")


def to_number(v: Any) -> Any:
    if v is None or v is UNKNOWN:
        return v
    if isinstance(v, bool):
        raise ConversionError("number required, but have bool")
    if isinstance(v, (int, float)):
        return normalize_number(v)
    if isinstance(v, str):
        s = v.strip()
        try:
            if s.lstrip("+-").isdigit():
                return int(s)
            f = float(s)
        except ValueError:
            raise ConversionError(f"a number is required, but have the string {v!r}") from None
        if math.isnan(f) or s.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise ConversionError(f"a number is required, but have the string {v!r}")
        return normalize_number(f)
    raise ConversionError(f"number required, but have {type_name(v)}")


def to_bool(v: Any) -> Any:
    if v is None or v is UNKNOWN or isinstance(v, bool):
        return v
    if isinstance(v, str):
        if v == "true":
            return True
        if v == "false":
            return False
        raise ConversionError(f'a bool is required ("true" or "false"), but have the string {v!r}')
    raise ConversionError(f"bool required, but have {type_name(v)}")


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


# --- type constraints ------------------------------------------------------------------------
# A type is a tuple: ("string",) ("number",) ("bool",) ("any",) ("list", T) ("set", T) ("map", T)
# ("tuple", [T...]) ("object", {name: (T, optional: bool, default)})

Type = tuple[Any, ...]
ANY: Type = ("any",)
STRING: Type = ("string",)
NUMBER: Type = ("number",)
BOOL: Type = ("bool",)


def type_string(t: Type) -> str:
    kind = t[0]
    if kind in ("string", "number", "bool", "any"):
        return str(kind)
    if kind in ("list", "set", "map"):
        return f"{kind}({type_string(t[1])})"
    if kind == "tuple":
        return "tuple([" + ", ".join(type_string(x) for x in t[1]) + "])"
    attrs = ", ".join(
        f"{k}={'optional(' + type_string(a[0]) + ')' if a[1] else type_string(a[0])}" for k, a in t[1].items()
    )
    return "object({" + attrs + "})"


def convert(v: Any, t: Type, path: str = "") -> Any:
    """Convert ``v`` to type ``t`` as cty's ``convert`` does; raises ConversionError."""
    where = f"{path}: " if path else ""
    kind = t[0]
    if v is UNKNOWN or kind == "any":
        return v
    if v is None:
        return None
    try:
        if kind == "string":
            return to_string(v)
        if kind == "number":
            return to_number(v)
        if kind == "bool":
            return to_bool(v)
    except ConversionError as e:
        raise ConversionError(f"{where}{e}") from None
    if kind in ("list", "set"):
        if isinstance(v, dict) or not isinstance(v, list):
            raise ConversionError(f"{where}{type_string(t)} required, but have {type_name(v)}")
        out = [convert(x, t[1], f"{path}[{i}]") for i, x in enumerate(v)]
        if kind == "set":
            uniq: list[Any] = []
            for x in out:
                if not any(equal(x, y) for y in uniq):
                    uniq.append(x)
            out = sort_set(uniq)
        return out
    if kind == "tuple":
        if not isinstance(v, list):
            raise ConversionError(f"{where}tuple required, but have {type_name(v)}")
        if len(v) != len(t[1]):
            raise ConversionError(f"{where}tuple required with {len(t[1])} elements, but have {len(v)}")
        return [convert(x, et, f"{path}[{i}]") for i, (x, et) in enumerate(zip(v, t[1]))]
    if kind == "map":
        if not isinstance(v, dict):
            raise ConversionError(f"{where}{type_string(t)} required, but have {type_name(v)}")
        return {k: convert(x, t[1], f"{path}[{k!r}]") for k, x in v.items()}
    if kind == "object":
        if not isinstance(v, dict):
            raise ConversionError(f"{where}object required, but have {type_name(v)}")
        res: dict[str, Any] = {}
        for name, (at, optional, default) in t[1].items():
            if name in v and v[name] is not None:
                res[name] = convert(v[name], at, f"{path}.{name}" if path else name)
            elif optional or name in v:
                res[name] = convert(default, at, name) if default is not None else None
            else:
                raise ConversionError(f'{where}attribute "{name}" is required')
        return res
    raise ConversionError(f"{where}unsupported type {kind}")  # pragma: no cover


def sort_set(items: list[Any]) -> list[Any]:
    """Sets iterate in a stable order: strings lexically, numbers numerically."""
    try:
        return sorted(items, key=lambda x: (type_name(x), x if isinstance(x, (str, int, float)) else str(x)))
    except TypeError:
        return items


def to_plain(v: Any) -> Any:
    """A value as it goes into a plugin config: unknown values become Packer's placeholder."""
    if v is UNKNOWN:
        return UNKNOWN_PLACEHOLDER
    if isinstance(v, list):
        return [to_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: to_plain(x) for k, x in v.items()}
    return v
