"""When to poll during a wait, from what is known of how long the transition takes (pure: no I/O; only
:func:`clock_scale` reads the environment). Used by the EC2 state waits (``Ec2Gateway.wait_instance``,
``wait_image_available``), with priors refined by :mod:`~amibake.plugins.amazon.pollhistory`.

Packer 1.6.6 polls every waiter the aws-sdk-go way: at once, then every ``delay`` seconds (15 s for
every EC2 waiter it uses: InstanceRunning, InstanceStopped, InstanceTerminated, ImageAvailable,
SnapshotCompleted; ``request.ConstantWaiterDelay``), giving up after ``max_attempts`` polls (40; 120
for AMIs and snapshots when neither ``aws_polling`` nor an AWS_* variable is set, packer-plugin-amazon
``builder/common/state.go``).

A :class:`Prior` says when the transition is likely to complete (``lo``..``hi`` seconds after the
wait began, from the documented ranges, see ``PRIORS``; uniform, or a trapezoid for an image: its
base time plus its size part). :func:`plan` spends Packer's budget of calls differently: no poll
before ``lo`` but the immediate one, then polls ``x`` apart (where the prior is densest, once its
rising ramp is past) for as long as the calls saved before ``lo`` last, the least ``x`` that sees
half the prior within ``x`` (the median lag), then Packer's rhythm until at least Packer's give-up
time. Without the immediate poll that is the best median any schedule obeying the first guarantee
below reaches on the uniform priors (``bench/target_bounds.py``; bench/FINDINGS.md gives the figures).
Guarantees, for every plan (tested in tests/unit/test_pollschedule.py):

* over every window from the wait's start, no more polls than Packer's fixed-delay schedule: the
  ``k``-th poll (0-based) is never earlier than ``k * delay``;
* it never gives up earlier than Packer: the last poll is at or after ``(max_attempts - 1) * delay``;
* a transition completing inside the prior is seen within ``delay`` (Packer's worst case).

An explicit ``aws_polling`` / AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS wins: :func:`plan` then
returns Packer's fixed-delay schedule with those values (``explicit=True``).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

#: Packer's default delay for every EC2 waiter it uses (aws-sdk-go / botocore ec2 waiters-2.json)
PACKER_DELAY = 15.0
#: Packer's default attempts per kind of wait (40 from the SDK; AMIs and snapshots 120, Packer's own)
PACKER_ATTEMPTS = {
    "instance_running": 40,
    "instance_stopped": 40,
    "instance_terminated": 40,
    "image_available": 120,
    "image_copy": 120,
    "image_registered": 120,
    "snapshot_completed": 120,
}
#: the closest two polls may be, as a fraction of the delay (1 s at Packer's 15 s)
MIN_GAP = 1 / 15


@dataclass(frozen=True)
class Prior:
    """The transition is expected to complete between ``lo`` and ``hi`` seconds after the wait began."""

    lo: float
    hi: float
    #: 0: uniform over lo..hi; else a trapezoid whose density rises over lo..lo + ramp and falls over
    #: hi - ramp..hi (a sum of two uniform parts, the narrower ``ramp`` wide: an image's base time
    #: plus its size part)
    ramp: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.lo <= self.hi:
            raise ValueError(f"a prior needs 0 <= lo <= hi, got {self.lo}..{self.hi}")
        if not 0 <= 2 * self.ramp <= self.hi - self.lo:
            raise ValueError(f"a prior's ramp must be 0..(hi - lo) / 2, got {self.ramp}")

    def scaled(self, factor: float) -> Prior:
        return Prior(self.lo * factor, self.hi * factor, self.ramp * factor)

    def cdf(self, t: float) -> float:
        """The share of the prior's transitions completed by ``t``."""
        lo, hi, r = self.lo, self.hi, self.ramp
        if t <= lo:
            return 0.0
        if t >= hi:
            return 1.0
        if r <= 0:
            return (t - lo) / (hi - lo)
        h = 1.0 / (hi - lo - r)  # the flat top's density
        if t < lo + r:
            return h * (t - lo) ** 2 / (2 * r)
        if t <= hi - r:
            return h * (r / 2 + t - lo - r)
        return 1.0 - h * (hi - t) ** 2 / (2 * r)


#: the documented ranges of real AWS timings (sources: bench/FINDINGS.md), seconds at scale 1
PRIORS = {
    "instance_running": Prior(10.0, 40.0),
    "instance_stopped": Prior(15.0, 60.0),
    "instance_terminated": Prior(15.0, 60.0),
    "image_available": Prior(60.0, 180.0),
    "image_copy": Prior(180.0, 1200.0),
    # RegisterImage of a completed snapshot copies no data (an estimate: bench/FINDINGS.md)
    "image_registered": Prior(5.0, 30.0),
    "snapshot_completed": Prior(60.0, 180.0),
}
#: the size-dependent part of an AMI's (or a copy's, or a snapshot's) time, seconds per GiB (an estimate)
SECONDS_PER_GIB = (2.0, 8.0)


