"""An emulation of SSM Session Manager for the stack tests: the SSM JSON API's session calls and the
agent's side of a port-forwarding session's data channel, forwarding to a local TCP port (the
stack's sshd).

Built from AWS's published behaviour, not from amibake's code: the API shapes of StartSession,
ResumeSession and TerminateSession (AWS API reference, botocore's service model), and the data
channel as AWS's open-source session-manager-plugin speaks it (src/message/clientmessage.go and
messageparser.go: the 120-byte header with the UUID's halves swapped and the payload's SHA-256;
src/datachannel/streaming.go: the opening JSON frame with the token, sequence numbers,
acknowledgements, retransmission; the handshake of message/handshakemessage.go; the port session's
flags). The agent side plays port forwarding as the agent's version asks of the plugin: before
3.0.196.0 the basic kind (it dials the target port when the handshake completes, and again for the
data after ``DisconnectToPort``); from 3.0.196.0 the multiplexed kind, xtaci/smux version 1 frames in
the Output payloads (``ver | cmd | length uint16 LE | stream id uint32 LE``; SYN dials the target
for the stream, PSH carries data, FIN ends it, NOP keeps alive), one target connection per stream.

It is strict: every frame from the client is checked (header length, padding, digest, payload
length, message type, sequence numbers; a resent message must be identical) and what is wrong goes
to :attr:`SsmEmulator.violations`. :meth:`SsmEmulator.drop_after` aborts the WebSocket mid-session
(the next frame is left unacknowledged) and the session then accepts a resume with its new token;
:meth:`SsmEmulator.ignore` swallows frames so that the client must resend them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AGENT_VERSION = "3.0.161.0"
#: the first agent version whose port sessions the plugin multiplexes
MUX_VERSION = (3, 0, 196, 0)
HEADER = 116


# -- the data channel message, from the plugin's published layout ----------------------------------

def encode(mtype: str, seq: int, payload: bytes, payload_type: int, flags: int = 0) -> bytes:
    mid = uuid.uuid4().bytes
    return (struct.pack(">I", HEADER) + mtype.encode().ljust(32, b" ")
            + struct.pack(">IQqQ", 1, int(time.time() * 1000), seq, flags)
            + mid[8:] + mid[:8] + hashlib.sha256(payload).digest()
            + struct.pack(">II", payload_type, len(payload)) + payload)


@dataclass
class Frame:
    mtype: str
    seq: int
    flags: int
    mid: str
    payload_type: int
    payload: bytes
    raw: bytes


def decode(raw: bytes) -> tuple[Frame | None, str]:
    """A frame from the client, or None and what is wrong with it."""
    if len(raw) < 120:
        return None, f"frame of {len(raw)} bytes"
    (hl,) = struct.unpack_from(">I", raw, 0)
    if hl != HEADER:
        return None, f"header length {hl}"
    type_field = raw[4:36]
    mtype = type_field.decode("ascii", "replace").rstrip(" ")
    if type_field != mtype.encode().ljust(32, b" "):
        return None, f"message type field {type_field!r} is not space-padded"
    schema, created, seq, flags = struct.unpack_from(">IQqQ", raw, 36)
    if schema != 1 or created == 0:
        return None, f"schema {schema}, created {created}"
    half = raw[64:80]
    mid = str(uuid.UUID(bytes=half[8:] + half[:8]))
    digest = raw[80:112]
    ptype, plen = struct.unpack_from(">II", raw, 112)
    payload = raw[120:]
    if plen != len(payload):
        return None, f"payload length {plen} for {len(payload)} bytes"
    if hashlib.sha256(payload).digest() != digest:
        return None, "payload digest mismatch"
    return Frame(mtype, seq, flags, mid, ptype, payload, raw), ""


def ack(frame: Frame) -> bytes:
    content = {"AcknowledgedMessageType": frame.mtype, "AcknowledgedMessageId": frame.mid,
               "AcknowledgedMessageSequenceNumber": frame.seq, "IsSequentialMessage": True}
    return encode("acknowledge", 0, json.dumps(content).encode(), 0, flags=3)


# -- one session, the agent's side -------------------------------------------------------------------

@dataclass
class Session:
    id: str
    token: str
    target: str
    document: str
    parameters: dict[str, list[str]]
    state: str = "Connected"
    tokens_used: list[str] = field(default_factory=list)
    out_seq: int = 0
    expected: int = 0
    unacked: dict[int, tuple[bytes, float]] = field(default_factory=dict)
    held: dict[int, Frame] = field(default_factory=dict)
    seen: dict[int, bytes] = field(default_factory=dict)
    handshake: str = "none"  # none -> requested -> complete
    client_version: str = ""
    ws: Any = None
    connections: int = 0
    tcp_writer: asyncio.StreamWriter | None = None
    tcp_task: asyncio.Task[Any] | None = None
    bytes_to_target: int = 0
    bytes_from_target: int = 0
    frames_in: int = 0
    flags: list[int] = field(default_factory=list)
    mux: bool = False
    mux_buf: bytearray = field(default_factory=bytearray)
    #: smux stream id -> the target connection's writer and pump
    streams: dict[int, tuple[asyncio.StreamWriter, asyncio.Task[Any]]] = field(default_factory=dict)
    stream_ids: list[int] = field(default_factory=list)
    nops: int = 0


class SsmEmulator:
    """The SSM API (``endpoint``) and the data channel WebSocket server, forwarding to ``target_port``."""

    def __init__(self, target_port: int, *, agent_version: str = AGENT_VERSION) -> None:
        self.target_port = target_port
        self.agent_version = agent_version
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sessions: dict[str, Session] = {}
        self.violations: list[str] = []
        #: session id -> when StartSession answered (time.monotonic)
        self.started_at: dict[str, float] = {}
        #: StartSession answers TargetNotConnected this many times first
        self.not_connected = 0
        #: StartSession answers this error (code, message) instead, when set
        self.start_error: tuple[str, str] | None = None
        self._drop_after: int | None = None
        #: ask the client for KMS encryption in the handshake (a client that cannot is closed out)
        self.kms = False
        self._ignore = 0
        self.drops = 0
        self.ignored = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ssm-emulation", daemon=True)
        self._http: ThreadingHTTPServer | None = None
        self._ws_server: Any = None
        self.ws_port = 0
        self._lock = threading.Lock()

    # -- control ----------------------------------------------------------------------------------

    def start(self) -> SsmEmulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._http.serve_forever, name="ssm-api", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        asyncio.run_coroutine_threadsafe(self._close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def endpoint(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def drop_after(self, frames: int) -> None:
        """Abort the WebSocket when the client's ``frames``-th next frame arrives (left unacknowledged)."""
        self._drop_after = frames

    def ignore(self, frames: int) -> None:
        """Swallow the client's next ``frames`` input frames without a trace (they must be resent)."""
        self._ignore = frames

    def ops(self) -> list[str]:
        return [op for op, _ in self.calls]

    def open_sessions(self) -> list[str]:
        return [s.id for s in self.sessions.values() if s.state != "Terminated"]

    # -- the API ------------------------------------------------------------------------------------

    def api(self, op: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append((op, body))
        if op == "StartSession":
            if self.start_error is not None:
                return 400, {"__type": self.start_error[0], "message": self.start_error[1]}
            if self.not_connected > 0:
                self.not_connected -= 1
                return 400, {"__type": "TargetNotConnected",
                             "message": f"{body.get('Target')} is not connected."}
            sid = f"amibake-test-{secrets.token_hex(8)}"
            s = Session(sid, secrets.token_urlsafe(24), str(body.get("Target", "")),
                        str(body.get("DocumentName", "")), dict(body.get("Parameters") or {}))
            self.sessions[sid] = s
            self.started_at[sid] = time.monotonic()
            return 200, {"SessionId": sid, "TokenValue": s.token, "StreamUrl": self._url(sid)}
        if op in ("ResumeSession", "TerminateSession"):
            s = self.sessions.get(str(body.get("SessionId", "")))
            if s is None:
                return 400, {"__type": "DoesNotExistException", "Message": "no such session"}
            if op == "TerminateSession":
                asyncio.run_coroutine_threadsafe(self._terminate(s), self._loop).result(10)
                return 200, {"SessionId": s.id}
            if s.state == "Terminated":
                return 200, {"SessionId": s.id}
            s.token = secrets.token_urlsafe(24)
            return 200, {"SessionId": s.id, "TokenValue": s.token, "StreamUrl": self._url(s.id)}
        return 400, {"__type": "UnknownOperationException", "message": f"{op} is not emulated"}

    def _url(self, sid: str) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/v1/data-channel/{sid}?role=publish_subscribe"

    # -- the data channel ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        self._ws_server = await serve(self._channel, "127.0.0.1", 0, compression=None, max_size=None)
        self.ws_port = int(next(iter(self._ws_server.sockets)).getsockname()[1])

    async def _close_all(self) -> None:
        for s in self.sessions.values():
            await self._close_target(s)
            if s.ws is not None:
                s.ws.transport.abort()
        if self._ws_server is not None:
            self._ws_server.close()

    def violation(self, s: Session | None, what: str) -> None:
        self.violations.append(f"{s.id if s else '?'}: {what}")

    async def _channel(self, ws: Any) -> None:
        path = ws.request.path.split("?")[0]
        s = self.sessions.get(path.rsplit("/", 1)[-1])
        if s is None or s.state == "Terminated":
            await ws.close(1008, "no such session")
            return
        try:
            opening = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except Exception as exc:
            self.violation(s, f"no opening frame: {exc}")
            await ws.close(1008, "no opening frame")
            return
        expected_keys = {"MessageSchemaVersion", "RequestId", "TokenValue", "ClientId", "ClientVersion"}
        if set(opening) != expected_keys or opening["MessageSchemaVersion"] != "1.0":
            self.violation(s, f"opening frame {sorted(opening)}")
        if opening.get("TokenValue") != s.token or opening["TokenValue"] in s.tokens_used:
            self.violation(s, "opening frame with a stale or wrong token")
            await ws.close(1008, "bad token")
            return
        s.tokens_used.append(s.token)
        s.client_version = str(opening.get("ClientVersion", ""))
        s.ws = ws
        s.connections += 1
        if s.handshake == "none":
            request = {"AgentVersion": self.agent_version, "RequestedClientActions": [
                {"ActionType": "SessionType", "ActionParameters": {
                    "SessionType": "Port",
                    "Properties": {"portNumber": s.parameters.get("portNumber", ["22"])[0],
                                   "type": "LocalPortForwarding"}}}]}
            if self.kms:
                request["RequestedClientActions"].append(
                    {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "alias/emulated"}})
            await self._send_data(s, json.dumps(request).encode(), 5)
            s.handshake = "requested"
        else:  # a resumed channel: what the client has not acknowledged goes again
            for raw, _ in list(s.unacked.values()):
                await self._raw(s, raw)
        resender = asyncio.create_task(self._resend(s, ws))
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    self.violation(s, "text frame after the opening")
                    continue
                if self._drop_after is not None:
                    self._drop_after -= 1
                    if self._drop_after <= 0:
                        self._drop_after = None
                        self.drops += 1
                        ws.transport.abort()
                        return
                await self._frame(s, raw)
        except Exception:
            pass
        finally:
            resender.cancel()
            if s.ws is ws:
                s.ws = None

    async def _raw(self, s: Session, raw: bytes) -> None:
        ws = s.ws
        if ws is None:
            return
        try:
            await ws.send(raw)
        except Exception:
            pass

    async def _send_data(self, s: Session, payload: bytes, payload_type: int) -> None:
        raw = encode("output_stream_data", s.out_seq, payload, payload_type)
        s.unacked[s.out_seq] = (raw, time.monotonic())
        s.out_seq += 1
        await self._raw(s, raw)

    async def _resend(self, s: Session, ws: Any) -> None:
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for seq, (raw, sent) in sorted(s.unacked.items())[:1]:
                if now - sent > 0.3:
                    s.unacked[seq] = (raw, now)
                    await self._raw(s, raw)

    async def _frame(self, s: Session, raw: bytes) -> None:
        frame, problem = decode(raw)
        if frame is None:
            self.violation(s, problem)
            return
        s.frames_in += 1
        if frame.mtype == "acknowledge":
            content = json.loads(frame.payload)
            if frame.flags != 3 or frame.seq != 0:
                self.violation(s, f"acknowledge with flags {frame.flags}, sequence {frame.seq}")
            s.unacked.pop(int(content["AcknowledgedMessageSequenceNumber"]), None)
            return
        if frame.mtype != "input_stream_data":
            self.violation(s, f"unexpected message type {frame.mtype!r}")
            return
        if frame.flags != 0:
            self.violation(s, f"input_stream_data with flags {frame.flags}")
        if self._ignore > 0:
            self._ignore -= 1
            self.ignored += 1
            return
        if frame.seq in s.seen:
            # a resend: must be the same message, acknowledged again
            if s.seen[frame.seq] != frame.payload:
                self.violation(s, f"sequence number {frame.seq} reused for other data")
            await self._raw(s, ack(frame))
            return
        if frame.seq < s.expected:
            self.violation(s, f"sequence number {frame.seq} below {s.expected} never seen")
            return
        s.seen[frame.seq] = frame.payload
        await self._raw(s, ack(frame))
        if frame.seq > s.expected:
            s.held[frame.seq] = frame
            return
        await self._process(s, frame)
        s.expected += 1
        while s.expected in s.held:
            await self._process(s, s.held.pop(s.expected))
            s.expected += 1

    async def _process(self, s: Session, frame: Frame) -> None:
        if frame.payload_type == 6:  # HandshakeResponse
            body = json.loads(frame.payload)
            actions = body.get("ProcessedClientActions") or []
            if s.handshake != "requested" or not actions or actions[0].get("ActionStatus") != 1 \
                    or not body.get("ClientVersion"):
                self.violation(s, f"handshake response {body}")
                return
            if any(a.get("ActionStatus") != 1 for a in actions):
                # the agent gives up on a client that failed an action: channel_closed
                closed = {"MessageId": str(uuid.uuid4()), "CreatedDate": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "DestinationId": s.id, "SessionId": s.id, "MessageType": "channel_closed",
                          "SchemaVersion": 1, "Output": "; ".join(body.get("Errors") or [])}
                await self._raw(s, encode("channel_closed", 0, json.dumps(closed).encode(), 0))
                s.handshake = "failed"
                return
            s.handshake = "complete"
            await self._send_data(s, json.dumps({"HandshakeTimeToComplete": 1000000,
                                                 "CustomerMessage": ""}).encode(), 7)
            s.mux = tuple(int(x) for x in self.agent_version.split(".")) >= MUX_VERSION
            if not s.mux:
                await self._open_target(s)
        elif s.handshake != "complete":
            self.violation(s, f"payload type {frame.payload_type} before the handshake completed")
        elif frame.payload_type == 1 and s.mux:
            await self._mux_bytes(s, frame.payload)
        elif frame.payload_type == 1:
            if s.tcp_writer is None:
                await self._open_target(s)
            assert s.tcp_writer is not None
            s.tcp_writer.write(frame.payload)
            s.bytes_to_target += len(frame.payload)
            await s.tcp_writer.drain()
        elif frame.payload_type == 10:
            (flag,) = struct.unpack(">I", frame.payload)
            s.flags.append(flag)
            if flag == 1:  # DisconnectToPort: the next data goes to a new connection
                await self._close_target(s)
            elif flag == 2:
                await self._terminate(s)
        else:
            self.violation(s, f"unexpected payload type {frame.payload_type}")

    async def _mux_bytes(self, s: Session, data: bytes) -> None:
        s.mux_buf += data
        while len(s.mux_buf) >= 8:
            ver, cmd, length, sid = struct.unpack_from("<BBHI", s.mux_buf, 0)
            if ver != 1 or cmd > 3:
                self.violation(s, f"smux frame version {ver}, command {cmd}")
                s.mux_buf.clear()
                return
            if len(s.mux_buf) < 8 + length:
                return
            body = bytes(s.mux_buf[8:8 + length])
            del s.mux_buf[:8 + length]
            if cmd == 0:  # SYN
                if sid % 2 == 0 or sid in s.stream_ids or (s.stream_ids and sid <= s.stream_ids[-1]):
                    self.violation(s, f"smux SYN for stream {sid}")
                s.stream_ids.append(sid)
                reader, writer = await asyncio.open_connection("127.0.0.1", self.target_port)
                s.streams[sid] = (writer, asyncio.create_task(self._mux_pump(s, sid, reader)))
            elif cmd == 2:  # PSH
                if sid not in s.streams:
                    if sid not in s.stream_ids:
                        self.violation(s, f"smux PSH for stream {sid} never opened")
                    continue
                s.streams[sid][0].write(body)
                s.bytes_to_target += len(body)
                await s.streams[sid][0].drain()
            elif cmd == 1:  # FIN
                stream = s.streams.pop(sid, None)
                if stream is not None:
                    stream[1].cancel()
                    stream[0].close()
            else:
                s.nops += 1

    async def _mux_pump(self, s: Session, sid: int, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(1024 - 8)
            if not data:
                if s.streams.pop(sid, None) is not None:
                    await self._send_data(s, struct.pack("<BBHI", 1, 1, 0, sid), 1)
                return
            s.bytes_from_target += len(data)
            await self._send_data(s, struct.pack("<BBHI", 1, 2, len(data), sid) + data, 1)
            while len(s.unacked) > 1000:
                await asyncio.sleep(0.005)

    async def _open_target(self, s: Session) -> None:
        await self._close_target(s)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        s.tcp_writer = writer
        s.tcp_task = asyncio.create_task(self._pump(s, reader))

    async def _pump(self, s: Session, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(1024)
            if not data:
                return
            s.bytes_from_target += len(data)
            await self._send_data(s, data, 1)
            while len(s.unacked) > 1000:
                await asyncio.sleep(0.005)

    async def _close_target(self, s: Session) -> None:
        for writer, task in s.streams.values():
            task.cancel()
            writer.close()
        s.streams.clear()
        if s.tcp_task is not None:
            s.tcp_task.cancel()
            s.tcp_task = None
        if s.tcp_writer is not None:
            s.tcp_writer.close()
            s.tcp_writer = None

    async def _terminate(self, s: Session) -> None:
        s.state = "Terminated"
        await self._close_target(s)
        if s.ws is not None:
            await s.ws.close()


def _handler(emu: SsmEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            target = self.headers.get("X-Amz-Target", "")
            op = target.split(".", 1)[1] if target.startswith("AmazonSSM.") else target
            status, answer = emu.api(op, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
