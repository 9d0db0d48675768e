"""Packer's StepCreateSSMTunnel as amibake runs it (plugins/amazon/ssm/step.py), against the SSM
emulation (tests/ssm_emulation.py) reached through AWS_ENDPOINT_URL_SSM, with an echo server as the
instance's port: pause_before_ssm said and waited, StartSession retried while TargetNotConnected,
its end registered at once (TerminateSession), Packer's errors."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from amibake.aws.session import CLIENTS
from amibake.errors import BuildError
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ssm.step import open_tunnel
from amibake.steps.context import StepContext
from tests.ssm_emulation import SsmEmulator


class RecUi:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        self.lines.append(f"==> {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"    {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"ERR {message}")


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[SsmEmulator]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emu = SsmEmulator(server.server_address[1]).start()
    for key, value in {"AWS_ENDPOINT_URL_SSM": emu.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
                       "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                       "NO_PROXY": "127.0.0.1,localhost"}.items():
        monkeypatch.setenv(key, value)
    CLIENTS.clear()
    yield emu
    CLIENTS.clear()
    emu.stop()
    server.shutdown()
    server.server_close()


def state(**over: Any) -> Any:
    options: dict[str, Any] = dict(
        region="us-east-1", access_key="k", secret_key="s", skip_region_validation=True, source_ami="ami-1",
        instance_type="t2.micro", ssh_username="u", ami_name="a", ssh_interface="session_manager",
        iam_instance_profile="p", pause_before_ssm="100ms",
    )
    options.update(over)
    return SimpleNamespace(config=EbsConfig.model_validate(options), ui=RecUi(),
                           instance=SimpleNamespace(id="i-0123"), ssm_tunnel=None)


def test_session_started_retried_and_ended_by_its_undo(ssm: SsmEmulator) -> None:
    ssm.not_connected = 1
    st = state(ssh_port=2222)
    ctx = StepContext(ui=st.ui)
    port = open_tunnel(st, ctx)
    try:
        starts = [body for op, body in ssm.calls if op == "StartSession"]
        assert len(starts) == 2 and starts[1] == {
            "Target": "i-0123", "DocumentName": "AWS-StartPortForwardingSession",
            "Parameters": {"portNumber": ["2222"], "localPortNumber": [str(port)]}}
        (sid,) = ssm.sessions
        assert st.ui.lines == ["==> Waiting 100ms before establishing the SSM session...",
                               f'    Starting portForwarding session "{sid}".']
        assert [u.description for u in ctx.undo_stack] == [f"SSM session {sid}"]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"ping")
            assert c.recv(4) == b"ping"
    finally:
        for undo in reversed(ctx.undo_stack):
            undo.fn()
    assert ssm.ops()[-1] == "TerminateSession" and ssm.open_sessions() == [] and ssm.violations == []
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the listener is gone


def test_a_refused_start_session_is_packers_error(ssm: SsmEmulator) -> None:
    ssm.start_error = ("AccessDeniedException", "not allowed")
    st = state()
    ctx = StepContext(ui=st.ui)
    with pytest.raises(BuildError) as info:
        open_tunnel(st, ctx)
    prefix = 'ssm error: error encountered in starting session for instance "i-0123": '
    assert str(info.value).startswith(prefix)
    assert "not allowed" in str(info.value)
    assert ctx.undo_stack == [] and ssm.sessions == {}


def test_a_taken_session_manager_port(ssm: SsmEmulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        st = state(session_manager_port=taken.getsockname()[1])
        with pytest.raises(BuildError, match="error finding an available port to initiate a session tunnel"):
            open_tunnel(st, StepContext(ui=st.ui))
    assert ssm.calls == []


def test_the_session_token_stays_out_of_the_debug_log(ssm: SsmEmulator) -> None:
    """botocore's debug log has StartSession's and ResumeSession's answers: the debug log's filter
    (as cli/process.py installs it) blanks their TokenValue."""
    import logging

    from amibake.ui.redact import RedactingFilter, Redactor

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(logging.DEBUG)
    handler.addFilter(RedactingFilter(Redactor()))
    logger = logging.getLogger("botocore")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    st = state()
    ctx = StepContext(ui=st.ui)
    try:
        open_tunnel(st, ctx)
        (session,) = ssm.sessions.values()
        resumed = st.ssm_tunnel.resume(session.id)  # ResumeSession, as after a dropped WebSocket
        assert resumed.token == session.token != session.tokens_used[0]
    finally:
        for undo in reversed(ctx.undo_stack):
            undo.fn()
        logger.removeHandler(handler)
        logger.setLevel(old)
    text = "\n".join(lines)
    assert "TokenValue" in text  # the answers were logged
    assert session.tokens_used and len(ssm.calls) >= 2
    for token in {session.token, *session.tokens_used}:
        assert token not in text