def prior_for(kind: str, size_gib: float = 0.0) -> Prior:
    """The prior of a kind of wait; images, copies and snapshots grow with their size."""
    try:
        base = PRIORS[kind]
    except KeyError:
        raise ValueError(f"no prior for the wait {kind!r}; known: {', '.join(sorted(PRIORS))}") from None
    if kind in ("image_available", "image_copy", "snapshot_completed") and size_gib > 0:
        size = ((SECONDS_PER_GIB[1] - SECONDS_PER_GIB[0]) * size_gib)
        return Prior(base.lo + SECONDS_PER_GIB[0] * size_gib, base.hi + SECONDS_PER_GIB[1] * size_gib,
                     min(size, base.hi - base.lo))
    return base


#: for benchmarks only: multiplies amibake's polling clock (Packer's delay, the priors, the progress
#: reports) by this factor in (0, 1] without making the polling explicit, so the planner stays on
#: against an emulated AWS whose transitions are shrunk by the same factor (bench/realistic.py)
SCALE_ENV = "AMIBAKE_POLL_SCALE"


def clock_scale(environ: Mapping[str, str] | None = None) -> float | None:
    """``AMIBAKE_POLL_SCALE`` (the benchmark's clock scale), None when unset or not a number in (0, 1]."""
    env = os.environ if environ is None else environ
    try:
        value = float(env.get(SCALE_ENV, "").strip() or "nan")
    except ValueError:
        return None
    return value if 0 < value <= 1 else None


def calls_fit(times: Sequence[float], delay: float, done: int, extra: int, now: float) -> bool:
    """Whether one more call (not a poll) at ``now`` keeps the wait within Packer's calls over every
    window from its start: ``done`` polls of ``times`` are made, plus ``extra`` other calls so far.
    At ``now`` and at every poll still planned, the calls made by then (polls, the ``extra``, this
    one) must not outnumber Packer's polls by then (``floor(t / delay) + 1``)."""
    if delay <= 0:
        return False

    def packer_by(t: float) -> int:
        return math.floor(t / delay + 1e-9) + 1

    if done + extra + 1 > packer_by(now):
        return False
    return all(k + 1 + extra + 1 <= packer_by(t) for k, t in enumerate(times) if k >= done)


def fixed(delay: float, max_attempts: int) -> list[float]:
    """Packer's schedule: a poll at once, then one every ``delay`` seconds, ``max_attempts`` in all."""
    return [k * delay for k in range(max(1, max_attempts))]


def plan(
    prior: Prior | None,
    delay: float = PACKER_DELAY,
    max_attempts: int = 40,
    *,
    explicit: bool = False,
    immediate: bool = True,
) -> list[float]:
    """Poll times, seconds after the wait began (ascending; the first is 0 when ``immediate``).

    ``delay`` and ``max_attempts`` are Packer's for this wait (its defaults, or the explicit
    overrides when ``explicit``); with no prior, or ``explicit``, or a delay of 0, the plan is
    Packer's fixed schedule. Otherwise the polls inside the prior are packed ``x`` apart, the least
    ``x`` for which half the prior is seen within ``x`` (:func:`_packed`, a bisection over ``x``;
    about 2 ms for a copy's 120 attempts).

    ``immediate``: whether the plan polls at 0. The gateway's wait loop always makes that poll (it
    sees a state already reached: an instance or image whose wait starts late), so it plans with
    ``immediate=True``; a poll at 0 spends one of the calls Packer allows before the prior, which
    costs the 10-40 s instance wait 1.7 s of median lag (6.67 s against 5.0 s).
    """
    if delay < 0 or max_attempts < 1:
        raise ValueError(f"delay must be >= 0 and max_attempts >= 1, got {delay} and {max_attempts}")
    if explicit or prior is None or delay == 0:
        return fixed(delay, max_attempts)
    give_up = (max_attempts - 1) * delay
    least = MIN_GAP * delay
    # where the dense polls may start: the prior's start, or a point of a trapezoid's rising ramp when
    # that ramp holds a share worth saving polls over (an AMI's 20%; not a copy's 2.4%: the search
    # would cost more than 10 ms for its 85 polls and gain 0.02 s)
    steep = prior.ramp > 0 and prior.cdf(prior.lo + prior.ramp) >= RAMP_SHARE
    starts = [prior.lo + prior.ramp * j / 4 for j in range(5 if steep else 1)]

    def seen(x: float) -> tuple[float, float]:
        return max((_seen_within(prior, delay, give_up, immediate, x, s), s) for s in starts)

    x = least
    if seen(least)[0] < 0.5:
        lo_x, hi_x = least, delay  # seen(lo_x) < 1/2 <= seen(hi_x): x = delay is Packer's spacing
        for _ in range(BISECTIONS):
            mid = (lo_x + hi_x) / 2
            if seen(mid)[0] >= 0.5:
                hi_x = mid
            else:
                lo_x = mid
        x = hi_x
    return _packed(prior, delay, give_up, immediate, x, seen(x)[1])


