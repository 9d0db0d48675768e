"""``amibake build`` end to end as a user runs it: a subprocess against the local stack.

Each test asserts the emulator's end state (AMIs, snapshots, launch permissions, block devices in
every region; every temporary resource gone) and the provisioners' real effects through sshd.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.endstate import end_state, leftovers
from tests.stackkit import Stack, amibake_exe

pytestmark = pytest.mark.stack

AMIBAKE = [amibake_exe()]


def amibake(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AMIBAKE, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


def builder(stack: Stack, name: str, **extra: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "amazon-ebs",
        "name": name,
        "region": "us-east-1",
        "source_ami": "ami-785db401",
        "instance_type": "t2.micro",
        "ssh_username": stack.sshd.user,
        "ssh_host": "127.0.0.1",
        "ssh_port": stack.sshd.port,
        "ssh_timeout": "60s",
        "ami_name": f"e2e-{name}-{{{{timestamp}}}}",
    }
    b.update(extra)
    return b


@pytest.fixture
def marker() -> Any:
    tag = uuid.uuid4().hex[:10]
    yield tag
    for p in Path("/tmp").glob(f"amibake-e2e-{tag}*"):
        subprocess.run(["rm", "-rf", str(p)], check=False)


def test_full_build(stack: Stack, aws_env: dict[str, str], tmp_path: Path, marker: str) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "hello.txt").write_text("hello from the file provisioner\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "a.txt").write_text("a\n")
    (tmp_path / "tree" / "sub" / "b.txt").write_text("b\n")
    (tmp_path / "script.sh").write_text('#!/bin/sh\necho "script sees GREETING=$GREETING"\n')
    remote = f"/tmp/amibake-e2e-{marker}"
    template = {
        "variables": {"greeting": "hi there", "secret": "s3cr3t-canary-value"},
        "sensitive-variables": ["secret"],
        "builders": [
            builder(
                stack,
                "full",
                ami_description="built from {{ .SourceAMI }} in {{ .BuildRegion }}",
                ami_regions=["us-west-2"],
                ami_users=["111122223333"],
                tags={
                    "Name": "e2e-{{timestamp}}",
                    "Source": "{{ .SourceAMIName }}",
                    "Team": "{{user `greeting`}}",
                },
                snapshot_tags={"Kind": "snapshot"},
                run_tags={"Name": "e2e-builder"},
                launch_block_device_mappings=[
                    {
                        "device_name": "/dev/sdf",
                        "volume_size": 2,
                        "volume_type": "gp2",
                        "delete_on_termination": True,
                    }
                ],
                ami_block_device_mappings=[
                    {
                        "device_name": "/dev/sdg",
                        "volume_size": 3,
                        "volume_type": "gp2",
                        "delete_on_termination": True,
                    }
                ],
            )
        ],
        "provisioners": [
            {
                "type": "shell",
                "environment_vars": ["GREETING={{user `greeting`}}", "SECRET={{user `secret`}}"],
                "inline": [
                    f"mkdir -p {remote}",
                    f'echo "$PACKER_BUILD_NAME $PACKER_BUILDER_TYPE $GREETING" > {remote}/shell.txt',
                    "echo secret is $SECRET",
                ],
            },
            {"type": "shell", "script": "script.sh", "environment_vars": ["GREETING=from-script"]},
            {"type": "file", "source": "files/hello.txt", "destination": f"{remote}/hello.txt"},
            {"type": "file", "source": "tree/", "destination": f"{remote}/tree"},
            {
                "type": "file",
                "direction": "download",
                "source": f"{remote}/shell.txt",
                "destination": "downloaded.txt",
            },
            {"type": "shell-local", "inline": [f"echo local $PACKER_BUILD_NAME > {tmp_path}/local.txt"]},
        ],
        "post-processors": [
            {"type": "manifest", "output": "manifest.json", "strip_path": True, "custom_data": {"k": "v"}}
        ],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    r = amibake(["build", "-color=false", "t.json"], aws_env, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # Packer's output shape
    assert "==> full: Prevalidating AMI Name: e2e-full-" in out
    assert "==> Builds finished. The artifacts of successful builds are:" in out
    assert "--> full: AMIs were created:" in out
    # provisioners really ran on the "instance" (the local sshd) and locally
    assert Path(f"{remote}/shell.txt").read_text() == "full amazon-ebs hi there\n"
    assert Path(f"{remote}/hello.txt").read_text() == "hello from the file provisioner\n"
    assert Path(f"{remote}/tree/a.txt").read_text() == "a\n"
    assert Path(f"{remote}/tree/sub/b.txt").read_text() == "b\n"
    assert (tmp_path / "downloaded.txt").read_text() == "full amazon-ebs hi there\n"
    assert (tmp_path / "local.txt").read_text() == "local full\n"
    assert "script sees GREETING=from-script" in out
    # the sensitive variable never shows
    assert "s3cr3t-canary-value" not in out
    assert "secret is <sensitive>" in out

    state = end_state(aws_env, ("us-east-1", "us-west-2"))
    assert leftovers(state) == {}
    east, west = state["us-east-1"], state["us-west-2"]
    assert len(east["images"]) == 1 and len(west["images"]) == 1
    img = east["images"][0]
    assert img["name"].startswith("e2e-full-")
    assert img["state"] == "available"
    assert img["description"] == "built from ami-785db401 in us-east-1"
    assert img["tags"]["Team"] == "hi there"
    assert img["tags"]["Source"].startswith("ubuntu/images/")
    assert img["launch_permissions"] == ["111122223333"]
    # moto's CreateImage ignores BlockDeviceMappings and snapshots only the root device: the image has
    # the source's root volume (moto: 15 GiB "standard"); the copies must carry the same devices
    assert [device[0] for device in img["block_devices"]] == ["/dev/sda1"], img["block_devices"]
    for region_state in (east, west):
        image = region_state["images"][0]
        assert image["name"] == img["name"]
        assert image["launch_permissions"] == ["111122223333"]
        assert image["block_devices"] == img["block_devices"]
        for snap in image["snapshots"]:
            assert region_state["snapshots"][snap]["tags"].get("Kind") == "snapshot"
    assert [i["tags"].get("Name") for i in east["instances"]] == ["e2e-builder"]
    assert all(i["state"] == "terminated" for i in east["instances"])

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (build,) = manifest["builds"]
    assert build["name"] == "full" and build["builder_type"] == "amazon-ebs"
    assert build["custom_data"] == {"k": "v"}
    assert set(build["artifact_id"].split(",")) == {
        f"us-east-1:{img['id']}",
        f"us-west-2:{west['images'][0]['id']}",
    }
    assert manifest["last_run_uuid"] == build["packer_run_uuid"]


def failing_template(stack: Stack, marker: str) -> dict[str, Any]:
    return {
        "builders": [builder(stack, "failing")],
        "provisioners": [
            {"type": "shell", "inline": [f"echo ran > /tmp/amibake-e2e-{marker}-ran", "exit 3"]},
            {"type": "shell", "inline": [f"echo never > /tmp/amibake-e2e-{marker}-never"]},
        ],
    }


def test_failing_provisioner_leaves_nothing(
    stack: Stack, aws_env: dict[str, str], tmp_path: Path, marker: str
) -> None:
    (tmp_path / "t.json").write_text(json.dumps(failing_template(stack, marker)))
    r = amibake(["build", "-color=false", "t.json"], aws_env, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Script exited with non-zero exit status: 3" in out
    assert "Build 'failing' errored after" in out
    assert "==> Builds finished but no artifacts were created." in out
    assert Path(f"/tmp/amibake-e2e-{marker}-ran").exists()
    assert not Path(f"/tmp/amibake-e2e-{marker}-never").exists()
    state = end_state(aws_env, ("us-east-1",))
    assert leftovers(state) == {}
    assert state["us-east-1"]["images"] == []


def test_on_error_abort_leaves_resources_and_names_them(
    stack: Stack, aws_env: dict[str, str], tmp_path: Path, marker: str
) -> None:
    (tmp_path / "t.json").write_text(json.dumps(failing_template(stack, marker)))
    r = amibake(["build", "-color=false", "-on-error=abort", "t.json"], aws_env, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    state = end_state(aws_env, ("us-east-1",))
    left = leftovers(state)
    (instance,) = state["us-east-1"]["running_instances"]
    (key_pair,) = state["us-east-1"]["key_pairs"]
    (group,) = state["us-east-1"]["security_groups"]
    assert set(left) >= {"us-east-1:running_instances", "us-east-1:key_pairs", "us-east-1:security_groups"}
    for name in (instance["id"], key_pair, group):
        assert name in out, f"{name} not listed in:\n{out}"


def test_only_and_parallel_builds(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    # shell-local, once per build: marks its start and end in MARKS, and samples how many builds are
    # in their provisioner at once (starts - ends) as it starts and before it ends. It stays until a
    # second build has started (bounded: 60 s), then holds a window of up to 5 s open for a third:
    # with -parallel-builds=2 two builds always overlap and no third joins them; unbounded, it does.
    probe = r"""
