"""What this machine's past EC2 waits measured, kept to refine the poll planner's priors
(:mod:`~amibake.plugins.amazon.pollschedule`).

One small JSON file in the state directory (:func:`amibake.journal.state_dir`), ``poll-history.json``:
per key (region, kind of wait, size bucket) the last ``KEEP`` observations, each the interval
``[lower, upper]`` in which the transition completed (seconds after the wait began, at scale 1:
the last poll that did not see the state, the first that did). At most ``MAX_KEYS`` keys are kept
(the least recently updated go first), so the file stays a few tens of KiB.

Robust by construction: a missing, unreadable, corrupt or foreign-shaped file reads as empty (the
documented priors are used), and a write goes to a temporary file renamed over the old one under an
advisory lock, so readers never see half a file and concurrent builds never corrupt it (at worst one
observation of two racing writers without ``flock`` is lost). Any error here is logged at debug
level and otherwise ignored: the history only ever tunes a wait, it never fails one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from amibake.plugins.amazon.pollschedule import Prior

log = logging.getLogger("amibake.aws")

FILE = "poll-history.json"
VERSION = 1
#: observations kept per key, and keys kept per file
KEEP = 20
MAX_KEYS = 64
#: fewer observations than this: the documented prior alone
MIN_OBSERVATIONS = 3
#: observations beyond this (seconds) are taken for garbage
LONGEST = 6 * 3600.0


def bucket(size_gib: float) -> int:
    """The size bucket of an image or copy: 0 for unknown or none, else ceil(log2(GiB)) + 1
    (1: up to 1 GiB, 4: up to 8 GiB, 5: up to 16 GiB ...)."""
    if not size_gib or size_gib <= 0 or not math.isfinite(size_gib):
        return 0
    return max(0, math.ceil(math.log2(size_gib))) + 1


def key(region: str, kind: str, size_gib: float = 0.0) -> str:
    return f"{region or '-'}/{kind}/{bucket(size_gib)}"


def refine(documented: Prior, observations: list[tuple[float, float]]) -> Prior:
    """The prior for the next wait: the documented one until ``MIN_OBSERVATIONS`` were made, then
    from the least midpoint of the observed intervals to the greatest upper bound.

    Midpoints, not lower bounds: a transition seen by the second poll has the immediate poll, 0, as
    its lower bound, which would pull the low end to 0 (where the plan is Packer's rhythm). Every
    observation counts, however wide: dropping the wide ones keeps only the late transitions of a
    sparse plan and narrows the prior onto them (simulated on the documented ranges, that doubled the
    p90 lag; bench/FINDINGS.md). A transition before the low end is still seen, by the immediate poll
    or the first poll inside the prior; one after the high end within a delay (Packer's rhythm)."""
    if len(observations) < MIN_OBSERVATIONS:
        return documented
    hi = max(b for _, b in observations)
    lo = min((a + b) / 2 for a, b in observations)
    return Prior(min(lo, hi), hi)


def _valid(entry: Any) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    obs = entry.get("obs") if isinstance(entry, Mapping) else None
    if not isinstance(obs, list):
        return out
    for pair in obs:
        if (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in pair)):
            a, b = float(pair[0]), float(pair[1])
            if math.isfinite(a) and math.isfinite(b) and 0 <= a <= b <= LONGEST:
                out.append((a, b))
    return out[-KEEP:]


class PollHistory:
    """The history file of one state directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def default(cls, environ: Mapping[str, str] | None = None) -> PollHistory:
        from amibake.journal import state_dir

        return cls(state_dir(environ) / FILE)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return {}
        if not isinstance(data.get("waits"), dict):
            return {}
        waits: dict[str, dict[str, Any]] = {}
        for k, entry in data["waits"].items():
            obs = _valid(entry)
            if isinstance(k, str) and obs:
                t = entry.get("t") if isinstance(entry.get("t"), int | float) else 0.0
                waits[k] = {"t": float(t), "obs": [list(p) for p in obs]}
        return waits

    def observations(self, k: str) -> list[tuple[float, float]]:
        entry = self._read().get(k)
        return [(a, b) for a, b in entry["obs"]] if entry else []

    def prior(self, k: str, documented: Prior) -> Prior:
        return refine(documented, self.observations(k))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.path.with_name(self.path.name + ".lock")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: the rename alone keeps the file whole
            yield
            return
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def record(self, k: str, lower: float, upper: float) -> None:
        """Add one observation (seconds at scale 1); never raises."""
        if not (math.isfinite(lower) and math.isfinite(upper)):
            return
        lower, upper = max(0.0, min(lower, upper)), max(0.0, upper)
        if upper > LONGEST:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._locked():
                waits = self._read()
                entry = waits.setdefault(k, {"t": 0.0, "obs": []})
                entry["obs"] = ([*entry["obs"], [round(lower, 3), round(upper, 3)]])[-KEEP:]
                entry["t"] = time.time()
                if len(waits) > MAX_KEYS:
                    for old in sorted(waits, key=lambda x: waits[x]["t"])[: len(waits) - MAX_KEYS]:
                        del waits[old]
                fd, tmp = tempfile.mkstemp(prefix=".poll-history.", dir=self.path.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        json.dump({"version": VERSION, "waits": waits}, fh, separators=(",", ":"))
                    os.replace(tmp, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
        except OSError as exc:
            log.debug("poll history %s not updated: %s", self.path, exc)
