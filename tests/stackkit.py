"""The local AWS stack: a moto server (EC2 API) and a real OpenSSH sshd (the "instance").

Test code only: amibake itself never knows about moto. Used by the pytest fixtures
(``tests/conftest.py``), the README demo and the benchmarks. Mirrors
the Packer baseline's ``fakes.sh`` (beside the recorded Packer figures, outside this repository):

* moto: ``<python> -m moto.server -H 127.0.0.1 -p PORT`` with its request recorder on, so that
  benchmarks can count the EC2 API calls a build made (:meth:`MotoServer.ec2_actions`).
* sshd: ``/usr/sbin/sshd -D`` with its own directory, ed25519 host key and config, on a free
  loopback port. It accepts *any* public key for one login user (``amibuild``, or
  ``$AMIBAKE_STACK_USER``), which ``scripts/bootstrap`` creates with the password field ``*``.
  sshd must run as root (it switches to the login user).

From a shell::

    eval "$(python tests/stackkit.py start --state-dir D)"   # prints export lines, keeps pid files in D
    python tests/stackkit.py env --state-dir D                # the export lines again
    python tests/stackkit.py stop --state-dir D
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
DEFAULT_USER = "amibuild"
REGION = "us-east-1"
#: where amibake and the tools it runs write: its run journals (AMIBAKE_STATE_DIR, else
#: XDG_STATE_HOME/amibake), temporary files (TMPDIR) and the server socket a command would use.
#: Each test sets its own (tests/conftest.py, tests/isolation.py); :meth:`Stack.env` carries them.
ISOLATED_VARS = ("AMIBAKE_STATE_DIR", "XDG_STATE_HOME", "TMPDIR", "AMIBAKE_SERVER_SOCKET")


class StackError(RuntimeError):
    """The stack could not start (the message says why and where the log is)."""


def amibake_exe() -> str:
    """The ``amibake`` executable of the interpreter running the tests (``bin/amibake`` beside
    ``sys.executable``, not resolved through symlinks: a venv's python is a link)."""
    exe = Path(sys.executable).with_name("amibake")
    if not (exe.is_file() and os.access(exe, os.X_OK)):
        raise StackError(f"no amibake executable beside {sys.executable} ({exe}): install amibake into "
                         "this interpreter's environment (scripts/bootstrap, or pip install -e .)")
    return str(exe)


def stack_user() -> str:
    return os.environ.get("AMIBAKE_STACK_USER", DEFAULT_USER)


def unavailable_reason(user: str | None = None) -> str | None:
    """Why the stack cannot run on this machine, or None when it can."""
    user = user or stack_user()
    if not os.path.exists(SSHD):
        return f"{SSHD} is missing (run scripts/bootstrap)"
    if os.geteuid() != 0:
        return "sshd must run as root to switch users (run the stack tests as root, as CI does)"
    try:
        pwd.getpwnam(user)
    except KeyError:
        return f"login user {user!r} does not exist (run scripts/bootstrap)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still "exists": reap it if it is ours
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pid(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL: one process, by its id."""
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _stop(proc: subprocess.Popen[bytes] | None, pid: int | None) -> None:
    if proc is not None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    elif pid is not None:
        stop_pid(pid)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class MotoServer:
    """A moto server subprocess on a loopback port, with its request recorder on."""

    state_dir: Path
    port: int = 0
    python: str = sys.executable
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def recording(self) -> Path:
        return self.state_dir / "moto-recording.jsonl"

    @property
    def log(self) -> Path:
        return self.state_dir / "moto.log"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "moto.pid"

    def start(self, timeout: float = 60.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        self.recording.write_bytes(b"")
        env = {
            **os.environ,
            # moto's 44 stock AMIs (the tests' source AMIs are among them), without the ~1,260 "latest"
            # and ECS-optimized AMIs it otherwise builds for every account and region a request
            # touches: the tests use none of those, and building them was most of moto's CPU time in
            # tests that make an account each
            "MOTO_AMIS_PATH": str(self._stock_amis()),
            "MOTO_ENABLE_RECORDING": "True",
            "MOTO_RECORDER_FILEPATH": str(self.recording),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }
        with open(self.log, "wb") as logf:
            proc = subprocess.Popen(
                # moto, with the emulation of AMI tagging on creation (tests/motoserver.py)
                [self.python, str(Path(__file__).with_name("motoserver.py")), "-H", "127.0.0.1",
                 "-p", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )
        self.pid, self.proc = proc.pid, proc
        self.pidfile.write_text(f"{proc.pid}\n")
        if not wait_port(self.port, timeout, proc):
            self.stop()
            raise StackError(f"moto did not come up on port {self.port}; {self.log}:\n{_tail(self.log)}")

    def _stock_amis(self) -> Path:
        """moto's own default AMI list (``ec2/resources/amis.json.gz``), uncompressed into the state dir
        (MOTO_AMIS_PATH names a plain JSON file)."""
        import gzip
        import importlib.util

        spec = importlib.util.find_spec("moto")
        assert spec is not None and spec.origin is not None, "moto is not installed"
        source = Path(spec.origin).parent / "ec2" / "resources" / "amis.json.gz"
        dest = self.state_dir / "moto-stock-amis.json"
        dest.write_bytes(gzip.decompress(source.read_bytes()))
        return dest

    def stop(self) -> None:
        _stop(self.proc, self.pid)
        self.pid = self.proc = None
        self.pidfile.unlink(missing_ok=True)

    def _post(self, path: str) -> None:
        req = urllib.request.Request(self.url + path, data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def reset(self) -> None:
        """Forget every resource (``POST /moto-api/reset``) and empty the recording."""
        self._post("/moto-api/reset")
        self._post("/moto-api/recorder/reset-recording")

    def mark(self) -> int:
        """A position in the recording; pass it to :meth:`ec2_actions` to see only later calls."""
        try:
            return self.recording.stat().st_size
        except FileNotFoundError:
            return 0

    def ec2_actions(self, since: int = 0) -> list[str]:
        """The EC2 ``Action`` names moto served since ``since`` (a :meth:`mark`), in order."""
        actions: list[str] = []
        try:
            with open(self.recording, "rb") as f:
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return actions
        for line in data.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if str(entry.get("url", "")).find("/moto-api/") >= 0:
                continue
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            query = urllib.parse.urlsplit(str(entry.get("url", ""))).query
            params = urllib.parse.parse_qs(f"{body}&{query}")
            action = params.get("Action", [""])[0]
            if action and "Version" in params and _is_ec2(entry):
                actions.append(action)
        return actions

    def count_ec2_calls(self, since: int = 0) -> int:
        return len(self.ec2_actions(since))


def _is_ec2(entry: Mapping[str, object]) -> bool:
    headers = entry.get("headers")
    if not isinstance(headers, Mapping):
        return True
    auth = str(headers.get("Authorization", ""))
    return "/ec2/" in auth or not auth


@dataclass
class Sshd:
    """A private OpenSSH sshd on a loopback port that accepts any public key for ``user``."""

    state_dir: Path
    port: int = 0
    user: str = field(default_factory=stack_user)
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.state_dir / "sshd_config"

    @property
    def log(self) -> Path:
        return self.state_dir / "sshd.log"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "sshd.pid"

    @property
    def host_key(self) -> Path:
        return self.state_dir / "ssh_host_ed25519_key"

    def write_config(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
                           check=True, stdin=subprocess.DEVNULL)
        # AuthorizedKeysCommand: /bin/echo (root-owned, 0755 all the way up) prints the offered
        # key back as a valid authorized_keys line, so any key is accepted for `user`.
        self.config.write_text(
            "# amibake test stack: loopback only, any public key for one user\n"
            "ListenAddress 127.0.0.1\n"
            f"Port {self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.pidfile}\n"
            "LogLevel VERBOSE\n"
            "UsePAM no\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "PermitRootLogin no\n"
            f"AllowUsers {self.user}\n"
            "AuthorizedKeysFile none\n"
            "AuthorizedKeysCommand /bin/echo %t %k\n"
            "AuthorizedKeysCommandUser nobody\n"
            "Subsystem sftp internal-sftp\n"
            "StrictModes yes\n"
            "MaxStartups 50:30:100\n"
            "MaxSessions 50\n"
        )

    def start(self, timeout: float = 15.0) -> None:
        reason = unavailable_reason(self.user)
        if reason:
            raise StackError(reason)
        self.port = self.port or free_port()
        self.write_config()
        run_sshd = Path("/run/sshd")  # Debian's compiled-in privilege separation directory
        run_sshd.mkdir(parents=True, exist_ok=True)
        run_sshd.chmod(0o755)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True)
        if check.returncode != 0:
            raise StackError(f"sshd rejected {self.config}: {check.stderr.strip()}")
        # -D: stay in the foreground, so the pid we get is sshd's and nothing races on PidFile
        proc = subprocess.Popen([SSHD, "-D", "-f", str(self.config), "-E", str(self.log)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.pid, self.proc = proc.pid, proc
        if not wait_port(self.port, timeout, proc):
            self.stop()
            raise StackError(f"sshd did not come up on port {self.port}; {self.log}:\n{_tail(self.log)}")

    def stop(self) -> None:
        _stop(self.proc, self.pid)
        self.pid = self.proc = None
        self.pidfile.unlink(missing_ok=True)


@dataclass
class Stack:
    """moto + sshd, started together. ``state_dir`` holds their logs, config and pid files."""

    state_dir: Path
    moto: MotoServer = field(init=False)
    sshd: Sshd = field(init=False)
    owns_dir: bool = False

    def __post_init__(self) -> None:
        self.moto = MotoServer(self.state_dir / "moto")
        self.sshd = Sshd(self.state_dir / "sshd")

    @classmethod
    def temporary(cls) -> Stack:
        return cls(Path(tempfile.mkdtemp(prefix="amibake-stack-")), owns_dir=True)

    def start(self) -> None:
        self.moto.start()
        try:
            self.sshd.start()
        except BaseException:
            self.moto.stop()
            raise

    def stop(self) -> None:
        self.sshd.stop()
        self.moto.stop()
        if self.owns_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def reset(self) -> None:
        self.moto.reset()

    def env(self) -> dict[str, str]:
        """Environment for amibake (or Packer, or boto3) to talk to this stack only; with the test's
        own state dir, TMPDIR and server socket when set (:data:`ISOLATED_VARS`)."""
        return {
            **{k: os.environ[k] for k in ISOLATED_VARS if os.environ.get(k)},
            "AWS_ENDPOINT_URL": self.moto.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "NO_PROXY": "127.0.0.1,localhost",
            "AMIBAKE_SSH_HOST": "127.0.0.1",
            "AMIBAKE_SSH_PORT": str(self.sshd.port),
            "AMIBAKE_SSH_USER": self.sshd.user,
        }

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    with Stack.temporary() as stack:
        yield stack


# ---- command line: start | stop | env --state-dir D ------------------------------------------

_STATE_FILE = "stack.json"


def _save(stack: Stack) -> None:
    data = {"moto_port": stack.moto.port, "moto_pid": stack.moto.pid,
            "ssh_port": stack.sshd.port, "sshd_pid": stack.sshd.pid, "user": stack.sshd.user}
    (stack.state_dir / _STATE_FILE).write_text(json.dumps(data, indent=1) + "\n")


def _load(state_dir: Path) -> Stack | None:
    try:
        data = json.loads((state_dir / _STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    stack = Stack(state_dir)
    stack.moto.port, stack.moto.pid = data["moto_port"], data["moto_pid"]
    stack.sshd.port, stack.sshd.pid, stack.sshd.user = data["ssh_port"], data["sshd_pid"], data["user"]
    return stack


def _exports(stack: Stack) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in stack.env().items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stackkit", description="Start/stop the local moto + sshd stack.")
    ap.add_argument("verb", choices=["start", "stop", "env", "reset"])
    ap.add_argument("--state-dir", required=True, type=Path)
    args = ap.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    existing = _load(state_dir)
    if args.verb == "start":
        if existing and existing.moto.pid and _alive(existing.moto.pid) and existing.sshd.pid \
                and _alive(existing.sshd.pid):
            sys.stdout.write(_exports(existing))
            return 0
        if existing:
            existing.stop()
        stack = Stack(state_dir)
        try:
            stack.start()
        except StackError as exc:
            print(f"stackkit: {exc}", file=sys.stderr)
            return 1
        _save(stack)
        sys.stdout.write(_exports(stack))
        return 0
    if existing is None:
        print(f"stackkit: no stack in {state_dir} (run start first)", file=sys.stderr)
        return 1
    if args.verb == "env":
        sys.stdout.write(_exports(existing))
    elif args.verb == "reset":
        existing.reset()
    else:
        existing.stop()
        (state_dir / _STATE_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
