"""The coalescer of overlapping state waits (plugins/amazon/describe_batch.py), on a fake clock.

No test here sleeps or asserts on elapsed time: the clock is a counter the test moves, and the one
concurrent case is deterministic in its outcome whichever thread runs first."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from amibake.aws.errors import AwsError
from amibake.plugins.amazon import describe_batch
from amibake.plugins.amazon.access import AwsAccess, Polling
from amibake.plugins.amazon.describe_batch import Batch, Registry, Ticket
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.steps.context import BuildCancelled


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Ec2:
    """What Describe would answer: id -> state; ``gone`` ids are in no answer. Records every call."""

    def __init__(self, states: Mapping[str, str]) -> None:
        self.states = dict(states)
        self.gone: set[str] = set()
        self.calls: list[tuple[str, ...]] = []
        self.fail_many = False

    def single(self, rid: str) -> Any:
        def call() -> str | None:
            self.calls.append((rid,))
            return None if rid in self.gone else self.states.get(rid)
        return call

    def many(self, ids: Sequence[str]) -> dict[str, str]:
        self.calls.append(tuple(ids))
        if self.fail_many:
            raise AwsError("describe_instances", "InternalError", "boom")
        return {i: self.states[i] for i in ids if i in self.states and i not in self.gone}


def poll(batch: Batch[Any], t: Ticket, ec2: Ec2) -> Any:
    return batch.poll(t, ec2.single(t.rid), ec2.many)


def first_polls(batch: Batch[Any], clock: Clock, ec2: Ec2, *rids: str, window: float = 0.1) -> list[Ticket]:
    """Each wait's immediate first poll (alone: its id is not seen yet), its next poll due in 1 s."""
    tickets = [batch.join(r, window) for r in rids]
    for t in tickets:
        assert poll(batch, t, ec2).value == ec2.states[t.rid]
        t.next_due(clock.now + 1.0)
    return tickets


def two_waits() -> tuple[Clock, Ec2, Batch[Any], Ticket, Ticket]:
    """Two pending instances' waits, each past its first poll (:func:`first_polls`)."""
    clock, ec2 = Clock(), Ec2({"i-a": "pending", "i-b": "pending"})
    batch: Batch[Any] = Batch(clock)
    a, b = first_polls(batch, clock, ec2, "i-a", "i-b")
    return clock, ec2, batch, a, b


def test_a_single_wait_makes_exactly_its_own_calls() -> None:
    clock, ec2 = Clock(), Ec2({"i-a": "pending"})
    batch: Batch[Any] = Batch(clock)
    (t,) = first_polls(batch, clock, ec2, "i-a")
    for _ in range(3):
        clock.now += 1.0
        obs = poll(batch, t, ec2)
        assert obs.value == "pending" and not obs.shared and obs.at == clock.now
        t.next_due(clock.now + 1.0)
    assert ec2.calls == [("i-a",)] * 4
    assert (batch.calls, batch.batched, batch.shared) == (4, 0, 0)


def test_waits_due_together_share_one_call_and_each_sees_its_own_state() -> None:
    clock, ec2 = Clock(), Ec2({"i-a": "pending", "i-b": "stopping", "i-c": "pending"})
    batch: Batch[Any] = Batch(clock)
    a, b, c = first_polls(batch, clock, ec2, "i-a", "i-b", "i-c")
    ec2.calls.clear()
    a.next_due(clock.now + 1.0)
    b.next_due(clock.now + 1.05)  # inside b's window of a's poll
    c.next_due(clock.now + 1.5)  # outside c's
    clock.now += 1.0
    ec2.states.update({"i-a": "running", "i-b": "stopped", "i-c": "running"})
    assert poll(batch, a, ec2).value == "running"
    assert ec2.calls == [("i-a", "i-b")]
    clock.now += 0.05
    got = poll(batch, b, ec2)
    assert (got.value, got.shared, got.at) == ("stopped", True, 101.0)  # a's answer, asked at a's poll
    assert ec2.calls == [("i-a", "i-b")]  # b made no call
    clock.now += 0.45
    assert poll(batch, c, ec2).value == "running"
    assert ec2.calls[-1] == ("i-c",)  # nobody else due: its own call, alone
    assert (batch.shared, b.shared, b.calls, a.calls) == (1, 1, 1, 2)


