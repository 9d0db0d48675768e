"""The server: warm once, then fork one worker per command (see :mod:`amibake.server`).

The server process stays single-threaded (forking a process with threads would copy held locks),
reaps its workers as they end (SIGCHLD) and tells the launcher of a worker killed by a signal which
one (so ``timeout``, ``ulimit -t`` and a shell see what an in-process run would give), and holds
``server.lock`` for its lifetime so that two servers never share a socket. The lock is let go of only
by the server's exit, after the socket was removed: :func:`wait_until_stopped` (``amibake server
stop``) takes it to know that the server has exited and its socket is gone. Each worker is a fork
of the warm server that becomes an ordinary ``amibake`` process: its own session, the launcher's
stdio, cwd, environment, umask and resource limits.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import gc
import importlib
import logging
import os
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from amibake import __version__
from amibake.server import protocol

log = logging.getLogger("amibake.server")

#: imported by the server so that no worker pays for them; what a build, validate, inspect or fmt
#: imports lazily (plugin implementations and cleaners come from the registry, never named here)
WARM_MODULES = (
    "amibake.cli.commands",
    "amibake.cli.inspect",
    "amibake.cli.hcl_commands",
    "amibake.cli.cleanup_command",
    "amibake.cli.process",
    "amibake.cli.plugins_command",
    "amibake.core",
    "amibake.build",
    "amibake.journal",
    "amibake.localexec",
    "amibake.template.load",
    "amibake.template.json_loader",
    "amibake.template.interpolate",
    "amibake.template.variables",
    "amibake.communicator.ssh",  # asyncssh, cryptography, asyncio: ~0.4 s
    "amibake.communicator.scp",
    "amibake.communicator.tree",
    "encodings.idna",
    "amibake.template.hcl",
    "amibake.template.hclfmt",
    "amibake.template.hcl2_upgrade",
    "amibake.aws.session",
    "botocore.client",
    "botocore.httpsession",
    "botocore.loaders",
    "botocore.credentials",
    "botocore.parsers",
    "botocore.serialize",
    "botocore.regions",
    "botocore.retries.standard",
)


#: beside the socket: held by the running server from before it binds until it has exited
LOCK_NAME = "server.lock"
PID_NAME = "server.pid"
#: how long a new server waits for an exiting one to let the lock go
_BIND_WAIT = 30.0


class ServerError(Exception):
    pass


def wait_until_stopped(path: Path, timeout: float, on_wait: Callable[[], None] | None = None) -> bool:
    """Return once no server runs on ``path``: none holds the lock beside it, so the one that did has
    exited, after removing its socket. A socket file still there then was left by a server that was
    killed: it is removed (with its pid file) while the lock is held. Returns whether one was.

    ``on_wait`` is called once if the lock is held when asked (a server is still exiting). Raises
    :class:`ServerError` when it is still held after ``timeout`` seconds. Blocks in ``flock`` (in a
    helper thread, for the timeout): no polling."""
    directory = path.parent
    try:
        protocol.private_dir(str(directory), create=False)
    except (OSError, protocol.ProtocolError):
        return False  # no directory (no server ever), or one no launcher would use
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        if on_wait is not None:
            on_wait()
        if not _flock_within(fd, timeout):
            # fd stays open: the helper thread may still be blocked on it until this process exits
            pid = _read_pid(directory / PID_NAME)
            who = f"server {pid}" if pid else "server"
            raise ServerError(f"the amibake {who} on {path} has not exited after {timeout:.0f} s") from None
    try:
        removed = False
        for p in (path, directory / PID_NAME):
            try:
                p.unlink()
                removed = removed or p == path
            except FileNotFoundError:
                pass
        return removed
    finally:
        os.close(fd)  # lets the lock go


def _flock_within(fd: int, timeout: float) -> bool:
    """Take the exclusive lock on ``fd`` within ``timeout`` seconds (blocking in a helper thread).
    A lock the helper gets only after the caller gave up is let go at once: a later attempt in this
    process, on another descriptor, must not wait on this one."""
    got = threading.Event()
    guard = threading.Lock()
    abandoned = [False]

    def take() -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
            with guard:
                if abandoned[0]:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    return
                got.set()

    threading.Thread(target=take, name="server-lock", daemon=True).start()
    if got.wait(timeout):
        return True
    with guard:
        abandoned[0] = not got.is_set()
        return got.is_set()


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class _Stop(Exception):
    pass


def fingerprint(roots: Iterable[Path]) -> dict[str, tuple[int, int]]:
    """(mtime, size) of every file under the roots: a changed, added or removed source file (an
    upgrade, an edit of an editable install) changes it."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        if root.is_file():
            st = root.stat()
            out[str(root)] = (st.st_mtime_ns, st.st_size)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith((".py", ".json", ".so")):
                    p = os.path.join(dirpath, name)
                    with contextlib.suppress(OSError):
                        st = os.stat(p)
                        out[p] = (st.st_mtime_ns, st.st_size)
    return out


