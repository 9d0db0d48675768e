"""Emulated-AWS timings: per-wait lag, build wall time and API calls, Packer 1.6.6 and amibake.

moto flips every state at once. Here a state-delaying layer in front of it (``EmulatedAws``, built on
``tests/awsproxy.py``) holds each transition for a duration drawn from the documented ranges of real
AWS timings (``RANGES``; sources in bench/FINDINGS.md), and an ``SshGate`` in front of sshd refuses
connections until the instance has been running for a drawn "SSH ready" time.

Scale: ``scale`` multiplies every drawn duration and both tools' polling clocks. Packer's through
AWS_POLL_DELAY_SECONDS = 15 * scale (Packer 1.6.6 reads it as a whole number of seconds, so 15 * scale
must be an integer: scales 1, 1/15, 2/15 ...). amibake's through AMIBAKE_POLL_SCALE = scale, its
benchmark-only clock hook (``pollschedule.clock_scale``): it multiplies Packer's delay, the priors of
its poll planner and its progress timing, and, unlike AWS_POLL_DELAY_SECONDS, it does not make the
polling explicit, so the planner stays on (an explicit delay would give Packer's fixed schedule).
At scale 1 AMIBAKE_POLL_SCALE=1 is still set: it tells amibake the loopback endpoint emulates AWS's
timings (a non-AWS endpoint otherwise keeps a short backoff). amibake's bench state dir is kept for
the whole run, so its poll history (``pollhistory``) learns from the run's earlier builds, as it
would on a machine that builds often. The SSH connect retry of either tool cannot be scaled
(Packer's is a fixed 5 s), so the SSH gate is used only at scale 1 unless ``ssh_delay`` says
otherwise; every table states the scale and whether SSH start-up was emulated.

Seed: build ``i`` of either tool sees the same drawn durations (``draw(seed, i, kind, n)``).
Lag = the moment a Describe answer (or, for SSH, an accepted connection) first showed the tool the
ready state - the moment it became ready. EC2 calls are counted at moto, behind the proxy.
"""

from __future__ import annotations

import random
import re
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.awsproxy import DELAY_KINDS, AwsProxy
from tests.ebsdirect_emulation import EbsDirectEmulation
from tests.ebsdirect_emulation import _Handler as _EbsHandler

#: seconds at scale 1: (low, high), drawn uniformly (the sources give ranges, not distributions)
RANGES: dict[str, tuple[float, float]] = {
    "instance_pending": (10.0, 40.0),
    "ssh_ready": (5.0, 30.0),
    "instance_stopping": (15.0, 60.0),
    "image_pending": (60.0, 180.0),  # plus IMAGE_SECONDS_PER_GIB x the image's size
    "copy": (180.0, 1200.0),  # CopyImage: the copy's AMI pending time
    "instance_shutting_down": (15.0, 60.0),  # an estimate: the stopping range (bench/FINDINGS.md)
    # the EBS direct path (bench/local_vs_ebs.py), both estimates (bench/FINDINGS.md): a snapshot
    # written with PutSnapshotBlock, from CompleteSnapshot to ``completed``; an AMI registered from a
    # completed snapshot, from RegisterImage to ``available``
    "snapshot_completing": (10.0, 120.0),
    "image_registered": (5.0, 30.0),
}
#: the size-dependent part of an AMI's pending time, seconds per GiB of its volumes (an estimate)
IMAGE_SECONDS_PER_GIB: tuple[float, float] = (2.0, 8.0)
#: the size of basic.json's image (moto's source AMI has one 8 GiB root volume)
IMAGE_GIB = 8
#: Packer's default waiter delay (aws-sdk-go/botocore ec2 waiters: 15 s, 40 attempts)
PACKER_DELAY = 15

#: (resource id prefix, ready state) -> wait label, in build order
WAITS = {
    ("i-", "running"): "instance running",
    ("ssh", "open"): "SSH ready",
    ("i-", "stopped"): "instance stopped",
    ("ami-", "available"): "image available",
    ("copy", "available"): "copy available",
    ("i-", "terminated"): "instance terminated",
    ("registered", "available"): "registered AMI available",
    ("snap-", "completed"): "snapshot completed",
}


