"""The poll history (plugins/amazon/pollhistory.py) and the planned EC2 waits of the gateway that use it
(plugins/amazon/ec2.py: Ec2Gateway.wait_instance / wait_image_available on a short clock)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.plugins.amazon import pollhistory as ph
from amibake.plugins.amazon import pollschedule as ps
from amibake.plugins.amazon.access import AwsAccess, Polling
from amibake.plugins.amazon.ec2 import Ec2Gateway, WaitTimeout, _aws_endpoint
from amibake.plugins.amazon.records import Image, Instance

# -- the history file ----------------------------------------------------------------------------


def test_buckets_and_keys() -> None:
    assert [ph.bucket(g) for g in (0, -1, float("nan"), 0.5, 1, 2, 8, 9, 16, 1000)] == [
        0, 0, 0, 1, 1, 2, 4, 5, 5, 11]
    assert ph.key("eu-west-1", "image_copy", 8) == "eu-west-1/image_copy/4"
    assert ph.key("", "instance_running") == "-/instance_running/0"


def test_the_documented_prior_until_enough_observations() -> None:
    doc = ps.prior_for("instance_running")
    assert ph.refine(doc, [(1.0, 2.0)] * (ph.MIN_OBSERVATIONS - 1)) == doc
    learnt = ph.refine(doc, [(float(i), float(i) + 1) for i in range(10, 21)])
    assert (learnt.lo, learnt.hi) == (10.5, 21.0)  # the least midpoint, the greatest upper bound
    # a transition seen by the second poll (lower bound 0, the immediate poll) counts at its midpoint
    assert ph.refine(doc, [(0.0, 25.0), (25.0, 40.0), (25.0, 40.0)]) == ps.Prior(12.5, 40.0)


def test_record_and_read_back_bounded(tmp_path: Path) -> None:
    h = ph.PollHistory(tmp_path / "state" / ph.FILE)  # the directory is made on the first write
    for i in range(ph.KEEP + 5):
        h.record("r/instance_running/0", i, i + 1.5)
    obs = h.observations("r/instance_running/0")
    assert len(obs) == ph.KEEP and obs[-1] == (ph.KEEP + 4, ph.KEEP + 5.5) and obs[0] == (5, 6.5)
    for i in range(ph.MAX_KEYS + 10):
        h.record(f"r/k{i}/0", 1, 2)
    data = json.loads(h.path.read_text())
    assert len(data["waits"]) == ph.MAX_KEYS
    assert "r/k0/0" not in data["waits"] and f"r/k{ph.MAX_KEYS + 9}/0" in data["waits"]
    assert h.path.stat().st_size < 64 * 1024


@pytest.mark.parametrize("text", [
    "", "{", "[]", "null", '{"version": 99, "waits": {}}', '{"version": 1, "waits": []}',
    '{"version": 1, "waits": {"a/b/0": {"obs": [[1, "x"], [3, 2], [-1, 2], [1], true]}}}',
    "\udcff".encode("utf-8", "surrogateescape").decode("latin-1"),
])
def test_a_corrupt_file_reads_as_empty_and_is_replaced(tmp_path: Path, text: str) -> None:
    h = ph.PollHistory(tmp_path / ph.FILE)
    h.path.write_bytes(text.encode("latin-1", "replace"))
    assert h.observations("a/b/0") == []
    assert h.prior("a/b/0", ps.prior_for("instance_stopped")) == ps.prior_for("instance_stopped")
    h.record("a/b/0", 1.0, 2.0)
    assert h.observations("a/b/0") == [(1.0, 2.0)]


def test_an_unwritable_state_dir_never_fails_a_wait(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    h = ph.PollHistory(tmp_path / "file" / ph.FILE)  # its parent is a file
    h.record("a/b/0", 1.0, 2.0)  # logged, not raised
    assert h.observations("a/b/0") == []


def test_concurrent_writers_lose_nothing_and_leave_valid_json(tmp_path: Path) -> None:
    h = ph.PollHistory(tmp_path / ph.FILE)

    def writer(n: int) -> None:
        other = ph.PollHistory(h.path)
        for i in range(5):
            other.record(f"r/w{n}/0", i, i + 1)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads(h.path.read_text())
    assert {k: len(v["obs"]) for k, v in data["waits"].items()} == {f"r/w{n}/0": 5 for n in range(6)}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".poll-history.")]  # no temporaries


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.tuples(st.floats(0, 5000), st.floats(0, 5000)), max_size=25),
       st.sampled_from(sorted(ps.PRIORS)), st.floats(0.0, 1.0))
def test_a_learnt_prior_keeps_the_guarantees(obs: list[tuple[float, float]], kind: str, where: float) -> None:
    """Whatever was observed: no more polls than Packer's at any moment, no earlier give-up, and a
    transition inside the learnt prior seen within Packer's delay."""
    prior = ph.refine(ps.prior_for(kind), [(min(a, b), max(a, b)) for a, b in obs])
    n = ps.PACKER_ATTEMPTS[kind]
    times, packer = ps.plan(prior, 15.0, n), ps.fixed(15.0, n)
    assert all(t >= k * 15.0 - 1e-9 for k, t in enumerate(times)) and len(times) <= n
    assert times[-1] >= packer[-1] - 1e-9
    at = prior.lo + where * (prior.hi - prior.lo)
    if at <= packer[-1]:
        lag = ps.lag(times, at)
        assert lag is not None and lag <= 15.0 + 1e-9


