"""How the poll history's learnt prior changes the lag: an exact simulation (no AWS, no clock).

For each wait kind, 40 waits in a row whose transition times are drawn uniformly from a "truth" range;
each wait is planned by ``pollschedule.plan`` from a prior estimated by one of the estimators out of
the observations of the waits before it (the interval between the last poll that did not see the state
and the first that did), as ``Ec2Gateway`` does. Reports the median and p90 lag and the mean calls per
wait, next to Packer 1.6.6's fixed 15 s schedule. Two truths: the documented ranges themselves (learning
can only lose there), and narrower ranges (a machine whose AWS is steadier than the documentation says).

    .venv/bin/python bench/sim_history.py
"""

from __future__ import annotations

import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from amibake.plugins.amazon import pollhistory as ph
from amibake.plugins.amazon import pollschedule as ps

Obs = list[tuple[float, float]]


def _q(xs: list[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    i = int(pos)
    j = min(i + 1, len(s) - 1)
    return s[i] + (s[j] - s[i]) * (pos - i)


def old(doc: ps.Prior, obs: Obs) -> ps.Prior:
    """af9a0f2's predecessor: 10th percentile of the lower bounds to the 90th of the upper, over
    intervals at most 1.5 delays wide."""
    kept = [(a, b) for a, b in obs if b - a <= 22.5]
    if len(kept) < ph.MIN_OBSERVATIONS:
        return doc
    lo = _q([a for a, _ in kept], 0.1)
    return ps.Prior(lo, max(lo, _q([b for _, b in kept], 0.9)))


ESTIMATORS: dict[str, Callable[[ps.Prior, Obs], ps.Prior]] = {
    "documented prior only": lambda doc, obs: doc,
    "learnt (pollhistory.refine)": ph.refine,
    "learnt, old estimator": old,
}
TRUTHS = {
    "the documented ranges": {"instance_running": (10, 40), "instance_stopped": (15, 60),
                              "image_available": (76, 244)},
    "narrower ranges": {"instance_running": (14, 20), "instance_stopped": (20, 30),
                        "image_available": (100, 130)},
}


def simulate(truth: dict[str, tuple[int, int]], est: Callable[[ps.Prior, Obs], ps.Prior] | None,
             seed: int = 16, n: int = 40) -> dict[str, tuple[float, float, float]]:
    out = {}
    for kind, (lo, hi) in truth.items():
        rng = random.Random(f"{seed}/{kind}")
        obs: Obs = []
        lags, calls = [], []
        for _ in range(n):
            x = rng.uniform(lo, hi)
            doc = ps.prior_for(kind, 8 if kind.startswith("image") else 0)
            attempts = ps.PACKER_ATTEMPTS[kind]
            times = ps.fixed(15.0, attempts) if est is None else ps.plan(est(doc, obs), 15.0, attempts)
            k = next(j for j, t in enumerate(times) if t >= x)
            lags.append(times[k] - x)
            calls.append(k + 1)
            obs = [*obs, (times[k - 1] if k else 0.0, times[k])][-ph.KEEP:]
        out[kind] = (statistics.median(lags), _q(lags, 0.9), sum(calls) / n)
    return out


def main() -> None:
    for tname, truth in TRUTHS.items():
        print(f"\nTruth: {tname} ({', '.join(f'{k} {a}-{b} s' for k, (a, b) in truth.items())})\n")
        print("| schedule | " + " | ".join(f"{k}: median / p90 lag, calls" for k in truth) + " |")
        print("|---|" + "---|" * len(truth))
        rows = {"Packer 1.6.6 (15 s fixed)": None, **ESTIMATORS}
        for name, est in rows.items():
            r = simulate(truth, est)
            cells = [f"{m:.1f} / {p:.1f} s, {c:.1f}" for m, p, c in r.values()]
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
