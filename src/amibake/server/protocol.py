"""The launcher <-> server wire format.

The launcher imports this before every command, so it uses C modules only (``_socket``, ``marshal``):
``socket``, ``json`` and ``pathlib`` would add 30-50 ms of imports to a command that the server
runs in 50. Every message is a 4-byte big-endian length and a :mod:`marshal`-encoded dict of plain
values. marshal is not meant for untrusted input; both ends are processes of the same user (the
socket lives in a 0700 directory and the server checks SO_PEERCRED) running the same interpreter.
The first message of a connection carries the launcher's stdin, stdout and stderr as SCM_RIGHTS
file descriptors.

launcher -> worker: ``{"op": "run", "argv", "cwd", "env", "umask", "encoding"}``,
``{"op": "ping"}``, ``{"op": "stop"}``; then, during a run, ``{"signal": N}``.
worker -> launcher: ``{"started": PID}``, ``{"exit": RC}``, ``{"stale": REASON}`` (run it yourself),
``{"pong": {...}}``, ``{"stopping": PID}``.
"""

from __future__ import annotations

import _socket
import marshal
import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the launcher ~10 ms
if TYPE_CHECKING:
    from typing import Any

MAX_MESSAGE = 4 << 20
#: environment variable naming the socket (default: :func:`default_socket`)
SOCKET_ENV = "AMIBAKE_SERVER_SOCKET"
#: set to 1 to never use a server
DISABLE_ENV = "AMIBAKE_NO_SERVER"
_FD_SIZE = 4  # a C int in SCM_RIGHTS data


class ProtocolError(Exception):
    pass


def default_socket() -> str:
    """``$AMIBAKE_SERVER_SOCKET``, else ``$XDG_RUNTIME_DIR/amibake/server.sock``, else
    ``/tmp/amibake-UID/server.sock``."""
    env = os.environ.get(SOCKET_ENV)
    if env:
        return os.path.abspath(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = os.path.join(runtime, "amibake") if runtime else f"/tmp/amibake-{os.getuid()}"
    return os.path.join(base, "server.sock")


def private_dir(path: str, create: bool) -> None:
    """The socket's directory must be this user's alone: another user's (or a world-writable)
    directory could hold a socket that receives our environment, credentials included."""
    if create:
        os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ProtocolError(f"{path} is not a private directory of this user (mode 0700); not using it")


def _encode(message: dict[str, Any]) -> bytes:
    body = marshal.dumps(message)
    return len(body).to_bytes(4, "big") + body


def _decode(body: bytes) -> dict[str, Any]:
    try:
        msg = marshal.loads(body)
    except (ValueError, EOFError, TypeError) as exc:
        raise ProtocolError(f"bad message: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a dict")
    return msg


def send(sock: _socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = _encode(message)
    if fds:
        rights = b"".join(fd.to_bytes(_FD_SIZE, sys.byteorder) for fd in fds)
        sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, rights)])
        data = data[sent:]
    if data:
        sock.sendall(data)


def _recv_exact(sock: _socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _length(header: bytes) -> int:
    n = int.from_bytes(header, "big")
    if n > MAX_MESSAGE:
        raise ProtocolError(f"message of {n} bytes")
    return n


def recv(sock: _socket.socket) -> dict[str, Any]:
    """One message; EOFError when the other side closed the connection."""
    n = _length(_recv_exact(sock, 4))
    return _decode(_recv_exact(sock, n))


def recv_with_fds(sock: _socket.socket, maxfds: int = 3) -> tuple[dict[str, Any], list[int]]:
    """The first message of a connection, with the descriptors sent alongside it."""
    data, ancdata, _flags, _addr = sock.recvmsg(1 << 16, _socket.CMSG_SPACE(maxfds * _FD_SIZE))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(payload) - len(payload) % _FD_SIZE
            fds += [int.from_bytes(payload[i:i + _FD_SIZE], sys.byteorder, signed=True)
                    for i in range(0, usable, _FD_SIZE)]
    try:
        if len(data) < 4:
            data += _recv_exact(sock, 4 - len(data))
        n = _length(data[:4])
        body = data[4:]
        if len(body) < n:
            body += _recv_exact(sock, n - len(body))
        return _decode(body[:n]), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
