"""When to poll during a wait, from what is known of how long the transition takes (pure: no I/O; only
:func:`clock_scale` reads the environment). Used by the EC2 state waits (``Ec2Gateway.wait_instance``,
``wait_image_available``), with priors refined by :mod:`~amibake.plugins.amazon.pollhistory`.

Packer 1.6.6 polls every waiter the aws-sdk-go way: at once, then every ``delay`` seconds (15 s for
every EC2 waiter it uses: InstanceRunning, InstanceStopped, InstanceTerminated, ImageAvailable,
SnapshotCompleted; ``request.ConstantWaiterDelay``), giving up after ``max_attempts`` polls (40; 120
for AMIs and snapshots when neither ``aws_polling`` nor an AWS_* variable is set, packer-plugin-amazon
``builder/common/state.go``).

A :class:`Prior` says when the transition is likely to complete (``lo``..``hi`` seconds after the
wait began, from the documented ranges, see ``PRIORS``). :func:`plan` spends Packer's budget of calls
differently: sparse polls before ``lo`` (every ``SPARSE`` delays), then the polls left evenly spread
over ``lo``..``hi``, then Packer's rhythm until at least Packer's give-up time. Guarantees, for every
plan (tested in tests/unit/test_pollschedule.py):

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
#: before the prior's low end, poll once every SPARSE delays (the rest of the budget is kept)
SPARSE = 4
#: the closest two polls may be, as a fraction of the delay (1 s at Packer's 15 s)
MIN_GAP = 1 / 15


@dataclass(frozen=True)
class Prior:
    """The transition is expected to complete between ``lo`` and ``hi`` seconds after the wait began."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not 0 <= self.lo <= self.hi:
            raise ValueError(f"a prior needs 0 <= lo <= hi, got {self.lo}..{self.hi}")

    def scaled(self, factor: float) -> Prior:
        return Prior(self.lo * factor, self.hi * factor)


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
        return Prior(base.lo + SECONDS_PER_GIB[0] * size_gib, base.hi + SECONDS_PER_GIB[1] * size_gib)
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
    Packer's fixed schedule.
    """
    if delay < 0 or max_attempts < 1:
        raise ValueError(f"delay must be >= 0 and max_attempts >= 1, got {delay} and {max_attempts}")
    if explicit or prior is None or delay == 0:
        return fixed(delay, max_attempts)
    give_up = (max_attempts - 1) * delay
    times: list[float] = [0.0] if immediate else []

    def floor_for(k: int) -> float:
        """The earliest the k-th poll (0-based) may be: Packer's k-th poll."""
        return k * delay

    # sparse before the prior: every SPARSE delays, while a full delay is left before lo
    t = SPARSE * delay
    while t <= prior.lo - delay and t < give_up:
        times.append(max(t, floor_for(len(times))))
        t += SPARSE * delay
    # the prior (up to Packer's give-up time): as many polls as Packer would have made by its end,
    # evenly spread, the last at its end
    hi = min(prior.hi, give_up)
    budget = math.floor(hi / delay) + 1 - len(times)
    span = hi - max(prior.lo, times[-1] if times else 0.0)
    if budget > 0 and span > 0:
        m = max(1, min(budget, math.floor(span / (MIN_GAP * delay))))
        # evenly spread, the last at hi; never further apart than Packer's delay (a budget too small
        # to reach hi hands over to Packer's rhythm below, still within a delay)
        gap = min(span / m, delay)
        start = hi - span
        for j in range(1, m + 1):
            times.append(max(start + j * gap, floor_for(len(times)), times[-1] if times else 0.0))
    # after the prior: Packer's rhythm, until Packer would have given up
    while not times or times[-1] < give_up:
        last = times[-1] if times else 0.0
        times.append(max(last + delay if times else 0.0, floor_for(len(times))))
    return times


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
