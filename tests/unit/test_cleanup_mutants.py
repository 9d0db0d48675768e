"""``amibake cleanup``'s cleaner (``plugins/amazon/cleanup.py``) in process, against a moto server:
what it finds (journal, tags, dangling intents), what it keeps and why, what it removes in which
order, what it says, what it writes back to the journal, and the runs it cannot reach. Written for
a mutation run (docs/mutation.md); tests/stack/test_cleanup*.py run the command itself.

Each test works in an AWS account of its own (moto keeps accounts apart; a role assumed in a random
account id gives its credentials), so the tests share one moto server (``AMIBAKE_TEST_MOTO_URL``, or
one started for this module) without seeing each other's resources."""

from __future__ import annotations

import json
import random
import socket
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amibake.journal import Journal, load_run
from amibake.plugins.amazon import cleanup as cl
from amibake.plugins.amazon.cleanup import Cleaner, Leftover, Plan, RunReport
from amibake.plugins.amazon.liveness import parse_time
from amibake.plugins.amazon.records import Tagged
from tests.unit.test_amazon_gateway_mutants import botocore_session

REGION = "us-east-1"
OLD = "2020-01-01T00:00:00Z"
NOW = parse_time("2026-06-01T00:00:00Z") or 0.0


class Aws:
    """An account of its own on the shared moto server, and boto clients in it."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        account = "".join(random.choice("0123456789") for _ in range(12))
        session = botocore_session()
        sts = session.create_client(
            "sts",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/cleanup-test", RoleSessionName="cleanup-test"
        )["Credentials"]
        self.keys = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        for var, value in (
            ("AWS_ACCESS_KEY_ID", creds["AccessKeyId"]),
            ("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"]),
            ("AWS_SESSION_TOKEN", creds["SessionToken"]),
            ("AWS_ENDPOINT_URL", url),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ):
            monkeypatch.setenv(var, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        self._session = session

    def ec2(self, region: str = REGION) -> Any:
        return self._session.create_client("ec2", region_name=region, endpoint_url=self.url, **self.keys)

    def iam(self) -> Any:
        return self._session.create_client("iam", region_name=REGION, endpoint_url=self.url, **self.keys)


def run_id() -> str:
    return f"run-{uuid.uuid4().hex[:10]}"


def tags(run: str, build: str = "amazon-ebs.x", created: str = OLD, **extra: str) -> list[dict[str, str]]:
    t = {"amibake:run-id": run, "amibake:build": build, "amibake:created": created, **extra}
    return [{"Key": k, "Value": v} for k, v in t.items()]


def spec(rt: str, run: str, **kw: Any) -> list[dict[str, Any]]:
    return [{"ResourceType": rt, "Tags": tags(run, **kw)}]


def journal(state: Path, run: str, *entries: tuple[str, dict[str, Any]]) -> Path:
    """A closed run journal with these entries (``at`` defaults to OLD)."""
    j = Journal(run, state)
    for ev, data in entries:
        j.write(ev, **{"at": OLD, "build": "amazon-ebs.x", **data})
    j.close()
    return j.path


class Said(list[str]):
    def __call__(self, text: str) -> None:
        self.append(text)


def cleaner(state: Path, *, clock: float = NOW, region: str = REGION) -> tuple[Cleaner, Said]:
    said = Said()
    return Cleaner(cl.make_gateway(region), state, said, clock=lambda: clock), said


_BASE: dict[str, str] = {}


def base_ami(ec2: Any) -> str:
    """One of moto's own AMIs, the same in every account (looked up once: the listing is long)."""
    if "ami" not in _BASE:
        _BASE["ami"] = str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    return _BASE["ami"]


def journal_events(path: Path) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("at", "run")}
        for line in path.read_text().splitlines()
    ]


# -- pure helpers ---------------------------------------------------------------------------------


def test_leftover_describe_and_key() -> None:
    item = Leftover("volume", "eu-west-1", "vol-1", "run-1")
    assert item.describe() == "volume vol-1 (eu-west-1) of run run-1" and item.key == (
        "volume",
        "eu-west-1",
        "vol-1",
    )
    assert Leftover("iam-role", "", "packer-x").describe() == "iam-role packer-x"


def test_plan_add_merges_a_resource_found_twice_and_keeps_the_tag_access() -> None:
    plan = Plan()
    plan.add(Leftover("volume", REGION, "vol-1", "run-1", "", {"journal"}, "", ("j", "", "")))
    plan.add(Leftover("volume", REGION, "vol-1", "", "b", {"tag"}, "t1", ("t", "p", ""), {"k": "v"}, "name"))
    (item,) = plan.leftovers
    assert item.sources == {"journal", "tag"} and item.run_id == "run-1" and item.build == "b"
    assert item.created == "t1" and item.tags == {"k": "v"} and item.intent == "name"
    assert item.access == ("t", "p", "")
    plan.add(
        Leftover("volume", REGION, "vol-1", "run-2", "c", {"image"}, "t2", ("x", "", ""), {"a": "b"}, "n2")
    )
    assert (item.run_id, item.build, item.created, item.tags, item.intent, item.access) == (
        "run-1",
        "b",
        "t1",
        {"k": "v"},
        "name",
        ("t", "p", ""),
    )
    assert item.sources == {"journal", "tag", "image"}
    plan.keep(("snapshot", REGION, "snap-1"), "run-1", "kept once")
    plan.keep(("snapshot", REGION, "snap-1"), "run-1", "kept twice")
    plan.add(Leftover("snapshot", REGION, "snap-1"))
    assert plan.kept == ["kept once"] and plan.report("run-1").kept == ["kept once"]
    assert len(plan.leftovers) == 1


