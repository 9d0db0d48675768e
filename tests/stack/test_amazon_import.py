"""The ``amazon-import`` post-processor (issue #12) against the stack: moto's S3, and the VM Import
EMULATION (tests/vmimport_emulation.py), itself checked here against a real client (boto3).

A null build makes a raw disk image with shell-local, artifice hands it on, and amazon-import
uploads it, imports it, renames, tags and shares the AMI, and deletes the upload. Every EC2 call
goes through the recording proxy, so the exact requests are asserted; the end state is read from moto.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.awsproxy import AwsProxy
from tests.stack.test_reliability import assert_nothing_left, inventory, run_cleanup, start_build
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

REGION = "us-east-1"


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"imports-{uuid.uuid4().hex[:10]}"
    client(moto, "s3").create_bucket(Bucket=name)
    iam = client(moto, "iam")
    for role in ("vmimport", "custom-import"):
        try:
            trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "vmie.amazonaws.com"},
                                    "Action": "sts:AssumeRole"}]}
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        except iam.exceptions.EntityAlreadyExistsException:
            pass
    return name


def objects(moto: MotoServer, bucket: str) -> list[str]:
    return [o["Key"] for o in client(moto, "s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


# ---- the emulation, against boto3 ---------------------------------------------------------------


def test_the_vm_import_emulation_answers_boto3_as_aws_documents(moto: MotoServer, bucket: str) -> None:
    s3, ec2 = client(moto, "s3"), client(moto, "ec2")
    s3.put_object(Bucket=bucket, Key="disk.raw", Body=b"\0" * 4096)
    container = {"Format": "raw", "UserBucket": {"S3Bucket": bucket, "S3Key": "disk.raw"}}
    started = ec2.import_image(DiskContainers=[container], Architecture="x86_64", Platform="Linux",
                               ClientToken="tok-1", LicenseType="BYOL")
    assert started["ImportTaskId"].startswith("import-ami-") and started["Status"] == "active"
    assert started["StatusMessage"] == "pending" and started["LicenseType"] == "BYOL"
    # the same client token: the same task
    assert ec2.import_image(DiskContainers=[container], ClientToken="tok-1")["ImportTaskId"] == \
        started["ImportTaskId"]
    seen = []
    for _ in range(10):
        [task] = ec2.describe_import_image_tasks(ImportTaskIds=[started["ImportTaskId"]])["ImportImageTasks"]
        seen.append(task["StatusMessage"] if task["Status"] == "active" else task["Status"])
        if task["Status"] != "active":
            break
    assert seen == ["converting", "booted", "completed"]  # three stages per poll
    [image] = ec2.describe_images(ImageIds=[task["ImageId"]])["Images"]
    assert image["Name"] == started["ImportTaskId"] and image["RootDeviceType"] == "ebs"
    assert task["SnapshotDetails"][0]["SnapshotId"] == image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    with pytest.raises(ec2.exceptions.ClientError, match="IncorrectState"):
        ec2.cancel_import_task(ImportTaskId=started["ImportTaskId"])
    # a missing role fails the call; a missing object fails the task; cancel ends an active one
    with pytest.raises(ec2.exceptions.ClientError, match="service role nope provided does not exist"):
        ec2.import_image(DiskContainers=[container], RoleName="nope")
    missing = dict(container, UserBucket={"S3Bucket": bucket, "S3Key": "absent.raw"})
    tid = ec2.import_image(DiskContainers=[missing])["ImportTaskId"]
    [task] = ec2.describe_import_image_tasks(ImportTaskIds=[tid])["ImportImageTasks"]
    assert task["Status"] == "deleted" and "Unable to find the S3 object" in task["StatusMessage"]
    tid = ec2.import_image(DiskContainers=[container])["ImportTaskId"]
    cancelled = ec2.cancel_import_task(ImportTaskId=tid)
    assert (cancelled["PreviousState"], cancelled["State"]) == ("active", "deleting")
    [task] = ec2.describe_import_image_tasks(ImportTaskIds=[tid])["ImportImageTasks"]
    assert task["Status"] == "deleted" and "ImageId" not in task


# ---- amibake build with amazon-import -----------------------------------------------------------


def template(bucket: str, disk_bytes: int, **import_opts: Any) -> dict[str, Any]:
    return {
        "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [{"type": "shell-local", "inline": [
            f"head -c {disk_bytes} /dev/zero > disk.raw",
            "printf 'bootsector' | dd of=disk.raw conv=notrunc"]}],
        "post-processors": [[
            {"type": "artifice", "files": ["disk.raw"]},
            {"type": "amazon-import", "region": REGION, "s3_bucket_name": bucket, "format": "raw",
             "s3_key_name": "imports/{{ build_name }}-{{timestamp}}.raw", **import_opts},
        ]],
    }


def build(tmp_path: Path, env: dict[str, str], moto: MotoServer,
          t: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], AwsProxy]:
    (tmp_path / "t.json").write_text(json.dumps(t))
    with AwsProxy(moto.url) as proxy:
        res = subprocess.run([amibake_exe(), "build", "-color=false", "t.json"], cwd=tmp_path,
                             env={**os.environ, **env, "AWS_ENDPOINT_URL": proxy.url},
                             capture_output=True, text=True, timeout=240)
    return res, proxy


@pytest.fixture
def env(aws_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**aws_env, "AMIBAKE_STATE_DIR": str(tmp_path / "state")}


@pytest.mark.effect("post-processor/amazon-import", "ami_name", "ami_description", "tags", "ami_users",
                    "license_type", "role_name", "boot_mode", "platform", "s3_bucket_name", "s3_key_name",
                    "format", "region")
def test_import_renames_tags_shares_and_deletes_the_upload(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path, bucket: str,
) -> None:
    name = f"imported-{uuid.uuid4().hex[:8]}"
    res, proxy = build(tmp_path, env, moto, template(
        bucket, 1 << 20, ami_name=name, ami_description="imported by amibake", tags={"Team": "images"},
        ami_users=["111122223333"], license_type="BYOL", role_name="custom-import", boot_mode="uefi",
        platform="linux"))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    [imp] = proxy.sent("ImportImage")
    p = imp.params
    assert p["DiskContainer.1.Format"] == "raw" and p["DiskContainer.1.UserBucket.S3Bucket"] == bucket
    key = p["DiskContainer.1.UserBucket.S3Key"]
    assert key.startswith("imports/null-") and key.endswith(".raw") and "{{" not in key
    sent = (p["Architecture"], p["BootMode"], p["Platform"], p["LicenseType"], p["RoleName"], p["Encrypted"])
    assert sent == ("x86_64", "uefi", "linux", "BYOL", "custom-import", "false")
    [copy] = proxy.sent("CopyImage")
    assert copy.params["Name"] == name and copy.params["SourceRegion"] == REGION
    ec2 = client(moto, "ec2")
    [image] = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    assert tags["Team"] == "images" and "amibake:finished" in tags
    # moto keeps no description given by ModifyImageAttribute: the request is the proof
    modified = {k: v for r in proxy.sent("ModifyImageAttribute") for k, v in r.params.items()}
    assert modified["ImageId"] == image["ImageId"] and modified["Description.Value"] == "imported by amibake"
    perms = ec2.describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
    assert perms["LaunchPermissions"] == [{"UserId": "111122223333"}]
    # the intermediary (the import's own AMI) is gone, and so is the upload
    intermediary = copy.params["SourceImageId"]
    assert ec2.describe_images(Filters=[{"Name": "image-id", "Values": [intermediary]}])["Images"] == []
    assert objects(moto, bucket) == []
    assert f"{REGION}: {image['ImageId']}" in out and "Import task" in out
    # the raw file artifact was not kept (amazon-import does not keep its input)
    assert not (tmp_path / "disk.raw").exists()


def test_a_failed_import_leaves_no_upload_and_no_ami(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path, bucket: str,
) -> None:
    before = inventory(moto)
    res, proxy = build(tmp_path, env, moto, template(bucket, 1000))  # not a multiple of 512: invalid raw
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "failed with status message: ClientError: Disk validation failed" in out
    assert objects(moto, bucket) == [] and proxy.sent("CopyImage") == []
    assert inventory(moto) - before == set()


@pytest.mark.effect("post-processor/amazon-import", "skip_clean")
def test_skip_clean_keeps_the_upload(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path, bucket: str,
) -> None:
    res, _ = build(tmp_path, env, moto, template(bucket, 4096, skip_clean=True))
    assert res.returncode == 0, res.stdout + res.stderr
    [key] = objects(moto, bucket)
    assert key.startswith("imports/null-")


def test_sigkill_during_the_import_then_cleanup_leaves_nothing(
    stack: Stack, moto: MotoServer, tmp_path: Path, bucket: str,
) -> None:
    before = inventory(moto)
    t = template(bucket, 4096)
    t["variables"] = {k: "" for k in ("ssh_host", "ssh_port", "ssh_username", "ami_name")}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(t))
    b = start_build(stack, path, tmp_path, pause_at="wait-import-task")
    b.wait_marker("wait-import-task")
    assert len(objects(moto, bucket)) == 1
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    res = run_cleanup(stack, b, "--run", b.run_id())
    assert res.returncode == 0, res.stdout + res.stderr
    assert "import-task" in res.stdout and "s3-object" in res.stdout
    assert objects(moto, bucket) == []
    [task] = [t for t in client(moto, "ec2").describe_import_image_tasks()["ImportImageTasks"]
              if t["SnapshotDetails"][0]["UserBucket"]["S3Bucket"] == bucket]
    assert task["Status"] == "deleted" and task["StatusMessage"] == "Task cancelled by user"
    assert_nothing_left(moto, before)
