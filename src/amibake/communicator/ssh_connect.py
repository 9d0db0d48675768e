"""Connecting over SSH for :mod:`amibake.communicator.ssh`: asyncssh's options for one hop (keys,
certificates, the agent, passwords and keyboard-interactive answers, algorithms), the TCP relays
(quick ACKs, ``ssh_read_write_timeout``), the bastion chain and the ``ssh_*_tunnels``.

:func:`amibake.communicator.ssh.connect` retries :func:`_connect_chain` until the SSH timeout; the
communicator calls it again to reconnect a lost connection.
"""

from __future__ import annotations

import _socket
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import asyncssh

from amibake.communicator.settings import SSHSettings
from amibake.errors import CommunicatorError

#: measured fastest on hosts with AES instructions (see bench/ssh-throughput)
PREFERRED_CIPHER = "aes128-gcm@openssh.com"


class _AuthFailed(Exception):
    pass


def _options(s: SSHSettings) -> dict[str, Any]:
    """asyncssh's options for one hop. Public keys are the given ones only (with the agent's added
    by :func:`_connect_once` for ``agent_auth``): never ``~/.ssh`` files, and the agent only when
    asked, as Packer's ``SSHConfigFunc``/``sshBastionConfig``."""
    keys: list[Any] = []
    try:
        if s.private_key_pem:
            # The PEM comes from the builder (the temporary key pair EC2 just created, or the key
            # file it read). Checking an RSA key's math costs 20-100 ms of CPU per build and
            # proves nothing the login does not: a broken key still fails there.
            keys.append(asyncssh.import_private_key(s.private_key_pem, unsafe_skip_rsa_key_validation=True))
        if s.private_key_file:
            keys.append(asyncssh.read_private_key(os.path.expanduser(s.private_key_file)))
        if s.certificate_file and keys:
            cert = asyncssh.read_certificate(os.path.expanduser(s.certificate_file))
            keys = [(keys[0], cert), *keys[1:]]
    except (OSError, asyncssh.KeyImportError) as exc:
        raise CommunicatorError(f"cannot load the SSH private key: {exc}") from exc
    if s.ciphers:
        enc = list(s.ciphers)
    else:
        defaults = [a.decode() for a in asyncssh.encryption.get_default_encryption_algs()]
        enc = [PREFERRED_CIPHER] + [a for a in defaults if a != PREFERRED_CIPHER]
    opts: dict[str, Any] = {
        "port": s.port,
        "username": s.username or None,
        "known_hosts": None,
        "config": None,
        "encryption_algs": enc,
        # a zero or negative interval (Packer's "-1s") disables keepalives
        "keepalive_interval": max(0.0, s.keepalive_interval) or None,
        "client_keys": keys,
        # None: asyncssh neither offers the agent's keys on its own nor reads SSH_AUTH_SOCK
        "agent_path": None,
        "agent_forwarding": (os.environ.get("SSH_AUTH_SOCK") or False) if s.agent_forwarding else False,
        "password": s.password,
        "kbdint_auth": s.password is not None or s.interactive,
    }
    if s.kex_algorithms:
        opts["kex_algs"] = list(s.kex_algorithms)
    return opts


class _Client(asyncssh.SSHClient):
    """Keyboard-interactive answers: with ``interactive`` (``ssh_bastion_interactive``) the server's
    questions are asked on the terminal, as Packer's ``KeyboardInteractive(tty)``; else every
    question is answered with the password, as Packer's ``PasswordKeyboardInteractive``."""

    def __init__(self, s: SSHSettings) -> None:
        self._password = s.password
        self._interactive = s.interactive
        self._kbdint_tried = False

    def kbdint_auth_requested(self) -> str | None:
        # once per connection, as Go's client tries each method once (a refused answer is final)
        if self._kbdint_tried or not (self._interactive or self._password is not None):
            return None
        self._kbdint_tried = True
        return ""

    async def kbdint_challenge_received(self, name: str, instructions: str, lang: str,
                                        prompts: Sequence[tuple[str, bool]]) -> list[str] | None:
        if self._interactive:
            return await asyncio.get_running_loop().run_in_executor(
                None, _ask_terminal, name, instructions, list(prompts))
        if self._password is None:
            return None
        return [self._password] * len(prompts)


