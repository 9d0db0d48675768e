"""Framing of the legacy SCP protocol (``scp -t`` sink / ``scp -f`` source), as Packer speaks it.

Pure code: builds and parses the control lines; the SSH module moves the bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from amibake.errors import CommunicatorError

OK = b"\0"
_HEADER = re.compile(rb"^([CD])([0-7]{3,4}) (\d+) ([^\n/]+)\n?$")


def file_header(name: str, size: int, mode: int) -> bytes:
    """``C0644 <size> <name>\\n``: announces a file (``name`` is a single path component)."""
    _check_name(name)
    return f"C{mode & 0o7777:04o} {size} {name}\n".encode("utf-8", "surrogateescape")


def dir_header(name: str, mode: int) -> bytes:
    """``D0755 0 <name>\\n``: enters a directory (created if missing)."""
    _check_name(name)
    return f"D{mode & 0o7777:04o} 0 {name}\n".encode("utf-8", "surrogateescape")


END_DIR = b"E\n"


def _check_name(name: str) -> None:
    if not name or "/" in name or "\n" in name or name in (".", ".."):
        raise CommunicatorError(f"cannot send {name!r} over SCP: not a plain file name")


@dataclass(frozen=True)
class Header:
    kind: str  # "C" (file) or "D" (directory)
    mode: int
    size: int
    name: str


def parse_header(line: bytes) -> Header:
    """Parse a ``C``/``D`` line sent by a remote ``scp -f``."""
    m = _HEADER.match(line)
    if not m:
        raise CommunicatorError(f"unexpected SCP response: {line[:200]!r}")
    name = m.group(4).decode("utf-8", "surrogateescape")
    if name in (".", ".."):
        raise CommunicatorError(f"unexpected SCP file name {name!r}")
    return Header(m.group(1).decode(), int(m.group(2), 8), int(m.group(3)), name)


def ack_error(code: int, message: bytes) -> CommunicatorError:
    """The error for a non-zero SCP status byte (1 = error, 2 = fatal) and its message line."""
    text = message.decode("utf-8", "replace").strip() or f"status {code}"
    return CommunicatorError(text)
