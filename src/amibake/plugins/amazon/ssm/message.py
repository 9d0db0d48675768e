"""The Session Manager data channel's binary message (the session-manager-plugin's ``ClientMessage``).

Every field is big-endian, at a fixed offset::

    0   header length (uint32; 116, the offset of the payload length)
    4   message type (32 bytes, ASCII, padded with spaces)
    36  schema version (uint32)
    40  created date (uint64, milliseconds since the epoch)
    48  sequence number (int64)
    56  flags (uint64)
    64  message id (16 bytes: the UUID's least significant 8 bytes, then its most significant 8)
    80  SHA-256 digest of the payload (32 bytes)
    112 payload type (uint32)
    116 payload length (uint32)
    120 payload

A message is read as the plugin reads it: the payload starts at ``header length + 4``; a payload of
non-zero length must match its digest (``start_publication`` and ``pause_publication`` are not
checked). amibake is stricter in one way: the payload length field must equal the payload's size.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

#: the message types
INPUT_STREAM = "input_stream_data"
OUTPUT_STREAM = "output_stream_data"
ACKNOWLEDGE = "acknowledge"
CHANNEL_CLOSED = "channel_closed"
START_PUBLICATION = "start_publication"
PAUSE_PUBLICATION = "pause_publication"

HEADER_LENGTH = 116
PAYLOAD_OFFSET = HEADER_LENGTH + 4
MESSAGE_TYPE_LENGTH = 32

#: the byte layout from the schema version to the payload length (the message type and id apart)
_FIXED = struct.Struct(">IQqQ")  # schema version, created date, sequence number, flags
_TAIL = struct.Struct(">II")  # payload type, payload length


class PayloadType(IntEnum):
    OUTPUT = 1
    ERROR = 2
    SIZE = 3
    PARAMETER = 4
    HANDSHAKE_REQUEST = 5
    HANDSHAKE_RESPONSE = 6
    HANDSHAKE_COMPLETE = 7
    ENC_CHALLENGE_REQUEST = 8
    ENC_CHALLENGE_RESPONSE = 9
    FLAG = 10
    STDERR = 11
    EXIT_CODE = 12


class PortFlag(IntEnum):
    """The payload of a ``FLAG`` message of a port session (uint32, big-endian)."""

    DISCONNECT_TO_PORT = 1
    TERMINATE_SESSION = 2
    CONNECT_TO_PORT_ERROR = 3


class ProtocolError(ValueError):
    """A data channel message that cannot be read, or that breaks the protocol."""


def uuid_to_wire(value: uuid.UUID) -> bytes:
    """The plugin's order: the least significant half first."""
    raw = value.bytes
    return raw[8:] + raw[:8]


