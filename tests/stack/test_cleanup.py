"""``amibake cleanup`` never destroys the wrong thing and always finishes (issues #19 and #18).

Real ``amibake build`` and ``amibake cleanup`` subprocesses against the local stack (moto + sshd),
each with its own state directory (``AMIBAKE_STATE_DIR`` under ``tmp_path``). Builds are stopped at
named points with ``AMIBAKE_PAUSE_AT``; ``cleanup`` has its own point, ``cleanup-journals-read``,
where it waits for SIGCONT. Every test ends with the account as it found it, except the artifacts
that must be kept.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amibake.journal import load_run
from tests.awsproxy import AwsProxy
from tests.stack.test_reliability import TEMPLATE, artifact_ids, clients, inventory
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

AMIBAKE = [sys.executable, "-m", "amibake"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cleanup") / "template.json"
    path.write_text(json.dumps(TEMPLATE, indent=1))
    return path


@pytest.fixture
def baseline(moto: MotoServer) -> Iterator[set[str]]:
    yield inventory(moto)


@dataclass
class Build:
    proc: subprocess.Popen[bytes]
    work: Path
    state_dir: Path
    ami_name: str

    def text(self, name: str) -> str:
        return (self.work / name).read_text(errors="replace")

    def journal(self) -> Path:
        """This build's journal (the state dir may be shared): the one naming its AMI."""
        mine = f'"ami_name": "{self.ami_name}"'
        runs = [p for p in (self.state_dir / "runs").glob("*.jsonl") if mine in p.read_text()]
        assert len(runs) == 1, runs
        return runs[0]

    def run_id(self) -> str:
        return self.journal().name.removesuffix(".jsonl")

    def wait_marker(self, point: str, timeout: float = 90.0) -> None:
        wait_marker(self.proc, self.work / "stderr", point, timeout)

    def finish(self, timeout: float = 180.0) -> int:
        return self.proc.wait(timeout)


def wait_marker(proc: subprocess.Popen[bytes], err: Path, point: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    marker = f"amibake: paused at {point}"
    while time.monotonic() < deadline:
        if marker in err.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"never paused at {point}:\n{err.read_text(errors='replace')[-3000:]}")


def start_build(stack: Stack, template: Path, base: Path, *, state_dir: Path | None = None,
                pause_at: str = "", pause_seconds: float = 3600, env: dict[str, str] | None = None) -> Build:
    tag = uuid.uuid4().hex[:8]
    work = base / f"build-{tag}"
    work.mkdir(parents=True)
    state = state_dir or work / "state"
    full = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(state), **(env or {})}
    if pause_at:
        full["AMIBAKE_PAUSE_AT"] = pause_at
        full["AMIBAKE_PAUSE_SECONDS"] = str(pause_seconds)
    cmd = [*AMIBAKE, "build", "-var", f"ssh_host={stack.env()['AMIBAKE_SSH_HOST']}",
           "-var", f"ssh_port={stack.sshd.port}", "-var", f"ssh_username={stack.sshd.user}",
           "-var", f"ami_name=cln-{tag}", str(template)]
    with open(work / "stdout", "wb") as o, open(work / "stderr", "wb") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=full, cwd=work)
    return Build(proc, work, state, f"cln-{tag}")


def killed_at(stack: Stack, template: Path, base: Path, point: str, **kw: Any) -> Build:
    b = start_build(stack, template, base, pause_at=point, **kw)
    b.wait_marker(point)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    return b


def cleanup(stack: Stack, state_dir: Path, *args: str, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(state_dir), **(env or {})}
    return subprocess.run([*AMIBAKE, "cleanup", *args], env=full, capture_output=True, text=True,
                          timeout=timeout)


