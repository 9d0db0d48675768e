"""Packer's HCL2 function library (``hcl2template/functions.go``), on plain Python values.

Functions raise :class:`FunctionError` (or :class:`ConversionError`) for bad arguments; the
evaluator adds the call's position. ``can`` and ``try`` live in the evaluator (their arguments are
evaluated lazily); ``convert`` takes a type expression and is handled there too. ``env`` exists
only in variable defaults, as in Packer. Packer has no ``tostring``/``tolist``-style functions.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import ipaddress
import json
import math
import os
import re
import stat
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.values import (
    UNKNOWN,
    ConversionError,
    contains_unknown,
    equal,
    normalize_number,
    number_to_string,
    sort_set,
    to_bool,
    to_number,
    to_string,
    type_name,
)

Func = Callable[..., Any]

#: the largest string or list a function may build: beyond it, a template asks for gigabytes
#: (``indent(1e11, ...)``, ``format("%999999999999d", 1)``, a ``setproduct`` of many lists) and is
#: refused with an error instead of exhausting memory
MAX_RESULT = 16 << 20
#: Go's fmt refuses widths and precisions above 1e6 (``%!(BADWIDTH)``)
MAX_FMT_WIDTH = 1_000_000
#: ``yamldecode``: input size, and how many values a document may expand to through its aliases
MAX_YAML_BYTES = 8 << 20
MAX_YAML_VALUES = 1_000_000
#: ``file``/``filebase64``: what a template may read
MAX_FILE_BYTES = 256 << 20


def _bounded(n: int, what: str) -> int:
    if n > MAX_RESULT:
        raise FunctionError(f"{what} would be {n:,} long, more than the {MAX_RESULT:,} amibake allows")
    return n


def _s(v: Any, what: str = "argument") -> str:
    if v is None:
        raise FunctionError(f"{what} must not be null")
    s = to_string(v)
    if not isinstance(s, str):
        raise FunctionError(f"{what}: string required")
    return s


def _n(v: Any, what: str = "argument") -> int | float:
    if v is None:
        raise FunctionError(f"{what} must not be null")
    n = to_number(v)
    if not isinstance(n, (int, float)):
        raise FunctionError(f"{what}: number required")
    return n


def _int(v: Any, what: str = "argument") -> int:
    n = _n(v, what)
    if not isinstance(n, int):
        raise FunctionError(f"{what} must be a whole number")
    return n


def _list(v: Any, what: str = "argument") -> list[Any]:
    if not isinstance(v, list):
        raise FunctionError(f"{what} must be a list, not {type_name(v)}")
    return v


def _map(v: Any, what: str = "argument") -> dict[str, Any]:
    if not isinstance(v, dict):
        raise FunctionError(f"{what} must be a map or object, not {type_name(v)}")
    return v


def _unknown_in(*args: Any) -> bool:
    return any(contains_unknown(a) for a in args)


# --- strings ---------------------------------------------------------------------------------

_FMT_VERB = re.compile(r"%(%|[-+# 0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[vdsfeEgGqxXbot])")


def format_(fmt: Any, *args: Any) -> Any:
    if _unknown_in(fmt, *args):
        return UNKNOWN
    f = _s(fmt, "format")
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _FMT_VERB.finditer(f):
        out.append(f[pos : m.start()])
        pos = m.end()
        spec = m.group(1)
        if spec == "%":
            out.append("%")
            continue
        if argi >= len(args):
            raise FunctionError(f"not enough arguments for format string {f!r}")
        a = args[argi]
        argi += 1
        verb, flags = spec[-1], spec[:-1]
        for num in re.findall(r"\d+", flags):
            if len(num) > 7 or int(num) > MAX_FMT_WIDTH:
                raise FunctionError(f"%{spec[:20]}: width or precision too large (at most {MAX_FMT_WIDTH:,})")
        if verb in "vs":
            if isinstance(a, (list, dict)):
                text = json.dumps(a, separators=(",", ":"))
            else:
                text = "null" if a is None else _s(a)
            out.append(("%" + flags + "s") % text)
        elif verb == "q":
            out.append(json.dumps(_s(a)))
        elif verb in "dxXbo":
            n = _n(a)
            if not isinstance(n, int):
                raise FunctionError(f"%{verb} requires a whole number, got {number_to_string(n)}")
            if verb == "b":
                out.append(("%" + flags + "s") % format(n, "b"))
            else:
                out.append(("%" + flags + verb) % n)
        elif verb == "t":
            b = to_bool(a)
            out.append("true" if b else "false")
        else:
            out.append(("%" + flags + verb) % float(_n(a)))
    out.append(f[pos:])
    if argi < len(args):
        raise FunctionError(f"too many arguments for format string {f!r}")
    return "".join(out)


def formatlist(fmt: Any, *args: Any) -> Any:
    lengths = {len(a) for a in args if isinstance(a, list)}
    if len(lengths) > 1:
        raise FunctionError("all list arguments must have the same length")
    n = lengths.pop() if lengths else 1
    return [format_(fmt, *[a[i] if isinstance(a, list) else a for a in args]) for i in range(n)]


def indent(spaces: Any, s: Any) -> str:
    n, text = _int(spaces, "spaces"), _s(s)
    _bounded(len(text) + max(n, 0) * text.count("\n"), "the indented string")
    pad = " " * n
    return text.replace("\n", "\n" + pad)


def join(sep: Any, *lists: Any) -> Any:
    if _unknown_in(sep, *lists):
        return UNKNOWN
    items: list[str] = []
    for lst in lists:
        for x in _list(lst, "lists"):
            if x is None:
                raise FunctionError("cannot join a null element")
            items.append(_s(x))
    return _s(sep).join(items)


def regex(pattern: Any, s: Any) -> Any:
    if _unknown_in(pattern, s):
        return UNKNOWN
    rx = _compile(pattern)
    m = rx.search(_s(s))
    if m is None:
        raise FunctionError("pattern did not match any part of the given string")
    return _match_value(rx, m)


def regexall(pattern: Any, s: Any) -> Any:
    if _unknown_in(pattern, s):
        return UNKNOWN
    rx = _compile(pattern)
    out, last_end = [], -1
    for m in rx.finditer(_s(s)):
        if m.start() == m.end() == last_end:
            continue  # Go ignores an empty match abutting the previous match
        out.append(_match_value(rx, m))
        last_end = m.end()
    return out


def _compile(pattern: Any) -> Any:
    """Go's regexp is RE2: linear time in the input, and its own syntax (no look-around or
    back-references; ``\\z``, ``(?i)``, ``\\pL``). google-re2 is the same engine: a pattern Packer
    accepts is accepted here and none backtracks (``(a+)+$`` on a long string is instant)."""
    import re2

    p = _s(pattern, "pattern")
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own copy of the error on stderr
    try:
        return re2.compile(p, options=options)
    except re2.error as e:
        detail = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise FunctionError(f"invalid regular expression pattern: {detail}") from None


def _match_value(rx: Any, m: Any) -> Any:
    if rx.groupindex:
        return {k: m.group(k) for k in rx.groupindex}
    if rx.groups:
        return list(m.groups())
    return m.group(0)


def regex_replace(s: Any, pattern: Any, repl: Any) -> Any:
    if _unknown_in(s, pattern, repl):
        return UNKNOWN
    rx = _compile(pattern)
    # Go's $1 / ${1} / ${name} references
    r = re.sub(
        r"\$\{(\w+)\}|\$(\w+)",
        lambda m: "\\g<" + (m.group(1) or m.group(2)) + ">",
        _s(repl).replace("\\", "\\\\"),
    )
    try:
        return rx.sub(r, _s(s))
    except (re.error, IndexError, ValueError) as e:
        raise FunctionError(f"invalid replacement: {e}") from None


def replace(s: Any, sub: Any, repl: Any) -> Any:
    if _unknown_in(s, sub, repl):
        return UNKNOWN
    subs = _s(sub)
    if len(subs) >= 2 and subs.startswith("/") and subs.endswith("/"):
        return regex_replace(s, subs[1:-1], repl)
    return _s(s).replace(subs, _s(repl))


def split(sep: Any, s: Any) -> Any:
    if _unknown_in(sep, s):
        return UNKNOWN
    sp, text = _s(sep), _s(s)
    if sp == "":
        return list(text)
    return text.split(sp)


def substr(s: Any, offset: Any, length: Any) -> str:
    text = _s(s)
    off, ln = _int(offset, "offset"), _int(length, "length")
    if off < 0:
        off += len(text)
        if off < 0:
            raise FunctionError("offset is out of range")
    if off > len(text):
        raise FunctionError("offset is greater than the length of the string")
    return text[off:] if ln < 0 else text[off : off + ln]


def title(s: Any) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), _s(s))


def trim(s: Any, chars: Any) -> str:
    return _s(s).strip(_s(chars))


def chomp(s: Any) -> str:
    return re.sub(r"(\r\n|\n|\r)+$", "", _s(s))


def strrev(s: Any) -> str:
    return _s(s)[::-1]


def trimprefix(s: Any, p: Any) -> str:
    text, pre = _s(s), _s(p)
    return text[len(pre) :] if pre and text.startswith(pre) else text


def trimsuffix(s: Any, p: Any) -> str:
    text, suf = _s(s), _s(p)
    return text[: -len(suf)] if suf and text.endswith(suf) else text


# --- collections -----------------------------------------------------------------------------


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


# --- numbers ---------------------------------------------------------------------------------


def parseint(s: Any, base: Any) -> int:
    b = _int(base, "base")
    if not 2 <= b <= 62:
        raise FunctionError("base must be a whole number between 2 and 62 inclusive")
    try:
        return int(_s(s), b)
    except ValueError:
        raise FunctionError(f"cannot parse {s!r} as a base {b} integer") from None


def _log(x: Any, base: Any) -> Any:
    return normalize_number(math.log(_n(x)) / math.log(_n(base)))


# --- encoding --------------------------------------------------------------------------------


def base64decode(s: Any) -> Any:
    try:
        return base64.b64decode(_s(s), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as e:
        raise FunctionError(f"failed to decode base64 data: {e}") from None


def base64encode(s: Any) -> str:
    return base64.b64encode(_s(s).encode()).decode()


def base64gzip(s: Any) -> str:
    return base64.b64encode(gzip.compress(_s(s).encode(), mtime=0)).decode()


def jsonencode(v: Any) -> Any:
    if contains_unknown(v):
        return UNKNOWN
    return (
        json.dumps(_sorted_obj(v), separators=(",", ":"), ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _sorted_obj(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _sorted_obj(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted_obj(x) for x in v]
    return v


def _from_json(v: Any) -> Any:
    if isinstance(v, float):
        return normalize_number(v)
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _from_json(x) for k, x in v.items()}
    return v


def jsondecode(s: Any) -> Any:
    if s is UNKNOWN:
        return UNKNOWN
    try:
        return _from_json(json.loads(_s(s)))
    except json.JSONDecodeError as e:
        raise FunctionError(f"invalid JSON: {e}") from None


def yamldecode(s: Any) -> Any:
    if s is UNKNOWN:
        return UNKNOWN
    import yaml

    text = _s(s)
    if len(text) > MAX_YAML_BYTES:
        raise FunctionError(f"the YAML text is {len(text):,} long, more than the {MAX_YAML_BYTES:,} allowed")
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        if len(nodes) > 1:
            raise FunctionError("the string contains more than one YAML document")
        if not nodes or nodes[0] is None:
            return None
        _yaml_size(nodes[0])
        return _from_yaml(yaml.SafeLoader("").construct_document(nodes[0]))
    except yaml.MarkedYAMLError as e:
        # the problem and where, never an excerpt of the text (it may be a sensitive value)
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FunctionError(f"invalid YAML: {e.problem or e.context}{where}") from None
    except yaml.YAMLError as e:
        raise FunctionError(f"invalid YAML: {type(e).__name__}") from None
    except RecursionError:
        raise FunctionError("invalid YAML: the document nests too deeply") from None


def _yaml_size(root: Any) -> int:
    """How many values the document expands to, aliases expanded (a "billion laughs" bomb is
    refused before it is built); a node that contains itself is refused too (Go's yaml.v2 says
    "excessive aliasing" for both)."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise FunctionError("invalid YAML: an alias refers to a node that contains it")
        active.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(c) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            n += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if n > MAX_YAML_VALUES:
            raise FunctionError(
                f"invalid YAML: the document expands to more than {MAX_YAML_VALUES:,} values "
                "through its aliases"
            )
        sizes[key] = n
        return n

    return size(root)


