"""Whether issue #16's lag and wall targets can be met under its own rules: exact/numerical bounds.

No AWS, no clock. Transition times come from ``bench/realistic.py`` (``RANGES``, the 8 GiB size part),
exactly as the emulated-AWS benchmark draws them: uniform per transition, plus a uniform size part for
AMIs and copies (so those are a sum of two uniforms, a trapezoid).

Lag. A wait starts at 0; the transition completes at T. A schedule polls at t_0 < t_1 < ... and may
make its k-th poll (0-based) no earlier than Packer's k-th, k * d (d = 15 s): the issue's "never more
calls than Packer's fixed-delay schedule" over every window from the wait's start, as
``pollschedule`` enforces. The lag is the first poll at or after T, minus T. The schedule sees T
within x exactly when T lies in the union of the intervals [t_k - x, t_k], so the best any schedule can
do is ``best_cover``: the largest probability of such a union under the constraint (a dynamic
programme over poll times on a grid: the ``lower`` answer is the value of a feasible schedule that it
returns, the ``upper`` one a relaxation that no schedule can beat; they bracket the optimum). The
median lag over a build's pooled waits is at most x exactly when the mean over the waits of that
probability reaches 1/2, and each wait's schedule can be chosen for that x alone, so the optimum pooled
median is the least x where the mean of the per-wait optima reaches 1/2.

Wall. Neither tool can see a transition before it completes, so amibake's build is at least the sum
of the transitions on its critical path with zero lag (the issue's overlap rules: CopyImage only after
the AMI is available, TerminateInstances only after that too, the security group deleted only after
the termination). Packer's is the same path with its lags: every EC2 wait ends on a multiple of 15 s
and its SSH retry is every 5 s from the moment it saw the instance running. Work other than waiting is
left out of both (it adds the same to both and only raises the ratio when amibake's wait is shorter).

    .venv/bin/python bench/target_bounds.py
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "src"))

from bench.realistic import IMAGE_GIB, IMAGE_SECONDS_PER_GIB, PACKER_DELAY, RANGES

from amibake.plugins.amazon import pollschedule as ps

D = float(PACKER_DELAY)
#: Packer 1.6.6's SSH connect retry after a refused connection (fixed, no setting; bench/FINDINGS.md)
PACKER_SSH_RETRY = 5.0
NEG = -math.inf


@dataclass(frozen=True)
class Dist:
    """T = U[lo1, hi1] + U[lo2, hi2] (the second may have width 0: a constant)."""

    lo1: float
    hi1: float
    lo2: float = 0.0
    hi2: float = 0.0

    def __post_init__(self) -> None:
        if not (self.hi1 > self.lo1 and self.hi2 >= self.lo2):
            raise ValueError(f"the first range must have width > 0: {self}")

    @property
    def lo(self) -> float:
        return self.lo1 + self.lo2

    @property
    def hi(self) -> float:
        return self.hi1 + self.hi2

    @property
    def fmax(self) -> float:
        """The density's maximum (also the Lipschitz constant of t -> F(t) - F(t - x))."""
        return 1.0 / max(self.hi1 - self.lo1, self.hi2 - self.lo2)

    @property
    def mean(self) -> float:
        return (self.lo1 + self.hi1 + self.lo2 + self.hi2) / 2

    def cdf(self, t: float) -> float:
        w1, w2 = self.hi1 - self.lo1, self.hi2 - self.lo2

        def h(z: float) -> float:  # the integral of U[lo2, hi2]'s CDF from -inf to z
            z -= self.lo2
            if z <= 0:
                return 0.0
            if w2 == 0:
                return z
            return z * z / (2 * w2) if z <= w2 else w2 / 2 + (z - w2)

        return min(1.0, max(0.0, (h(t - self.lo1) - h(t - self.hi1)) / w1))


def image_dist(base: str) -> Dist:
    """An AMI's (or a copy's) time: the base range plus the 8 GiB size part, as ``realistic.draw``."""
    lo, hi = RANGES[base]
    return Dist(lo, hi, IMAGE_GIB * IMAGE_SECONDS_PER_GIB[0], IMAGE_GIB * IMAGE_SECONDS_PER_GIB[1])


#: the EC2 waits of a build, in order (copy3 adds three copy waits)
WAITS: dict[str, Dist] = {
    "instance running": Dist(*RANGES["instance_pending"]),
    "instance stopped": Dist(*RANGES["instance_stopping"]),
    "AMI available": image_dist("image_pending"),
    "copy available": image_dist("copy"),
    "instance terminated": Dist(*RANGES["instance_shutting_down"]),
}
BASIC = ["instance running", "instance stopped", "AMI available", "instance terminated"]
COPY3 = [*BASIC[:3], "copy available", "copy available", "copy available", BASIC[3]]