def _code_roots(watch: Iterable[Path]) -> list[Path]:
    """amibake's own package and the entry files of the libraries the server keeps loaded."""
    import amibake

    roots = [Path(amibake.__file__).parent]
    for name in ("botocore", "asyncssh", "pydantic", "pydantic_core", "click", "cryptography"):
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None):
            roots.append(Path(str(mod.__file__)))
    roots.append(Path(sys.executable))
    return roots + [Path(p) for p in watch]


def warm() -> float:
    """Import and build everything a command would, once. Returns the seconds it took."""
    t0 = time.monotonic()
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    for name in WARM_MODULES:
        importlib.import_module(name)
    from amibake import registry
    from amibake.aws.session import shared_loader

    registry._ensure_loaded()
    for spec in list(registry._REGISTRY.values()):
        spec.config_class()
        if spec.impl:
            spec.impl_class()
    for path in registry.cleaners():
        registry.load_attr(path)
    _build_models()
    _warm_botocore(shared_loader())
    tempfile.tempdir = None  # computed from TMPDIR on first use: each worker computes its own
    gc.collect()
    gc.freeze()  # workers share these pages and never scan them
    return time.monotonic() - t0


def _build_models() -> None:
    """Build every config model's validator now (they are declared with ``defer_build``: built on
    first use, which would be in each worker), nested ones and those made by factories included."""
    from pydantic import BaseModel

    todo: list[type[BaseModel]] = list(BaseModel.__subclasses__())
    seen: set[type[BaseModel]] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo += cls.__subclasses__()
        if cls.__module__.startswith("amibake.") and not cls.__pydantic_generic_metadata__["parameters"]:
            with contextlib.suppress(Exception):  # one that cannot build now builds on first use, as before
                cls.model_rebuild(force=True)


def _warm_botocore(loader: Any) -> None:
    """Make (and drop) an EC2 and an IAM client: the first client of a process loads botocore's
    endpoint and retry data and fills its name caches (~0.1 s). Explicit dummy keys and region, so
    nothing is read from the environment or the network."""
    import botocore.session

    session = botocore.session.Session()
    session.register_component("data_loader", loader)
    for service in ("ec2", "iam"):
        with contextlib.suppress(Exception):
            session.create_client(service, region_name="us-east-1", aws_access_key_id="warm",
                                  aws_secret_access_key="warm")


