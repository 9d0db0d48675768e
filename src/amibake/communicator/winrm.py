"""The WinRM communicator (``communicator = "winrm"``): WS-Management's remote shell (WinRS) over
HTTP(S) with Basic or NTLM authentication, through pypsrp's WSMan and WinRS (chosen over pywinrm by
measurement: bench/WINRM.md).

It does what Packer's does (the SDK's sdk-internals/communicator/winrm with masterzen/winrm and
packer-community/winrmcp), so that a Windows machine sees the same commands from both:

- every command runs in a shell of its own (Create, Command, Receive until Done, Signal, Delete);
- PowerShell scripts are sent as ``powershell.exe -EncodedCommand <base64 of UTF-16LE>``;
- an upload appends base64 chunks to ``%TEMP%\\winrmcp-<uuid>.tmp`` with ``echo ... >> "..."`` in
  cmd (at most 15 per shell, each command line under 8000 characters), then a PowerShell script
  decodes the temp file into place and another removes it;
- a download runs ``[System.IO.File]::ReadAllBytes`` and decodes the base64 it prints;
- downloading a directory is refused, as Packer refuses it.
"""

from __future__ import annotations

import base64
import codecs
import io
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from amibake.communicator.base import CommandTimeoutError, Communicator, DisconnectedError, LineSink
from amibake.communicator.tree import split_source, walk
from amibake.communicator.winrm_settings import WinRMSettings
from amibake.errors import CommunicatorError

#: Packer's check that a fresh connection really runs commands (StepConnectWinRM)
CONNECT_CHECK = ("if (Test-Path variable:global:ProgressPreference){$ProgressPreference='SilentlyContinue'}; "
                 'echo "WinRM connected."')
#: winrmcp: the cmd.exe command line limit it keeps under, and the echo commands per shell
COMMAND_LIMIT = 8000
OPERATIONS_PER_SHELL = 15

_RESTORE = """
\t\t$tmp_file_path = [System.IO.Path]::GetFullPath("{tmp}")
\t\t$dest_file_path = [System.IO.Path]::GetFullPath("{dest}".Trim("'"))
\t\tif (Test-Path $dest_file_path) {{
\t\t\tif (Test-Path -Path $dest_file_path -PathType container) {{
\t\t\t\tExit 1
\t\t\t}} else {{
\t\t\t\trm $dest_file_path
\t\t\t}}
\t\t}}
\t\telse {{
\t\t\t$dest_dir = ([System.IO.Path]::GetDirectoryName($dest_file_path))
\t\t\tNew-Item -ItemType directory -Force -ErrorAction SilentlyContinue -Path $dest_dir | Out-Null
\t\t}}

\t\tif (Test-Path $tmp_file_path) {{
\t\t\t$reader = [System.IO.File]::OpenText($tmp_file_path)
\t\t\t$writer = [System.IO.File]::OpenWrite($dest_file_path)
\t\t\ttry {{
\t\t\t\tfor(;;) {{
\t\t\t\t\t$base64_line = $reader.ReadLine()
\t\t\t\t\tif ($base64_line -eq $null) {{ break }}
\t\t\t\t\t$bytes = [System.Convert]::FromBase64String($base64_line)
\t\t\t\t\t$writer.write($bytes, 0, $bytes.Length)
\t\t\t\t}}
\t\t\t}}
\t\t\tfinally {{
\t\t\t\t$reader.Close()
\t\t\t\t$writer.Close()
\t\t\t}}
\t\t}} else {{
\t\t\techo $null > $dest_file_path
\t\t}}
\t"""
_CLEANUP = """
\t\t$tmp_file_path = [System.IO.Path]::GetFullPath("{tmp}")
\t\tif (Test-Path $tmp_file_path) {{
\t\t\tRemove-Item $tmp_file_path -ErrorAction SilentlyContinue
\t\t}}
\t"""
_DOWNLOAD = ('$file=[System.IO.File]::ReadAllBytes("{src}"); '
             "Write-Output $([System.Convert]::ToBase64String($file))")


