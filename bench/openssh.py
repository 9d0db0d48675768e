"""Plain OpenSSH copies against the stack's sshd: the practical limit for the upload rows.

A throwaway ed25519 key (the stack's sshd accepts any key), ``-F /dev/null``, BatchMode, no
known_hosts. Copies go through a ControlMaster connection opened beforehand, which is what a
build's upload step compares with (it reuses the build's open connection). A mux client always
uses its master's cipher, so each cipher has its own master.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

COMMON = [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
]


class OpenSsh:
    def __init__(self, workdir: Path, port: int, user: str, cipher: str | None = None) -> None:
        self.dir = workdir
        self.port = port
        self.user = user
        self.cipher = cipher
        self.key = workdir / "id_ed25519"
        self.sock = workdir / f"mux-{cipher or 'default'}.sock"

    @property
    def dest(self) -> str:
        return f"{self.user}@127.0.0.1"

    def opts(self) -> list[str]:
        o = [*COMMON, "-i", str(self.key), "-o", f"ControlPath={self.sock}"]
        if self.cipher:
            o += ["-c", self.cipher]
        return o

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        subprocess.run(
            [
                "ssh",
                *self.opts(),
                "-o",
                "ControlMaster=yes",
                "-o",
                "ControlPersist=yes",
                "-p",
                str(self.port),
                "-N",
                "-f",
                self.dest,
            ],
            check=True,
            timeout=30,
        )

    def stop(self) -> None:
        subprocess.run(
            ["ssh", *self.opts(), "-p", str(self.port), "-O", "exit", self.dest],
            capture_output=True,
            timeout=30,
        )

    def ssh(self, command: str, stdin: object = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["ssh", *self.opts(), "-p", str(self.port), self.dest, command],
            stdin=stdin,
            capture_output=True,
            check=True,
        )  # type: ignore[call-overload]

    def timed(self, shell_cmd: str) -> float:
        t = time.perf_counter()
        subprocess.run(shell_cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    def scp_file(self, src: Path, dst: str) -> float:
        argv = ["scp", "-O", "-q", *self.opts(), "-P", str(self.port), str(src), f"{self.dest}:{dst}"]
        return self.timed(shlex.join(argv))

    def tar_tree(self, src: Path, dst: str) -> float:
        remote = f"mkdir -p {shlex.quote(dst)} && tar -C {shlex.quote(dst)} -xf -"
        ssh = shlex.join(["ssh", *self.opts(), "-p", str(self.port), self.dest, remote])
        return self.timed(f"tar -C {shlex.quote(str(src))} -cf - . | {ssh}")
