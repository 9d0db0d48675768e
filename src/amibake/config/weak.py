"""Packer's weak typing (mapstructure ``WeaklyTypedInput`` plus Packer's decode hooks) as pydantic types.

The rules, as mapstructure applies them to a template's JSON values:

* string <- bool (``"1"``/``"0"``), int, float (no exponent);
* int <- string (Go ``strconv.ParseInt`` base 0: ``"22"``, ``"0x16"``, ``"026"`` octal; ``""`` is 0),
  bool (1/0), float (truncated);
* float <- string (``""`` is 0), int, bool;
* bool <- string (Go ``strconv.ParseBool``: 1 t T TRUE true True 0 f F FALSE false False; ``""`` is
  false), number (non-zero is true);
* trilean (a bool that may be unset) <- bool, or a string as above where ``""`` stays unset;
* list <- a string split on ``,`` (``""`` is the empty list), an empty map, or any other single value
  lifted to a one-element list;
* map <- a list of maps merged in order (how HCL1-era templates wrote maps), an empty list;
* struct <- a map only (amibake also takes a list of exactly one map, the shape of an HCL2 block).

``null`` leaves an option at its default (dropped by :class:`amibake.config.base.ConfigModel`).
Each failure raises a ``PydanticCustomError`` of type ``weak`` whose context carries ``what`` (the
message without the offending value) and ``shown`` (the value), so secrets can be redacted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

_GO_INT = re.compile(r"[+-]?[0-9A-Za-z_]+")
_INT64 = 2**63


def kind_of(value: Any) -> str:
    """The JSON kind of a value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def show(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(what: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError("weak", "{what}: {shown}", {"what": what, "shown": show(value)})


def unconvertible(expected: str, value: Any) -> PydanticCustomError:
    return fail(f"expected {expected}, got unconvertible type '{kind_of(value)}'", value)


def go_float_string(value: float) -> str:
    """Go's ``strconv.FormatFloat(f, 'f', -1, 64)``: shortest repr, never an exponent."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def parse_go_int(text: str) -> int:
    """Go's ``strconv.ParseInt(s, 0, 64)``; raises ValueError with Go's reason."""
    if not _GO_INT.fullmatch(text):
        raise ValueError("invalid syntax")
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXbBoO":
        body = "0o" + body[1:]  # a leading 0 means octal in Go
    try:
        number = sign * int(body, 0)
    except ValueError:
        raise ValueError("invalid syntax") from None
    if not -_INT64 <= number < _INT64:
        raise ValueError("value out of range")
    return number


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def to_str(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_string(value)
    raise unconvertible("a string", value)


def to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise unconvertible("an int", value)
        return int(value)
    if isinstance(value, str):
        try:
            return parse_go_int(value or "0")
        except ValueError as exc:
            raise fail(f"cannot parse as int ({exc})", value) from None
    raise unconvertible("an int", value)


def to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            if value.strip() != value or "_" in value.strip("_"):
                raise ValueError
            return float(value or "0")
        except ValueError:
            raise fail("cannot parse as float (invalid syntax)", value) from None
    raise unconvertible("a float", value)


def to_bool(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        if value == "" or value in _FALSE:
            return False
        if value in _TRUE:
            return True
        raise fail("cannot parse as bool (expected true or false)", value)
    raise unconvertible("a bool", value)


def to_trilean(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value == "":
            return None
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise fail("cannot parse as bool (expected true or false)", value)
    if isinstance(value, int | float) and value in (0, 1, 2):
        # Packer's Trilean is a uint8: 0 unset, 1 true, 2 false
        return {0: None, 1: True, 2: False}[int(value)]
    raise unconvertible("a bool", value)


def to_list(value: Any) -> Any:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, str):
        return value.split(",") if value else []
    if isinstance(value, Mapping) and not value:
        return []
    return [value]


def to_map(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list | tuple):
        merged: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, Mapping):
                raise unconvertible("a map", value)
            merged.update(item)
        return merged
    raise unconvertible("a map", value)


def to_struct(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list | tuple) and len(value) == 1 and isinstance(value[0], Mapping):
        return value[0]
    raise unconvertible("a map (an object with options)", value)


AsStr = BeforeValidator(to_str)
AsInt = BeforeValidator(to_int)
AsList = BeforeValidator(to_list)
AsMap = BeforeValidator(to_map)
AsStruct = BeforeValidator(to_struct)

Str = Annotated[str, AsStr]
Int = Annotated[int, AsInt]
Float = Annotated[float, BeforeValidator(to_float)]
Bool = Annotated[bool, BeforeValidator(to_bool)]
#: Packer's ``config.Trilean``: None when unset
Trilean = Annotated[bool | None, BeforeValidator(to_trilean)]
StrList = Annotated[list[Str], AsList]
IntList = Annotated[list[Int], AsList]
StrListList = Annotated[list[StrList], AsList]
StrMap = Annotated[dict[str, Str], AsMap]

M = TypeVar("M")
#: a repeatable block (``launch_block_device_mappings``, ``statement`` ...): ``StructList[BlockDevice]``
StructList = Annotated[list[Annotated[M, AsStruct]], AsList]