def test_plan_orders_by_dependency() -> None:
    plan = Plan()
    for kind in (
        "snapshot",
        "image",
        "volume",
        "key-pair",
        "security-group",
        "iam-role",
        "launch-template",
        "instance",
        "mystery",
    ):
        plan.add(Leftover(kind, REGION, f"id-{kind}"))
    order = [i.kind for i in plan.ordered()]
    assert order[0] == "instance" and order[-1] == "mystery"
    assert (
        order.index("security-group") < order.index("key-pair") < order.index("volume") < order.index("image")
    )
    assert order.index("image") < order.index("snapshot") and order.index("launch-template") < order.index(
        "iam-role"
    )
    # mounts deepest first (a chroot's /proc before the root it is mounted in), whatever order found
    mounts = Plan()
    for path in ("/mnt/root", "/mnt/root/proc/sys", "/mnt/root/proc"):
        mounts.add(Leftover("mount", "", path))
    assert [i.id for i in mounts.ordered()] == ["/mnt/root/proc/sys", "/mnt/root/proc", "/mnt/root"]


def test_run_report_left_and_helpers() -> None:
    assert not RunReport(removed=["a"], gone=["b"], skipped=["c"], kept=["d"]).left
    assert RunReport(failed=["x"]).left and RunReport(unreachable=["y"]).left
    notes: list[str] = []
    cl._note(notes, "a")
    cl._note(notes, "a")
    assert notes == ["a"]
    assert cl._old_enough("", None, NOW) is True
    assert cl._old_enough("nonsense", 10, NOW) is False
    assert cl._old_enough("2026-06-01T00:00:00Z", 0, NOW) is True
    assert cl._old_enough("2026-05-31T23:00:00Z", 3600, NOW) is True
    assert cl._old_enough("2026-05-31T23:00:01Z", 3600, NOW) is False
    err = cl.AwsError("op", "", "timed out")
    assert cl._reason(("http://e", "prof", ""), "eu-west-1", err) == (
        f"cannot reach http://e for eu-west-1, profile prof: {err}"
    )
    assert (
        cl._reason(cl.DEFAULT_ACCESS, "eu-west-1", err)
        == f"cannot reach the default endpoint for eu-west-1: {err}"
    )
    calls: list[tuple[str, str | None]] = []
    assert cl._run(lambda rid, region: calls.append((rid, region)), "sg-1", "r") is True and calls == [
        ("sg-1", "r")
    ]


def test_access_of_a_run() -> None:
    assert Cleaner.access_of(None, REGION) == cl.DEFAULT_ACCESS
    rec = load_run(Path("/nonexistent/run-x.jsonl"))
    rec.access[REGION] = {"endpoint": "http://e", "profile": "p", "role_arn": "arn:r"}
    assert Cleaner.access_of(rec, REGION) == ("http://e", "p", "arn:r")
    assert Cleaner.access_of(rec, "eu-west-1") == cl.DEFAULT_ACCESS


def test_gateway_for_an_access_and_the_cleanup_timeouts(aws: Aws) -> None:
    gw = cl.gateway_for(("http://127.0.0.1:1", "prof", "arn:aws:iam::1:role/r"), "eu-west-1")
    assert isinstance(gw, cl.CleanupGateway) and gw.region == "eu-west-1"
    assert gw.access.endpoint_ec2 == "http://127.0.0.1:1" and gw.access.profile == "prof"
    assert gw.access.assume_role is not None and gw.access.assume_role.role_arn == "arn:aws:iam::1:role/r"
    assert gw.retry.max_attempts == cl.MAX_ATTEMPTS == 3
    assert (gw.polling.delay, gw.polling.max_attempts, gw.polling.overridden) == (2.0, 60, True)
    plain = cl.make_gateway(REGION)
    assert plain.access.assume_role is None and plain.access.endpoint_ec2 == "" and plain.access.profile == ""
    client = plain._client("ec2")
    assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == (3, 15)
    c2 = cl.new_cleaner("eu-west-2", Path("/s"), print)
    assert c2.default_region == "eu-west-2" and c2.state_dir == Path("/s") and c2.dry_run is False
    assert Cleaner(None, Path("/s"), print).default_region == "us-east-1"


def test_pause_point_does_nothing_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMIBAKE_PAUSE_AT", raising=False)
    cl.pause("cleanup-journals-read")
    monkeypatch.setenv("AMIBAKE_PAUSE_AT", "cleanup-journals-read")
    monkeypatch.setenv("AMIBAKE_PAUSE_SECONDS", "0.01")
    cl.pause("cleanup-journals-read")


# -- finding and removing -------------------------------------------------------------------------


