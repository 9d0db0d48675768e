"""The client side of a Session Manager data channel, without I/O (the plugin's ``DataChannel``).

:class:`DataChannel` numbers what the client sends, keeps it until the agent acknowledges it
(resent when the retransmission timeout passes, and all of it after a reconnection), acknowledges
what the agent sends, puts the agent's messages back in order, and answers the handshake
(``HandshakeRequest`` -> ``HandshakeResponse``; ``HandshakeComplete``). The tunnel
(:mod:`.tunnel`) moves the bytes it returns.

Where amibake differs from the plugin: a message the agent sends again after it was processed (its
acknowledgement was lost, e.g. with a dropped WebSocket) is acknowledged again, so that the agent
stops resending it; and the outgoing buffer is never trimmed (the tunnel waits while it is full).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amibake.plugins.amazon.ssm.message import (
    ACKNOWLEDGE,
    CHANNEL_CLOSED,
    INPUT_STREAM,
    OUTPUT_STREAM,
    ClientMessage,
    PayloadType,
    PortFlag,
    ProtocolError,
    acknowledged_sequence,
    acknowledgement,
    flag_payload,
)

#: the version amibake gives as its client version (the session-manager-plugin's it speaks as)
CLIENT_VERSION = "1.2.0.0"
#: the plugin's timing constants (config.go), in seconds
DEFAULT_RTO = 0.2
DEFAULT_RTT = 0.1
MAX_RTO = 1.0
CLOCK_GRANULARITY = 0.01
RESEND_INTERVAL = 0.1
RESEND_MAX_ATTEMPTS = 3000
#: at most this many messages wait for their acknowledgement / are held out of order
BUFFER_CAPACITY = 10000
#: bytes of port data per message (the plugin's StreamDataPayloadSize)
STREAM_CHUNK = 1024
#: the agent version from which port sessions are multiplexed (smux) by the plugin
MUX_AGENT_VERSION = "3.0.196.0"


@dataclass
class Pending:
    raw: bytes
    sequence_number: int
    last_sent: float
    attempts: int = 0


@dataclass
class Received:
    """What one incoming message asks of the tunnel."""

    #: messages to send now (acknowledgements, the handshake response)
    replies: list[bytes] = field(default_factory=list)
    #: port data from the agent, in order
    data: list[bytes] = field(default_factory=list)
    #: flags the agent sent (a port session's DisconnectToPort, ...)
    flags: list[int] = field(default_factory=list)
    handshake_complete: bool = False
    #: the channel_closed output ("" when none), None while the channel is open
    closed: str | None = None
    #: the type of a message that asks nothing of the client ("" for the others)
    ignored: str = ""


def version_at_least(version: str, minimum: str) -> bool:
    def parts(v: str) -> list[int]:
        out = []
        for p in v.split("."):
            try:
                out.append(int(p))
            except ValueError:
                out.append(0)
        return out

    return parts(version) >= parts(minimum)


class DataChannel:
    """One session's channel state; survives reconnections of the WebSocket."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, client_version: str = CLIENT_VERSION,
                 capacity: int = BUFFER_CAPACITY) -> None:
        self.clock = clock
        self.client_version = client_version
        self.capacity = capacity
        #: the sequence number of the next message the client sends
        self.next_sequence = 0
        #: the sequence number of the agent's message processed next
        self.expected_sequence = 0
        self.outgoing: OrderedDict[int, Pending] = OrderedDict()
        self.incoming: dict[int, ClientMessage] = {}
        self.rto = DEFAULT_RTO
        self.rtt = DEFAULT_RTT
        self.rttvar = 0.0
        self.agent_version = ""
        self.session_type = ""
        self.session_properties: dict[str, Any] = {}
        self.handshake_done = False

    # -- sending ------------------------------------------------------------------------------------

    def send(self, payload_type: int, data: bytes) -> bytes:
        """A new ``input_stream_data`` message, numbered and kept until acknowledged."""
        msg = ClientMessage(message_type=INPUT_STREAM, sequence_number=self.next_sequence, payload=data,
                            payload_type=int(payload_type))
        raw = msg.encode()
        self.outgoing[self.next_sequence] = Pending(raw, self.next_sequence, self.clock())
        self.next_sequence += 1
        return raw

    def send_data(self, data: bytes) -> list[bytes]:
        """Port data, in messages of at most :data:`STREAM_CHUNK` bytes."""
        return [self.send(PayloadType.OUTPUT, data[i:i + STREAM_CHUNK])
                for i in range(0, len(data), STREAM_CHUNK)]

    def send_flag(self, flag: PortFlag) -> bytes:
        return self.send(PayloadType.FLAG, flag_payload(flag))

    @property
    def full(self) -> bool:
        return len(self.outgoing) >= self.capacity

    def due(self) -> list[bytes]:
        """The oldest unacknowledged message when its retransmission timeout has passed (the plugin
        resends one message per tick). :class:`ProtocolError` after too many attempts."""
        if not self.outgoing:
            return []
        first = next(iter(self.outgoing.values()))
        now = self.clock()
        if now - first.last_sent <= self.rto:
            return []
        if first.attempts >= RESEND_MAX_ATTEMPTS:
            raise ProtocolError(f"message {first.sequence_number} was resent {RESEND_MAX_ATTEMPTS} times "
                                "without an acknowledgement")
        first.attempts += 1
        first.last_sent = now
        return [first.raw]

    def unacknowledged(self) -> list[bytes]:
        """Everything not acknowledged yet, oldest first (resent after a reconnection)."""
        now = self.clock()
        for p in self.outgoing.values():
            p.last_sent = now
        return [p.raw for p in self.outgoing.values()]

    # -- receiving ----------------------------------------------------------------------------------

    def receive(self, raw: bytes) -> Received:
        """One binary frame from the agent."""
        msg = ClientMessage.decode(raw)
        out = Received()
        if msg.message_type == ACKNOWLEDGE:
            self._acknowledged(acknowledged_sequence(msg))
        elif msg.message_type == OUTPUT_STREAM:
            self._stream(msg, out)
        elif msg.message_type == CHANNEL_CLOSED:
            content = msg.json() if msg.payload else {}
            out.closed = str(content.get("Output", "")) if isinstance(content, dict) else ""
        else:
            # start_publication, pause_publication, and types this client does not know: ignored, as
            # the plugin does (it logs a warning for the unknown ones)
            out.ignored = msg.message_type
        return out

    def _acknowledged(self, seq: int) -> None:
        pending = self.outgoing.pop(seq, None)
        if pending is None:
            return
        # the plugin's round trip estimate (RFC 6298's smoothing, its constants)
        sample = max(0.0, self.clock() - pending.last_sent)
        self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.rtt - sample)
        self.rtt = 0.875 * self.rtt + 0.125 * sample
        self.rto = min(MAX_RTO, self.rtt + max(CLOCK_GRANULARITY, 4 * self.rttvar))

    def _stream(self, msg: ClientMessage, out: Received) -> None:
        seq = msg.sequence_number
        if seq < self.expected_sequence:
            out.replies.append(acknowledgement(msg).encode())  # processed already: its ack was lost
            return
        if seq > self.expected_sequence:
            if seq not in self.incoming and len(self.incoming) < self.capacity:
                self.incoming[seq] = msg
                out.replies.append(acknowledgement(msg).encode())
            return
        out.replies.append(acknowledgement(msg).encode())
        self._process(msg, out)
        self.expected_sequence += 1
        while self.expected_sequence in self.incoming:
            self._process(self.incoming.pop(self.expected_sequence), out)
            self.expected_sequence += 1

    def _process(self, msg: ClientMessage, out: Received) -> None:
        kind = msg.payload_type
        if kind == PayloadType.HANDSHAKE_REQUEST:
            out.replies.append(self._handshake_response(msg.json()))
        elif kind == PayloadType.HANDSHAKE_COMPLETE:
            self.handshake_done = True
            out.handshake_complete = True
        elif kind == PayloadType.ENC_CHALLENGE_REQUEST:
            raise ProtocolError("the session asks for KMS encryption, which amibake's tunnel does not "
                                "support")
        elif kind == PayloadType.FLAG:
            if len(msg.payload) >= 4:
                out.flags.append(int.from_bytes(msg.payload[:4], "big"))
        elif kind in (PayloadType.OUTPUT, 0) and msg.payload:
            out.data.append(msg.payload)
        # other payload types (stderr, exit code, size) have no meaning in a port session

    def _handshake_response(self, request: Any) -> bytes:
        if not isinstance(request, dict):
            raise ProtocolError(f"HandshakeRequest is not an object: {request!r}")
        self.agent_version = str(request.get("AgentVersion", ""))
        processed: list[dict[str, Any]] = []
        errors: list[str] = []
        for action in request.get("RequestedClientActions") or []:
            kind = str(action.get("ActionType", ""))
            params = action.get("ActionParameters")
            if isinstance(params, str):
                params = json.loads(params)
            if kind == "SessionType" and isinstance(params, dict):
                self.session_type = str(params.get("SessionType", ""))
                props = params.get("Properties")
                self.session_properties = props if isinstance(props, dict) else {}
                processed.append({"ActionType": kind, "ActionStatus": 1, "ActionResult": None, "Error": ""})
            else:
                error = (f"Failed to process action {kind}: amibake does not support KMS encryption"
                         if kind == "KMSEncryption" else f"Unsupported action {kind}")
                # as the plugin: a failed KMS action has status Failed; an unknown one, result Unsupported
                if kind == "KMSEncryption":
                    processed.append({"ActionType": kind, "ActionStatus": 2, "ActionResult": None,
                                      "Error": error})
                else:
                    processed.append({"ActionType": kind, "ActionStatus": 0, "ActionResult": 3,
                                      "Error": error})
                errors.append(error)
        response = {"ClientVersion": self.client_version, "ProcessedClientActions": processed,
                    "Errors": errors or None}
        return self.send(PayloadType.HANDSHAKE_RESPONSE, json.dumps(response).encode())

    @property
    def multiplexed(self) -> bool:
        """Whether the plugin would multiplex this port session with smux (agent 3.0.196.0 and later,
        local port forwarding)."""
        return (self.session_properties.get("type") == "LocalPortForwarding"
                and version_at_least(self.agent_version, MUX_AGENT_VERSION))
