"""The launcher <-> server wire format and the server's staleness check (no processes forked)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.server import protocol
from amibake.server.client import connect, run_through_server
from amibake.server.forkserver import fingerprint

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=10), values, max_size=6))
def test_messages_round_trip(message: dict[str, object]) -> None:
    a, b = socket.socketpair()
    with a, b:
        protocol.send(a, message)
        assert protocol.recv(b) == message


def test_first_message_carries_descriptors(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    a, b = socket.socketpair()
    with a, b:
        protocol.send(a, {"op": "run", "argv": ["version"]}, [fd, fd, fd])
        os.close(fd)
        msg, fds = protocol.recv_with_fds(b)
    assert msg == {"op": "run", "argv": ["version"]} and len(fds) == 3
    os.write(fds[1], b"through the passed descriptor\n")
    for f in fds:
        os.close(f)
    assert target.read_text() == "through the passed descriptor\n"


def test_closed_connection_and_oversized_messages() -> None:
    a, b = socket.socketpair()
    with b:
        a.close()
        with pytest.raises(EOFError):
            protocol.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall((protocol.MAX_MESSAGE + 1).to_bytes(4, "big"))
        with pytest.raises(protocol.ProtocolError, match="message of"):
            protocol.recv(b)
    a, b = socket.socketpair()
    with a, b:
        a.sendall((3).to_bytes(4, "big") + b"\xff\xff\xff")
        with pytest.raises(protocol.ProtocolError, match="bad message"):
            protocol.recv(b)


def test_socket_directory_must_be_private(tmp_path: Path) -> None:
    d = tmp_path / "shared"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    with pytest.raises(protocol.ProtocolError, match="not a private directory"):
        protocol.private_dir(str(d), create=False)
    # the launcher does not talk to a socket there: the command runs in-process
    assert connect(d / "server.sock") is None
    p = tmp_path / "mine"
    protocol.private_dir(str(p), create=True)
    assert (p.stat().st_mode & 0o777) == 0o700


def test_launcher_runs_in_process_without_a_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(protocol.DISABLE_ENV, raising=False)
    d = tmp_path / "s"
    d.mkdir(mode=0o700)
    monkeypatch.setenv(protocol.SOCKET_ENV, str(d / "server.sock"))
    assert run_through_server(["version"]) is None
    monkeypatch.setenv(protocol.DISABLE_ENV, "1")
    assert run_through_server(["version"]) is None
    # `amibake server ...` itself is never handed to a server
    monkeypatch.delenv(protocol.DISABLE_ENV)
    assert run_through_server(["server", "status"]) is None


def test_default_socket_location(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(protocol.SOCKET_ENV, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert protocol.default_socket() == "/run/user/1000/amibake/server.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert protocol.default_socket() == f"/tmp/amibake-{os.getuid()}/server.sock"


def test_fingerprint_sees_edits_additions_and_removals(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    first = fingerprint([pkg])
    (pkg / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"ignored")
    (pkg / "notes.txt").write_text("ignored")
    assert fingerprint([pkg]) == first
    (pkg / "a.py").write_text("x = 22\n")
    second = fingerprint([pkg])
    assert second != first
    (pkg / "b.py").write_text("")
    third = fingerprint([pkg])
    assert third != second
    (pkg / "b.py").unlink()
    assert fingerprint([pkg]) == second


def test_the_callers_rlimits_travel_and_are_applied_in_a_worker() -> None:
    """What the launcher sends (its limits) is what the worker ends up with, lowered where the
    worker may not raise; sent through the wire format as the launcher sends it."""
    import resource
    import subprocess
    import sys

    from amibake.server.client import rlimits

    limits = rlimits()
    assert resource.RLIMIT_CPU in limits and resource.RLIMIT_NOFILE in limits
    a, b = socket.socketpair()
    with a, b:
        protocol.send(a, {"rlimits": {**limits, resource.RLIMIT_CPU: (7, 9), resource.RLIMIT_CORE: (0, 0)}})
        sent = protocol.recv(b)["rlimits"]
    code = (
        "import resource, sys, ast\n"
        "from amibake.server.forkserver import _apply_rlimits\n"
        "_apply_rlimits(ast.literal_eval(sys.argv[1]))\n"
        "print(resource.getrlimit(resource.RLIMIT_CPU), resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, repr(sent)], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[0] == "(7, 9) (0, 0)"
