"""The poll schedule (plugins/amazon/pollschedule.py) against Packer 1.6.6's fixed-delay waiters."""

from __future__ import annotations

import bisect
import itertools
import statistics
import time

import pytest
from bench import target_bounds as tb
from hypothesis import example, given, settings
from hypothesis import strategies as st

from amibake.plugins.amazon import pollschedule as ps

delays = st.one_of(st.sampled_from([1.0, 2.0, 5.0, 15.0, 30.0]), st.floats(0.05, 120.0))
attempts = st.integers(1, 200)


@st.composite
def priors(draw: st.DrawFn) -> ps.Prior:
    lo = draw(st.floats(0.0, 3000.0))
    width = draw(st.floats(0.0, 3000.0))
    hi = lo + width
    return ps.Prior(lo, hi, draw(st.sampled_from([0.0, 0.5, 1.0])) * (hi - lo) / 2)


def count_until(times: list[float], t: float) -> int:
    """Polls made at or before ``t``."""
    return bisect.bisect_right(times, t)


@settings(max_examples=400, deadline=None, database=None)
@given(priors(), delays, attempts, st.booleans())
def test_never_more_calls_than_the_fixed_delay_schedule_over_any_window(
    prior: ps.Prior, delay: float, max_attempts: int, immediate: bool
) -> None:
    times = ps.plan(prior, delay, max_attempts, immediate=immediate)
    packer = ps.fixed(delay, max_attempts)
    assert times == sorted(times)
    assert times[0] >= 0
    # every window from the wait's start, ended at any poll of either schedule (where counts change)
    for t in {*times, *packer, *(x - 1e-9 for x in packer if x > 0)}:
        assert count_until(times, t) <= count_until(packer, t) or t > packer[-1], (t, times[:12])
    # over the whole wait, no more polls than Packer's max_attempts
    assert len(times) <= max_attempts
    # and the k-th poll never precedes Packer's k-th
    assert all(t >= k * delay - 1e-9 for k, t in enumerate(times))


@settings(max_examples=400, deadline=None, database=None)
@given(priors(), delays, attempts, st.booleans())
def test_never_gives_up_earlier_than_packer(
    prior: ps.Prior, delay: float, max_attempts: int, immediate: bool
) -> None:
    times = ps.plan(prior, delay, max_attempts, immediate=immediate)
    assert times[-1] >= ps.fixed(delay, max_attempts)[-1] - 1e-9


@settings(max_examples=300, deadline=None, database=None)
@given(priors(), delays, attempts, st.booleans(), st.floats(0.0, 1.0))
@example(ps.Prior(0.0, 20.0), 15.0, 40, True, 0.001)  # a budget of one poll for a prior wider than a delay
@example(ps.Prior(10.0, 40.0), 15.0, 40, False, 0.0)
def test_bounded_lag_for_any_transition_inside_the_prior(
    prior: ps.Prior, delay: float, max_attempts: int, immediate: bool, where: float
) -> None:
    times = ps.plan(prior, delay, max_attempts, immediate=immediate)
    give_up = ps.fixed(delay, max_attempts)[-1]
    at = prior.lo + where * (prior.hi - prior.lo)
    if at > give_up:
        return  # Packer would have given up too
    lag = ps.lag(times, at)
    assert lag is not None
    assert lag <= delay + 1e-9, (at, lag, times[:20])


@pytest.mark.parametrize("kind", sorted(ps.PRIORS))
def test_documented_priors_beat_packer_on_average_at_no_more_calls(kind: str) -> None:
    """On the documented ranges (8 GiB images), over transition times spread across the prior:
    median lag below Packer's, and no more calls to see it, for every time (not just on average)."""
    prior = ps.prior_for(kind, 8)
    n = ps.PACKER_ATTEMPTS[kind]
    mine, packer = ps.plan(prior, 15.0, n), ps.fixed(15.0, n)
    xs = [prior.lo + (prior.hi - prior.lo) * i / 997 for i in range(998)]
    mine_lag = statistics.median(ps.lag(mine, x) or 0 for x in xs)
    packer_lag = statistics.median(ps.lag(packer, x) or 0 for x in xs)
    if kind == "image_registered":
        # 5-30 s after an immediate poll: Packer's own polls at 15 and 30 s are already the best
        assert mine_lag <= packer_lag + 1e-9
    else:
        assert mine_lag < packer_lag
    for x in xs:
        assert (ps.calls_until_seen(mine, x) or 0) <= (ps.calls_until_seen(packer, x) or 0), x


def test_no_poll_before_the_prior_but_the_immediate_one() -> None:
    prior = ps.prior_for("image_available", 8)  # 76..244 s
    times = ps.plan(prior, 15.0, 120)
    assert [t for t in times if t < prior.lo] == [0.0]
    assert ps.plan(prior, 15.0, 120, immediate=False)[0] > prior.lo
    inside = [t for t in times if prior.lo <= t <= prior.hi]
    gaps = [b - a for a, b in itertools.pairwise(inside)]
    assert max(gaps) <= 15.0 + 1e-9 and sum(g < 15.0 for g in gaps) >= 8  # denser than Packer
    # the dense polls start at the top of the AMI's rising ramp (76-124 s: base 60-180 s plus 16-64 s
    # for 8 GiB), where the density stops growing, not at its thin start
    first_dense = next(a for a, b in itertools.pairwise(inside) if b - a < 15.0 - 1e-9)
    assert prior.lo + prior.ramp / 2 < first_dense <= prior.lo + prior.ramp + 15.0
    after = [t for t in times if t > prior.hi + 15.0]
    assert all(b - a == pytest.approx(15.0) for a, b in itertools.pairwise(after))


