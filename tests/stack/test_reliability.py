"""Never leak a resource: amibake killed or interrupted anywhere, AWS faults, SSH faults, secrets.

Each build is a real ``amibake build`` subprocess against the local stack (moto + sshd). Builds are
stopped at precise points with the ``AMIBAKE_PAUSE_AT`` debugging aid (amibake prints
``amibake: paused at <point>`` to stderr and sleeps there), then SIGKILLed or SIGINTed. Scenarios of
one test run concurrently (each with its own AMI name, state directory and run id) to keep the
module fast; at the end of each test the whole account, in every region used, must be back to
what it was after the moto reset.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.awsproxy import AwsProxy
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

AMIBAKE = amibake_exe()
REGIONS = ("us-east-1", "us-west-2")

TEMPLATE: dict[str, Any] = {
    "variables": {"ssh_host": "", "ssh_port": "22", "ssh_username": "", "ami_name": "", "secret": "",
                  "password": "", "ssh_timeout": "60s"},
    "sensitive-variables": ["secret"],
    "builders": [{
        "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
        "instance_type": "t2.micro",
        "ssh_username": "{{user `ssh_username`}}", "ssh_host": "{{user `ssh_host`}}",
        "ssh_port": "{{user `ssh_port`}}", "ssh_timeout": "{{user `ssh_timeout`}}",
        "ssh_password": "{{user `password`}}",
        "temporary_key_pair_name": "amibake_rel_{{uuid}}",
        "ami_name": "{{user `ami_name`}}", "ami_regions": ["us-west-2"],
        "temporary_iam_instance_profile_policy_document": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}],
        },
        "tags": {"Name": "reliability"},
    }],
    "provisioners": [{"type": "shell", "inline": ["echo provisioned {{user `secret`}}"]}],
}

#: where a build can be stopped: after each create call and inside each wait
KILL_POINTS = (
    "after-create-key-pair",
    "after-create-security-group",
    "after-create-instance-profile",
    "after-create-role",
    "after-run-instances",
    "wait-instance-running",
    "after-stop-instances",
    "wait-instance-stopped",
    "after-create-image",
    "wait-image-available",
    "after-copy-image",
    "wait-copy-available",
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reliability") / "template.json"
    path.write_text(json.dumps(TEMPLATE, indent=1))
    return path


# ---- helpers --------------------------------------------------------------------------------


@dataclass
class Build:
    proc: subprocess.Popen[bytes]
    state_dir: Path
    out: Path
    err: Path
    ami_name: str

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def run_id(self) -> str:
        runs = list((self.state_dir / "runs").glob("*.jsonl"))
        assert len(runs) == 1, f"expected one journal in {self.state_dir}: {runs}"
        return runs[0].name.removesuffix(".jsonl")

    def wait_marker(self, point: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        marker = f"amibake: paused at {point}"
        while time.monotonic() < deadline:
            if marker in self.stderr():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"never paused at {point}:\n{self.stdout()[-3000:]}\n{self.stderr()[-2000:]}")


def start_build(stack: Stack, template: Path, base: Path, *, pause_at: str = "", endpoint: str = "",
                ssh_port: int = 0, extra_vars: tuple[str, ...] = (), extra_env: dict[str, str] | None = None,
                args: tuple[str, ...] = ()) -> Build:
    tag = uuid.uuid4().hex[:8]
    work = base / tag
    work.mkdir(parents=True)
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(work / "state"), **(extra_env or {})}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    if pause_at:
        env["AMIBAKE_PAUSE_AT"] = pause_at
    ami_name = f"rel-{tag}"
    cmd = [AMIBAKE, "build", *args,
           "-var", f"ssh_host={stack.env()['AMIBAKE_SSH_HOST']}",
           "-var", f"ssh_port={ssh_port or stack.sshd.port}",
           "-var", f"ssh_username={stack.sshd.user}", "-var", f"ami_name={ami_name}",
           *[a for v in extra_vars for a in ("-var", v)], str(template)]
    out, err = work / "stdout", work / "stderr"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env, cwd=work)
    return Build(proc, work / "state", out, err, ami_name)


def run_cleanup(stack: Stack, build: Build, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(build.state_dir)}
    return subprocess.run([AMIBAKE, "cleanup", *args], env=env, capture_output=True, text=True, timeout=120)


def clients(moto: MotoServer, region: str) -> tuple[Any, Any]:
    kw: dict[str, Any] = {"endpoint_url": moto.url, "region_name": region, "aws_access_key_id": "testing",
                          "aws_secret_access_key": "testing"}
    return boto3.client("ec2", **kw), boto3.client("iam", **kw)


def inventory(moto: MotoServer) -> set[str]:
    """Every resource a build could leave, in every region the builds use (ids, with region)."""
    found: set[str] = set()
    for region in REGIONS:
        ec2, _ = clients(moto, region)
        for r in ec2.describe_instances()["Reservations"]:
            for i in r["Instances"]:
                if i["State"]["Name"] != "terminated":
                    found.add(f"{region}:{i['InstanceId']}")
        found |= {f"{region}:{g['GroupId']}" for g in ec2.describe_security_groups()["SecurityGroups"]
                  if g["GroupName"] != "default"}
        found |= {f"{region}:{k['KeyName']}" for k in ec2.describe_key_pairs()["KeyPairs"]}
        found |= {f"{region}:{v['VolumeId']}" for v in ec2.describe_volumes()["Volumes"]}
        found |= {f"{region}:{i['ImageId']}" for i in ec2.describe_images(Owners=["self"])["Images"]}
        snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        found |= {f"{region}:{s['SnapshotId']}" for s in snaps}
        found |= {f"{region}:{t['LaunchTemplateId']}"
                  for t in ec2.describe_launch_templates()["LaunchTemplates"]}
    _, iam = clients(moto, REGIONS[0])
    found |= {f"iam:{r['RoleName']}" for r in iam.list_roles()["Roles"]}
    found |= {f"iam:{p['InstanceProfileName']}" for p in iam.list_instance_profiles()["InstanceProfiles"]}
    return found


@pytest.fixture
def baseline(moto: MotoServer) -> Iterator[set[str]]:
    yield inventory(moto)


def assert_nothing_left(moto: MotoServer, baseline: set[str], keep: set[str] | None = None) -> None:
    left = inventory(moto) - baseline - (keep or set())
    assert not left, f"resources left behind: {sorted(left)}"


def finished_amis(build: Build) -> set[str]:
    """region:ami ids the build's journal records as finished artifacts (and their snapshots)."""
    from amibake.journal import load_run

    rec = load_run(build.state_dir / "runs" / f"{build.run_id()}.jsonl")
    return {f"{r}:{a}" for arts in rec.finished.values() for r, a in arts.items()}


