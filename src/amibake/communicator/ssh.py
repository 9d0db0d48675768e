"""The SSH communicator, on asyncssh, behind the synchronous :class:`Communicator` API.

All connections share one event loop in a daemon thread (:mod:`amibake.communicator.loop`);
each public method runs a coroutine there and waits for it in the caller's thread. Output
callbacks of :meth:`SSHCommunicator.run` are called in the caller's thread, never on the loop.

Transfers:

* ``scp`` (default): a single file goes through the legacy SCP sink protocol (``scp -t DIR``, as
  Packer), sent with large writes and no per-chunk waits. A directory tree goes as **one tar
  stream** into ``tar -x`` when the remote has ``tar`` (probed once per connection): one round
  trip for the whole tree instead of two per file. Without ``tar`` it falls back to ``scp -rt``
  with every header and file sent back to back (pipelined) while a reader checks the acks; the
  first error stops the upload. Either way the destination follows the sink's rules: ``src/``
  puts the contents into ``dst``; ``src`` lands in ``dst/<name>`` when ``dst`` is a directory,
  else becomes ``dst``.
* ``sftp``: asyncssh's SFTP client with parallel requests; trees upload several files at once.

Host keys are not checked (as Packer's ssh communicator).

Connecting (options, authentication, relays, bastion, tunnels) is in
:mod:`amibake.communicator.ssh_connect`; this module is the public face: :func:`connect` and
:class:`SSHCommunicator` (sessions and transfers).
"""

from __future__ import annotations

import asyncio
import codecs
import io
import os
import posixpath
import queue
import shlex
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import asyncssh

from amibake.communicator import scp, tree
from amibake.communicator.base import (
    CommandTimeoutError,
    Communicator,
    DisconnectedError,
    LineSink,
)
from amibake.communicator.loop import LoopThread, shared_loop
from amibake.communicator.settings import SSHSettings
from amibake.communicator.ssh_connect import PREFERRED_CIPHER as PREFERRED_CIPHER
from amibake.communicator.ssh_connect import ReadWriteTimeout as ReadWriteTimeout
from amibake.communicator.ssh_connect import _AuthFailed, _connect_chain, _describe
from amibake.errors import CommunicatorError

CHUNK = 1 << 20
SFTP_PARALLEL_FILES = 32

_LOST = (asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError, BrokenPipeError, EOFError)


# ---- connecting -------------------------------------------------------------------------------


def connect(settings: SSHSettings, *, cancel: threading.Event | None = None,
            log: Callable[[str], None] | None = None, loop: LoopThread | None = None) -> SSHCommunicator:
    """Connect, retrying refused connections, timeouts and handshake failures until
    ``settings.timeout``; authentication and key-exchange failures count against
    ``settings.handshake_attempts``. Polls ``cancel`` between attempts. The final error names the
    last failure."""
    runner = loop or shared_loop()
    say = log or (lambda _msg: None)
    deadline = time.monotonic() + settings.timeout
    where = f"{settings.username}@{settings.host}:{settings.port}"
    handshake_failures = 0
    delay = settings.retry_interval
    last = "no attempt made"
    while True:
        if cancel is not None and cancel.is_set():
            raise CommunicatorError("SSH wait cancelled")
        left = deadline - time.monotonic()
        if left <= 0:
            raise CommunicatorError(f"timeout waiting for SSH on {where}; last error: {last}")
        try:
            conn, bastion = runner.call(_connect_chain(settings, min(left, 30.0)))
            say(f"connected to SSH on {where}")
            return SSHCommunicator(settings, conn, bastion, runner)
        except _AuthFailed as exc:
            handshake_failures += 1
            last = str(exc)
        except asyncssh.KeyExchangeFailed as exc:
            handshake_failures += 1
            last = f"SSH handshake failed: {exc.reason}"
        except CommunicatorError:
            raise
        except (TimeoutError, OSError, asyncssh.Error) as exc:
            last = _describe(exc)
        if handshake_failures >= max(1, settings.handshake_attempts):
            raise CommunicatorError(
                f"SSH to {where} failed after {handshake_failures} handshake attempts: {last}")
        say(f"waiting for SSH on {where}: {last}")
        pause = min(delay, max(0.0, deadline - time.monotonic()))
        delay = min(delay * 2, 2.0)
        if cancel is not None:
            if cancel.wait(pause):
                raise CommunicatorError("SSH wait cancelled")
        else:
            time.sleep(pause)


