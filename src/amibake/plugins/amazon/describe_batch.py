"""State waits that several builds share on one EC2 client identity, batched into one Describe call.

Builds run as threads of one process (``amibake build`` of a template with several sources, the
resident ``amibake server``). Each state wait (an instance running, stopped or terminated; an AMI or
a copy available) keeps its own schedule: the schedule decides *when* the wait needs an observation
of its resource, when it gives up and what it reports. What this module changes is *how* an
observation is made when waits of one kind overlap on one client identity (region, endpoint,
credentials: the identity of the shared clients, ``amibake.aws.session.CLIENTS``):

* a wait whose poll is due calls Describe for its own id together with the ids of the other waits
  of the :class:`Batch` whose next poll is due within their ``window`` (a batched call: the
  ``instance-id`` / ``image-id`` filter, through which an id EC2 does not show yet is just missing
  from the answer, where a list of ids would fail the whole call with ``InvalidInstanceID.NotFound``
  / ``InvalidAMIID.NotFound``);
* a wait whose poll comes and finds an observation of its id that another wait's call made since its
  own previous observation, and no earlier than ``window`` before its poll was due, takes it as
  this poll's answer and makes no call; while such a call is in flight it waits for its answer (the
  call it would otherwise make itself);
* a single wait, or a wait whose id has not yet been seen by any answer (its first poll, right after
  the create call), makes exactly today's call with its one id (``single``): nothing changes unless
  two or more waits overlap.

An id missing from a batched answer after it had been seen (a resource gone, or not the caller's
own) is polled alone from then on (its wait makes its own call at once, as it would have); a batched
call that fails falls back to the caller's own call. ``AMIBAKE_DESCRIBE_BATCH=0`` turns batching off
(for the benchmark's comparison only, ``bench/realistic.py``).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from amibake.aws.errors import AwsError

log = logging.getLogger("amibake.aws")

T = TypeVar("T")

#: the benchmark's switch: "0" makes every wait poll alone (bench/realistic.py's comparison)
SWITCH_ENV = "AMIBAKE_DESCRIBE_BATCH"
#: at most this many ids in one batched call (one page of an answer, far under EC2's filter limits)
MAX_IDS = 50


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(SWITCH_ENV, "").strip() != "0"


@dataclass(frozen=True)
class Observation(Generic[T]):
    """What a Describe answer said of one id (``value`` None: not in the answer) and when it was asked."""

    at: float
    value: T | None
    #: made by another wait's call
    shared: bool = False


@dataclass(eq=False)
class Ticket:
    """One wait's place in a :class:`Batch`: its id, the moment its next poll is due, the lag it
    accepts (``window``: how long before its poll an observation made for it may be)."""

    rid: str
    window: float
    due: float
    #: when the observation this wait used last was asked (-inf before its first poll)
    last: float = -math.inf
    #: when the observation of the poll in progress was asked (None until it has one)
    observed: float | None = None
    #: its polls answered by another wait's call, and the calls it made
    shared: int = 0
    calls: int = 0

    def next_due(self, at: float) -> None:
        """The wait's schedule has its next poll at ``at`` (monotonic)."""
        self.due = at