# ------------------------------------------------------------------------------------------- lag
def caught(dist: Dist, times: Sequence[float], x: float) -> float:
    """P(lag <= x) for the poll times ``times``: the F-measure of the union of [t - x, t]."""
    total, covered_to = 0.0, -math.inf
    for t in sorted(times):
        start = max(t - x, covered_to)
        if t > start:
            total += dist.cdf(t) - dist.cdf(start)
            covered_to = t
    return total


def packer_times(dist: Dist, x: float = 0.0) -> list[float]:
    """Packer's polls that can see the transition (0, d, 2d, ... up to the range's end + x)."""
    return [k * D for k in range(math.floor((dist.hi + x) / D) + 2)]


def packer_caught(dist: Dist, x: float) -> float:
    return caught(dist, packer_times(dist, x), x)


def best_value(dist: Dist, x: float, upper: bool) -> float:
    """``best_cover``'s value on the wait's usual grid (cached: the searches ask for the same x often)."""
    return _best_value(dist, round(x, 9), upper)


@functools.cache
def _best_value(dist: Dist, x: float, upper: bool) -> float:
    return best_cover(dist, x, grid_for(dist), upper)[0]


def best_cover(dist: Dist, x: float, per: int, upper: bool, delay: float = D) -> tuple[float, list[float]]:
    """The most probability any schedule obeying t_k >= k * delay can see within ``x``, on a grid of
    1/``per`` s. ``upper=False``: the value of the feasible grid schedule returned (<= the optimum).
    ``upper=True``: a value no schedule exceeds (each poll rounded down to the grid changes its
    interval's probability by at most fmax * h / 2 beyond the cell's end values; spacing >= floor(x/h))."""
    h = 1.0 / per
    n = math.floor((dist.hi + x) * per) + 2
    if x <= 0:
        return 0.0, []
    g = [dist.cdf(u * h) - dist.cdf(u * h - x) for u in range(n + 1)]
    if upper:
        slack = dist.fmax * h / 2
        g = [max(a, b) + slack if max(a, b) > 0 else 0.0 for a, b in pairwise(g)]
        shift = math.floor(x * per)
    else:
        g = g[:n]
        shift = math.ceil(x * per - 1e-9)
    shift = max(shift, 1)
    step = round(delay * per)
    levels: list[list[float]] = []
    best, best_level = 0.0, -1
    prefix: list[float] = []
    k = 0
    while k * step < n:
        start = k * step
        if k == 0:
            row = [NEG] * start + g[start:]
        else:
            lo = max(start, shift)
            row = [NEG] * lo + list(map(operator.add, g[lo:], prefix[lo - shift:n - shift]))
        m = max(row)
        if m > best:
            best, best_level = m, k
        levels.append(row)
        prefix = list(accumulate(row, max))
        k += 1
    if upper or best_level < 0:
        return best, []
    # the schedule: backtrack from the best level
    times: list[float] = []
    row = levels[best_level]
    u = max(range(n), key=row.__getitem__)
    for lev in range(best_level, -1, -1):
        times.append(u * h)
        if lev:
            prev = levels[lev - 1]
            u = max(range(u - shift + 1), key=prev.__getitem__)
    return best, times[::-1]


def grid_for(dist: Dist) -> int:
    """Grid points per second: 100 for the short waits, 10 for the copies (about 13,000 points)."""
    return 100 if dist.hi < 300 else 10


def least_x(value: Callable[[float], float], target: float = 0.5, lo: float = 0.0, hi: float = D,
            tol: float = 2e-3) -> float:
    """The least x in [lo, hi] where the nondecreasing ``value`` reaches ``target``, to ``tol``
    (false position, Illinois variant: each step keeps a bracket, so this is as sure as bisection)."""
    flo, fhi = value(lo) - target, value(hi) - target
    if flo >= 0:
        return lo
    if fhi < 0:
        raise ValueError(f"the target {target} is not reached by x = {hi}")
    side = 0
    while hi - lo > tol:
        mid = hi - fhi * (hi - lo) / (fhi - flo) if fhi != flo else (lo + hi) / 2
        # never closer than tol/4 to an end, so that the bracket keeps shrinking
        mid = min(max(mid, lo + tol / 4), hi - tol / 4)
        fm = value(mid) - target
        if fm >= 0:
            hi, fhi = mid, fm
            if side == 1:
                flo /= 2
            side = 1
        else:
            lo, flo = mid, fm
            if side == -1:
                fhi /= 2
            side = -1
    return hi


