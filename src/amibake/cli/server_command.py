"""``amibake server start|stop|status|run``: the resident process that takes start-up off every command."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click

from amibake.cli.main import CONTEXT, cli
from amibake.errors import UserInputError

_socket_option = click.option(
    "--socket", "-socket", "sock", default="", metavar="PATH",
    help="Unix socket (default: $AMIBAKE_SERVER_SOCKET, else $XDG_RUNTIME_DIR/amibake/server.sock, "
         "else /tmp/amibake-UID/server.sock). Commands use the server on the same path.",
)
_serve_options = [
    click.option("--idle-timeout", "-idle-timeout", "idle", default="1h", metavar="1h",
                 help="Exit after this long without a command (Go duration; 0: never)."),
    click.option("--watch", "-watch", "watch", multiple=True, metavar="PATH",
                 help="Also exit when this file or directory changes (amibake's sources always count)."),
]


#: how long `server stop` waits for the server to exit
_STOP_TIMEOUT = 60.0


def _path(sock: str) -> Path:
    from amibake.server.protocol import default_socket

    return Path(sock).absolute() if sock else Path(default_socket())


def _idle_seconds(idle: str) -> float:
    from amibake.config.durations import parse_duration

    try:
        return float(parse_duration(idle))
    except (ValueError, TypeError) as exc:
        raise UserInputError(
            [f"--idle-timeout: expected a duration such as 1h or 30m, got {idle!r} ({exc})"]
        ) from None


def _ask(path: Path, op: str) -> dict[str, object] | None:
    from amibake.server import protocol
    from amibake.server.client import connect

    sock = connect(path)
    if sock is None:
        return None
    try:
        sock.settimeout(10)
        protocol.send(sock, {"op": op})
        return protocol.recv(sock)
    except (OSError, EOFError, ValueError, protocol.ProtocolError):
        return None
    finally:
        sock.close()


@cli.group(context_settings=CONTEXT)
def server() -> None:
    """A resident amibake that takes interpreter start-up off every command.

    `amibake server start` imports and warms amibake once; while it runs, every `amibake` command of
    this user (same socket) is forked from it and starts in milliseconds, with the caller's working
    directory, environment, umask and terminal. Killing a command still cleans up its build. The
    server exits when amibake is upgraded or edited, after --idle-timeout, or on `amibake server stop`.
    AMIBAKE_NO_SERVER=1 runs a command in-process anyway.
    """


@server.command("start", context_settings=CONTEXT)
@_socket_option
@_serve_options[0]
@_serve_options[1]
def start(sock: str, idle: str, watch: tuple[str, ...]) -> None:
    """Start the server in the background and wait until it is ready."""
    path = _path(sock)
    _idle_seconds(idle)
    running = _ask(path, "ping")  # a stale server answers "stale" and exits: start a new one
    if running is not None and "pong" in running:
        click.echo(f"amibake server already running (pid {_pong(running).get('pid')}) on {path}")
        return
    from amibake.server.protocol import ProtocolError, private_dir

    try:
        private_dir(str(path.parent), create=True)
    except ProtocolError as exc:
        raise UserInputError([str(exc)]) from None
    except OSError as exc:  # the parent is a file, a symlink loop, not writable...
        reason = exc.strerror or str(exc)
        raise UserInputError([f"cannot make the server's directory {path.parent}: {reason}"]) from None
    log = path.parent / "server.log"
    argv = [sys.executable, "-m", "amibake", "server", "run", "--socket", str(path), "--idle-timeout", idle,
            "--log", str(log)]
    for w in watch:
        argv += ["--watch", str(Path(w).absolute())]
    null = subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdin=null, stdout=null, stderr=null, start_new_session=True, cwd="/",
                            env=_server_env())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pong = _ask(path, "ping")
        # only the new server's pong: the stale one may still be on the socket until it has exited,
        # and answers "stale" again (then "ready" named no pid and the server was not up yet)
        if pong is not None and "pong" in pong:
            info = _pong(pong)
            warmed = info.get("warm_seconds")
            click.echo(f"amibake server {info.get('pid')} ready on {path} (warmed in {warmed} s)")
            return
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            raise UserInputError([f"the server exited with status {proc.returncode}", *tail])
        time.sleep(0.05)
    proc.terminate()
    raise UserInputError([f"the server did not answer on {path} within 60 s; see {log}"])


@server.command("run", context_settings=CONTEXT)
@_socket_option
@_serve_options[0]
@_serve_options[1]
@click.option("--log", "-log", "log_file", default="", metavar="FILE", help="Append the server's log here "
              "(default: stderr).")
def run(sock: str, idle: str, watch: tuple[str, ...], log_file: str) -> None:
    """Run the server in the foreground (for a service manager)."""
    from amibake.server.forkserver import Server, ServerError, log, server_log

    srv = Server(_path(sock), idle_timeout=_idle_seconds(idle), watch=[Path(w) for w in watch])
    log_path = Path(log_file) if log_file else None
    if log_path is not None:
        try:
            log_path.open("a").close()
        except OSError as exc:
            raise UserInputError([f"cannot open the server log {log_path}: {exc.strerror or exc}"]) from None
    with server_log(log_path), _stack_dumps(log_path):
        try:
            conn = srv.serve()
        except ServerError as exc:
            log.error("%s", exc)  # `server start` shows the log's last lines
            raise UserInputError([str(exc)]) from None
        if conn is not None:
            srv.handle(conn)  # a forked worker: runs the command and exits with its code


@contextlib.contextmanager
def _stack_dumps(log_path: Path | None) -> Iterator[None]:
    """SIGUSR1 makes the server write every thread's Python stack to its log (from the signal
    handler in C: it works while the main thread is blocked). Workers drop it (see ``handle``)."""
    import faulthandler

    out = log_path.open("a") if log_path is not None else sys.stderr
    try:
        faulthandler.register(signal.SIGUSR1, file=out, all_threads=True)
        registered = True
    except (AttributeError, ValueError, OSError):  # a stderr with no file descriptor (embedded use)
        registered = False
    try:
        yield
    finally:
        if registered:
            faulthandler.unregister(signal.SIGUSR1)
        if out is not sys.stderr:
            out.close()


@server.command("stop", context_settings=CONTEXT)
@_socket_option
def stop(sock: str) -> None:
    """Stop the server (commands it is running finish first).

    Returns once the server has exited and its socket is gone (a socket left by a killed server is
    removed); exits 1 if it has not exited within 60 s."""
    from amibake.server.forkserver import ServerError, wait_until_stopped

    path = _path(sock)
    reply = _ask(path, "stop")

    def waiting() -> None:
        if reply is None:
            # nothing answered, yet a server holds the lock: it is exiting, or too busy to answer
            # within the timeout: `stop` means stop, so it gets the signal `stop` would have sent
            _signal_server(path)
            click.echo(f"Waiting for the amibake server on {path} to exit...")

    try:
        removed = wait_until_stopped(path, _STOP_TIMEOUT, waiting)
    except ServerError:
        # asked, yet still running: `stop` means stop, so the signal the request would have sent,
        # then SIGKILL (its socket, left behind, is removed once it has gone). First SIGUSR1: the
        # server writes where each of its threads is to its log, for whoever looks into why.
        _signal_server(path, signal.SIGUSR1)
        removed = False
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
            _signal_server(path, sig)
            try:
                removed = wait_until_stopped(path, wait)
                click.echo(f"The amibake server on {path} did not stop when asked; sent it {sig.name}.",
                           err=True)
                break
            except ServerError as exc:
                if sig == signal.SIGKILL:
                    raise UserInputError([str(exc)]) from None
    if reply is not None:
        click.echo(f"Stopped amibake server {reply.get('stopping')} on {path}.")
    elif removed:
        click.echo(f"No amibake server on {path}; removed the socket a killed server left.")
    else:
        click.echo(f"No amibake server on {path}.")


def _signal_server(path: Path, sig: signal.Signals = signal.SIGTERM) -> None:
    """``sig`` to the server whose pid file is beside ``path``, if that pid is an amibake server."""
    from amibake.server.forkserver import PID_NAME

    try:
        pid = int((path.parent / PID_NAME).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if b"server" in cmdline and b"run" in cmdline and str(path).encode() in cmdline:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


@server.command("status", context_settings=CONTEXT)
@_socket_option
def status(sock: str) -> None:
    """Say whether a server is running and what it has done; exit 1 when none is."""
    path = _path(sock)
    reply = _ask(path, "ping")
    if reply is not None and "stale" in reply:
        click.echo(f"The amibake server on {path} was older than the installed amibake "
                   f"({reply['stale']}); it has exited.")
        sys.exit(1)
    if reply is None:
        click.echo(f"No amibake server on {path}.")
        sys.exit(1)
    info = _pong(reply)
    since = datetime.fromtimestamp(float(str(info.get("started_at", 0)))).isoformat(timespec="seconds")
    click.echo(f"amibake server {info.get('pid')} (amibake {info.get('version')}) on {path}")
    click.echo(f"  running since {since}, {info.get('served')} command(s) served, "
               f"warmed in {info.get('warm_seconds')} s, idle timeout {info.get('idle_timeout')} s")


def _server_env() -> dict[str, str]:
    """The server needs no credentials or template variables (each worker gets its caller's whole
    environment): it starts with the interpreter's and locale's variables only."""
    keep = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "XDG_RUNTIME_DIR", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items()
            if k in keep or k.startswith(("LC_", "PYTHON", "PYDANTIC_"))}


def _pong(reply: dict[str, object]) -> dict[str, object]:
    info = reply.get("pong")
    return info if isinstance(info, dict) else {}