def draw(seed: int, build: int, kind: str, n: int, gib: float = IMAGE_GIB) -> float:
    """The scale-1 duration of the ``n``-th transition of ``kind`` in build ``build`` (seeded)."""
    rng = random.Random(f"{seed}/{build}/{kind}/{n}")
    lo, hi = RANGES[kind]
    d = rng.uniform(lo, hi)
    if kind in ("image_pending", "copy"):
        d += gib * rng.uniform(*IMAGE_SECONDS_PER_GIB)
    return d


def check_scale(scale: float) -> Fraction:
    """The scale as a fraction; Packer's AWS_POLL_DELAY_SECONDS (15 * scale) must be whole seconds."""
    frac = Fraction(scale).limit_denominator(1000)
    if not 0 < frac <= 1 or (frac * PACKER_DELAY).denominator != 1:
        raise SystemExit(
            f"--scale {scale}: 15 x scale must be a whole number of seconds (Packer 1.6.6 reads "
            "AWS_POLL_DELAY_SECONDS with strconv.Atoi), so the scale is one of 1, 14/15, ..., 2/15, 1/15"
        )
    return frac


class EmulatedAws(AwsProxy):
    """``AwsProxy`` whose transitions last a drawn duration per resource (not one fixed delay per kind).

    ``durations(kind, n)`` gives the (scaled) duration of the ``n``-th transition of ``kind``;
    CopyImage's AMIs draw from ``"copy"``; with ``registered=True`` RegisterImage's AMIs draw from
    ``"image_registered"`` (an AMI of a snapshot already completed: the EBS direct path), else from
    ``"image_pending"`` as CreateImage's. ``on_running(instance_id, ready_at)`` is told when an
    instance will read ``running`` (the SSH gate opens a drawn time after that).
    """

    def __init__(
        self,
        upstream: str,
        durations: Callable[[str, int], float],
        on_running: Callable[[str, float], None] | None = None,
        registered: bool = False,
    ) -> None:
        # non-zero delays so that the base class rewrites states; the real durations come from _dur
        super().__init__(upstream, delays={k: 1.0 for k in DELAY_KINDS})
        self._durations = durations
        self._on_running = on_running
        self._drawn: Counter[str] = Counter()
        self._copies: set[str] = set()
        self._registered_kind = registered
        self._registered: set[str] = set()
        #: (resource id, delay kind) -> the duration it was given
        self.duration: dict[tuple[str, str], float] = {}
        #: (monotonic time the answer went out, EC2 action) of every successful answer: the timeline
        self.timeline: list[tuple[float, str]] = []

    def settled(self, rid: str) -> None:
        """``rid`` existed long before the build (the source AMI): never hold it."""
        with self._lock:
            self.events.setdefault(rid, {})["created"] = time.monotonic() - 3600
            self.duration[(rid, "image_pending")] = 0.0

    def _dur(self, rid: str, kind: str) -> float:  # called with self._lock held
        key = (rid, kind)
        if key not in self.duration:
            k = kind
            if kind == "image_pending" and rid in self._copies:
                k = "copy"
            elif kind == "image_pending" and rid in self._registered:
                k = "image_registered"
            self.duration[key] = self._durations(k, self._drawn[k])
            self._drawn[k] += 1
        return self.duration[key]

    def _note(self, rid: str, event: str, ready_state: str, delay_kind: str) -> None:
        now = time.monotonic()
        with self._lock:
            ev = self.events.setdefault(rid, {})
            if event in ev:
                return
            ev[event] = now
            ready = now + self._dur(rid, delay_kind)
            self.ready_at.setdefault(rid, {})[ready_state] = ready
        if delay_kind == "instance_pending" and self._on_running is not None:
            self._on_running(rid, ready)

    def _hold(self, rid: str, event: str, delay_kind: str) -> bool:
        with self._lock:
            at = self.events.get(rid, {}).get(event)
            d = self._dur(rid, delay_kind) if at is not None else 0.0
        if at is None:
            ready_state = {"created": "running", "stopped": "stopped", "terminated": "terminated"}
            self._note(rid, event, ready_state.get(event, "available"), delay_kind)
            return True
        return time.monotonic() < at + d

    def observe(self, action: str, body: bytes) -> bytes:
        with self._lock:
            self.timeline.append((time.monotonic(), action))
        if action == "CopyImage":
            ids = re.findall(r"<imageId>(ami-[0-9a-f]+)</imageId>", body.decode("utf-8", "replace"))
            with self._lock:
                self._copies.update(ids)
        if action == "RegisterImage" and self._registered_kind:
            ids = re.findall(r"<imageId>(ami-[0-9a-f]+)</imageId>", body.decode("utf-8", "replace"))
            with self._lock:
                self._registered.update(ids)
        return super().observe(action, body)