# ---- the communicator -------------------------------------------------------------------------


class _Lines:
    """Turns a byte stream into lines for a callback queue (UTF-8, invalid bytes replaced)."""

    def __init__(self, tag: str, out: Callable[[tuple[str, str]], None]) -> None:
        self._tag = tag
        self._out = out
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""

    def feed(self, data: bytes) -> None:
        self._buf += self._dec.decode(data)
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._out((self._tag, line.removesuffix("\r")))

    def finish(self) -> None:
        self._buf += self._dec.decode(b"", final=True)
        if self._buf:
            self._out((self._tag, self._buf.removesuffix("\r")))
            self._buf = ""


_DONE = ("", "")


class SSHCommunicator(Communicator):
    def __init__(self, settings: SSHSettings, conn: Any, bastion: Any, runner: LoopThread) -> None:
        self.settings = settings
        self._conn = conn
        self._bastion = bastion
        self._runner = runner
        self._has_tar: bool | None = None
        self._closed = False

    # -- sessions --

    async def _channel_conn(self) -> Any:
        """The connection, reconnected once if it was lost (as Packer's communicator does)."""
        if self._closed:
            raise CommunicatorError("the SSH connection was closed")
        if self._conn.is_closed():
            try:
                self._conn, self._bastion = await _connect_chain(self.settings, 30.0)
            except (TimeoutError, _AuthFailed, OSError, asyncssh.Error) as exc:
                raise DisconnectedError(f"SSH connection lost and reconnecting failed: {exc}") from exc
        return self._conn

    async def _process(self, command: str, **kw: Any) -> Any:
        conn = await self._channel_conn()
        try:
            return await conn.create_process(command, encoding=None, **kw)
        except asyncssh.ChannelOpenError as exc:
            if conn.is_closed():
                raise DisconnectedError(f"SSH connection lost: {exc.reason}") from exc
            raise CommunicatorError(f"cannot open an SSH session: {exc.reason}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost: {_describe(exc)}") from exc

    # -- run --

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        lines: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        fut = asyncio.run_coroutine_threadsafe(
            self._run(command, pty or self.settings.pty, timeout, stdin, lines.put), self._runner.loop)
        sinks = {"out": stdout, "err": stderr}
        try:
            while True:
                item = lines.get()
                if item is _DONE:
                    break
                sink = sinks[item[0]]
                if sink is not None:
                    sink(item[1])
        except BaseException:
            fut.cancel()
            raise
        return fut.result()

    async def _run(self, command: str, pty: bool, timeout: float | None, stdin: bytes | None,
                   emit: Callable[[tuple[str, str]], None]) -> int:
        try:
            kw: dict[str, Any] = {"term_type": "xterm", "term_size": (200, 50)} if pty else {}
            proc = await self._process(command, **kw)
            try:
                task = self._pump(proc, stdin, emit)
                if timeout is not None and timeout > 0:
                    try:
                        await asyncio.wait_for(task, timeout)
                    except TimeoutError:
                        try:
                            proc.send_signal("KILL")  # honoured by OpenSSH >= 7.9; the close follows anyway
                        except (asyncssh.Error, OSError):
                            pass
                        raise CommandTimeoutError(
                            f"remote command did not finish within {timeout:g} seconds") from None
                else:
                    await task
            finally:
                proc.close()
            status = proc.exit_status
            sig = proc.exit_signal
            if status is not None and status >= 0:
                return int(status)
            if sig is not None:
                num = getattr(signal, "SIG" + sig[0], None)
                return 128 + int(num) if num is not None else 255
            watch = self._conn.get_extra_info("amibake_read_deadline")
            if watch is not None and watch.expired:
                raise DisconnectedError(f"SSH connection dropped during a remote command: nothing received "
                                        f"for {watch.timeout:g} seconds (ssh_read_write_timeout)")
            raise DisconnectedError("SSH connection lost before the remote command reported an exit status")
        finally:
            emit(_DONE)

    async def _pump(self, proc: Any, stdin: bytes | None,
                    emit: Callable[[tuple[str, str]], None]) -> None:
        async def read(stream: Any, tag: str) -> None:
            lines = _Lines(tag, emit)
            try:
                while data := await stream.read(65536):
                    lines.feed(data)
            except _LOST:
                pass
            finally:
                lines.finish()

        try:
            if stdin:
                proc.stdin.write(stdin)
            proc.stdin.write_eof()
        except _LOST:
            pass
        await asyncio.gather(read(proc.stdout, "out"), read(proc.stderr, "err"))
        await proc.wait_closed()

    # -- uploads --

    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        with _Source(src) as (f, size):
            if self.settings.file_transfer_method == "sftp":
                self._runner.call(self._sftp_upload(dst, f, size, mode))
            else:
                self._runner.call(self._scp_upload(dst, f, size, mode))

    async def _scp_upload(self, dst: str, f: BinaryIO, size: int, mode: int) -> None:
        target_dir, name = posixpath.split(dst)
        proc = await self._process(f"scp -t {shlex.quote(target_dir or '.')}")
        try:
            w, r = proc.stdin, proc.stdout
            w.write(scp.file_header(name, size, mode))
            await _ack(r)
            left = size
            while left:
                data = f.read(min(CHUNK, left))
                if not data:
                    raise CommunicatorError(f"the upload source for {dst} ended early")
                left -= len(data)
                w.write(data)
                await w.drain()
            w.write(scp.OK)
            await _ack(r)
            w.write_eof()
            await _finish(proc, "scp")
        except CommunicatorError as exc:
            raise CommunicatorError(f"upload to {dst} failed: {exc}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during upload to {dst}") from exc
        finally:
            proc.close()

    async def _sftp_upload(self, dst: str, f: BinaryIO, size: int, mode: int) -> None:
        conn = await self._channel_conn()
        try:
            async with conn.start_sftp_client() as sftp:
                await _sftp_put(sftp, dst, f, size, mode)
        except asyncssh.SFTPError as exc:
            raise CommunicatorError(f"upload to {dst} failed: {exc.reason}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during upload to {dst}") from exc

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        root, name = tree.split_source(src)
        entries = tree.walk(root, exclude)
        root_mode = stat.S_IMODE(root.stat().st_mode)
        if self.settings.file_transfer_method == "sftp":
            self._runner.call(self._sftp_upload_dir(dst, name, entries, root_mode))
        elif self.settings.tar_dirs and self._remote_has_tar():
            self._runner.call(self._tar_upload_dir(dst, name, entries, root_mode))
        else:
            self._runner.call(self._scp_upload_dir(dst, name, entries, root_mode))

    def _remote_has_tar(self) -> bool:
        if self._has_tar is None:
            self._has_tar = self.run("command -v tar >/dev/null 2>&1", timeout=60) == 0
        return self._has_tar

    async def _tar_upload_dir(self, dst: str, name: str | None, entries: list[tree.Entry],
                              root_mode: int) -> None:
        q = shlex.quote
        if name is None:
            script = f"mkdir -p -- {q(dst)} && cd -- {q(dst)}"
        else:
            # as scp's sink: into dst/name when dst is a directory, else dst becomes the directory
            script = (f"if [ -d {q(dst)} ]; then t={q(posixpath.join(dst, name))}; else t={q(dst)}; fi; "
                      f'mkdir -p -m {root_mode:04o} -- "$t" && cd -- "$t"')
        proc = await self._process(f"{script} && exec tar -x -m -f -")
        stderr = asyncio.ensure_future(proc.stderr.read())
        try:
            w = proc.stdin
            # the stream is built (files read) in a worker thread, one chunk ahead of the sending
            loop = asyncio.get_running_loop()
            chunks = tree.tar_stream(entries, CHUNK)
            nxt = loop.run_in_executor(None, next, chunks, b"")
            while chunk := await nxt:
                nxt = loop.run_in_executor(None, next, chunks, b"")
                w.write(chunk)
                await w.drain()
            w.write_eof()
            await proc.wait_closed()
            err = (await stderr).decode("utf-8", "replace").strip()
            if proc.exit_status != 0:
                raise CommunicatorError(f"upload to {dst} failed (remote tar exit status "
                                        f"{proc.exit_status}): {err[-2000:]}")
        except _LOST as exc:
            if proc.exit_status not in (None, 0):
                err = (await stderr).decode("utf-8", "replace").strip()
                raise CommunicatorError(f"upload to {dst} failed: {err[-2000:]}") from exc
            raise DisconnectedError(f"SSH connection lost during upload to {dst}") from exc
        finally:
            stderr.cancel()
            proc.close()

    async def _scp_upload_dir(self, dst: str, name: str | None, entries: list[tree.Entry],
                              root_mode: int) -> None:
        frames: list[tuple[bytes, tree.Entry | None]] = []
        depth: list[str] = []
        for e in entries:
            parent = posixpath.dirname(e.rel)
            while depth and depth[-1] != parent:
                depth.pop()
                frames.append((scp.END_DIR, None))
            if e.is_dir:
                frames.append((scp.dir_header(e.name, e.mode), None))
                depth.append(e.rel)
            else:
                frames.append((scp.file_header(e.name, e.size, e.mode), e))
        frames += [(scp.END_DIR, None)] * len(depth)
        if name is not None:
            frames = [(scp.dir_header(name, root_mode), None), *frames, (scp.END_DIR, None)]
        acks = sum(2 if e is not None else 1 for _, e in frames)

        proc = await self._process(f"scp -r -t {shlex.quote(dst)}")

        async def check_acks() -> None:
            for _ in range(acks):
                await _ack(proc.stdout)

        checker = asyncio.ensure_future(check_acks())
        try:
            w = proc.stdin
            for header, fe in frames:
                w.write(header)
                if fe is not None:
                    for chunk in tree.iter_chunks(fe.path, fe.size, CHUNK):
                        w.write(chunk)
                        await _drain_or_fail(w, checker)
                    w.write(scp.OK)
                    await _drain_or_fail(w, checker)
                if checker.done():
                    break
            await _drain_or_fail(w, checker)
            await checker
            w.write_eof()
            await _finish(proc, "scp")
        except CommunicatorError as exc:
            raise CommunicatorError(f"upload to {dst} failed: {exc}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during upload to {dst}") from exc
        finally:
            checker.cancel()
            proc.close()

    async def _sftp_upload_dir(self, dst: str, name: str | None, entries: list[tree.Entry],
                               root_mode: int) -> None:
        base = dst if name is None else posixpath.join(dst, name)
        conn = await self._channel_conn()
        try:
            async with conn.start_sftp_client() as sftp:
                await sftp.makedirs(base, exist_ok=True)
                if name is not None:
                    await sftp.chmod(base, root_mode)
                gate = asyncio.Semaphore(SFTP_PARALLEL_FILES)
                pending: list[Awaitable[None]] = []

                async def put(e: tree.Entry) -> None:
                    async with gate:
                        with open(e.path, "rb") as f:
                            await _sftp_put(sftp, posixpath.join(base, e.rel), f, e.size, e.mode)

                for e in entries:
                    if e.is_dir:
                        # directories first, files may be uploading meanwhile in earlier directories
                        await sftp.makedirs(posixpath.join(base, e.rel), exist_ok=True)
                        await sftp.chmod(posixpath.join(base, e.rel), e.mode)
                    else:
                        pending.append(asyncio.ensure_future(put(e)))
                await asyncio.gather(*pending)
        except asyncssh.SFTPError as exc:
            raise CommunicatorError(f"upload to {dst} failed: {exc.reason}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during upload to {dst}") from exc

    # -- downloads --

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        if isinstance(dst, Path):
            with open(dst, "wb") as f:
                self.download(src, f)
            return
        if self.settings.file_transfer_method == "sftp":
            self._runner.call(self._sftp_download(src, dst))
        else:
            self._runner.call(self._scp_download(src, dst))

    async def _scp_download(self, src: str, out: BinaryIO) -> None:
        proc = await self._process(f"scp -f {shlex.quote(src)}")
        try:
            w, r = proc.stdin, proc.stdout
            w.write(scp.OK)
            header = await _read_header(r)
            if header.kind != "C":
                raise CommunicatorError("remote file is a directory")
            w.write(scp.OK)
            await _copy_out(r, header.size, out)
            await _ack(r)
            w.write(scp.OK)
            w.write_eof()
            await _finish(proc, "scp")
        except CommunicatorError as exc:
            raise CommunicatorError(f"download of {src} failed: {exc}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during download of {src}") from exc
        finally:
            proc.close()

    async def _sftp_download(self, src: str, out: BinaryIO) -> None:
        conn = await self._channel_conn()
        try:
            async with conn.start_sftp_client() as sftp, sftp.open(src, "rb") as f:
                while data := await f.read(8 * CHUNK):
                    out.write(data)
        except asyncssh.SFTPError as exc:
            raise CommunicatorError(f"download of {src} failed: {exc.reason}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during download of {src}") from exc

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        Path(dst).mkdir(parents=True, exist_ok=True)
        self._runner.call(self._scp_download_dir(src.rstrip("/") or "/", Path(dst), exclude))

    async def _scp_download_dir(self, src: str, dst: Path, exclude: Sequence[str]) -> None:
        proc = await self._process(f"scp -r -f {shlex.quote(src)}")
        try:
            w, r = proc.stdin, proc.stdout
            stack: list[Path] = []
            rel: list[str] = []
            while True:
                w.write(scp.OK)
                first = await r.readexactly(1)
                if first == b"E":
                    await r.readline()
                    stack.pop()
                    rel.pop()
                    if not stack:
                        w.write(scp.OK)
                        break
                    continue
                if first in (b"\x01", b"\x02"):
                    raise scp.ack_error(first[0], await r.readline())
                if first == b"T":  # times (only with -p); never sent here, tolerated
                    await r.readline()
                    continue
                header = scp.parse_header(first + await r.readline())
                here = stack[-1] if stack else dst
                relpath = "/".join([*rel[1:], header.name]) if rel else ""
                skip = bool(relpath) and tree.is_excluded(relpath, exclude)
                if header.kind == "D":
                    target = here / header.name
                    if not skip:
                        target.mkdir(mode=header.mode or 0o755, exist_ok=True)
                    stack.append(target if not skip else Path(os.devnull))
                    rel.append(header.name)
                    continue
                w.write(scp.OK)
                if skip or str(here) == os.devnull:
                    await _copy_out(r, header.size, None)
                else:
                    with open(here / header.name, "wb") as f:
                        await _copy_out(r, header.size, f)
                    os.chmod(here / header.name, header.mode)
                await _ack(r)
            w.write_eof()
            await _finish(proc, "scp")
        except (CommunicatorError, asyncio.IncompleteReadError) as exc:
            raise CommunicatorError(f"download of {src} failed: {exc}") from exc
        except _LOST as exc:
            raise DisconnectedError(f"SSH connection lost during download of {src}") from exc
        finally:
            proc.close()

    # -- closing --

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def _close() -> None:
            for c in (self._conn, self._bastion):
                if c is not None:
                    c.close()
                    await c.wait_closed()

        self._runner.call(_close())