def _from_yaml(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_from_yaml(x) for x in v]
    if isinstance(v, dict):
        return {to_string(k) if not isinstance(k, str) else k: _from_yaml(x) for k, x in v.items()}
    if isinstance(v, float):
        return normalize_number(v)
    if v is None or isinstance(v, (str, int, bool)):
        return v
    return str(v)


def yamlencode(v: Any) -> Any:
    if contains_unknown(v):
        return UNKNOWN
    import yaml

    return yaml.safe_dump(_sorted_obj(v), default_flow_style=False, sort_keys=True, allow_unicode=True)


def csvdecode(s: Any) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(_s(s))))
    if not rows:
        raise FunctionError("missing header line")
    header, out = rows[0], []
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise FunctionError(f"line {i}: wrong number of fields")
        out.append(dict(zip(header, row)))
    return out


def urlencode(s: Any) -> str:
    return urllib.parse.quote_plus(_s(s))


def textencodebase64(s: Any, enc: Any) -> str:
    try:
        return base64.b64encode(_s(s).encode(_s(enc))).decode()
    except LookupError:
        raise FunctionError(f"{enc!r} is not a supported IANA encoding name") from None
    except UnicodeEncodeError as e:
        raise FunctionError(f"the given string contains characters that cannot be encoded: {e}") from None