class Server:
    def __init__(self, path: Path, *, idle_timeout: float = 3600.0, watch: Iterable[Path] = ()) -> None:
        self.path = Path(path)
        self.idle_timeout = idle_timeout
        self.watch = [Path(p) for p in watch]
        self.pid = os.getpid()
        self.started_at = time.time()
        self.served = 0
        self.warm_seconds = 0.0
        self._print: dict[str, tuple[int, int]] = {}
        self._lock_fd: int | None = None
        #: running workers: pid -> the server's copy of the launcher's connection
        self._workers: dict[int, socket.socket] = {}

    # -- the server's side ------------------------------------------------------------------

    def serve(self) -> socket.socket | None:
        """Listen until stopped, idle or stale. Returns None in the server when it is done, and the
        connection in each forked worker (which must then call :meth:`handle`)."""
        listener = self._listen()

        def stop(signum: int, frame: Any) -> None:
            raise _Stop(signal.Signals(signum).name)

        try:  # from here on, however it ends (a signal while warming included), the socket goes
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            self.warm_seconds = warm()
            self._print = fingerprint(_code_roots(self.watch))
            log.info("amibake %s server %d ready on %s (warmed in %.2f s)", __version__, self.pid, self.path,
                     self.warm_seconds)
            signal.signal(signal.SIGCHLD, lambda signum, frame: self._reap())
            listener.settimeout(self.idle_timeout if self.idle_timeout > 0 else None)
            while True:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    log.info("idle for %.0f s: exiting", self.idle_timeout)
                    return None
                except InterruptedError:
                    continue
                if not self._same_user(conn):
                    conn.close()
                    continue
                # SIGCHLD waits until the new worker is in the table: a fast one may end at once
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
                try:
                    pid = os.fork()
                    if pid == 0:  # the worker
                        for c in self._workers.values():
                            c.close()
                        self._workers.clear()
                        listener.close()
                        self._close_lock()
                        return conn
                    self._workers[pid] = conn
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                self.served += 1
        except _Stop as exc:
            log.info("%s: exiting", exc)
            return None
        finally:
            if os.getpid() == self.pid:
                self._unlisten(listener)

    def _reap(self) -> None:
        """Collect ended workers; for one killed by a signal, tell its launcher which."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self._workers.pop(pid, None)
            if conn is None:
                continue
            if os.WIFSIGNALED(status):
                with contextlib.suppress(OSError):
                    conn.setblocking(False)
                    protocol.send(conn, {"signaled": os.WTERMSIG(status)})
            conn.close()

    def _listen(self) -> socket.socket:
        try:
            return self._bind()
        except OSError as exc:  # a parent that is a file or not writable, a path too long for AF_UNIX
            self._close_lock()
            raise ServerError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None

    def _bind(self) -> socket.socket:
        directory = self.path.parent
        try:
            protocol.private_dir(str(directory), create=True)
        except protocol.ProtocolError as exc:
            raise ServerError(str(exc)) from None
        fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # a stale server found by `start` may still be exiting: it lets the lock go as it exits
            if not _flock_within(fd, _BIND_WAIT):
                raise ServerError(f"another amibake server is running on {self.path}") from None
        self._lock_fd = fd
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a server that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(128)
        (directory / PID_NAME).write_text(f"{self.pid}\n")
        return listener

    def _unlisten(self, listener: socket.socket) -> None:
        """Close and remove the socket and the pid file. The lock stays held until the process exits
        (the kernel lets it go then): whoever takes it next knows this server is gone, not going."""
        listener.close()
        for p in (self.path, self.path.parent / PID_NAME):
            with contextlib.suppress(OSError):
                p.unlink()

    def _close_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @staticmethod
    def _same_user(conn: socket.socket) -> bool:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return bool(uid == os.getuid())

    # -- a worker's side --------------------------------------------------------------------

    def handle(self, conn: socket.socket) -> NoReturn:
        """In a forked worker: take the launcher's command over and run it; never returns."""
        import faulthandler

        faulthandler.unregister(signal.SIGUSR1)  # the server's stack dump (``server run``)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            conn.settimeout(10)
            msg, fds = protocol.recv_with_fds(conn)
            conn.settimeout(None)
        except (OSError, EOFError, ValueError, protocol.ProtocolError):
            os._exit(2)
        op = msg.get("op")
        if op != "run":
            for fd in fds:
                os.close(fd)
            self._control(conn, str(op))
        stale = self._stale()
        if stale or len(fds) != 3:
            with contextlib.suppress(OSError):
                protocol.send(conn, {"stale": stale or "no stdio"})
            if stale:
                log.info("%s: exiting", stale)
                os.kill(self.pid, signal.SIGTERM)
            os._exit(0)
        os.setsid()  # not in the server's process group: signals to it do not reach the build
        try:
            self._take_over(msg, fds)
            _apply_rlimits(msg.get("rlimits") or {})
        except Exception as exc:  # e.g. the caller's directory is gone: it runs (and reports) it itself
            with contextlib.suppress(OSError):
                protocol.send(conn, {"stale": f"cannot take the command over: {exc}"})
            os._exit(0)
        protocol.send(conn, {"started": os.getpid()})
        done = threading.Event()
        threading.Thread(target=self._watch, args=(conn, done), name="launcher", daemon=True).start()
        rc = _run_cli([str(a) for a in msg.get("argv", [])])
        done.set()
        _finish()
        with contextlib.suppress(OSError):
            protocol.send(conn, {"exit": rc})
        # what interpreter finalization would add is tearing down a heap the server built: 50 ms the
        # caller would wait for (its pipes stay open until this process is gone)
        os._exit(rc)

    def _control(self, conn: socket.socket, op: str) -> NoReturn:
        stale = self._stale() if op == "ping" else ""
        with contextlib.suppress(OSError):
            if stale:  # `status` and `start` must not report a server that would refuse every command
                protocol.send(conn, {"stale": stale})
                log.info("%s: exiting", stale)
                os.kill(self.pid, signal.SIGTERM)
            elif op == "ping":
                protocol.send(conn, {"pong": {
                    "pid": self.pid, "version": __version__, "socket": str(self.path),
                    "started_at": self.started_at, "served": self.served,
                    "warm_seconds": round(self.warm_seconds, 3), "idle_timeout": self.idle_timeout,
                }})
            elif op == "stop":
                protocol.send(conn, {"stopping": self.pid})
                os.kill(self.pid, signal.SIGTERM)
        os._exit(0)

    def _stale(self) -> str:
        now = fingerprint(_code_roots(self.watch))
        if now == self._print:
            return ""
        changed = sorted(set(now.items()) ^ set(self._print.items()))
        return f"{changed[0][0]} changed since the server started" if changed else "sources changed"

    @staticmethod
    def _take_over(msg: dict[str, Any], fds: list[int]) -> None:
        """The caller's directory, environment, umask, then its stdio (last: until then, a failure
        leaves the caller's terminal alone)."""
        os.chdir(str(msg.get("cwd") or "/"))
        env = msg.get("env") or {}
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        time.tzset()
        tempfile.tempdir = None
        os.umask(int(msg.get("umask", 0o022)))
        for target, fd in enumerate(fds):
            if fd != target:
                os.dup2(fd, target)
                os.close(fd)
        encoding, errors = (msg.get("encoding") or ["utf-8", "strict"])[:2]
        sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115
        # line-buffered on a terminal (buffering=1), as the interpreter sets its own stdio up
        sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, encoding=encoding,  # noqa: SIM115
                          errors=errors, closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding=encoding, errors="backslashreplace",  # noqa: SIM115
                          closefd=False)
        sys.argv = ["amibake", *[str(a) for a in msg.get("argv", [])]]

    @staticmethod
    def _watch(conn: socket.socket, done: threading.Event) -> None:
        """Signals forwarded by the launcher; its connection closing (the launcher died) is SIGTERM,
        with the output sent nowhere: the command's cleanup must not fail on a closed pipe."""
        me = os.getpid()
        while True:
            try:
                msg = protocol.recv(conn)
            except (OSError, EOFError, ValueError, protocol.ProtocolError):
                if not done.is_set():
                    _release_stdio()
                    os.kill(me, signal.SIGTERM)
                return
            sig = msg.get("signal")
            if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT) and not done.is_set():
                os.kill(me, int(sig))


