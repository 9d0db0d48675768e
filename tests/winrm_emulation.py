"""A WS-Management (WinRM) server emulation for tests: no Windows here, so this plays the instance.

Built from the protocol as published (MS-WSMV's shell operations: Create, Command, Receive, Signal,
Delete, as sent by the public clients masterzen/winrm, used by Packer, and pywinrm), not from
amibake's code. It runs nothing: every command is *recorded* and answered from configured rules, so a
test checks what was sent and decides what the "instance" answers.

Start it (plain HTTP, Basic auth, loopback)::

    from tests.winrm_emulation import WinRMEmulator

    @pytest.fixture
    def winrm() -> Iterator[WinRMEmulator]:
        with WinRMEmulator(username="Administrator", password="s3cret") as emu:   # tls=True: HTTPS
            yield emu
    # ntlm=True: NTLM logins too (Negotiate/NTLM header, per connection; pyspnego's acceptor), basic=False:
    # no Basic (emu.ntlm_logins, emu.ntlm_refused tell what happened)
    # template: "winrm_host": "127.0.0.1", "winrm_port": emu.port, "winrm_username": ..., ...

Configure answers by regex (searched in the command line *and* in the decoded PowerShell script of
``powershell -EncodedCommand ...``; the last matching rule wins; no match: exit 0, no output)::

    emu.respond(r"Get-Service", stdout="Running\\r\\n")
    emu.respond(r"exit 3", exit_code=3, stderr="boom\\r\\n")
    emu.respond(r"shutdown /r", reboot=3.0)     # answer (exit 0), then refuse connections for 3 s

Read what happened::

    emu.commands            # list[Recorded]: .command_line, .command, .arguments, .script (decoded
                            #   -EncodedCommand or None), .exit_code, .stdout, .stderr, .shell_id
    emu.scripts()           # the decoded PowerShell scripts, in order
    emu.files               # {windows path: bytes} written by winrmcp-style uploads (Packer's and
                            #   amibake's: ``echo <base64> >> "%TEMP%\\winrmcp-*.tmp"`` chunks, then a
                            #   PowerShell restore that decodes the temp file into the destination)
    emu.files["C:\\\\x.txt"] = b"..."   # a file the instance "has" (downloads read it)
    emu.directories.add("C:\\\\Windows\\\\Temp")   # a path that is a directory (uploads into it)
    emu.auth_failures       # requests refused for wrong or missing credentials
    emu.reboot(5.0)         # refuse connections now, for 5 s (open shells are lost)
    emu.reboots             # how many reboots happened

Output streaming: a command's stdout/stderr is sent in one Receive answer per output line (state
Running), then a last answer with CommandState Done and the exit code, as a real shell answers a
command that writes over time.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
}
ACTION_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
ACTION_DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
ACTION_COMMAND = f"{NS['rsp']}/Command"
ACTION_RECEIVE = f"{NS['rsp']}/Receive"
ACTION_SIGNAL = f"{NS['rsp']}/Signal"
ACTION_SEND = f"{NS['rsp']}/Send"
STATE_DONE = f"{NS['rsp']}/CommandState/Done"
STATE_RUNNING = f"{NS['rsp']}/CommandState/Running"

_ENCODED = re.compile(r"(?i)(?:^|\s)-e(?:nc(?:odedcommand)?)?\s+([A-Za-z0-9+/=]+)")
_ECHO_CHUNK = re.compile(r'^echo ([A-Za-z0-9+/=]+) >> "([^"]+)"$')
_TMP = re.compile(r'\$tmp_file_path = \[System\.IO\.Path\]::GetFullPath\("([^"]*)"\)')
_DEST = re.compile(r'\$dest_file_path = \[System\.IO\.Path\]::GetFullPath\("([^"]*)"(?:\.Trim\("\'"\))?\)')
_IS_DIR = re.compile(r'\(Get-Item ([^)]*)\) -is \[System\.IO\.DirectoryInfo\]')
_READ_ALL = re.compile(r'\[System\.IO\.File\]::ReadAllBytes\("([^"]*)"\)')


@dataclass
class Recorded:
    """One command the emulator received, with what it answered."""

    shell_id: str
    command: str
    arguments: list[str]
    script: str | None
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""

    @property
    def command_line(self) -> str:
        return " ".join([self.command, *self.arguments])


@dataclass
class Rule:
    pattern: re.Pattern[str]
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    reboot: float = 0.0


@dataclass
class _Command:
    record: Recorded
    chunks: list[tuple[str, bytes]] = field(default_factory=list)
    reboot: float = 0.0
    done: bool = False


def temp_key(path: str) -> str:
    """The one name of a temp file, whichever way a script spells the temp folder."""
    lowered = path.replace("/", "\\").lower()
    for prefix in ("%temp%\\", "$env:temp\\", "c:\\windows\\temp\\"):
        if lowered.startswith(prefix):
            return "TEMP\\" + lowered[len(prefix):]
    return lowered


def decode_script(command_line: str) -> str | None:
    """The PowerShell script of ``powershell ... -EncodedCommand <base64 UTF-16LE>``, else None."""
    if "powershell" not in command_line.lower() and "pwsh" not in command_line.lower():
        return None
    match = _ENCODED.search(command_line)
    if not match:
        return None
    try:
        return base64.b64decode(match.group(1)).decode("utf-16-le")
    except (ValueError, UnicodeDecodeError):
        return None


class WinRMEmulator:
    """A WinRM endpoint on ``127.0.0.1``: HTTP (or HTTPS with ``tls=True``, a self-signed
    certificate) with Basic authentication for one user."""

    def __init__(self, username: str = "Administrator", password: str = "password", *, tls: bool = False,
                 port: int = 0, ntlm: bool = False, basic: bool = True) -> None:
        self.username = username
        self.password = password
        self.tls = tls
        #: accept NTLM (``Authorization: Negotiate``/``NTLM`` with raw NTLMSSP tokens, connection-based,
        #: no message encryption: WinRM's AllowUnencrypted) and/or Basic; ``ntlm_logins`` counts NTLM logins
        self.ntlm = ntlm
        self.basic = basic
        self.ntlm_logins = 0
        #: why NTLM handshakes failed (pyspnego's message)
        self.ntlm_refused: list[str] = []
        self.port = port
        self.commands: list[Recorded] = []
        self.files: dict[str, bytes] = {}
        self.directories: set[str] = set()
        self.auth_failures = 0
        #: TLS handshakes that failed (the client refused the self-signed certificate, ...)
        self.tls_refused: list[str] = []
        self.reboots = 0
        self.requests = 0
        self.actions: list[str] = []
        self._rules: list[Rule] = []
        self._temp: dict[str, list[str]] = {}
        self._shells: dict[str, dict[str, _Command]] = {}
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._down_until = 0.0
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        self._ssl: ssl.SSLContext | None = None
        self.cert_path: Path | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/wsman"

    def start(self) -> WinRMEmulator:
        if self.ntlm and self._tmpdir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="winrm-emu-")
        if self.ntlm:
            # pyspnego's NTLM acceptor reads the accounts from NTLM_USER_FILE (DOMAIN:USER:PASSWORD)
            assert self._tmpdir is not None
            users = Path(self._tmpdir.name) / "ntlm_users"
            # a local account: no domain, or the machine's name (what the challenge names as target, and
            # what masterzen/winrm's go-ntlmssp answers with)
            users.write_text(f":{self.username}:{self.password}\n"
                             f"{socket.gethostname().upper()}:{self.username}:{self.password}\n")
            os.environ["NTLM_USER_FILE"] = str(users)
        if self.tls and self._ssl is None:
            from tests.tlsfront import self_signed

            if self._tmpdir is None:
                self._tmpdir = tempfile.TemporaryDirectory(prefix="winrm-emu-")
            cert, key = self_signed(Path(self._tmpdir.name))
            self.cert_path = cert
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(cert, key)
        self._listen()
        return self

    def stop(self) -> None:
        self._close_listener()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> WinRMEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> None:
        emu = self

        class Handler(_Handler):
            emulator = emu

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler, bind_and_activate=False)
        server.allow_reuse_address = True
        server.daemon_threads = True
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        server.server_bind()
        server.server_activate()
        if self._ssl is not None:
            server.socket = self._ssl.wrap_socket(server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="winrm-emulator")
        self._thread.start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    # -- configuration ----------------------------------------------------------------------------
    def respond(self, pattern: str, *, stdout: str = "", stderr: str = "", exit_code: int = 0,
                reboot: float = 0.0, flags: int = 0) -> None:
        """Answer commands whose command line or decoded script matches ``pattern`` (``re.search``)."""
        with self._lock:
            self._rules.append(Rule(re.compile(pattern, flags), stdout, stderr, exit_code, reboot))

    def reboot(self, seconds: float) -> None:
        """Refuse connections for ``seconds`` (the listener is closed), then listen again on the same
        port. Open shells and open connections are lost, as on a restarted machine."""
        with self._lock:
            self.reboots += 1
            self._shells.clear()
            self._down_until = time.monotonic() + seconds
        self._close_listener()

        def come_back() -> None:
            time.sleep(max(0.0, self._down_until - time.monotonic()))
            for _ in range(50):
                try:
                    self._listen()
                    return
                except OSError:
                    time.sleep(0.1)

        threading.Thread(target=come_back, daemon=True, name="winrm-emulator-reboot").start()

    # -- reading ---------------------------------------------------------------------------------
    def scripts(self) -> list[str]:
        """The decoded PowerShell scripts received, in order."""
        return [c.script for c in list(self.commands) if c.script is not None]

    def command_lines(self) -> list[str]:
        return [c.command_line for c in list(self.commands)]

    def wait_listening(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return True
            time.sleep(0.05)
        return False

    # -- the shell ---------------------------------------------------------------------------------
    def _execute(self, shell_id: str, command: str, arguments: list[str]) -> _Command:
        line = " ".join([command, *arguments])
        script = decode_script(line)
        record = Recorded(shell_id, command, arguments, script)
        stdout, stderr, code, reboot = self._builtin(line, script)
        with self._lock:
            for rule in self._rules:
                if rule.pattern.search(line) or (script is not None and rule.pattern.search(script)):
                    stdout, stderr, code, reboot = rule.stdout, rule.stderr, rule.exit_code, rule.reboot
            record.stdout, record.stderr, record.exit_code = stdout, stderr, code
            self.commands.append(record)
        cmd = _Command(record, reboot=reboot)
        for name, text in (("stdout", stdout), ("stderr", stderr)):
            for piece in text.splitlines(keepends=True):
                cmd.chunks.append((name, piece.encode("utf-8")))
        return cmd

    def _builtin(self, line: str, script: str | None) -> tuple[str, str, int, float]:
        """What winrmcp's and Packer's own file commands do on Windows."""
        chunk = _ECHO_CHUNK.match(line.strip())
        if chunk:
            with self._lock:
                self._temp.setdefault(temp_key(chunk.group(2)), []).append(chunk.group(1))
            return "", "", 0, 0.0
        if script is None:
            return "", "", 0, 0.0
        tmp, dest = _TMP.search(script), _DEST.search(script)
        if tmp and dest:
            target = dest.group(1).strip("'")
            with self._lock:
                if target.lower() in {d.lower() for d in self.directories}:
                    return "", "", 1, 0.0
                lines = self._temp.get(temp_key(tmp.group(1)), [])
                self.files[target] = b"".join(base64.b64decode(part) for part in lines)
            return "", "", 0, 0.0
        if tmp and "Remove-Item" in script:
            with self._lock:
                self._temp.pop(temp_key(tmp.group(1)), None)
            return "", "", 0, 0.0
        if script.rstrip().endswith('echo "WinRM connected."'):
            return "WinRM connected.\r\n", "", 0, 0.0  # the communicator's connect check (Packer's)
        is_dir = _IS_DIR.search(script)
        if is_dir:
            path = is_dir.group(1).strip().strip("'\"")
            answer = path.lower() in {d.lower() for d in self.directories}
            return f"{answer}\r\n", "", 0, 0.0
        read_all = _READ_ALL.search(script)
        if read_all:
            with self._lock:
                data = self.files.get(read_all.group(1))
            if data is None:
                missing = f"Exception calling \"ReadAllBytes\": Could not find file '{read_all.group(1)}'\r\n"
                return "", missing, 1, 0.0
            return base64.b64encode(data).decode() + "\r\n", "", 0, 0.0
        return "", "", 0, 0.0

    def temp_files(self) -> dict[str, bytes]:
        """Upload temp files still present (decoded), by their normalized name."""
        with self._lock:
            return {k: b"".join(base64.b64decode(p) for p in v) for k, v in self._temp.items()}

    # -- one request -------------------------------------------------------------------------------
    def handle(self, body: bytes) -> tuple[int, bytes]:
        root = ET.fromstring(body)
        header = root.find("s:Header", NS)
        action = _text(header, "a:Action")
        message_id = _text(header, "a:MessageID")
        shell_id = ""
        if header is not None:
            for sel in header.iter(f"{{{NS['w']}}}Selector"):
                if sel.get("Name") == "ShellId":
                    shell_id = sel.text or ""
        body_el = root.find("s:Body", NS)
        with self._lock:
            self.requests += 1
            self.actions.append(action.rsplit("/", 1)[-1])
        if action == ACTION_CREATE:
            new_id = str(uuid.uuid4()).upper()
            with self._lock:
                self._shells[new_id] = {}
            return 200, _envelope(ACTION_CREATE + "Response", message_id, (
                f'<x:ResourceCreated><a:Address>{self.url}</a:Address><a:ReferenceParameters>'
                f'<w:ResourceURI>{NS["rsp"]}/cmd</w:ResourceURI><w:SelectorSet>'
                f'<w:Selector Name="ShellId">{new_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
                f'</x:ResourceCreated><rsp:Shell><rsp:ShellId>{new_id}</rsp:ShellId>'
                f'<rsp:ResourceUri>{NS["rsp"]}/cmd</rsp:ResourceUri><rsp:State>Connected</rsp:State>'
                f'</rsp:Shell>'))
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is None:
            return 500, _fault(message_id, "2150858843", "The request for the Windows Remote Shell with "
                               f"ShellId {shell_id} failed because the shell was not found on the server.")
        if action == ACTION_DELETE:
            with self._lock:
                self._shells.pop(shell_id, None)
            return 200, _envelope(ACTION_DELETE + "Response", message_id, "")
        if action == ACTION_COMMAND:
            line = body_el.find("rsp:CommandLine", NS) if body_el is not None else None
            command = _text(line, "rsp:Command")
            arguments = [a.text or "" for a in line.findall("rsp:Arguments", NS)] if line is not None else []
            cmd = self._execute(shell_id, command, arguments)
            command_id = str(uuid.uuid4()).upper()
            with self._lock:
                shell[command_id] = cmd
            return 200, _envelope(ACTION_COMMAND + "Response", message_id,
                                  f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId>"
                                  "</rsp:CommandResponse>")
        if action == ACTION_RECEIVE:
            desired = body_el.find("rsp:Receive/rsp:DesiredStream", NS) if body_el is not None else None
            command_id = desired.get("CommandId", "") if desired is not None else ""
            with self._lock:
                cmd = shell.get(command_id)
            if cmd is None:
                return 500, _fault(message_id, "2150858843", f"unknown CommandId {command_id}")
            if cmd.chunks:
                name, data = cmd.chunks.pop(0)
                return 200, _envelope(ACTION_RECEIVE + "Response", message_id, (
                    f'<rsp:ReceiveResponse><rsp:Stream Name="{name}" CommandId="{command_id}">'
                    f'{base64.b64encode(data).decode()}</rsp:Stream>'
                    f'<rsp:CommandState CommandId="{command_id}" State="{STATE_RUNNING}"/>'
                    '</rsp:ReceiveResponse>'))
            cmd.done = True
            if cmd.reboot > 0:
                threading.Timer(0.05, self.reboot, args=(cmd.reboot,)).start()
            return 200, _envelope(ACTION_RECEIVE + "Response", message_id, (
                f'<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="{command_id}" End="true"/>'
                f'<rsp:Stream Name="stderr" CommandId="{command_id}" End="true"/>'
                f'<rsp:CommandState CommandId="{command_id}" State="{STATE_DONE}">'
                f'<rsp:ExitCode>{cmd.record.exit_code}</rsp:ExitCode></rsp:CommandState>'
                '</rsp:ReceiveResponse>'))
        if action == ACTION_SIGNAL:
            signal = body_el.find("rsp:Signal", NS) if body_el is not None else None
            command_id = signal.get("CommandId", "") if signal is not None else ""
            with self._lock:
                shell.pop(command_id, None)
            return 200, _envelope(ACTION_SIGNAL + "Response", message_id, "<rsp:SignalResponse/>")
        if action == ACTION_SEND:
            return 200, _envelope(ACTION_SEND + "Response", message_id, "<rsp:SendResponse/>")
        return 500, _fault(message_id, "2150858817", f"unsupported action {action}")

    def check_auth(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.username and password == self.password


class _Handler(BaseHTTPRequestHandler):
    emulator: WinRMEmulator
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add 40 ms to every answer
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                with self.emulator._lock:
                    self.emulator.tls_refused.append(str(exc))
                self.request.close()
                raise
        super().setup()
        with self.emulator._lock:
            self._boot = self.emulator.reboots  # the "boot" this connection was made in

    def _dropped(self) -> bool:
        """A restarted machine keeps no TCP connection: a request on a connection made before the
        last reboot, or while the machine is down, gets the connection reset instead of an answer
        (a keep-alive client would otherwise never see the reboot)."""
        emu = self.emulator
        with emu._lock:
            stale = emu.reboots != self._boot or time.monotonic() < emu._down_until
        if stale:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
        return stale

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _unauthorized(self, *challenges: str, failed: bool = True) -> None:
        emu = self.emulator
        if failed:
            with emu._lock:
                emu.auth_failures += 1
        self.send_response(401)
        for challenge in challenges:
            self.send_header("WWW-Authenticate", challenge)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _authorized(self) -> bool:
        """Basic per request; NTLM once per connection (its handshake answered with 401 challenges)."""
        emu = self.emulator
        header = self.headers.get("Authorization") or ""
        offers = [*(["Negotiate"] if emu.ntlm else []), *(['Basic realm="WSMAN"'] if emu.basic else [])]
        if getattr(self, "_ntlm_done", False):
            return True
        scheme, _, token = header.partition(" ")
        if scheme == "Basic" and emu.basic:
            if emu.check_auth(header):
                return True
            self._unauthorized(*offers)
            return False
        if scheme in ("Negotiate", "NTLM") and emu.ntlm and token:
            import spnego
            import spnego.exceptions

            ctx = getattr(self, "_ntlm_ctx", None)
            if ctx is None:
                ctx = self._ntlm_ctx = spnego.server(protocol="ntlm")
            try:
                answer = ctx.step(base64.b64decode(token))
            except (spnego.exceptions.SpnegoError, ValueError) as exc:
                with emu._lock:
                    emu.ntlm_refused.append(str(exc))
                self._ntlm_ctx = None
                self._unauthorized(*offers)
                return False
            if ctx.complete:
                self._ntlm_done = True
                with emu._lock:
                    emu.ntlm_logins += 1
                return True
            self._unauthorized(f"{scheme} {base64.b64encode(answer or b'').decode()}", failed=False)
            return False
        self._unauthorized(*offers, failed=bool(header))
        return False

    def do_POST(self) -> None:
        if self._dropped():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        emu = self.emulator
        if not self._authorized():
            return
        try:
            status, answer = emu.handle(body)
        except ET.ParseError:
            status, answer = 400, b""
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def _text(parent: ET.Element | None, path: str) -> str:
    if parent is None:
        return ""
    found = parent.find(path, NS)
    return (found.text or "").strip() if found is not None else ""


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    ns = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xml:lang="en-US" {ns}><s:Header>'
        f"<a:Action>{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(relates_to: str, code: str, message: str) -> bytes:
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value>"
        f"</s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">{message}</s:Text></s:Reason>"
        f'<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" '
        f'Code="{code}" Machine="127.0.0.1"><f:Message>{message}</f:Message></f:WSManFault></s:Detail>'
        "</s:Fault>"))


# -- EC2's GetPasswordData, which moto does not emulate ----------------------------------------------

_KEY_PAIR_ITEM = re.compile(r"<keyName>([^<]*)</keyName>.*?<keyMaterial>([^<]*)</keyMaterial>", re.S)
_INSTANCE_ITEM = re.compile(r"<instanceId>(i-[0-9a-f]+)</instanceId>(.*?)</item>", re.S)
_KEY_NAME = re.compile(r"<keyName>([^<]*)</keyName>")


def password_proxy(upstream: str, password: str, *, not_ready: int = 2, **proxy_options: Any) -> Any:
    """The recording proxy (tests/awsproxy.py) in front of moto, answering GetPasswordData as EC2 does:
    empty ``passwordData`` for the first ``not_ready`` calls per instance (Windows has not set the
    password yet), then ``password`` encrypted with the public key of the instance's key pair (RSA
    PKCS#1 v1.5, base64). moto answers 128 random characters instead.

    The key pair is learnt from CreateKeyPair's answer (its private key) and RunInstances' answer
    (``keyName`` of each instance); an imported key goes in ``proxy.public_keys[name]`` (PEM or
    OpenSSH). ``proxy.password_polls[instance id]`` counts the calls."""
    from tests.awsproxy import AwsProxy

    class PasswordDataProxy(AwsProxy):
        def __init__(self) -> None:
            super().__init__(upstream, **proxy_options)
            self.password = password
            self.not_ready = not_ready
            self.public_keys: dict[str, Any] = {}
            self.instance_keys: dict[str, str] = {}
            self.password_polls: dict[str, int] = {}

        def observe(self, action: str, body: bytes) -> bytes:
            text = body.decode("utf-8", "replace")
            if action == "CreateKeyPair":
                from cryptography.hazmat.primitives import serialization

                for name, material in _KEY_PAIR_ITEM.findall(text):
                    key = serialization.load_pem_private_key(material.strip().encode(), password=None)
                    self.public_keys[name] = key.public_key()
            elif action == "RunInstances":
                for iid, rest in _INSTANCE_ITEM.findall(text):
                    found = _KEY_NAME.search(rest)
                    if found:
                        self.instance_keys[iid] = found.group(1)
            elif action == "GetPasswordData":
                return self._password_data(text).encode()
            return super().observe(action, body)

        def _password_data(self, text: str) -> str:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import padding

            found = re.search(r"<instanceId>([^<]*)</instanceId>", text)
            iid = found.group(1) if found else ""
            with self._lock:
                polls = self.password_polls[iid] = self.password_polls.get(iid, 0) + 1
            data = ""
            key = self.public_keys.get(self.instance_keys.get(iid, ""))
            if isinstance(key, str):
                key = (serialization.load_ssh_public_key(key.encode()) if key.startswith("ssh-")
                       else serialization.load_pem_public_key(key.encode()))
            if polls > self.not_ready and key is not None:
                data = base64.b64encode(key.encrypt(self.password.encode(), padding.PKCS1v15())).decode()
            return re.sub(r"<passwordData>[^<]*</passwordData>|<passwordData\s*/>",
                          f"<passwordData>{data}</passwordData>", text)

    return PasswordDataProxy()