#: bench/target_bounds.py's optimum median lag (its upper ends) under the rule (the k-th poll no
#: earlier than k * 15 s), on the bench's own draws (an AMI and a copy: base + 8 GiB part, a
#: trapezoid), bench/FINDINGS.md; the plan without the immediate poll may be this much above it (s)
OPTIMUM = {"instance running": (5.0, 0.01), "instance stopped": (4.5, 0.01),
           "AMI available": (3.92, 0.40), "copy available": (6.12, 0.20)}
#: the plan's median with the immediate poll the gateway makes; the plan before this change (sparse
#: polls every 4 delays before the prior, then its budget spread evenly over it) had 7.50, 5.63,
#: 5.60 and 6.59 s on the same draws, so a revert fails this for all but the stop wait (whose
#: 5.63 s is already the best with a poll at 0: three polls left by 60 s, four by 60 + x)
WITH_IMMEDIATE = {"instance running": 6.67, "instance stopped": 5.63, "AMI available": 4.60,
                  "copy available": 6.39}
KINDS = {"instance running": "instance_running", "instance stopped": "instance_stopped",
         "AMI available": "image_available", "copy available": "image_copy"}


def _median_lag(times: list[float], wait: str) -> float:
    """The least x with half the bench's draws of ``wait`` seen within x (exact, by the CDF)."""
    dist = tb.WAITS[wait]
    return tb.least_x(lambda x: tb.caught(dist, times, x), tol=1e-4)


@pytest.mark.parametrize("wait", sorted(OPTIMUM))
def test_median_lag_near_the_optimum_any_schedule_can_reach(wait: str) -> None:
    kind = KINDS[wait]
    prior, n = ps.prior_for(kind, tb.IMAGE_GIB), ps.PACKER_ATTEMPTS[kind]
    best, slack = OPTIMUM[wait]
    free = _median_lag(ps.plan(prior, 15.0, n, immediate=False), wait)
    assert best - 0.01 <= free <= best + slack, free
    assert _median_lag(ps.plan(prior, 15.0, n), wait) <= WITH_IMMEDIATE[wait] + 0.005


def test_a_plan_is_cheap() -> None:
    """It runs per wait: well under 10 ms (about 1 ms for the copy's 120 attempts)."""
    prior = ps.prior_for("image_copy", 8)
    start = time.process_time()
    for _ in range(10):
        ps.plan(prior, 15.0, 120)
    assert (time.process_time() - start) / 10 < 0.01


def test_explicit_overrides_win() -> None:
    """aws_polling / AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS: Packer's fixed schedule, as given."""
    prior = ps.prior_for("image_available")
    assert ps.plan(prior, 2.0, 7, explicit=True) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert ps.plan(None, 15.0, 3) == [0.0, 15.0, 30.0]
    assert ps.plan(prior, 0.0, 3) == [0.0, 0.0, 0.0]


def test_scaled_prior_scales_the_plan() -> None:
    """The benchmark's scale: a prior and a delay both x s give the plan x s."""
    prior = ps.prior_for("instance_stopped")
    full = ps.plan(prior, 15.0, 40)
    small = ps.plan(prior.scaled(1 / 15), 1.0, 40)
    assert small == pytest.approx([t / 15 for t in full])


def test_bad_input_is_refused_with_a_message() -> None:
    with pytest.raises(ValueError, match="lo <= hi"):
        ps.Prior(30.0, 10.0)
    with pytest.raises(ValueError, match="max_attempts"):
        ps.plan(ps.prior_for("instance_running"), 15.0, 0)
    with pytest.raises(ValueError, match="no prior for the wait 'volume'"):
        ps.prior_for("volume")


def test_sleeps_are_the_gaps_between_polls() -> None:
    times = ps.plan(ps.prior_for("instance_running"), 15.0, 40)
    assert list(ps.sleeps(times))[:3] == [pytest.approx(times[1]), pytest.approx(times[2] - times[1]),
                                          pytest.approx(times[3] - times[2])]


def test_an_image_prior_is_its_base_time_plus_its_size_part() -> None:
    """prior_for of an 8 GiB AMI: 60-180 s plus 16-64 s, a trapezoid; its CDF is the bench's."""
    prior = ps.prior_for("image_available", 8)
    assert (prior.lo, prior.hi, prior.ramp) == (76.0, 244.0, 48.0)
    dist = tb.WAITS["AMI available"]
    for t in (70.0, 80.0, 100.0, 124.0, 150.0, 196.0, 220.0, 244.0, 300.0):
        assert prior.cdf(t) == pytest.approx(dist.cdf(t), abs=1e-12), t
    assert ps.prior_for("instance_running").ramp == 0.0
    assert prior.scaled(0.5) == ps.Prior(38.0, 122.0, 24.0)
    with pytest.raises(ValueError, match="ramp"):
        ps.Prior(0.0, 10.0, 6.0)
