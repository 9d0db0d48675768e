"""The Session Manager data channel, without I/O: message framing, acknowledgements, sequence
numbers, retransmission, reordering and the handshake (amibake.plugins.amazon.ssm)."""

from __future__ import annotations

import hashlib
import json
import struct
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.plugins.amazon.ssm.channel import DEFAULT_RTO, STREAM_CHUNK, DataChannel, version_at_least
from amibake.plugins.amazon.ssm.message import (
    ACKNOWLEDGE,
    INPUT_STREAM,
    OUTPUT_STREAM,
    ClientMessage,
    PayloadType,
    PortFlag,
    ProtocolError,
    acknowledged_sequence,
    acknowledgement,
    uuid_from_wire,
    uuid_to_wire,
)

MESSAGES = st.builds(
    ClientMessage,
    message_type=st.sampled_from([INPUT_STREAM, OUTPUT_STREAM, ACKNOWLEDGE, "channel_closed"]),
    sequence_number=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    payload=st.binary(max_size=3000),
    payload_type=st.integers(min_value=0, max_value=2**32 - 1),
    flags=st.integers(min_value=0, max_value=2**64 - 1),
    schema_version=st.integers(min_value=0, max_value=2**32 - 1),
    created_date=st.integers(min_value=1, max_value=2**64 - 1),
    message_id=st.uuids(),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def agent_message(seq: int, payload: bytes, payload_type: int = PayloadType.OUTPUT) -> bytes:
    return ClientMessage(message_type=OUTPUT_STREAM, sequence_number=seq, payload=payload,
                         payload_type=payload_type).encode()


def acked(raw: bytes) -> int:
    msg = ClientMessage.decode(raw)
    assert msg.message_type == ACKNOWLEDGE
    return acknowledged_sequence(msg)


def test_layout_is_the_plugins() -> None:
    mid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    raw = ClientMessage(message_type=INPUT_STREAM, sequence_number=7, payload=b"hello", payload_type=1,
                        flags=0, schema_version=1, created_date=1234, message_id=mid).encode()
    assert struct.unpack(">I", raw[:4]) == (116,)
    assert raw[4:36] == b"input_stream_data" + b" " * 15
    assert struct.unpack(">IQqQ", raw[36:64]) == (1, 1234, 7, 0)
    # the id's least significant half first
    assert raw[64:80] == bytes.fromhex("8899aabbccddeeff0011223344556677")
    assert raw[80:112] == hashlib.sha256(b"hello").digest()
    assert struct.unpack(">II", raw[112:120]) == (1, 5)
    assert raw[120:] == b"hello" and len(raw) == 125


@given(MESSAGES)
def test_round_trip(msg: ClientMessage) -> None:
    back = ClientMessage.decode(msg.encode())
    assert back.message_type == msg.message_type
    assert (back.sequence_number, back.payload, back.payload_type, back.flags) == (
        msg.sequence_number, msg.payload, msg.payload_type, msg.flags)
    assert (back.schema_version, back.created_date, back.message_id) == (
        msg.schema_version, msg.created_date, msg.message_id)
    assert back.encode() == msg.encode()


@given(st.uuids())
def test_uuid_order_round_trips(u: uuid.UUID) -> None:
    assert uuid_from_wire(uuid_to_wire(u)) == u


@given(MESSAGES.filter(lambda m: len(m.payload) > 0), st.data())
def test_a_changed_payload_is_refused(msg: ClientMessage, data: st.DataObject) -> None:
    raw = bytearray(msg.encode())
    i = data.draw(st.integers(min_value=120, max_value=len(raw) - 1))
    raw[i] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(ProtocolError, match="payload Hash is not valid"):
        ClientMessage.decode(bytes(raw))


@pytest.mark.parametrize("cut", [0, 50, 119])
def test_short_messages_are_refused(cut: int) -> None:
    raw = ClientMessage(message_type=OUTPUT_STREAM, payload=b"x").encode()
    with pytest.raises(ProtocolError):
        ClientMessage.decode(raw[:cut])


def test_a_wrong_payload_length_is_refused() -> None:
    raw = bytearray(ClientMessage(message_type=OUTPUT_STREAM, payload=b"abc").encode())
    raw[116:120] = struct.pack(">I", 4)
    with pytest.raises(ProtocolError, match="payload length 4"):
        ClientMessage.decode(bytes(raw))


def test_missing_fields_are_refused() -> None:
    with pytest.raises(ProtocolError, match="CreatedDate"):
        ClientMessage.decode(ClientMessage(message_type=OUTPUT_STREAM, created_date=0).encode())
    with pytest.raises(ProtocolError, match="MessageType"):
        ClientMessage.decode(ClientMessage(message_type="").encode())
    # publication messages are not checked, as in the plugin
    ClientMessage.decode(ClientMessage(message_type="start_publication", created_date=0).encode())


def test_acknowledgement_is_the_plugins() -> None:
    msg = ClientMessage(message_type=OUTPUT_STREAM, sequence_number=42, payload=b"x", payload_type=1)
    ack = ClientMessage.decode(acknowledgement(msg).encode())
    assert (ack.message_type, ack.sequence_number, ack.flags, ack.payload_type) == (ACKNOWLEDGE, 0, 3, 0)
    assert json.loads(ack.payload) == {
        "AcknowledgedMessageType": OUTPUT_STREAM, "AcknowledgedMessageId": str(msg.message_id),
        "AcknowledgedMessageSequenceNumber": 42, "IsSequentialMessage": True}


def test_sending_numbers_and_chunks() -> None:
    ch = DataChannel()
    raws = ch.send_data(b"a" * (2 * STREAM_CHUNK + 5))
    msgs = [ClientMessage.decode(r) for r in raws]
    assert [m.sequence_number for m in msgs] == [0, 1, 2]
    assert [len(m.payload) for m in msgs] == [STREAM_CHUNK, STREAM_CHUNK, 5]
    assert {m.message_type for m in msgs} == {INPUT_STREAM} and {m.payload_type for m in msgs} == {1}
    flag = ClientMessage.decode(ch.send_flag(PortFlag.DISCONNECT_TO_PORT))
    assert (flag.sequence_number, flag.payload_type, flag.payload) == (3, 10, b"\x00\x00\x00\x01")
    assert list(ch.outgoing) == [0, 1, 2, 3]


def test_retransmission_until_acknowledged() -> None:
    clock = Clock()
    ch = DataChannel(clock=clock)
    first = ch.send(PayloadType.OUTPUT, b"one")
    ch.send(PayloadType.OUTPUT, b"two")
    assert ch.due() == []
    clock.now += DEFAULT_RTO + 0.01
    assert ch.due() == [first]  # the oldest only, once per timeout
    assert ch.due() == []
    clock.now += 0.05
    ch.receive(acknowledgement(ClientMessage.decode(first)).encode())
    assert list(ch.outgoing) == [1]
    assert ch.rto < 1.0
    assert ch.unacknowledged() == [ch.outgoing[1].raw]


def test_resend_gives_up_after_the_plugins_attempts() -> None:
    clock = Clock()
    ch = DataChannel(clock=clock)
    ch.send(PayloadType.OUTPUT, b"x")
    with pytest.raises(ProtocolError, match="resent 3000 times"):
        for _ in range(3001):
            clock.now += 2
            ch.due()


@given(st.permutations(list(range(12))))
def test_out_of_order_delivery_is_put_back_in_order(order: list[int]) -> None:
    ch = DataChannel()
    data: list[bytes] = []
    acks: list[int] = []
    for seq in order:
        got = ch.receive(agent_message(seq, f"<{seq}>".encode()))
        data += got.data
        acks += [acked(r) for r in got.replies]
    assert b"".join(data) == b"".join(f"<{i}>".encode() for i in range(12))
    assert sorted(acks) == list(range(12))
    assert ch.expected_sequence == 12 and ch.incoming == {}


def test_duplicates_are_acknowledged_again_never_delivered_twice() -> None:
    ch = DataChannel()
    raw = agent_message(0, b"once")
    assert ch.receive(raw).data == [b"once"]
    again = ch.receive(raw)
    assert again.data == [] and [acked(r) for r in again.replies] == [0]
    ahead = agent_message(2, b"later")
    ch.receive(ahead)
    dup = ch.receive(ahead)
    assert dup.data == [] and dup.replies == []  # already held
    assert ch.receive(agent_message(1, b"then")).data == [b"then", b"later"]


def test_digest_mismatch_from_the_agent_is_refused() -> None:
    raw = bytearray(agent_message(0, b"data"))
    raw[-1] ^= 1
    with pytest.raises(ProtocolError):
        DataChannel().receive(bytes(raw))


def handshake_request(agent: str = "3.0.161.0", kms: bool = False) -> bytes:
    actions = [{"ActionType": "SessionType",
                "ActionParameters": {"SessionType": "Port",
                                     "Properties": {"portNumber": "22", "type": "LocalPortForwarding"}}}]
    if kms:
        actions.append({"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "k"}})
    return agent_message(0, json.dumps({"AgentVersion": agent, "RequestedClientActions": actions}).encode(),
                         PayloadType.HANDSHAKE_REQUEST)


def test_handshake() -> None:
    ch = DataChannel()
    got = ch.receive(handshake_request())
    ack, response = (ClientMessage.decode(r) for r in got.replies)
    assert acknowledged_sequence(ack) == 0
    assert (response.message_type, response.payload_type, response.sequence_number) == (INPUT_STREAM, 6, 0)
    body = json.loads(response.payload)
    assert body["ClientVersion"] == "1.2.0.0"
    assert body["ProcessedClientActions"] == [
        {"ActionType": "SessionType", "ActionStatus": 1, "ActionResult": None, "Error": ""}]
    assert ch.session_type == "Port" and ch.agent_version == "3.0.161.0" and not ch.multiplexed
    done = ch.receive(agent_message(1, b'{"HandshakeTimeToComplete":1000,"CustomerMessage":""}',
                                    PayloadType.HANDSHAKE_COMPLETE))
    assert done.handshake_complete and ch.handshake_done
    assert 0 in ch.outgoing  # the response waits for its acknowledgement


def test_handshake_refuses_kms_and_notes_a_multiplexing_agent() -> None:
    ch = DataChannel()
    got = ch.receive(handshake_request(agent="3.2.0.0", kms=True))
    body = json.loads(ClientMessage.decode(got.replies[1]).payload)
    assert body["ProcessedClientActions"][1]["ActionStatus"] == 2
    assert body["Errors"] and "KMS" in body["Errors"][0]
    assert ch.multiplexed


def test_channel_closed_and_flags() -> None:
    ch = DataChannel()
    got = ch.receive(agent_message(0, b"\x00\x00\x00\x01", PayloadType.FLAG))
    assert got.flags == [1] and got.data == []
    closed = ClientMessage(message_type="channel_closed", payload=b'{"Output":"bye"}').encode()
    assert ch.receive(closed).closed == "bye"


def test_versions() -> None:
    assert version_at_least("3.0.196.0", "3.0.196.0") and version_at_least("3.1.0.0", "3.0.196.0")
    assert not version_at_least("2.3.722.0", "3.0.196.0")


def test_smux_frames_are_xtaci_smux_version_1() -> None:
    from amibake.plugins.amazon.ssm import smux

    assert smux.frame(smux.SYN, 3) == bytes([1, 0, 0, 0, 3, 0, 0, 0])
    assert smux.frame(smux.PSH, 5, b"ab") == bytes([1, 2, 2, 0, 5, 0, 0, 0]) + b"ab"
    ids = smux.StreamIds()
    assert [ids.open() for _ in range(3)] == [3, 5, 7]
    big = smux.push(3, b"x" * (smux.MAX_FRAME + 1))
    assert len(big) == 2 * 8 + smux.MAX_FRAME + 1


@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]), st.integers(min_value=0, max_value=2**32 - 1),
                          st.binary(max_size=300)), max_size=20), st.data())
