"""amibake-local next to amazon-ebs on the same image, live, through the emulated-AWS layer (issue #17).

One run, one seed, one scale factor for everything that waits on AWS. Each round builds, in a rotating
order:

* **amazon-ebs, amibake** and **amazon-ebs, Packer 1.6.6**: the source AMI in moto, the "instance" the
  loopback sshd; the same provisioning commands as the local template. Through ``EmulatedAws``
  (``bench/realistic.py``): instance ``pending`` -> ``running``, SSH ready (the ``SshGate``),
  ``stopping`` -> ``stopped``, CreateImage's AMI ``pending`` -> ``available`` (size-dependent, the
  image's size taken as the local disk's 2 GiB), ``shutting-down`` -> ``terminated``;
* **amibake-local**: the cached bootstrap, provisioning in the tree, the disk, the QEMU boot test and the
  EBS direct upload run in real time (they do not scale); the snapshot's sealing after CompleteSnapshot
  (``RealisticEbsDirect``) and the registered AMI's ``pending`` -> ``available`` follow drawn ranges
  (both estimates: bench/FINDINGS.md).

Build ``i`` of every builder sees the same drawn durations (``realistic.draw(seed, i, ...)``). The scale
multiplies the drawn durations and both tools' polling clocks (Packer: AWS_POLL_DELAY_SECONDS = 15 x
scale, a whole number of seconds, so the scale is k/15; amibake: AMIBAKE_POLL_SCALE). The SSH gate is on
at every scale here; neither tool's SSH retry interval scales (Packer: 5 s fixed; amibake: 0.25 s
doubling to 2 s), which the report states.

Reported per builder: a step timeline (the UI lines, stamped on arrival, cut into phases), each phase
marked as an AWS wait (scaled) or local work (real time), with its real-AWS equivalent (AWS phases
divided by the scale, local phases as measured); the per-wait polling lag; wall; EC2 calls (counted at
the emulated-AWS proxy, the emulation's own calls left out) and EBS direct calls.

Usage::

    .venv/bin/python bench/local_vs_ebs.py [--builds 3] [--scale 0.0666667] [--seed 26] [--no-packer]
                                           [--write]

Needs root (amibake-local's tree), mmdebstrap's Debian mirror (the first run bootstraps into
``--cache``, kept between runs), qemu-system-x86_64 + OVMF, Packer 1.6.6 and the stack's sshd user.
``--write`` replaces the generated section of bench/LOCAL.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from realistic import (  # noqa: E402
    PACKER_DELAY,
    EmulatedAws,
    RealisticEbsDirect,
    SshGate,
    _fmt_scale,
    check_scale,
    draw,
    lags_of,
)
from run import PACKER, SOURCE_AMI, Run, run_cmd, warm  # noqa: E402
from tests.stackkit import Sshd, free_port, stop_pid, wait_port  # noqa: E402

AMIBAKE = str(ROOT / ".venv" / "bin" / "amibake")
#: the image's size for the AMI's size-dependent pending time: the local disk's 2 GiB, for both
IMAGE_GIB = 2
MARKER = f"/tmp/amibake-bench-lve-{os.getpid()}"
#: the provisioning commands of both templates (the local one runs them as root in the tree, amazon-ebs
#: as the stack's user on the loopback sshd)
PROVISION = [f"echo bench > {MARKER}", f"cat {MARKER}"]
MARKERS_START = "<!-- local-vs-ebs:start -->"
MARKERS_END = "<!-- local-vs-ebs:end -->"

#: (builder key, label, tool)
BUILDERS = (
    ("ebs-amibake", "amazon-ebs (amibake)", "amibake"),
    ("ebs-packer", "amazon-ebs (Packer 1.6.6)", "packer"),
    ("local", "amibake-local", "amibake"),
)
#: phases: (label, AWS wait?, the pattern of the line that starts it; None: the process start)
EBS_PHASES: tuple[tuple[str, bool, str | None], ...] = (
    ("start-up, prevalidate, key pair, security group", False, None),
    ("RunInstances, wait for `running`", True, r"Launching a source AWS instance"),
    ("wait for SSH (instance boot)", True, r"Waiting for SSH to become available"),
    ("provision over SSH", False, r"Connected to SSH"),
    ("StopInstances, wait for `stopped`", True, r"Stopping the source instance"),
    ("CreateImage, wait for `available`, tags", True, r"Creating AMI|Creating the AMI"),
    ("TerminateInstances, wait, clean up", True, r"Terminating the source AWS instance"),
)
LOCAL_PHASES: tuple[tuple[str, bool, str | None], ...] = (
    ("start-up, prevalidate", False, None),
    ("root filesystem from the bootstrap cache", False, r"Using the cached root filesystem|Bootstrapping"),
    ("provision in the tree (chroot)", False, r"Running the provision hook"),
    ("make the disk", False, r"Making a \d+ GiB GPT disk"),
    ("boot test (QEMU, software emulation)", False, r"Boot test: booting"),
    ("upload (EBS direct)", False, r"Uploading the disk into a new EBS snapshot"),
    ("wait for the snapshot `completed`", True, r"Put \d+ block"),
    ("RegisterImage, wait for `available`", True, r"Registering the AMI"),
)


class Moto:
    """The stack's moto (``tests/motoserver.py``: its emulations) without the request recorder, which
    would write every uploaded block to disk; reset between builds."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}
        self.log = open(log, "wb")  # noqa: SIM115
        argv = [sys.executable, str(ROOT / "tests" / "motoserver.py"), "-H", "127.0.0.1",
                "-p", str(self.port)]
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        if not wait_port(self.port, 60, self.proc):
            raise SystemExit(f"moto did not start (log {log})")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=60).read()

    def stop(self) -> None:
        stop_pid(self.proc.pid)
        self.log.close()