@dataclass
class Batch(Generic[T]):
    """The overlapping waits of one kind on one client identity. Thread-safe: the lock guards the
    waits, the observations and the calls in flight; no Describe call is made with it held."""

    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _tickets: list[Ticket] = field(default_factory=list)
    #: id -> the latest observation of it (by any wait's call)
    _obs: dict[str, Observation[T]] = field(default_factory=dict)
    #: id -> the event set when the call that includes it has its answer
    _flights: dict[str, threading.Event] = field(default_factory=dict)
    #: ids some answer has shown (only those join another wait's batched call)
    _seen: set[str] = field(default_factory=set)
    #: ids missing from a batched answer after they had been seen: polled alone
    _solo: set[str] = field(default_factory=set)
    #: Describe calls made (batched ones among them), polls answered by another wait's call
    calls: int = 0
    batched: int = 0
    shared: int = 0

    def join(self, rid: str, window: float) -> Ticket:
        ticket = Ticket(rid, max(0.0, window), self.clock())
        with self._lock:
            self._tickets.append(ticket)
        return ticket

    def leave(self, ticket: Ticket) -> bool:
        """Forget ``ticket``; True when no wait is left."""
        with self._lock:
            if ticket in self._tickets:
                self._tickets.remove(ticket)
            if not any(t.rid == ticket.rid for t in self._tickets):
                self._obs.pop(ticket.rid, None)
                self._seen.discard(ticket.rid)
                self._solo.discard(ticket.rid)
            return not self._tickets and not self._flights

    def _fresh(self, t: Ticket) -> Observation[T] | None:
        o = self._obs.get(t.rid)
        if o is not None and o.at > t.last and o.at >= t.due - t.window:
            return o
        return None

    def _joining(self, t: Ticket, now: float) -> list[str]:
        """The ids another wait's call at ``now`` may carry along with ``t``'s."""
        if t.rid not in self._seen or t.rid in self._solo:
            return [t.rid]
        ids = [t.rid]
        for o in self._tickets:
            if len(ids) >= MAX_IDS:
                break
            if (o is t or o.rid in ids or o.rid in self._flights or o.rid not in self._seen
                    or o.rid in self._solo or o.due > now + o.window or self._fresh(o) is not None):
                continue
            ids.append(o.rid)
        return ids

    def poll(
        self, t: Ticket, single: Callable[[], T | None], many: Callable[[Sequence[str]], Mapping[str, T]],
    ) -> Observation[T]:
        """This poll's observation of ``t.rid``: another wait's, or from a call of its own (``single``
        with its id alone, ``many`` for a batch). ``single``'s errors propagate (the wait's own)."""
        while True:
            with self._lock:
                flight = self._flights.get(t.rid)
                if flight is None:
                    got = self._fresh(t)
                    if got is not None:
                        t.last = t.observed = got.at
                        t.due = math.inf  # until the wait's schedule places its next poll
                        t.shared += 1
                        self.shared += 1
                        return Observation(got.at, got.value, shared=True)
                    now = self.clock()
                    ids = self._joining(t, now)
                    flight = threading.Event()
                    for rid in ids:
                        self._flights[rid] = flight
                    break
            flight.wait()  # another wait's call carries this id: its answer is this poll's
        answer: dict[str, T] = {}
        asked = {rid: now for rid in ids}
        try:
            if len(ids) > 1:
                failed = False
                try:
                    answer = dict(many(ids))
                except AwsError as exc:
                    failed = True
                    log.debug("batched Describe of %d ids failed (%s): the wait polls alone", len(ids), exc)
                self._count(batched=True)
                if not failed:
                    # an id missing (gone, or not seen through the batch's filter) is polled alone
                    # from now on
                    with self._lock:
                        self._solo.update(rid for rid in ids if rid not in answer)
                if t.rid not in answer:
                    # this poll is the wait's own call, as it would have made it
                    asked[t.rid] = self.clock()
                    value = single()
                    self._count()
                    if value is not None:
                        answer[t.rid] = value
            else:
                value = single()
                self._count()
                if value is not None:
                    answer[t.rid] = value
        finally:
            with self._lock:
                t.due = math.inf  # until the wait's schedule places its next poll
                for rid, v in answer.items():
                    self._obs[rid] = Observation(asked.get(rid, now), v)
                    self._seen.add(rid)
                self._flights = {k: v for k, v in self._flights.items() if v is not flight}
            flight.set()
        t.last = t.observed = asked[t.rid]
        t.calls += 1
        return Observation(asked[t.rid], answer.get(t.rid))

    def _count(self, batched: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.batched += batched


class Registry:
    """The process's batches, one per (kind, client identity); a batch lives while a wait is in it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._batches: dict[Hashable, Batch[object]] = {}

    def batch(self, key: Hashable) -> Batch[object] | None:
        with self._lock:
            return self._batches.get(key)

    @contextmanager
    def ticket(self, key: Hashable, rid: str, window: float) -> Iterator[tuple[Batch[object], Ticket]]:
        """A wait's ticket in the batch of ``key`` for as long as the wait lasts."""
        with self._lock:
            batch = self._batches.get(key)
            if batch is None:
                batch = self._batches[key] = Batch(self.clock)
            t = batch.join(rid, window)
        try:
            yield batch, t
        finally:
            with self._lock:
                if batch.leave(t) and self._batches.get(key) is batch:
                    del self._batches[key]


#: the process's batches (shared by every build's gateway)
BATCHES = Registry()