def powershell(script: str) -> str:
    """masterzen/winrm's ``Powershell``: the command line that runs ``script`` in PowerShell."""
    return "powershell.exe -EncodedCommand " + base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def _wsman(settings: WinRMSettings) -> Any:
    """pypsrp's WSMan for these settings; proxies and CA bundle from the environment (as Go's client),
    none with ``no_proxy``."""
    from pypsrp.wsman import WSMan

    return WSMan(
        settings.host, port=settings.port, path="wsman", username=settings.username,
        password=settings.password, ssl=settings.use_ssl, auth="ntlm" if settings.use_ntlm else "basic",
        # no message encryption over HTTP (WinRM's AllowUnencrypted), with NTLM too, as Packer's
        # masterzen/winrm ClientNTLM; HTTPS is TLS
        encryption="auto" if settings.use_ssl else "never",
        cert_validation=not settings.insecure, no_proxy=settings.no_proxy,
        connection_timeout=30, read_timeout=30, operation_timeout=20,
    )


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."


def connect(settings: WinRMSettings, *, cancel: threading.Event | None = None,
            log: Callable[[str], None] | None = None) -> WinRMCommunicator:
    """Packer's StepConnectWinRM wait: open (and close) a shell until WinRM answers, then run the
    connect check until it prints ``WinRM connected.`` (its output goes to ``log``, as Packer shows
    it), retrying until ``settings.timeout``. Polls ``cancel`` between attempts."""
    say = log or (lambda _msg: None)
    deadline = time.monotonic() + settings.timeout
    delay = settings.retry_interval
    where = f"{settings.endpoint} as {settings.username}"
    last = "no attempt made"
    comm: WinRMCommunicator | None = None
    try:
        while True:
            if cancel is not None and cancel.is_set():
                raise CommunicatorError("WinRM wait canceled")
            if time.monotonic() >= deadline:
                raise CommunicatorError(f"Timeout waiting for WinRM. (last error on {where}: {last})")
            try:
                if comm is None:
                    candidate = WinRMCommunicator(settings)
                    try:
                        candidate.check_shell()
                    except BaseException:
                        candidate.close()  # its HTTP session; the next attempt makes a new one
                        raise
                    comm = candidate
                out = _Shown(say)
                code = comm.run(powershell(CONNECT_CHECK), stdout=out, stderr=say)
                if any("WinRM connected." in line for line in out.lines):
                    connected, comm = comm, None
                    return connected
                last = f"the connect check exited {code} without printing 'WinRM connected.'"
            except CommunicatorError as exc:
                last = str(exc)
            except Exception as exc:
                last = _describe(exc)
            pause = min(delay, max(0.0, deadline - time.monotonic()))
            delay = min(delay * 2, 2.0)
            if cancel is not None:
                if cancel.wait(pause):
                    raise CommunicatorError("WinRM wait canceled")
            else:
                time.sleep(pause)
    finally:
        if comm is not None:  # connected, but the check never passed
            comm.close()


def open_for_build(config: Any, host: str, *, password: str = "", ui: Any,
                   cancel: threading.Event | None = None) -> WinRMCommunicator:
    """The ``winrm`` communicator of a build (its registered implementation): Packer's StepConnect
    for WinRM, with its messages, from the template's ``winrm_*`` options and the machine's address
    (``password``: the one the build retrieved when the template sets none)."""
    from amibake.communicator.winrm_settings import winrm_settings

    ui.say(f"Using winrm communicator to connect: {host}")
    ui.say("Waiting for WinRM to become available...")
    comm = connect(winrm_settings(config, host, password=password), cancel=cancel, log=ui.message)
    ui.say("Connected to WinRM!")
    return comm


class _Shown:
    """A line sink that shows each line and keeps it."""

    def __init__(self, show: Callable[[str], None]) -> None:
        self.show = show
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.show(line)