# ---- helpers ----------------------------------------------------------------------------------


async def _ack(r: Any) -> None:
    try:
        code = await r.readexactly(1)
    except asyncio.IncompleteReadError as exc:
        raise CommunicatorError("the remote scp ended unexpectedly") from exc
    if code != scp.OK:
        raise scp.ack_error(code[0], await r.readline())


async def _read_header(r: Any) -> scp.Header:
    line = await r.readline()
    if not line:
        raise CommunicatorError("the remote scp ended unexpectedly")
    if line[:1] in (b"\x01", b"\x02"):
        raise scp.ack_error(line[0], line[1:])
    return scp.parse_header(line)


async def _copy_out(r: Any, size: int, out: BinaryIO | None) -> None:
    left = size
    while left:
        data = await r.read(min(CHUNK, left))
        if not data:
            raise CommunicatorError("the remote scp ended in the middle of a file")
        left -= len(data)
        if out is not None:
            out.write(data)


async def _drain_or_fail(w: Any, checker: asyncio.Future[None]) -> None:
    """Wait for the write buffer to drain, or for the ack checker to fail (whichever first)."""
    drain = asyncio.ensure_future(w.drain())
    await asyncio.wait({drain, checker}, return_when=asyncio.FIRST_COMPLETED)
    if checker.done() and checker.exception() is not None:
        drain.cancel()
        checker.result()
    await drain


