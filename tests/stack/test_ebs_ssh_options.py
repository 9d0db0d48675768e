"""amazon-ebs SSH options observed where they take effect: in the log of a real OpenSSH sshd (the
stack's "instance", or a second sshd of this module acting as bastion or as an instance that trusts
a user CA), in the requests amibake sent (through the recording proxy), or on the instance.

Passwords and keyboard-interactive questions cannot be checked by a real sshd here (it would need a
system password on a machine user), so those tests talk to :class:`SshServerEmulation`: an SSH
server in this file, on asyncssh's server side, that checks the password or the answers as an sshd
with ``PasswordAuthentication``/``KbdInteractiveAuthentication`` would, records what it was sent,
and forwards ``direct-tcpip`` channels (as a bastion) or runs commands (as an instance).

Each test names the options it proves with the ``effect`` marker (tests/unit/test_option_effects.py).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import pty
import re
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from amibake.errors import CommunicatorError
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.awsproxy import AwsProxy
from tests.stack.test_ebs_builder import SOURCE_AMI, Hooks, RecUi, make_config, make_env
from tests.stackkit import MotoServer, Sshd, Stack

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    CLIENTS.clear()


# ---- a second sshd with its own settings, and reading sshd logs ------------------------------


@dataclass
class LoggedSshd(Sshd):
    """The stack's :class:`Sshd` with ``extra`` sshd_config lines put first (sshd takes a keyword's
    first value, so they override the stack's)."""

    extra: str = ""

    def write_config(self) -> None:
        super().write_config()
        self.config.write_text(self.extra.strip() + "\n" + self.config.read_text())


def log_mark(sshd: Sshd) -> int:
    try:
        return sshd.log.stat().st_size
    except FileNotFoundError:
        return 0


def log_since(sshd: Sshd, mark: int) -> str:
    with open(sshd.log, "rb") as f:
        f.seek(mark)
        return f.read().decode("utf-8", "replace")


def _keygen(path: Path, comment: str = "amibake-test") -> str:
    """A new ed25519 key at ``path`` (no passphrase); returns its SHA256 fingerprint."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], check=True, capture_output=True, text=True)
    return out.stdout.split()[1]


@pytest.fixture(scope="module")
def jump(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedSshd]:
    """A second sshd (any key for the stack's user, as the stack's), logging at DEBUG1: forwarded
    channels and global requests show in its log."""
    d = LoggedSshd(tmp_path_factory.mktemp("jump"), user=stack.sshd.user, extra="LogLevel DEBUG1")
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def certd(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LoggedSshd, Path]]:
    """An sshd that lets the stack's user in with a certificate of its CA only (no authorized
    keys); returns it and the CA's private key."""
    base = tmp_path_factory.mktemp("certd")
    ca = base / "ca"
    _keygen(ca, "amibake-test-ca")
    d = LoggedSshd(base / "sshd", user=stack.sshd.user, extra=(
        f"TrustedUserCAKeys {ca}.pub\nAuthorizedKeysCommand none\nAuthorizedKeysFile none\n"))
    d.start()
    yield d, ca
    d.stop()


def _certify(ca: Path, key: Path, identity: str, principal: str) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", identity, "-n", principal, "-V", "-5m:+1h",
                    str(key) + ".pub"], check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return Path(f"{key}-cert.pub")


def _accepted(log: str) -> list[str]:
    """sshd's "Accepted publickey for USER from ADDR port N ssh2: TYPE FINGERPRINT[ ID cert-id ...]"."""
    return [line for line in log.splitlines() if "Accepted publickey for " in line]


# ---- bastion -----------------------------------------------------------------------------------


@pytest.mark.effect("builder/amazon-ebs", "ssh_bastion_host", "ssh_bastion_port", "ssh_bastion_username",
                    "ssh_bastion_private_key_file")
def test_bastion_with_a_key_forwards_to_the_instance(stack: Stack, moto: MotoServer, jump: LoggedSshd,
                                                     tmp_path: Path) -> None:
    key = tmp_path / "bastion_key"
    fingerprint = _keygen(key)
    jump_mark, instance_mark = log_mark(jump), log_mark(stack.sshd)
    hooks = Hooks("echo via-bastion")
    config = make_config(stack, ssh_bastion_host="127.0.0.1", ssh_bastion_port=jump.port,
                         ssh_bastion_username=stack.sshd.user, ssh_bastion_private_key_file=str(key))
    EbsBuilder(config, make_env(RecUi())).run(hooks)
    assert hooks.output == ["via-bastion"]
    jump_log = log_since(jump, jump_mark)
    # the bastion let in its user with the bastion key...
    assert [a for a in _accepted(jump_log) if f"for {stack.sshd.user} from 127.0.0.1" in a
            and a.endswith(f"ED25519 {fingerprint}")], jump_log
    # ...and opened the channel to the instance's address
    assert re.search(rf"direct_tcpip: originator .*target 127\.0\.0\.1 port {stack.sshd.port}\b", jump_log)
    # the instance saw the build's temporary key (not the bastion key) come from the bastion
    instance = _accepted(log_since(stack.sshd, instance_mark))
    assert instance and not any(fingerprint in a for a in instance)