def packer_ssh_caught(x: float, n_r: int = 600, n_s: int = 500) -> float:
    """P(Packer's SSH lag <= x): it sees the instance running at the next multiple of 15 s (R's
    lag, from RANGES["instance_pending"]) and then tries SSH every 5 s; SSH opens S after running
    (RANGES["ssh_ready"]). Midpoint rule over R and S."""
    rlo, rhi = RANGES["instance_pending"]
    slo, shi = RANGES["ssh_ready"]
    hits = 0.0
    for i in range(n_r):
        r = rlo + (i + 0.5) * (rhi - rlo) / n_r
        seen = math.ceil(r / D) * D - r  # after running
        for j in range(n_s):
            s = slo + (j + 0.5) * (shi - slo) / n_s
            wait = s - seen
            lag = -wait if wait <= 0 else math.ceil(wait / PACKER_SSH_RETRY) * PACKER_SSH_RETRY - wait
            hits += lag <= x
    return hits / (n_r * n_s)


@dataclass
class LagRow:
    name: str
    packer_median: float
    best_median: tuple[float, float]  # (lower bound, value of a schedule found)
    at_half: tuple[float, float]  # most caught within half Packer's median: (schedule found, bound)
    schedule: list[float]


def wait_row(name: str) -> LagRow:
    dist = WAITS[name]
    per = grid_for(dist)
    pm = least_x(lambda x: packer_caught(dist, x), tol=1e-4)
    lo_med = least_x(lambda x: best_value(dist, x, True))
    hi_med = least_x(lambda x: best_value(dist, x, False))
    half = pm / 2
    found, sched = best_cover(dist, half, per, False)
    bound = best_value(dist, half, True)
    _, med_sched = best_cover(dist, hi_med, per, False)
    return LagRow(name, pm, (lo_med, hi_med), (found, bound), med_sched or sched)


def pooled(names: Sequence[str], ssh: bool) -> tuple[float, tuple[float, float], float]:
    """(Packer's pooled median lag, the optimum pooled median bracket, the bound on the share of waits
    seen within half Packer's median) over the waits ``names`` (plus SSH at scale 1, where amibake is
    granted a lag of 0: no call limit applies to connection attempts)."""
    n = len(names) + (1 if ssh else 0)
    uniq = sorted(set(names))

    def packer(x: float) -> float:
        s = sum(packer_caught(WAITS[w], x) for w in names)
        return (s + (packer_ssh_caught(x, 150, 125) if ssh else 0.0)) / n

    def best(x: float, upper: bool) -> float:
        vals = {w: best_value(WAITS[w], x, upper) for w in uniq}
        return (sum(vals[w] for w in names) + (1.0 if ssh else 0.0)) / n

    pm = least_x(packer)
    lo_med = least_x(lambda x: best(x, True))
    hi_med = least_x(lambda x: best(x, False))
    return pm, (lo_med, hi_med), best(pm / 2, True)


def budget_needed(names: Sequence[str], x: float) -> float:
    """The largest delay d' (k-th poll >= k * d') at which some schedule sees half of the pooled waits
    ``names`` within ``x``: the call budget the lag target would need, as 15 / d' times Packer's."""

    def reaches(delay: float) -> bool:
        vals = {w: best_cover(WAITS[w], x, grid_for(WAITS[w]), False, delay)[0] for w in set(names)}
        return sum(vals[w] for w in names) / len(names) >= 0.5

    steps = (1, round(D * 10))  # delays on a 0.1 s grid (the copies' DP grid)
    while steps[1] - steps[0] > 1:
        mid = (steps[0] + steps[1]) // 2
        steps = (mid, steps[1]) if reaches(mid / 10) else (steps[0], mid)
    return steps[0] / 10


def widest_reachable(name: str, x: float) -> float:
    """The widest window, centred on the wait's mean and uniform, inside which some schedule obeying
    Packer's budget sees the transition within ``x`` half the time (the learnt prior it would need)."""
    mid = WAITS[name].mean
    lo, hi = 0.5, WAITS[name].hi - WAITS[name].lo
    while hi - lo > 0.25:
        w = (lo + hi) / 2
        dist = Dist(mid - w / 2, mid + w / 2)
        lo, hi = (w, hi) if best_cover(dist, x, grid_for(dist), False)[0] >= 0.5 else (lo, w)
    return lo