def _apply_rlimits(limits: dict[int, Any]) -> None:
    """The launcher's resource limits (``ulimit -t``, ``-v``, ``-c``...), as an in-process run would
    have them. A limit this process may not raise is lowered as far as it may go. CPU time counts
    from the fork, as an in-process run's counts from its start."""
    import resource

    for res, pair in limits.items():
        try:
            soft, hard = int(pair[0]), int(pair[1])
            _cur_soft, cur_hard = resource.getrlimit(int(res))
            try:
                resource.setrlimit(int(res), (soft, hard))
            except (ValueError, OSError):  # hard above ours and we are not root: keep ours
                inf = resource.RLIM_INFINITY
                capped = cur_hard if hard == inf or (cur_hard != inf and hard > cur_hard) else hard
                low = capped if soft == inf or (capped != inf and soft > capped) else soft
                resource.setrlimit(int(res), (low, capped))
        except (ValueError, OSError, TypeError, IndexError):
            continue


def _finish() -> None:
    """A normal exit's work, minus finalizing the heap: join the command's threads, run the exit
    handlers (logging flush, temporary-file finalizers), flush and release the caller's stdio."""
    me = threading.current_thread()
    for t in threading.enumerate():
        if t is not me and not t.daemon:
            t.join()
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _release_stdio()


def _release_stdio() -> None:
    """Point fds 0-2 at /dev/null: the caller's pipes and terminal are let go of."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _run_cli(argv: list[str]) -> int:
    from amibake.cli.main import main

    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def server_log(path: Path | None) -> Iterator[None]:
    """The server's own log (start, stop, stale): a file next to the socket, or stderr."""
    handler: logging.Handler
    if path is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
