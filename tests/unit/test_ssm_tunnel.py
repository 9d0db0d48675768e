"""The SSM tunnel against the emulated agent (tests/ssm_emulation.py) forwarding to a local echo
server: bytes both ways, the banner sent before the local connection, a dropped WebSocket resumed
with a new token, frames the agent swallowed resent, DisconnectToPort between local connections."""

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


@pytest.fixture
def emulator() -> Iterator[SsmEmulator]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emu = SsmEmulator(server.server_address[1]).start()
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


def test_connections_one_after_another_disconnect_to_port(emulator: SsmEmulator) -> None:
    tunnel = open_tunnel(emulator)
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


def test_a_multiplexing_agent_is_refused_by_name(emulator: SsmEmulator) -> None:
    emulator.agent_version = "3.1.0.0"
    with pytest.raises(TunnelError, match="multiplexes port sessions"):
        open_tunnel(emulator)