@dataclass
class Result:
    builder: str
    index: int
    wall: float
    #: (label, AWS wait?, seconds measured, seconds on real AWS)
    phases: list[tuple[str, bool, float, float]]
    ec2: Counter[str]
    ebs: Counter[str]
    lags: dict[str, list[float]]
    durations: dict[str, float]
    load: tuple[float, float]
    notes: list[str] = field(default_factory=list)


def load1() -> float:
    return os.getloadavg()[0]


def cut(run: Run, phases: Sequence[tuple[str, bool, str | None]]) -> list[tuple[str, bool, float]]:
    """The phases' durations: each from the first line matching its pattern (after the previous phase's
    start) to the next phase's start; the last one ends with the process."""
    starts: list[float] = []
    i = 0
    for label, _aws, pattern in phases:
        if pattern is None:
            starts.append(0.0)
            continue
        for j in range(i, len(run.lines)):
            if re.search(pattern, run.lines[j][1]):
                starts.append(run.lines[j][0])
                i = j + 1
                break
        else:
            raise SystemExit(f"{run.tool}: no line for the phase {label!r} (/{pattern}/) in:\n{run.text}")
    ends = [*starts[1:], run.wall]
    return [(label, aws, end - start)
            for (label, aws, _p), start, end in zip(phases, starts, ends, strict=True)]


def real_aws(label: str, aws: bool, seconds: float, lags: dict[str, list[float]], scale: float) -> float:
    """A phase's duration on real AWS: local work as measured; an AWS wait divided by the scale (its
    transition and the polling clock are both scaled), except the SSH wait's retry lag, which no tool
    scales (it is the same on AWS): that part is kept as measured."""
    if not aws:
        return seconds
    if "SSH" in label and lags.get("SSH ready"):
        lag = min(seconds, max(0.0, lags["SSH ready"][0]))
        return (seconds - lag) / scale + lag
    return seconds / scale


