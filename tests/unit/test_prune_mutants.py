"""``amibake prune`` in process against a moto server: what it reads (launch templates, SSM parameters,
launch and volume permissions), what it shows (the human table, the ``-machine-readable`` lines),
what it removes (moto's end state), what it journals, and how it finishes an interrupted prune.
Written for the survivors of the amazon plugin's every-40th mutation sample (docs/mutation.md);
tests/unit/test_prune_cli.py covers the command line and the journals without AWS.

Each test works in an AWS account of its own (tests/unit/conftest.py's ``aws`` fixture) on the shared
moto server (its ``moto_url``), so what other tests made is not seen."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from amibake.plugins.amazon import prune as prune_module
from amibake.ui.console import Console
from tests.unit.test_cleanup_mutants import Aws

EAST, WEST = "us-east-1", "us-west-2"
OTHER_ACCOUNT = "111122223333"


def image(ec2: Any, name: str, order: int) -> tuple[str, str]:
    """A registered AMI of build ``web`` (its ``amibake:created`` tag orders it: moto dates every image
    of a test in the same second) and the snapshot moto gives it."""
    ami = ec2.register_image(Name=name, RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_tags(Resources=[ami], Tags=[{"Key": "amibake:build", "Value": "web"},
                                          {"Key": "amibake:created", "Value": f"2026-01-0{order}T00:00:00Z"}])
    got = ec2.describe_images(ImageIds=[ami])["Images"][0]
    return ami, got["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def machine(out: str) -> list[str]:
    """The ``-machine-readable`` lines without their timestamp."""
    return [line.split(",", 1)[1] for line in out.splitlines() if line]


def test_prune_keeps_what_launch_templates_ssm_and_shares_use_shows_it_and_removes_the_rest(
        aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    east, west = aws.ec2(EAST), aws.ec2(WEST)
    old, old_snap = image(east, "web-1", 1)
    templated, _ = image(east, "web-2", 2)
    published, _ = image(east, "web-3", 3)
    shared, _ = image(east, "web-4", 4)
    image(east, "web-5", 5)
    west_old, west_snap = image(west, "web-1", 1)
    image(west, "web-2", 2)
    lt = east.create_launch_template(LaunchTemplateName="web-lt", LaunchTemplateData={"ImageId": templated})
    lt_id = lt["LaunchTemplate"]["LaunchTemplateId"]
    aws._session.create_client("ssm", region_name=EAST, endpoint_url=aws.url, **aws.keys).put_parameter(
        Name="/golden/web", Value=published, Type="String")
    east.modify_image_attribute(ImageId=shared, LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    east.modify_snapshot_attribute(SnapshotId=old_snap, Attribute="createVolumePermission",
                                   OperationType="add", UserIds=[OTHER_ACCOUNT])
    select: dict[str, Any] = {"regions": (EAST, WEST), "keep": 1, "ssm_paths": ("/golden",)}

    # a selection that chooses nothing
    assert prune_module.prune(Console(color=False), names=("db-*",), **select) == 0
    out = capsys.readouterr().out
    assert "No AMI matches the selection in us-east-1, us-west-2." in out
    assert "0 AMI(s) selected" not in out

    # the dry run: the table and why each AMI and snapshot stays
    assert prune_module.prune(Console(color=False), names=("web-*",), **select) == 0
    out = capsys.readouterr().out
    assert "7 AMI(s) selected in us-east-1, us-west-2: 2 to remove, 5 kept" in out
    header = next(line for line in out.splitlines() if line.startswith("Region "))
    assert header.split() == ["Region", "AMI", "Name", "Build", "Created", "Action", "Reason"]
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith((f"{EAST} ", f"{WEST} "))}
    assert rows[templated].endswith(f"keep    launch template web-lt ({lt_id}) version 1, default")
    assert rows[published].endswith("keep    SSM parameter /golden/web (us-east-1)")
    assert rows[shared].endswith(f"keep    shared with {OTHER_ACCOUNT} (--include-shared to remove)")
    assert re.search(rf"^us-east-1 +{old_snap} +{old} +keep +shared with {OTHER_ACCOUNT} "
                     r"\(--include-shared to delete\)$", out, re.M)
    assert "Dry run: nothing was removed. 2 AMI(s) and 1 snapshot(s) would be removed" in out

    # the same with --yes, machine-readable
    assert prune_module.prune(Console(machine_readable=True), names=("web-*",), yes=True, **select) == 0
    lines = machine(capsys.readouterr().out)
    assert f"prune,image,us-east-1,{old},web-1,web,{_created(lines, old)},remove," in "\n".join(lines)
    assert f"prune,snapshot,us-east-1,{old_snap},{old},keep,shared with {OTHER_ACCOUNT} " \
           "(--include-shared to delete)" in lines
    assert f"prune,snapshot,us-west-2,{west_snap},{west_old},delete," in "\n".join(lines)
    assert f"prune,removed,image,us-east-1,{old}," in lines
    assert f"prune,removed,image,us-west-2,{west_old}," in lines
    assert f"prune,removed,snapshot,us-west-2,{west_snap}," in lines
    assert re.fullmatch(r"prune,summary,removed,2,1,\d+", lines[-1])
    # moto's end state: the two old AMIs and the unshared snapshot gone, the shared snapshot kept
    assert [i["ImageId"] for i in east.describe_images(ImageIds=[old])["Images"]] == []
    assert [i["ImageId"] for i in west.describe_images(ImageIds=[west_old])["Images"]] == []
    assert [s["SnapshotId"] for s in east.describe_snapshots(SnapshotIds=[old_snap])["Snapshots"]] == [
        old_snap]
    assert west_snap not in {s["SnapshotId"] for s in
                             west.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    # the journal: each removal's intent names its kind, and a deregistration the snapshots to follow
    (journal,) = (Path(_state()) / "prune" / "runs").glob("*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    intents = {e["id"]: e for e in events if e["ev"] == "intent"}
    assert (intents[old]["kind"], intents[old]["region"], intents[old]["snapshots"]) == ("image", EAST, [])
    assert (intents[west_old]["kind"], intents[west_old]["snapshots"]) == ("image", [west_snap])
    assert (intents[west_snap]["kind"], intents[west_snap]["image"]) == ("snapshot", west_old)
    assert events[-1]["ev"] == "finished"


def _created(lines: list[str], ami: str) -> str:
    line = next(x for x in lines if x.startswith(f"prune,image,us-east-1,{ami},"))
    created = line.split(",")[6]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)
    return created


def _state() -> str:
    return os.environ["AMIBAKE_STATE_DIR"]


def test_an_interrupted_prunes_snapshot_found_gone_is_said_journaled_and_its_journal_closed(
        aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    runs = Path(_state()) / "prune" / "runs"
    runs.mkdir(parents=True)
    snap = "snap-0123456789abcdef0"  # deleted meanwhile by someone else: moto has no such snapshot
    earlier = runs / "prune-earlier.jsonl"
    earlier.write_text(json.dumps({"ev": "intent", "kind": "image", "region": EAST,
                                   "id": "ami-0aaaaaaaaaaaaaaaa", "snapshots": [snap]}) + "\n")
    assert prune_module.prune(Console(color=False), names=("web-*",), regions=(EAST,), keep=1, yes=True) == 0
    out = capsys.readouterr().out
    assert "snapshot snap-0123456789abcdef0 (us-east-1) was already gone" in out
    assert "Removed 0 AMI(s) and 0 snapshot(s); 1 already gone, 0 failed." in out
    (journal,) = [p for p in runs.glob("*.jsonl") if p != earlier]
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(e["ev"], e.get("kind"), e.get("id")) for e in events[1:]] == [
        ("intent", "snapshot", snap), ("removed", "snapshot", snap), ("finished", None, None)]
    # the earlier prune is done now: its journal is closed as resumed
    last = json.loads(earlier.read_text().splitlines()[-1])
    assert (last["ev"], last["resumed"]) == ("finished", True)