def textdecodebase64(s: Any, enc: Any) -> str:
    try:
        return base64.b64decode(_s(s), validate=True).decode(_s(enc))
    except LookupError:
        raise FunctionError(f"{enc!r} is not a supported IANA encoding name") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise FunctionError(f"cannot decode: {e}") from None


# --- hashes and ids --------------------------------------------------------------------------


def _hash(name: str) -> Func:
    def f(s: Any) -> str:
        return hashlib.new(name, _s(s).encode()).hexdigest()

    f.__name__ = name
    return f


def bcrypt_(s: Any, *cost: Any) -> str:
    try:
        import bcrypt
    except ImportError:
        raise FunctionError("bcrypt() needs the Python 'bcrypt' package, which is not installed") from None
    from amibake.template import fixed

    rounds = _int(cost[0], "cost") if cost else 10
    salt = bcrypt.gensalt(rounds, prefix=b"2a")
    if fixed.active():  # the content fingerprint: a fixed salt
        salt = f"$2a${rounds:02d}${fixed.FIXED_BCRYPT_SALT}".encode()
    return str(bcrypt.hashpw(_s(s).encode(), salt).decode())


def uuidv4() -> str:
    from amibake.template import fixed

    return fixed.FIXED_UUID if fixed.active() else str(uuid.uuid4())


