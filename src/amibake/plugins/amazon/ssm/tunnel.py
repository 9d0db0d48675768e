"""A Session Manager port-forwarding tunnel: a loopback listener whose connections are carried over
the session's data channel WebSocket (the session-manager-plugin's port session, in Python).

The tunnel runs on an event loop thread of its own behind a synchronous API (:meth:`Tunnel.start`,
:meth:`Tunnel.close`). Bytes go to the agent as ``Output`` messages of at most 1024 bytes. As the
plugin does, the agent's version chooses how connections are carried:

* agents from 3.0.196.0 multiplex (``MuxPortForwarding``): every local connection is an smux stream
  (:mod:`.smux`) of one byte stream, so connections may overlap; NOP frames keep the session alive
  every 10 s for agents before 3.1.1511.0;
* older agents (``BasicPortForwarding``): one local connection at a time; when it ends, a
  ``DisconnectToPort`` flag tells the agent to reconnect to the instance's port for the next one.
  What the agent sends before a local connection exists (the SSH server's banner) waits for it.

A WebSocket that drops is resumed: ResumeSession gives a new token (and stream URL), the channel
reopens with it and every unacknowledged message is sent again; the sequence numbers go on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amibake.plugins.amazon.ssm import smux
from amibake.plugins.amazon.ssm.channel import CLIENT_VERSION, RESEND_INTERVAL, DataChannel, version_at_least
from amibake.plugins.amazon.ssm.message import PortFlag, ProtocolError, open_data_channel

log = logging.getLogger("amibake.ssm")

#: the plugin's data channel reconnection: 5 attempts, from 100-200 ms doubling up to 5 s
RECONNECT_ATTEMPTS = 5
RECONNECT_MAX_DELAY = 5.0
#: the plugin's WebSocket ping interval
PING_INTERVAL = 300.0
#: bytes read from the local connection at once (sent in 1024-byte messages)
LOCAL_READ = 65536


@dataclass(frozen=True)
class SessionInfo:
    """What StartSession and ResumeSession answer."""

    session_id: str
    token: str
    stream_url: str


class TunnelError(Exception):
    """The tunnel could not be opened, or broke."""


def bind_local(port: int) -> socket.socket:
    """A listening loopback socket on ``port`` (0: a free port the system picks)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(8)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class Tunnel:
    """The data channel of one session and the local listener it serves."""

    def __init__(self, sock: socket.socket, session: SessionInfo, *,
                 resume: Callable[[str], SessionInfo | None],
                 client_version: str = CLIENT_VERSION, connect_timeout: float = 30.0) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.session = session
        self.resume = resume
        self.client_id = str(uuid.uuid4())
        self.channel = DataChannel(client_version=client_version)
        self.connect_timeout = connect_timeout
        #: how many times the WebSocket was resumed
        self.resumes = 0
        #: why the tunnel stopped, if it broke
        self.error: str = ""
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._ws: Any = None
        self._closing = False
        self._handshake: asyncio.Event | None = None
        self._local_lock: asyncio.Lock | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._early: list[bytes] = []
        #: multiplexed (smux) port forwarding: the frames coming in, the stream ids, the open streams
        self.multiplexed = False
        self._frames = smux.FrameReader()
        self._ids = smux.StreamIds()
        self._streams: dict[int, asyncio.StreamWriter] = {}
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = threading.Event()

    # -- the synchronous API ------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, cancel: threading.Event | None = None) -> None:
        """Open the data channel and wait for its handshake; then serve the listener."""
        self._thread = threading.Thread(target=self._run, name=f"ssm-{self.session.session_id}", daemon=True)
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        waited = 0.0
        while True:
            try:
                fut.result(timeout=0.2)
                return
            except concurrent.futures.TimeoutError:
                waited += 0.2
                if (cancel is not None and cancel.is_set()) or waited >= timeout:
                    fut.cancel()
                    self.close()
                    if cancel is not None and cancel.is_set():
                        raise TunnelError("cancelled while opening the session's data channel") from None
                    raise TunnelError(
                        f"no handshake on the session's data channel within {timeout:.0f}s") from None
            except TunnelError:
                self.close()
                raise
            except Exception as exc:
                self.close()
                raise TunnelError(str(exc) or type(exc).__name__) from exc

    def close(self) -> None:
        """Stop serving and close the WebSocket (the session itself ends with TerminateSession)."""
        if self._thread is None or self._stopped.is_set():
            self.sock.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=15)
        except Exception as exc:  # the loop may be gone already
            log.debug("ssm: closing the tunnel: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        self._stopped.set()
        self.sock.close()

    # -- the loop -----------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _connect(self, url: str, token: str) -> Any:
        from websockets.asyncio.client import connect

        ws = await connect(url, compression=None, open_timeout=self.connect_timeout,
                           ping_interval=PING_INTERVAL, ping_timeout=60, max_size=None,
                           user_agent_header=None, close_timeout=2)
        await ws.send(open_data_channel(token, self.client_id, self.channel.client_version))
        return ws

    async def _open(self) -> None:
        self._handshake = asyncio.Event()
        self._local_lock = asyncio.Lock()
        self._ws = await self._connect(self.session.stream_url, self.session.token)
        self._tasks.append(asyncio.create_task(self._read_loop()))
        self._tasks.append(asyncio.create_task(self._resend_loop()))
        waiter = asyncio.create_task(self._handshake.wait())
        reader = self._tasks[0]
        await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not self._handshake.is_set():
            waiter.cancel()
            why = f": {self.error}" if self.error else ""
            raise TunnelError(f"the data channel closed before its handshake completed{why}")
        if self.channel.session_type and self.channel.session_type != "Port":
            raise TunnelError(f"the session is of type {self.channel.session_type!r}, not a port session")
        self.multiplexed = self.channel.multiplexed
        keepalive = not version_at_least(self.channel.agent_version, smux.NO_KEEPALIVE_AGENT_VERSION)
        if self.multiplexed and keepalive:
            self._tasks.append(asyncio.create_task(self._keepalive()))
        self._server = await asyncio.start_server(self._on_local, sock=self.sock)

    async def _send(self, raw: bytes) -> None:
        ws = self._ws
        if ws is None:
            return
        try:
            await ws.send(raw)
        except Exception as exc:  # a dropped socket: the read loop resumes; the message is resent
            log.debug("ssm: send failed: %s", exc)

    async def _read_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while not self._closing:
            try:
                async for frame in self._ws:
                    if isinstance(frame, str):
                        continue
                    got = self.channel.receive(frame)
                    for reply in got.replies:
                        await self._send(reply)
                    if got.handshake_complete and self._handshake is not None:
                        self._handshake.set()
                    for data in got.data:
                        await self._deliver(data)
                    for flag in got.flags:
                        if flag == PortFlag.CONNECT_TO_PORT_ERROR:
                            log.debug("ssm: the agent could not connect to the instance's port %s",
                                      self.session.session_id)
                    if got.ignored:
                        log.debug("ssm: %s message ignored", got.ignored)
                    if got.closed is not None:
                        self.error = f"the session's channel was closed: {got.closed}" if got.closed else \
                            "the session's channel was closed"
                        await self._stop_local()
                        return
            except ConnectionClosed as exc:
                log.debug("ssm: data channel dropped: %s", exc)
            except (ProtocolError, ValueError) as exc:
                self.error = f"ssm data channel: {exc}"
                log.debug("%s", self.error)
                await self._stop_local()
                return
            if self._closing:
                return
            try:
                await self._reconnect()
            except TunnelError as exc:
                self.error = str(exc)
                log.debug("ssm: %s", exc)
                await self._stop_local()
                return

    async def _reconnect(self) -> None:
        """ResumeSession, then reopen the channel with the new token and resend what is unacknowledged."""
        delay = random.uniform(0.1, 0.2)
        last = ""
        for _attempt in range(RECONNECT_ATTEMPTS):
            try:
                loop = asyncio.get_running_loop()
                info = await loop.run_in_executor(None, self.resume, self.session.session_id)
                if info is None or not info.token:
                    raise TunnelError(f"Session: {self.session.session_id} timed out.")
                url = info.stream_url or self.session.stream_url
                self.session = SessionInfo(self.session.session_id, info.token, url)
                self._ws = await self._connect(url, info.token)
                self.resumes += 1
                log.debug("ssm: resumed session %s", self.session.session_id)
                for raw in self.channel.unacknowledged():
                    await self._send(raw)
                return
            except TunnelError:
                raise
            except Exception as exc:
                last = str(exc) or type(exc).__name__
                log.debug("ssm: resuming session %s: %s", self.session.session_id, last)
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX_DELAY, delay * 2)
        raise TunnelError(f"could not resume session {self.session.session_id}: {last}")

    async def _resend_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(RESEND_INTERVAL)
            try:
                for raw in self.channel.due():
                    await self._send(raw)
            except ProtocolError as exc:
                self.error = str(exc)
                await self._stop_local()
                return

    async def _send_stream(self, data: bytes) -> None:
        """Bytes of the multiplexed stream, in messages of at most 1024 bytes, numbered at once (the
        agent puts them back in order, so frames sent from several connections never interleave)."""
        for raw in self.channel.send_data(data):
            await self._send(raw)

    async def _keepalive(self) -> None:
        while not self._closing:
            await asyncio.sleep(smux.KEEPALIVE_INTERVAL)
            await self._send_stream(smux.frame(smux.NOP, 0))

    async def _deliver(self, data: bytes) -> None:
        if self.multiplexed:
            await self._deliver_frames(data)
            return
        writer = self._writer
        if writer is None:
            self._early.append(data)
            return
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            pass

    async def _deliver_frames(self, data: bytes) -> None:
        for cmd, sid, payload in self._frames.feed(data):
            if cmd == smux.PSH:
                writer = self._streams.get(sid)
                if writer is not None and payload:
                    try:
                        writer.write(payload)
                        await writer.drain()
                    except (ConnectionError, OSError):
                        pass
            elif cmd == smux.FIN:
                writer = self._streams.pop(sid, None)
                if writer is not None:
                    writer.close()

    async def _stop_local(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        streams, self._streams = self._streams, {}
        for w in streams.values():
            w.close()
        if self._server is not None:
            self._server.close()

    async def _on_local(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.multiplexed:
            await self._on_local_stream(reader, writer)
            return
        assert self._local_lock is not None
        async with self._local_lock:  # one connection at a time, as the plugin's basic forwarding
            if self._closing or self.error:
                writer.close()
                return
            self._writer = writer
            early, self._early = self._early, []
            for data in early:
                await self._deliver(data)
            try:
                while not self._closing:
                    data = await reader.read(LOCAL_READ)
                    if not data:
                        break
                    while self.channel.full and not self._closing:
                        await asyncio.sleep(0.01)
                    for raw in self.channel.send_data(data):
                        await self._send(raw)
            except (ConnectionError, OSError):
                pass
            finally:
                if self._writer is writer:
                    self._writer = None
                writer.close()
                if not self._closing and not self.error:
                    await self._send(self.channel.send_flag(PortFlag.DISCONNECT_TO_PORT))

    async def _on_local_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One local connection as one smux stream: SYN, PSH frames, FIN when it ends (the agent's FIN
        closes it)."""
        if self._closing or self.error:
            writer.close()
            return
        sid = self._ids.open()
        self._streams[sid] = writer
        await self._send_stream(smux.frame(smux.SYN, sid))
        try:
            while not self._closing:
                data = await reader.read(smux.MAX_FRAME)
                if not data:
                    break
                while self.channel.full and not self._closing:
                    await asyncio.sleep(0.01)
                await self._send_stream(smux.push(sid, data))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            if self._streams.pop(sid, None) is not None and not self._closing and not self.error:
                await self._send_stream(smux.frame(smux.FIN, sid))

    async def _shutdown(self) -> None:
        self._closing = True
        await self._stop_local()
        for task in self._tasks:
            task.cancel()
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), timeout=3)  # a peer that is gone (stopped instance)
            except Exception as exc:
                log.debug("ssm: closing the WebSocket: %s", exc)
