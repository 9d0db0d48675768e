"""Bench row "unchanged rebuild" (#13): ``basic.json`` built in full by Packer 1.6.6 and by amibake,
then again by ``amibake build -skip-unchanged`` with nothing changed (the AMI is reused and
converged: no instance). Wall time of the whole process and the EC2 calls moto received.

    .venv/bin/python bench/unchanged.py [--runs 3] [--write bench/UNCHANGED.md]

Starts its own local stack (tests/stackkit.py); each run starts from a reset moto. Packer is
``packer`` from PATH (Debian's 1.6.6); when it is missing its row is left out and said so.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.stackkit import Stack, amibake_exe  # noqa: E402

BASELINE = ROOT / "tests" / "stack" / "data" / "packer-baseline"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str, int]:
    start = time.perf_counter()
    r = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - start, r.stdout + r.stderr, r.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write", type=Path, default=None, help="write the table (markdown) to this file")
    args = ap.parse_args(argv)
    packer = shutil.which("packer")
    rows: dict[str, list[tuple[float, int, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="amibake-bench-unchanged-") as d:
        work = Path(d)
        shutil.copytree(BASELINE, work / "baseline")
        remote = work / "remote"
        stack = Stack.temporary()
        stack.start()
        try:
            # as bench/run: amibake keeps its bytecode (this machine sets PYTHONDONTWRITEBYTECODE=1)
            base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            base = {**base, **stack.env(), "AMIBAKE_STATE_DIR": str(work / "state"),
                    "PYTHONPYCACHEPREFIX": str(work / "pycache"),
                    "AMIBAKE_NO_SERVER": "1", "CHECKPOINT_DISABLE": "1", "PACKER_NO_COLOR": "1",
                    "PACKER_CACHE_DIR": str(work / "packer_cache")}
            # the sshd's user writes here: a directory of its own, outside the private work dir
            remote = Path(tempfile.mkdtemp(prefix="amibake-bench-unchanged-remote-"))
            remote.chmod(0o777)
            (work / "out").mkdir()
            tvars = ["-var", f"ec2_endpoint={stack.moto.url}", "-var", f"ssh_port={stack.sshd.port}",
                     "-var", f"ssh_username={stack.sshd.user}", "-var", f"out_dir={work / 'out'}",
                     "-var", f"remote_dir={remote}"]
            amibake = [amibake_exe(), "build", "-color=false", *tvars]
            skip = [*amibake, "-skip-unchanged", "templates/basic.json"]
            cases = [("amibake: full build", [*amibake, "templates/basic.json"], True),
                     ("amibake -skip-unchanged: unchanged rebuild", skip, False)]
            if packer:
                cases.insert(0, ("Packer 1.6.6: full build", [packer, "build", "-color=false", *tvars,
                                                              "templates/basic.json"], True))
            # one untimed round fills caches
            for i in range(args.runs + 1):
                for label, cmd, reset in cases:
                    if reset:
                        stack.moto.reset()
                    remote.mkdir(mode=0o777, exist_ok=True)
                    remote.chmod(0o777)
                    for f in remote.iterdir():  # what the last build wrote there (another tool's files)
                        subprocess.run(["rm", "-rf", str(f)], check=False)
                    mark = stack.moto.mark()
                    wall, out, rc = timed(cmd, base, work / "baseline")
                    if rc != 0:
                        print(out, file=sys.stderr)
                        raise SystemExit(f"{label} failed (exit {rc})")
                    calls = Counter(stack.moto.ec2_actions(mark))
                    if i:
                        rows.setdefault(label, []).append((wall, sum(calls.values()), calls["RunInstances"]))
                    print(f"{label}: {wall:.2f}s, {sum(calls.values())} EC2 calls", flush=True)
        finally:
            stack.stop()
            subprocess.run(["rm", "-rf", str(remote)], check=False)
    lines = ["| basic.json | wall s, median (min-max) | EC2 calls | RunInstances |", "|---|---|---|---|"]
    for label, vals in rows.items():
        walls = [v[0] for v in vals]
        calls = statistics.median(v[1] for v in vals)
        runs = statistics.median(v[2] for v in vals)
        lines.append(f"| {label} | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) | "
                     f"{calls:g} | {runs:g} |")
    if not packer:
        lines.append("\n(packer not on PATH: no Packer row)")
    text = "\n".join(lines)
    print(text)
    if args.write:
        args.write.write_text(f"# Unchanged rebuild (#13), {args.runs} runs\n\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