def uuidv5(namespace: Any, name: Any) -> str:
    ns = _s(namespace)
    known = {
        "dns": uuid.NAMESPACE_DNS,
        "url": uuid.NAMESPACE_URL,
        "oid": uuid.NAMESPACE_OID,
        "x500": uuid.NAMESPACE_X500,
    }
    try:
        nsu = known[ns] if ns in known else uuid.UUID(ns)
    except ValueError:
        raise FunctionError(f"uuidv5() doesn't support namespace {ns!r}") from None
    return str(uuid.uuid5(nsu, _s(name)))


# --- ip networks -----------------------------------------------------------------------------


def _net(prefix: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_s(prefix), strict=False)
    except ValueError as e:
        raise FunctionError(f"invalid CIDR expression: {e}") from None


def cidrhost(prefix: Any, hostnum: Any) -> str:
    net, n = _net(prefix), _int(hostnum, "hostnum")
    size = net.num_addresses
    if n < -size or n >= size:
        raise FunctionError(f"prefix {prefix} does not accommodate host number {n}")
    base = int(net.network_address) + (n if n >= 0 else size + n)
    return str(ipaddress.ip_address(base))


def cidrnetmask(prefix: Any) -> str:
    net = _net(prefix)
    if net.version != 4:
        raise FunctionError("only IPv4 networks have a netmask")
    return str(net.netmask)


