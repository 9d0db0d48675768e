"""Collection functions: lists, maps and sets (``length``, ``lookup``, ``merge``, ``setproduct``, ...)."""

from __future__ import annotations

import math
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    _bounded,
    _int,
    _list,
    _map,
    _n,
    _s,
    _unknown_in,
)
from amibake.template.hcl.values import (
    UNKNOWN,
    equal,
    normalize_number,
    sort_set,
    to_bool,
    type_name,
)


def length(v: Any) -> Any:
    if v is UNKNOWN:
        return UNKNOWN
    if isinstance(v, str):
        return len(v)
    if isinstance(v, (list, dict)):
        return len(v)
    raise FunctionError(
        f"argument must be a string, a collection type, or a structural type, not {type_name(v)}"
    )


def coalesce(*args: Any) -> Any:
    for a in args:
        if a is UNKNOWN:
            return UNKNOWN
        if a is not None and a != "":
            return a
    raise FunctionError("no non-null, non-empty-string arguments")


def coalescelist(*args: Any) -> Any:
    for a in args:
        if _list(a, "arguments"):
            return a
    raise FunctionError("no non-empty list arguments")


def compact(lst: Any) -> list[Any]:
    return [x for x in _list(lst) if x is not None and x != ""]


def concat(*lists: Any) -> list[Any]:
    out: list[Any] = []
    for lst in lists:
        out.extend(_list(lst, "all arguments"))
    return out


def contains(lst: Any, v: Any) -> Any:
    if _unknown_in(lst, v):
        return UNKNOWN
    return any(equal(x, v) for x in _list(lst))


def distinct(lst: Any) -> list[Any]:
    out: list[Any] = []
    for x in _list(lst):
        if not any(equal(x, y) for y in out):
            out.append(x)
    return out


def element(lst: Any, index: Any) -> Any:
    items = _list(lst)
    if not items:
        raise FunctionError("cannot use element function with an empty list")
    i = _int(index, "index")
    if i < 0:
        raise FunctionError("cannot use element function with a negative index")
    return items[i % len(items)]


def index_(lst: Any, v: Any) -> Any:
    for i, x in enumerate(_list(lst)):
        if equal(x, v):
            return i
    raise FunctionError("item not found")


def chunklist(lst: Any, size: Any) -> list[Any]:
    items, n = _list(lst), _int(size, "size")
    if n < 0:
        raise FunctionError("the size argument must be positive")
    if n == 0:
        return [items]
    return [items[i : i + n] for i in range(0, len(items), n)]


def flatten(lst: Any) -> list[Any]:
    out: list[Any] = []
    for x in _list(lst):
        if isinstance(x, list):
            out.extend(flatten(x))
        else:
            out.append(x)
    return out


def keys(m: Any) -> Any:
    if m is UNKNOWN:
        return UNKNOWN
    return sorted(_map(m))


def values(m: Any) -> Any:
    if m is UNKNOWN:
        return UNKNOWN
    d = _map(m)
    return [d[k] for k in sorted(d)]


def lookup(m: Any, key: Any, *default: Any) -> Any:
    if _unknown_in(m, key):
        return UNKNOWN
    if len(default) > 1:
        raise FunctionError("lookup() takes 2 or 3 arguments")
    d, k = _map(m), _s(key, "key")
    if k in d:
        return d[k]
    if default:
        return default[0]
    raise FunctionError(f'lookup failed to find key "{k}"')


def merge(*maps: Any) -> Any:
    out: dict[str, Any] = {}
    for m in maps:
        if m is None:
            continue
        if m is UNKNOWN:
            return UNKNOWN
        out.update(_map(m, "arguments"))
    return out


def range_(*args: Any) -> list[Any]:
    nums = [_n(a) for a in args]
    start: int | float
    end: int | float
    step: int | float
    if len(nums) == 1:
        start, end, step = 0, nums[0], 1
    elif len(nums) == 2:
        start, end, step = nums[0], nums[1], 1 if nums[1] >= nums[0] else -1
    elif len(nums) == 3:
        start, end, step = nums
    else:
        raise FunctionError("range() takes 1 to 3 arguments")
    if step == 0:
        raise FunctionError("step must not be zero")
    if (step > 0 and start > end) or (step < 0 and start < end):
        raise FunctionError("the step sign does not go from start to limit")
    out: list[Any] = []
    x = start
    while (x < end) if step > 0 else (x > end):
        out.append(normalize_number(x))
        if len(out) > 1024:
            raise FunctionError("more than 1024 values were generated")
        x += step
    return out


def reverse(lst: Any) -> list[Any]:
    return list(reversed(_list(lst)))


def setintersection(first: Any, *rest: Any) -> list[Any]:
    out = distinct(first)
    for r in rest:
        out = [x for x in out if any(equal(x, y) for y in _list(r))]
    return sort_set(out)


def setunion(*sets: Any) -> list[Any]:
    return sort_set(distinct(concat(*sets)))


def setproduct(*sets: Any) -> list[Any]:
    if not sets:
        raise FunctionError("at least one argument is required")
    total = 1
    for s in sets:
        total *= len(_list(s))
        if total:
            _bounded(total * len(sets), "the product")
    out: list[list[Any]] = [[]]
    for s in sets:
        out = [[*p, x] for p in out for x in _list(s)]
    return out


def slice_(lst: Any, start: Any, end: Any) -> list[Any]:
    items = _list(lst)
    a, b = _int(start, "start_index"), _int(end, "end_index")
    if a < 0 or b > len(items) or a > b:
        raise FunctionError(f"invalid slice indices [{a}:{b}] for a list of {len(items)} elements")
    return items[a:b]


def sort_(lst: Any) -> list[Any]:
    return sorted(_s(x, "list elements") for x in _list(lst))


def zipmap(ks: Any, vs: Any) -> dict[str, Any]:
    k, v = _list(ks, "keys"), _list(vs, "values")
    if len(k) != len(v):
        raise FunctionError("number of keys does not match number of values")
    return {_s(a, "keys"): b for a, b in zip(k, v)}


def alltrue(lst: Any) -> Any:
    return all(to_bool(x) is True for x in _list(lst))


def anytrue(lst: Any) -> Any:
    return any(to_bool(x) is True for x in _list(lst))


def sum_(lst: Any) -> Any:
    items = _list(lst)
    if not items:
        raise FunctionError("cannot sum an empty list")
    return (
        normalize_number(math.fsum(_n(x) for x in items))
        if any(isinstance(_n(x), float) for x in items)
        else sum(_int(x) for x in items)
    )
