"""Peak memory of a whole process tree, as PSS (``/proc/PID/smaps_rollup``).

Packer runs one process per plugin, and they share the 100 MB ``packer`` binary's text: the sum
of their RSS counts that text once per process, and ``/usr/bin/time``'s max-RSS sees only the
biggest single process. PSS splits every shared page between the processes that map it, so the
sum of PSS over the tree is what the tree really costs the machine.

    sampler = TreeSampler(pid); sampler.start(); ...; sampler.stop() -> TreePeak
    python bench/pss.py -- CMD ARGS...        # run CMD, print its tree's peak PSS as JSON
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's ``children`` file)."""
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def rollup(pid: int) -> tuple[int, int]:
    """(Pss, Rss) of one process in KiB; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


@dataclass
class TreePeak:
    pss_kib: int = 0
    rss_sum_kib: int = 0
    processes: int = 0  # most processes alive at one sample
    samples: int = 0

    @property
    def pss_mib(self) -> float:
        return self.pss_kib / 1024


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process and of its reaped children, in seconds; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields after "(comm)": state is [0]; utime, stime, cutime, cstime are stat fields 14-17
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class TreeSampler:
    """Samples the tree under ``pid`` (and under each of ``also``) every ``interval`` seconds in a
    thread; keeps the peaks. ``also``: an ``amibake server``, whose forked worker runs the command
    outside the launcher's tree; the server's own memory counts too."""

    def __init__(self, pid: int, interval: float = 0.01, also: tuple[int, ...] = ()) -> None:
        self.pid = pid
        self.also = also
        self.interval = interval
        self.peak = TreePeak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pss-sampler", daemon=True)

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        pids = tree(self.pid) + [p for root in self.also for p in tree(root)]
        pss = rss = n = 0
        for p in pids:
            a, b = rollup(p)
            if a or b:
                n += 1
                pss += a
                rss += b
        pk = self.peak
        pk.samples += 1
        pk.pss_kib = max(pk.pss_kib, pss)
        pk.rss_sum_kib = max(pk.rss_sum_kib, rss)
        pk.processes = max(pk.processes, n)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def stop(self) -> TreePeak:
        self._stop.set()
        self._thread.join()
        return self.peak


class WorkerCpu:
    """CPU time of the workers an ``amibake server`` forks during a command. They are not the
    launcher's children (no rusage reaches the bench) and the kernel reaps them, so their
    /proc/PID/stat is read every ``interval`` while they live; the last reading counts (it misses
    at most one interval of CPU per worker)."""

    def __init__(self, server_pid: int, interval: float = 0.005) -> None:
        self.server = server_pid
        self.interval = interval
        self.seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-cpu", daemon=True)

    def start(self) -> WorkerCpu:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in children(self.server):
                cpu = cpu_seconds(pid)
                if cpu:
                    self.seen[pid] = max(self.seen.get(pid, 0.0), cpu)
            self._stop.wait(self.interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return sum(self.seen.values())


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "--" or len(argv) < 2:
        print("usage: pss.py -- CMD [ARGS...]", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv[1:])
    sampler = TreeSampler(proc.pid).start()
    rc = proc.wait()
    peak = sampler.stop()
    out: dict[str, object] = dict(asdict(peak))
    out.update(exit=rc, wall_s=round(time.perf_counter() - t0, 3), pss_mib=round(peak.pss_mib, 1))
    print(json.dumps(out), file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