def test_a_journal_run_is_found_removed_in_order_and_the_removals_journaled(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    ec2.create_key_pair(KeyName=f"key-{run}")
    gid = ec2.create_security_group(GroupName=f"sg-{run}", Description="d")["GroupId"]
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    path = journal(
        tmp_path,
        run,
        ("access", {"region": REGION}),
        ("created", {"kind": "volume", "region": REGION, "id": vol}),
        ("created", {"kind": "key-pair", "region": REGION, "id": f"key-{run}"}),
        ("created", {"kind": "security-group", "region": REGION, "id": gid}),
        ("created", {"kind": "instance", "region": REGION, "id": iid}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    assert plan.regions == [REGION] and plan.skipped_runs == []
    assert {(i.kind, i.id) for i in plan.leftovers} == {
        ("volume", vol),
        ("key-pair", f"key-{run}"),
        ("security-group", gid),
        ("instance", iid),
    }
    assert all(i.sources == {"journal"} and i.run_id == run and i.created == OLD for i in plan.leftovers)
    result = c.remove(plan)
    assert said == [
        f"Removed instance {iid} ({REGION}) of run {run}",
        f"Removed security-group {gid} ({REGION}) of run {run}",
        f"Removed key-pair key-{run} ({REGION}) of run {run}",
        f"Removed volume {vol} ({REGION}) of run {run}",
    ]
    assert result.removed == [s.removeprefix("Removed ") for s in said]
    assert result.failed == result.gone == result.skipped == []
    assert plan.report(run).removed == result.removed and not plan.report(run).left
    state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol]}])["Volumes"] == []
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [f"key-{run}"]}])["KeyPairs"] == []
    removed = [e for e in journal_events(path) if e["ev"] == "removed"]
    assert removed == [
        {"ev": "removed", "build": "amazon-ebs.x", "kind": k, "region": REGION, "id": i, "by": "cleanup"}
        for k, i in (("instance", iid), ("security-group", gid), ("key-pair", f"key-{run}"), ("volume", vol))
    ]
    assert load_run(path).live == []
    # a second run finds nothing
    c2, said2 = cleaner(tmp_path)
    plan2 = c2.plan(run_id=run)
    assert plan2.leftovers == [] and said2 == []


def test_what_is_already_gone_is_reported_as_such(aws: Aws, tmp_path: Path) -> None:
    run = run_id()
    journal(
        tmp_path,
        run,
        ("created", {"kind": "volume", "region": REGION, "id": "vol-0123456789abcdef0"}),
        ("created", {"kind": "key-pair", "region": REGION, "id": "never-there"}),
        ("created", {"kind": "instance", "region": REGION, "id": "i-0123456789abcdef0"}),
    )
    c, said = cleaner(tmp_path)
    result = c.remove(c.plan(run_id=run))
    assert sorted(said) == sorted(
        [
            f"Already gone: instance i-0123456789abcdef0 ({REGION}) of run {run}",
            f"Already gone: key-pair never-there ({REGION}) of run {run}",
            f"Already gone: volume vol-0123456789abcdef0 ({REGION}) of run {run}",
        ]
    )
    assert len(result.gone) == 3 and result.removed == [] and result.failed == []


def test_dry_run_removes_nothing_and_writes_nothing(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    path = journal(
        tmp_path,
        run,
        ("created", {"kind": "volume", "region": REGION, "id": vol}),
        ("intent", {"kind": "key-pair", "region": REGION, "name": "nothing-made"}),
    )
    before = path.read_text()
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run, dry_run=True)
    result = c.remove(plan, dry_run=True)
    assert said == [f"Would remove volume {vol} ({REGION}) of run {run}"]
    assert (
        result.removed == [f"volume {vol} ({REGION}) of run {run}"]
        and plan.report(run).removed == result.removed
    )
    assert plan.report(run).gone == [f"key-pair nothing-made ({REGION}) (never created)"]
    assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"]
    assert path.read_text() == before


