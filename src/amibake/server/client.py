"""The launcher's side: hand the command to a running server, or say there is none.

Standard library only, and only what a connection needs: this runs before every ``amibake``
command, so it must cost milliseconds. Anything unexpected before the worker started means
"no server" and the command runs in-process; after it started, the worker owns the command.
"""

from __future__ import annotations

import _signal
import _socket
import os
import resource
import sys

from amibake.server import protocol

TYPE_CHECKING = False  # see protocol.py
if TYPE_CHECKING:
    from types import FrameType

#: forwarded to the worker as real signals (``kill(worker, sig)``): its own handlers give them their
#: usual meaning (cleanup, exit codes), and one without a handler ends it at once, even in C code
FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)


def rlimits() -> dict[int, tuple[int, int]]:
    """This process's resource limits (``ulimit``): the worker applies them before the command."""
    out = {}
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            res = getattr(resource, name)
            try:
                out[res] = resource.getrlimit(res)
            except (OSError, ValueError):
                pass
    return out


def _stdio_fds() -> tuple[list[int], list[int]]:
    """fds 0-2, with /dev/null standing in for a closed one. Returns (fds to send, fds to close)."""
    fds, opened = [], []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            fds.append(null)
            opened.append(null)
    return fds, opened


def connect(path: os.PathLike[str] | str | None = None) -> _socket.socket | None:
    """A connection to the server, or None when no usable server listens there."""
    sock_path = protocol.default_socket() if path is None else os.fspath(path)
    try:
        protocol.private_dir(os.path.dirname(sock_path), create=False)
    except (OSError, protocol.ProtocolError):
        return None
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(sock_path)
    except OSError:  # no server (gone, or a stale socket file)
        sock.close()
        return None
    return sock


def run_through_server(argv: list[str]) -> int | None:
    """The command's exit code, run by the server; None: run it in this process."""
    if os.environ.get(protocol.DISABLE_ENV, "") not in ("", "0") or (argv[:1] == ["server"]):
        return None
    sock = connect()
    if sock is None:
        return None
    try:
        try:
            cwd = os.getcwd()
        except OSError:  # removed under us: in-process, the command reports it
            return None
        fds, opened = _stdio_fds()
        out = sys.stdout
        request = {
            "op": "run",
            "argv": argv,
            "cwd": cwd,
            "env": dict(os.environ),
            "umask": _umask(),
            "rlimits": rlimits(),
            "encoding": [getattr(out, "encoding", None) or "utf-8", getattr(out, "errors", None) or "strict"],
        }
        try:
            sock.settimeout(30)
            protocol.send(sock, request, fds)
            reply = protocol.recv(sock)
        except (OSError, EOFError, ValueError, protocol.ProtocolError):
            return None  # the server went away before it took the command: run it here
        finally:
            for fd in opened:
                os.close(fd)
        if "started" not in reply:
            return None  # "stale": the server is older than the installed amibake and is exiting
        return _follow(sock, int(reply["started"]))
    finally:
        sock.close()


def _follow(sock: _socket.socket, worker: int) -> int:
    """Forward signals to the worker until it reports how it ended: an exit code, or the signal
    that killed it (then this process dies of the same signal, so the caller sees what an
    in-process run would have shown: ``timeout`` its 124, a shell its 128+N)."""
    sock.settimeout(None)
    forwarded: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        forwarded.append(signum)
        try:
            os.kill(worker, signum)  # a real signal: a socket message waits for the GIL
        except OSError:
            try:
                protocol.send(sock, {"signal": signum})
            except OSError:
                pass

    for sig in FORWARDED:
        _signal.signal(sig, forward)
    try:
        while True:
            msg = protocol.recv(sock)
            if "exit" in msg:
                return int(msg["exit"])
            if "signaled" in msg:
                return _die_of(int(msg["signaled"]))
    except (OSError, EOFError, ValueError, protocol.ProtocolError) as exc:
        if forwarded:  # the worker died of what we forwarded before the server could tell us
            return _die_of(forwarded[0])
        detail = f": {exc}" if str(exc) else ""
        sys.stderr.write(f"amibake: the server's worker ended without an exit status{detail}\n")
        return 1


def _die_of(signum: int) -> int:
    """End this process by ``signum``, as the worker ended (128+N if the signal does not kill)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        _signal.signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    except (OSError, ValueError):
        pass
    return 128 + signum


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