def test_an_observation_counts_once_and_only_since_the_previous_poll() -> None:
    clock, ec2, batch, a, b = two_waits()
    clock.now += 1.0
    b.next_due(clock.now)
    poll(batch, a, ec2)  # carries b along
    ec2.calls.clear()
    assert poll(batch, b, ec2).shared
    b.next_due(clock.now + 1.0)
    clock.now += 1.0
    a.next_due(clock.now + 5.0)
    # b's next poll: a's answer was already used by b's previous poll, so b asks itself
    obs = poll(batch, b, ec2)
    assert not obs.shared and ec2.calls == [("i-b",)]


def test_an_observation_older_than_the_window_is_not_taken() -> None:
    clock, ec2 = Clock(), Ec2({"i-a": "pending", "i-b": "pending"})
    batch: Batch[Any] = Batch(clock)
    a, b = first_polls(batch, clock, ec2, "i-a", "i-b", window=0.1)
    b.next_due(clock.now + 1.05)
    clock.now += 1.0
    poll(batch, a, ec2)
    ec2.calls.clear()
    b.next_due(clock.now + 0.5)  # its schedule moved its poll later: a's answer is now too old for it
    clock.now += 0.5
    assert not poll(batch, b, ec2).shared
    assert ec2.calls == [("i-b",)]


def test_an_unseen_id_polls_alone_and_joins_no_batch() -> None:
    clock, ec2 = Clock(), Ec2({"i-a": "pending", "i-new": "pending"})
    batch: Batch[Any] = Batch(clock)
    (a,) = first_polls(batch, clock, ec2, "i-a")
    new = batch.join("i-new", 0.1)
    new.next_due(clock.now + 1.0)
    clock.now += 1.0
    poll(batch, a, ec2)  # i-new is due too, but no answer has shown it yet
    assert ec2.calls[-1] == ("i-a",)
    poll(batch, new, ec2)  # its first poll: alone, carrying nobody
    assert ec2.calls[-1] == ("i-new",)


def test_an_id_missing_from_a_batched_answer_is_polled_alone_from_then_on() -> None:
    clock, ec2, batch, a, b = two_waits()
    ec2.calls.clear()
    ec2.gone.add("i-a")  # the caller's own id is missing: its own call at once, as it would have made
    b.next_due(clock.now + 1.0)
    clock.now += 1.0
    assert poll(batch, a, ec2).value is None
    assert ec2.calls == [("i-a", "i-b"), ("i-a",)]
    assert poll(batch, b, ec2).shared  # b's part of the answer was good
    ec2.calls.clear()
    a.next_due(clock.now + 1.0)
    b.next_due(clock.now + 1.0)
    clock.now += 1.0
    poll(batch, b, ec2)
    poll(batch, a, ec2)
    assert ec2.calls == [("i-b",), ("i-a",)]  # a joins no batch any more


def test_every_id_missing_from_a_batched_answer_is_polled_alone_from_then_on() -> None:
    clock, ec2 = Clock(), Ec2({"i-a": "pending", "i-b": "pending", "i-c": "pending"})
    batch: Batch[Any] = Batch(clock)
    a, b, c = first_polls(batch, clock, ec2, "i-a", "i-b", "i-c")
    ec2.calls.clear()
    ec2.gone.add("i-b")
    b.next_due(clock.now + 1.0)
    c.next_due(clock.now + 1.0)
    clock.now += 1.0
    assert poll(batch, a, ec2).value == "pending"
    assert poll(batch, c, ec2).shared
    assert poll(batch, b, ec2).value is None  # its own call, alone: no second batched call
    assert ec2.calls == [("i-a", "i-b", "i-c"), ("i-b",)]


def test_a_failed_batched_call_falls_back_to_the_waits_own_call() -> None:
    clock, ec2, batch, a, b = two_waits()
    ec2.calls.clear()
    ec2.fail_many = True
    b.next_due(clock.now + 1.0)
    clock.now += 1.0
    assert poll(batch, a, ec2).value == "pending"
    assert poll(batch, b, ec2).value == "pending"
    assert ec2.calls == [("i-a", "i-b"), ("i-a",), ("i-b",)]


def test_the_wait_s_own_error_propagates_and_releases_the_others() -> None:
    clock, ec2 = Clock(), Ec2({"i-a": "pending"})
    batch: Batch[Any] = Batch(clock)
    t = batch.join("i-a", 0.1)

    def fails() -> str:
        raise AwsError("describe_instances", "InvalidInstanceID.NotFound", "not yet")

    with pytest.raises(AwsError):
        batch.poll(t, fails, ec2.many)
    assert poll(batch, t, ec2).value == "pending"  # nothing left in flight


