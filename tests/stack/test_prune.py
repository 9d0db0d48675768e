"""``amibake prune`` against a seeded account (issue #15 part 3).

The stack's moto holds 40 AMIs in two regions (two builds of a template, ``web`` and ``api``, and
images of no build), instances (running, stopped, terminated), launch templates with several
versions (one naming its AMI as ``resolve:ssm:``), a launch configuration with its auto scaling
group, SSM parameters in and out of ``--ssm-path``, a public AMI, an AMI shared with another account
and a snapshot shared with one.
Asserted: the exact AMIs and snapshots removed (the end state in moto), each kept AMI's reason
(the machine-readable rows), that a dry run and a second prune remove nothing, and that a prune
interrupted between deregistering an AMI and deleting its snapshot is completed by the next.

moto gives each AMI a snapshot of its own, so a snapshot shared by two images is covered by the
planner's unit tests (tests/unit/test_prune_plan.py), and deregistration protection too (moto does
not report it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.awsproxy import AwsProxy
from tests.stackkit import MotoServer

pytestmark = pytest.mark.stack

REGIONS = ("us-east-1", "us-west-2")
OTHER_ACCOUNT = "111122223333"


def amibake(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "amibake", *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def client(env: dict[str, str], service: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def seed(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The account; region -> image name -> AMI id."""
    ids: dict[str, dict[str, str]] = {}
    for region in REGIONS:
        ec2 = client(env, "ec2", region)
        ids[region] = {}
        # registered oldest first: CreationDate (whole seconds in moto), then the name, orders them
        for build, count in (("web", 10), ("api", 8), ("", 2)):
            made = []
            for i in range(count):
                name = f"demo-{build}-{i:02d}" if build else f"unrelated-{i:02d}"
                ids[region][name] = ec2.register_image(Name=name)["ImageId"]
                made.append(ids[region][name])
            if build:
                ec2.create_tags(Resources=made, Tags=[{"Key": "amibake:build", "Value": build}])
    east, west = ids["us-east-1"], ids["us-west-2"]
    ec2 = client(env, "ec2", "us-east-1")
    ec2.run_instances(ImageId=east["demo-web-07"], MinCount=1, MaxCount=1, InstanceType="t2.micro")
    stopped = ec2.run_instances(ImageId=east["demo-web-06"], MinCount=1, MaxCount=1,
                                InstanceType="t2.micro")["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[stopped])
    gone = ec2.run_instances(ImageId=east["demo-web-05"], MinCount=1, MaxCount=1,
                             InstanceType="t2.micro")["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[gone])
    lt = ec2.create_launch_template(LaunchTemplateName="app",
                                    LaunchTemplateData={"ImageId": east["demo-web-04"]})
    lt_id = lt["LaunchTemplate"]["LaunchTemplateId"]
    for data in ({"ImageId": east["demo-web-03"]}, {"InstanceType": "t3.micro"}):
        ec2.create_launch_template_version(LaunchTemplateId=lt_id, LaunchTemplateData=data)
    ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="2")
    asg = client(env, "autoscaling", "us-east-1")
    asg.create_launch_configuration(LaunchConfigurationName="web-lc", ImageId=east["demo-web-02"],
                                    InstanceType="t2.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName="web-asg", LaunchConfigurationName="web-lc",
                                  MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"])
    ssm = client(env, "ssm", "us-east-1")
    ssm.put_parameter(Name="/images/web/pinned", Value=east["demo-web-01"], Type="String",
                      DataType="aws:ec2:image")
    ssm.put_parameter(Name="/elsewhere/web", Value=east["demo-web-00"], Type="String")
    ec2.modify_image_attribute(ImageId=east["demo-api-05"], LaunchPermission={"Add": [{"Group": "all"}]})
    ec2.modify_image_attribute(ImageId=east["demo-api-04"],
                               LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    snap = ec2.describe_images(ImageIds=[east["demo-api-03"]])["Images"][0]["BlockDeviceMappings"][0]
    ec2.modify_snapshot_attribute(SnapshotId=snap["Ebs"]["SnapshotId"], Attribute="createVolumePermission",
                                  OperationType="add", UserIds=[OTHER_ACCOUNT])

    ec2w = client(env, "ec2", "us-west-2")
    ec2w.run_instances(ImageId=west["demo-web-07"], MinCount=1, MaxCount=1, InstanceType="t2.micro")
    ltw = ec2w.create_launch_template(LaunchTemplateName="api",
                                      LaunchTemplateData={"ImageId": west["demo-api-05"]})
    ltw_id = ltw["LaunchTemplate"]["LaunchTemplateId"]
    for name in ("demo-api-04", "demo-api-03"):
        ec2w.create_launch_template_version(LaunchTemplateId=ltw_id,
                                            LaunchTemplateData={"ImageId": west[name]})
    # a version naming its AMI through an SSM parameter (outside --ssm-path)
    client(env, "ssm", "us-west-2").put_parameter(Name="/elsewhere/web", Value=west["demo-web-06"],
                                                  Type="String")
    ec2w.create_launch_template(LaunchTemplateName="via-ssm",
                                LaunchTemplateData={"ImageId": "resolve:ssm:/elsewhere/web"})
    return ids


#: (region, image name) -> the reason it is kept (a part of it); the selected images not listed go
KEPT = {
    ("us-east-1", "demo-web-09"): "newest of build web in us-east-1",
    ("us-east-1", "demo-web-08"): "one of the newest 2 of build web in us-east-1",
    ("us-east-1", "demo-web-07"): "(running)",
    ("us-east-1", "demo-web-06"): "(stopped)",
    ("us-east-1", "demo-web-04"): "launch template app",
    ("us-east-1", "demo-web-03"): "version 2, default",
    ("us-east-1", "demo-web-02"): "launch configuration web-lc",
    ("us-east-1", "demo-web-01"): "SSM parameter /images/web/pinned",
    ("us-east-1", "demo-api-07"): "newest of build api in us-east-1",
    ("us-east-1", "demo-api-06"): "one of the newest 2 of build api",
    ("us-east-1", "demo-api-05"): "public (--include-shared to remove)",
    ("us-east-1", "demo-api-04"): f"shared with {OTHER_ACCOUNT}",
    ("us-west-2", "demo-web-09"): "newest of build web in us-west-2",
    ("us-west-2", "demo-web-08"): "one of the newest 2",
    ("us-west-2", "demo-web-07"): "(running)",
    ("us-west-2", "demo-web-06"): "launch template via-ssm",
    ("us-west-2", "demo-api-07"): "newest of build api in us-west-2",
    ("us-west-2", "demo-api-06"): "one of the newest 2",
    ("us-west-2", "demo-api-05"): "launch template api",
    ("us-west-2", "demo-api-04"): "version 2",
    ("us-west-2", "demo-api-03"): "version 3",
}


def rows(stdout: str, kind: str) -> list[list[str]]:
    out = []
    for line in stdout.splitlines():
        parts = line.split(",")
        if len(parts) > 2 and parts[1] == "prune" and parts[2] == kind:
            out.append([p.replace("%!(PACKER_COMMA)", ",") for p in parts[3:]])
    return out


def account(env: dict[str, str]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """region -> the account's AMI ids, region -> its snapshot ids."""
    images, snaps = {}, {}
    for region in REGIONS:
        ec2 = client(env, "ec2", region)
        images[region] = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
        snaps[region] = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    return images, snaps


def snapshot_of(env: dict[str, str], region: str, ami: str) -> str:
    img = client(env, "ec2", region).describe_images(ImageIds=[ami])["Images"][0]
    return str(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


ARGS = ["prune", "--name", "demo-*", "--keep", "2", "--ssm-path", "/images",
        "--region", "us-east-1", "--region", "us-west-2", "-machine-readable"]


def test_prune_removes_exactly_what_no_rule_keeps_and_says_why_the_rest_is_kept(
        aws_env: dict[str, str], moto: MotoServer, tmp_path: Path) -> None:
    ids = seed(aws_env)
    selected = {(r, n) for r in REGIONS for n in ids[r] if n.startswith("demo-")}
    expected_gone = selected - set(KEPT)
    assert len(expected_gone) == 15
    snaps_of = {}
    for region in REGIONS:
        by_id = {i["ImageId"]: i["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
                 for i in client(aws_env, "ec2", region).describe_images(Owners=["self"])["Images"]}
        snaps_of.update({(region, n): by_id[ids[region][n]] for n in ids[region]})
    shared_snapshot = snaps_of[("us-east-1", "demo-api-03")]
    before_images, before_snaps = account(aws_env)

    dry = amibake(ARGS, aws_env, tmp_path)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    plan = {(r[0], r[2]): r for r in rows(dry.stdout, "image")}
    assert set(plan) == selected
    for key, why in KEPT.items():
        assert plan[key][5] == "keep", (key, plan[key])
        assert why in plan[key][6], (key, plan[key])
    assert {k for k, r in plan.items() if r[5] == "remove"} == expected_gone
    snap_rows = {r[1]: r for r in rows(dry.stdout, "snapshot")}
    assert snap_rows[shared_snapshot][3] == "keep"
    assert f"shared with {OTHER_ACCOUNT} (--include-shared to delete)" in snap_rows[shared_snapshot][4]
    assert account(aws_env) == (before_images, before_snaps), "a dry run removed something"

    shared = amibake([*ARGS, "--include-shared"], aws_env, tmp_path)
    assert shared.returncode == 0, shared.stdout + shared.stderr
    actions = {(r[0], r[2]): r[5] for r in rows(shared.stdout, "image")}
    assert actions[("us-east-1", "demo-api-05")] == actions[("us-east-1", "demo-api-04")] == "remove"
    assert {r[1]: r[3] for r in rows(shared.stdout, "snapshot")}[shared_snapshot] == "delete"

    done = amibake([*ARGS, "--yes"], aws_env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    after_images, after_snaps = account(aws_env)
    for region in REGIONS:
        gone = {ids[region][n] for r, n in expected_gone if r == region}
        assert before_images[region] - after_images[region] == gone
        deleted = {snaps_of[(r, n)] for r, n in expected_gone if r == region} - {shared_snapshot}
        assert before_snaps[region] - after_snaps[region] == deleted
    assert shared_snapshot in after_snaps["us-east-1"]
    assert rows(done.stdout, "summary")[-1][:3] == ["removed", "15", "14"]
    journal = list((Path(aws_env["AMIBAKE_STATE_DIR"]) / "prune" / "runs").glob("*.jsonl"))
    assert len(journal) == 1
    events = [json.loads(line) for line in journal[0].read_text().splitlines()]
    assert events[-1]["ev"] == "finished"
    assert sum(1 for e in events if e["ev"] == "intent" and e["kind"] == "image") == 15

    with AwsProxy(aws_env["AWS_ENDPOINT_URL"]) as proxy:
        again = amibake([*ARGS, "--yes"], {**aws_env, "AWS_ENDPOINT_URL": proxy.url}, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    # the summary's last field counts the API calls, each one request (the proxy saw them all)
    assert rows(again.stdout, "summary")[-1] == ["removed", "0", "0", str(len(proxy.requests))]
    assert account(aws_env) == (after_images, after_snaps)


def test_default_regions_and_an_interrupted_prune_is_completed_by_the_next(
        aws_env: dict[str, str], moto: MotoServer, tmp_path: Path) -> None:
    ec2 = client(aws_env, "ec2", "us-west-2")
    amis = [ec2.register_image(Name=f"solo-{i}")["ImageId"] for i in range(3)]
    for i, ami in enumerate(amis):
        ec2.create_tags(Resources=[ami], Tags=[
            {"Key": "amibake:build", "Value": "solo"},
            {"Key": "amibake:created", "Value": f"2026-01-0{i + 1}T00:00:00Z"}])
    snaps = [snapshot_of(aws_env, "us-west-2", a) for a in amis]
    # an earlier prune deregistered solo-0 and was killed before deleting its snapshot
    ec2.deregister_image(ImageId=amis[0])
    runs = Path(aws_env["AMIBAKE_STATE_DIR"]) / "prune" / "runs"
    runs.mkdir(parents=True)
    (runs / "prune-killed.jsonl").write_text(
        json.dumps({"ev": "intent", "kind": "image", "region": "us-west-2", "id": amis[0],
                    "snapshots": [snaps[0]], "run": "prune-killed"}) + "\n")

    r = amibake(["prune", "--tag", "amibake:build=solo", "--keep", "1", "-color=false"], aws_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    # the default searched every region and found the builds in us-west-2 only
    assert "AMI(s) selected in us-west-2:" in r.stdout
    assert "Dry run: nothing was removed. 1 AMI(s) and 2 snapshot(s) would be removed" in r.stdout
    assert "left by an interrupted prune" in r.stdout

    # --older-than: both are younger than an hour
    r = amibake(["prune", "--tag", "amibake:build=solo", "--older-than", "1h", "--region", "us-west-2",
                 "-machine-readable"], aws_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    got = {row[1]: (row[5], row[6].split(" (age ")[0]) for row in rows(r.stdout, "image")}
    assert got == {amis[1]: ("keep", "newer than --older-than 1h"),
                   amis[2]: ("keep", "newest of build solo in us-west-2 (--keep 0 to remove it)")}

    # --template: the builds of a template (one named "solo"), by their amibake:build tag
    (tmp_path / "t.json").write_text(json.dumps({"builders": [
        {"type": "amazon-ebs", "name": name, "region": "us-west-2", "source_ami": "ami-785db401",
         "instance_type": "t2.micro", "ssh_username": "u", "ami_name": f"{name}-{{{{timestamp}}}}"}
        for name in ("solo", "other")]}))
    stranger = ec2.register_image(Name="stranger")["ImageId"]
    ec2.create_tags(Resources=[stranger], Tags=[{"Key": "amibake:build", "Value": "not-in-the-template"}])
    r = amibake(["prune", "--template", "t.json", "--keep", "1", "--region", "us-west-2",
                 "-machine-readable"], aws_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted((row[1], row[5]) for row in rows(r.stdout, "image")) == sorted(
        [(amis[1], "remove"), (amis[2], "keep")])

    r = amibake(["prune", "--tag", "amibake:build=solo", "--keep", "1", "--yes", "--region", "us-west-2"],
                aws_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert left == {amis[2], stranger}
    have = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert snaps[0] not in have and snaps[1] not in have and snaps[2] in have
    assert '"ev": "finished"' in (runs / "prune-killed.jsonl").read_text()