class RealisticEbsDirect(EbsDirectEmulation):
    """The EBS direct emulation (``tests/ebsdirect_emulation.py``) in front of an ``EmulatedAws``, with
    AWS's asynchronous sealing: CompleteSnapshot "starts an asynchronous workflow that seals the
    snapshot and moves it to a completed state" (EBS user guide, "Write snapshots"), so
    DescribeSnapshots shows the snapshot ``pending`` for a drawn ``"snapshot_completing"`` duration
    after a successful CompleteSnapshot (the emulation alone shows it ``completed`` at once). The
    moment it becomes ready and the first answer that showed it are kept in ``aws``'s ``ready_at`` and
    ``first_seen_ready``, so ``lags_of`` reports the wait. ``side_calls`` counts the EC2 calls the
    emulation makes itself (deleting the volume moto hangs its snapshot on), which are not the tool's.
    """

    def __init__(self, aws: EmulatedAws) -> None:
        super().__init__(aws.url)
        self.aws = aws
        self._sealed_at: dict[str, float] = {}
        self.side_calls: Counter[str] = Counter()

    def start(self) -> str:
        if self._server is None:
            owner = self

            class Handler(_SealingHandler):
                emulation = owner

            self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._server.daemon_threads = True
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="ebsdirect-realistic", daemon=True)
            self._thread.start()
        return self.url

    def sealing(self, snapshot_id: str) -> None:
        """CompleteSnapshot of ``snapshot_id`` succeeded: it becomes ``completed`` a drawn time later."""
        self.aws._note(snapshot_id, "completed", "completed", "snapshot_completing")
        with self.aws._lock:
            ready = self.aws.ready_at[snapshot_id]["completed"]
        with self._lock:
            self._sealed_at[snapshot_id] = ready

    def snapshot_states(self, xml: bytes) -> bytes:
        xml = super().snapshot_states(xml)
        now = time.monotonic()
        with self._lock:
            held = {sid for sid, ready in self._sealed_at.items() if now < ready}
            done = [sid for sid, ready in self._sealed_at.items() if now >= ready]
        for sid in done:
            if f"<snapshotId>{sid}</snapshotId>".encode() in xml:
                self.aws._seen_ready(sid, "completed")
        if not held:
            return xml
        parts = xml.split(b"<item>")
        for i, part in enumerate(parts):
            m = re.search(rb"<snapshotId>([^<]+)</snapshotId>", part)
            if m and m.group(1).decode() in held:
                parts[i] = part.replace(b"<status>completed</status>", b"<status>pending</status>", 1)
        return b"<item>".join(parts)

    def _delete_side_volume(self, snapshot_id: str, key: str) -> None:
        super()._delete_side_volume(snapshot_id, key)
        with self._lock:
            self.side_calls.update(("DescribeSnapshots", "DeleteVolume"))


class _SealingHandler(_EbsHandler):
    def _CompleteSnapshot(self, req: Any, body: bytes, key: str) -> Any:
        answer = super()._CompleteSnapshot(req, body, key)
        em = self.emulation
        if answer[0] in (200, 202) and isinstance(em, RealisticEbsDirect):
            with em._lock:
                snap = em.snapshots.get(req.snapshot_id)
            if snap is not None and snap.status == "completed":
                em.sealing(req.snapshot_id)
        return answer


