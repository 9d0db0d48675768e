#!/usr/bin/env python3
"""``validate`` and ``version`` wall time, interpreter start included: amibake next to Packer 1.6.6.

    .venv/bin/python bench/bench_validate.py [--runs N]

Runs each command N times (default 10) from the corpus entry's directory, as the corpus results
were taken, and prints the median (min-max) and the ratio amibake/Packer. Templates: the largest
JSON template of the corpus (012, 12 KB, with its var file) and one that both tools accept (010).
Packer is Debian's ``packer`` 1.6.6 (``scripts/bootstrap`` installs it); without it only amibake's
column is filled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.corpus.corpus import CORPUS, entries  # noqa: E402

AMIBAKE = str(ROOT / ".venv" / "bin" / "amibake")
ENV = dict(
    os.environ,
    CHECKPOINT_DISABLE="1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)


def timed(argv: list[str], cwd: Path, runs: int) -> tuple[list[float], int]:
    times = []
    code = 0
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
        code = p.returncode
    return times, code


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts):.3f} ({min(ts):.3f}-{max(ts):.3f})" if ts else "-"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    packer = shutil.which("packer")
    by_dir = {e.dir[:3]: e for e in entries()}
    rows = []
    for key in ("012", "010"):
        e = by_dir[key]
        a_times, a_code = timed([AMIBAKE, "validate", *e.args(), e.file], e.path, args.runs)
        p_times, p_code = (
            timed([packer, "validate", *e.args(), e.file], e.path, args.runs) if packer else ([], -1)
        )
        rows.append(
            (
                f"validate {e.dir[:40]} ({(e.path / e.file).stat().st_size} B)",
                a_times,
                a_code,
                p_times,
                p_code,
            )
        )
    a_times, a_code = timed([AMIBAKE, "version"], CORPUS, args.runs)
    p_times, p_code = timed([packer, "version"], CORPUS, args.runs) if packer else ([], -1)
    rows.append(("version", a_times, a_code, p_times, p_code))

    print(f"runs per cell: {args.runs}; seconds, median (min-max); exit codes in brackets")
    print("| what | amibake | Packer 1.6.6 | amibake/Packer |")
    print("|---|---|---|---|")
    for what, at, ac, pt, pc in rows:
        ratio = f"{statistics.median(at) / statistics.median(pt):.2f}" if pt else "-"
        print(f"| {what} | {fmt(at)} [{ac}] | {fmt(pt)} [{pc}] | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
