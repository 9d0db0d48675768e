"""``amibake server``: commands forked from a warm process behave as in-process ones.

Real server processes on a private socket, real launchers (the installed ``amibake``), real builds
against the local stack: the caller's cwd, environment, stdio and exit code reach the worker; a
killed or interrupted launcher still gets its build cleaned up; a changed source stops the server
and the command runs in-process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.test_reliability import (
    TEMPLATE,
    assert_nothing_left,
    baseline,  # noqa: F401  (fixture)
)
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

AMIBAKE = amibake_exe()


SERVER_CANARY = "server-environment-canary-4d1c"


class Server:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700)
        self.dir = directory
        self.socket = directory / "server.sock"
        self.watch = directory / "watched.txt"
        self.watch.write_text("1\n")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "AMIBAKE_NO_SERVER"}
        env.update(extra)
        env["AMIBAKE_SERVER_SOCKET"] = str(self.socket)  # this server's, whatever extra carried
        return env

    def cmd(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AMIBAKE, *args], cwd=cwd or self.dir, env=env or self.env(),
                              capture_output=True, text=True, timeout=timeout)

    def status(self) -> dict[str, str]:
        res = self.cmd("server", "status", "--socket", str(self.socket))
        if res.returncode:
            return {}
        m = re.search(r"amibake server (\d+) .*?(\d+) command\(s\) served", res.stdout, re.S)
        assert m, res.stdout
        return {"pid": m.group(1), "served": m.group(2)}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "srv")
    res = srv.cmd("server", "start", "--socket", str(srv.socket), "--watch", str(srv.watch),
                  "--idle-timeout", "10m", env=srv.env(AWS_SECRET_ACCESS_KEY=SERVER_CANARY))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ready on" in res.stdout
    try:
        yield srv
    finally:
        stopped = srv.cmd("server", "stop", "--socket", str(srv.socket))
        log = srv.dir / "server.log"
        said = f"stop: {stopped.returncode} {stopped.stdout} {stopped.stderr}\n"
        assert not srv.socket.exists(), said + (log.read_text() if log.exists() else "no log")
        assert stopped.returncode == 0, said
        if "did not stop when asked" in stopped.stderr:  # stopped by the escalation: say where it hung
            warnings.warn(said + (log.read_text() if log.exists() else "no log"), stacklevel=1)


def _exited(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (it has exited: its files and locks are released)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return bool(re.search(r"^State:\s+Z", status, re.M))


# ---- `server stop` returns once the server has exited and its socket is gone ------------------------


def _lock_is_free(directory: Path) -> bool:
    fd = os.open(directory / "server.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_stop_returns_once_the_server_has_exited_and_removed_its_socket(server: Server) -> None:
    pid = int(server.status()["pid"])
    res = server.cmd("server", "stop", "--socket", str(server.socket))
    assert res.returncode == 0 and f"Stopped amibake server {pid}" in res.stdout, res.stdout + res.stderr
    # at the moment it returned, not a moment later
    assert not server.socket.exists()
    assert not (server.dir / "server.pid").exists()
    assert _exited(pid)
    assert _lock_is_free(server.dir)
    again = server.cmd("server", "stop", "--socket", str(server.socket))
    assert again.returncode == 0 and again.stdout.startswith("No amibake server"), again.stdout


def test_sigusr1_writes_the_servers_stacks_to_its_log_and_it_goes_on(server: Server) -> None:
    """What `server stop` asks for before it escalates: where the server's main thread is."""
    pid = int(server.status()["pid"])
    os.kill(pid, signal.SIGUSR1)
    log = server.dir / "server.log"
    deadline = time.monotonic() + 30
    while "in serve" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    assert "Current thread" in text and "in serve" in text, text
    assert int(server.status()["pid"]) == pid  # dumped, not killed