class SshGate:
    """A loopback TCP port in front of sshd where nothing listens (connections are refused, as on an
    instance still booting) until ``open_at``'s moment; then connections are relayed to sshd."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = int(probe.getsockname()[1])
        probe.close()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._timer: threading.Timer | None = None
        self.opened_at: float | None = None
        self.first_accept: float | None = None

    def arm(self) -> None:
        """Close the port (refusing connections) and forget the last build."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            lst, self._listener = self._listener, None
            self.opened_at = self.first_accept = None
        if lst is not None:
            # shutdown first: a bare close() leaves the socket listening while the accept thread is
            # blocked in accept() on it, so the next build's early connections would be accepted
            try:
                lst.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            lst.close()

    def open_at(self, when: float) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(max(0.0, when - time.monotonic()), self._open)
            self._timer.daemon = True
            self._timer.start()

    def _open(self) -> None:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(16)
        with self._lock:
            self._listener = lst
            self.opened_at = time.monotonic()
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                conn, _ = lst.accept()
            except OSError:
                return
            with self._lock:
                if self.first_accept is None:
                    self.first_accept = time.monotonic()
            try:
                up = socket.create_connection(("127.0.0.1", self.target), timeout=30)
            except OSError:
                conn.close()
                continue
            up.settimeout(None)
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.arm()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@dataclass
class BuildResult:
    tool: str
    index: int
    wall: float
    calls: list[str]
    #: wait label -> the lag of each wait of that kind in the build (a copy template has several)
    lags: dict[str, list[float]]
    durations: dict[str, float] = field(default_factory=dict)
    #: the build's step timeline: (seconds from its first EC2 answer, what happened)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    @property
    def describe_calls(self) -> int:
        return sum(1 for a in self.calls if a.startswith("Describe"))


def lags_of(proxy: EmulatedAws, source_ami: str, gate: SshGate | None) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for rid, states in proxy.ready_at.items():
        if rid == source_ami:
            continue
        for state, ready in states.items():
            kind = "copy" if rid in proxy._copies else "registered" if rid in proxy._registered else rid
            label = next((v for (p, s), v in WAITS.items() if kind.startswith(p) and s == state), None)
            seen = proxy.first_seen_ready.get(rid, {}).get(state)
            if label and seen is not None:
                out.setdefault(label, []).append(seen - ready)
    if gate is not None and gate.opened_at is not None and gate.first_accept is not None:
        out["SSH ready"] = [gate.first_accept - gate.opened_at]
    return out


def timeline_of(proxy: EmulatedAws, source_ami: str) -> list[tuple[float, str]]:
    """Every call but the Describe polls, and the moment each AMI was first seen available, in
    seconds from the build's first EC2 answer: where the steps overlap."""
    with proxy._lock:
        calls = list(proxy.timeline)
        seen = {rid: dict(states) for rid, states in proxy.first_seen_ready.items()}
        copies = set(proxy._copies)
    if not calls:
        return []
    t0 = min(t for t, _ in calls)
    out = [(t - t0, a) for t, a in calls if not a.startswith("Describe")]
    for rid, states in seen.items():
        if rid != source_ami and "available" in states:
            out.append((states["available"] - t0, f"{'copy' if rid in copies else 'AMI'} seen available"))
    return sorted(out)


def format_timeline(events: list[tuple[float, str]]) -> str:
    """One line: consecutive identical events collapsed (``CreateTags x3 10.1-10.4``)."""
    parts: list[str] = []
    i = 0
    while i < len(events):
        j = i
        while j + 1 < len(events) and events[j + 1][1] == events[i][1]:
            j += 1
        t, what = events[i]
        parts.append(f"{what} {t:.1f}" if i == j else f"{what} x{j - i + 1} {t:.1f}-{events[j][0]:.1f}")
        i = j + 1
    return "; ".join(parts)


