#!/usr/bin/env python3
"""pywinrm against pypsrp for the WinRM communicator, on the WS-Man emulation (tests/winrm_emulation.py).

    .venv/bin/python bench/winrm_libs.py [--runs N] [--mib M]

Both libraries (and amibake's communicator, built on the winner) drive the same operations the way
Packer's communicator does: one shell per command
(Create, Command, Receive until Done, Signal, Delete), and an upload as winrmcp's base64 ``echo``
chunks (15 per shell) followed by the PowerShell restore. Rows: the median command round trip, and
the upload of M MiB (wall time and MiB/s). Results: bench/WINRM.md.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.winrm_emulation import WinRMEmulator  # noqa: E402

from amibake.communicator.winrm import (  # noqa: E402
    _RESTORE,
    COMMAND_LIMIT,
    OPERATIONS_PER_SHELL,
    WinRMCommunicator,
    powershell,
)
from amibake.communicator.winrm_settings import WinRMSettings  # noqa: E402

PASSWORD = "bench-Pa55"


class PywinrmClient:
    """The operations through pywinrm's Protocol."""

    def __init__(self, port: int) -> None:
        from winrm.protocol import Protocol

        self.p = Protocol(f"http://127.0.0.1:{port}/wsman", transport="plaintext", username="Administrator",
                          password=PASSWORD)

    def _command(self, shell: str, command: str) -> int:
        cid = self.p.run_command(shell, command)
        done, code = False, -1
        while not done:
            _out, _err, code, done = self.p.get_command_output_raw(shell, cid)
        self.p.cleanup_command(shell, cid)
        return int(code)

    def run(self, command: str) -> int:
        shell = self.p.open_shell()
        try:
            return self._command(shell, command)
        finally:
            self.p.close_shell(shell, close_session=False)

    def upload(self, dst: str, data: bytes) -> None:
        temp = f"winrmcp-{uuid.uuid4()}.tmp"
        cmd_path = "%TEMP%\\" + temp
        chunk = ((COMMAND_LIMIT - len(cmd_path)) // 4) * 3
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
        for start in range(0, len(pieces), OPERATIONS_PER_SHELL):
            shell = self.p.open_shell()
            for piece in pieces[start:start + OPERATIONS_PER_SHELL]:
                self._command(shell, f'echo {base64.b64encode(piece).decode()} >> "{cmd_path}"')
            self.p.close_shell(shell, close_session=False)
        self.run(powershell(_RESTORE.format(tmp="$env:TEMP\\" + temp, dest=dst)))


class PsrpClient:
    """The same operations through pypsrp's WinRS (pypsrp.shell)."""

    def __init__(self, port: int) -> None:
        from pypsrp.wsman import WSMan

        self.wsman = WSMan("127.0.0.1", port=port, username="Administrator", password=PASSWORD, ssl=False,
                           auth="basic", encryption="never", cert_validation=False)

    def run(self, command: str) -> int:
        from pypsrp.shell import Process, SignalCode, WinRS

        with WinRS(self.wsman) as shell:
            process = Process(shell, command)
            process.invoke()
            process.signal(SignalCode.TERMINATE)  # masterzen's cmd.Close(), as pywinrm's cleanup_command
            return int(process.rc or 0)

    def upload(self, dst: str, data: bytes) -> None:
        from pypsrp.shell import Process, SignalCode, WinRS

        temp = f"winrmcp-{uuid.uuid4()}.tmp"
        cmd_path = "%TEMP%\\" + temp
        chunk = ((COMMAND_LIMIT - len(cmd_path)) // 4) * 3
        pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
        for start in range(0, len(pieces), OPERATIONS_PER_SHELL):
            with WinRS(self.wsman) as shell:
                for piece in pieces[start:start + OPERATIONS_PER_SHELL]:
                    process = Process(shell, f'echo {base64.b64encode(piece).decode()} >> "{cmd_path}"')
                    process.invoke()
                    process.signal(SignalCode.TERMINATE)
        self.run(powershell(_RESTORE.format(tmp="$env:TEMP\\" + temp, dest=dst)))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mib", type=float, default=4.0)
    parser.add_argument("--uploads", type=int, default=3)
    args = parser.parse_args()
    data = os.urandom(int(args.mib * (1 << 20)))
    with WinRMEmulator("Administrator", PASSWORD) as emu:
        amibake = WinRMCommunicator(WinRMSettings(host="127.0.0.1", port=emu.port, username="Administrator",
                                                  password=PASSWORD))
        pywinrm, psrp = PywinrmClient(emu.port), PsrpClient(emu.port)
        clients: dict[str, tuple[Callable[[str], object], Callable[[str, bytes], None]]] = {
            "pywinrm 0.5.0": (pywinrm.run, pywinrm.upload),
            "pypsrp 0.9.1": (psrp.run, psrp.upload),
            "amibake's communicator (pypsrp)": (amibake.run, amibake.upload),
        }
        for run, _upload in clients.values():
            run("echo warm-up")
        # interleaved, so that the machine's load (other work on it) weighs on both alike
        trips: dict[str, list[float]] = {name: [] for name in clients}
        uploads: dict[str, list[float]] = {name: [] for name in clients}
        for i in range(args.runs):
            for name, (run, _upload) in clients.items():
                trips[name].append(timed(lambda run=run: run("hostname")))  # type: ignore[misc]
            if i < args.uploads:
                for name, (_run, upload) in clients.items():
                    dst = f"C:\\bench\\{uuid.uuid4().hex}.bin"
                    uploads[name].append(timed(lambda upload=upload, dst=dst: upload(dst, data)))  # type: ignore[misc]
                    assert emu.files.pop(dst) == data, name
        print(f"| library | command round trip (median of {args.runs}) | upload {args.mib:g} MiB "
              f"(median of {args.uploads}) |")
        print("|---|---|---|")
        for name in clients:
            took = statistics.median(uploads[name])
            print(f"| {name} | {statistics.median(trips[name]) * 1000:.1f} ms | {took:.2f} s "
                  f"({args.mib / took:.2f} MiB/s) |")
        amibake.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