def cidrsubnet(prefix: Any, newbits: Any, netnum: Any) -> str:
    net, nb, nn = _net(prefix), _int(newbits, "newbits"), _int(netnum, "netnum")
    newlen = net.prefixlen + nb
    if nb < 0 or newlen > net.max_prefixlen:
        raise FunctionError(f"insufficient address space to extend prefix of {net.prefixlen} by {nb}")
    if nn < 0 or nn >= 2**nb:
        raise FunctionError(f"prefix extension of {nb} does not accommodate a subnet numbered {nn}")
    base = int(net.network_address) + (nn << (net.max_prefixlen - newlen))
    return f"{ipaddress.ip_address(base)}/{newlen}"


def cidrsubnets(prefix: Any, *newbits: Any) -> list[str]:
    net = _net(prefix)
    out: list[str] = []
    cur = int(net.network_address)
    end = int(net.broadcast_address)
    for nb in newbits:
        newlen = net.prefixlen + _int(nb, "newbits")
        if newlen > net.max_prefixlen or newlen < net.prefixlen:
            raise FunctionError(f"would extend prefix to {newlen} bits, which is too long")
        size = 1 << (net.max_prefixlen - newlen)
        cur = (cur + size - 1) // size * size
        if cur + size - 1 > end:
            raise FunctionError(
                f"not enough remaining address space for a subnet with a prefix of {newlen} bits"
            )
        out.append(f"{ipaddress.ip_address(cur)}/{newlen}")
        cur += size
    return out


# --- date and time ---------------------------------------------------------------------------


def _rfc3339(ts: Any) -> datetime:
    s = _s(ts, "timestamp")
    try:
        if not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", s):
            raise ValueError
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise FunctionError(f'not a valid RFC3339 timestamp: "{s}"') from None


def _rfc3339_str(t: datetime) -> str:
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += ("." + f"{t.microsecond:06d}").rstrip("0")
    off = t.utcoffset()
    if not off:
        return s + "Z"
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"{s}{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


_FORMATDATE = re.compile(
    r"'[^']*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|AA|aa|mm|m|ss|s|ZZZZZ|ZZZZ|ZZZ|Z|[A-Za-z]+|[^A-Za-z']+"
)


def formatdate(fmt: Any, ts: Any) -> Any:
    if _unknown_in(fmt, ts):
        return UNKNOWN
    t, f = _rfc3339(ts), _s(fmt, "format")
    off = t.utcoffset() or timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    out = []
    for m in _FORMATDATE.finditer(f):
        tok = m.group(0)
        table = {
            "YYYY": f"{t.year:04d}",
            "YY": f"{t.year % 100:02d}",
            "MMMM": t.strftime("%B"),
            "MMM": t.strftime("%b"),
            "MM": f"{t.month:02d}",
            "M": str(t.month),
            "DD": f"{t.day:02d}",
            "D": str(t.day),
            "EEEE": t.strftime("%A"),
            "EEE": t.strftime("%a"),
            "hh": f"{t.hour:02d}",
            "h": str(t.hour),
            "HH": f"{(t.hour % 12) or 12:02d}",
            "H": str((t.hour % 12) or 12),
            "AA": "AM" if t.hour < 12 else "PM",
            "aa": "am" if t.hour < 12 else "pm",
            "mm": f"{t.minute:02d}",
            "m": str(t.minute),
            "ss": f"{t.second:02d}",
            "s": str(t.second),
            "ZZZZZ": f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}",
            "ZZZZ": f"{sign}{abs(mins) // 60:02d}{abs(mins) % 60:02d}",
            "ZZZ": "UTC" if mins == 0 else f"{sign}{abs(mins) // 60:02d}{abs(mins) % 60:02d}",
            "Z": "Z" if mins == 0 else f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}",
        }
        if tok in table:
            out.append(table[tok])
        elif tok.startswith("'"):
            out.append(tok[1:-1])
        elif tok[0].isalpha():
            raise FunctionError(f"invalid date format verb {tok!r}")
        else:
            out.append(tok)
    return "".join(out)