def run_resources(moto: MotoServer, run_id: str, regions: tuple[str, ...] = ("us-east-1", "us-west-2")
                  ) -> set[str]:
    """region:id of every EC2 resource tagged with ``run_id`` that still exists."""
    found: set[str] = set()
    flt = [{"Name": "tag:amibake:run-id", "Values": [run_id]}]
    for region in regions:
        ec2, _ = clients(moto, region)
        for r in ec2.describe_instances(Filters=flt)["Reservations"]:
            found |= {f"{region}:{i['InstanceId']}" for i in r["Instances"]
                      if i["State"]["Name"] != "terminated"}
        groups = ec2.describe_security_groups(Filters=flt)["SecurityGroups"]
        found |= {f"{region}:{g['GroupId']}" for g in groups}
        found |= {f"{region}:{k['KeyName']}" for k in ec2.describe_key_pairs(Filters=flt)["KeyPairs"]}
        images = ec2.describe_images(Owners=["self"], Filters=flt)["Images"]
        found |= {f"{region}:{i['ImageId']}" for i in images}
        found |= {f"{region}:{s['SnapshotId']}"
                  for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"]}
    return found


def assert_nothing_left(moto: MotoServer, baseline: set[str], keep: set[str] | None = None) -> None:
    left = inventory(moto) - baseline - (keep or set())
    assert not left, f"resources left behind: {sorted(left)}"


def dead_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def removed_lines(out: str) -> str:
    """The lines that say a resource was removed."""
    return "\n".join(line for line in out.splitlines() if line.startswith("Removed "))


def rewrite_journal(path: Path, keep: Any) -> None:
    lines = [e for e in journal_lines(path) if keep(e)]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))


# ---- #19 finding 1: finished means finished, in the cloud too -------------------------------


