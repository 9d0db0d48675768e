"""Encoding functions: base64, JSON, YAML, CSV, URL and text encodings."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import urllib.parse
from datetime import datetime
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    MAX_YAML_BYTES,
    MAX_YAML_VALUES,
    _s,
)
from amibake.template.hcl.values import (
    UNKNOWN,
    contains_unknown,
    normalize_number,
    to_string,
)


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
