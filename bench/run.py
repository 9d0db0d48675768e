#!/usr/bin/env python3
"""amibake next to Packer 1.6.6 on the same local stack: one command, one table.

    bench/run [--runs N] [--only build,parallel,upload,cli,realistic] [--out bench/RESULTS.md]

Starts the local stack once (moto server with its request recorder + a real sshd, see
``tests/stackkit.py``) and measures, in the same run, Packer (Debian's ``packer`` 1.6.6) and
amibake on the Packer baseline's templates (``tests/stack/data/packer-baseline/templates``):

1. one build (``basic.json``): wall, CPU (user+sys of the whole tree, from the reaped children's
   rusage), peak PSS of the whole process tree (separate runs, sampled every 10 ms from
   ``/proc/PID/smaps_rollup``), EC2 API calls counted at the server (moto's recorder), and the
   end state (AMI, tags, leftovers) compared between the two tools;
2. ``parallel.json`` (4 builders) and ``parallel16.json`` (16);
3. ``upload-big.json`` (one 256 MiB file) and ``upload-tree.json`` (2,000 files): the upload step
   (from the "Uploading" UI line to the next ``==>`` line, stamped on arrival), against OpenSSH
   ``scp -O`` and ``tar c | ssh tar x`` through an open ControlMaster connection;
4. ``validate`` and ``version`` wall time (interpreter / process start included);
5. emulated AWS timings (``bench/realistic.py``): transitions drawn from documented ranges of real
   AWS timings, at a stated scale applied to the transitions and to both tools' polling clocks; per-wait
   lag (median, p90), build wall time and EC2 calls, ``--builds`` builds per tool.

Before every build moto is reset and warmed (one DescribeImages) and ``/tmp/packer-baseline-*``
is removed. Runs alternate between the tools, so load from elsewhere on the machine hits both.
Prints the table (medians, min-max, ratio amibake/Packer, target) and writes ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from inputs import Inputs, ensure, warm_cache  # noqa: E402
from openssh import OpenSsh  # noqa: E402
from pss import TreeSampler, WorkerCpu  # noqa: E402
from tests.stackkit import Stack  # noqa: E402

BASELINE = Path(os.environ.get("PACKER_BASELINE", ROOT / "tests" / "stack" / "data" / "packer-baseline"))
TEMPLATES = BASELINE / "templates"
AMIBAKE = str(ROOT / ".venv" / "bin" / "amibake")
PACKER = shutil.which("packer") or "packer"
TOOLS = ("packer", "amibake")
#: builds and CLI commands also run through a resident `amibake server` (see src/amibake/server)
TOOLS3 = ("packer", "amibake", "amibake-server")
LABEL = {"packer": "Packer", "amibake": "amibake", "amibake-server": "amibake server"}
SOURCE_AMI = "ami-785db401"
#: --amibake-src: run amibake from this directory instead of the installed src/
AMIBAKE_SRC = ""
#: per-step tables (label -> markdown), filled by section_builds
STEP_TABLES: dict[str, str] = {}
PYCACHE = Path("/var/tmp/amibake-bench-pycache")


@dataclass
class ServerInfo:
    socket: Path
    pid: int = 0
    start_wall: float = 0.0
    idle_pss_mib: float = 0.0


#: the resident server the "amibake-server" runs go through (started in main)
SERVER: ServerInfo | None = None


# ---- one measured command ------------------------------------------------------------------------


@dataclass
class Run:
    tool: str
    what: str
    rc: int
    wall: float
    cpu: float
    lines: list[tuple[float, str]]
    pss_mib: float | None = None
    processes: int | None = None
    actions: list[str] = field(default_factory=list)
    end_state: dict[str, object] | None = None

    @property
    def text(self) -> str:
        return "\n".join(t for _, t in self.lines)

    def step(self, marker: str) -> float | None:
        """Seconds from the first UI line containing ``marker`` to the next ``==>`` line."""
        for i, (t, line) in enumerate(self.lines):
            if line.startswith("==>") and marker in line:
                for t2, nxt in self.lines[i + 1 :]:
                    if nxt.startswith("==>"):
                        return t2 - t
        return None


def run_cmd(
    tool: str, what: str, argv: Sequence[str], env: dict[str, str], cwd: Path, sample_pss: bool = False
) -> Run:
    """Run ``argv``; stamp each output line on arrival; CPU of the whole reaped tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    server = SERVER.pid if SERVER is not None and tool == "amibake-server" else 0
    also = (server,) if server else ()
    sampler = TreeSampler(proc.pid, also=also).start() if sample_pss else None
    workers = WorkerCpu(server).start() if server else None
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        lines.append((time.perf_counter() - t0, raw.decode("utf-8", "replace").rstrip("\n")))
    rc = proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if workers is not None:
        cpu += workers.stop()
    run = Run(tool=tool, what=what, rc=rc, wall=wall, cpu=cpu, lines=lines)
    if sampler is not None:
        peak = sampler.stop()
        run.pss_mib, run.processes = peak.pss_mib, peak.processes
    return run