class _Lines:
    """A byte stream to lines for a callback (UTF-8, invalid bytes replaced, ``\\r\\n`` or ``\\n``)."""

    def __init__(self, sink: LineSink | None) -> None:
        self._sink = sink
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""

    def feed(self, data: bytes) -> None:
        if self._sink is None or not data:
            return
        self._buf += self._dec.decode(data)
        *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._sink(line.removesuffix("\r"))

    def finish(self) -> None:
        if self._sink is None:
            return
        self._buf += self._dec.decode(b"", final=True)
        if self._buf:
            self._sink(self._buf.removesuffix("\r"))
            self._buf = ""


class WinRMCommunicator(Communicator):
    """Commands and files over WinRM; every operation opens a shell of its own, as Packer's does."""

    def __init__(self, settings: WinRMSettings) -> None:
        self.settings = settings
        self._wsman = _wsman(settings)
        self._closed = False

    # -- shells -------------------------------------------------------------------------------------
    def check_shell(self) -> None:
        """Open and close a shell: Packer's ``winrm.New`` test of the connection."""
        shell = self._open()
        self._close_shell(shell)

    def _open(self) -> Any:
        from pypsrp.shell import WinRS

        if self._closed:
            raise CommunicatorError("the WinRM communicator is closed")
        shell = WinRS(self._wsman)
        try:
            shell.open()
        except Exception as exc:
            raise CommunicatorError(f"WinRM: cannot open a shell on {self.settings.endpoint}: "
                                    f"{_describe(exc)}") from exc
        return shell

    def _close_shell(self, shell: Any) -> None:
        try:
            shell.close()
        except Exception:  # a shell that cannot be deleted is gone with its host
            pass

    def _start(self, shell: Any, command: str) -> str:
        from pypsrp.shell import Process

        process = Process(shell, command)
        process.begin_invoke()
        return str(process.id)

    def _receive(self, shell: Any, command_id: str) -> tuple[bytes, bytes, int | None, bool] | None:
        """One Receive: (stdout, stderr, exit code, done); None when the operation timed out with
        nothing to say (WS-Man fault 2150858793), as a long silent command does."""
        from pypsrp.exceptions import WSManFaultError
        from pypsrp.shell import CommandState

        try:
            state, rc, buffer = shell.receive("stdout stderr", command_id)
        except WSManFaultError as exc:
            if exc.code == 2150858793:
                return None
            raise
        return buffer.get("stdout", b""), buffer.get("stderr", b""), rc, state == CommandState.DONE

    # -- commands -------------------------------------------------------------------------------------
    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        shell = self._open()
        try:
            try:
                command_id = self._start(shell, command)
                if stdin is not None:
                    shell.send("stdin", stdin, command_id=command_id, end=True)
            except Exception as exc:
                raise CommunicatorError(f"WinRM: cannot start the command: {_describe(exc)}") from exc
            out, err = _Lines(stdout), _Lines(stderr)
            deadline = None if timeout is None else time.monotonic() + timeout
            code: int | None = None
            while True:
                if deadline is not None and time.monotonic() > deadline:
                    self._signal(shell, command_id)
                    raise CommandTimeoutError(f"the command timed out after {timeout:g}s")
                try:
                    got = self._receive(shell, command_id)
                except Exception as exc:
                    raise DisconnectedError(f"WinRM connection lost while the command ran: "
                                            f"{_describe(exc)}") from exc
                if got is None:
                    continue
                chunk_out, chunk_err, code, done = got
                out.feed(chunk_out)
                err.feed(chunk_err)
                if done:
                    break
            out.finish()
            err.finish()
            self._signal(shell, command_id)
            return int(code or 0)
        finally:
            self._close_shell(shell)

    def _signal(self, shell: Any, command_id: str) -> None:
        from pypsrp.shell import SignalCode

        try:
            shell.signal(SignalCode.TERMINATE, command_id)
        except Exception:  # the command is over either way
            pass

    def _checked(self, command: str, what: str) -> None:
        errors: list[str] = []
        code = self.run(command, stderr=errors.append)
        if code != 0:
            detail = "; ".join(line for line in errors if line.strip())
            raise CommunicatorError(f"{what} returned code={code}" + (f": {detail}" if detail else ""))

    # -- files ----------------------------------------------------------------------------------------
    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        if dst.endswith("\\") and isinstance(src, Path):
            dst += src.name
        if isinstance(src, bytes):
            self._copy(io.BytesIO(src), dst)
        elif isinstance(src, Path):
            try:
                with src.open("rb") as fh:
                    self._copy(fh, dst)
            except OSError as exc:
                raise CommunicatorError(f"cannot read {src}: {exc}") from exc
        else:
            self._copy(src, dst)

    def _copy(self, reader: BinaryIO, dst: str) -> None:
        """winrmcp's doCopy: base64 chunks appended to a temp file, then decoded into ``dst``."""
        dst = dst.replace("/", "\\")
        temp = f"winrmcp-{uuid.uuid4()}.tmp"
        cmd_path = "%TEMP%\\" + temp
        ps_path = "$env:TEMP\\" + temp
        chunk = ((COMMAND_LIMIT - len(cmd_path)) // 4) * 3
        try:
            finished = False
            while not finished:
                shell = self._open()
                try:
                    for _ in range(OPERATIONS_PER_SHELL):
                        data = reader.read(chunk)
                        if not data:
                            finished = True
                            break
                        self._append(shell, cmd_path, base64.b64encode(data).decode("ascii"))
                finally:
                    self._close_shell(shell)
        except CommunicatorError as exc:
            raise CommunicatorError(f"Error uploading file to {ps_path}: {exc}") from exc
        try:
            self._checked(powershell(_RESTORE.format(tmp=ps_path, dest=dst)), "restore operation")
        except CommunicatorError as exc:
            raise CommunicatorError(f"Error restoring file from {ps_path} to {dst}: {exc}") from exc
        try:
            self._checked(powershell(_CLEANUP.format(tmp=ps_path)), "cleanup operation")
        except CommunicatorError as exc:
            raise CommunicatorError(f"Error removing temporary file {ps_path}: {exc}") from exc

    def _append(self, shell: Any, path: str, content: str) -> None:
        try:
            command_id = self._start(shell, f'echo {content} >> "{path}"')
            code: int | None = None
            done = False
            while not done:
                got = self._receive(shell, command_id)
                if got is not None:
                    _out, _err, code, done = got
        except Exception as exc:
            raise CommunicatorError(_describe(exc)) from exc
        self._signal(shell, command_id)
        if code:
            raise CommunicatorError(f"upload operation returned code={code}")

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        """Packer's UploadDir: ``src`` without a trailing slash lands in ``dst\\<its name>``; every
        file is copied on its own (winrmcp's walk; empty directories are not made)."""
        root, name = split_source(src)
        if name is not None:
            dst = f"{dst}\\{name}"
        for entry in walk(root, exclude):
            if entry.is_dir or entry.name == ".DS_Store":
                continue
            self.upload(f"{dst}\\{entry.rel.replace('/', chr(92))}", Path(entry.path))

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        out: list[str] = []
        errors: list[str] = []
        code = self.run(powershell(_DOWNLOAD.format(src=src)), stdout=out.append, stderr=errors.append)
        if code != 0:
            detail = "; ".join(line for line in errors if line.strip())
            raise CommunicatorError(
                f"cannot download {src}: exit status {code}" + (f": {detail}" if detail else ""))
        try:
            data = base64.b64decode("".join(line.strip() for line in out), validate=True)
        except ValueError as exc:
            raise CommunicatorError(f"cannot download {src}: the output is not base64: {exc}") from exc
        if isinstance(dst, Path):
            dst.write_bytes(data)
        else:
            dst.write(data)

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        raise CommunicatorError("WinRM doesn't support download dir.")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._wsman.close()
        except Exception:  # nothing left to close
            pass
