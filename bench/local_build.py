"""amibake-local benchmarks (bench/LOCAL.md): the EBS direct upload against the emulator's own limit, and
the whole template-to-AMI time, phase by phase.

1. **Upload throughput.** A 2 GiB sparse raw disk holding about 600 MiB of random data in scattered
   extents is written into a snapshot (a) by amibake's upload (``local/upload.py`` through the gateway)
   and (b) by a plain boto3 loop of the same calls (StartSnapshot, PutSnapshotBlock with the SHA-256 of
   each non-zero block from a thread pool of the same size, CompleteSnapshot with the LINEAR checksum)
   that knows in advance which blocks hold data: the emulator's own limit for that many workers. Both
   go to a fresh moto server (no request recorder) behind the EBS direct emulation
   (``tests/ebsdirect_emulation.py``, which hashes every block, as AWS checks them), reset between runs.
2. **Template to AMI.** ``amibake build -timestamp-ui`` of a local Debian template (the bootstrap cached
   beforehand, as a second build of the same options would find it) against the same stack; the phases
   are cut at the builder's step lines.

Usage::

    .venv/bin/python bench/local_build.py --runs 3 [--workers 16] [--skip-build]

Prints a Markdown section; ``--write`` replaces the measured part of bench/LOCAL.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

import boto3  # noqa: E402
from tests.ebsdirect_emulation import BLOCK_SIZE, EbsDirectEmulation  # noqa: E402
from tests.stackkit import free_port, stop_pid, wait_port  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
DISK = 2 * GIB
DATA = 600 * MIB


def make_disk(path: Path, seed: int = 17) -> list[int]:
    """The 2 GiB sparse disk: 600 MiB of random data in 60 extents of 10 MiB spread over it (as a root
    filesystem's files are); the indexes of its data blocks."""
    rng = random.Random(seed)
    extent = DATA // 60
    stride = DISK // 60
    with open(path, "wb") as f:
        f.truncate(DISK)
        for i in range(60):
            f.seek(i * stride)
            f.write(rng.randbytes(extent))
    return sorted({b for i in range(60)
                   for b in range(i * stride // BLOCK_SIZE, (i * stride + extent - 1) // BLOCK_SIZE + 1)})


class Moto:
    """A moto server of the bench's own (no request recorder: it would copy every block to disk)."""

    def __init__(self) -> None:
        self.port = free_port()
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self.log = open(tempfile.mktemp(prefix="bench-moto-", suffix=".log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                      str(self.port)], stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        if not wait_port(self.port, 60, self.proc):
            raise SystemExit("moto did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()

    def stop(self) -> None:
        stop_pid(self.proc.pid)
        self.log.close()


def plain_boto3(url: str, disk: Path, blocks: list[int], workers: int) -> float:
    """The same calls in a plain loop that knows which blocks hold data; seconds."""
    import botocore.config

    c = boto3.client("ebs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing",
                     config=botocore.config.Config(max_pool_connections=max(32, workers)))
    t0 = time.perf_counter()
    snap = c.start_snapshot(VolumeSize=DISK // GIB, Timeout=60)["SnapshotId"]
    fd = os.open(disk, os.O_RDONLY)
    digests: dict[int, bytes] = {}
    lock = threading.Lock()

    def put(i: int) -> None:
        data = os.pread(fd, BLOCK_SIZE, i * BLOCK_SIZE)
        d = hashlib.sha256(data).digest()
        c.put_snapshot_block(SnapshotId=snap, BlockIndex=i, BlockData=data, DataLength=BLOCK_SIZE,
                             Checksum=base64.b64encode(d).decode(), ChecksumAlgorithm="SHA256")
        with lock:
            digests[i] = d

    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(put, blocks))
    finally:
        os.close(fd)
    whole = hashlib.sha256(b"".join(digests[i] for i in sorted(digests))).digest()
    c.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=len(digests),
                        Checksum=base64.b64encode(whole).decode(), ChecksumAlgorithm="SHA256",
                        ChecksumAggregationMethod="LINEAR")
    return time.perf_counter() - t0


def amibake_upload(url: str, disk: Path, workers: int) -> float:
    from amibake.aws.access import AwsAccess
    from amibake.aws.session import CLIENTS
    from amibake.plugins.amazon.local.builder import LocalGateway
    from amibake.plugins.amazon.local.upload import UploadSpec, upload_disk

    class Quiet:
        def message(self, m: str) -> None:
            pass

        def say(self, m: str) -> None:
            pass

    CLIENTS.clear()
    gw = LocalGateway(AwsAccess(region="us-east-1", endpoint_ec2=url, access_key="testing",
                                secret_key="testing"))
    t0 = time.perf_counter()
    upload_disk(gw, disk, UploadSpec(workers=workers, timeout_minutes=60), ui=Quiet(),
                cancel=threading.Event(), on_started=lambda s: None)
    return time.perf_counter() - t0


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_upload(runs: int, workers: int) -> tuple[str, list[str]]:
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        disk = Path(tmp) / "disk.raw"
        blocks = make_disk(disk)
        data = len(blocks) * BLOCK_SIZE
        moto = Moto()
        try:
            rows: dict[str, list[float]] = {"plain boto3 loop (emulator's limit)": [], "amibake upload": []}
            for run in range(runs):
                for name, fn in (("plain boto3 loop (emulator's limit)",
                                  lambda u: plain_boto3(u, disk, blocks, workers)),
                                 ("amibake upload", lambda u: amibake_upload(u, disk, workers))):
                    moto.reset()
                    with EbsDirectEmulation(moto.url) as emu:
                        seconds = fn(emu.url)
                        assert not emu.refused
                        assert all(s.status == "completed" for s in emu.snapshots.values())
                        puts = emu.sent("PutSnapshotBlock")
                        assert len([r for r in puts if r.status == 201]) == len(blocks)
                        if len(puts) > len(blocks):
                            again = len(puts) - len(blocks)
                            notes.append(f"run {run + 1} {name}: {again} block(s) sent again")
                    rows[name].append(seconds)
                    notes.append(f"run {run + 1} {name}: {seconds:.2f} s, load {load()}")
        finally:
            moto.stop()
    out = [f"| 2 GiB disk, {data / MIB:.0f} MiB of data, {workers} workers | median s | MiB/s (median) "
           "| runs |",
           "|---|---|---|---|"]
    for name, xs in rows.items():
        xs.sort()
        med = xs[len(xs) // 2]
        out.append(f"| {name} | {med:.2f} | {data / MIB / med:.1f} | {', '.join(f'{x:.2f}' for x in xs)} |")
    base = sorted(rows["plain boto3 loop (emulator's limit)"])[runs // 2]
    mine = sorted(rows["amibake upload"])[runs // 2]
    out.append("")
    out.append(f"amibake / plain loop (median time): {mine / base:.2f}x")
    return "\n".join(out), notes


PHASES = (
    ("bootstrap (cached tarball, extract)", r"Using the cached root filesystem|Bootstrapping"),
    ("provision in the tree", r"Running the provision hook"),
    ("make the disk", r"Making a \d+ GiB GPT disk"),
    ("boot test (QEMU, TCG)", r"Boot test: booting"),
    ("upload (EBS direct)", r"Uploading the disk into a new EBS snapshot"),
    ("register + wait + attributes", r"Registering the AMI"),
)


def bench_build(mirror: str) -> tuple[str, list[str]]:
    """One ``amibake build -timestamp-ui`` (after an untimed build that fills the bootstrap cache)."""
    from tests.awsproxy import AwsProxy

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-local-build-") as tmp:
        template = Path(tmp) / "local.json"
        cache = Path(tmp) / "cache"
        moto = Moto()
        try:
            with AwsProxy(moto.url) as proxy, EbsDirectEmulation(proxy.url) as emu:
                import json

                def build(name: str) -> tuple[float, str]:
                    template.write_text(json.dumps({"builders": [{
                        "type": "amibake-local", "region": "us-east-1", "ami_name": name,
                        "custom_endpoint_ec2": emu.url, "mirror": mirror, "bootstrap_cache_dir": str(cache),
                        "aws_polling": {"delay_seconds": 1, "max_attempts": 60}}],
                        "provisioners": [{"type": "shell", "inline": ["echo bench > /etc/bench"]}]}))
                    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "AMIBAKE_STATE_DIR": str(Path(tmp) / "state"),
                           "AMIBAKE_NO_SERVER": "1"}
                    t0 = time.perf_counter()
                    res = subprocess.run([str(ROOT / ".venv/bin/amibake"), "build", "-timestamp-ui",
                                          str(template)], capture_output=True, text=True, env=env,
                                         timeout=1800)
                    wall = time.perf_counter() - t0
                    if res.returncode != 0:
                        raise SystemExit(f"build failed:\n{res.stdout}\n{res.stderr}")
                    return wall, res.stdout

                build("bench-warm")
                notes.append(f"warm-up build done (bootstrap cached), load {load()}")
                wall, out = build("bench-timed")
                (Path(tempfile.gettempdir()) / "bench-local-build.out").write_text(out)
                notes.append(f"timed build: {wall:.1f} s, load {load()}, RunInstances calls: "
                             f"{len(proxy.sent('RunInstances'))}")
        finally:
            moto.stop()
    stamps: list[tuple[str, float]] = []
    for line in out.splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?: (.*)", line)
        if not m:
            continue
        from datetime import datetime

        t = datetime.fromisoformat(m.group(1)).timestamp()
        for phase, pattern in PHASES:
            if re.search(pattern, m.group(2)) and phase not in {p for p, _ in stamps}:
                stamps.append((phase, t))
                break
    end = None
    for line in reversed(out.splitlines()):
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?: ", line)
        if m:
            from datetime import datetime

            end = datetime.fromisoformat(m.group(1)).timestamp()
            break
    rows = ["| phase | seconds |", "|---|---|"]
    for (phase, t), nxt in zip(stamps, [*stamps[1:], ("end", end or stamps[-1][1])], strict=False):
        rows.append(f"| {phase} | {nxt[1] - t:.1f} |")
    rows.append(f"| whole build (process wall) | {wall:.1f} |")
    return "\n".join(rows), notes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-upload", action="store_true")
    ap.add_argument("--mirror", default=os.environ.get("AMIBAKE_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian"))
    args = ap.parse_args()
    cpu = os.cpu_count()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"## Measured {when}, {cpu} CPUs, load {load()} at start\n")
    notes: list[str] = []
    if not args.skip_upload:
        table, notes = bench_upload(args.runs, args.workers)
        print("### Upload throughput\n")
        print(table + "\n")
    if not args.skip_build:
        table2, notes2 = bench_build(args.mirror)
        print("### Template to AMI, phase by phase\n")
        print(table2 + "\n")
        notes += notes2
    print("Notes:\n")
    for n in notes:
        print(f"- {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