def test_tags_find_what_the_journal_lost_and_old_enough_is_required(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    old = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec("volume", run))[
        "VolumeId"
    ]
    new = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=1,
        TagSpecifications=spec("volume", run, created="2026-05-31T23:30:00Z"),
    )["VolumeId"]
    c, said = cleaner(tmp_path)
    plan = c.plan()
    assert [(i.kind, i.id, i.sources, i.run_id, i.build) for i in plan.leftovers] == [
        ("volume", old, {"tag"}, run, "amazon-ebs.x")
    ]
    item = plan.leftovers[0]
    assert item.tags["amibake:run-id"] == run and item.created == OLD and item.access == cl.DEFAULT_ACCESS
    plan2 = cleaner(tmp_path)[0].plan(older_than=60)
    assert {i.id for i in plan2.leftovers} == {old, new}
    plan3 = cleaner(tmp_path)[0].plan(older_than=10 * 365 * 86400)
    assert plan3.leftovers == []
    c.remove(plan)
    assert said == [f"Removed volume {old} ({REGION}) of run {run}"]
    assert [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"] if v["VolumeId"] in (old, new)] == [new]


def test_a_run_alive_elsewhere_is_left_alone(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    vol = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=1,
        TagSpecifications=spec("volume", run, **{"amibake:heartbeat": "2026-05-31T23:59:00Z"}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(older_than=0)
    c.remove(plan)
    assert said == [
        f"Left volume {vol['VolumeId']} ({REGION}) of run {run}: its run is alive elsewhere (last "
        f"heartbeat 60s ago; stale after {c.stale:.0f}s)"
    ]
    assert plan.report(run).skipped == [said[0].removeprefix("Left ")]


def test_images_and_snapshots_without_a_journal_here_or_finished_are_kept(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = ec2.create_image(InstanceId=iid, Name=f"img-{run}")["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=tags(run))
    done = ec2.create_image(InstanceId=iid, Name=f"done-{run}")["ImageId"]
    ec2.create_tags(Resources=[done], Tags=tags(run, **{"amibake:finished": OLD}))
    ec2.terminate_instances(InstanceIds=[iid])
    c, _said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    assert plan.leftovers == []
    assert sorted(plan.kept) == sorted(
        [
            f"image {ami} ({REGION}) of run {run}: no journal of run {run} here says its build failed",
            f"image {done} ({REGION}) of run {run}: marked amibake:finished (a delivered artifact)",
        ]
    )
    assert sorted(plan.report(run).kept) == sorted(plan.kept)  # in the run's own report


def test_a_finished_builds_artifact_is_kept_and_another_image_of_the_run_removed(
    aws: Aws, tmp_path: Path
) -> None:
    ec2 = aws.ec2()
    run = run_id()
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    art = ec2.create_image(InstanceId=iid, Name=f"art-{run}")["ImageId"]
    dup = ec2.create_image(InstanceId=iid, Name=f"dup-{run}")["ImageId"]
    ec2.terminate_instances(InstanceIds=[iid])
    snaps = {
        a: ec2.describe_images(ImageIds=[a])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        for a in (art, dup)
    }
    ec2.create_tags(Resources=[art, dup, *snaps.values()], Tags=tags(run))
    path = journal(
        tmp_path,
        run,
        ("created", {"kind": "image", "region": REGION, "id": art}),
        ("created", {"kind": "snapshot", "region": REGION, "id": snaps[art], "image": art}),
        ("created", {"kind": "image", "region": REGION, "id": dup}),
        ("finished", {"artifacts": {REGION: art}}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    assert {(i.kind, i.id) for i in plan.leftovers} == {("image", dup), ("snapshot", snaps[dup])}
    assert f"image {art} ({REGION}): artifact of finished build 'amazon-ebs.x' of run {run}" in plan.kept
    assert len(plan.kept) == len(set(plan.kept)) == 2  # found in the journal and by tag: each kept once
    assert (
        f"snapshot {snaps[art]} ({REGION}) of run {run}: artifact of finished build 'amazon-ebs.x' of "
        f"run {run}"
    ) in plan.kept or any(snaps[art] in k for k in plan.kept)
    c.remove(plan)
    assert said == [
        f"Removed image {dup} ({REGION}) of run {run}",
        f"Removed snapshot {snaps[dup]} ({REGION}) of run {run}",
    ]
    assert [i["ImageId"] for i in ec2.describe_images(ImageIds=[art])["Images"]] == [art]
    assert load_run(path).live[0].id == art


def test_an_images_snapshots_go_with_it(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = ec2.create_image(InstanceId=iid, Name=f"a-{run}")["ImageId"]
    snap = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.terminate_instances(InstanceIds=[iid])
    journal(tmp_path, run, ("created", {"kind": "image", "region": REGION, "id": ami}))
    c, _said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    result = c.remove(plan)
    assert result.removed == [
        f"image {ami} ({REGION}) of run {run}",
        f"snapshot {snap} ({REGION}) of run {run}",
    ]
    (item,) = [i for i in plan.leftovers if i.kind == "snapshot"]
    assert item.sources == {"image"} and item.run_id == run
    with pytest.raises(Exception, match=r"InvalidSnapshot\.NotFound"):
        ec2.describe_snapshots(SnapshotIds=[snap])


def test_an_image_marked_finished_since_the_plan_is_left(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = ec2.create_image(InstanceId=iid, Name=f"f-{run}")["ImageId"]
    snap = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    journal(
        tmp_path,
        run,
        ("created", {"kind": "image", "region": REGION, "id": ami}),
        ("created", {"kind": "snapshot", "region": REGION, "id": snap}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    ec2.create_tags(Resources=[ami, snap], Tags=[{"Key": "amibake:finished", "Value": OLD}])
    result = c.remove(plan)
    assert said == [
        f"Left image {ami} ({REGION}) of run {run}: marked amibake:finished (a delivered artifact)",
        f"Left snapshot {snap} ({REGION}) of run {run}: marked amibake:finished (a delivered artifact)",
    ]
    assert result.skipped == [
        f"image {ami} ({REGION}) of run {run}",
        f"snapshot {snap} ({REGION}) of run {run}",
    ]


def test_a_run_in_progress_is_skipped(aws: Aws, tmp_path: Path) -> None:
    run = run_id()
    j = Journal(run, tmp_path)
    j.write("created", build="b", kind="volume", region=REGION, id="vol-0123456789abcdef0")
    try:
        c, _said = cleaner(tmp_path)
        plan = c.plan()
        assert plan.skipped_runs == [run] and plan.leftovers == []
        assert plan.report(run).skipped == ["in progress (its journal is held by a live amibake)"]
        item = Leftover("volume", REGION, "vol-0123456789abcdef0", run)
        assert c._may_remove(item) == "its run is in progress (its journal is held by a live amibake)"
    finally:
        j.close()
    assert c._may_remove(item) == ""


def test_run_filter_and_region_filter(aws: Aws, tmp_path: Path) -> None:
    run, other = run_id(), run_id()
    journal(
        tmp_path,
        run,
        ("created", {"kind": "volume", "region": "eu-west-1", "id": "vol-1"}),
        ("created", {"kind": "volume", "region": REGION, "id": "vol-2"}),
    )
    journal(tmp_path, other, ("created", {"kind": "volume", "region": REGION, "id": "vol-3"}))
    c, _ = cleaner(tmp_path)
    plan = c.plan(run_id=run, regions=["eu-west-1"])
    assert plan.regions == ["eu-west-1"] and [i.id for i in plan.leftovers] == ["vol-1"]
    assert set(c.records) == {run}
    plan2 = cleaner(tmp_path)[0].plan()
    assert plan2.regions == ["eu-west-1", REGION] and {i.id for i in plan2.leftovers} == {
        "vol-1",
        "vol-2",
        "vol-3",
    }
    plan3 = cleaner(tmp_path)[0].plan(older_than=60, now=parse_time(OLD))
    assert plan3.leftovers == []


def test_dangling_intents_are_looked_up_by_name(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    ec2.create_key_pair(KeyName=f"made-{run}")
    gid = ec2.create_security_group(GroupName=f"sg-{run}", Description="d")["GroupId"]
    lt = ec2.create_launch_template(LaunchTemplateName=f"lt-{run}", LaunchTemplateData={})["LaunchTemplate"][
        "LaunchTemplateId"
    ]
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    mine = ec2.create_image(InstanceId=iid, Name=f"img-{run}")["ImageId"]
    ec2.create_tags(Resources=[mine], Tags=tags(run))
    path = journal(
        tmp_path,
        run,
        ("intent", {"kind": "key-pair", "region": REGION, "name": f"made-{run}"}),
        ("intent", {"kind": "key-pair", "region": REGION, "name": f"never-{run}"}),
        ("intent", {"kind": "security-group", "region": REGION, "name": f"sg-{run}"}),
        ("intent", {"kind": "launch-template", "region": REGION, "name": f"lt-{run}"}),
        ("intent", {"kind": "image", "region": REGION, "name": f"img-{run}"}),
        ("intent", {"kind": "iam-role", "region": "", "name": f"packer-{run}"}),
        ("intent", {"kind": "fleet", "region": REGION, "token": "tok"}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    found = {(i.kind, i.id, i.intent) for i in plan.leftovers}
    assert found == {
        ("key-pair", f"made-{run}", f"made-{run}"),
        ("security-group", gid, f"sg-{run}"),
        ("launch-template", lt, f"lt-{run}"),
        ("image", mine, f"img-{run}"),
        ("iam-role", f"packer-{run}", f"packer-{run}"),
    }
    assert plan.report(run).gone == [
        f"key-pair never-{run} ({REGION}) (never created)",
        f"fleet tok ({REGION}) (never created)",
    ]
    events = journal_events(path)
    assert {
        "ev": "removed",
        "build": "amazon-ebs.x",
        "kind": "key-pair",
        "region": REGION,
        "id": f"never-{run}",
        "by": "cleanup",
    } in events
    c.remove(plan)
    assert f"Removed security-group {gid} ({REGION}) of run {run}" in said
    removed_sg = [e for e in journal_events(path) if e["ev"] == "removed" and e["kind"] == "security-group"]
    assert removed_sg == [
        {
            "ev": "removed",
            "build": "amazon-ebs.x",
            "kind": "security-group",
            "region": REGION,
            "id": gid,
            "by": "cleanup",
            "name": f"sg-{run}",
        }
    ]
    assert load_run(path).dangling == []


def test_resolve_intent_of_an_image_of_another_run_or_nothing(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = ec2.create_image(InstanceId=iid, Name=f"x-{run}")["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=tags("run-other"))
    gw = cl.make_gateway(REGION)
    assert Cleaner._resolve_intent(gw, "image", REGION, f"x-{run}", run) == []
    assert Cleaner._resolve_intent(gw, "image", REGION, f"x-{run}", "run-other") == [ami]
    assert Cleaner._resolve_intent(gw, "key-pair", REGION, "", run) == []
    assert Cleaner._resolve_intent(gw, "iam-instance-profile", "", "packer-p", run) == ["packer-p"]
    assert Cleaner._resolve_intent(gw, "snapshot", REGION, "x", run) == []
    untagged = ec2.create_image(InstanceId=iid, Name=f"u-{run}")["ImageId"]
    assert Cleaner._resolve_intent(gw, "image", REGION, f"u-{run}", run) == [untagged]


def test_iam_leftovers_are_removed_with_what_they_hold(aws: Aws, tmp_path: Path) -> None:
    iam = aws.iam()
    run = run_id()
    name = f"packer-{run}"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}", Tags=tags(run))
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy)
    iam.create_instance_profile(InstanceProfileName=name, Tags=tags(run))
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    other = f"packer-{run}-2"
    iam.create_instance_profile(InstanceProfileName=other, Tags=tags(run))
    iam.add_role_to_instance_profile(InstanceProfileName=other, RoleName=name)
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    assert {(i.kind, i.id, i.region) for i in plan.leftovers} == {
        ("iam-role", name, ""),
        ("iam-instance-profile", name, ""),
        ("iam-instance-profile", other, ""),
    }
    c.remove(plan)
    assert set(said) == {
        f"Removed iam-role {name} of run {run}",
        f"Removed iam-instance-profile {name} of run {run}",
        f"Removed iam-instance-profile {other} of run {run}",
    }
    assert [r for r in iam.list_roles()["Roles"] if r["RoleName"] == name] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []


def test_remove_one_of_each_journal_kind(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    iam = aws.iam()
    gw = cl.make_gateway(REGION)
    run = run_id()
    name = f"packer-{run}"
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    iam.put_role_policy(RoleName=name, PolicyName="p1", PolicyDocument=policy)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    assert Cleaner._remove_one(gw, Leftover("iam-role-policy", "", name)) is False
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == []
    assert Cleaner._remove_one(gw, Leftover("iam-role-in-profile", "", name)) is False
    assert iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"] == []
    lt = ec2.create_launch_template(LaunchTemplateName=f"lt-{run}", LaunchTemplateData={})["LaunchTemplate"][
        "LaunchTemplateId"
    ]
    assert Cleaner._remove_one(gw, Leftover("launch-template", REGION, lt)) is False
    assert (
        ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [f"lt-{run}"]}])[
            "LaunchTemplates"
        ]
        == []
    )
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])
    assert Cleaner._remove_one(gw, Leftover("instance", REGION, iid)) is True
    with pytest.raises(
        cl.UnknownKind, match="amibake does not know how to remove a 'mystery'; nothing was done"
    ):
        Cleaner._remove_one(gw, Leftover("mystery", REGION, "x"))
    with pytest.raises(cl.AwsError):
        Cleaner._remove_one(gw, Leftover("spot-request", REGION, "sir-12345678"))


def test_an_unknown_kind_and_a_refused_removal_are_failures(aws: Aws, tmp_path: Path) -> None:
    run = run_id()
    journal(
        tmp_path,
        run,
        ("created", {"kind": "mystery", "region": REGION, "id": "m-1"}),
        ("created", {"kind": "security-group", "region": REGION, "id": "sg-bad"}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    result = c.remove(plan)
    assert said[-1] == (
        f"Could not remove mystery m-1 ({REGION}) of run {run}: amibake does not know how to "
        "remove a 'mystery'; nothing was done"
    )
    assert result.failed[-1] == said[-1].removeprefix("Could not remove ")
    assert plan.report(run).failed == result.failed and plan.report(run).left


def test_an_unreachable_run_is_reported_and_the_others_cleaned(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}"
    far, near = run_id(), run_id()
    vol = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    journal(
        tmp_path,
        far,
        ("access", {"region": "eu-west-3", "endpoint": dead, "profile": ""}),
        ("created", {"kind": "volume", "region": "eu-west-3", "id": "vol-0123456789abcdef1"}),
    )
    journal(tmp_path, near, ("created", {"kind": "volume", "region": REGION, "id": vol}))
    made: list[tuple[cl.AccessKey, str]] = []

    def gateways(access: cl.AccessKey, region: str) -> cl.CleanupGateway:
        # eu-west-3 cannot be reached whichever way is tried (its endpoint is a closed port)
        made.append((access, region))
        return cl.gateway_for((dead, *access[1:]) if region == "eu-west-3" else access, region)

    said = Said()
    c = Cleaner(cl.make_gateway(REGION), tmp_path, said, gateways=gateways, clock=lambda: NOW)
    plan = c.plan(regions=[REGION, "eu-west-3"])
    assert ((dead, "", ""), "eu-west-3") in made and (cl.DEFAULT_ACCESS, "eu-west-3") in made
    (search,) = plan.report("").unreachable
    assert search.startswith("eu-west-3 (tag search): cannot reach the default endpoint for eu-west-3: ")
    (journal_search,) = plan.report(far).unreachable
    assert journal_search.startswith(
        f"eu-west-3 (the journal's endpoint): cannot reach {dead} for eu-west-3: "
    )
    assert "; and cannot reach the default endpoint for eu-west-3: " in journal_search
    result = c.remove(plan)
    assert said == [f"Removed volume {vol} ({REGION}) of run {near}"]
    assert len(plan.report(far).unreachable) == 2 and plan.report(far).unreachable[1].startswith(
        f"eu-west-3: cannot reach {dead} for eu-west-3: "
    )
    assert result.failed == [
        f"volume vol-0123456789abcdef1 (eu-west-3) of run {far}: "
        + plan.report(far).unreachable[1].removeprefix("eu-west-3: ")
    ]
    assert plan.report(far).left and not plan.report(near).left
    assert set(c.down) == {((dead, "", ""), "eu-west-3"), (cl.DEFAULT_ACCESS, "eu-west-3")}
    with pytest.raises(cl.Unreachable):
        c.gw(cl.DEFAULT_ACCESS, "eu-west-3")


def test_heartbeat_age_reads_the_runs_tags_now(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=1,
        TagSpecifications=spec("volume", run, **{"amibake:heartbeat": "2026-05-31T23:50:00Z"}),
    )
    c, _ = cleaner(tmp_path)
    item = Leftover("volume", REGION, "vol-x", run, tags={"amibake:heartbeat": "2026-05-31T23:40:00Z"})
    assert c._heartbeat_age(item) == 600.0 and c.life[run] == NOW - 600
    assert c._heartbeat_age(Leftover("volume", REGION, "vol-y", run_id())) is None
    item2 = Leftover("volume", REGION, "vol-z", run_id(), tags={"amibake:heartbeat": "2026-05-31T23:59:00Z"})
    assert c._heartbeat_age(item2) == 60.0


def test_fresh_tags_of_a_gone_image_or_snapshot_are_none(aws: Aws, tmp_path: Path) -> None:
    c, _ = cleaner(tmp_path)
    assert c._fresh_tags(Leftover("image", REGION, "ami-0123456789abcdef0")) is None
    assert c._fresh_tags(Leftover("snapshot", REGION, "snap-0123456789abcdef0")) is None


def test_wait_terminated_reports_what_is_not_terminated(aws: Aws, tmp_path: Path) -> None:
    c, said = cleaner(tmp_path)
    gone = Leftover("instance", REGION, "i-0123456789abcdef0")
    c._wait_terminated([gone], Plan())
    assert said == []
    assert cl._instance_gone_or_terminated(cl.make_gateway(REGION), gone) == (True, "(gone)")


def test_journal_removed_only_for_a_closed_journal_of_a_valid_run(tmp_path: Path) -> None:
    c, said = cleaner(tmp_path)
    c._journal_removed(Leftover("volume", REGION, "vol-1", ""))
    c._journal_removed(Leftover("volume", REGION, "vol-1", "bad id!"))
    c._journal_removed(Leftover("volume", REGION, "vol-1", "run-nojournal"))
    assert not (tmp_path / "runs").exists()
    run = run_id()
    path = journal(tmp_path, run, ("created", {"kind": "volume", "region": REGION, "id": "vol-1"}))
    c._journal_removed(Leftover("volume", REGION, "vol-1", run, "b", intent="vol-1"))
    assert journal_events(path)[-1] == {
        "ev": "removed",
        "build": "b",
        "kind": "volume",
        "region": REGION,
        "id": "vol-1",
        "by": "cleanup",
    }
    path.chmod(0o400)
    try:
        c._journal_removed(Leftover("volume", REGION, "vol-2", run))
    finally:
        path.chmod(0o600)
    assert said == [] or said[-1].startswith(f"Could not record the removal in {path}: ")


def test_as_resource_gives_a_tag_found_snapshot_its_image(tmp_path: Path) -> None:
    run = run_id()
    path = journal(
        tmp_path,
        run,
        ("created", {"kind": "snapshot", "region": REGION, "id": "snap-1", "image": "ami-1"}),
        ("created", {"kind": "snapshot", "region": "eu-west-1", "id": "snap-1", "image": "ami-2"}),
    )
    rec = load_run(path)
    res = cl._as_resource(Tagged("snapshot", REGION, "snap-1", {}), "b", rec)
    assert (res.kind, res.region, res.id, res.build, res.detail["image"]) == (
        "snapshot",
        REGION,
        "snap-1",
        "b",
        "ami-1",
    )
    assert cl._as_resource(Tagged("image", REGION, "snap-1", {}), "b", rec).detail == {}
    assert cl._as_resource(Tagged("snapshot", REGION, "snap-9", {}), "b", rec).detail == {}


def test_a_leftover_image_in_another_region_is_read_and_removed_there(aws: Aws, tmp_path: Path) -> None:
    west = aws.ec2("us-west-2")
    run = run_id()
    wami = west.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = west.run_instances(ImageId=wami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = west.create_image(InstanceId=iid, Name=f"w-{run}")["ImageId"]
    snap = west.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    done = west.create_image(InstanceId=iid, Name=f"d-{run}")["ImageId"]
    west.terminate_instances(InstanceIds=[iid])
    journal(
        tmp_path,
        run,
        ("created", {"kind": "image", "region": "us-west-2", "id": ami}),
        ("created", {"kind": "image", "region": "us-west-2", "id": done}),
    )
    c, said = cleaner(tmp_path)
    plan = c.plan(run_id=run)
    west.create_tags(Resources=[done], Tags=[{"Key": "amibake:finished", "Value": OLD}])
    c.remove(plan)
    assert f"Removed snapshot {snap} (us-west-2) of run {run}" in said
    assert (
        f"Left image {done} (us-west-2) of run {run}: marked amibake:finished (a delivered artifact)" in said
    )
    with pytest.raises(Exception, match=r"InvalidSnapshot\.NotFound"):
        west.describe_snapshots(SnapshotIds=[snap])


# -- for the survivors of the 3 December sample (docs/mutation.md) ---------------------------------


def test_mounted_reads_mountinfo_with_its_octal_escapes(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "36 35 98:0 / /mnt/a\\040b\\011c\\012d rw - ext4 /dev/x rw\n"
        "37 35 98:0 / /mnt/back\\134slash rw - ext4 /dev/y rw\n"
        "38 35 98:0 / /mnt/p\u00e4th rw - ext4 /dev/z rw\n"
        "short line\n",
        encoding="utf-8",
    )
    assert cl._mounted("/mnt/a b\tc\nd", str(info))
    assert cl._mounted("/mnt/back\\slash", str(info))
    assert cl._mounted("/mnt/p\u00e4th", str(info))
    assert not cl._mounted("/mnt/a b", str(info))
    assert not cl._mounted("/mnt/a\\040b\\011c\\012d", str(info))
    assert not cl._mounted("/mnt/a", str(tmp_path / "no-such-file"))


def test_unmount_failure_is_the_removals_failure(tmp_path: Path) -> None:
    with pytest.raises(cl.AwsError) as err:
        cl._unmount(str(tmp_path))  # not a mount point: umount itself refuses
    assert str(err.value).startswith(f"umount {tmp_path} failed (exited with status ")
    assert f"): umount: {tmp_path}: " in str(err.value)  # umount's own words
    assert err.value.code == ""


def test_an_attached_volume_in_another_region_is_detached_then_deleted(aws: Aws, tmp_path: Path) -> None:
    region = "us-west-2"
    ec2 = aws.ec2(region)
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    az = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]
    vol = ec2.create_volume(Size=1, AvailabilityZone=az["AvailabilityZone"])["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "in-use"
    c, _said = cleaner(tmp_path)  # the cleaner's own region is us-east-1
    plan = Plan()
    plan.add(Leftover("volume", region, vol, "", sources={"journal"}))
    result = c.remove(plan)
    assert result.removed == [f"volume {vol} ({region})"] and result.failed == []
    assert ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vol]}])["Volumes"] == []


def test_instance_gone_or_terminated_reads_the_instances_state(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    gw = cl.make_gateway(REGION)
    assert cl._instance_gone_or_terminated(gw, Leftover("instance", REGION, iid)) == (False, "running")
    ec2.terminate_instances(InstanceIds=[iid])
    assert cl._instance_gone_or_terminated(gw, Leftover("instance", REGION, iid)) == (True, "terminated")


class NoTokenLookup(cl.CleanupGateway):
    """A gateway whose client-token lookup AWS refuses (throttled): a lookup error with a code."""

    def instances_by_token(self, token: str, region: str) -> list[str]:
        raise cl.AwsError("DescribeInstances", "RequestLimitExceeded", "Request limit exceeded.")


def test_an_intent_that_cannot_be_looked_up_does_not_stop_the_others(aws: Aws, tmp_path: Path) -> None:
    ec2 = aws.ec2()
    run = run_id()
    ec2.create_key_pair(KeyName=f"made-{run}")
    endpoint = f"{aws.url}/"  # the run's own endpoint (the same server, spelt otherwise)
    journal(
        tmp_path,
        run,
        ("access", {"region": REGION, "endpoint": endpoint}),
        ("intent", {"kind": "instance", "region": REGION, "token": f"tok-{run}"}),
        ("intent", {"kind": "key-pair", "region": REGION, "name": f"made-{run}"}),
    )
    reached: list[tuple[str, str, str]] = []

    def gateways(access: tuple[str, str, str], region: str) -> cl.Ec2Gateway:
        reached.append(access)
        return NoTokenLookup(cl.AwsAccess(region=region, endpoint_ec2=access[0], profile=access[1]))

    c = Cleaner(None, tmp_path, Said(), gateways=gateways, clock=lambda: NOW)
    plan = c.plan(run_id=run)
    assert plan.report(run).failed == [
        f"could not look up the instance tok-{run} ({REGION}): RequestLimitExceeded: Request limit exceeded."
    ]
    # the intent is looked up, and what it made is found, through the run's own endpoint
    found = [(i.kind, i.id, i.access) for i in plan.leftovers]
    assert found == [("key-pair", f"made-{run}", (endpoint, "", ""))]
    assert reached[0] == (endpoint, "", "")


def test_removals_in_a_region_other_than_the_gateways(aws: Aws, tmp_path: Path) -> None:
    region = "us-west-2"
    ec2 = aws.ec2(region)
    gw = cl.make_gateway(REGION)  # the cleaner's own region
    run = run_id()
    ec2.create_key_pair(KeyName=f"kp-{run}")
    assert Cleaner._remove_one(gw, Leftover("key-pair", region, f"kp-{run}")) is False
    assert ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [f"kp-{run}"]}])["KeyPairs"] == []
    iid = ec2.run_instances(ImageId=base_ami(ec2), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = ec2.create_image(InstanceId=iid, Name=f"img-{run}")["ImageId"]
    assert Cleaner._remove_one(gw, Leftover("image", region, ami)) is False
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    sir = ec2.request_spot_instances(
        SpotPrice="0.05",
        InstanceCount=1,
        LaunchSpecification={"ImageId": base_ami(ec2), "InstanceType": "t2.micro"},
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    assert Cleaner._remove_one(gw, Leftover("spot-request", region, sir)) is False
    reqs = ec2.describe_spot_instance_requests(
        Filters=[{"Name": "spot-instance-request-id", "Values": [sir]}]
    )
    assert [r["State"] for r in reqs["SpotInstanceRequests"]] in ([], ["cancelled"])
    # a mount point of the build host (amazon-chroot) that is no longer mounted is gone already
    assert Cleaner._remove_one(gw, Leftover("mount", "", str(tmp_path))) is True


def test_a_run_is_stale_from_exactly_its_stale_age_and_a_finished_volume_is_kept(
    aws: Aws, tmp_path: Path
) -> None:
    ec2 = aws.ec2()
    c, _said = cleaner(tmp_path)
    run = run_id()
    beat = datetime.fromtimestamp(NOW - c.stale, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    vol = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=1,
        TagSpecifications=spec("volume", run, **{"amibake:heartbeat": beat}),
    )["VolumeId"]
    assert c._may_remove(Leftover("volume", REGION, vol, run)) == ""
    fresher = cleaner(tmp_path, clock=NOW - 1)[0]
    assert fresher._may_remove(Leftover("volume", REGION, vol, run)).startswith("its run is alive elsewhere")
    # amazon-ebsvolume delivers volumes: one marked amibake:finished is never removed
    done = ec2.create_volume(
        AvailabilityZone=f"{REGION}a",
        Size=1,
        TagSpecifications=spec("volume", "", **{"amibake:finished": OLD}),
    )["VolumeId"]
    assert c._may_remove(Leftover("volume", REGION, done)) == "marked amibake:finished (a delivered artifact)"