class Bench:
    def __init__(self, work: Path, scale: Fraction, seed: int, mirror: str, cache: Path) -> None:
        self.work = work
        self.scale = scale
        self.seed = seed
        self.mirror = mirror
        self.cache = cache
        self.moto = Moto(work / "moto.log")
        self.sshd = Sshd(work / "sshd")
        self.sshd.start()
        self.gate = SshGate(self.sshd.port)

    def stop(self) -> None:
        self.gate.close()
        self.sshd.stop()
        self.moto.stop()

    def env(self, tool: str, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PACKER_", "AMIBAKE_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
            AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_CONFIG_FILE=os.devnull, NO_PROXY="127.0.0.1,localhost", CHECKPOINT_DISABLE="1",
            PACKER_CACHE_DIR=str(self.work / "packer_cache"), PACKER_NO_COLOR="1", TMPDIR="/tmp",
            PYTHONPYCACHEPREFIX="/var/tmp/amibake-bench-pycache",
            # kept for the whole run: amibake's poll history learns from the run's earlier builds
            AMIBAKE_STATE_DIR=str(self.work / "state"),
        )
        if tool == "amibake":
            env["AMIBAKE_NO_SERVER"] = "1"
        env.update(extra)
        return env

    def template(self, builder: str, endpoint: str, ssh_port: int) -> Path:
        if builder == "local":
            b: dict[str, object] = {
                "type": "amibake-local", "region": "us-east-1", "ami_name": "bench-local-{{timestamp}}",
                "custom_endpoint_ec2": endpoint, "mirror": self.mirror,
                "bootstrap_cache_dir": str(self.cache),
            }
        else:
            b = {
                "type": "amazon-ebs", "name": "ebs", "region": "us-east-1", "skip_region_validation": True,
                "custom_endpoint_ec2": endpoint, "source_ami": SOURCE_AMI, "instance_type": "t2.micro",
                "ssh_username": self.sshd.user, "ssh_host": "127.0.0.1", "ssh_port": ssh_port,
                "ssh_timeout": "10m", "ami_name": "bench-ebs-{{timestamp}}",
            }
        path = self.work / f"{builder}.json"
        provisioners = [{"type": "shell", "inline": PROVISION}]
        path.write_text(json.dumps({"builders": [b], "provisioners": provisioners}, indent=2))
        return path

    def build(self, builder: str, index: int, emulate: bool = True) -> Result:
        """One build of ``builder`` with build ``index``'s draws (``emulate=False``: moto's instant states,
        for the untimed warm-up)."""
        tool = next(t for k, _label, t in BUILDERS if k == builder)
        frac = self.scale if emulate else Fraction(1, 1000)

        def durations(kind: str, n: int) -> float:
            return float(frac) * draw(self.seed, index, kind, n, IMAGE_GIB)

        def on_running(_iid: str, ready: float) -> None:
            self.gate.open_at(ready + float(frac) * draw(self.seed, index, "ssh_ready", 0))

        if tool == "amibake":
            extra = {"AMIBAKE_POLL_SCALE": repr(float(frac))}
        else:
            extra = {"AWS_POLL_DELAY_SECONDS": str(max(1, int(frac * PACKER_DELAY)))}
        self.moto.reset()
        warm(self.moto.url)
        self.gate.arm()
        l0 = load1()
        proxy = EmulatedAws(self.moto.url, durations, on_running, registered=True)
        with proxy:
            proxy.settled(SOURCE_AMI)
            with RealisticEbsDirect(proxy) as front:
                path = self.template(builder, front.url, self.gate.port)
                argv = [PACKER if tool == "packer" else AMIBAKE, "build", "-color=false", str(path)]
                run = run_cmd(tool, builder, argv, self.env(tool, extra), self.work)
                side = front.side_calls.copy()
                ebs = Counter(r.action for r in front.requests)
        out = self.work / f"{builder}-{index}{'' if emulate else '-warm'}.out"
        out.write_text("\n".join(f"{t:9.3f} {line}" for t, line in run.lines))
        if run.rc != 0 or "AMIs were created" not in run.text:
            raise SystemExit(f"{builder} build {index + 1} failed (exit {run.rc}); output in {out}")
        ec2 = Counter(proxy.calls)
        ec2.subtract(side)
        ec2 = +ec2
        lags = lags_of(proxy, SOURCE_AMI, self.gate)
        phases = [(label, aws, d, real_aws(label, aws, d, lags, float(frac)))
                  for label, aws, d in cut(run, LOCAL_PHASES if builder == "local" else EBS_PHASES)]
        return Result(builder, index, run.wall, phases, ec2, ebs, lags,
                      {f"{rid} {k}": d for (rid, k), d in proxy.duration.items() if rid != SOURCE_AMI},
                      (l0, load1()))