def artifact_ids(moto: MotoServer, amis: set[str]) -> set[str]:
    out = set(amis)
    for item in amis:
        region, ami = item.split(":")
        ec2, _ = clients(moto, region)
        for img in ec2.describe_images(ImageIds=[ami])["Images"]:
            for b in img.get("BlockDeviceMappings", []):
                if b.get("Ebs", {}).get("SnapshotId"):
                    out.add(f"{region}:{b['Ebs']['SnapshotId']}")
    return out


def parallel(n: int, fn: Any, items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, items))


# ---- SIGKILL at every point, then `amibake cleanup` -------------------------------------------


def test_sigkill_anywhere_then_cleanup_leaves_nothing(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    def scenario(point: str) -> str:
        b = start_build(stack, template, tmp_path, pause_at=point)
        b.wait_marker(point)
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(30)
        run = b.run_id()
        res = run_cleanup(stack, b, "--run", run)
        assert res.returncode == 0, f"{point}: cleanup failed:\n{res.stdout}\n{res.stderr}"
        if KILL_POINTS.index(point) % 4:
            return f"{point}: {res.stdout.strip().splitlines()[-1]}"
        # safe to run twice (checked at a few points, to keep the module fast)
        again = run_cleanup(stack, b, "--run", run)
        assert again.returncode == 0 and "Nothing to clean up" in again.stdout, (
            f"{point}: first:\n{res.stdout}\nagain:\n{again.stdout}")
        return f"{point}: {res.stdout.strip().splitlines()[-1]}"

    summaries = parallel(3, scenario, list(KILL_POINTS))
    assert len(summaries) == len(KILL_POINTS) >= 10
    assert_nothing_left(moto, baseline)


# ---- SIGINT at every point: the build cleans up by itself -------------------------------------


def test_sigint_anywhere_cleans_up_by_itself(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    def scenario(point: str) -> None:
        b = start_build(stack, template, tmp_path, pause_at=point)
        b.wait_marker(point)
        b.proc.send_signal(signal.SIGINT)
        rc = b.proc.wait(90)
        err, out = b.stderr(), b.stdout()
        assert rc == 130, f"{point}: exit {rc}\n{out[-3000:]}\n{err[-2000:]}"
        assert "Interrupt received" in err + out
        assert "Cleanup after the interruption removed" in out, out[-2000:]
        assert "Left behind" not in out + err

    parallel(3, scenario, list(KILL_POINTS))
    assert_nothing_left(moto, baseline)


def test_sigterm_exits_143_and_second_interrupt_is_refused(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    # the cleanup pauses (10 s, not cut short by signals) so that the second SIGTERM lands during it
    b = start_build(stack, template, tmp_path, pause_at="wait-image-available,cleanup",
                    extra_env={"AMIBAKE_PAUSE_SECONDS": "10"})
    b.wait_marker("wait-image-available")
    b.proc.send_signal(signal.SIGTERM)
    b.wait_marker("cleanup")
    b.proc.send_signal(signal.SIGTERM)
    rc = b.proc.wait(90)
    err, out = b.stderr(), b.stdout()
    assert rc == 143, err  # the first signal's exit code, once the cleanup has finished
    assert err.count("Interrupt received") == 1, err
    assert "Cleanup in progress: interrupting now would leave resources behind" in err, err  # refused
    assert "Exiting without finishing cleanup" not in err, err
    assert "Cleanup after the interruption removed" in out, out[-2000:]
    assert_nothing_left(moto, baseline)


def test_third_interrupt_exits_at_once_naming_what_is_left(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    # pause at the start of the cleanup itself, so that the 2nd and 3rd Ctrl-C land during it
    b = start_build(stack, template, tmp_path, pause_at="after-create-image,cleanup",
                    extra_env={"AMIBAKE_PAUSE_SECONDS": "20"})
    b.wait_marker("after-create-image")
    b.proc.send_signal(signal.SIGINT)
    b.wait_marker("cleanup")
    b.proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    b.proc.send_signal(signal.SIGINT)
    rc = b.proc.wait(30)
    err = b.stderr()
    assert rc == 130, err
    assert "Cleanup in progress" in err
    assert f"amibake cleanup --run {b.run_id()}" in err
    assert "instance i-" in err  # what remains is named
    res = run_cleanup(stack, b, "--run", b.run_id())
    assert res.returncode == 0, res.stdout + res.stderr
    assert_nothing_left(moto, baseline)


# ---- AWS faults -------------------------------------------------------------------------------


def test_twenty_builds_through_throttling_and_5xx(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    proxy = AwsProxy(moto.url, throttle_rate=0.20, error_rate=0.05, seed=7,
                     delays={"instance_pending": 0.3, "image_pending": 0.3, "instance_stopping": 0.2})
    url = proxy.start()
    try:
        def lane(n: int) -> list[set[str]]:
            kept = []
            for _ in range(5):
                b = start_build(stack, template, tmp_path, endpoint=url)
                rc = b.proc.wait(180)
                assert rc == 0, f"build failed (exit {rc}):\n{b.stdout()[-4000:]}\n{b.stderr()[-2000:]}"
                amis = finished_amis(b)
                assert {a.split(":")[0] for a in amis} == set(REGIONS), amis
                kept.append(artifact_ids(moto, amis))
            return kept

        lanes = parallel(4, lane, [0, 1, 2, 3])
    finally:
        proxy.stop()
    keep = {x for lane_sets in lanes for s in lane_sets for x in s}
    assert sum(len(x) for x in lanes) == 20
    assert proxy.faults["throttle"] > 20 and proxy.faults["error"] > 0, proxy.faults
    # the end state: exactly the 40 AMIs (+ snapshots) of the 20 builds, no temporaries
    assert len([k for k in keep if ":ami-" in k]) == 40
    assert_nothing_left(moto, baseline, keep)


# ---- SSH faults -------------------------------------------------------------------------------


class LateForwarder:
    """A loopback port that refuses connections for ``delay`` seconds, then forwards to ``target``."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        if self._stop.wait(self.delay):
            return
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(16)
        srv.settimeout(0.2)
        with srv:
            while not self._stop.is_set():
                try:
                    conn, _ = srv.accept()
                except TimeoutError:
                    continue
                up = socket.create_connection(("127.0.0.1", self.target))
                for a, b in ((conn, up), (up, conn)):
                    threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_sshd_unreachable_for_ten_seconds(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    fwd = LateForwarder(stack.sshd.port, 10.0)
    fwd.start()
    try:
        t0 = time.monotonic()
        b = start_build(stack, template, tmp_path, ssh_port=fwd.port)
        rc = b.proc.wait(120)
        took = time.monotonic() - t0
    finally:
        fwd.stop()
    assert rc == 0, b.stdout()[-3000:] + b.stderr()[-2000:]
    assert took >= 10
    assert "provisioned" in b.stdout()
    assert_nothing_left(moto, baseline, artifact_ids(moto, finished_amis(b)))


# ---- secrets ----------------------------------------------------------------------------------


def test_canary_secrets_never_appear(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    canary = "canary-" + uuid.uuid4().hex
    password = "pw-" + uuid.uuid4().hex
    secret_key = "sk-" + uuid.uuid4().hex
    proxy = AwsProxy(moto.url)
    url = proxy.start()
    log = tmp_path / "debug.log"
    outputs: list[str] = []
    try:
        for args in ((), ("-machine-readable",)):
            b = start_build(stack, template, tmp_path, endpoint=url, args=args,
                            extra_vars=(f"secret={canary}", f"password={password}"),
                            extra_env={"AMIBAKE_LOG": "1", "AMIBAKE_LOG_PATH": str(log),
                                       "AWS_SECRET_ACCESS_KEY": secret_key})
            rc = b.proc.wait(120)
            assert rc == 0, b.stdout()[-3000:] + b.stderr()[-2000:]
            outputs += [b.stdout(), b.stderr()]
            assert "provisioned" in b.stdout()
            outputs += [p.read_text(errors="replace") for p in b.state_dir.rglob("*") if p.is_file()]
    finally:
        proxy.stop()
    assert log.exists() and log.stat().st_size > 0, "AMIBAKE_LOG wrote no debug log"
    outputs.append(log.read_text(errors="replace"))
    blob = "\n".join(outputs)
    assert canary not in blob
    assert password not in blob
    assert "PRIVATE KEY" not in blob
    assert secret_key not in blob
    assert "DEBUG" in blob  # the debug log did log
