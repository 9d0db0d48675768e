"""Packer's machine-readable format: ``timestamp,target,type,data...`` one line per message.

Commas inside data become ``%!(PACKER_COMMA)`` and newlines ``\\n``, exactly as Packer writes them,
so scripts written against Packer parse amibake's output unchanged.
"""

from __future__ import annotations

import time


def escape(text: str) -> str:
    return text.replace(",", "%!(PACKER_COMMA)").replace("\r", "\\r").replace("\n", "\\n")


def line(target: str, type_: str, *data: str, now: float | None = None) -> str:
    ts = int(now if now is not None else time.time())
    return ",".join([str(ts), escape(target), escape(type_), *(escape(str(d)) for d in data)])
