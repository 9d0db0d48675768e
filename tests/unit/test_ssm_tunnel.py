"""The SSM tunnel against the emulated agent (tests/ssm_emulation.py) forwarding to a local echo
server, with an agent that multiplexes (smux) and one that does not: bytes both ways, a dropped
WebSocket resumed with a new token, frames the agent swallowed resent; DisconnectToPort between
local connections (basic), overlapping connections as streams (multiplexed)."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from amibake.plugins.amazon.ssm.tunnel import SessionInfo, Tunnel, TunnelError, bind_local
from tests.ssm_emulation import SsmEmulator

BANNER = b"SSH-2.0-echo\r\n"


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(BANNER)
        while data := self.request.recv(65536):
            self.request.sendall(data)


BASIC, MUX, MUX_KEEPALIVE = "3.0.161.0", "3.1.1511.0", "3.0.196.0"


@pytest.fixture(params=[BASIC, MUX])
def emulator(request: pytest.FixtureRequest) -> Iterator[SsmEmulator]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emu = SsmEmulator(server.server_address[1], agent_version=getattr(request, "param", BASIC)).start()
    yield emu
    emu.stop()
    server.shutdown()
    server.server_close()


def open_tunnel(emu: SsmEmulator) -> Tunnel:
    status, answer = emu.api("StartSession", {"Target": "i-1",
                                              "DocumentName": "AWS-StartPortForwardingSession",
                                              "Parameters": {"portNumber": ["22"]}})
    assert status == 200

    def resume(sid: str) -> SessionInfo | None:
        _, a = emu.api("ResumeSession", {"SessionId": sid})
        if not a.get("TokenValue"):
            return None
        return SessionInfo(sid, a["TokenValue"], a.get("StreamUrl", ""))

    info = SessionInfo(answer["SessionId"], answer["TokenValue"], answer["StreamUrl"])
    tunnel = Tunnel(bind_local(0), info, resume=resume)
    tunnel.start(timeout=20)
    return tunnel


def exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
        # the client speaks first, as an SSH client does: after DisconnectToPort the agent dials the
        # port again only when data comes
        c.sendall(payload)
        got = b""
        want = len(BANNER) + len(payload)
        while len(got) < want:
            chunk = c.recv(65536)
            assert chunk, f"closed after {len(got)} of {want} bytes"
            got += chunk
    return got[len(BANNER):]


def test_bytes_go_both_ways_in_1024_byte_messages(emulator: SsmEmulator) -> None:
    tunnel = open_tunnel(emulator)
    try:
        payload = bytes(range(256)) * 400  # 100 KiB
        assert exchange(tunnel.port, payload) == payload
        s = next(iter(emulator.sessions.values()))
        assert s.handshake == "complete" and s.client_version == "1.2.0.0"
        assert s.bytes_to_target == len(payload) and s.frames_in >= len(payload) // 1024
        assert emulator.violations == []
    finally:
        tunnel.close()


def test_a_dropped_websocket_is_resumed_and_nothing_is_lost(emulator: SsmEmulator) -> None:
    tunnel = open_tunnel(emulator)
    try:
        emulator.drop_after(40)
        payload = b"".join(i.to_bytes(4, "big") for i in range(50000))  # 200 KiB
        assert exchange(tunnel.port, payload) == payload
        s = next(iter(emulator.sessions.values()))
        assert emulator.drops == 1 and tunnel.resumes == 1 and s.connections == 2
        assert emulator.ops().count("ResumeSession") == 1
        assert len(s.tokens_used) == 2 and s.tokens_used[0] != s.tokens_used[1]
        assert emulator.violations == []
    finally:
        tunnel.close()


def test_swallowed_frames_are_resent(emulator: SsmEmulator) -> None:
    tunnel = open_tunnel(emulator)
    try:
        emulator.ignore(3)
        payload = b"x" * 5000
        assert exchange(tunnel.port, payload) == payload
        assert emulator.ignored == 3 and emulator.violations == []
    finally:
        tunnel.close()


@pytest.mark.parametrize("emulator", [BASIC], indirect=True)
def test_connections_one_after_another_disconnect_to_port(emulator: SsmEmulator) -> None:
    tunnel = open_tunnel(emulator)
    assert not tunnel.multiplexed
    try:
        assert exchange(tunnel.port, b"first") == b"first"
        s = next(iter(emulator.sessions.values()))
        for _ in range(100):
            if s.flags:
                break
            threading.Event().wait(0.05)
        assert s.flags == [1]  # DisconnectToPort
        assert exchange(tunnel.port, b"second") == b"second"
        assert emulator.violations == []
    finally:
        tunnel.close()


@pytest.mark.parametrize("emulator", [MUX_KEEPALIVE], indirect=True)
def test_overlapping_connections_are_smux_streams(emulator: SsmEmulator) -> None:
    tunnel = open_tunnel(emulator)
    try:
        assert tunnel.multiplexed
        results: dict[int, bytes] = {}

        def one(i: int) -> None:
            results[i] = exchange(tunnel.port, bytes([i]) * (3000 + i * 1000))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        assert results == {i: bytes([i]) * (3000 + i * 1000) for i in range(4)}
        s = next(iter(emulator.sessions.values()))
        assert s.mux and sorted(s.stream_ids) == [3, 5, 7, 9] and s.flags == []
        for _ in range(100):  # each closed connection ends its stream (FIN)
            if not s.streams:
                break
            threading.Event().wait(0.05)
        assert s.streams == {} and emulator.violations == []
    finally:
        tunnel.close()


def test_kms_encryption_is_refused(emulator: SsmEmulator) -> None:
    emulator.kms = True
    with pytest.raises(TunnelError, match="handshake"):
        open_tunnel(emulator)
