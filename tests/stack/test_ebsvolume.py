"""amazon-ebsvolume against the local stack: moto for EC2 (through the recording proxy), a real sshd
for the "instance". A build keeps the ``ebs_volumes`` (and snapshots of those that ask), removes the
instance; a failed or killed build leaves nothing."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.config_ebsvolume import EbsVolumeConfig
from amibake.plugins.amazon.ebsvolume import EbsVolumeBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.liveness import FINISHED_TAG
from tests.awsproxy import AwsProxy
from tests.stack.test_ebs_builder import SOURCE_AMI, Hooks, RecUi, ec2, make_env, tags
from tests.stack.test_reliability import assert_nothing_left, inventory, run_cleanup, start_build
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


def make_config(stack: Stack, **over: Any) -> EbsVolumeConfig:
    base: dict[str, Any] = dict(
        region="us-east-1", access_key="testing", secret_key="testing", custom_endpoint_ec2=stack.moto.url,
        source_ami=SOURCE_AMI, instance_type="t2.micro",
        ssh_username=stack.sshd.user, ssh_host="127.0.0.1", ssh_port=stack.sshd.port, ssh_timeout="60s",
        run_tags={"Name": "amibake-ebsvolume"}, aws_polling={"delay_seconds": 1, "max_attempts": 30},
    )
    base.update(over)
    return EbsVolumeConfig.model_validate(base)


VOLUMES = [
    {"device_name": "/dev/sdb", "volume_size": 2, "volume_type": "gp3", "delete_on_termination": False,
     "tags": {"Name": "data-{{ .BuildRegion }}", "Role": "data"}, "snapshot_volume": True,
     "snapshot_description": "data snapshot", "snapshot_tags": {"Snap": "yes"},
     "snapshot_users": ["123456789012"], "snapshot_groups": ["all"]},
    {"device_name": "/dev/sdc", "volume_size": 1, "delete_on_termination": False,
     "tag": [{"key": "Role", "value": "logs"}]},
    {"device_name": "/dev/sdd", "volume_size": 1, "delete_on_termination": True},
]


@pytest.mark.effect("builder/amazon-ebsvolume", "ebs_volumes", "run_volume_tags", "run_volume_tag",
                    "ena_support", "sriov_support")
def test_build_keeps_the_volumes_and_snapshots(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    with AwsProxy(moto.url) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ebs_volumes=VOLUMES,
                             run_volume_tags={"Temp": "launch"}, run_volume_tag=[{"key": "T2", "value": "b"}],
                             ena_support=True, sriov_support=True)
        env = make_env(ui)
        env.render = lambda text, data: text.replace("{{ .BuildRegion }}", data["BuildRegion"])
        artifact = EbsVolumeBuilder(config, env).run(Hooks("true"))
        assert artifact is not None
        run = proxy.sent("RunInstances")[0]
        p = run.params
        devices = {p[k]: k.rsplit(".", 1)[0] for k in p if k.endswith(".DeviceName")}
        assert set(devices) == {"/dev/sdb", "/dev/sdc", "/dev/sdd"}
        assert p[devices["/dev/sdb"] + ".Ebs.VolumeType"] == "gp3"
        assert p[devices["/dev/sdd"] + ".Ebs.DeleteOnTermination"] == "true"
        assert run.tags("volume")["Temp"] == "launch" and run.tags("volume")["T2"] == "b"
        deleted = proxy.sent("DeleteTags")
        assert len(deleted) == 1
        assert {deleted[0].params[k] for k in deleted[0].params if k.endswith(".Key")} == {"Temp", "T2"}
        modified = proxy.sent("ModifyInstanceAttribute")
        assert {k: v for r in modified for k, v in r.params.items() if k.endswith(".Value")} == {
            "SriovNetSupport.Value": "simple", "EnaSupport.Value": "true"}
        snap_req = proxy.sent("CreateSnapshot")
        assert len(snap_req) == 1 and snap_req[0].params["Description"] == "data snapshot"
        assert snap_req[0].tags("snapshot")["Snap"] == "yes"
        shares = proxy.sent("ModifySnapshotAttribute")
        added = sorted(v for r in shares for k, v in r.params.items() if ".Add." in k)
        assert added == ["123456789012", "all"]

    c = ec2(stack)
    [vol_region] = artifact.volumes
    vols = {v["VolumeId"]: v for v in c.describe_volumes(VolumeIds=artifact.volumes[vol_region])["Volumes"]}
    assert len(vols) == 2
    by_role = {tags(v)["Role"]: v for v in vols.values()}
    data, logs = tags(by_role["data"]), tags(by_role["logs"])
    assert data["Name"] == "data-us-east-1" and "Temp" not in data and "T2" not in data
    assert FINISHED_TAG in data and FINISHED_TAG in logs
    assert by_role["data"]["Size"] == 2 and by_role["data"]["State"] == "available"
    [snap] = artifact.snapshots["us-east-1"]
    s = c.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert s["VolumeId"] == by_role["data"]["VolumeId"] and tags(s)["Snap"] == "yes"
    assert FINISHED_TAG in tags(s)
    perms = c.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert {p.get("UserId") or p.get("Group") for p in perms["CreateVolumePermissions"]} == {
        "123456789012", "all"}
    states = {i["State"]["Name"] for r in c.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    ids = [*(f"us-east-1:{v}" for v in vols), f"us-east-1:{snap}"]
    assert artifact.id == ",".join(sorted(ids))
    assert artifact.string() == "EBS Volumes were created:\n\n" + "\n".join(sorted(ids))
    assert f"==> Created Volumes: {artifact.string()}" in ui.text


def test_failing_provisioner_leaves_nothing(stack: Stack, moto: MotoServer) -> None:
    before = inventory(moto)
    config = make_config(stack, ebs_volumes=VOLUMES[:2])
    with pytest.raises(BuildError, match="non-zero exit status"):
        EbsVolumeBuilder(config, make_env(RecUi())).run(Hooks("exit 3"))
    assert_nothing_left(moto, before)


TEMPLATE: dict[str, Any] = {
    "variables": {"ssh_host": "", "ssh_port": "22", "ssh_username": "", "ami_name": ""},
    "builders": [{
        "type": "amazon-ebsvolume", "region": "us-east-1", "source_ami": SOURCE_AMI,
        "instance_type": "t2.micro", "ssh_username": "{{user `ssh_username`}}",
        "ssh_host": "{{user `ssh_host`}}", "ssh_port": "{{user `ssh_port`}}", "ssh_timeout": "60s",
        "ebs_volumes": [{"device_name": "/dev/sdb", "volume_size": 1, "delete_on_termination": False,
                         "snapshot_volume": True,
                         "tags": {"Name": "{{user `ami_name`}}", "Region": "{{ .BuildRegion }}"}}],
    }],
    "provisioners": [{"type": "shell", "inline": ["echo provisioned"]}],
}


@pytest.mark.parametrize("point", ["after-run-instances", "wait-snapshot-completed"])
def test_sigkill_then_cleanup_leaves_nothing(stack: Stack, moto: MotoServer, tmp_path: Path,
                                             point: str) -> None:
    before = inventory(moto)
    template = tmp_path / f"ebsvolume-{uuid.uuid4().hex[:6]}.json"
    template.write_text(json.dumps(TEMPLATE))
    b = start_build(stack, template, tmp_path, pause_at=point)
    b.wait_marker(point)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    res = run_cleanup(stack, b, "--run", b.run_id())
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert_nothing_left(moto, before)


def test_cli_build_then_cleanup_keeps_the_delivered_volumes(stack: Stack, moto: MotoServer,
                                                            tmp_path: Path) -> None:
    """`amibake build` of an amazon-ebsvolume template, then `amibake cleanup --run`: the volume and
    its snapshot (marked finished, listed in the journal) stay."""
    template = tmp_path / "ebsvolume.json"
    template.write_text(json.dumps(TEMPLATE))
    b = start_build(stack, template, tmp_path)
    assert b.proc.wait(120) == 0, b.stdout()[-3000:] + b.stderr()[-2000:]
    out = b.stdout()
    assert "Created Volumes: EBS Volumes were created:" in out
    c = ec2(stack)
    vols = c.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [b.ami_name]}])["Volumes"]
    [vol] = vols
    assert tags(vol)["Region"] == "us-east-1"
    assert f"us-east-1:{vol['VolumeId']}" in out
    snaps = c.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [vol["VolumeId"]]}])["Snapshots"]
    [snap] = snaps
    res = run_cleanup(stack, b, "--run", b.run_id(), "--older-than", "0s")
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert c.describe_volumes(VolumeIds=[vol["VolumeId"]])["Volumes"]
    assert c.describe_snapshots(SnapshotIds=[snap["SnapshotId"]])["Snapshots"]
