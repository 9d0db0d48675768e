#!/usr/bin/env python3
"""SSH through amibake's native SSM tunnel against direct SSH, to the same sshd (bench/SSM.md).

    .venv/bin/python bench/ssm_tunnel.py [--runs N] [--mib M] [--commands C] [--agent VERSION]

Starts its own stack (sshd) and the SSM emulation of tests/ssm_emulation.py in a process of its
own (the agent's side; sessions are started through its API with boto3). For each path, the same
method with amibake's SSH communicator: one SFTP upload of ``--mib`` MiB of random bytes, and
``--commands`` runs of ``true`` on one connection. ``--agent`` picks the emulated agent:
multiplexed (smux, the default, as every current agent) or basic (below 3.0.196.0). Prints one
line per run and the medians, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.stackkit import Stack  # noqa: E402

from amibake.communicator.ssh import SSHSettings, connect  # noqa: E402
from amibake.plugins.amazon.ssm.tunnel import SessionInfo, Tunnel, bind_local  # noqa: E402

EMULATOR = """
import sys
from tests.ssm_emulation import SsmEmulator
emu = SsmEmulator(int(sys.argv[1]), agent_version=sys.argv[2]).start()
print(emu.endpoint, flush=True)
sys.stdin.read()
print(len(emu.violations), flush=True)
emu.stop()
"""


def open_tunnel(ssm: Any) -> tuple[Tunnel, str]:
    a = ssm.start_session(Target="i-bench", DocumentName="AWS-StartPortForwardingSession",
                          Parameters={"portNumber": ["22"]})

    def resume(sid: str) -> SessionInfo | None:
        r = ssm.resume_session(SessionId=sid)
        return SessionInfo(sid, r["TokenValue"], r["StreamUrl"]) if r.get("TokenValue") else None

    info = SessionInfo(a["SessionId"], a["TokenValue"], a["StreamUrl"])
    tunnel = Tunnel(bind_local(0), info, resume=resume)
    tunnel.start(timeout=30)
    return tunnel, a["SessionId"]


def measure(settings: SSHSettings, blob: Path, size: int, commands: int) -> tuple[float, float]:
    """(upload MiB/s, ms per command round trip) on one connection."""
    comm: Any = connect(settings)
    try:
        dst = f"/tmp/amibake-ssm-bench-{os.getpid()}"
        t = time.perf_counter()
        comm.upload(dst, blob)
        upload = time.perf_counter() - t
        out: list[str] = []
        assert comm.run(f"stat -c %s {dst}; rm -f {dst}", stdout=out.append) == 0 and out == [str(size)], out
        t = time.perf_counter()
        for _ in range(commands):
            assert comm.run("true") == 0
        rtt = (time.perf_counter() - t) / commands
    finally:
        comm.close()
    return size / upload / 2**20, rtt * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--commands", type=int, default=50)
    ap.add_argument("--agent", default="3.1.1511.0")
    args = ap.parse_args()
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    size = args.mib * 2**20
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as d, Stack(Path(d)) as stack:
        blob = Path(d) / "blob"
        blob.write_bytes(os.urandom(size))
        import boto3

        emu = subprocess.Popen([sys.executable, "-c", EMULATOR, str(stack.sshd.port), args.agent], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert emu.stdout is not None and emu.stdin is not None
        ssm = boto3.client("ssm", endpoint_url=emu.stdout.readline().strip(), region_name="us-east-1",
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        rows: dict[str, list[tuple[float, float]]] = {"direct": [], "ssm tunnel": []}
        try:
            for i in range(args.runs):
                for path in rows:
                    tunnel, sid = open_tunnel(ssm) if path == "ssm tunnel" else (None, "")
                    port = tunnel.port if tunnel else stack.sshd.port
                    settings = SSHSettings(host="127.0.0.1", port=port, username=stack.sshd.user,
                                           private_key_pem=key, file_transfer_method="sftp", timeout=60)
                    try:
                        mib_s, ms = measure(settings, blob, size, args.commands)
                    finally:
                        if tunnel:
                            tunnel.close()
                            ssm.terminate_session(SessionId=sid)
                    rows[path].append((mib_s, ms))
                    print(f"run {i + 1} {path:10s} upload {mib_s:7.1f} MiB/s  `true` round trip {ms:6.2f} ms",
                          flush=True)
        finally:
            emu.stdin.close()
            violations = emu.stdout.readline().strip()
            emu.wait(30)
        assert violations == "0", f"the emulation saw {violations} protocol violations"
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for path, vals in rows.items():
        print(f"median {path:10s} upload {statistics.median(v[0] for v in vals):7.1f} MiB/s  "
              f"round trip {statistics.median(v[1] for v in vals):6.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