def test_smux_frames_read_back_from_any_split(frames: list[tuple[int, int, bytes]],
                                              data: st.DataObject) -> None:
    from amibake.plugins.amazon.ssm import smux

    stream = b"".join(smux.frame(cmd, sid, body) for cmd, sid, body in frames)
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=8)))
    reader = smux.FrameReader()
    got: list[tuple[int, int, bytes]] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += reader.feed(stream[a:b])
    assert got == frames


def test_smux_refuses_another_version_or_command() -> None:
    from amibake.plugins.amazon.ssm import smux

    with pytest.raises(ProtocolError, match="version 2"):
        smux.FrameReader().feed(bytes([2, 0, 0, 0, 3, 0, 0, 0]))
    with pytest.raises(ProtocolError, match="command 4"):
        smux.FrameReader().feed(bytes([1, 4, 0, 0, 3, 0, 0, 0]))


@pytest.mark.parametrize("mtype", ["start_publication", "pause_publication", "some_future_type"])
def test_messages_that_ask_nothing_are_ignored(mtype: str) -> None:
    ch = DataChannel()
    got = ch.receive(ClientMessage(message_type=mtype, payload=b"{}").encode())
    assert got.ignored == mtype and got.replies == [] and got.data == [] and ch.expected_sequence == 0