#: the least share of a prior in its rising ramp for which the plan looks for a later dense start
RAMP_SHARE = 0.05
#: bisection steps for the plan's spacing (the last step is delay / 2**BISECTIONS: 15 ms at 15 s)
BISECTIONS = 10


def _packed(
    prior: Prior, delay: float, give_up: float, immediate: bool, x: float, dense: float,
    until: float = math.inf,
) -> list[float]:
    """The plan for spacing ``x`` (``MIN_GAP * delay`` <= x <= delay) from ``dense`` (in the prior) on:
    an immediate poll if asked, none other before the prior, then each poll at the earliest of:
    Packer's poll of the same rank (``k * delay``, the call guarantee), ``x`` after the previous poll
    (``delay`` before ``dense``), ``x`` into the prior (``delay`` when ``dense`` is later); once a poll
    reaches the prior's end, Packer's rhythm until Packer's give-up time. Each gap is at most
    ``delay`` (``x <= delay``, and a poll held back by its rank comes at most one delay after the
    previous one, which is no earlier than the rank before), and the first poll in the prior comes at
    most a delay into it: any transition inside the prior is seen within one delay. ``until``: stop
    at the first poll at or after it (what :func:`_seen_within` needs)."""
    times: list[float] = [0.0] if immediate else []
    end = min(prior.hi, give_up, until)
    first = None  # the first dense poll
    while not times or times[-1] < end:
        prev = times[-1] if times else -math.inf
        gap = x if prev >= dense else delay
        if first is None and prev >= dense:
            first = len(times)
        entry = prior.lo + (x if dense <= prior.lo else delay) if prev < prior.lo else -math.inf
        times.append(max(len(times) * delay, prev + gap, entry))
    # the dense polls, evenly spaced between the first and the last: what a uniform stretch sees is
    # the same (the windows stay disjoint), and a prior denser in its middle is not polled densely at
    # one end only. The k-th poll stays at or after ``k * delay`` (true at both ends, linear in k)
    # and the gaps between ``x`` and ``delay``.
    first = len(times) - 1 if first is None else max(first - 1, 0)
    last = len(times) - 1
    if last - first >= 2 and dense <= prior.lo:
        step = (times[last] - times[first]) / (last - first)
        for k in range(first + 1, last):
            times[k] = max(times[first] + (k - first) * step, k * delay)
    while times[-1] < min(give_up, until):
        times.append(max(times[-1] + delay, len(times) * delay))
    return times


def _seen_within(prior: Prior, delay: float, give_up: float, immediate: bool, x: float,
                 dense: float) -> float:
    """The share of the prior (a point prior counts as seen when a poll lands within ``x`` after it)
    that :func:`_packed` for ``x`` and ``dense`` sees within ``x``."""
    times = _packed(prior, delay, give_up, immediate, x, dense, until=prior.hi + x)
    if prior.hi <= prior.lo:
        seen = lag(times, prior.lo)
        return 1.0 if seen is not None and seen <= x else 0.0
    covered, reach = 0.0, prior.lo  # the intervals [t - x, t], clipped to what came before
    for t in times:
        start, stop = max(t - x, reach), min(t, prior.hi)
        if stop > start:
            covered += prior.cdf(stop) - prior.cdf(start)
            reach = stop
    return covered


def sleeps(times: Sequence[float]) -> Iterator[float]:
    """The pauses between consecutive polls of a plan (what a wait loop sleeps)."""
    for a, b in itertools.pairwise(times):
        yield b - a


def lag(times: Sequence[float], at: float) -> float | None:
    """How long after ``at`` the plan's first poll at or after it comes (None: the plan gave up)."""
    for t in times:
        if t >= at:
            return t - at
    return None


def calls_until_seen(times: Sequence[float], at: float) -> int | None:
    """How many polls the plan makes to see a transition completing at ``at``."""
    for i, t in enumerate(times):
        if t >= at:
            return i + 1
    return None