def test_a_poll_during_a_call_that_carries_its_id_takes_that_answer() -> None:
    clock, ec2, batch, a, b = two_waits()
    b.next_due(clock.now + 1.0)
    clock.now += 1.0
    release, entered = threading.Event(), threading.Event()
    calls: list[tuple[str, ...]] = []

    def slow_many(ids: Sequence[str]) -> dict[str, str]:
        calls.append(tuple(ids))
        entered.set()
        release.wait(30)
        return {i: "running" for i in ids}

    t = threading.Thread(target=batch.poll, args=(a, ec2.single("i-a"), slow_many))
    t.start()
    assert entered.wait(30)
    got: list[Any] = []
    tb = threading.Thread(target=lambda: got.append(batch.poll(b, ec2.single("i-b"), slow_many)))
    tb.start()
    release.set()
    t.join(30)
    tb.join(30)
    # whether b's poll waited for the call in flight or came after it: a's answer, and no call of b's
    assert got[0].value == "running" and got[0].shared
    assert calls == [("i-a", "i-b")] and ec2.calls == [("i-a",), ("i-b",)]


def test_the_registry_batches_per_key_and_forgets_a_batch_when_its_waits_end() -> None:
    reg = Registry(Clock())
    with reg.ticket(("instance", "eu-west-1", "key-1"), "i-a", 0.1) as (b1, _):
        with (reg.ticket(("instance", "eu-west-1", "key-1"), "i-b", 0.1) as (b2, _),
              reg.ticket(("instance", "eu-west-1", "key-2"), "i-c", 0.1) as (b3, _)):
            assert b1 is b2 and b3 is not b1
        assert reg.batch(("instance", "eu-west-1", "key-2")) is None
        assert reg.batch(("instance", "eu-west-1", "key-1")) is b1
    assert reg.batch(("instance", "eu-west-1", "key-1")) is None


def test_the_bench_switch() -> None:
    assert describe_batch.enabled({})
    assert describe_batch.enabled({"AMIBAKE_DESCRIBE_BATCH": "1"})
    assert not describe_batch.enabled({"AMIBAKE_DESCRIBE_BATCH": "0"})


# ---- through the gateway: the batch key and the calls sent ------------------------------------------


class FakeCalls:
    """``Ec2Gateway._call`` for DescribeInstances / DescribeImages: each resource reads pending for its
    first ``flip`` answers, then its ready state. Records the parameters of every call."""

    def __init__(self, flip: int) -> None:
        self.flip = flip
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answers: dict[str, int] = {}
        self.lock = threading.Lock()

    def _state(self, rid: str, ready: str, pending: str) -> str:
        self.answers[rid] = self.answers.get(rid, 0) + 1
        return ready if self.answers[rid] > self.flip else pending

    def __call__(self, op: str, region: str | None = None, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.sent.append((op, params))
            ids = params.get("InstanceIds") or params.get("ImageIds") or params["Filters"][0]["Values"]
            if op == "describe_instances":
                insts = [{"InstanceId": i, "State": {"Name": self._state(i, "running", "pending")}}
                         for i in ids]
                return {"Reservations": [{"Instances": insts}]}
            return {"Images": [{"ImageId": i, "State": self._state(i, "available", "pending")} for i in ids]}


def gateway(monkeypatch: pytest.MonkeyPatch, fake: FakeCalls, **access: Any) -> Ec2Gateway:
    gw = Ec2Gateway(AwsAccess(region="eu-west-1", endpoint_ec2="http://127.0.0.1:1", **access),
                    Polling(delay=0.02, first_delay=0.02))
    monkeypatch.setattr(gw, "_call", fake)
    return gw


def test_a_lone_wait_sends_todays_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMIBAKE_POLL_SCALE", raising=False)
    fake = FakeCalls(flip=2)
    gw = gateway(monkeypatch, fake)
    assert gw.wait_instance("i-0a", ["running"]).state == "running"
    assert gw.wait_image_available("ami-0a").state == "available"
    assert fake.sent == [("describe_instances", {"InstanceIds": ["i-0a"]})] * 3 + [
        ("describe_images", {"ImageIds": ["ami-0a"]})] * 3


def test_a_cancelled_wait_ends_at_once_with_others_in_its_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMIBAKE_POLL_SCALE", raising=False)
    fake = FakeCalls(flip=10**6)
    gw = gateway(monkeypatch, fake)
    cancel = threading.Event()
    cancel.set()
    with (describe_batch.BATCHES.ticket(gw._batch_key("instance", None), "i-other", 0.1),
          pytest.raises(BuildCancelled)):
        gw.wait_instance("i-0a", ["running"], cancel=cancel)
