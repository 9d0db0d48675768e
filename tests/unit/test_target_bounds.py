"""bench/target_bounds.py: its lag bound against brute force and direct integration, its wall model
against a simulation with the benchmark's own draws (bench/realistic.py: ``draw``)."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import statistics

import pytest
from bench import realistic
from bench import target_bounds as tb

from amibake.plugins.amazon import pollschedule as ps


def seen_within(dist: tb.Dist, times: list[float], x: float, n1: int = 4000, n2: int = 100) -> float:
    """P(lag <= x) by direct integration: midpoints over both uniforms, the lag to the next poll."""
    w1, w2 = dist.hi1 - dist.lo1, dist.hi2 - dist.lo2
    n2 = n2 if w2 > 0 else 1
    hits = 0
    for i in range(n1):
        u1 = dist.lo1 + (i + 0.5) * w1 / n1
        for j in range(n2):
            at = u1 + dist.lo2 + (j + 0.5) * w2 / n2
            k = bisect.bisect_left(times, at)
            hits += k < len(times) and times[k] - at <= x
    return hits / (n1 * n2)


def test_cdf_is_the_sum_of_the_two_uniforms() -> None:
    ami = tb.WAITS["AMI available"]
    assert (ami.lo, ami.hi) == (76.0, 244.0)
    n = 600
    for t in (80.0, 100.0, 124.0, 150.0, 200.0, 230.0):
        direct = sum(
            min(1.0, max(0.0, (t - (ami.lo1 + (i + 0.5) * 120 / n) - ami.lo2) / 48)) for i in range(n)
        ) / n
        assert ami.cdf(t) == pytest.approx(direct, abs=1e-4)


def test_packer_lag_is_uniform_over_the_delay() -> None:
    for name in ("instance running", "instance stopped", "AMI available", "instance terminated"):
        dist = tb.WAITS[name]
        assert tb.least_x(lambda x, d=dist: tb.packer_caught(d, x), tol=1e-4) == pytest.approx(7.5, abs=1e-3)
        for x in (1.0, 3.75, 11.0):
            assert tb.packer_caught(dist, x) == pytest.approx(x / 15, abs=1e-9)
            assert seen_within(dist, ps.fixed(15.0, 40), x, n2=40) == pytest.approx(x / 15, abs=2e-3)


def brute_best(dist: tb.Dist, x: float, per: int) -> float:
    """The best grid schedule (times k/per, the k-th poll >= k * 15 s), by trying them all."""
    end = dist.hi + x
    # a poll before the range sees nothing and only takes an index: the best schedules have none
    grid = [u / per for u in range(math.ceil(dist.lo * per), math.floor(end * per) + 1)]
    best = 0.0

    def extend(times: list[float]) -> None:
        nonlocal best
        if times:
            best = max(best, tb.caught(dist, times, x))
        floor = len(times) * tb.D
        for t in grid:
            if t >= floor and (not times or t > times[-1]):
                extend([*times, t])

    extend([])
    return best


@pytest.mark.parametrize(
    ("dist", "x"),
    [(tb.Dist(10.0, 40.0), 4.0), (tb.Dist(10.0, 40.0), 6.5), (tb.Dist(5.0, 20.0, 2.0, 10.0), 3.0),
     (tb.Dist(18.0, 25.0, 0.0, 12.0), 2.5), (tb.Dist(31.0, 39.0), 2.0),
     (tb.Dist(33.0, 39.0), 2.0)],
)
def test_no_schedule_on_a_grid_beats_the_bound(dist: tb.Dist, x: float) -> None:
    brute = brute_best(dist, x, per=2)
    upper = tb.best_cover(dist, x, 2, upper=True)[0]
    lower, _times = tb.best_cover(dist, x, 2, upper=False)
    assert lower <= brute + 1e-12 <= upper + 2e-12
    # the finer grid's bound holds too, and its schedule obeys the rule and is worth what it says
    fine_upper = tb.best_cover(dist, x, 100, upper=True)[0]
    fine_lower, fine_times = tb.best_cover(dist, x, 100, upper=False)
    assert brute <= fine_upper + 1e-12
    assert fine_lower <= fine_upper
    assert all(t >= k * tb.D - 1e-9 for k, t in enumerate(fine_times))
    assert all(b - a >= x - 1e-9 for a, b in itertools.pairwise(fine_times))
    assert seen_within(dist, fine_times, x) == pytest.approx(fine_lower, abs=2e-3)


def test_random_schedules_never_beat_the_bound() -> None:
    rng = random.Random(16)
    for name, x in (("instance running", 3.75), ("instance stopped", 3.75), ("AMI available", 3.75)):
        dist = tb.WAITS[name]
        upper = tb.best_value(dist, x, upper=True)
        for _ in range(200):
            n = rng.randint(1, math.ceil((dist.hi + x) / tb.D) + 1)
            raw = sorted(rng.uniform(dist.lo - x, dist.hi + x) for _ in range(n))
            times: list[float] = []
            for k, t in enumerate(raw):
                times.append(max(t, k * tb.D, times[-1] if times else 0.0))
            assert tb.caught(dist, times, x) <= upper + 1e-9
        # the documented-prior plan amibake runs obeys the same rule, so it cannot beat it either
        plan = ps.plan(ps.prior_for(name.replace("instance ", "instance_").replace("AMI available",
                                                                                   "image_available"), 8))
        assert tb.caught(dist, plan, x) <= upper + 1e-9


def test_the_bound_is_tight_where_it_is_known_by_hand() -> None:
    running = tb.WAITS["instance running"]
    # three polls can see the 10-40 s range before 45 s: 3 x 3.75 s of 30 s
    assert tb.best_cover(running, 3.75, 100, upper=False)[0] == pytest.approx(0.375, abs=1e-9)
    assert tb.best_value(running, 3.75, upper=True) == pytest.approx(0.375, abs=1e-3)
    # a median of 5 s: polls at 15, 20 (>= 15) and 30 (>= 30) see 10-20 and 25-30
    # three polls, two seconds each, exactly fill 33-39 s (the last at 39 >= 30): all of it is seen
    tight = tb.Dist(33.0, 39.0)
    assert tb.best_cover(tight, 2.0, 100, upper=False)[0] == pytest.approx(1.0, abs=1e-9)
    assert tb.best_cover(tight, 2.0, 100, upper=True)[0] >= 1.0
    below = tb.least_x(lambda x: tb.best_value(running, x, upper=True))
    above = tb.least_x(lambda x: tb.best_value(running, x, upper=False))
    assert 4.99 < below <= 5.0 <= above < 5.01


def test_the_pooled_lag_target_is_out_of_reach_for_basic() -> None:
    """The conclusion in bench/FINDINGS.md: within half Packer's pooled median (3.75 s) no schedule
    sees half the waits of basic.json."""
    share = statistics.fmean(tb.best_value(tb.WAITS[w], 3.75, upper=True) for w in tb.BASIC)
    assert 0.40 < share < 0.45


def test_packer_ssh_lag_matches_a_simulation_with_the_bench_draws() -> None:
    lags = []
    for i in range(4000):
        r, s = realistic.draw(9, i, "instance_pending", 0), realistic.draw(9, i, "ssh_ready", 0)
        seen = math.ceil(r / 15) * 15
        ready = r + s
        lags.append(seen - ready if ready <= seen else math.ceil((ready - seen) / 5) * 5 - (ready - seen))
    for x in (1.0, 2.5, 4.0, 6.0):
        assert tb.packer_ssh_caught(x) == pytest.approx(sum(lag <= x for lag in lags) / len(lags), abs=0.025)


@pytest.mark.parametrize("template", ["basic", "copy3"])
def test_wall_model_matches_a_simulation_with_the_bench_draws(template: str) -> None:
    model = tb.walls(template, ssh=True)
    packer, amibake = [], []
    for i in range(4000):
        def dr(kind: str, n: int = 0, i: int = i) -> float:
            return realistic.draw(7, i, kind, n)

        r, s, stop, ami, term = (dr("instance_pending"), dr("ssh_ready"), dr("instance_stopping"),
                                 dr("image_pending"), dr("instance_shutting_down"))
        seen = math.ceil(r / 15) * 15
        ssh_at = r + s
        p_ssh = seen if ssh_at <= seen else seen + math.ceil((ssh_at - seen) / 5) * 5
        p = p_ssh + math.ceil(stop / 15) * 15 + math.ceil(ami / 15) * 15 + math.ceil(term / 15) * 15
        a = r + s + stop + ami + term
        if template == "copy3":
            copies = [dr("copy", n) for n in range(3)]
            p += max(math.ceil(c / 15) * 15 for c in copies)
            a += max(max(copies), term) - term
        packer.append(p)
        amibake.append(a)
    assert model.packer[1] == pytest.approx(statistics.fmean(packer), rel=0.01)
    assert model.amibake[1] == pytest.approx(statistics.fmean(amibake), rel=0.01)
    assert model.amibake[0] == pytest.approx(statistics.median(amibake), rel=0.02)
    assert model.amibake[1] / model.packer[1] > 0.8


def test_the_widest_window_reachable_matches_the_count_of_polls() -> None:
    # around 25 s, three polls (the third >= 30 s) by the window's end + 3.75 s: 3 x 3.75 s is half
    # of a 22.5 s window
    assert tb.widest_reachable("instance running", 3.75) == pytest.approx(22.5, abs=0.3)


def test_chance_of_half_tells_packer_from_a_dense_schedule() -> None:
    fixed = {w: ps.fixed(15.0, 40) for w in tb.BASIC}
    assert tb.chance_of_half(fixed, builds=4, runs=50) == (0.0, 1.0, 1.0)
    dense = {w: [k / 10 for k in range(3000)] for w in tb.BASIC}
    share, med, _ = tb.chance_of_half(dense, builds=4, runs=50)
    assert share == 1.0 and med < 0.02
