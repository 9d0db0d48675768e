"""The ``ansible`` provisioner's SSH proxy adapter (Packer's ``packer-plugin-sdk/adapter``).

A one-off SSH server on ``127.0.0.1`` that Ansible's ssh connection plugin talks to. It accepts one
user with one public key (the temporary key pair generated for the run) and forwards each session
through the build's communicator: an ``exec`` request runs the same command on the machine (``scp -t``
and ``scp -f`` included), the ``sftp`` subsystem runs ``sftp_command`` there, pseudo-terminals and
exit statuses are passed along. It runs on the communicator's own event loop, with asyncssh.

Two things keep the proxy's cost per operation low (Ansible opens a session per command and one per
file transfer): the loopback link is not compressed (Ansible's ssh asks for compression with ``-C``;
on loopback it only costs CPU at both ends), and once Ansible has used the sftp subsystem, the next
session's ``sftp_command`` is started ahead on the machine, so a file transfer does not wait for the
program to start there. It is handed over only to an sftp session with the same environment and
terminal request; the one left over is closed with the adapter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import asyncssh

from amibake.errors import BuildError

log = logging.getLogger("amibake.provisioners.ansible.adapter")

DEFAULT_SFTP_COMMAND = "/usr/lib/sftp-server -e"
#: ``ansible_proxy_key_type`` -> asyncssh's algorithm for the generated keys
KEY_ALGORITHMS = {"ECDSA": "ecdsa-sha2-nistp256", "RSA": "ssh-rsa"}


class _Server(asyncssh.SSHServer):
    """Public-key authentication for one user and one key; nothing else."""

    def __init__(self, user: str, key: asyncssh.SSHKey) -> None:
        self._user = user
        self._key = key.public_data
        self.session_factory: Callable[[], _Session] = lambda: None  # type: ignore[assignment,return-value]

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        log.debug("ansible proxy: connection from %s", conn.get_extra_info("peername"))

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        return self.session_factory()

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        ok = username == self._user and key.public_data == self._key
        log.debug("ansible proxy: authentication attempt as %s: %s", username,
                  "accepted" if ok else "refused")
        return ok


class Adapter:
    """The proxy for one provisioner run: :meth:`start`, then :meth:`close` (safe to call twice)."""

    def __init__(self, comm: Any, user: str, *, sftp_command: str = "", local_port: int = 0,
                 key_type: str = "ECDSA") -> None:
        runner = getattr(comm, "_runner", None)
        if runner is None or not hasattr(comm, "_process"):
            raise BuildError("the ansible provisioner's proxy adapter needs the SSH communicator")
        self._comm = comm
        self._runner = runner
        self.user = user
        self.sftp_command = sftp_command or DEFAULT_SFTP_COMMAND
        self.local_port = local_port
        algorithm = KEY_ALGORITHMS[key_type.upper() or "ECDSA"]
        self._host_key = asyncssh.generate_private_key(algorithm)
        self._client_key = asyncssh.generate_private_key(algorithm)
        self._server: Any = None
        self.port = 0
        #: the private key file Ansible authenticates with (0600; removed by close)
        self.private_key_file = ""
        self._sessions: set[_Session] = set()
        #: ``sftp_command`` started for the next sftp session, and that session's request (env, pty)
        self._spare: asyncio.Task[Any] | None = None
        self._spare_kw: dict[str, Any] = {}

    def start(self) -> None:
        """Write the client key, listen on the first free loopback port (``local_port`` and the nine
        after it, or one the system picks)."""
        fd, self.private_key_file = tempfile.mkstemp(prefix="ansible-key")
        with os.fdopen(fd, "wb") as f:
            f.write(self._client_key.export_private_key("openssh"))
        tries = 10 if self.local_port else 1
        last: Exception | None = None
        for i in range(tries):
            port = self.local_port + i if self.local_port else 0
            try:
                self._server = self._runner.call(self._listen(port))
            except OSError as exc:
                last = exc
                continue
            self.port = self._server.sockets[0].getsockname()[1]
            return
        self.close()
        raise BuildError(f"Error setting up SSH proxy connection: {last}")

    async def _listen(self, port: int) -> Any:
        def server() -> _Server:
            srv = _Server(self.user, self._client_key)
            srv.session_factory = lambda: _Session(self)
            return srv

        return await asyncssh.create_server(
            server, "127.0.0.1", port, server_host_keys=[self._host_key], encoding=None,
            agent_forwarding=False, x11_forwarding=False, allow_pty=True, keepalive_interval=0,
            login_timeout=60, compression_algs=["none"])

    async def _take_spare(self, kw: dict[str, Any]) -> Any:
        """The ``sftp_command`` process started ahead for a session that asks for ``kw``, or None
        (none started, another request, or it could not start or has already ended: the caller starts
        one, which reports any error as before)."""
        task, self._spare = self._spare, None
        if task is None:
            return None
        if kw != self._spare_kw:
            _discard(task)
            return None
        try:
            remote = await asyncio.shield(task)
        except asyncio.CancelledError:
            _discard(task)
            raise
        except Exception as exc:
            log.debug("ansible proxy: the sftp command started ahead failed: %s", exc)
            return None
        if remote.exit_status is not None or remote.exit_signal is not None or remote.is_closing():
            remote.close()
            return None
        return remote

    def _start_spare(self, kw: dict[str, Any]) -> None:
        """Start ``sftp_command`` for the next sftp session, which is likely to ask for ``kw`` too."""
        if self._server is None or self._spare is not None:
            return
        self._spare_kw = kw
        self._spare = asyncio.ensure_future(self._comm._process(self.sftp_command, **kw))

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None

            async def _close() -> None:
                server.close()
                if self._spare is not None:
                    spare, self._spare = self._spare, None
                    _discard(spare)
                for session in list(self._sessions):
                    session.abort()
                await server.wait_closed()

            try:
                self._runner.call(_close())
            except Exception as exc:
                log.debug("ansible proxy: closing: %s", exc)
        if self.private_key_file:
            try:
                os.remove(self.private_key_file)
            except OSError:
                pass
            self.private_key_file = ""


def _discard(task: asyncio.Task[Any]) -> None:
    """Close the process ``task`` starts (now, or when it has started); a failure is only logged."""
    def done(t: asyncio.Task[Any]) -> None:
        if t.cancelled():
            return
        if t.exception() is not None:
            log.debug("ansible proxy: the sftp command started ahead failed: %s", t.exception())
        else:
            t.result().close()

    task.add_done_callback(done)


class _Session(asyncssh.SSHServerSession):  # type: ignore[type-arg]
    """One session of Ansible's, forwarded to one process on the machine (Packer's adapter
    ``handleSession``): exec runs the command, the sftp subsystem runs ``sftp_command``, a shell
    request the login shell; data, EOF, window changes and signals go through, and the exit status
    (or signal) comes back."""

    def __init__(self, adapter: Adapter) -> None:
        self._adapter = adapter
        self._chan: Any = None
        self._command: str | None = None
        self._sftp = False
        self._term: dict[str, Any] = {}
        self._remote: Any = None
        self._pending: list[bytes | None] = []  # stdin before the remote process exists; None = EOF
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, chan: Any) -> None:
        self._chan = chan
        self._adapter._sessions.add(self)

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int],
                      term_modes: Mapping[int, int]) -> bool:
        self._term = {"term_type": term_type, "term_size": term_size, "term_modes": term_modes}
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        if subsystem != "sftp":
            return False
        self._command = self._adapter.sftp_command
        self._sftp = True
        return True

    def session_started(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        chan = self._chan
        log.debug("ansible proxy: %s", self._command)
        try:
            env = chan.get_environment()
            kw: dict[str, Any] = dict(self._term)
            if env:
                kw["env"] = dict(env)
            remote = await self._adapter._take_spare(kw) if self._sftp else None
            if remote is None:
                remote = await self._adapter._comm._process(self._command, **kw)
        except Exception as exc:
            log.debug("ansible proxy: cannot start %r: %s", self._command, exc)
            chan.write_stderr(f"amibake proxy: {exc}\n".encode())
            chan.exit(255)
            return
        if self._sftp:
            self._adapter._start_spare(kw)
        self._remote = remote
        for data in self._pending:
            if data is None:
                remote.stdin.write_eof()
            else:
                remote.stdin.write(data)
        self._pending = []

        async def pump(reader: Any, write: Callable[[bytes], None]) -> None:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                write(data)

        try:
            await asyncio.gather(pump(remote.stdout, chan.write), pump(remote.stderr, chan.write_stderr))
            await remote.wait_closed()
        except (asyncssh.Error, OSError) as exc:
            log.debug("ansible proxy: session of %r lost: %s", self._command, exc)
            chan.exit(255)
            return
        if remote.exit_signal:
            signal, core, msg, lang = remote.exit_signal
            chan.exit_with_signal(signal, core, msg, lang)
        else:
            chan.exit(remote.exit_status if remote.exit_status is not None else 255)

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if self._remote is None:
            self._pending.append(data)
        else:
            self._remote.stdin.write(data)

    def eof_received(self) -> bool:
        if self._remote is None:
            self._pending.append(None)
        else:
            self._remote.stdin.write_eof()
        return True  # half open: output and the exit status still go back

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        if self._remote is not None:
            self._remote.change_terminal_size(width, height, pixwidth, pixheight)

    def signal_received(self, signal: str) -> None:
        if self._remote is not None:
            self._remote.send_signal(signal)

    def connection_lost(self, exc: Exception | None) -> None:
        self.abort()

    def abort(self) -> None:
        self._adapter._sessions.discard(self)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._remote is not None:
            self._remote.close()