def test_a_finished_build_is_marked_in_aws_and_kept_when_its_journal_is_damaged_or_lost(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = start_build(stack, template, tmp_path)
    assert b.finish() == 0, b.text("stdout")[-3000:] + b.text("stderr")[-2000:]
    rec = load_run(b.journal())
    amis = {f"{r}:{a}" for arts in rec.finished.values() for r, a in arts.items()}
    assert {a.split(":")[0] for a in amis} == {"us-east-1", "us-west-2"}
    artifacts = artifact_ids(moto, amis)
    assert len(artifacts) >= 4  # 2 AMIs and their snapshots
    for item in artifacts:  # the mark is on every artifact AMI and snapshot, in each region
        region, rid = item.split(":")
        ec2, _ = clients(moto, region)
        tags = (ec2.describe_images(ImageIds=[rid])["Images"][0]["Tags"] if rid.startswith("ami-")
                else ec2.describe_snapshots(SnapshotIds=[rid])["Snapshots"][0]["Tags"])
        assert any(t["Key"] == "amibake:finished" and t["Value"].startswith("20") for t in tags), (item, tags)

    # the journal's finished record torn off (as a full disk at the very end did)
    rewrite_journal(b.journal(), lambda e: e["ev"] != "finished")
    res = cleanup(stack, b.state_dir, "--older-than", "0s")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Removed image" not in res.stdout and "Removed snapshot" not in res.stdout, res.stdout
    assert "marked amibake:finished" in res.stdout
    assert artifacts <= inventory(moto)

    # the journal lost altogether; a cleaner elsewhere, with a stale heartbeat and any age
    b.journal().unlink()
    res = cleanup(stack, tmp_path / "elsewhere", "--older-than", "0s",
                  env={"AMIBAKE_HEARTBEAT_SECONDS": "0.01"})
    assert res.returncode == 0, res.stdout + res.stderr
    assert not removed_lines(res.stdout), res.stdout
    assert artifacts <= inventory(moto)
    assert_nothing_left(moto, baseline, artifacts)


def test_cleanup_keeps_exactly_the_listed_artifacts_of_a_finished_build(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = start_build(stack, template, tmp_path)
    assert b.finish() == 0, b.text("stdout")[-3000:]
    run = b.run_id()
    rec = load_run(b.journal())
    artifacts = artifact_ids(moto, {f"{r}:{a}" for arts in rec.finished.values() for r, a in arts.items()})
    # a second AMI of the run, as a retried CreateImage whose first answer was lost makes
    ec2, _ = clients(moto, "us-east-1")
    ami = rec.finished[next(iter(rec.finished))]["us-east-1"]
    dup = ec2.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name=f"dup-{run}")["ImageId"]
    snaps = [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(ImageIds=[dup])["Images"][0]
             ["BlockDeviceMappings"] if m.get("Ebs", {}).get("SnapshotId")]
    own = [{"Key": "amibake:run-id", "Value": run}, {"Key": "amibake:build", "Value": "amazon-ebs"},
           {"Key": "amibake:created", "Value": "2026-01-01T00:00:00.000000Z"}]
    ec2.create_tags(Resources=[dup, *snaps], Tags=own)

    res = cleanup(stack, b.state_dir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Removed image {dup} (us-east-1) of run {run}" in res.stdout, res.stdout
    # each kept AMI is reported once (#19 finding 10)
    for item in artifacts:
        if ":ami-" in item:
            rid = item.split(":")[1]
            kept = [line for line in res.stdout.splitlines() if line.startswith("Kept")]
            assert sum(f"image {rid} " in line for line in kept) == 1, res.stdout
    assert_nothing_left(moto, baseline, artifacts)


# ---- #19 finding 2: liveness across machines -----------------------------------------------


def test_a_paused_build_in_another_state_dir_is_not_touched(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = start_build(stack, template, tmp_path, pause_at="after-run-instances", pause_seconds=3)
    b.wait_marker("after-run-instances")
    b.proc.send_signal(signal.SIGSTOP)  # frozen mid-build: no heartbeat refresh either
    try:
        run = b.run_id()
        before = run_resources(moto, run)
        assert any(":i-" in r for r in before) and any(":sg-" in r for r in before), before
        res = cleanup(stack, tmp_path / "other-runner", "--older-than", "0s")
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"of run {run}" not in removed_lines(res.stdout)
        assert "its run is alive elsewhere" in res.stdout, res.stdout
        assert run_resources(moto, run) == before
        # and with no --older-than, the default minimum age alone leaves it alone too
        res = cleanup(stack, tmp_path / "other-runner")
        assert res.returncode == 0 and not removed_lines(res.stdout), res.stdout + res.stderr
    finally:
        b.proc.send_signal(signal.SIGCONT)
    assert b.finish() == 0, b.text("stdout")[-3000:] + b.text("stderr")[-2000:]
    amis = {f"{r}:{a}" for arts in load_run(b.journal()).finished.values() for r, a in arts.items()}
    assert_nothing_left(moto, baseline, artifact_ids(moto, amis))


def test_a_build_started_during_a_slow_cleanup_loses_nothing(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    state = tmp_path / "shared-state"
    dead = killed_at(stack, template, tmp_path, "after-create-security-group", state_dir=state)
    dead_run = dead.run_id()
    # the cleanup reads the journals (one dead run), then waits before its tag search
    cwork = tmp_path / "cleanup"
    cwork.mkdir()
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(state),
           "AMIBAKE_PAUSE_AT": "cleanup-journals-read", "AMIBAKE_PAUSE_SECONDS": "300"}
    with open(cwork / "stdout", "wb") as o, open(cwork / "stderr", "wb") as e:
        cproc = subprocess.Popen([*AMIBAKE, "cleanup", "--older-than", "0s"], stdout=o, stderr=e, env=env)
    try:
        wait_marker(cproc, cwork / "stderr", "cleanup-journals-read", 60)
        # a new build in the same state dir, started now and still running
        b = start_build(stack, template, tmp_path, state_dir=state, pause_at="after-run-instances")
        b.wait_marker("after-run-instances")
        new_run = b.run_id()
        before = run_resources(moto, new_run)
        assert any(":i-" in r for r in before), before
        cproc.send_signal(signal.SIGCONT)
        assert cproc.wait(120) == 0, (cwork / "stdout").read_text() + (cwork / "stderr").read_text()
    finally:
        if cproc.poll() is None:
            cproc.kill()
    out = (cwork / "stdout").read_text()
    assert f"of run {dead_run}" in out  # the dead run was cleaned
    assert "Removed security-group" in out
    assert not any(new_run in line for line in out.splitlines() if line.startswith("Removed")), out
    assert "its run is in progress" in out, out
    assert run_resources(moto, new_run) == before
    b.proc.send_signal(signal.SIGINT)  # the live build then cleans up after itself
    assert b.finish(120) == 130, b.text("stderr")[-2000:]
    assert_nothing_left(moto, baseline)


# ---- #18: cleanup that finishes -------------------------------------------------------------


def test_an_unreachable_run_does_not_stop_the_cleanup_of_a_reachable_one(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    proxy = AwsProxy(moto.url)
    url = proxy.start()
    try:
        far = killed_at(stack, template, tmp_path, "after-create-security-group", state_dir=state,
                        env={"AWS_ENDPOINT_URL": url})
    finally:
        proxy.stop()  # that run's endpoint is gone
    near = killed_at(stack, template, tmp_path, "after-create-security-group", state_dir=state)
    # the journal records each run's endpoint (never a credential)
    access = [e for e in journal_lines(far.journal()) if e["ev"] == "access"]
    assert {e["region"] for e in access} == {"us-east-1", "us-west-2"}
    assert all(e["endpoint"] == url for e in access)
    assert "testing" not in far.journal().read_text()
    near_left = run_resources(moto, near.run_id())
    far_left = run_resources(moto, far.run_id())
    assert near_left and far_left
    # the cleaner's own endpoint is unreachable too: each run is reached through its journal's
    t0 = time.monotonic()
    res = cleanup(stack, state, env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{dead_port()}"})
    took = time.monotonic() - t0
    assert res.returncode == 1, res.stdout + res.stderr
    assert run_resources(moto, near.run_id()) == set(), res.stdout
    assert run_resources(moto, far.run_id()) == far_left
    table = res.stdout[res.stdout.index("Run "):]
    near_row = next(line for line in table.splitlines() if line.startswith(near.run_id()))
    far_row = next(line for line in table.splitlines() if line.startswith(far.run_id()))
    assert near_row.split()[1:5] == ["2", "0", "0", "done"], table
    assert "unreachable: " in far_row and url.split("//")[1] in far_row, far_row
    assert "Resources may be left behind" in res.stderr
    assert took < 60, f"an unreachable endpoint cost {took:.0f}s"
    # with a reachable default endpoint, the rest is found by tag and removed
    res = cleanup(stack, state)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_nothing_left(moto, baseline)


def test_older_than_region_and_dry_run(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    b = killed_at(stack, template, tmp_path, "wait-copy-available", state_dir=state)
    run = b.run_id()
    left = run_resources(moto, run)
    west = {r for r in left if r.startswith("us-west-2:")}
    assert west and left - west, left
    lines = len(journal_lines(b.journal()))

    res = cleanup(stack, state, "--older-than", "1h")
    assert res.returncode == 0 and "Nothing to clean up" in res.stdout, res.stdout + res.stderr
    assert run_resources(moto, run) == left

    res = cleanup(stack, state, "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Would remove" in res.stdout and "Removed " not in res.stdout, res.stdout
    assert run_resources(moto, run) == left
    assert len(journal_lines(b.journal())) == lines  # a dry run writes nothing

    res = cleanup(stack, state, "--region", "us-west-2", "--older-than", "0s")
    assert res.returncode == 0, res.stdout + res.stderr
    assert run_resources(moto, run) == left - west, res.stdout
    assert "(us-east-1)" not in removed_lines(res.stdout)

    res = cleanup(stack, state)
    assert res.returncode == 0, res.stdout + res.stderr
    assert_nothing_left(moto, baseline)


def test_a_lost_journal_is_found_by_tag_once_its_heartbeat_is_stale(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = killed_at(stack, template, tmp_path, "after-run-instances")
    run = b.run_id()
    left = run_resources(moto, run)
    assert any(":i-" in r for r in left) and any(":sg-" in r for r in left)
    b.journal().unlink()
    stale = {"AMIBAKE_HEARTBEAT_SECONDS": "0.01"}
    # no --older-than: a run with no journal here keeps everything younger than the default minimum age
    res = cleanup(stack, b.state_dir, env=stale)
    assert res.returncode == 0 and not removed_lines(res.stdout), res.stdout + res.stderr
    # a fresh heartbeat (the default period) protects it at any age
    res = cleanup(stack, b.state_dir, "--older-than", "0s")
    assert res.returncode == 0 and not removed_lines(res.stdout), res.stdout + res.stderr
    assert "alive elsewhere" in res.stdout
    res = cleanup(stack, b.state_dir, "--older-than", "0s", env=stale)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Removed instance" in res.stdout and f"of run {run}" in res.stdout
    assert run_resources(moto, run) == set()
    assert_nothing_left(moto, baseline)


# ---- #19 finding 10: loose ends -------------------------------------------------------------


def test_a_vanished_instance_is_already_gone_and_not_waited_on(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = killed_at(stack, template, tmp_path, "after-run-instances")
    inst = next(e["id"] for e in journal_lines(b.journal())
                if e["ev"] == "created" and e["kind"] == "instance")
    ec2, _ = clients(moto, "us-east-1")
    ec2.terminate_instances(InstanceIds=[inst])
    t0 = time.monotonic()
    res = cleanup(stack, b.state_dir)
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Already gone: instance {inst}" in res.stdout, res.stdout
    assert f"Removed instance {inst}" not in res.stdout
    assert took < 60, took
    assert_nothing_left(moto, baseline)


def test_a_settled_key_pair_intent_is_not_removed_again(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = killed_at(stack, template, tmp_path, "after-create-key-pair")
    # as if killed while CreateKeyPair was in flight: the intent only, and no key pair made
    rewrite_journal(b.journal(), lambda e: not (e["ev"] == "created" and e["kind"] == "key-pair"))
    name = next(e["name"] for e in journal_lines(b.journal())
                if e["ev"] == "intent" and e["kind"] == "key-pair")
    ec2, _ = clients(moto, "us-east-1")
    ec2.delete_key_pair(KeyName=name)
    res = cleanup(stack, b.state_dir)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Removed key-pair {name}" not in res.stdout, res.stdout
    lines = len(journal_lines(b.journal()))
    for _ in range(2):
        again = cleanup(stack, b.state_dir)
        assert again.returncode == 0 and "Nothing to clean up" in again.stdout, again.stdout
        assert len(journal_lines(b.journal())) == lines  # the journal no longer grows
    assert_nothing_left(moto, baseline)


def test_an_unknown_kind_and_a_bad_region_are_reported_and_the_rest_is_cleaned(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    good = killed_at(stack, template, tmp_path, "after-create-security-group", state_dir=state)
    runs = state / "runs"
    odd = [
        {"ev": "created", "at": "2026-01-01T00:00:00.000000Z", "run": "odd-kind", "build": "b",
         "kind": "widget", "region": "us-east-1", "id": "w-1"},
        {"ev": "created", "at": "2026-01-01T00:00:00.000000Z", "run": "bad-region", "build": "b",
         "kind": "volume", "region": "not a region!", "id": "vol-0123456789abcdef0"},
    ]
    for e in odd:
        (runs / f"{e['run']}.jsonl").write_text(json.dumps(e) + "\n")
    res = cleanup(stack, state)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "Removed widget" not in res.stdout
    assert "does not know how to remove a 'widget'; nothing was done" in res.stdout + res.stderr
    assert "bad-region" in res.stdout and "not a region!" in res.stdout + res.stderr
    assert run_resources(moto, good.run_id()) == set(), res.stdout  # the good run was cleaned all the same
    table = res.stdout[res.stdout.index("Run "):]
    row = next(line for line in table.splitlines() if line.startswith(good.run_id()))
    assert row.split()[4] == "done", table
    for e in odd:
        (runs / f"{e['run']}.jsonl").unlink()
    assert_nothing_left(moto, baseline)


def test_a_running_build_refreshes_its_heartbeat_on_its_resources(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    b = start_build(stack, template, tmp_path, pause_at="after-run-instances",
                    env={"AMIBAKE_HEARTBEAT_SECONDS": "0.3"})
    b.wait_marker("after-run-instances")
    run = b.run_id()
    ec2, _ = clients(moto, "us-east-1")
    flt = [{"Name": "tag:amibake:run-id", "Values": [run]}]

    def beats() -> dict[str, str]:
        inst = [i for r in ec2.describe_instances(Filters=flt)["Reservations"] for i in r["Instances"]]
        groups = ec2.describe_security_groups(Filters=flt)["SecurityGroups"]
        out = {}
        for res, rid in [(i, i["InstanceId"]) for i in inst] + [(g, g["GroupId"]) for g in groups]:
            tags = {t["Key"]: t["Value"] for t in res.get("Tags", [])}
            out[rid] = tags.get("amibake:heartbeat", "")
        return out

    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = beats()
        if all(now.values()) and (not seen or all(now[k] != seen[-1].get(k) for k in now)):
            seen.append(now)
        if len(seen) >= 2:
            break
        time.sleep(0.1)
    b.proc.send_signal(signal.SIGINT)
    assert b.finish(120) == 130, b.text("stderr")[-2000:]
    assert len(seen) >= 2, f"no heartbeat refresh seen on the instance and security group: {seen}"
    assert any(k.startswith("i-") for k in seen[0]) and any(k.startswith("sg-") for k in seen[0])
    assert all(seen[1][k] > seen[0][k] for k in seen[0])  # refreshed, newer each time
    assert_nothing_left(moto, baseline)


def test_a_file_size_limit_hit_by_the_finished_record_keeps_the_ami(
    stack: Stack, moto: MotoServer, baseline: set[str], template: Path, tmp_path: Path
) -> None:
    """The issue's repro: `ulimit -f` such that the journal's last record, ``finished``, is cut short."""
    import resource

    first = start_build(stack, template, tmp_path)
    assert first.finish() == 0, first.text("stdout")[-3000:]
    raw = first.journal().read_bytes()
    finished_line = raw.splitlines()[-1]
    assert b'"ev": "finished"' in finished_line
    # the same build again, with a limit in the middle of where its finished record goes
    limit = len(raw) - len(finished_line) // 2

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    work = tmp_path / "limited"
    work.mkdir()
    env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(work / "state")}
    cmd = [*AMIBAKE, "build", "-var", f"ssh_host={stack.env()['AMIBAKE_SSH_HOST']}",
           "-var", f"ssh_port={stack.sshd.port}", "-var", f"ssh_username={stack.sshd.user}",
           "-var", f"ami_name={first.ami_name}x", str(template)]
    res = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True, timeout=300,
                         preexec_fn=limited)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "cannot write the run journal" in res.stdout + res.stderr  # said, not ignored
    journal = next((work / "state" / "runs").glob("*.jsonl"))
    assert journal.read_bytes().endswith(b"\n")  # no torn record
    rec = load_run(journal)
    assert not rec.finished
    amis = {img for img in inventory(moto) if ":ami-" in img} - baseline
    res2 = cleanup(stack, work / "state")
    assert res2.returncode == 0, res2.stdout + res2.stderr
    assert "Removed image" not in res2.stdout and "Removed snapshot" not in res2.stdout, res2.stdout
    assert amis <= inventory(moto)
    keep = artifact_ids(moto, amis)
    assert_nothing_left(moto, baseline, keep)
