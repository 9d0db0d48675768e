"""The SSH communicator against the stack's real OpenSSH sshd (which accepts any key)."""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from amibake.communicator.base import CommandTimeoutError, DisconnectedError
from amibake.communicator.ssh import SSHCommunicator, SSHSettings, connect
from amibake.errors import CommunicatorError
from tests.stackkit import Sshd, Stack, free_port

pytestmark = pytest.mark.stack

MODES = [
    pytest.param({"file_transfer_method": "scp"}, id="scp-tar"),
    pytest.param({"file_transfer_method": "scp", "tar_dirs": False}, id="scp"),
    pytest.param({"file_transfer_method": "sftp"}, id="sftp"),
]


def _random_key() -> str:
    return asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()


@pytest.fixture(scope="module")
def settings(stack: Stack) -> SSHSettings:
    return SSHSettings(host="127.0.0.1", port=stack.sshd.port, username=stack.sshd.user,
                       private_key_pem=_random_key(), timeout=20)


@pytest.fixture(scope="module")
def comm(settings: SSHSettings) -> Iterator[SSHCommunicator]:
    c = connect(settings)
    yield c
    c.close()


@pytest.fixture(params=MODES)
def tcomm(request: pytest.FixtureRequest, settings: SSHSettings) -> Iterator[SSHCommunicator]:
    c = connect(replace(settings, **request.param))
    yield c
    c.close()


@pytest.fixture
def remote_dir(comm: SSHCommunicator) -> Iterator[str]:
    out: list[str] = []
    assert comm.run("mktemp -d /tmp/amibake-test.XXXXXX", stdout=out.append) == 0
    yield out[0]
    comm.run(f"rm -rf {out[0]}")


def _lines(comm: SSHCommunicator, command: str) -> list[str]:
    out: list[str] = []
    assert comm.run(command, stdout=out.append) == 0
    return out


# ---- run --------------------------------------------------------------------------------------


def test_exit_status_and_streams(comm: SSHCommunicator) -> None:
    out: list[str] = []
    err: list[str] = []
    rc = comm.run("echo one; echo two; echo bad >&2; printf 'three\\r\\nfour'; exit 3",
                  stdout=out.append, stderr=err.append)
    assert rc == 3
    assert out == ["one", "two", "three", "four"]
    assert err == ["bad"]
    assert comm.run("true") == 0
    assert comm.run("exit 255") == 255


def test_signal_is_128_plus_number(comm: SSHCommunicator) -> None:
    assert comm.run("kill -TERM $$") == 128 + 15


def test_output_is_streamed_while_the_command_runs(comm: SSHCommunicator) -> None:
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    comm.run("echo first; sleep 1; echo second", stdout=lambda line: seen.append((time.monotonic(), line)))
    end = time.monotonic()
    assert [line for _, line in seen] == ["first", "second"]
    assert seen[0][0] - start < end - start - 0.6


def test_interleaved_streams_keep_order_with_pauses(comm: SSHCommunicator) -> None:
    events: list[str] = []
    comm.run("echo a; sleep 0.2; echo b >&2; sleep 0.2; echo c",
             stdout=lambda line: events.append("out:" + line),
             stderr=lambda line: events.append("err:" + line))
    assert events == ["out:a", "err:b", "out:c"]


def test_stdin_and_utf8(comm: SSHCommunicator) -> None:
    assert _lines(comm, "cat") == []
    out: list[str] = []
    comm.run("cat", stdout=out.append, stdin="héllo\nwörld\n".encode())
    assert out == ["héllo", "wörld"]


def test_pty(comm: SSHCommunicator) -> None:
    out: list[str] = []
    assert comm.run("tty", stdout=out.append, pty=True) == 0
    assert out[0].startswith("/dev/pts/")
    assert comm.run("tty", stdout=out.append) == 1  # "not a tty"


def test_timeout(comm: SSHCommunicator) -> None:
    t = time.monotonic()
    with pytest.raises(CommandTimeoutError, match=r"did not finish within 0\.5 seconds"):
        comm.run("sleep 10", timeout=0.5)
    assert time.monotonic() - t < 5
    assert comm.run("true", timeout=10) == 0  # the connection is still fine


def test_disconnect_mid_command(settings: SSHSettings) -> None:
    c = connect(settings)
    try:
        out: list[str] = []
        # $PPID is this session's sshd process: killing it drops the connection
        with pytest.raises(DisconnectedError):
            c.run("echo started; sleep 0.3; kill -9 $PPID; sleep 5", stdout=out.append, timeout=20)
        assert out == ["started"]
        # the next command reconnects, as Packer's communicator does
        assert c.run("true") == 0
    finally:
        c.close()


def test_many_threads_share_one_connection(comm: SSHCommunicator) -> None:
    results: list[list[str]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        comm.run(f"for n in 1 2 3; do echo {i}-$n; done", stdout=results[i].append)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[f"{i}-1", f"{i}-2", f"{i}-3"] for i in range(8)]


