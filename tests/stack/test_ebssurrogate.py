"""amazon-ebssurrogate against the local stack: moto for EC2 (through the recording proxy), a real sshd
for the "instance". moto's RegisterImage keeps only the name and description, so the request itself
is asserted; the snapshots, the AMI and what is left are checked in moto."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.surrogate import EbsSurrogateBuilder
from tests.awsproxy import EMULATED, AwsProxy
from tests.stack.test_ebs_builder import SOURCE_AMI, Hooks, RecUi, ec2, make_env, tags
from tests.stack.test_reliability import assert_nothing_left, inventory, run_cleanup, start_build
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

LAUNCH = [
    {"device_name": "/dev/xvdf", "volume_size": 2, "volume_type": "gp3", "delete_on_termination": True},
    {"device_name": "/dev/xvdg", "volume_size": 1, "delete_on_termination": True},
    {"device_name": "/dev/xvdh", "volume_size": 1, "delete_on_termination": True, "omit_from_artifact": True},
]
ROOT = {"source_device_name": "/dev/xvdf", "device_name": "/dev/xvda", "delete_on_termination": True,
        "volume_size": 2, "volume_type": "gp3"}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


def make_config(stack: Stack, **over: Any) -> EbsSurrogateConfig:
    base: dict[str, Any] = dict(
        region="us-east-1", access_key="testing", secret_key="testing", custom_endpoint_ec2=stack.moto.url,
        skip_region_validation=True, source_ami=SOURCE_AMI, instance_type="t2.micro",
        ssh_username=stack.sshd.user, ssh_host="127.0.0.1", ssh_port=stack.sshd.port, ssh_timeout="60s",
        ami_name=f"surrogate-{uuid.uuid4().hex[:8]}", ami_description="surrogate test",
        ami_virtualization_type="hvm", launch_block_device_mappings=LAUNCH, ami_root_device=ROOT,
        tags={"Name": "surrogate"}, run_tags={"Name": "amibake-surrogate"},
        aws_polling={"delay_seconds": 1, "max_attempts": 30},
    )
    base.update(over)
    return EbsSurrogateConfig.model_validate(base)


@pytest.mark.effect("builder/amazon-ebssurrogate", "launch_block_device_mappings", "ami_root_device",
                    "ami_block_device_mappings", "ami_architecture", "boot_mode", "uefi_data", "tpm_support",
                    "ena_support", "sriov_support", "ami_virtualization_type", "snapshot_description",
                    "snapshot_tags", "imds_support")
def test_build_registers_the_snapshots(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, ami_architecture="arm64", boot_mode="uefi",
            uefi_data="QU1aTlVFRkk=", tpm_support="v2.0", ena_support=True, sriov_support=True,
            imds_support="v2.0", snapshot_description="surrogate snap", snapshot_tags={"Snap": "s"},
            ami_block_device_mappings=[{"device_name": "/dev/xvdz", "volume_size": 5}],
        )
        artifact = EbsSurrogateBuilder(config, make_env(ui)).run(Hooks("true"))
        assert artifact is not None and artifact.builder_id == "mitchellh.amazon.ebssurrogate"
        snaps = proxy.sent("CreateSnapshot")
        by_volume = {r.params["VolumeId"]: r for r in snaps}
        assert len(snaps) == 2 and all(r.params["Description"] == "surrogate snap" for r in snaps)
        assert all(r.tags("snapshot")["Snap"] == "s" for r in snaps)
        [reg] = proxy.sent("RegisterImage")
        p = reg.params
        assert p["Name"] == config.ami_name and p["RootDeviceName"] == "/dev/xvda"
        assert p["Architecture"] == "arm64" and p["VirtualizationType"] == "hvm"
        assert p["BootMode"] == "uefi" and p["UefiData"] == "QU1aTlVFRkk=" and p["TpmSupport"] == "v2.0"
        assert p["EnaSupport"] == "true" and p["SriovNetSupport"] == "simple"
        devices = {p[k]: k.rsplit(".", 1)[0] for k in p if k.endswith(".DeviceName")}
        assert set(devices) == {"/dev/xvda", "/dev/xvdg", "/dev/xvdz"}  # xvdh omitted, xvdf as root
        assert p[devices["/dev/xvdz"] + ".Ebs.VolumeSize"] == "5"
        root_snap = p[devices["/dev/xvda"] + ".Ebs.SnapshotId"]
        assert p[devices["/dev/xvda"] + ".Ebs.VolumeType"] == "gp3"
        imds = [r for r in proxy.sent("ModifyImageAttribute") if "ImdsSupport.Value" in r.params]
        assert imds and imds[0].params["ImdsSupport.Value"] == "v2.0"
        ena = {k: v for r in proxy.sent("ModifyInstanceAttribute") for k, v in r.params.items()
               if k.endswith(".Value")}
        assert ena == {"SriovNetSupport.Value": "simple", "EnaSupport.Value": "true"}
    c = ec2(stack)
    ami = artifact.amis["us-east-1"]
    [image] = c.describe_images(ImageIds=[ami])["Images"]
    assert image["Name"] == config.ami_name and tags(image)["Name"] == "surrogate"
    assert FINISHED_TAG in tags(image)
    mine = c.describe_snapshots(SnapshotIds=[root_snap])["Snapshots"]
    assert mine and FINISHED_TAG in tags(mine[0]) and tags(mine[0])["Snap"] == "s"
    vols = {v["VolumeId"] for v in c.describe_volumes()["Volumes"]}
    assert not vols & set(by_volume)  # the launched volumes went with the instance
    states = {i["State"]["Name"] for r in c.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}


@pytest.mark.effect("builder/amazon-ebssurrogate", "use_create_image")
def test_use_create_image_swaps_the_root_and_creates_the_image(stack: Stack, moto: MotoServer) -> None:
    with AwsProxy(moto.url) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, use_create_image=True)
        artifact = EbsSurrogateBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None
        assert not proxy.sent("RegisterImage") and not proxy.sent("CreateSnapshot")
        [create] = proxy.sent("CreateImage")
        attach = proxy.sent("AttachVolume")
        assert [r.params["Device"] for r in attach] == ["/dev/xvda"]
        detached = {r.params["VolumeId"] for r in proxy.sent("DetachVolume")}
        assert attach[0].params["VolumeId"] in detached  # the source device, moved to the root
        assert create.params["InstanceId"] == attach[0].params["InstanceId"]
    c = ec2(stack)
    assert c.describe_images(ImageIds=[artifact.amis["us-east-1"]])["Images"]
    left = {v["VolumeId"] for v in c.describe_volumes()["Volumes"]} & detached
    assert not left, left


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "ami_org_arns", "ami_ou_arns", "ami_product_codes", "deprecate_at",
    "encrypt_boot", "kms_key_id", "region_kms_key_ids", "ami_regions", "snapshot_copy_duration_minutes",
    "deregistration_protection",
)
def test_ami_attributes_encryption_and_copies(stack: Stack, moto: MotoServer) -> None:
    emulate = {k: EMULATED[k] for k in ("EnableImageDeprecation", "EnableImageDeregistrationProtection")}
    with AwsProxy(moto.url, emulate=emulate) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url,
            ami_org_arns=["arn:aws:organizations::123456789012:organization/o-abc"],
            ami_ou_arns=["arn:aws:organizations::123456789012:ou/o-abc/ou-1"],
            ami_product_codes=["pc123"], deprecate_at="2031-01-02T03:04:05Z",
            encrypt_boot=True, kms_key_id="alias/build", ami_regions=["us-west-2"],
            region_kms_key_ids={"us-east-1": "alias/build", "us-west-2": "alias/west"},
            snapshot_copy_duration_minutes=15, deregistration_protection={"enabled": True},
        )
        artifact = EbsSurrogateBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None and set(artifact.amis) == {"us-east-1", "us-west-2"}
        modified = [r.params for r in proxy.sent("ModifyImageAttribute")]
        perms = {v for p in modified for k, v in p.items() if "LaunchPermission.Add" in k}
        assert {"arn:aws:organizations::123456789012:organization/o-abc",
                "arn:aws:organizations::123456789012:ou/o-abc/ou-1"} <= perms
        assert any(p.get("ProductCode.1") == "pc123" for p in modified)
        deprecations = proxy.sent("EnableImageDeprecation")
        assert {r.region for r in deprecations} == {"us-east-1", "us-west-2"}
        assert all(r.params["DeprecateAt"].startswith("2031-01-02T03:04:05") for r in deprecations)
        protected = proxy.sent("EnableImageDeregistrationProtection")
        assert {r.region for r in protected} == {"us-east-1", "us-west-2"}
        # encrypt_boot: an intermediary registered AMI, copied encrypted into every region with its key
        [reg] = proxy.sent("RegisterImage")
        assert reg.params["Name"] != config.ami_name
        copies = {r.region: r.params for r in proxy.sent("CopyImage")}
        assert set(copies) == {"us-east-1", "us-west-2"}
        assert all(p["Encrypted"] == "true" and p["SnapshotCopyCompletionDurationMinutes"] == "15"
                   for p in copies.values())
        assert copies["us-east-1"]["KmsKeyId"] == "alias/build"
        assert copies["us-west-2"]["KmsKeyId"] == "alias/west"
        deregistered = {r.params["ImageId"] for r in proxy.sent("DeregisterImage")}
        assert deregistered and not deregistered & set(artifact.amis.values())  # the intermediary


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "ami_name", "ami_description", "tags", "tag", "snapshot_tag",
    "skip_ami_run_tags", "run_volume_tags", "run_volume_tag", "ami_users", "ami_groups", "snapshot_users",
    "snapshot_groups",
)
def test_names_tags_and_sharing(stack: Stack, moto: MotoServer) -> None:
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, ami_description="built {{ .BuildRegion }}",
            tags={"Name": "surrogate", "Team": "t"}, tag=[{"key": "Block", "value": "b"}],
            snapshot_tag=[{"key": "SnapBlock", "value": "s"}], run_tags={"Name": "builder", "RunOnly": "r"},
            skip_ami_run_tags=True, run_volume_tags={"Vol": "v"},
            run_volume_tag=[{"name": "Vol2", "value": "w"}],
            ami_users=["123456789012"], ami_groups=["all"], snapshot_users=["210987654321"],
            snapshot_groups=["all"],
        )
        env = make_env(RecUi())
        env.render = lambda text, data: text.replace("{{ .BuildRegion }}", data["BuildRegion"])
        artifact = EbsSurrogateBuilder(config, env).run(Hooks("true"))
        assert artifact is not None
        [reg] = proxy.sent("RegisterImage")
        assert reg.params["Name"] == config.ami_name and reg.params["Description"] == "built us-east-1"
        run = proxy.sent("RunInstances")[0]
        assert run.tags("volume")["Vol"] == "v" and run.tags("volume")["Vol2"] == "w"
        shared = {v for r in proxy.sent("ModifyImageAttribute") for k, v in r.params.items()
                  if "LaunchPermission.Add" in k}
        assert {"123456789012", "all"} <= shared
        snap_shares = {v for r in proxy.sent("ModifySnapshotAttribute") for k, v in r.params.items()
                       if "CreateVolumePermission.Add" in k}
        assert {"210987654321", "all"} <= snap_shares
    c = ec2(stack)
    ami = artifact.amis["us-east-1"]
    [image] = c.describe_images(ImageIds=[ami])["Images"]
    t = tags(image)
    assert t["Name"] == "surrogate" and t["Team"] == "t" and t["Block"] == "b" and "RunOnly" not in t
    own = c.describe_snapshots(Filters=[{"Name": "tag:SnapBlock", "Values": ["s"]}])["Snapshots"]
    assert own and all(tags(x)["Team"] == "t" for x in own)


@pytest.mark.effect("builder/amazon-ebssurrogate", "force_deregister", "force_delete_snapshot")
def test_force_deregister_replaces_an_ami_of_the_same_name(stack: Stack, moto: MotoServer) -> None:
    c = ec2(stack)
    name = f"surrogate-stale-{uuid.uuid4().hex[:6]}"
    iid = c.run_instances(ImageId=SOURCE_AMI, InstanceType="t2.micro", MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    stale = c.create_image(InstanceId=iid, Name=name)["ImageId"]
    stale_snaps = [b["Ebs"]["SnapshotId"] for b in c.describe_images(ImageIds=[stale])["Images"][0][
        "BlockDeviceMappings"] if "Ebs" in b]
    c.terminate_instances(InstanceIds=[iid])
    with pytest.raises(BuildError, match="is used by an existing AMI"):
        EbsSurrogateBuilder(make_config(stack, ami_name=name), make_env(RecUi())).run(Hooks("true"))
    config = make_config(stack, ami_name=name, force_deregister=True, force_delete_snapshot=True)
    artifact = EbsSurrogateBuilder(config, make_env(RecUi())).run(Hooks("true"))
    assert artifact is not None
    assert c.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"][0]["ImageId"] != stale
    left = {s["SnapshotId"] for s in c.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert stale_snaps and not left & set(stale_snaps)


@pytest.mark.effect("builder/amazon-ebssurrogate", "skip_save_build_region", "skip_region_validation")
def test_skip_save_build_region_and_region_validation(stack: Stack, moto: MotoServer) -> None:
    bad = make_config(stack, skip_region_validation=False, ami_regions=["xx-nowhere-9"])
    with pytest.raises(BuildError, match="Invalid region: xx-nowhere-9"):
        EbsSurrogateBuilder(bad, make_env(RecUi())).run(Hooks("true"))
    config = make_config(stack, ami_regions=["us-west-2"], skip_save_build_region=True)
    artifact = EbsSurrogateBuilder(config, make_env(RecUi())).run(Hooks("true"))
    assert artifact is not None and list(artifact.amis) == ["us-west-2"]
    assert ec2(stack).describe_images(Owners=["self"])["Images"] == []
    assert [i["Name"] for i in ec2(stack, "us-west-2").describe_images(Owners=["self"])["Images"]] == [
        config.ami_name]


def test_failing_provisioner_leaves_nothing(stack: Stack, moto: MotoServer) -> None:
    before = inventory(moto)
    with pytest.raises(BuildError, match="non-zero exit status"):
        EbsSurrogateBuilder(make_config(stack), make_env(RecUi())).run(Hooks("exit 3"))
    assert_nothing_left(moto, before)


TEMPLATE: dict[str, Any] = {
    "variables": {"ssh_host": "", "ssh_port": "22", "ssh_username": "", "ami_name": ""},
    "builders": [{
        "type": "amazon-ebssurrogate", "region": "us-east-1", "source_ami": SOURCE_AMI,
        "instance_type": "t2.micro", "ssh_username": "{{user `ssh_username`}}",
        "ssh_host": "{{user `ssh_host`}}", "ssh_port": "{{user `ssh_port`}}", "ssh_timeout": "60s",
        "ami_name": "{{user `ami_name`}}", "ami_virtualization_type": "hvm",
        "launch_block_device_mappings": LAUNCH[:1], "ami_root_device": ROOT,
    }],
    "provisioners": [{"type": "shell", "inline": ["echo provisioned"]}],
}


@pytest.mark.parametrize("point", ["wait-snapshot-completed", "after-register-image"])
def test_sigkill_then_cleanup_leaves_nothing(stack: Stack, moto: MotoServer, tmp_path: Path,
                                             point: str) -> None:
    before = inventory(moto)
    template = tmp_path / "surrogate.json"
    template.write_text(json.dumps(TEMPLATE))
    b = start_build(stack, template, tmp_path, pause_at=point)
    b.wait_marker(point)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    res = run_cleanup(stack, b, "--run", b.run_id())
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert_nothing_left(moto, before)