d="$MARKS"; me="$PACKER_BUILD_NAME"
count() { ls "$d" | grep -c "^$1-" || true; }
sample() { echo $(( $(count start) - $(count end) )) >> "$d/seen-$me"; }
: > "$d/start-$me"; sample
i=0; while [ "$(count start)" -lt 2 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
i=0; while [ "$(count start)" -lt 3 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
sample; : > "$d/end-$me"
"""
    marks = tmp_path / "marks"
    marks.mkdir()
    template = {
        "builders": [builder(stack, f"b{i}") for i in range(4)],
        "provisioners": [{"type": "shell-local", "inline": [probe]}],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    env = {**aws_env, "MARKS": str(marks), "AMIBAKE_STATE_DIR": str(tmp_path / "state")}
    r = amibake(["build", "-color=false", "-only=b0,b1,b3", "-parallel-builds=2", "t.json"], env, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for name in ("b0", "b1", "b3"):
        assert f"--> {name}: AMIs were created:" in out
    assert "b2:" not in out
    state = end_state(aws_env, ("us-east-1",))
    assert sorted(i["name"].split("-")[1] for i in state["us-east-1"]["images"]) == ["b0", "b1", "b3"]
    assert leftovers(state) == {}
    # -parallel-builds=2 bounds the builds running at once, and two did run at once
    assert sorted(p.name for p in marks.glob("end-*")) == ["end-b0", "end-b1", "end-b3"]
    seen = [int(n) for p in marks.glob("seen-*") for n in p.read_text().split()]
    assert max(seen) == 2, seen


def test_machine_readable_artifacts(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"builders": [builder(stack, "mr")]}))
    r = amibake(["build", "-machine-readable", "t.json"], aws_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line.split(",") for line in r.stdout.splitlines()]
    assert all(len(row) >= 3 and row[0].isdigit() for row in rows), r.stdout
    kinds = {(row[1], row[2]) for row in rows}
    assert ("mr", "artifact-count") in kinds
    ids = [row[5] for row in rows if row[2] == "artifact" and row[4] == "id"]
    assert ids and ids[0].startswith("us-east-1:ami-")


def test_bad_template_gives_error_not_traceback(aws_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text('{"builders": [{"type": "amazon-ebs", "ami_nmae": "x"}]}')
    r = amibake(["build", "t.json"], aws_env, tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "ami_nmae" in r.stderr and "ami_name" in r.stderr


def test_long_ami_wait_shows_progress(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    from tests.awsproxy import AwsProxy

    proxy = AwsProxy(aws_env["AWS_ENDPOINT_URL"], delays={"image_pending": 7.0})
    url = proxy.start()
    try:
        slow = builder(stack, "slow", aws_polling={"delay_seconds": 1, "max_attempts": 60})
        (tmp_path / "t.json").write_text(json.dumps({"builders": [slow]}))
        r = amibake(["build", "-color=false", "t.json"], {**aws_env, "AWS_ENDPOINT_URL": url}, tmp_path)
    finally:
        proxy.stop()
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    progress = [line for line in out.splitlines() if "snapshot progress" in line]
    assert progress, out
    assert progress[0].startswith("    slow: AMI ami-")


def test_spot_build_through_launch_template_and_fleet(
    stack: Stack, aws_env: dict[str, str], tmp_path: Path
) -> None:
    import re

    from tests.awsproxy import AwsProxy
    from tests.endstate import client

    spot = builder(stack, "spot", spot_price="auto", spot_instance_types=["t2.micro", "t3.micro"])
    del spot["instance_type"]
    (tmp_path / "t.json").write_text(json.dumps({"builders": [spot]}))
    ec2 = client(aws_env, "us-east-1")
    with AwsProxy(aws_env["AWS_ENDPOINT_URL"]) as proxy:
        env = {**aws_env, "AWS_ENDPOINT_URL": proxy.url, "AMIBAKE_STATE_DIR": str(tmp_path / "state")}
        r = amibake(["build", "-color=false", "t.json"], env, tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out
        ok = [req for req in proxy.requests if req.status == 200]
    # a spot launch template, then an instant fleet from it over both types; no RunInstances
    (created,) = [req for req in ok if req.action == "CreateLaunchTemplate"]
    assert created.params["LaunchTemplateData.InstanceMarketOptions.MarketType"] == "spot"
    lt_id = created.response.decode().split("<launchTemplateId>", 1)[1].split("<", 1)[0]
    (fleet,) = [req for req in ok if req.action == "CreateFleet"]
    assert fleet.params["Type"] == "instant"
    assert fleet.params["TargetCapacitySpecification.DefaultTargetCapacityType"] == "spot"
    assert fleet.params["LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateId"] == lt_id
    assert {v for k, v in fleet.params.items() if k.endswith(".InstanceType")} == {"t2.micro", "t3.micro"}
    assert not [req for req in ok if req.action in ("RunInstances", "RequestSpotInstances")]
    # the build ran on the fleet's instance, and cleaned up the template and the instance
    fleet_instances = set(re.findall(r"\bi-[0-9a-f]{8,17}\b", fleet.response.decode()))
    assert len(fleet_instances) == 1, fleet.response
    order = [req.action for req in ok]
    assert order.index("CreateLaunchTemplate") < order.index("CreateFleet") < order.index("CreateImage")
    (image,) = [req for req in ok if req.action == "CreateImage"]
    assert image.params["InstanceId"] in fleet_instances
    (deleted,) = [req for req in ok if req.action == "DeleteLaunchTemplate"]
    assert deleted.params["LaunchTemplateId"] == lt_id
    state = end_state(aws_env, ("us-east-1",))
    assert leftovers(state) == {}
    assert len(state["us-east-1"]["images"]) == 1
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert {i["id"] for i in state["us-east-1"]["instances"]} == fleet_instances
    assert all(i["state"] == "terminated" for i in state["us-east-1"]["instances"])


@pytest.mark.effect("builder/amazon-ebs", "vpc_filter", "subnet_filter", "security_group_filter")
def test_vpc_subnet_and_security_group_filters(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    from tests.endstate import client

    ec2 = client(aws_env, "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "build-vpc"}])
    small = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/28")["Subnet"]["SubnetId"]
    big = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24")["Subnet"]["SubnetId"]
    ec2.create_tags(Resources=[small, big], Tags=[{"Key": "Role", "Value": "build"}])
    group = ec2.create_security_group(GroupName="build-ssh", Description="ssh", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[group], Tags=[{"Key": "Role", "Value": "build"}])

    def run(subnet_filter: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        b = builder(
            stack,
            "net",
            vpc_filter={"filters": {"tag:Name": "build-vpc"}},
            subnet_filter=subnet_filter,
            security_group_filter={"filters": {"tag:Role": "build"}},
        )
        (tmp_path / "t.json").write_text(json.dumps({"builders": [b]}))
        return amibake(["build", "-color=false", "t.json"], aws_env, tmp_path)

    r = run({"filters": {"tag:Role": "build"}})
    assert r.returncode == 1
    assert "Your filter matched 2 Subnets" in r.stdout + r.stderr

    r = run({"filters": {"tag:Role": "build"}, "most_free": True})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert f"Found VPC ID: {vpc}" in out
    assert f"Found Subnet ID: {big}" in out
    assert f"Found Security Group(s): {group}" in out
    (instance,) = [i for res in ec2.describe_instances()["Reservations"] for i in res["Instances"]]
    assert instance["SubnetId"] == big
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [group]
    # the given group is the user's: it stays; no temporary one is left
    groups = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert "build-ssh" in groups
    assert not any(name.startswith("packer_") for name in groups)