#: the poll planner's kind of wait for each of basic.json's waits (``pollschedule.PRIORS``)
PLAN_KINDS = {"instance running": "instance_running", "instance stopped": "instance_stopped",
              "AMI available": "image_available", "instance terminated": "instance_terminated"}


def chance_of_half(schedules: dict[str, list[float]], builds: int, runs: int = 3000,
                   seed: int = 16) -> tuple[float, float, float]:
    """How often a run of ``builds`` basic.json builds shows amibake's pooled median lag at <= 0.5x
    Packer's, when amibake polls at ``schedules`` (per wait; Packer's rhythm after their last poll)
    and the transitions are drawn as the bench draws them: (that share, the median ratio, its 5th
    percentile).
    A seeded simulation of sampling noise only: the bound above is about the distributions."""
    rng = random.Random(seed)

    def lag(times: list[float], t: float) -> float:
        k = bisect.bisect_left(times, t)
        return times[k] - t if k < len(times) else math.ceil((t - times[-1]) / D) * D - (t - times[-1])

    ratios = []
    for _ in range(runs):
        ours, packer = [], []
        for _ in range(builds):
            for w in BASIC:
                d = WAITS[w]
                t = rng.uniform(d.lo1, d.hi1) + rng.uniform(d.lo2, d.hi2)
                packer.append(math.ceil(t / D) * D - t)
                ours.append(lag(schedules[w], t))
        ratios.append(statistics.median(ours) / statistics.median(packer))
    ratios.sort()
    return sum(r <= 0.5 for r in ratios) / runs, statistics.median(ratios), ratios[runs // 20]


# ------------------------------------------------------------------------------------------ wall
Pmf = tuple[int, list[float]]  # (offset in grid cells, masses)
WALL_PER = 2  # wall distributions on a 0.5 s grid


def pmf_of(cdf: Callable[[float], float], lo: float, hi: float, per: int = WALL_PER) -> Pmf:
    """A continuous variable rounded to the grid: cell u gets P(u - 1/2 < T * per <= u + 1/2)."""
    a, b = math.floor(lo * per) - 1, math.ceil(hi * per) + 1
    masses = [cdf((u + 0.5) / per) - cdf((u - 0.5) / per) for u in range(a, b + 1)]
    return a, masses


def lattice(dist: Dist, step: float, per: int = WALL_PER) -> Pmf:
    """Packer's wait: the transition seen at the next multiple of ``step``."""
    ks = range(math.floor(dist.lo / step), math.ceil(dist.hi / step) + 1)
    masses = {round(k * step * per): dist.cdf(k * step) - dist.cdf((k - 1) * step) for k in ks}
    a = min(masses)
    return a, [masses.get(u, 0.0) for u in range(a, max(masses) + 1)]


def convolve(p: Pmf, q: Pmf) -> Pmf:
    out = [0.0] * (len(p[1]) + len(q[1]) - 1)
    qs = q[1]
    for i, pi in enumerate(p[1]):
        if pi:
            for j, qj in enumerate(qs):
                out[i + j] += pi * qj
    return p[0] + q[0], out


def total(*parts: Pmf) -> Pmf:
    acc = parts[0]
    for p in parts[1:]:
        acc = convolve(acc, p)
    return acc


def median(p: Pmf, per: int = WALL_PER) -> float:
    acc = 0.0
    for i, m in enumerate(p[1]):
        acc += m
        if acc >= 0.5:
            return (p[0] + i) / per
    return (p[0] + len(p[1]) - 1) / per


def mean(p: Pmf, per: int = WALL_PER) -> float:
    return sum((p[0] + i) * m for i, m in enumerate(p[1])) / per / sum(p[1])


def packer_to_ssh(per: int = WALL_PER, n: int = 400) -> Pmf:
    """Packer's time from RunInstances to its SSH connection: running seen on the 15 s lattice, then
    an attempt every 5 s until SSH (opened S after running) accepts. Midpoint rule over R and S."""
    rlo, rhi = RANGES["instance_pending"]
    slo, shi = RANGES["ssh_ready"]
    cells: dict[int, float] = {}
    for i in range(n):
        r = rlo + (i + 0.5) * (rhi - rlo) / n
        seen = math.ceil(r / D) * D
        for j in range(n):
            s = r + slo + (j + 0.5) * (shi - slo) / n
            t = seen if s <= seen else seen + math.ceil((s - seen) / PACKER_SSH_RETRY) * PACKER_SSH_RETRY
            u = round(t * per)
            cells[u] = cells.get(u, 0.0) + 1.0 / (n * n)
    a = min(cells)
    return a, [cells.get(u, 0.0) for u in range(a, max(cells) + 1)]


@dataclass
class WallRow:
    template: str
    ssh: bool
    packer: tuple[float, float]  # median, mean
    amibake: tuple[float, float]


def walls(template: str, ssh: bool, excluded_overlap: bool = False) -> WallRow:
    """The walls' distributions. ``excluded_overlap``: what amibake's would be with the overlap the issue
    excludes (basic: TerminateInstances right after CreateImage, so the termination runs under the AMI
    wait; copy3: that, and CopyImage started at CreateImage too, each copy taking its drawn time)."""
    run, stop, ami, copy, term = (WAITS[w] for w in
                                  ("instance running", "instance stopped", "AMI available",
                                   "copy available", "instance terminated"))
    ssh_d = Dist(*RANGES["ssh_ready"])
    # amibake: zero lag on every wait
    a_parts = [pmf_of(run.cdf, run.lo, run.hi)]
    if ssh:
        a_parts.append(pmf_of(ssh_d.cdf, ssh_d.lo, ssh_d.hi))
    a_parts.append(pmf_of(stop.cdf, stop.lo, stop.hi))
    if not excluded_overlap:
        a_parts.append(pmf_of(ami.cdf, ami.lo, ami.hi))
    # Packer: each wait ends on the 15 s lattice
    p_parts = [packer_to_ssh() if ssh else lattice(run, D), lattice(stop, D), lattice(ami, D)]
    if template == "basic":
        if excluded_overlap:
            a_parts.append(pmf_of(lambda t: ami.cdf(t) * term.cdf(t), term.lo, ami.hi))
        else:
            a_parts.append(pmf_of(term.cdf, term.lo, term.hi))
        p_parts.append(lattice(term, D))
    else:
        if excluded_overlap:
            a_parts.append(pmf_of(lambda t: ami.cdf(t) * copy.cdf(t) ** 3 * term.cdf(t), term.lo, copy.hi))
        else:
            # amibake: the termination (and the group's deletion after it) under the copies
            a_parts.append(pmf_of(lambda t: copy.cdf(t) ** 3 * term.cdf(t), term.lo, copy.hi))
        # Packer: the three copies in parallel, each seen on the lattice, then the termination
        k_hi = math.ceil(copy.hi / D)
        cells = {round(k * D * WALL_PER): copy.cdf(k * D) ** 3 - copy.cdf((k - 1) * D) ** 3
                 for k in range(math.floor(copy.lo / D), k_hi + 1)}
        a0 = min(cells)
        p_parts += [(a0, [cells.get(u, 0.0) for u in range(a0, max(cells) + 1)]), lattice(term, D)]
    pt, at = total(*p_parts), total(*a_parts)
    return WallRow(template, ssh, (median(pt), mean(pt)), (median(at), mean(at)))


# ------------------------------------------------------------------------------------------ main
#: amibake's extra fixed cost per build at the bench's scale 1/15 (CPython start-up and per-call work;
#: bench/STARTUP.md unloaded 1.628 - 1.285 s, bench/FINDINGS.md ~0.5 s under load)
START_UP_EXTRA = (0.34, 0.5)
SCALE = 15


def main() -> None:
    print("## Lag: Packer 1.6.6 against the best schedule any planner can have (k-th poll >= k * 15 s)\n")
    print("| wait | range (s) | Packer median lag | best median lag (bracket) | best / Packer | "
          "most seen within half Packer's median (found / bound) | a schedule reaching the best median |")
    print("|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(COPY3):
        r = wait_row(name)
        d = WAITS[name]
        sched = ", ".join(f"{t:.2f}" for t in r.schedule[:8]) + (" ..." if len(r.schedule) > 8 else "")
        print(f"| {name} | {d.lo:.0f}-{d.hi:.0f} | {r.packer_median:.2f} s | {r.best_median[0]:.2f}-"
              f"{r.best_median[1]:.2f} s | {r.best_median[0] / r.packer_median:.3f} | "
              f"{r.at_half[0]:.4f} / {r.at_half[1]:.4f} | {sched} |")
    print("\n| pooled waits of a build | Packer median lag | best median lag (bracket) | best / Packer "
          "(target 0.5) | share seen within half Packer's median, bound |")
    print("|---|---|---|---|---|")
    for label, names, ssh in (("basic.json (4 waits)", BASIC, False),
                              ("basic.json + SSH (scale 1; amibake's SSH lag taken as 0)", BASIC, True),
                              ("copy3 (7 waits)", COPY3, False),
                              ("copy3 + SSH (scale 1; amibake's SSH lag taken as 0)", COPY3, True)):
        pm, (lo, hi), share = pooled(names, ssh)
        print(f"| {label} | {pm:.2f} s | {lo:.2f}-{hi:.2f} s | {lo / pm:.3f} | {share:.4f} |")
    best_x = pooled(BASIC, False)[1][1]
    best = {w: best_cover(WAITS[w], best_x, grid_for(WAITS[w]), False)[1] for w in BASIC}
    plans = {w: ps.plan(ps.prior_for(k, IMAGE_GIB), D, ps.PACKER_ATTEMPTS[k]) for w, k in PLAN_KINDS.items()}
    print("\nSampling noise: how often one run of basic.json shows <= 0.5x (3000 simulated runs, seed 16)\n")
    print("| amibake's schedule | builds per run | runs showing <= 0.5x | the runs' ratios: median, 5th "
          "percentile |")
    print("|---|---|---|---|")
    runs: list[tuple[str, dict[str, list[float]]]] = [
        (f"the best (made for x = {best_x:.2f} s)", best), ("pollschedule.plan, documented priors", plans)]
    for label, schedules in runs:
        for builds in (8, 12, 20):
            share, med, p5 = chance_of_half(schedules, builds)
            print(f"| {label} | {builds} | {share:.1%} | {med:.3f}, {p5:.3f} |")
    half = 3.75
    print(f"\nWhat the lag target would need (x = {half} s, half Packer's 7.5 s median):\n")
    print("| needed | basic.json (4 waits) | copy3 (7 waits) |")
    print("|---|---|---|")
    b, c = budget_needed(BASIC, half), budget_needed(COPY3, half)
    print(f"| call budget: k-th poll no earlier than k * d' | d' <= {b:.1f} s ({D / b:.2f}x Packer's "
          f"calls) | d' <= {c:.1f} s ({D / c:.2f}x Packer's calls) |")
    print("\n| wait | documented width | widest uniform window around its mean where half is seen "
          f"within {half} s |")
    print("|---|---|---|")
    for name in dict.fromkeys(COPY3):
        dist = WAITS[name]
        print(f"| {name} | {dist.hi - dist.lo:.0f} s | {widest_reachable(name, half):.1f} s |")
    print("\n## Wall: the waits' critical path (fixed work left out of both)\n")
    print("| template | scale | Packer median (mean) | amibake at zero lag: median (mean) | "
          "ratio of medians (of means) | target |")
    print("|---|---|---|---|---|---|")
    for template in ("basic", "copy3"):
        for ssh in (True, False):
            w = walls(template, ssh)
            label = "1, SSH emulated" if ssh else "1, no SSH wait (as at 1/15)"
            print(f"| {template} | {label} | {w.packer[0]:.1f} ({w.packer[1]:.1f}) s | {w.amibake[0]:.1f} "
                  f"({w.amibake[1]:.1f}) s | {w.amibake[0] / w.packer[0]:.3f} "
                  f"({w.amibake[1] / w.packer[1]:.3f}) | 0.8 |")
            if not ssh:
                for extra in START_UP_EXTRA:
                    pm, am = w.packer[0] / SCALE, w.amibake[0] / SCALE
                    print(f"| {template} | 1/15, amibake +{extra} s fixed | {pm:.2f} s | {am + extra:.2f} s "
                          f"| {(am + extra) / pm:.3f} | 0.8 |")
    print("\nWith the overlap the issue excludes (amibake at zero lag; not allowed, shown for the margin):\n")
    print("| template | what overlaps | Packer median (mean) | amibake: median (mean) | "
          "ratio of medians (of means) |")
    print("|---|---|---|---|---|")
    for template, what in (("basic", "TerminateInstances right after CreateImage"),
                           ("copy3", "that, and CopyImage x3 at CreateImage")):
        w = walls(template, True, excluded_overlap=True)
        print(f"| {template} (scale 1, SSH) | {what} | {w.packer[0]:.1f} ({w.packer[1]:.1f}) s | "
              f"{w.amibake[0]:.1f} ({w.amibake[1]:.1f}) s | {w.amibake[0] / w.packer[0]:.3f} "
              f"({w.amibake[1] / w.packer[1]:.3f}) |")


if __name__ == "__main__":
    main()
