"""The stream multiplexing a port session uses with SSM agents 3.0.196.0 and later (the plugin's
``MuxPortForwarding``: xtaci/smux, protocol version 1, its default configuration), without I/O.

The data channel's ``Output`` payloads then carry one byte stream of smux frames::

    version (1 byte, 1) | command (1 byte) | length (uint16, little-endian) | stream id (uint32, LE) | data

Commands: SYN opens a stream, FIN ends it, PSH carries data, NOP keeps the session alive. The
client numbers its streams 3, 5, 7, ... (smux's client starts at 1 and adds 2 before each open).
Version 1 has no flow-control frames (UPD is version 2's).
"""

from __future__ import annotations

import struct

from amibake.plugins.amazon.ssm.message import ProtocolError

VERSION = 1
SYN, FIN, PSH, NOP, UPD = range(5)
HEADER = struct.Struct("<BBHI")
#: smux's default MaxFrameSize
MAX_FRAME = 32768
#: smux's default keep-alive interval (the plugin turns it off for agents from 3.1.1511.0)
KEEPALIVE_INTERVAL = 10.0
NO_KEEPALIVE_AGENT_VERSION = "3.1.1511.0"


def frame(cmd: int, sid: int, data: bytes = b"") -> bytes:
    return HEADER.pack(VERSION, cmd, len(data), sid) + data


def push(sid: int, data: bytes) -> bytes:
    """``data`` as PSH frames of at most :data:`MAX_FRAME` bytes."""
    return b"".join(frame(PSH, sid, data[i:i + MAX_FRAME]) for i in range(0, len(data), MAX_FRAME))


class FrameReader:
    """Frames from a byte stream that arrives in pieces of any size."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """The whole frames ``data`` completes: (command, stream id, data)."""
        self._buf += data
        out: list[tuple[int, int, bytes]] = []
        while len(self._buf) >= HEADER.size:
            version, cmd, length, sid = HEADER.unpack_from(self._buf, 0)
            if version != VERSION:
                raise ProtocolError(f"smux frame of version {version}, not {VERSION}")
            if cmd not in (SYN, FIN, PSH, NOP):
                raise ProtocolError(f"smux frame with command {cmd}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            out.append((cmd, sid, bytes(self._buf[HEADER.size:end])))
            del self._buf[:end]
        return out


class StreamIds:
    """smux's client stream numbering."""

    def __init__(self) -> None:
        self._next = 1

    def open(self) -> int:
        self._next += 2
        if self._next > 0xFFFFFFFF:
            raise ProtocolError("smux stream ids exhausted")
        return self._next