async def _finish(proc: Any, what: str) -> None:
    await proc.wait_closed()
    status = proc.exit_status
    if status == 127:
        raise CommunicatorError(f"{what} failed to start. This usually means that {what} is not "
                                "properly installed on the remote system.")
    if status is None and proc.exit_signal is None:
        raise DisconnectedError(f"SSH connection lost before the remote {what} finished")
    if status != 0:
        err = b""
        try:
            err = await asyncio.wait_for(proc.stderr.read(), 1.0)
        except (TimeoutError, *_LOST):
            pass
        text = err.decode("utf-8", "replace").strip()
        raise CommunicatorError(f"remote {what} exited with status {status}" + (f": {text}" if text else ""))


async def _sftp_put(sftp: Any, dst: str, f: BinaryIO, size: int, mode: int) -> None:
    attrs = asyncssh.SFTPAttrs(permissions=mode)
    async with sftp.open(dst, "wb", attrs) as rf:
        offset = 0
        while offset < size:
            data = f.read(min(8 * CHUNK, size - offset))
            if not data:
                raise CommunicatorError(f"the upload source for {dst} ended early")
            await rf.write(data, offset)
            offset += len(data)
        await rf.chmod(mode)  # the create mode is masked by umask and ignored for existing files


class _Source:
    """Any upload source as (binary file positioned at the data, size in bytes)."""

    def __init__(self, src: Path | BinaryIO | bytes) -> None:
        self._src = src
        self._own: BinaryIO | None = None

    def __enter__(self) -> tuple[BinaryIO, int]:
        src = self._src
        if isinstance(src, bytes | bytearray | memoryview):
            data = bytes(src)
            return io.BytesIO(data), len(data)
        if isinstance(src, str | Path):
            try:
                f: BinaryIO = open(src, "rb")
            except OSError as exc:
                raise CommunicatorError(f"cannot read {src}: {exc.strerror}") from exc
            self._own = f
            return f, os.fstat(f.fileno()).st_size
        try:
            pos = src.tell()
            end = src.seek(0, os.SEEK_END)
            src.seek(pos)
            return src, end - pos
        except (OSError, AttributeError, ValueError):
            # not seekable: spool it to learn its length (SCP is length-prefixed)
            spool = tempfile.TemporaryFile()
            while data := src.read(CHUNK):
                spool.write(data)
            size = spool.tell()
            spool.seek(0)
            self._own = spool
            return spool, size

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()