def test_the_clock_scale_is_read_from_one_variable() -> None:
    assert ps.clock_scale({}) is None
    assert ps.clock_scale({"AMIBAKE_POLL_SCALE": "0.1"}) == 0.1
    assert ps.clock_scale({"AMIBAKE_POLL_SCALE": "1"}) == 1.0
    for bad in ("0", "-1", "2", "x", "", "nan"):
        assert ps.clock_scale({"AMIBAKE_POLL_SCALE": bad}) is None


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(sorted(ps.PRIORS)), st.floats(0, 3000), st.lists(st.floats(0, 3000), max_size=40))
def test_extra_calls_are_made_only_within_packers_budget(
    kind: str, seen_at: float, asks: list[float]
) -> None:
    """The AMI wait's progress calls: asked for at any polls, granted only while polls + extra calls
    never outnumber Packer's polls over any window from the wait's start."""
    n = ps.PACKER_ATTEMPTS[kind]
    times = [t for t in ps.plan(ps.prior_for(kind, 8), 15.0, n) if t <= seen_at] or [0.0]
    calls: list[float] = []
    extra = 0
    for k, t in enumerate(times):
        calls.append(t)
        if any(abs(a - t) < 30 for a in asks) and ps.calls_fit(times, 15.0, k + 1, extra, t):
            extra += 1
            calls.append(t)
    for t in calls:
        assert sum(1 for c in calls if c <= t) <= int(t // 15.0) + 1, (t, calls)


def test_a_plan_spends_packers_whole_budget_so_no_progress_call_fits() -> None:
    """The plan spends all of Packer's calls by the prior's end: the AMI wait's progress report then
    says the AMI is still pending without its DescribeSnapshots call. A sparser schedule leaves room."""
    times = ps.plan(ps.prior_for("image_available", 8), 15.0, 120)  # 0, 60, then dense from 76 s
    assert not ps.calls_fit(times, 15.0, 2, 0, 60.0)
    sparse = [0.0, 60.0, 120.0]
    assert ps.calls_fit(sparse, 15.0, 2, 0, 60.0) and ps.calls_fit(sparse, 15.0, 2, 2, 60.0)
    assert not ps.calls_fit(sparse, 15.0, 2, 3, 60.0)  # 2 polls + 3 + this one > Packer's 5 by 60 s


def test_which_endpoints_are_aws() -> None:
    assert _aws_endpoint("", {})
    assert _aws_endpoint("https://ec2.eu-west-1.amazonaws.com", {})
    assert _aws_endpoint("vpce-1.ec2.us-east-1.vpce.amazonaws.com", {})
    assert _aws_endpoint("https://ec2.cn-north-1.amazonaws.com.cn/", {})
    assert not _aws_endpoint("http://127.0.0.1:5000", {})
    assert not _aws_endpoint("", {"AWS_ENDPOINT_URL": "http://localhost:4566"})
    assert not _aws_endpoint("", {"AWS_ENDPOINT_URL_EC2": "http://amazonaws.com.evil:1"})


# -- the planned waits ------------------------------------------------------------------------

#: a clock 100x faster than AWS's: Packer's delay is 0.15 s, an instance runs after 0.1-0.4 s
SCALE = 0.01


class FakeEc2:
    """A gateway whose instance (or AMI) reaches its state ``ready_after`` seconds after the first
    look; every poll's moment is kept."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ready_after: float, polling: Polling | None = None,
                 endpoint: str = "") -> None:
        self.gw = Ec2Gateway(AwsAccess(region="eu-west-1", endpoint_ec2=endpoint), polling)
        self.ready_after = ready_after
        self.polls: list[float] = []
        monkeypatch.setattr(self.gw, "describe_instance", self._instance)
        monkeypatch.setattr(self.gw, "describe_images", self._images)

    def _ready(self) -> bool:
        now = time.monotonic()
        self.polls.append(now)
        return now - self.polls[0] >= self.ready_after

    def _instance(self, iid: str, region: str | None = None) -> Instance:
        return Instance(id=iid, state="running" if self._ready() else "pending")

    def _images(self, **kw: object) -> list[Image]:
        return [Image(id="ami-1", name="n", state="available" if self._ready() else "pending")]

    def offsets(self) -> list[float]:
        return [t - self.polls[0] for t in self.polls]


@pytest.fixture
def scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_POLL_SCALE", str(SCALE))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2", raising=False)


def test_an_instant_transition_is_seen_by_the_first_poll(
    scaled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeEc2(monkeypatch, 0.0)
    t0 = time.monotonic()
    assert fake.gw.wait_instance("i-1", ["running"]).state == "running"
    assert len(fake.polls) == 1 and fake.polls[0] - t0 < 0.1


def test_the_instance_wait_follows_the_plan_and_learns(scaled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEc2(monkeypatch, 0.3)  # 30 s at scale 1: inside the documented 10-40 s
    fake.gw.wait_instance("i-1", ["running"])
    planned = ps.plan(ps.prior_for("instance_running").scaled(SCALE), 15.0 * SCALE, 40)
    seen = fake.offsets()
    assert seen == pytest.approx(planned[: len(seen)], abs=0.1)  # the plan's poll times, not a backoff
    assert seen[-1] - 0.3 <= 15.0 * SCALE + 0.05  # within Packer's delay of the transition
    obs = ph.PollHistory.default().observations(ph.key("eu-west-1", "instance_running"))
    assert len(obs) == 1 and obs[0][0] <= 30.0 <= obs[0][1] + 5  # kept at scale 1
    # after enough waits of ~30 s, the prior narrows around them
    for _ in range(ph.MIN_OBSERVATIONS):
        fake = FakeEc2(monkeypatch, 0.3)
        fake.gw.wait_instance("i-1", ["running"])
    learnt = ph.PollHistory.default().prior(ph.key("eu-west-1", "instance_running"),
                                            ps.prior_for("instance_running"))
    # narrower than the documented 10-40 s (what that is worth: bench/sim_history.py)
    assert learnt.lo > 10.0 and learnt.hi < 40.0 + 15.0 and learnt.hi - learnt.lo < 30.0


def test_the_ami_wait_is_planned_too(scaled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEc2(monkeypatch, 0.9)  # 90 s at scale 1
    fake.gw.wait_image_available("ami-1")
    planned = ps.plan(ps.prior_for("image_available", 8).scaled(SCALE), 15.0 * SCALE, 120)
    seen = fake.offsets()
    assert seen == pytest.approx(planned[: len(seen)], abs=0.1)
    assert len(seen) <= len([t for t in ps.fixed(15.0 * SCALE, 120) if t < 0.9]) + 1  # no more than Packer
    # kept under the 8 GiB bucket: the wait does not know the image's size and plans for 8 GiB
    assert ph.PollHistory.default().observations(ph.key("eu-west-1", "image_available", 8))


def test_explicit_polling_is_packers_fixed_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    """aws_polling / AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS: at once, then every delay, on any endpoint;
    giving up after max_attempts polls with the message naming them."""
    polling = Polling(delay=1.0, max_attempts=3, overridden=True)
    fake = FakeEc2(monkeypatch, 1.2, polling, endpoint="http://127.0.0.1:1")
    fake.gw.wait_instance("i-1", ["running"])
    assert fake.offsets() == pytest.approx([0.0, 1.0, 2.0], abs=0.2)  # the old backoff: 0, 0.5, 1.5
    fake = FakeEc2(monkeypatch, 10.0, polling)
    with pytest.raises(WaitTimeout, match=r"\(3 attempts, 1s apart; raise aws_polling"):
        fake.gw.wait_instance("i-1", ["running"])
    assert len(fake.polls) == 3
    assert not ph.PollHistory.default().path.exists()  # explicit waits teach nothing


def test_a_test_endpoint_keeps_the_short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto or a proxy: AWS's timings say nothing about it; polls 0.5 s, 1 s, 2 s ... apart."""
    monkeypatch.delenv("AMIBAKE_POLL_SCALE", raising=False)
    fake = FakeEc2(monkeypatch, 1.2, endpoint="http://127.0.0.1:1")
    fake.gw.wait_instance("i-1", ["running"])
    assert fake.offsets() == pytest.approx([0.0, 0.5, 1.5], abs=0.08)
    assert not ph.PollHistory.default().path.exists()