def report(results: dict[str, list[Result]], scale: Fraction, seed: int, builds: int, elapsed: float,
           loads: list[float]) -> str:
    sc = _fmt_scale(scale)
    s = float(scale)
    med = statistics.median
    out = [
        f"### Live run: scale {sc}, {builds} builds per builder, seed {seed}\n",
        f"AWS transitions drawn from the ranges of bench/FINDINGS.md x {sc}; both tools' polling clocks "
        f"x {sc} (Packer: AWS_POLL_DELAY_SECONDS={max(1, int(scale * PACKER_DELAY))}; amibake: "
        f"AMIBAKE_POLL_SCALE={s:.6g}); SSH start-up emulated (the port refuses connections until a drawn "
        f"5-30 s x {sc} after `running`). Local phases run in real time. \"Real AWS\": AWS waits divided "
        "by the scale (the SSH wait's retry lag, which no tool scales, kept as measured), the rest as "
        f"measured. The run took {elapsed / 60:.1f} min; load average (1 min) "
        f"{min(loads):.1f}-{max(loads):.1f} over the builds.\n",
    ]
    labels = {k: label for k, label, _t in BUILDERS}
    keys = [k for k in results if results[k]]

    def per(k: str, f: Callable[[Result], float]) -> list[float]:
        return [f(r) for r in results[k]]

    def aws_x1(r: Result) -> float:
        return sum(x1 for _l, aws, _d, x1 in r.phases if aws)

    def local(r: Result) -> float:
        return sum(d for _l, aws, d, _x in r.phases if not aws)

    rows: list[tuple[str, Callable[[Result], float], str]] = [
        (f"whole build, wall at scale {sc} (s)", lambda r: r.wall, "{:.1f}"),
        (f"of which AWS waits at scale {sc} (s)", lambda r: r.wall - local(r), "{:.1f}"),
        ("of which real-time work (s)", local, "{:.1f}"),
        ("AWS waits on real AWS (s)", aws_x1, "{:.0f}"),
        ("**whole build on real AWS (s)**", lambda r: aws_x1(r) + local(r), "**{:.0f}**"),
        ("EC2 calls", lambda r: sum(r.ec2.values()), "{:.0f}"),
        ("of which RunInstances", lambda r: r.ec2.get("RunInstances", 0), "{:.0f}"),
        ("EBS direct calls", lambda r: sum(r.ebs.values()), "{:.0f}"),
    ]
    out.append("| median of the builds | " + " | ".join(labels[k] for k in keys) + " |")
    out.append("|---|" + "---|" * len(keys))
    for label, f, fmt in rows:
        out.append(f"| {label} | " + " | ".join(fmt.format(med(per(k, f))) for k in keys) + " |")
    out.append("")
    for key in keys:
        rs = results[key]
        out.append(f"**{labels[key]}**: step timeline (median of {len(rs)} builds, seconds)\n")
        out.append(f"| phase | kind | at scale {sc} (median) | min-max | real AWS (median) |")
        out.append("|---|---|---|---|---|")
        for n, (label, aws, _d, _x) in enumerate(rs[0].phases):
            xs = [r.phases[n][2] for r in rs]
            kind = "AWS wait" if aws else "real time"
            out.append(f"| {label} | {kind} | {med(xs):.1f} | {min(xs):.1f}-{max(xs):.1f} | "
                       f"{med([r.phases[n][3] for r in rs]):.1f} |")
        lags: dict[str, list[float]] = {}
        for r in rs:
            for k, v in r.lags.items():
                lags.setdefault(k, []).extend(v)
        calls = Counter[str]()
        ebs = Counter[str]()
        for r in rs:
            calls.update(r.ec2)
            ebs.update(r.ebs)
        n_ = len(rs)
        out.append("")
        lag = ", ".join(f"{k} {med(v):.2f} s" for k, v in lags.items()) or "-"
        out.append(f"Polling lag at scale {sc} (the first answer showing the state - the moment it was "
                   f"ready; median): {lag}. EC2 calls per build: "
                   + ", ".join(f"{k} {v / n_:.1f}" for k, v in sorted(calls.items()))
                   + ("; EBS direct calls per build: "
                      + ", ".join(f"{k} {v / n_:.1f}" for k, v in sorted(ebs.items())) if ebs else "")
                   + ".\n")
    return "\n".join(out) + "\n"


def save(path: Path, results: dict[str, list[Result]], meta: dict[str, object]) -> None:
    """The raw results, so the report can be made again (``--report``)."""
    def raw(r: Result) -> dict[str, object]:
        # not dataclasses.asdict: it would rebuild the Counters from (key, value) pairs
        return {f.name: dict(v) if isinstance(v := getattr(r, f.name), Counter) else v
                for f in dataclasses.fields(r)}

    data = {"meta": meta, "results": {k: [raw(r) for r in rs] for k, rs in results.items()}}
    path.write_text(json.dumps(data, indent=1))