def p90(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return xs[0] if xs else float("nan")
    return statistics.quantiles(xs, n=10, method="inclusive")[-1]


def run_realistic(
    b: Any, builds: int, scale: float, seed: int, ssh_delay: str, notes: list[str],
    template: str = "basic.json",
) -> str:
    """``builds`` builds of ``template`` per tool, alternating; returns the markdown section.
    ``template``: a baseline template's name, or a path (``bench/templates/copy3.json``)."""
    from run import SOURCE_AMI, TOOLS, BuildFailed

    frac = check_scale(scale)
    gate_on = ssh_delay == "on" or (ssh_delay == "auto" and frac == 1)
    delay = str(int(frac * PACKER_DELAY))
    gate = SshGate(b.stack.sshd.port) if gate_on else None
    results: dict[str, list[BuildResult]] = {t: [] for t in TOOLS}
    t_start = time.monotonic()
    try:
        for i in range(builds):
            for tool in TOOLS if i % 2 == 0 else tuple(reversed(TOOLS)):

                def durations(kind: str, n: int, i: int = i) -> float:
                    return float(frac) * draw(seed, i, kind, n)

                def on_running(_iid: str, ready: float, i: int = i) -> None:
                    if gate is not None:
                        gate.open_at(ready + float(frac) * draw(seed, i, "ssh_ready", 0))

                if tool == "amibake":
                    env = {"AMIBAKE_POLL_SCALE": repr(float(frac))}
                else:
                    env = {"AWS_POLL_DELAY_SECONDS": delay}
                    if Path(template).name != "basic.json":
                        # setting the delay drops Packer's AMI waiters from 120 attempts to the SDK's
                        # 40, shorter than a scaled copy; 120 is what they have with nothing set
                        env["AWS_MAX_ATTEMPTS"] = "120"
                for attempt in range(3):
                    if gate is not None:
                        gate.arm()
                    proxy = EmulatedAws(b.stack.moto.url, durations, on_running)
                    with proxy:
                        proxy.settled(SOURCE_AMI)
                        try:
                            run = b._build(
                                tool, template, endpoint=proxy.url, env=env,
                                ssh_port=gate.port if gate is not None else None,
                            )
                        except BuildFailed as exc:
                            if attempt == 2:
                                raise SystemExit(str(exc)) from None
                            notes.append(f"emulated AWS: {tool} build {i + 1} repeated: {exc}")
                            continue
                        res = BuildResult(
                            tool, i, run.wall, run.actions, lags_of(proxy, SOURCE_AMI, gate),
                            {f"{rid} {k}": d for (rid, k), d in proxy.duration.items() if rid != SOURCE_AMI},
                            timeline_of(proxy, SOURCE_AMI),
                        )
                    break
                results[tool].append(res)
                print(
                    f"  emulated AWS {tool:<8} build {i + 1}/{builds}: {res.wall:.2f} s, "
                    f"{len(res.calls)} EC2 calls, lags "
                    + ", ".join(f"{k} {' '.join(f'{x:.2f}' for x in v)}" for k, v in res.lags.items()),
                    flush=True,
                )
    finally:
        if gate is not None:
            gate.close()
    elapsed = time.monotonic() - t_start
    return section(results, frac, gate_on, seed, builds, elapsed, Path(template).name)


def _fmt_scale(frac: Fraction) -> str:
    return "1" if frac == 1 else f"{frac.numerator}/{frac.denominator}"


def section(
    results: dict[str, list[BuildResult]], frac: Fraction, gate_on: bool, seed: int, builds: int,
    elapsed: float, template: str = "basic.json",
) -> str:
    sc = _fmt_scale(frac)
    s = float(frac)
    head = (
        f"## Emulated AWS timings, scale {sc} ({template}, {builds} builds per tool, seed {seed})\n\n"
        f"Transitions drawn from the documented ranges (bench/FINDINGS.md) x {sc}; both tools' polling "
        f"clocks x {sc} (Packer: AWS_POLL_DELAY_SECONDS={int(frac * PACKER_DELAY)}; amibake: "
        f"AMIBAKE_POLL_SCALE={float(frac):.6g}, its planner on, its poll history learning over the run). "
        "SSH start-up "
        + ("emulated (the port refuses connections until a drawn 5-30 s after running)."
           if gate_on else
           "not emulated at this scale: neither tool's SSH retry interval can be scaled (Packer 1.6.6: a "
           "fixed 5 s), so sshd is reachable as soon as the instance reads running and the SSH wait is not "
           "in the table.")
        + f" Measured seconds at scale {sc}; \"x1\" columns divide by the scale (the real-AWS equivalent"
        " of a polling lag, which is made of poll delays that scale). The run took "
        f"{elapsed / 60:.1f} min.\n"
    )
    labels = [w for w in WAITS.values() if any(w in r.lags for t in results for r in results[t])]
    lines = [
        f"| wait (scale {sc}) | Packer lag median | p90 | amibake lag median | p90 | amibake/Packer (median) "
        "| Packer median x1 | amibake median x1 |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def lagrow(label: str, p: list[float], a: list[float]) -> str:
        mp, ma = statistics.median(p), statistics.median(a)
        ratio = f"{ma / mp:.2f}" if mp else "-"
        return (
            f"| {label} | {mp:.3f} s | {p90(p):.3f} s | {ma:.3f} s | "
            f"{p90(a):.3f} s | {ratio} | {mp / s:.1f} s | {ma / s:.1f} s |"
        )

    for label in labels:
        p = [x for r in results["packer"] for x in r.lags.get(label, [])]
        a = [x for r in results["amibake"] for x in r.lags.get(label, [])]
        if p and a:
            lines.append(lagrow(label, p, a))
    allp = [x for r in results["packer"] for k, xs in r.lags.items() if k in labels for x in xs]
    alla = [x for r in results["amibake"] for k, xs in r.lags.items() if k in labels for x in xs]
    lines.append(lagrow("**all waits**", allp, alla))
    lines += [
        "",
        f"| per build (scale {sc}) | Packer median | p90 | amibake median | p90 | amibake/Packer (median) |",
        "|---|---|---|---|---|---|",
    ]

    def row(label: str, p: list[float], a: list[float], fmt: str) -> str:
        mp, ma = statistics.median(p), statistics.median(a)
        return (f"| {label} | {fmt.format(mp)} | {fmt.format(p90(p))} | {fmt.format(ma)} | "
                f"{fmt.format(p90(a))} | {ma / mp:.2f} |")

    def col(tool: str, f: Callable[[BuildResult], float]) -> list[float]:
        return [f(r) for r in results[tool]]

    lines.append(row("build wall time (s)", col("packer", lambda r: r.wall), col("amibake", lambda r: r.wall),
                     "{:.2f}"))
    lines.append(row("EC2 API calls", col("packer", lambda r: len(r.calls)),
                     col("amibake", lambda r: len(r.calls)), "{:.0f}"))
    lines.append(row("of which Describe*", col("packer", lambda r: r.describe_calls),
                     col("amibake", lambda r: r.describe_calls), "{:.0f}"))
    calls = {t: Counter(a for r in results[t] for a in r.calls) for t in results}
    n = {t: max(1, len(results[t])) for t in results}
    foot = [
        "\n",
        f"EC2 calls per build (mean over the {builds} builds), Packer: "
        + ", ".join(f"{k} {v / n['packer']:.1f}" for k, v in sorted(calls["packer"].items())),
        "; amibake: "
        + ", ".join(f"{k} {v / n['amibake']:.1f}" for k, v in sorted(calls["amibake"].items()))
        + ".",
    ]
    steps = ["\n", "Step timeline of build 1 (the same drawn durations for both tools), seconds from the "
             "build's first EC2 answer at the proxy; every call but the Describe polls, and when each AMI "
             "was first seen available:\n\n"]
    for tool in results:
        if results[tool] and results[tool][0].timeline:
            steps.append(f"- {tool}: {format_timeline(results[tool][0].timeline)}\n")
    return head + "\n" + "\n".join(lines) + "\n" + "".join(foot) + "\n" + "".join(steps)


def write_section(path: Path, text: str, template: str = "basic.json") -> None:
    """Put ``text`` between the emulated-AWS markers of ``path`` for ``template`` (appended when they
    are missing; basic.json's are ``emulated-aws``, another template's ``emulated-aws-NAME``)."""
    tag = "emulated-aws" if Path(template).name == "basic.json" else f"emulated-aws-{Path(template).stem}"
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    old = path.read_text() if path.exists() else ""
    block = f"{start}\n{text}{end}\n"
    if start in old and end in old:
        before, rest = old.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        new = before + block + ("\n" + after if after else "")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.write_text(new)