def uuid_from_wire(raw: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=raw[8:16] + raw[:8])


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class ClientMessage:
    message_type: str
    sequence_number: int = 0
    payload: bytes = b""
    payload_type: int = 0
    flags: int = 0
    schema_version: int = 1
    created_date: int = field(default_factory=now_ms)
    message_id: uuid.UUID = field(default_factory=uuid.uuid4)
    #: as read from the wire (None: computed when encoding)
    payload_digest: bytes | None = None
    #: as read from the wire (0: the default, 116)
    header_length: int = HEADER_LENGTH

    def encode(self) -> bytes:
        mtype = self.message_type.encode("ascii")
        if len(mtype) > MESSAGE_TYPE_LENGTH:
            raise ProtocolError(f"message type {self.message_type!r} is longer than {MESSAGE_TYPE_LENGTH} "
                                "bytes")
        digest = self.payload_digest
        if digest is None:
            digest = hashlib.sha256(self.payload).digest()
        return b"".join((
            struct.pack(">I", HEADER_LENGTH),
            mtype.ljust(MESSAGE_TYPE_LENGTH, b" "),
            _FIXED.pack(self.schema_version, self.created_date, self.sequence_number, self.flags),
            uuid_to_wire(self.message_id),
            digest,
            _TAIL.pack(self.payload_type, len(self.payload)),
            self.payload,
        ))

    @classmethod
    def decode(cls, raw: bytes, *, validate: bool = True) -> ClientMessage:
        """Read one message; with ``validate`` (the default) also check it as :meth:`validate` does."""
        if len(raw) < PAYLOAD_OFFSET:
            raise ProtocolError(f"message of {len(raw)} bytes is shorter than its {PAYLOAD_OFFSET}-byte "
                                "header")
        (header_length,) = struct.unpack_from(">I", raw, 0)
        try:
            mtype = raw[4:4 + MESSAGE_TYPE_LENGTH].strip(b"\x00").decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise ProtocolError("message type is not ASCII") from exc
        schema, created, seq, flags = _FIXED.unpack_from(raw, 36)
        message_id = uuid_from_wire(raw[64:80])
        digest = bytes(raw[80:112])
        payload_type, payload_length = _TAIL.unpack_from(raw, 112)
        if header_length + 4 > len(raw):
            raise ProtocolError(f"header length {header_length} is beyond the message's {len(raw)} bytes")
        payload = bytes(raw[header_length + 4:])
        if payload_length != len(payload):
            raise ProtocolError(f"payload length {payload_length} does not match the {len(payload)} bytes "
                                "sent")
        msg = cls(message_type=mtype, sequence_number=seq, payload=payload, payload_type=payload_type,
                  flags=flags, schema_version=schema, created_date=created, message_id=message_id,
                  payload_digest=digest, header_length=header_length)
        if validate:
            msg.validate()
        return msg

    def validate(self) -> None:
        """The plugin's ``Validate``: header length, type and date present; the payload's digest."""
        if self.message_type in (START_PUBLICATION, PAUSE_PUBLICATION):
            return
        if self.header_length == 0:
            raise ProtocolError("HeaderLength cannot be zero")
        if not self.message_type:
            raise ProtocolError("MessageType is missing")
        if self.created_date == 0:
            raise ProtocolError("CreatedDate is missing")
        if (self.payload and self.payload_digest is not None
                and hashlib.sha256(self.payload).digest() != self.payload_digest):
            raise ProtocolError("payload Hash is not valid")

    def json(self) -> Any:
        """The payload as JSON (acknowledgements, handshakes, channel_closed)."""
        try:
            return json.loads(self.payload)
        except ValueError as exc:
            raise ProtocolError(f"{self.message_type} payload is not JSON: {exc}") from exc


def acknowledgement(msg: ClientMessage) -> ClientMessage:
    """The acknowledgement of a stream data message, as the plugin sends it (sequence number 0,
    flags 3, payload type 0, the acknowledged message's type, id and sequence number as JSON)."""
    content = {
        "AcknowledgedMessageType": msg.message_type,
        "AcknowledgedMessageId": str(msg.message_id),
        "AcknowledgedMessageSequenceNumber": msg.sequence_number,
        "IsSequentialMessage": True,
    }
    return ClientMessage(message_type=ACKNOWLEDGE, sequence_number=0, flags=3,
                         payload=json.dumps(content, separators=(",", ":")).encode())


def acknowledged_sequence(msg: ClientMessage) -> int:
    """The sequence number an ``acknowledge`` message acknowledges."""
    content = msg.json()
    try:
        return int(content["AcknowledgedMessageSequenceNumber"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"acknowledge without a sequence number: {content!r}") from exc


def flag_payload(flag: PortFlag) -> bytes:
    return struct.pack(">I", int(flag))


def open_data_channel(token: str, client_id: str, client_version: str) -> str:
    """The first (text) frame on the WebSocket: the plugin's ``OpenDataChannelInput``."""
    return json.dumps({
        "MessageSchemaVersion": "1.0",
        "RequestId": str(uuid.uuid4()),
        "TokenValue": token,
        "ClientId": client_id,
        "ClientVersion": client_version,
    })