def test_stop_waits_for_a_server_that_is_still_exiting(tmp_path: Path) -> None:
    """A server between closing its listener and removing its socket (the teardown flake of #18):
    nothing answers, but the server still holds its lock. This test plays that server: `stop` must
    wait for the lock, then remove the socket the "server" left (as one that was killed would)."""
    d = tmp_path / "exiting"
    d.mkdir(mode=0o700)
    path = d / "server.sock"
    lock = os.open(d / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    closed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    closed.bind(str(path))
    closed.close()  # the socket file stays; connecting to it is refused
    env = {k: v for k, v in os.environ.items() if k != "AMIBAKE_NO_SERVER"}
    proc = subprocess.Popen([AMIBAKE, "server", "stop", "--socket", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        first = proc.stdout.readline() if ready else ""
        assert first.startswith(f"Waiting for the amibake server on {path} to exit"), first
        assert proc.poll() is None and path.exists()  # still waiting: the lock is held
    finally:
        os.close(lock)  # the "server" exits
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, first + rest + err
    assert "removed the socket a killed server left" in rest, rest
    assert not path.exists()


def test_start_replaces_a_stale_server_once_it_has_exited(server: Server) -> None:
    old = int(server.status()["pid"])
    server.watch.write_text("changed\n")
    res = server.cmd("server", "start", "--socket", str(server.socket), "--watch", str(server.watch))
    assert res.returncode == 0 and "ready on" in res.stdout, res.stdout + res.stderr
    new = int(server.status()["pid"])
    assert new != old and _exited(old)  # the new one took the lock only once the old one had exited


# ---- where a command ran: the served worker or the launcher itself ---------------------------------

#: a build whose shell-local provisioner writes the pids of its ancestors, one a line
ANCESTRY = {
    "builders": [{"type": "null", "communicator": "none"}],
    "provisioners": [{"type": "shell-local", "inline": [
        'p=$$; while [ "$p" -gt 1 ]; do echo "$p";'
        ' p=$(sed -n "s/^PPid:[[:space:]]*//p" /proc/$p/status); done > "$ANCESTRY_OUT"',
    ]}],
}


def ran_in(launcher: int, server_pid: str, ancestry: Path) -> str:
    """``served`` when the command ran in a worker of the server (the server is an ancestor of the
    provisioner's shell, the launcher is not); ``in-process`` when the launcher ran it itself."""
    pids = {int(p) for p in ancestry.read_text().split()}
    if int(server_pid) in pids and launcher not in pids:
        return "served"
    if launcher in pids and int(server_pid) not in pids:
        return "in-process"
    return f"unclear: launcher {launcher}, server {server_pid}, ancestors {sorted(pids)}"


def ancestry_build(server: Server, cwd: Path, template: Path, shell: str = "") -> tuple[int, Path]:
    """Run the ANCESTRY build (through ``sh -c SHELL`` ending in ``exec "$AMIBAKE" build "$TEMPLATE"``
    when given); returns the launcher's pid and the ancestry file."""
    template.write_text(json.dumps(ANCESTRY))
    out = template.with_name(f"ancestry-{uuid.uuid4().hex[:6]}.txt")
    argv = ["sh", "-c", shell] if shell else [AMIBAKE, "build", str(template)]
    env = server.env(ANCESTRY_OUT=str(out), AMIBAKE=AMIBAKE, TEMPLATE=str(template))
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, text
    assert out.exists(), text
    return proc.pid, out


def build_template(stack: Stack, work: Path) -> Path:
    tpl: dict[str, Any] = json.loads(json.dumps(TEMPLATE))
    b = tpl["builders"][0]
    for key in ("temporary_iam_instance_profile_policy_document", "ssh_password"):
        b.pop(key)
    b["ami_regions"] = []
    tpl["provisioners"] = [
        {"type": "shell-local", "inline": ['echo "value=$SERVER_TEST_VALUE pwd=$(pwd)" > local.txt']},
        {"type": "shell", "inline": ["echo provisioned on the stack"]},
    ]
    path = work / "template.json"
    path.write_text(json.dumps(tpl, indent=1))
    return path


def build_args(stack: Stack, name: str) -> list[str]:
    return ["build", "-var", "ssh_host=127.0.0.1", "-var", f"ssh_port={stack.sshd.port}",
            "-var", f"ssh_username={stack.sshd.user}", "-var", f"ami_name={name}", "template.json"]


def test_commands_run_in_a_worker_with_the_callers_cwd_env_and_exit_code(
    server: Server, stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    build_template(stack, work)
    before = int(server.status()["served"])
    env = server.env(**stack.env(), SERVER_TEST_VALUE="from-the-caller")
    name = f"srv-{uuid.uuid4().hex[:8]}"
    res = server.cmd(*build_args(stack, name), cwd=work, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"us-east-1: ami-[0-9a-f]+", res.stdout), res.stdout
    assert "provisioned on the stack" in res.stdout
    # the worker ran in the caller's directory with the caller's environment
    assert (work / "local.txt").read_text().strip() == f"value=from-the-caller pwd={work}"
    # a failing command: its message on the caller's stderr, its exit code from the launcher
    bad = server.cmd("validate", "template.json", cwd=work, env=env)  # variables missing: ssh_username...
    assert bad.returncode == 1 and "Error" in bad.stderr, bad.stdout + bad.stderr
    version = server.cmd("version", env=env)
    assert version.returncode == 0 and version.stdout.startswith("amibake ")
    status = server.status()
    assert int(status["served"]) >= before + 3  # all three went through the server
    # the server kept no credentials of the shell that started it (workers get their caller's)
    assert SERVER_CANARY.encode() not in Path(f"/proc/{status['pid']}/environ").read_bytes()


def test_killed_launcher_still_gets_its_build_cleaned_up(
    server: Server, stack: Stack, moto: MotoServer, baseline: set[str], tmp_path: Path  # noqa: F811
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    build_template(stack, work)
    env = server.env(**stack.env(), AMIBAKE_PAUSE_AT="after-run-instances")
    err = work / "stderr"
    with open(err, "wb") as e:
        launcher = subprocess.Popen([AMIBAKE, *build_args(stack, f"srv-{uuid.uuid4().hex[:8]}")], cwd=work,
                                    env=env, stdout=subprocess.DEVNULL, stderr=e, stdin=subprocess.DEVNULL)
    worker = _paused_worker(launcher, err)
    assert worker != launcher.pid  # the build runs in the server's worker, not in the launcher
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(10)
    _wait_gone(worker, 90)
    assert_nothing_left(moto, baseline)


def test_interrupting_the_launcher_interrupts_the_build(
    server: Server, stack: Stack, moto: MotoServer, baseline: set[str], tmp_path: Path  # noqa: F811
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    build_template(stack, work)
    env = server.env(**stack.env(), AMIBAKE_PAUSE_AT="after-create-image")
    out, err = work / "stdout", work / "stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        launcher = subprocess.Popen([AMIBAKE, *build_args(stack, f"srv-{uuid.uuid4().hex[:8]}")], cwd=work,
                                    env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    worker = _paused_worker(launcher, err)
    launcher.send_signal(signal.SIGINT)
    rc = launcher.wait(90)
    text = out.read_text() + err.read_text()
    assert rc == 130, text[-3000:]
    assert "Interrupt received" in text and "Cleanup after the interruption removed" in text, text[-3000:]
    _wait_gone(worker, 10)
    assert_nothing_left(moto, baseline)


def test_a_caller_in_a_removed_directory_runs_in_process(server: Server, tmp_path: Path) -> None:
    pid = server.status()["pid"]
    launcher, ancestry = ancestry_build(server, tmp_path, tmp_path / "a.json")
    assert ran_in(launcher, pid, ancestry) == "served"  # the observation tells them apart
    gone = tmp_path / "gone"
    gone.mkdir()
    launcher, ancestry = ancestry_build(server, tmp_path, tmp_path / "b.json",
                                        f'cd "{gone}" && rmdir "{gone}" && exec "$AMIBAKE" build "$TEMPLATE"')
    assert ran_in(launcher, pid, ancestry) == "in-process"
    assert server.status()["pid"] == pid  # the server is still there for the next command


def test_a_changed_source_stops_the_server_and_the_command_runs_in_process(
    server: Server, tmp_path: Path
) -> None:
    pid = server.status()["pid"]
    launcher, ancestry = ancestry_build(server, tmp_path, tmp_path / "a.json")
    assert ran_in(launcher, pid, ancestry) == "served"
    server.watch.write_text("2, longer\n")
    launcher, ancestry = ancestry_build(server, tmp_path, tmp_path / "b.json")
    assert ran_in(launcher, pid, ancestry) == "in-process"
    # the stale server removed its socket on its way out; `server stop` waits for the exit itself
    server.cmd("server", "stop", "--socket", str(server.socket))
    assert not server.socket.exists() and _exited(int(pid))
    assert "watched.txt changed since the server started" in (server.dir / "server.log").read_text()
    assert server.cmd("server", "status", "--socket", str(server.socket)).returncode == 1


def test_no_server_or_a_dead_socket_means_in_process(tmp_path: Path) -> None:
    d = tmp_path / "dead"
    d.mkdir(mode=0o700)
    import socket as socketmod

    s = socketmod.socket(socketmod.AF_UNIX, socketmod.SOCK_STREAM)
    s.bind(str(d / "server.sock"))
    s.close()  # a socket file nobody listens on: what a SIGKILLed server leaves
    env = {k: v for k, v in os.environ.items() if k != "AMIBAKE_NO_SERVER"}
    for sock in (d / "server.sock", d / "missing.sock"):
        env["AMIBAKE_SERVER_SOCKET"] = str(sock)
        res = subprocess.run([AMIBAKE, "version"], env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.startswith("amibake "), res.stderr


def _paused_worker(launcher: subprocess.Popen[bytes], err: Path, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"amibake: paused at \S+ \(pid (\d+)\)", err.read_text(errors="replace"))
        if m:
            return int(m.group(1))
        if launcher.poll() is not None:
            break
        time.sleep(0.05)
    launcher.kill()
    raise AssertionError(f"the build never paused:\n{err.read_text(errors='replace')[-3000:]}")


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # a worker is the server's child, reaped by the kernel (SIGCHLD ignored): no zombie to wait for
        time.sleep(0.1)
    raise AssertionError(f"worker {pid} still running after {timeout} s")


# a validate that computes for hours (a billion evaluations in a loop): only a signal or a limit ends it
SPIN = """
locals {
  n = length([for a in range(1024) : length([for b in range(1024) : length([for c in range(1024) : c])])])
}
source "amazon-ebs" "x" {
  region        = "us-east-1"
  source_ami    = "ami-12345678"
  instance_type = "t2.micro"
  ssh_username  = "u"
  ami_name      = "n${local.n}"
}
build { sources = ["source.amazon-ebs.x"] }
"""


def _children(pid: str) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _no_children_within(pid: str, seconds: float = 10.0) -> list[int]:
    """The server's children once none is left, or those still there after ``seconds``. A control
    worker (the `status` just asked answers from one) may still be exiting, or not yet reaped."""
    deadline = time.monotonic() + seconds
    while (left := _children(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, float]:
    t0 = time.monotonic()
    res = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=60)
    return res.returncode, time.monotonic() - t0


def test_timeout_ends_the_worker_as_it_ends_an_in_process_run(server: Server, tmp_path: Path) -> None:
    (tmp_path / "spin.pkr.hcl").write_text(SPIN)
    pid = server.status()["pid"]
    before = int(server.status()["served"])
    argv = ["timeout", "--preserve-status", "3", AMIBAKE, "validate", "spin.pkr.hcl"]
    rc, took = _timed(argv, server.env(), tmp_path)
    status = server.status()
    assert status["pid"] == pid and int(status["served"]) == before + 2  # it ran in a worker
    assert not _no_children_within(pid)  # and the worker is gone, not spinning on
    assert (rc, round(took)) == (128 + signal.SIGTERM, 3)  # as a process killed by it
    rc_in, took_in = _timed(argv, server.env(AMIBAKE_NO_SERVER="1"), tmp_path)
    assert (rc_in, round(took_in)) == (rc, 3)


def test_the_callers_cpu_limit_applies_in_the_worker(server: Server, tmp_path: Path) -> None:
    (tmp_path / "spin.pkr.hcl").write_text(SPIN)
    pid = server.status()["pid"]
    before = int(server.status()["served"])
    argv = ["sh", "-c", f"ulimit -S -t 2; exec {AMIBAKE} validate spin.pkr.hcl"]
    rc, took = _timed(argv, server.env(), tmp_path)
    status = server.status()
    assert status["pid"] == pid and int(status["served"]) == before + 2
    assert not _no_children_within(pid)
    # killed by SIGXCPU after 2 s of CPU, and the launcher dies of the same signal
    assert rc == -signal.SIGXCPU and took < 10, (rc, took)
    rc_in, _ = _timed(argv, server.env(AMIBAKE_NO_SERVER="1"), tmp_path)
    assert rc_in == rc
