"""Packer's HCL2 function library (``hcl2template/functions.go``), on plain Python values.

Functions raise :class:`FunctionError` (or :class:`ConversionError`) for bad arguments; the
evaluator adds the call's position. ``can`` and ``try`` live in the evaluator (their arguments are
evaluated lazily); ``convert`` takes a type expression and is handled there too. ``env`` exists
only in variable defaults, as in Packer. Packer has no ``tostring``/``tolist``-style functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import MAX_FILE_BYTES as MAX_FILE_BYTES
from amibake.template.hcl.functions._common import MAX_FMT_WIDTH as MAX_FMT_WIDTH
from amibake.template.hcl.functions._common import MAX_RESULT as MAX_RESULT
from amibake.template.hcl.functions._common import MAX_YAML_BYTES as MAX_YAML_BYTES
from amibake.template.hcl.functions._common import MAX_YAML_VALUES as MAX_YAML_VALUES
from amibake.template.hcl.functions._common import Func, _int, _map, _n, _s
from amibake.template.hcl.functions.collection import alltrue as alltrue
from amibake.template.hcl.functions.collection import anytrue as anytrue
from amibake.template.hcl.functions.collection import chunklist as chunklist
from amibake.template.hcl.functions.collection import coalesce as coalesce
from amibake.template.hcl.functions.collection import coalescelist as coalescelist
from amibake.template.hcl.functions.collection import compact as compact
from amibake.template.hcl.functions.collection import concat as concat
from amibake.template.hcl.functions.collection import contains as contains
from amibake.template.hcl.functions.collection import distinct as distinct
from amibake.template.hcl.functions.collection import element as element
from amibake.template.hcl.functions.collection import flatten as flatten
from amibake.template.hcl.functions.collection import index_ as index_
from amibake.template.hcl.functions.collection import keys as keys
from amibake.template.hcl.functions.collection import length as length
from amibake.template.hcl.functions.collection import lookup as lookup
from amibake.template.hcl.functions.collection import merge as merge
from amibake.template.hcl.functions.collection import range_ as range_
from amibake.template.hcl.functions.collection import reverse as reverse
from amibake.template.hcl.functions.collection import setintersection as setintersection
from amibake.template.hcl.functions.collection import setproduct as setproduct
from amibake.template.hcl.functions.collection import setunion as setunion
from amibake.template.hcl.functions.collection import slice_ as slice_
from amibake.template.hcl.functions.collection import sort_ as sort_
from amibake.template.hcl.functions.collection import sum_ as sum_
from amibake.template.hcl.functions.collection import values as values
from amibake.template.hcl.functions.collection import zipmap as zipmap
from amibake.template.hcl.functions.crypto import _hash
from amibake.template.hcl.functions.crypto import bcrypt_ as bcrypt_
from amibake.template.hcl.functions.crypto import uuidv4 as uuidv4
from amibake.template.hcl.functions.crypto import uuidv5 as uuidv5
from amibake.template.hcl.functions.dates import _rfc3339, _rfc3339_str, _strftime
from amibake.template.hcl.functions.dates import formatdate as formatdate
from amibake.template.hcl.functions.dates import go_time_format as go_time_format
from amibake.template.hcl.functions.dates import parse_duration as parse_duration
from amibake.template.hcl.functions.dates import timeadd as timeadd
from amibake.template.hcl.functions.encoding import base64decode as base64decode
from amibake.template.hcl.functions.encoding import base64encode as base64encode
from amibake.template.hcl.functions.encoding import base64gzip as base64gzip
from amibake.template.hcl.functions.encoding import csvdecode as csvdecode
from amibake.template.hcl.functions.encoding import jsondecode as jsondecode
from amibake.template.hcl.functions.encoding import jsonencode as jsonencode
from amibake.template.hcl.functions.encoding import textdecodebase64 as textdecodebase64
from amibake.template.hcl.functions.encoding import textencodebase64 as textencodebase64
from amibake.template.hcl.functions.encoding import urlencode as urlencode
from amibake.template.hcl.functions.encoding import yamldecode as yamldecode
from amibake.template.hcl.functions.encoding import yamlencode as yamlencode
from amibake.template.hcl.functions.filesystem import _fs
from amibake.template.hcl.functions.filesystem import abspath as abspath
from amibake.template.hcl.functions.filesystem import basename as basename
from amibake.template.hcl.functions.filesystem import dirname as dirname
from amibake.template.hcl.functions.network import cidrhost as cidrhost
from amibake.template.hcl.functions.network import cidrnetmask as cidrnetmask
from amibake.template.hcl.functions.network import cidrsubnet as cidrsubnet
from amibake.template.hcl.functions.network import cidrsubnets as cidrsubnets
from amibake.template.hcl.functions.numeric import _log
from amibake.template.hcl.functions.numeric import parseint as parseint
from amibake.template.hcl.functions.strings import chomp as chomp
from amibake.template.hcl.functions.strings import format_ as format_
from amibake.template.hcl.functions.strings import formatlist as formatlist
from amibake.template.hcl.functions.strings import indent as indent
from amibake.template.hcl.functions.strings import join as join
from amibake.template.hcl.functions.strings import regex as regex
from amibake.template.hcl.functions.strings import regex_replace as regex_replace
from amibake.template.hcl.functions.strings import regexall as regexall
from amibake.template.hcl.functions.strings import replace as replace
from amibake.template.hcl.functions.strings import split as split
from amibake.template.hcl.functions.strings import strrev as strrev
from amibake.template.hcl.functions.strings import substr as substr
from amibake.template.hcl.functions.strings import title as title
from amibake.template.hcl.functions.strings import trim as trim
from amibake.template.hcl.functions.strings import trimprefix as trimprefix
from amibake.template.hcl.functions.strings import trimsuffix as trimsuffix
from amibake.template.hcl.values import UNKNOWN, ConversionError, normalize_number


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
