"""Packer core's ``http`` data source: one GET with urllib.

Outputs, as Packer 1.9 names them: ``url``, ``body`` and ``request_headers`` (which holds the
*response* headers, canonicalised as Go does and duplicates joined with ", ").
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from amibake.datasources.errors import DatasourceError
from amibake.datasources.http_config import HttpConfig

TIMEOUT = 60.0


def canonical_header(name: str) -> str:
    """Go's ``CanonicalMIMEHeaderKey``: ``content-type`` -> ``Content-Type``."""
    if any(not (c.isalnum() or c == "-") for c in name):
        return name
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def http(cfg: HttpConfig, timeout: float = TIMEOUT) -> dict[str, Any]:
    req = urllib.request.Request(cfg.url, method="GET")
    for k, v in cfg.request_headers.items():
        req.add_header(k, v)
    try:
        # the url is the template author's: any scheme urllib knows (http, https, file) is theirs to use
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = resp.status
            body = resp.read()
            items = resp.headers.items()
    except urllib.error.HTTPError as exc:
        raise DatasourceError(f"HTTP request error. Response code: {exc.code}") from exc
    except urllib.error.URLError as exc:
        raise DatasourceError(f"error requesting {cfg.url}: {exc.reason}") from exc
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
        raise DatasourceError(f"error requesting {cfg.url}: {exc}") from exc
    if status != 200:
        raise DatasourceError(f"HTTP request error. Response code: {status}")
    headers: dict[str, str] = {}
    for k, v in items:
        key = canonical_header(k)
        headers[key] = f"{headers[key]}, {v}" if key in headers else v
    return {"url": cfg.url, "body": body.decode("utf-8", "replace"), "request_headers": headers}
