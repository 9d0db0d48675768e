"""What a running build shows every cleaner, on any machine: it is alive, and what it delivered.

* ``amibake:heartbeat`` (a UTC timestamp): a background thread of each build refreshes it every
  ``AMIBAKE_HEARTBEAT_SECONDS`` (default 60 s) on the build's live EC2 resources, one CreateTags
  call per region. Together with the ``amibake:created`` tag every resource carries from its create
  call, the newest of these timestamps over a run's resources is the run's last sign of life. A run
  is *stale* once that is older than :data:`STALE_PERIODS` refresh periods.
* ``amibake:finished`` (a UTC timestamp): put on each artifact AMI and its snapshots, in every region,
  before the journal's ``finished`` record. ``amibake cleanup`` never deletes a resource carrying it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from amibake.journal import now_iso

if TYPE_CHECKING:
    from amibake.journal import BuildJournal
    from amibake.plugins.amazon.ec2 import Ec2Gateway

log = logging.getLogger("amibake.plugins.amazon.liveness")

HEARTBEAT_TAG = "amibake:heartbeat"
FINISHED_TAG = "amibake:finished"
CREATED_TAG = "amibake:created"
#: a run whose newest heartbeat is older than this many refresh periods is dead
STALE_PERIODS = 5
DEFAULT_PERIOD = 60.0
#: resource kinds whose EC2 id CreateTags accepts (key pairs are tagged by their key-... id only)
TAGGABLE = frozenset({"instance", "security-group", "volume", "image", "snapshot", "launch-template",
                      "spot-request", "fleet"})


def period(environ: Mapping[str, str] | None = None) -> float:
    """The heartbeat refresh period in seconds (``AMIBAKE_HEARTBEAT_SECONDS``, default 60)."""
    env = os.environ if environ is None else environ
    try:
        value = float(env.get("AMIBAKE_HEARTBEAT_SECONDS", "") or DEFAULT_PERIOD)
    except ValueError:
        return DEFAULT_PERIOD
    return value if value > 0 else DEFAULT_PERIOD


def stale_after(environ: Mapping[str, str] | None = None) -> float:
    return STALE_PERIODS * period(environ)


def parse_time(text: str) -> float | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


def last_sign_of_life(tags: Mapping[str, str]) -> float | None:
    """The newest of a resource's heartbeat and creation time."""
    times = [t for t in (parse_time(tags.get(HEARTBEAT_TAG, "")), parse_time(tags.get(CREATED_TAG, "")))
             if t is not None]
    return max(times) if times else None


class Heartbeat:
    """Refresh ``amibake:heartbeat`` on the live EC2 resources of one build, until stopped."""

    def __init__(self, gateway: Ec2Gateway, journal: BuildJournal, every: float | None = None) -> None:
        self.gateway = gateway
        self.journal = journal
        self.every = period() if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"heartbeat-{journal.build}")
        self.beats = 0

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception as exc:  # a missed beat only ages the run; the build goes on
                log.debug("heartbeat of %s failed: %s", self.journal.build, exc)

    def beat(self) -> None:
        from amibake.plugins.amazon.ec2 import AwsError

        by_region: dict[str, list[str]] = {}
        for kind, region, rid in self.journal.live_resources():
            if kind in TAGGABLE and rid:
                by_region.setdefault(region, []).append(rid)
        stamp = {HEARTBEAT_TAG: now_iso()}
        for region, ids in by_region.items():
            try:
                self.gateway.create_tags(ids, stamp, region)
            except AwsError:
                for rid in ids:  # one of them is gone: beat on the others
                    try:
                        self.gateway.create_tags([rid], stamp, region)
                    except AwsError:
                        continue
        self.beats += 1
