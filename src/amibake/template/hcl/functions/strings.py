"""String functions: ``format``, ``join``, ``regex``, ``replace``, ``split``, ``trim`` and the rest."""

from __future__ import annotations

import json
import re
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    MAX_FMT_WIDTH,
    _bounded,
    _int,
    _list,
    _n,
    _s,
    _unknown_in,
)
from amibake.template.hcl.values import (
    UNKNOWN,
    number_to_string,
    to_bool,
)

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
