#!/usr/bin/env python3
"""16 builds in one process under emulated AWS timings: Describe calls with and without batching.

    bench/batching.py [--runs 3] [--scale 1/15] [--seed 16] [--amibake-src DIR]

Issue #16: "A 16-build run under the emulated timings makes fewer Describe calls than 16 single
builds, because waits are batched." One ``amibake build`` of ``parallel16.json`` (16 amazon-ebs
sources, one process, one shared EC2 client) runs behind ``realistic.EmulatedAws`` (transitions drawn
from the documented ranges, see bench/FINDINGS.md) with amibake's clock scaled (AMIBAKE_POLL_SCALE,
its planner on), twice per round: with batching (the default) and with ``AMIBAKE_DESCRIBE_BATCH=0``
(the benchmark's switch: every wait polls alone, as it does in a single build: the calls of 16
single builds). Both variants see the same drawn durations (the n-th transition of a kind lasts
``realistic.draw(seed, n, kind, 0)``), alternate in order from round to round, and start from an
empty poll history (a fresh state dir per run), so both plan from the documented priors.

Counted at moto, behind the proxy: DescribeInstances, DescribeImages, all EC2 calls; the build's
wall time; the per-wait lag as the proxy sees it (the first answer that showed the ready state; for
a wait that took another wait's observation, that answer came before the wait acted on it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import run as benchrun  # noqa: E402
from realistic import EmulatedAws, check_scale, draw, lags_of  # noqa: E402
from tests.stackkit import Stack  # noqa: E402

TEMPLATE = "parallel16.json"
BUILDS = 16


def one_run(b: benchrun.Bench, frac: Fraction, seed: int, batching: bool, n: int) -> dict[str, object]:
    def durations(kind: str, k: int) -> float:
        return float(frac) * draw(seed, k, kind, 0)

    env = {"AMIBAKE_POLL_SCALE": repr(float(frac)), "AMIBAKE_DESCRIBE_BATCH": "1" if batching else "0",
           "AMIBAKE_STATE_DIR": str(b.work / f"state-{n}-{int(batching)}")}
    proxy = EmulatedAws(b.stack.moto.url, durations)
    with proxy:
        proxy.settled(benchrun.SOURCE_AMI)
        run = b._build("amibake", TEMPLATE, endpoint=proxy.url, env=env)
        lags = lags_of(proxy, benchrun.SOURCE_AMI, None)
    counts = Counter(run.actions)
    return {
        "batching": batching, "wall": run.wall, "calls": len(run.actions),
        "instances": counts["DescribeInstances"], "images": counts["DescribeImages"],
        "describe": sum(v for k, v in counts.items() if k.startswith("Describe")),
        "lags": [x for xs in lags.values() for x in xs],
    }


def table(results: list[dict[str, object]], frac: Fraction, seed: int, runs: int, load: tuple[float, float],
          started: str, elapsed: float) -> str:
    sc = "1" if frac == 1 else f"{frac.numerator}/{frac.denominator}"

    def col(batching: bool, key: str) -> list[float]:
        return [float(r[key]) for r in results if r["batching"] is batching]  # type: ignore[arg-type]

    def lags(batching: bool) -> list[float]:
        return [x for r in results if r["batching"] is batching for x in r["lags"]]  # type: ignore[attr-defined]

    lines = [
        f"| {BUILDS} builds in one process, scale {sc}, seed {seed} ({runs} runs each) | batched | "
        "each wait alone (= 16 single builds' calls) | batched / alone |",
        "|---|---|---|---|",
    ]
    rows = (("DescribeInstances", "instances", "{:.0f}"), ("DescribeImages", "images", "{:.0f}"),
            ("all Describe*", "describe", "{:.0f}"), ("all EC2 calls", "calls", "{:.0f}"),
            ("wall of the 16-build run (s)", "wall", "{:.2f}"))
    for label, key, fmt in rows:
        on, off = col(True, key), col(False, key)
        mo, mf = statistics.median(on), statistics.median(off)

        def cell(xs: list[float], m: float, fmt: str = fmt) -> str:
            return f"{fmt.format(m)} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"

        lines.append(f"| {label}: median (min-max) | {cell(on, mo)} | {cell(off, mf)} | {mo / mf:.2f} |")
    lo, lf = lags(True), lags(False)
    mo, mf = statistics.median(lo), statistics.median(lf)
    lines.append(f"| per-wait lag at the proxy, all waits: median / p90 (s) | {mo:.3f} / "
                 f"{statistics.quantiles(lo, n=10)[-1]:.3f} | {mf:.3f} / "
                 f"{statistics.quantiles(lf, n=10)[-1]:.3f} | {mo / mf:.2f} |")
    return ("\n".join(lines) + f"\n\n`bench/batching.py --runs {runs} --scale {sc} --seed {seed}` on "
            f"{started} UTC, {elapsed / 60:.1f} min, load average before/after "
            f"{load[0]:.2f} / {load[1]:.2f}.\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="rounds (each: one batched and one unbatched run)")
    ap.add_argument("--scale", type=Fraction, default=Fraction(1, 15))
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--amibake-src", default="", help="run amibake from this copy of src/ (a git archive)")
    args = ap.parse_args(argv)
    frac = check_scale(float(args.scale))
    if args.amibake_src:
        benchrun.AMIBAKE_SRC = str(Path(args.amibake_src).resolve())
    work = Path(tempfile.mkdtemp(prefix="amibake-batching-"))
    (work / "out").mkdir()
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load0 = os.getloadavg()[0]
    t0 = time.monotonic()
    results: list[dict[str, object]] = []
    try:
        with Stack(work / "stack") as stack:
            b = benchrun.Bench(stack, work, None)
            benchrun.warm(stack.moto.url)
            b.build("amibake", "basic.json")  # untimed: bytecode and page cache, moto's lazy imports
            for n in range(args.runs):
                for batching in ((True, False) if n % 2 == 0 else (False, True)):
                    r = one_run(b, frac, args.seed, batching, n)
                    results.append(r)
                    print(f"  round {n + 1} {'batched' if batching else 'alone  '}: {r['wall']:.2f} s, "
                          f"{r['calls']} EC2 calls, DescribeInstances {r['instances']}, "
                          f"DescribeImages {r['images']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(results, frac, args.seed, args.runs, (load0, os.getloadavg()[0]), started,
                time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