def _ask_terminal(name: str, instructions: str, prompts: list[tuple[str, bool]]) -> list[str]:
    """Asks keyboard-interactive questions on the terminal: standard input when it is one, else
    ``/dev/tty`` (as Packer); answers are read without echo unless the server asks for echo."""
    import termios

    own = False
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            fd = sys.stdin.fileno()
        else:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
            own = True
    except (OSError, ValueError) as exc:
        raise asyncssh.PermissionDenied(
            f"ssh_bastion_interactive: no terminal to ask the bastion's questions on ({exc})") from exc
    try:
        for text in (name, instructions):
            if text:
                os.write(fd, text.encode("utf-8", "replace") + b"\r\n")
        answers = []
        for prompt, echo in prompts:
            old = termios.tcgetattr(fd)
            if not echo:  # before the prompt (as getpass): an answer typed at once is not echoed
                quiet = list(old)
                quiet[3] &= ~termios.ECHO
                termios.tcsetattr(fd, termios.TCSANOW, quiet)
            try:
                os.write(fd, prompt.encode("utf-8", "replace"))
                line = b""
                while not line.endswith(b"\n"):
                    data = os.read(fd, 1024)
                    if not data:
                        break
                    line += data
            finally:
                termios.tcsetattr(fd, termios.TCSANOW, old)
            if not echo:
                os.write(fd, b"\r\n")
            answers.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
        return answers
    finally:
        if own:
            os.close(fd)


class _Relay:
    """An asyncio protocol standing between a transport (a TCP socket, or an SSH channel of a
    bastion) and asyncssh's connection. Every hook goes to the connection; subclasses watch reads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # session_started() and the like
        return getattr(self.inner, name)

    def connection_made(self, transport: Any) -> None:
        self.inner.connection_made(transport)

    def data_received(self, data: bytes, *datatype: Any) -> None:
        self.inner.data_received(data, *datatype)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _QuickAckProtocol(_Relay):
    """Acknowledges every TCP read at once (see :class:`_Direct`)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self._sock: Any = None

    def connection_made(self, transport: Any) -> None:
        self._sock = transport.get_extra_info("socket")
        super().connection_made(transport)

    def data_received(self, data: bytes, *datatype: Any) -> None:
        if self._sock is not None:
            try:
                self._sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_QUICKACK, 1)
            except OSError:
                self._sock = None
        super().data_received(data, *datatype)


class ReadWriteTimeout(ConnectionError):
    """Nothing arrived on the connection for ``ssh_read_write_timeout``."""


class _ReadDeadline(_Relay):
    """``ssh_read_write_timeout``, as Packer's ``timeoutConn``: every read of the connection has a
    deadline that long; when nothing (output, keepalive reply, ...) arrives in time, the connection
    is dropped. A healthy connection keeps receiving keepalive replies (``ssh_keep_alive_interval``)."""

    def __init__(self, inner: Any, timeout: float) -> None:
        super().__init__(inner)
        self.timeout = timeout
        self._transport: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self.expired = False

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._timer = None
        if self._transport is not None:
            self._transport.abort()

    def connection_made(self, transport: Any) -> None:
        self._transport = transport
        self._arm()
        super().connection_made(transport)

    def data_received(self, data: bytes, *datatype: Any) -> None:
        self._arm()
        super().data_received(data, *datatype)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.expired:
            exc = ReadWriteTimeout(f"nothing received for {self.timeout:g} seconds (ssh_read_write_timeout)")
        super().connection_lost(exc)


class _Direct:
    """A direct TCP connection for asyncssh (given as its ``tunnel``) that ACKs every read at once.

    sshd keeps Nagle's algorithm on for sessions without a terminal: a small packet it writes while
    an earlier one is unacknowledged waits for the client's ACK, and Linux delays that ACK up to
    40 ms when the client has nothing to send. That happened on the first channel after login
    (sshd's host-keys message, then the channel confirmation): 40 ms in most builds, on loopback as
    on a real network. TCP_QUICKACK after each read sends the pending ACK immediately.
    """

    quick_ack = hasattr(_socket, "TCP_QUICKACK")

    async def create_connection(self, session_factory: Callable[[], Any], host: str,
                                port: int) -> tuple[Any, Any]:
        made: list[Any] = []

        def factory() -> Any:
            made.append(session_factory())
            return _QuickAckProtocol(made[0]) if self.quick_ack else _Relay(made[0])

        transport, _ = await asyncio.get_running_loop().create_connection(factory, host, port)
        return transport, made[0]