# ---- connect ----------------------------------------------------------------------------------


def test_refused_port_is_retried_until_sshd_comes_up(stack: Stack, settings: SSHSettings,
                                                     tmp_path: Path) -> None:
    port = free_port()
    late = Sshd(tmp_path / "late", port=port, user=stack.sshd.user)
    timer = threading.Timer(2.0, late.start)
    timer.start()
    logs: list[str] = []
    try:
        t = time.monotonic()
        c = connect(replace(settings, port=port, timeout=30), log=logs.append)
        assert time.monotonic() - t >= 1.9
        assert c.run("true") == 0
        c.close()
        assert any("connection refused" in line for line in logs)
    finally:
        timer.join()
        late.stop()


def test_connect_timeout_names_the_last_failure(settings: SSHSettings) -> None:
    port = free_port()
    t = time.monotonic()
    with pytest.raises(CommunicatorError, match=rf"timeout waiting for SSH on .*:{port}.*connection refused"):
        connect(replace(settings, port=port, timeout=1.0))
    assert time.monotonic() - t < 5


def test_auth_failures_stop_after_handshake_attempts(settings: SSHSettings) -> None:
    t = time.monotonic()
    with pytest.raises(CommunicatorError, match=r"after 2 handshake attempts: authentication failed"):
        connect(replace(settings, username="nobody-here", handshake_attempts=2))
    assert time.monotonic() - t < 10


def test_cancel_stops_the_wait(settings: SSHSettings) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(CommunicatorError, match="cancelled"):
        connect(replace(settings, port=free_port(), timeout=30), cancel=cancel)


def test_port_that_accepts_but_never_speaks_ssh_times_out(settings: SSHSettings) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        with pytest.raises(CommunicatorError, match="timeout waiting for SSH"):
            connect(replace(settings, port=port, timeout=1.5))


def test_explicit_cipher(settings: SSHSettings) -> None:
    c = connect(replace(settings, ciphers=("aes256-ctr",)))
    try:
        assert c.run("true") == 0
    finally:
        c.close()


def test_through_a_bastion(settings: SSHSettings) -> None:
    # the stack's sshd is its own jump host (it allows TCP forwarding to itself)
    c = connect(replace(settings, bastion=replace(settings, private_key_pem=_random_key())))
    try:
        assert _lines(c, "echo via-bastion") == ["via-bastion"]
    finally:
        c.close()


def test_timeout_kills_the_remote_command(comm: SSHCommunicator, remote_dir: str) -> None:
    with pytest.raises(CommandTimeoutError):
        comm.run(f"sleep 3; touch {remote_dir}/late", timeout=0.3)
    time.sleep(3.5)
    assert comm.run(f"test -e {remote_dir}/late") == 1