def parse_duration(s: str) -> timedelta:
    """Go's ``time.ParseDuration`` (the one parser, :mod:`amibake.config.durations`), around blanks
    trimmed, with this function's own message: Packer's ``timeadd`` neither trims nor words it so."""
    from amibake.config.durations import DurationError, parse_duration_ns

    try:
        return timedelta(microseconds=parse_duration_ns(s.strip()) / 1000)
    except DurationError:
        raise FunctionError(f'invalid duration "{s}"') from None


def timeadd(ts: Any, duration: Any) -> str:
    return _rfc3339_str(_rfc3339(ts) + parse_duration(_s(duration, "duration")))


_GO_LAYOUT = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|-07:00|-0700|-07|Z07:00|Z0700|\.0+|\.9+|01|02|_2|03|04|05|06|15|PM|pm|1|2|3|4|5"
)


def go_time_format(t: datetime, layout: str) -> str:
    off = t.utcoffset() or timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    hhmm = (abs(mins) // 60, abs(mins) % 60)

    def tok(m: re.Match[str]) -> str:
        k = m.group(0)
        if k.startswith(".0"):
            return "." + f"{t.microsecond:06d}{'0' * 3}"[: len(k) - 1]
        if k.startswith(".9"):
            frac = f"{t.microsecond:06d}".rstrip("0")[: len(k) - 1]
            return "." + frac if frac else ""
        zulu = mins == 0
        return {
            "January": t.strftime("%B"),
            "Jan": t.strftime("%b"),
            "Monday": t.strftime("%A"),
            "Mon": t.strftime("%a"),
            "MST": "UTC" if zulu else t.strftime("%Z") or f"{sign}{hhmm[0]:02d}{hhmm[1]:02d}",
            "2006": f"{t.year:04d}",
            "06": f"{t.year % 100:02d}",
            "01": f"{t.month:02d}",
            "1": str(t.month),
            "02": f"{t.day:02d}",
            "_2": f"{t.day:2d}",
            "2": str(t.day),
            "15": f"{t.hour:02d}",
            "03": f"{(t.hour % 12) or 12:02d}",
            "3": str((t.hour % 12) or 12),
            "04": f"{t.minute:02d}",
            "4": str(t.minute),
            "05": f"{t.second:02d}",
            "5": str(t.second),
            "PM": "AM" if t.hour < 12 else "PM",
            "pm": "am" if t.hour < 12 else "pm",
            "-07:00": f"{sign}{hhmm[0]:02d}:{hhmm[1]:02d}",
            "-0700": f"{sign}{hhmm[0]:02d}{hhmm[1]:02d}",
            "-07": f"{sign}{hhmm[0]:02d}",
            "Z07:00": "Z" if zulu else f"{sign}{hhmm[0]:02d}:{hhmm[1]:02d}",
            "Z0700": "Z" if zulu else f"{sign}{hhmm[0]:02d}{hhmm[1]:02d}",
        }[k]

    return _GO_LAYOUT.sub(tok, layout)


def _strftime(t: datetime, fmt: str) -> str:
    # github.com/jehiah/go-strftime supports the common C directives; unknown ones pass through
    try:
        return t.strftime(fmt)
    except ValueError as e:
        raise FunctionError(f"invalid strftime format: {e}") from None


# --- filesystem ------------------------------------------------------------------------------


def _fs(basedir: Path) -> dict[str, Func]:
    def resolve(p: Any) -> Path:
        path = Path(os.path.expanduser(_s(p, "path")))
        return path if path.is_absolute() else basedir / path

    def read(p: Any) -> bytes:
        """A regular file's bytes, at most MAX_FILE_BYTES (``/dev/zero`` never ends)."""
        path = resolve(p)
        # O_NONBLOCK: opening a FIFO would wait for a writer; a regular file ignores the flag
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                raise FunctionError(f'"{_s(p)}" is not a regular file')
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FunctionError(f'"{_s(p)}" is larger than the {MAX_FILE_BYTES:,} bytes a template may read')
        return data

    def file(p: Any) -> str:
        try:
            data = read(p)
        except FileNotFoundError:
            raise FunctionError(f'no file exists at "{_s(p)}"') from None
        except IsADirectoryError:
            raise FunctionError(f'"{_s(p)}" is a directory, not a file') from None
        except OSError as e:
            raise FunctionError(f'cannot read "{_s(p)}": {e.strerror or e}') from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise FunctionError(
                f'contents of "{_s(p)}" are not valid UTF-8; use filebase64 instead'
            ) from None

    def filebase64(p: Any) -> str:
        try:
            return base64.b64encode(read(p)).decode()
        except FileNotFoundError:
            raise FunctionError(f'no file exists at "{_s(p)}"') from None
        except OSError as e:
            raise FunctionError(f'cannot read "{_s(p)}": {e.strerror or e}') from None

    def fileexists(p: Any) -> bool:
        path = resolve(p)
        if path.is_dir():
            raise FunctionError(f'"{_s(p)}" is a directory, not a file')
        return path.is_file()

    def fileset(p: Any, pattern: Any) -> list[str]:
        root = resolve(p)
        pat = _s(pattern, "pattern")
        if not root.is_dir():
            return []
        try:
            found = sorted(x.relative_to(root).as_posix() for x in root.glob(pat) if x.is_file())
        except ValueError as e:
            raise FunctionError(f"invalid glob pattern {pat!r}: {e}") from None
        return found

    def pathexpand(p: Any) -> str:
        return os.path.expanduser(_s(p))

    return {
        "file": file,
        "filebase64": filebase64,
        "fileexists": fileexists,
        "fileset": fileset,
        "pathexpand": pathexpand,
    }


def abspath(p: Any) -> str:
    return Path(os.path.abspath(_s(p))).as_posix()


def basename(p: Any) -> str:
    s = _s(p).rstrip("/")
    return (s.rsplit("/", 1)[-1] or "/") if s else "."


def dirname(p: Any) -> str:
    return os.path.dirname(_s(p).rstrip("/") or "/") or "."


# --- the table -------------------------------------------------------------------------------


def _unary_num(f: Callable[[float], float]) -> Func:
    return lambda x: normalize_number(f(_n(x)))


def make_functions(
    basedir: Path,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    init_time: datetime | None = None,
    templatefile_render: Callable[[str, str, Mapping[str, Any]], Any] | None = None,
    secret: Callable[[str, list[Any]], Any] | None = None,
) -> dict[str, Func]:
    """Packer's function table for templates in ``basedir``.

    ``templatefile_render(text, filename, vars)`` renders a template file (the evaluator's job);
    ``secret(function_name, args)`` answers aws_secretsmanager / vault / consul_key (None: their
    values are unknown, as in ``validate`` without network). ``init_time``: the run's clock, read
    once per command; ``timestamp()``, ``legacy_isotime`` and ``legacy_strftime`` all show it
    (without one, ``timestamp()`` reads ``now()`` at each call).
    """
    start = init_time or now()

    def timestamp() -> str:
        # the run's clock when it gives one: timestamp(), {{timestamp}} and isotime agree in a run
        return _rfc3339_str((init_time or now()).replace(microsecond=0))

    def legacy_isotime(*fmt: Any) -> str:
        if not fmt:
            return _rfc3339_str(start.replace(microsecond=0))
        return go_time_format(start, _s(fmt[0]))

    def legacy_strftime(*fmt: Any) -> str:
        if not fmt:
            return _rfc3339_str(start.replace(microsecond=0))
        return _strftime(start, _s(fmt[0]))

    def templatefile(path: Any, vars: Any) -> Any:
        fs = _fs(basedir)
        text = fs["file"](path)
        if templatefile_render is None:
            raise FunctionError("templatefile() is not available here")
        return templatefile_render(text, _s(path), _map(vars, "vars"))

    def remote(name: str) -> Func:
        def f(*args: Any) -> Any:
            if secret is None:
                return UNKNOWN
            return secret(name, list(args))

        return f

    def rfc3339_parse(ts: Any) -> dict[str, Any]:
        t = _rfc3339(ts)
        return {
            "year": t.year,
            "month": t.month,
            "day": t.day,
            "hour": t.hour,
            "minute": t.minute,
            "second": t.second,
            "iso_year": t.isocalendar()[0],
            "iso_week": t.isocalendar()[1],
            "week_day": (t.weekday() + 1) % 7,
            "year_day": t.timetuple().tm_yday,
            "unix": int(t.timestamp()),
        }

    table: dict[str, Func] = {
        # numeric
        "abs": _unary_num(abs),
        "ceil": _unary_num(math.ceil),
        "floor": _unary_num(math.floor),
        "log": _log,
        "max": lambda *a: (
            normalize_number(max(_n(x) for x in a)) if a else _raise("max() needs at least one argument")
        ),
        "min": lambda *a: (
            normalize_number(min(_n(x) for x in a)) if a else _raise("min() needs at least one argument")
        ),
        "parseint": parseint,
        "pow": lambda a, b: normalize_number(math.pow(_n(a), _n(b))),
        "signum": lambda x: (_n(x) > 0) - (_n(x) < 0),
        "sum": sum_,
        # string
        "chomp": chomp,
        "endswith": lambda s, p: _s(s).endswith(_s(p)),
        "format": format_,
        "formatlist": formatlist,
        "indent": indent,
        "join": join,
        "lower": lambda s: _s(s).lower(),
        "regex": regex,
        "regexall": regexall,
        "regex_replace": regex_replace,
        "replace": replace,
        "split": split,
        "startswith": lambda s, p: _s(s).startswith(_s(p)),
        "strcontains": lambda s, p: _s(p) in _s(s),
        "strrev": strrev,
        "substr": substr,
        "title": title,
        "trim": trim,
        "trimprefix": trimprefix,
        "trimspace": lambda s: _s(s).strip(),
        "trimsuffix": trimsuffix,
        "upper": lambda s: _s(s).upper(),
        # collection
        "alltrue": alltrue,
        "anytrue": anytrue,
        "chunklist": chunklist,
        "coalesce": coalesce,
        "coalescelist": coalescelist,
        "compact": compact,
        "concat": concat,
        "contains": contains,
        "distinct": distinct,
        "element": element,
        "flatten": flatten,
        "index": index_,
        "keys": keys,
        "length": length,
        "lookup": lookup,
        "merge": merge,
        "range": range_,
        "reverse": reverse,
        "setintersection": setintersection,
        "setproduct": setproduct,
        "setunion": setunion,
        "slice": slice_,
        "sort": sort_,
        "values": values,
        "zipmap": zipmap,
        # encoding
        "base64decode": base64decode,
        "base64encode": base64encode,
        "base64gzip": base64gzip,
        "csvdecode": csvdecode,
        "jsondecode": jsondecode,
        "jsonencode": jsonencode,
        "textdecodebase64": textdecodebase64,
        "textencodebase64": textencodebase64,
        "urlencode": urlencode,
        "yamldecode": yamldecode,
        "yamlencode": yamlencode,
        # filesystem
        "abspath": abspath,
        "basename": basename,
        "dirname": dirname,
        "templatefile": templatefile,
        # hash and crypto
        "bcrypt": bcrypt_,
        "md5": _hash("md5"),
        "sha1": _hash("sha1"),
        "sha256": _hash("sha256"),
        "sha512": _hash("sha512"),
        "uuidv4": uuidv4,
        "uuidv5": uuidv5,
        # ip network
        "cidrhost": cidrhost,
        "cidrnetmask": cidrnetmask,
        "cidrsubnet": cidrsubnet,
        "cidrsubnets": cidrsubnets,
        # date and time
        "formatdate": formatdate,
        "timeadd": timeadd,
        "timestamp": timestamp,
        "legacy_isotime": legacy_isotime,
        "legacy_strftime": legacy_strftime,
        "rfc3339_parse": rfc3339_parse,
        "unix_timestamp_parse": lambda ts: rfc3339_parse(_rfc3339_str(datetime.fromtimestamp(_int(ts), UTC))),
        # remote values
        "aws_secretsmanager": remote("aws_secretsmanager"),
        "aws_secretsmanager_raw": remote("aws_secretsmanager_raw"),
        "vault": remote("vault"),
        "consul_key": remote("consul_key"),
    }
    table.update(_fs(basedir))
    return table


def _raise(msg: str) -> Any:
    raise FunctionError(msg)


def env_function(env: Mapping[str, str]) -> dict[str, Func]:
    """``env(name)``: only in variable defaults, as in Packer."""
    return {"env": lambda name: env.get(_s(name, "name"), "")}


__all__ = ["ConversionError", "FunctionError", "env_function", "make_functions"]