def load(path: Path) -> tuple[dict[str, list[Result]], dict[str, Any]]:
    data = json.loads(path.read_text())
    results: dict[str, list[Result]] = {}
    for k, rs in data["results"].items():
        results[k] = [Result(**{**r, "phases": [tuple(p) for p in r["phases"]], "ec2": Counter(r["ec2"]),
                                "ebs": Counter(r["ebs"]), "load": tuple(r["load"])}) for r in rs]
    return results, data["meta"]


def write(path: Path, text: str) -> None:
    old = path.read_text()
    block = f"{MARKERS_START}\n{text}{MARKERS_END}"
    if MARKERS_START in old and MARKERS_END in old:
        before, rest = old.split(MARKERS_START, 1)
        new = before + block + rest.split(MARKERS_END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--builds", type=int, default=3, help="builds per builder")
    ap.add_argument("--scale", type=float, default=1 / 15,
                    help="the factor on AWS's transition times and both tools' polling clocks (k/15, or 1)")
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--no-packer", action="store_true", help="leave out Packer 1.6.6's amazon-ebs")
    ap.add_argument("--mirror", default=os.environ.get("AMIBAKE_TEST_DEBIAN_MIRROR",
                                                       "http://deb.debian.org/debian"))
    ap.add_argument("--cache", type=Path, default=Path("/var/tmp/amibake-bench-local-cache"),
                    help="amibake-local's bootstrap cache (kept between runs)")
    ap.add_argument("--json", type=Path, default=Path(tempfile.gettempdir()) / "bench-local-vs-ebs.json",
                    help="where the raw results are kept (after every build)")
    ap.add_argument("--report", action="store_true", help="only make the report again from --json")
    ap.add_argument("--write", action="store_true", help="replace the generated section of bench/LOCAL.md")
    args = ap.parse_args()
    if args.report:
        results, meta = load(args.json)
        scale = check_scale(float(meta["scale"]))
        text = report(results, scale, int(meta["seed"]), int(meta["builds"]), float(meta["elapsed"]),
                      [float(x) for x in meta["loads"]]) + f"Command: {meta['command']}.\n"
        print(text)
        if args.write:
            write(ROOT / "bench" / "LOCAL.md", text)
        return 0
    scale = check_scale(args.scale)
    if os.geteuid() != 0:
        raise SystemExit("amibake-local needs root (its root filesystem's owners and the chroot mounts)")
    builders = [k for k, _l, _t in BUILDERS if not (args.no_packer and k == "ebs-packer")]
    args.cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-lve-"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = (f"`.venv/bin/python bench/local_vs_ebs.py --builds {args.builds} --scale {args.scale:.6g} "
               f"--seed {args.seed}{' --no-packer' if args.no_packer else ''}` on {started}, "
               f"{os.cpu_count()} CPUs")
    print(f"workdir {work}; scale {_fmt_scale(scale)}; {args.builds} builds per builder; load {load1():.1f}",
          flush=True)
    b = Bench(work, scale, args.seed, args.mirror, args.cache)
    results: dict[str, list[Result]] = {k: [] for k in builders}
    loads: list[float] = []
    t_start = time.monotonic()
    meta: dict[str, object] = {"scale": float(scale), "seed": args.seed, "builds": 0, "command": command}
    try:
        # untimed: bytecode and page caches, and the bootstrap cache (mmdebstrap) when it is empty
        for k in builders:
            if k == "local" and any(args.cache.glob("rootfs-*.tar")):
                continue
            t0 = time.monotonic()
            b.build(k, 0, emulate=False)
            print(f"  warm-up {k}: {time.monotonic() - t0:.1f} s", flush=True)
        t_start = time.monotonic()
        for i in range(args.builds):
            order = builders[i % len(builders):] + builders[:i % len(builders)]
            for k in order:
                r = b.build(k, i)
                results[k].append(r)
                loads += list(r.load)
                meta.update(builds=i + 1, elapsed=time.monotonic() - t_start, loads=loads)
                save(args.json, results, meta)
                print(f"  {k} build {i + 1}/{args.builds}: {r.wall:.1f} s, EC2 {sum(r.ec2.values())}, "
                      f"load {r.load[0]:.1f}-{r.load[1]:.1f}; "
                      + ", ".join(f"{label} {d:.1f}" for label, _a, d, _x in r.phases), flush=True)
    finally:
        b.stop()
    text = report(results, scale, args.seed, args.builds, time.monotonic() - t_start, loads)
    text += f"Command: {command}.\n"
    print(text)
    if args.write:
        write(ROOT / "bench" / "LOCAL.md", text)
        print("wrote bench/LOCAL.md")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