class _Deadlined:
    """Any tunnel (direct TCP, or a bastion connection) with :class:`_ReadDeadline` on its reads."""

    def __init__(self, tunnel: Any, timeout: float) -> None:
        self._tunnel = tunnel
        self._timeout = timeout
        self.watch: _ReadDeadline | None = None

    async def create_connection(self, session_factory: Callable[[], Any], host: str,
                                port: int) -> tuple[Any, Any]:
        made: list[Any] = []

        def factory() -> Any:
            made.append(session_factory())
            self.watch = _ReadDeadline(made[0], self._timeout)
            return self.watch

        transport, _ = await self._tunnel.create_connection(factory, host, port)
        made[0].set_extra_info(amibake_read_deadline=self.watch)
        return transport, made[0]


_DIRECT = _Direct()


async def _connect_once(s: SSHSettings, attempt_timeout: float, tunnel: Any = None) -> Any:
    opts = _options(s)
    agent = None
    tunnel = tunnel if tunnel is not None else _DIRECT
    if s.read_write_timeout > 0:
        tunnel = _Deadlined(tunnel, s.read_write_timeout)
    try:
        if s.agent_auth:
            # as Packer: the agent's keys (PublicKeysCallback(agent.Signers)) after the given ones
            sock = os.environ.get("SSH_AUTH_SOCK")
            if not sock:
                raise CommunicatorError("SSH agent authentication: SSH_AUTH_SOCK is not set")
            try:
                agent = await asyncssh.connect_agent(sock)
                opts["client_keys"] = [*opts["client_keys"], *await agent.get_keys()]
            except (OSError, asyncssh.Error, ValueError) as exc:
                raise CommunicatorError(
                    f"cannot use the SSH agent at SSH_AUTH_SOCK: {_describe(exc)}") from exc
        opts["client_keys"] = opts["client_keys"] or None  # [] would be "the default key files"
        return await asyncssh.connect(s.host, tunnel=tunnel, connect_timeout=attempt_timeout,
                                      login_timeout=attempt_timeout,
                                      client_factory=lambda: _Client(s), **opts)
    except asyncssh.PermissionDenied as exc:
        raise _AuthFailed(f"authentication failed for user {s.username!r}: {exc.reason}") from exc
    except ValueError as exc:  # a bad algorithm name
        raise CommunicatorError(f"invalid SSH settings: {exc}") from exc
    finally:
        if agent is not None:
            agent.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncssh.Error):
        return f"{type(exc).__name__}: {exc.reason}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


async def _connect_chain(s: SSHSettings, attempt_timeout: float) -> tuple[Any, Any]:
    bastion = None
    if s.bastion is not None:
        bastion = await _connect_once(s.bastion, attempt_timeout)
    try:
        conn = await _connect_once(s, attempt_timeout, tunnel=bastion)
    except BaseException:
        if bastion is not None:
            bastion.close()
        raise
    try:
        await _open_tunnels(conn, s)
    except BaseException:
        conn.close()
        if bastion is not None:
            bastion.close()
        raise
    return conn, bastion


def _tunnel_parts(spec: str) -> tuple[int, str, int]:
    """``port:host:port`` (validated by the config; ``host`` may be a bracketed IPv6 address)."""
    listen, _, forward = spec.partition(":")
    host, _, port = forward.rpartition(":")
    return int(listen), host.removeprefix("[").removesuffix("]"), int(port)


async def _open_tunnels(conn: Any, s: SSHSettings) -> None:
    """``ssh_local_tunnels`` (``LOCAL_PORT:REMOTE_HOST:REMOTE_PORT``: a local listener whose
    connections the remote side opens to REMOTE_HOST) and ``ssh_remote_tunnels``
    (``REMOTE_PORT:LOCAL_HOST:LOCAL_PORT``), as OpenSSH's -L and -R; they close with the connection."""
    for spec in s.local_tunnels:
        lport, host, rport = _tunnel_parts(spec)
        try:
            await conn.forward_local_port("localhost", lport, host, rport)
        except (OSError, asyncssh.Error) as exc:
            raise CommunicatorError(f"ssh_local_tunnels {spec}: {_describe(exc)}") from exc
    for spec in s.remote_tunnels:
        rport, host, lport = _tunnel_parts(spec)
        try:
            await conn.forward_remote_port("", rport, host, lport)
        except (OSError, asyncssh.Error) as exc:
            raise CommunicatorError(f"ssh_remote_tunnels {spec}: {_describe(exc)}") from exc
