#!/usr/bin/env python3
"""The SSH communicator alone against the stack's sshd: connect, one command, the upload rows.

    .venv/bin/python bench/micro_ssh.py [--runs N] [--profile OUT.prof]

For profiling amibake's SSH path without a build around it. Starts its own stack.
"""

from __future__ import annotations

import argparse
import cProfile
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from inputs import ensure  # noqa: E402
from openssh import OpenSsh  # noqa: E402
from tests.stackkit import Stack  # noqa: E402

from amibake.communicator.ssh import SSHSettings, connect  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", type=Path)
    ap.add_argument("--cipher", action="append", default=[])
    ap.add_argument("--inputs", type=Path, default=Path("/var/tmp/amibake-bench-inputs"))
    args = ap.parse_args()
    inp = ensure(args.inputs)
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    with tempfile.TemporaryDirectory() as d, Stack(Path(d)) as stack:
        s = SSHSettings(
            host="127.0.0.1",
            port=stack.sshd.port,
            username=stack.sshd.user,
            private_key_pem=key,
            ciphers=tuple(args.cipher),
        )
        prof = cProfile.Profile() if args.profile else None
        ossh = OpenSsh(Path(d) / "ossh", stack.sshd.port, stack.sshd.user)
        ossh.start()
        for i in range(args.runs):
            t = time.perf_counter()
            comm = connect(s)
            t_conn = time.perf_counter() - t
            t = time.perf_counter()
            comm.run("true")
            t_run = time.perf_counter() - t
            subprocess.run("rm -rf /tmp/packer-baseline-*", shell=True)
            if prof:
                prof.enable()
            t = time.perf_counter()
            comm.upload("/tmp/packer-baseline-micro-big.bin", inp.big)
            t_big = time.perf_counter() - t
            t = time.perf_counter()
            comm.upload_dir("/tmp/packer-baseline-micro-tree/", f"{inp.tree}/")
            t_tree = time.perf_counter() - t
            if prof:
                prof.disable()
            comm.close()
            subprocess.run("rm -rf /tmp/packer-baseline-*", shell=True)
            o_big = ossh.scp_file(inp.big, "/tmp/packer-baseline-micro-big.bin")
            o_tree = ossh.tar_tree(inp.tree, "/tmp/packer-baseline-micro-tree")
            print(
                f"run {i + 1}: connect {t_conn:.3f} s, run 'true' {t_run:.3f} s, big {t_big:.3f} s "
                f"({256 / t_big:.0f} MiB/s), tree {t_tree:.3f} s ({2000 / t_tree:.0f} files/s); "
                f"OpenSSH scp -O {o_big:.3f} s, tar|ssh {o_tree:.3f} s",
                flush=True,
            )
        ossh.stop()
        if prof and args.profile:
            prof.dump_stats(str(args.profile))
        subprocess.run("rm -rf /tmp/packer-baseline-*", shell=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