def test_paths_with_spaces(tcomm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    tcomm.run(f"mkdir '{remote_dir}/a b'")
    tcomm.upload(f"{remote_dir}/a b/c d.txt", b"spaced\n")
    src = tmp_path / "s p"
    src.mkdir()
    (src / "x y").write_text("xy\n")
    tcomm.upload_dir(f"{remote_dir}/a b", str(src))
    assert _lines(tcomm, f"cat '{remote_dir}/a b/c d.txt' '{remote_dir}/a b/s p/x y'") == ["spaced", "xy"]


def test_bad_cipher_is_a_clear_error(settings: SSHSettings) -> None:
    with pytest.raises(CommunicatorError, match="invalid SSH settings"):
        connect(replace(settings, ciphers=("rot13",)))


# ---- files ------------------------------------------------------------------------------------


def test_upload_and_download_file(tcomm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    tcomm.upload(f"{remote_dir}/a.bin", src, mode=0o600)
    tcomm.upload(f"{remote_dir}/b.bin", b"bytes\n")
    tcomm.upload(f"{remote_dir}/c.bin", io.BytesIO(b"stream"), mode=0o755)
    assert _lines(tcomm, f"cd {remote_dir} && stat -c '%n %a %s' a.bin b.bin c.bin") == [
        f"a.bin 600 {len(data)}", "b.bin 644 6", "c.bin 755 6"]
    back = tmp_path / "back.bin"
    tcomm.download(f"{remote_dir}/a.bin", back)
    assert back.read_bytes() == data
    buf = io.BytesIO()
    tcomm.download(f"{remote_dir}/b.bin", buf)
    assert buf.getvalue() == b"bytes\n"


def test_upload_errors_name_the_destination(tcomm: SSHCommunicator) -> None:
    with pytest.raises(CommunicatorError, match="/nonexistent-dir/x"):
        tcomm.upload("/nonexistent-dir/x", b"data")
    with pytest.raises(CommunicatorError, match="/nonexistent-file"):
        tcomm.download("/nonexistent-file", io.BytesIO())


def _make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_text("top\n")
    (root / "skip.log").write_text("no\n")
    (root / "sub" / "a.txt").write_text("a\n")
    (root / "sub" / "deep" / "b.sh").write_text("#!/bin/sh\n")
    (root / "sub" / "deep" / "b.sh").chmod(0o755)
    (root / "cache").mkdir()
    (root / "cache" / "junk").write_text("junk\n")
    (root / "link.txt").symlink_to("top.txt")


def _remote_tree(comm: SSHCommunicator, path: str) -> list[str]:
    return sorted(_lines(comm, f"cd {path} && find . -mindepth 1 -printf '%p %m %y\\n'"))


EXPECTED = sorted([
    "./empty 755 d", "./link.txt 644 f", "./sub 755 d", "./sub/a.txt 644 f", "./sub/deep 755 d",
    "./sub/deep/b.sh 755 f", "./top.txt 644 f",
])


def test_upload_dir_trailing_slash_rule(tcomm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    src = tmp_path / "files"
    src.mkdir()
    _make_tree(src)
    tcomm.run(f"mkdir {remote_dir}/with {remote_dir}/without")
    tcomm.upload_dir(f"{remote_dir}/with", f"{src}/", exclude=["*.log", "cache"])
    tcomm.upload_dir(f"{remote_dir}/without", str(src), exclude=["*.log", "cache/"])
    assert _remote_tree(tcomm, f"{remote_dir}/with") == EXPECTED
    assert _remote_tree(tcomm, f"{remote_dir}/without/files") == EXPECTED
    assert _lines(tcomm, f"ls {remote_dir}/without") == ["files"]
    assert _lines(tcomm, f"cat {remote_dir}/with/sub/a.txt") == ["a"]


def test_upload_dir_twice_overwrites(tcomm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "f").write_text("1\n")
    tcomm.upload_dir(remote_dir, f"{src}/")
    (src / "f").write_text("2\n")
    tcomm.upload_dir(remote_dir, f"{src}/")
    assert _lines(tcomm, f"cat {remote_dir}/f") == ["2"]


def test_upload_dir_into_missing_dst_scp(comm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    # as Packer's scp sink: src without a slash and a dst that does not exist -> dst becomes the copy
    src = tmp_path / "files"
    src.mkdir()
    (src / "x").write_text("x\n")
    comm.upload_dir(f"{remote_dir}/new", str(src))
    assert _lines(comm, f"cd {remote_dir}/new && ls") == ["x"]


def test_upload_dir_error(tcomm: SSHCommunicator, tmp_path: Path) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "f").write_text("1\n")
    with pytest.raises(CommunicatorError, match="upload to /proc/forbidden failed"):
        tcomm.upload_dir("/proc/forbidden", f"{src}/")


def test_download_dir(tcomm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    tcomm.run(f"mkdir -p {remote_dir}/out/sub && echo hi > {remote_dir}/out/sub/f.txt && "
              f"echo no > {remote_dir}/out/x.log && echo top > {remote_dir}/out/top")
    dst = tmp_path / "dl"
    tcomm.download_dir(f"{remote_dir}/out/", str(dst), exclude=["*.log"])
    assert sorted(str(p.relative_to(dst)) for p in dst.rglob("*")) == [
        "out", "out/sub", "out/sub/f.txt", "out/top"]
    assert (dst / "out" / "sub" / "f.txt").read_text() == "hi\n"


def test_big_upload_roundtrip(tcomm: SSHCommunicator, remote_dir: str, tmp_path: Path) -> None:
    src = tmp_path / "big"
    with open(src, "wb") as f:
        for _ in range(16):
            f.write(os.urandom(1 << 20))
    tcomm.upload(f"{remote_dir}/big", src)
    sums = _lines(tcomm, f"md5sum < {remote_dir}/big")
    import hashlib

    assert sums[0].split()[0] == hashlib.md5(src.read_bytes()).hexdigest()


def test_direct_connections_acknowledge_every_read(settings: SSHSettings) -> None:
    """The TCP connection to sshd goes through the quick-ACK protocol (sshd's Nagle would otherwise
    hold a packet behind a delayed ACK: 40 ms on the first channel), and everything still flows."""
    from amibake.communicator import ssh_connect

    c = connect(settings)
    try:
        transport = c._conn._transport
        if not hasattr(socket, "TCP_QUICKACK"):
            pytest.skip("no TCP_QUICKACK on this platform")
        proto = transport.get_protocol()
        assert isinstance(proto, ssh_connect._QuickAckProtocol) and proto.inner is c._conn
        out: list[str] = []
        assert c.run("echo first; echo second", stdout=out.append) == 0
        assert out == ["first", "second"]
        made: list[str] = []  # a directory of its own: the "instance" is this machine, /tmp is shared
        assert c.run("mktemp -d /tmp/amibake-quickack.XXXXXX", stdout=made.append) == 0
        target = f"{made[0]}/upload.txt"
        c.upload(target, b"x" * 300_000)
        assert c.run(f"test $(wc -c < {target}) = 300000 && rm -r {made[0]}") == 0
    finally:
        c.close()