# ---- certificates ------------------------------------------------------------------------------


@pytest.mark.effect("builder/amazon-ebs", "ssh_certificate_file", "ssh_bastion_certificate_file")
def test_certificates_for_instance_and_bastion(stack: Stack, moto: MotoServer,
                                              certd: tuple[LoggedSshd, Path], tmp_path: Path) -> None:
    """certd is both bastion and instance; it has no authorized keys: only a certificate of its CA
    lets a key in, and its log names the certificate's ID."""
    sshd, ca = certd
    instance_key, bastion_key = tmp_path / "instance_key", tmp_path / "bastion_key"
    _keygen(instance_key)
    _keygen(bastion_key)
    instance_cert = _certify(ca, instance_key, "instance-cert", stack.sshd.user)
    bastion_cert = _certify(ca, bastion_key, "bastion-cert", stack.sshd.user)
    common = dict(ssh_port=sshd.port, ssh_private_key_file=str(instance_key), ssh_bastion_host="127.0.0.1",
                  ssh_bastion_port=sshd.port, ssh_bastion_username=stack.sshd.user,
                  ssh_bastion_private_key_file=str(bastion_key))
    mark = log_mark(sshd)
    hooks = Hooks("echo certified")
    config = make_config(stack, ssh_certificate_file=str(instance_cert),
                         ssh_bastion_certificate_file=str(bastion_cert), **common)
    EbsBuilder(config, make_env(RecUi())).run(hooks)
    assert hooks.output == ["certified"]
    accepted = _accepted(log_since(sshd, mark))
    assert any("ID bastion-cert" in a for a in accepted), accepted
    assert any("ID instance-cert" in a for a in accepted), accepted
    # no bastion key or certificate: the bastion gets the instance's (as the SDK's Prepare)
    mark = log_mark(sshd)
    config = make_config(stack, ssh_port=sshd.port, ssh_private_key_file=str(instance_key),
                         ssh_certificate_file=str(instance_cert), ssh_bastion_host="127.0.0.1",
                         ssh_bastion_port=sshd.port, ssh_bastion_username=stack.sshd.user)
    EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
    accepted = _accepted(log_since(sshd, mark))
    assert len(accepted) == 2 and all("ID instance-cert" in a for a in accepted), accepted
    # the same keys without their certificates are refused there: the instance's key (the bastion
    # still has its certificate), then the bastion's (no certificate at all)
    for over in ({"ssh_bastion_certificate_file": str(bastion_cert)}, {}):
        mark = log_mark(sshd)
        config = make_config(stack, ssh_timeout="20s", ssh_handshake_attempts=1, **common, **over)
        with pytest.raises(CommunicatorError, match="authentication failed"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert len(_accepted(log_since(sshd, mark))) == len(over)


# ---- the SSH agent -----------------------------------------------------------------------------


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ssh-agent holding one new key, at SSH_AUTH_SOCK; yields the key's fingerprint."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        key = tmp_path / "agent_key"
        fingerprint = _keygen(key, "agent-key")
        subprocess.run(["ssh-add", "-q", str(key)], check=True, stdin=subprocess.DEVNULL,
                       env={**os.environ, "SSH_AUTH_SOCK": str(sock)}, capture_output=True)
        key.unlink()  # the agent alone holds it now
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield fingerprint
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.effect("builder/amazon-ebs", "ssh_agent_auth", "ssh_bastion_agent_auth")
def test_agent_authenticates_to_instance_and_bastion(stack: Stack, moto: MotoServer, jump: LoggedSshd,
                                                     agent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    jump_mark, instance_mark = log_mark(jump), log_mark(stack.sshd)
    with AwsProxy(moto.url) as proxy:
        hooks = Hooks("echo agent")
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ssh_agent_auth=True,
                             ssh_bastion_host="127.0.0.1", ssh_bastion_port=jump.port,
                             ssh_bastion_username=stack.sshd.user, ssh_bastion_agent_auth=True)
        EbsBuilder(config, make_env(RecUi())).run(hooks)
        assert hooks.output == ["agent"]
        # no key pair: the agent's key is the one the source AMI is supposed to trust
        assert not proxy.sent("CreateKeyPair") and not proxy.sent("ImportKeyPair")
        assert "KeyName" not in proxy.sent("RunInstances")[0].params
    for sshd, mark in ((jump, jump_mark), (stack.sshd, instance_mark)):
        accepted = _accepted(log_since(sshd, mark))
        assert accepted and all(a.endswith(f"ED25519 {agent}") for a in accepted), (sshd.port, accepted)
    # as Packer: no agent to ask is an error that says so
    monkeypatch.delenv("SSH_AUTH_SOCK")
    with pytest.raises(CommunicatorError, match="SSH_AUTH_SOCK is not set"):
        EbsBuilder(make_config(stack, ssh_agent_auth=True), make_env(RecUi())).run(Hooks("true"))


# ---- transfers, handshakes, keepalives, read/write timeout --------------------------------------


@dataclass
class Transfers(Hooks):
    """Uploads a file and a directory and reads them back over the communicator."""

    def provision(self, comm: Any, build_data: Any) -> None:
        remote = f"/tmp/amibake-transfer-{uuid.uuid4().hex[:8]}"
        comm.upload(f"{remote}.txt", b"carried\n")
        self.output.clear()
        comm.run(f"cat {remote}.txt; rm -f {remote}.txt", stdout=self.output.append)


@pytest.mark.effect("builder/amazon-ebs", "ssh_file_transfer_method")
def test_file_transfer_method(stack: Stack, moto: MotoServer, jump: LoggedSshd) -> None:
    """sftp opens sshd's sftp subsystem; scp runs ``scp -t`` as a command (sshd logs each session's
    type: "Starting session: subsystem 'sftp'", or "Starting session: command")."""
    seen = {}
    for method in ("sftp", "scp"):
        mark = log_mark(jump)
        hooks = Transfers("")
        config = make_config(stack, ssh_port=jump.port, ssh_file_transfer_method=method)
        EbsBuilder(config, make_env(RecUi())).run(hooks)
        assert hooks.output == ["carried"]
        seen[method] = log_since(jump, mark)
    sftp = "Starting session: subsystem 'sftp'"
    assert sftp in seen["sftp"] and sftp not in seen["scp"]
    commands = {m: log.count("Starting session: command ") for m, log in seen.items()}
    assert commands["scp"] == commands["sftp"] + 1, commands  # the upload's `scp -t`


@pytest.mark.effect("builder/amazon-ebs", "ssh_handshake_attempts")
def test_handshake_attempts_bound_authentication_failures(stack: Stack, moto: MotoServer) -> None:
    """A user the instance refuses: amibake gives up after exactly that many logins (counted in the
    sshd log), long before ssh_timeout."""
    for attempts in (1, 3):
        mark = log_mark(stack.sshd)
        config = make_config(stack, ssh_username="nobody-here", ssh_handshake_attempts=attempts,
                             ssh_timeout="60s")
        start = time.monotonic()
        with pytest.raises(CommunicatorError, match=f"after {attempts} handshake attempts"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert time.monotonic() - start < 30
        log = log_since(stack.sshd, mark)
        assert len(re.findall(r"Invalid user nobody-here from 127\.0\.0\.1", log)) == attempts, log


@pytest.mark.effect("builder/amazon-ebs", "ssh_keep_alive_interval")
def test_keep_alive_interval(stack: Stack, moto: MotoServer, jump: LoggedSshd) -> None:
    """Keepalive requests (global requests sshd logs at DEBUG1) while a command runs 2.5 s: about
    one per 500ms; none with a negative interval (Packer's way to disable them)."""
    counts = {}
    for interval in ("500ms", "-1s"):
        mark = log_mark(jump)
        hooks = Hooks("sleep 2.5; echo slept")
        EbsBuilder(make_config(stack, ssh_port=jump.port, ssh_keep_alive_interval=interval),
                   make_env(RecUi())).run(hooks)
        assert hooks.output == ["slept"]
        counts[interval] = len(re.findall(r"rtype keepalive@openssh\.com", log_since(jump, mark)))
    assert counts["-1s"] == 0, counts
    assert counts["500ms"] >= 3, counts


@pytest.mark.effect("builder/amazon-ebs", "ssh_read_write_timeout")
def test_read_write_timeout_drops_a_silent_connection(stack: Stack, moto: MotoServer) -> None:
    """As Packer's timeoutConn: a read that waits longer than ssh_read_write_timeout drops the
    connection. A command silent for 4 s with the 5 s default keepalive fails after 2 s; with
    keepalive replies every 500ms, the connection never waits that long and the command ends."""
    hooks = Hooks("sleep 4; echo done")
    start = time.monotonic()
    with pytest.raises(CommunicatorError, match=r"nothing received for 2 seconds \(ssh_read_write_timeout\)"):
        EbsBuilder(make_config(stack, ssh_read_write_timeout="2s"), make_env(RecUi())).run(hooks)
    assert 1.8 <= time.monotonic() - start < 15
    assert hooks.output == []
    hooks = Hooks("sleep 4; echo done")
    EbsBuilder(make_config(stack, ssh_read_write_timeout="2s", ssh_keep_alive_interval="500ms"),
               make_env(RecUi())).run(hooks)
    assert hooks.output == ["done"]


# ---- passwords and keyboard-interactive: an SSH server emulation --------------------------------


class _EmulatedServer(asyncssh.SSHServer):
    def __init__(self, emu: SshServerEmulation) -> None:
        self.emu = emu

    def begin_auth(self, username: str) -> bool:
        return True  # authentication required

    def password_auth_supported(self) -> bool:
        return self.emu.password is not None

    def validate_password(self, username: str, password: str) -> bool:
        ok = username == self.emu.user and password == self.emu.password
        self.emu.events.append(("password", username, ok))
        return ok

    def kbdint_auth_supported(self) -> bool:
        return bool(self.emu.questions)

    def get_kbdint_challenge(self, username: str, lang: str, submethods: str) -> Any:
        return "", "", "", [(q, False) for q, _ in self.emu.questions]

    def validate_kbdint_response(self, username: str, responses: Any) -> bool:
        ok = username == self.emu.user and list(responses) == [a for _, a in self.emu.questions]
        self.emu.events.append(("keyboard-interactive", username, ok))
        return ok

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        self.emu.events.append(("direct-tcpip", dest_host, dest_port))
        return self.emu.forward


class SshServerEmulation:
    """An SSH server for what the stack's sshd cannot check without a system password: password
    authentication (as sshd's ``PasswordAuthentication yes``) and keyboard-interactive questions
    (``KbdInteractiveAuthentication yes``: ``questions`` are (prompt, expected answer) pairs, all
    asked in one challenge). Built on asyncssh's server side, on its own event loop thread. Every
    login attempt and forward request lands in :attr:`events`. As a bastion (``forward``) it opens
    ``direct-tcpip`` channels to where the client asks, as sshd's ``AllowTcpForwarding yes``; as an
    instance (``commands``) it runs each exec request with ``sh -c`` in ``workdir`` and returns
    its output and exit status."""

    def __init__(self, *, user: str, workdir: Path, password: str | None = None,
                 questions: tuple[tuple[str, str], ...] = (), forward: bool = False,
                 commands: bool = False) -> None:
        self.user, self.password, self.questions = user, password, questions
        self.forward, self.commands, self.workdir = forward, commands, workdir
        self.events: list[tuple[Any, ...]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._acceptor: Any = None

    async def _exec(self, process: Any) -> None:
        self.events.append(("exec", process.command))
        if not self.commands or process.command is None:
            process.exit(1)
            return
        run = functools.partial(subprocess.run, ["sh", "-c", process.command], cwd=self.workdir,
                                capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        done = await asyncio.get_running_loop().run_in_executor(None, run)
        process.stdout.write(done.stdout)
        process.stderr.write(done.stderr)
        process.exit(done.returncode)

    async def _start(self) -> Any:
        return await asyncssh.create_server(
            lambda: _EmulatedServer(self), "127.0.0.1", 0, encoding=None,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            process_factory=self._exec, allow_scp=False, sftp_factory=None)

    def __enter__(self) -> SshServerEmulation:
        self._thread.start()
        self._acceptor = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        self.port = int(self._acceptor.get_port())
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


@pytest.mark.effect("builder/amazon-ebs", "ssh_password")
def test_password_logs_in_without_a_key_pair(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    """ssh_password: no key pair is made, the instance (the emulation) gets the password, by the
    password method or as the answer to keyboard-interactive questions, as Packer's SSH config."""
    user = stack.sshd.user
    for how in ({"password": "pw-Ab3"}, {"questions": (("Verification code: ", "pw-Ab3"),)}):
        with SshServerEmulation(user=user, workdir=tmp_path, commands=True, **how) as emu, \
                AwsProxy(moto.url) as proxy:
            hooks = Hooks("echo password-login")
            config = make_config(stack, custom_endpoint_ec2=proxy.url, ssh_port=emu.port,
                                 ssh_password="pw-Ab3")
            EbsBuilder(config, make_env(RecUi())).run(hooks)
            assert hooks.output == ["password-login"]
            assert not proxy.sent("CreateKeyPair") and not proxy.sent("ImportKeyPair")
            assert "KeyName" not in proxy.sent("RunInstances")[0].params
            method = "password" if "password" in how else "keyboard-interactive"
            assert (method, user, True) in emu.events and ("exec", "echo password-login") in emu.events
    # a wrong password is refused there: the login above was the password's doing
    with SshServerEmulation(user=user, workdir=tmp_path, commands=True, password="other") as emu:
        config = make_config(stack, ssh_port=emu.port, ssh_password="pw-Ab3", ssh_handshake_attempts=1)
        with pytest.raises(CommunicatorError, match="authentication failed"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert emu.events and all(e == ("password", user, False) for e in emu.events)


@pytest.mark.effect("builder/amazon-ebs", "ssh_bastion_password")
def test_bastion_password(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    user = stack.sshd.user
    with SshServerEmulation(user=user, workdir=tmp_path, password="jump-pw", forward=True) as emu:
        hooks = Hooks("echo via-password-bastion")
        config = make_config(stack, ssh_bastion_host="127.0.0.1", ssh_bastion_port=emu.port,
                             ssh_bastion_username=user, ssh_bastion_password="jump-pw")
        env = make_env(RecUi())
        EbsBuilder(config, env).run(hooks)
        assert hooks.output == ["via-password-bastion"]
        assert "jump-pw" in env.secrets  # redacted from every output, as ssh_password is
        assert emu.events[0] == ("password", user, True)
        assert ("direct-tcpip", "127.0.0.1", stack.sshd.port) in emu.events


@pytest.mark.effect("builder/amazon-ebs", "ssh_bastion_interactive")
def test_bastion_interactive_asks_on_the_terminal(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    """As Packer: the bastion's keyboard-interactive questions are asked on the terminal (here
    `amibake build` runs with a pseudo-terminal as standard input) and the typed answers, not
    echoed, go to the bastion. Without ssh_bastion_interactive the question is answered with
    ssh_bastion_password, which this bastion refuses."""
    user = stack.sshd.user
    questions = (("Verification code: ", "424242"),)
    builder: dict[str, Any] = {
        "type": "amazon-ebs", "region": "us-east-1", "source_ami": SOURCE_AMI, "instance_type": "t2.micro",
        "ssh_username": user, "ssh_host": "127.0.0.1", "ssh_port": stack.sshd.port, "ssh_timeout": "60s",
        "ami_name": "interactive-{{timestamp}}", "ssh_bastion_host": "127.0.0.1",
        "ssh_bastion_username": user, "ssh_bastion_password": "not-the-code", "ssh_bastion_interactive": True,
    }
    with SshServerEmulation(user=user, workdir=tmp_path, questions=questions, forward=True) as emu:
        builder["ssh_bastion_port"] = emu.port
        path = tmp_path / "template.json"
        path.write_text(json.dumps({"builders": [builder], "provisioners": [
            {"type": "shell", "inline": ["echo via-interactive-bastion"]}]}))
        env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(tmp_path / "state")}
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "amibake", "build", str(path)], stdin=slave,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
            os.close(slave)
            seen = b""
            deadline = time.monotonic() + 90
            while b"Verification code: " not in seen:
                assert proc.poll() is None and time.monotonic() < deadline, seen
                if select.select([master], [], [], 0.5)[0]:
                    seen += os.read(master, 4096)
            os.write(master, b"424242\n")
            out, _ = proc.communicate(timeout=120)
            while select.select([master], [], [], 0)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the other side closed
                    break
        finally:
            os.close(master)
        text = out.decode("utf-8", "replace")
        assert proc.returncode == 0, text
        assert "via-interactive-bastion" in text
        assert b"424242" not in seen  # read without echo
        assert ("keyboard-interactive", user, True) in emu.events
        assert ("direct-tcpip", "127.0.0.1", stack.sshd.port) in emu.events
        # not interactive: the question gets ssh_bastion_password, and the bastion says no
        emu.events.clear()
        config = make_config(stack, ssh_bastion_host="127.0.0.1", ssh_bastion_port=emu.port,
                             ssh_bastion_username=user, ssh_bastion_password="not-the-code",
                             ssh_handshake_attempts=1)
        with pytest.raises(CommunicatorError, match="authentication failed"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert emu.events == [("keyboard-interactive", user, False)]