# ---- the stack -----------------------------------------------------------------------------------


def post(url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return bytes(r.read())


def warm(endpoint: str) -> None:
    """One DescribeImages, so moto's lazy backend creation is not charged to the build."""
    auth = (
        "AWS4-HMAC-SHA256 Credential=testing/20200101/us-east-1/ec2/aws4_request, "
        "SignedHeaders=host, Signature=0"
    )
    body = post(
        endpoint + "/",
        f"Action=DescribeImages&ImageId.1={SOURCE_AMI}&Version=2016-11-15".encode(),
        {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert SOURCE_AMI.encode() in body, body[:300]


def clean_tmp() -> None:
    for p in glob.glob("/tmp/packer-baseline-*"):
        subprocess.run(["rm", "-rf", p], check=False)


def end_state(endpoint: str) -> dict[str, object]:
    """What a build left in EC2, with names and ids left out (they differ by run and tool)."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    images = ec2.describe_images(Owners=["self"])["Images"]
    instances = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    groups = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"]
    return {
        "images": len(images),
        "image_states": sorted({i["State"] for i in images}),
        "image_tag_keys": sorted({t["Key"] for i in images for t in i.get("Tags", [])}),
        "image_description": sorted({i.get("Description", "") for i in images}),
        "tagged_snapshots": sum(1 for s in snaps if s.get("Tags")),
        "instances_not_terminated": sum(1 for i in instances if i["State"]["Name"] != "terminated"),
        "key_pairs": len(ec2.describe_key_pairs()["KeyPairs"]),
        "security_groups": len(groups),
        "volumes": len(ec2.describe_volumes()["Volumes"]),
    }


class BuildFailed(Exception):
    pass


#: builds repeated, and why (shown in the notes)
RETRIES: list[str] = []


def foreign_builds() -> list[str]:
    """Other runs of Packer, or of these templates, on this machine (not started by this process)."""
    mine = {os.getpid()}
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in mine or int(d) in mine:
            continue
        if cmd.startswith(("packer ", "/usr/bin/packer ")) or "packer-baseline/templates" in cmd:
            found.append(f"{d}: {cmd[:80]}")
    return found


def wait_quiet(limit: float = 300.0) -> None:
    """Wait (at most ``limit`` seconds) until no foreign build runs; note how long it took."""
    t0 = time.monotonic()
    while (others := foreign_builds()) and time.monotonic() - t0 < limit:
        time.sleep(0.5)
    waited = time.monotonic() - t0
    if waited > 0.1:
        RETRIES.append(f"waited {waited:.1f} s for another run's build ({others[:1] or 'gone'})")


class Bench:
    def __init__(self, stack: Stack, workdir: Path, inputs: Inputs | None) -> None:
        self.stack = stack
        self.work = workdir
        self.inputs = inputs
        self.endpoint = stack.moto.url

    def env(self, tool: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PACKER_", "AMIBAKE_"))}
        env.update(self.stack.env())
        env.pop("AWS_ENDPOINT_URL", None)  # the templates say where EC2 is (custom_endpoint_ec2)
        # bytecode caching as an installed package has it (this machine sets PYTHONDONTWRITEBYTECODE,
        # which would charge every amibake run for compiling its sources), in a bench-private cache
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PYTHONPYCACHEPREFIX=str(PYCACHE),
            CHECKPOINT_DISABLE="1",
            PACKER_CACHE_DIR=str(self.work / "packer_cache"),
            PACKER_NO_COLOR="1",
            TMPDIR="/tmp",
            # the bench's run journals and fingerprint key stay in its work dir, never the user's
            AMIBAKE_STATE_DIR=str(self.work / "state"),
        )
        if tool == "amibake" and AMIBAKE_SRC:
            env["PYTHONPATH"] = AMIBAKE_SRC  # a modified copy of src/ (prototypes), ahead of the install
        if tool == "amibake-server" and SERVER is not None:
            env["AMIBAKE_SERVER_SOCKET"] = str(SERVER.socket)
        elif tool == "amibake":
            env["AMIBAKE_NO_SERVER"] = "1"  # in-process, even if someone's server is running
        env.update(extra or {})
        return env

    def vars(self, template: str, endpoint: str | None = None, ssh_port: int | None = None) -> list[str]:
        v = {
            "ec2_endpoint": endpoint or self.endpoint,
            "ssh_port": str(ssh_port or self.stack.sshd.port),
            "ssh_username": self.stack.sshd.user,
            "out_dir": str(self.work / "out"),
        }
        if template == "upload-big.json" and self.inputs:
            v["big_file"] = str(self.inputs.big)
        if template == "upload-tree.json" and self.inputs:
            v["tree_dir"] = str(self.inputs.tree)
        return [a for k, val in v.items() for a in ("-var", f"{k}={val}")]

    def argv(
        self, tool: str, verb: str, template: str, endpoint: str | None = None, ssh_port: int | None = None,
        exe: Sequence[str] = (),
    ) -> list[str]:
        """``exe``: the command that runs the tool, when not its installed executable."""
        cmd = list(exe) or [PACKER if tool == "packer" else AMIBAKE]
        color = ["-color=false"] if verb == "build" else []
        return [*cmd, verb, *color, *self.vars(template, endpoint, ssh_port), str(TEMPLATES / template)]

    def build(self, tool: str, template: str, **kw: Any) -> Run:
        """One build; repeated (at most four times) when it failed: another run on this shared
        machine touched the same /tmp/packer-baseline-* files, or (Packer 1.6.6) parallel builds'
        manifest post-processors wrote the one manifest file at the same time and one read the other's
        half-written JSON. Every repetition is listed in the notes."""
        for attempt in range(5):
            wait_quiet()
            try:
                return self._build(tool, template, **kw)
            except BuildFailed as exc:
                if attempt == 4:
                    raise SystemExit(str(exc)) from None
                RETRIES.append(f"{tool} {template}: {exc}; repeated")
                print(f"  retry: {exc}", flush=True)
        raise AssertionError("unreachable")

    def _build(
        self,
        tool: str,
        template: str,
        sample_pss: bool = False,
        check_end: bool = False,
        endpoint: str | None = None,
        env: dict[str, str] | None = None,
        ssh_port: int | None = None,
        exe: Sequence[str] = (),
    ) -> Run:
        clean_tmp()
        self.stack.moto.reset()
        warm(self.endpoint)
        mark = self.stack.moto.mark()
        run = run_cmd(
            tool,
            template,
            self.argv(tool, "build", template, endpoint, ssh_port, exe),
            self.env(tool, env),
            BASELINE,
            sample_pss,
        )
        run.actions = self.stack.moto.ec2_actions(mark)
        if check_end:
            run.end_state = end_state(self.endpoint)
        if run.rc != 0 or "AMIs were created" not in run.text:
            out = self.work / f"failed-{tool}-{template}-{len(RETRIES)}.out"
            out.write_text(run.text)
            raise BuildFailed(f"{tool} build {template} failed (exit {run.rc}); output in {out}")
        return run


# ---- statistics and the table ----------------------------------------------------------------------


def med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def cell(xs: Sequence[float] | None, fmt: str = "{:.3f}") -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(med(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


@dataclass
class Row:
    what: str
    unit: str
    packer: list[float]
    amibake: list[float]
    target: str = ""
    #: the measured ratio the target is about, and its limit (met when ratio <= limit, or >= for "min")
    check: tuple[float, float, str] | None = None
    openssh: list[float] | None = None
    fmt: str = "{:.3f}"

    @property
    def ratio(self) -> str:
        if not self.packer or not self.amibake or med(self.packer) == 0:
            return "-"
        return f"{med(self.amibake) / med(self.packer):.2f}"

    @property
    def verdict(self) -> str:
        if self.check is None:
            return ""
        value, limit, kind = self.check
        ok = value >= limit if kind == "min" else value <= limit
        return f"{value:.2f} {'met' if ok else 'MISSED'}"


def table(rows: list[Row]) -> str:
    out = [
        "| what | unit | Packer 1.6.6 | amibake | amibake/Packer | OpenSSH | target | measured vs target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r.what} | {r.unit} | {cell(r.packer, r.fmt)} | {cell(r.amibake, r.fmt)} | {r.ratio} | "
            f"{cell(r.openssh, r.fmt)} | {r.target.replace('|', chr(92) + '|')} | {r.verdict} |"
        )
    return "\n".join(out)


def ratio_of(a: Sequence[float], b: Sequence[float]) -> float:
    return med(a) / med(b) if a and b and med(b) else float("nan")


# ---- the sections ------------------------------------------------------------------------------


def interleaved(
    runs: int, one: Callable[[str, int], Run], tools: Sequence[str] = TOOLS
) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {t: [] for t in tools}
    for i in range(runs):
        for tool in tools if i % 2 == 0 else tuple(reversed(tools)):
            r = one(tool, i)
            out[tool].append(r)
            print(
                f"  {r.what:<18} {tool:<14} run {i + 1}: {r.wall:.3f} s wall, {r.cpu:.2f} s CPU"
                + (f", {r.pss_mib:.0f} MiB PSS" if r.pss_mib else "")
                + (f", {len(r.actions)} EC2 calls" if r.actions else ""),
                flush=True,
            )
    return out


def _timed_build(b: Bench, template: str, tool: str, i: int) -> Run:
    return b.build(tool, template, check_end=(i == 0))


def _pss_build(b: Bench, template: str, tool: str, i: int) -> Run:
    return b.build(tool, template, sample_pss=True)


_IDS = re.compile(
    r"(ami|i|sg|snap|vol)-[0-9a-f]+|packer_[0-9a-f-]+|baseline-[0-9]+|/tmp/packer-shell\S*|[0-9]+"
)


def steps(run: Run) -> list[tuple[str, float]]:
    """(step line with ids blanked, seconds to the next ``==>`` line); the first row is start-up."""
    marks = [(t, _IDS.sub("#", line.split(": ", 1)[-1])) for t, line in run.lines if line.startswith("==>")]
    out = [("(process start to first step)", marks[0][0] if marks else run.wall)]
    for (t, text), nxt in zip(marks, [*marks[1:], (run.wall, "")], strict=True):
        out.append((text, nxt[0] - t))
    return out


def step_table(runs: dict[str, list[Run]]) -> str:
    """Median seconds per step, both tools, in each tool's order (a step may exist in one tool only)."""
    tools = [t for t in TOOLS3 if t in runs]
    per: dict[str, dict[str, list[float]]] = {t: {} for t in tools}
    order: list[str] = []
    for tool in tools:
        for r in runs[tool]:
            seen: dict[str, int] = {}
            for text, sec in steps(r):
                seen[text] = seen.get(text, 0) + 1
                key = text if seen[text] == 1 else f"{text} ({seen[text]})"
                per[tool].setdefault(key, []).append(sec)
                if key not in order:
                    order.append(key)
    heads = {"packer": "Packer 1.6.6 (s)", "amibake": "amibake (s)", "amibake-server": "amibake server (s)"}
    lines = ["| step (UI line) | " + " | ".join(heads[t] for t in tools) + " |",
             "|---" * (len(tools) + 1) + "|"]
    for key in order:
        cells = [f"{med(v):.3f}" if (v := per[t].get(key)) else "-" for t in tools]
        lines.append(f"| {key[:90]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section_builds(b: Bench, runs: int, templates: Sequence[tuple[str, str]], notes: list[str]) -> list[Row]:
    rows: list[Row] = []
    tools = TOOLS3 if SERVER is not None else TOOLS
    ami = [t for t in tools if t != "packer"]
    for template, label in templates:
        timed = interleaved(runs, partial(_timed_build, b, template), tools)
        mem = interleaved(runs, partial(_pss_build, b, template), tools)
        wall = {t: [r.wall for r in timed[t]] for t in tools}
        cpu = {t: [r.cpu for r in timed[t]] for t in tools}
        pss = {t: [r.pss_mib or 0.0 for r in mem[t]] for t in tools}
        calls = {t: [float(len(r.actions)) for r in timed[t]] for t in tools}
        procs = {t: max(r.processes or 0 for r in mem[t]) for t in tools}
        n = 1 if label == "1 build" else int(label.split()[0])
        limit_wall, wall_target = (0.7, "wall <= 0.7x Packer") if n == 1 else (0.5, "wall <= 0.5x Packer")
        for t in ami:
            rows.append(Row(f"{label}: wall{_via(t)}", "s", wall["packer"], wall[t], wall_target,
                            (ratio_of(wall[t], wall["packer"]), limit_wall, "max")))
        for t in ami:
            rows.append(Row(f"{label}: CPU (user+sys, tree){_via(t)}", "s", cpu["packer"], cpu[t],
                            fmt="{:.2f}"))
        for t in ami:
            pss_check = (ratio_of(pss[t], pss["packer"]), 0.2, "max") if n == 16 else None
            rows.append(Row(f"{label}: peak PSS, whole tree{_via(t)}", "MiB", pss["packer"], pss[t],
                            "PSS <= 0.2x Packer" if n == 16 else "", pss_check, fmt="{:.0f}"))
        limit = 18 * n
        rows.append(
            Row(
                f"{label}: EC2 API calls (at the server)",
                "calls",
                calls["packer"],
                calls["amibake"],
                f"<= {limit}",
                (med(calls["amibake"]), limit, "max"),
                fmt="{:.0f}",
            )
        )
        ends = {t: timed[t][0].end_state for t in tools}
        same = all(ends[t] == ends["packer"] for t in ami)
        notes.append(
            f"{label}: processes at peak: " + ", ".join(f"{LABEL[t]} {procs[t]}" for t in tools)
            + f". End state {'identical' if same else 'DIFFERS'}: Packer {ends['packer']}"
            + "".join("" if ends[t] == ends["packer"] else f"; {LABEL[t]} {ends[t]}" for t in ami)
        )
        if n == 1:
            STEP_TABLES[label] = step_table(timed)
        seq = {t: timed[t][0].actions for t in tools}
        notes.append(f"{label}: EC2 calls, Packer: {_hist(seq['packer'])}; amibake: {_hist(seq['amibake'])}"
                     + ("" if all(seq[t] == seq["amibake"] for t in ami) else
                        f"; amibake server: {_hist(seq.get('amibake-server', []))}"))
    return rows


def _via(tool: str) -> str:
    return ", resident server" if tool == "amibake-server" else ""


def _hist(actions: list[str]) -> str:
    counts: dict[str, int] = {}
    for a in actions:
        counts[a] = counts.get(a, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def section_uploads(b: Bench, runs: int, notes: list[str], work: Path) -> list[Row]:
    assert b.inputs is not None
    inp = b.inputs
    warm_cache(inp)
    mib = inp.big.stat().st_size / (1 << 20)
    big = interleaved(runs, lambda tool, i: b.build(tool, "upload-big.json"))
    tree = interleaved(runs, lambda tool, i: b.build(tool, "upload-tree.json"))
    for tool in TOOLS:
        for r in big[tool]:
            if inp.big_sha256 not in r.text:
                raise SystemExit(f"{tool} upload-big: the remote sha256 is not the input's")
        for r in tree[tool]:
            if inp.tree_sha256 not in r.text:
                raise SystemExit(f"{tool} upload-tree: the remote tree checksum is not the input's")
    step_big = {t: [r.step(": Uploading ") or float("nan") for r in big[t]] for t in TOOLS}
    step_tree = {t: [r.step(": Uploading ") or float("nan") for r in tree[t]] for t in TOOLS}
    # OpenSSH on an open ControlMaster connection, default cipher and AES-GCM
    ossh: dict[str, list[float]] = {"scp": [], "scp-gcm": [], "tar": []}
    default = OpenSsh(work / "ssh", b.stack.sshd.port, b.stack.sshd.user)
    gcm = OpenSsh(work / "ssh", b.stack.sshd.port, b.stack.sshd.user, "aes128-gcm@openssh.com")
    default.start()
    gcm.start()
    try:
        from inputs import file_sha, tree_sha

        big_dst, tree_dst = "/tmp/packer-baseline-ossh-big.bin", "/tmp/packer-baseline-ossh-tree"
        for _ in range(runs):
            for key, ssh in (("scp", default), ("scp-gcm", gcm)):
                clean_tmp()
                ossh[key].append(ssh.scp_file(inp.big, big_dst))
                if file_sha(Path(big_dst)) != inp.big_sha256:
                    raise SystemExit(f"OpenSSH {key}: the copy differs")
            clean_tmp()
            ossh["tar"].append(default.tar_tree(inp.tree, tree_dst))
            if tree_sha(Path(tree_dst)) != inp.tree_sha256:
                raise SystemExit("OpenSSH tar: the copy differs")
            print(
                f"  OpenSSH: scp -O {ossh['scp'][-1]:.3f} s, scp -O aes128-gcm {ossh['scp-gcm'][-1]:.3f} s, "
                f"tar|ssh {ossh['tar'][-1]:.3f} s",
                flush=True,
            )
        clean_tmp()
    finally:
        default.stop()
        gcm.stop()
    rate = {t: [mib / s for s in step_big[t]] for t in TOOLS}
    files = {t: [2000 / s for s in step_tree[t]] for t in TOOLS}
    rows = [
        Row(
            "upload 256 MiB file: upload step",
            "s",
            step_big["packer"],
            step_big["amibake"],
            openssh=ossh["scp"],
        ),
        Row(
            "upload 256 MiB file: throughput",
            "MiB/s",
            rate["packer"],
            rate["amibake"],
            ">= 0.8x OpenSSH scp -O (open conn.)",
            (med(rate["amibake"]) / (mib / med(ossh["scp"])), 0.8, "min"),
            openssh=[mib / s for s in ossh["scp"]],
            fmt="{:.1f}",
        ),
        Row(
            "upload 2,000 files: upload step",
            "s",
            step_tree["packer"],
            step_tree["amibake"],
            openssh=ossh["tar"],
        ),
        Row(
            "upload 2,000 files: rate",
            "files/s",
            files["packer"],
            files["amibake"],
            ">= 1.0x tar c | ssh tar x (open conn.)",
            (med(files["amibake"]) / (2000 / med(ossh["tar"])), 1.0, "min"),
            openssh=[2000 / s for s in ossh["tar"]],
            fmt="{:.0f}",
        ),
        Row(
            "upload 256 MiB file: whole build wall",
            "s",
            [r.wall for r in big["packer"]],
            [r.wall for r in big["amibake"]],
        ),
    ]
    notes.append(
        f"OpenSSH scp -O with aes128-gcm@openssh.com (open conn.): {cell(ossh['scp-gcm'])} s, "
        f"{mib / med(ossh['scp-gcm']):.0f} MiB/s; default cipher {mib / med(ossh['scp']):.0f} MiB/s."
    )
    return rows


def _cmd_run(cmd: Callable[[str, str], Run], what: str, tool: str, i: int) -> Run:
    return cmd(tool, what)


def section_cli(b: Bench, runs: int, notes: list[str]) -> list[Row]:
    from tests.corpus.corpus import entries

    # the corpus' largest JSON template (012, with its var file) and one both tools accept (010),
    # run from the entry's directory as the corpus verdicts were taken
    by_key = {e.dir[:3]: e for e in entries()}
    corpus = {f"validate corpus {e.dir[:30]}": e for k in ("012", "010") if (e := by_key.get(k))}

    def cmd(tool: str, what: str) -> Run:
        exe = PACKER if tool == "packer" else AMIBAKE
        env = b.env(tool)
        if what == "version":
            return run_cmd(tool, what, [exe, "version"], env, BASELINE)
        if what == "validate basic.json":
            return run_cmd(
                tool,
                what,
                [exe, "validate", *b.vars("basic.json"), str(TEMPLATES / "basic.json")],
                env,
                BASELINE,
            )
        e = corpus[what]
        return run_cmd(tool, what, [exe, "validate", *e.args(), e.file], env, e.path)

    whats = ["validate basic.json", *corpus, "version"]
    tools = TOOLS3 if SERVER is not None else TOOLS
    rows = []
    for what in whats:
        res = interleaved(runs, partial(_cmd_run, cmd, what), tools)
        codes = {t: sorted({r.rc for r in res[t]}) for t in tools}
        w = {t: [r.wall for r in res[t]] for t in tools}
        is_validate = what.startswith("validate")
        for t in tools[1:]:
            rows.append(
                Row(
                    f"{what}: wall{_via(t)}",
                    "s",
                    w["packer"],
                    w[t],
                    "<= Packer" if is_validate else "",
                    (ratio_of(w[t], w["packer"]), 1.0, "max") if is_validate else None,
                )
            )
        notes.append(f"{what}: exit codes " + ", ".join(f"{LABEL[t]} {codes[t]}" for t in tools))
    return rows


def section_realistic(b: Bench, args: argparse.Namespace, notes: list[str]) -> str:
    from realistic import run_realistic

    template = args.template
    if (ROOT / "bench" / "templates" / template).is_file():
        # the bench's own: an absolute path wins over TEMPLATES in ``TEMPLATES / template``
        template = str(ROOT / "bench" / "templates" / template)
    return run_realistic(b, args.builds, args.scale, args.seed, args.ssh_delay, notes, template)


# ---- the resident server --------------------------------------------------------------------------


def start_server(b: Bench, directory: Path, notes: list[str]) -> None:
    """`amibake server start` with the bench's environment; its start-up and idle memory go to the notes."""
    from pss import rollup

    global SERVER
    directory.mkdir(mode=0o700)
    info = ServerInfo(directory / "server.sock")
    env = b.env("amibake")
    env.pop("AMIBAKE_NO_SERVER", None)
    t0 = time.perf_counter()
    res = subprocess.run([AMIBAKE, "server", "start", "--socket", str(info.socket), "--idle-timeout", "0"],
                         env=env, capture_output=True, text=True, timeout=120)
    info.start_wall = time.perf_counter() - t0
    m = re.search(r"amibake server (\d+) ready", res.stdout)
    if res.returncode or not m:
        raise SystemExit(f"amibake server did not start: {res.stdout}{res.stderr}")
    info.pid = int(m.group(1))
    info.idle_pss_mib = rollup(info.pid)[0] / 1024
    SERVER = info
    notes.append(f"amibake server: `amibake server start` took {info.start_wall:.2f} s (once, before the "
                 f"runs); the idle server's PSS is {info.idle_pss_mib:.0f} MiB (counted in its rows' PSS)")


def stop_server(b: Bench) -> None:
    global SERVER
    if SERVER is not None:
        subprocess.run([AMIBAKE, "server", "stop", "--socket", str(SERVER.socket)], env=b.env("amibake"),
                       capture_output=True, timeout=60)
        SERVER = None


# ---- main ------------------------------------------------------------------------------------------


def machine() -> str:
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB, {platform.platform()}"


def versions() -> str:
    def first(argv: list[str]) -> str:
        p = subprocess.run(argv, capture_output=True, text=True)
        return (p.stdout or p.stderr).strip().splitlines()[0] if (p.stdout or p.stderr).strip() else "?"

    import moto

    return "; ".join(
        [
            first([PACKER, "version"]),
            first([AMIBAKE, "version"]),
            f"Python {platform.python_version()}",
            f"moto {moto.__version__}",
            first(["ssh", "-V"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="build,parallel,upload,cli,realistic")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--scale", type=float, default=1 / 15,
                    help="emulated AWS: the factor on AWS's transition times and on both tools' polling "
                         "clocks; 15 x scale must be whole seconds (Packer's AWS_POLL_DELAY_SECONDS)")
    ap.add_argument("--builds", type=int, default=20, help="emulated AWS: builds per tool")
    ap.add_argument("--seed", type=int, default=16, help="emulated AWS: the seed of the drawn durations")
    ap.add_argument("--template", default="basic.json",
                    help="emulated AWS: the template (a baseline one, or one of bench/templates: copy3.json)")
    ap.add_argument("--ssh-delay", choices=("auto", "on", "off"), default="auto",
                    help="emulated AWS: emulate SSH start-up (auto: only at scale 1, see bench/realistic.py)")
    ap.add_argument("--inputs", type=Path, default=Path("/var/tmp/amibake-bench-inputs"))
    ap.add_argument("--no-server", action="store_true", help="skip the `amibake server` rows")
    ap.add_argument("--amibake-src", default="", help="run amibake from a modified copy of src/ (prototypes)")
    args = ap.parse_args(argv)
    global AMIBAKE_SRC
    AMIBAKE_SRC = str(Path(args.amibake_src).resolve()) if args.amibake_src else ""
    parts = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="amibake-bench-"))
    (work / "out").mkdir()
    started = datetime.now(UTC)
    load0 = os.getloadavg()
    inputs = ensure(args.inputs) if "upload" in parts else None
    rows: list[Row] = []
    notes: list[str] = []
    print(f"workdir {work}; {args.runs} runs each", flush=True)
    with Stack(work / "stack") as stack:
        b = Bench(stack, work, inputs)
        warm(stack.moto.url)
        if not args.no_server and parts & {"build", "parallel", "cli"}:
            start_server(b, work / "server", notes)
        # one untimed build per tool: bytecode cache, page cache, moto's lazy imports
        for tool in (TOOLS3 if SERVER is not None else TOOLS):
            b.build(tool, "basic.json")
        if "build" in parts:
            rows += section_builds(b, args.runs, [("basic.json", "1 build")], notes)
        if "parallel" in parts:
            rows += section_builds(
                b, args.runs, [("parallel.json", "4 builds"), ("parallel16.json", "16 builds")], notes
            )
        if "upload" in parts:
            rows += section_uploads(b, args.runs, notes, work)
        if "cli" in parts:
            rows += section_cli(b, args.runs, notes)
        realistic = section_realistic(b, args, notes) if "realistic" in parts else ""
        stop_server(b)
    load1 = os.getloadavg()
    text = table(rows) if rows else ""
    print()
    print(text)
    print(realistic)
    for n in notes:
        print(f"- {n}")
    for label, t in STEP_TABLES.items():
        print(f"\nTime per step, {label}:\n{t}")
    if not args.no_write and rows:
        head = [
            "# amibake vs Packer 1.6.6 on the local stack",
            "",
            f"- date: {started:%Y-%m-%d %H:%M} UTC; command: `bench/run --runs {args.runs}`"
            + (f" --only {args.only}" if args.only != ap.get_default("only") else "")
            + (f" --amibake-src {args.amibake_src}" if args.amibake_src else ""),
            *([f"- amibake ran from {AMIBAKE_SRC}, a modified copy of src/"]
              if AMIBAKE_SRC else []),
            f"- machine: {machine()}",
            f"- load average before/after: {load0[0]:.2f} / {load1[0]:.2f} (the machine is shared)",
            f"- versions: {versions()}",
            "- cells: median (min-max) of the runs; ratio = amibake median / Packer median;",
            "  rows \"resident server\": amibake through a running `amibake server` (the launcher plus the",
            "  worker the server forks; PSS counts the server too), the other amibake rows in-process;",
            '  "measured vs target" is the ratio (or count) the target is stated in.',
            "",
            text,
            "",
            "What bounds each missed target, with profiles: `bench/FINDINGS.md`.",
            "",
            "## Notes",
            "",
            *[f"- {n}" for n in notes],
            *[f"- repeated: {r}" for r in RETRIES],
            "",
            *[f"## Time per step, {label} (median seconds from one `==>` UI line to the next)\n\n{t}\n"
              for label, t in STEP_TABLES.items()],
        ]
        args.out.write_text("\n".join(head))
        print(f"wrote {args.out}")
    if not args.no_write and realistic:
        from realistic import write_section

        command = (f"`bench/run --only {args.only} --builds {args.builds} --scale {args.scale:.6g} "
                   f"--seed {args.seed}"
                   + (f" --template {args.template}" if args.template != "basic.json" else "")
                   + (f" --amibake-src {args.amibake_src}" if args.amibake_src else "")
                   + f"` on {started:%Y-%m-%d %H:%M} UTC, load average before/after "
                   f"{load0[0]:.2f} / {os.getloadavg()[0]:.2f}")
        write_section(args.out, realistic + f"\nCommand: {command}.\n"
                      + "".join(f"- {n}\n" for n in notes if n.startswith("emulated AWS")), args.template)
        print(f"wrote the emulated-AWS section of {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
