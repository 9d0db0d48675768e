"""``amibake build -skip-unchanged`` and ``amibake plan`` end to end (#13): a subprocess against the
local stack, every EC2 call through the recording proxy (tests/awsproxy.py), so that "no instance
was launched" is read from the requests actually sent, and the end state from moto.

Each test has its own state dir (the fingerprint key and breakdowns live there) in tmp_path.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.awsproxy import EMULATED, AwsProxy
from tests.stack.test_build_cli import builder
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

TAG = "amibake:fingerprint"
SECRET = "fp-s3cr3t-canary-93x"


def run(args: list[str], env: dict[str, str], cwd: Path,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([amibake_exe(), *args], cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def env(aws_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**aws_env, "AMIBAKE_STATE_DIR": str(tmp_path / "state")}


def ec2(moto: MotoServer, region: str = "us-east-1") -> Any:
    return boto3.client("ec2", endpoint_url=moto.url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def own_images(moto: MotoServer, region: str = "us-east-1") -> list[dict[str, Any]]:
    images = ec2(moto, region).describe_images(Owners=["self"])["Images"]
    return sorted(images, key=lambda i: i["CreationDate"])


def tags(image: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def write(tmp_path: Path, stack: Stack, *, script: bytes = b"#!/bin/sh\necho setup\n",
          **builder_opts: Any) -> None:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / "setup.sh").write_bytes(script)
    t = {
        "variables": {"pw": SECRET},
        "sensitive-variables": ["pw"],
        "builders": [builder(stack, "fp", **builder_opts)],
        "provisioners": [
            {"type": "shell", "script": "scripts/setup.sh", "environment_vars": ["PW={{user `pw`}}"]},
            {"type": "shell", "inline": ["echo built at {{timestamp}}"]},
        ],
        "post-processors": [{"type": "manifest", "output": "manifest.json"}],
    }
    (tmp_path / "t.json").write_text(json.dumps(t))


def build(args: list[str], env: dict[str, str], tmp_path: Path, moto: MotoServer,
          **proxy_opts: Any) -> tuple[str, AwsProxy]:
    """``amibake build`` through a fresh recording proxy; returns the output and the proxy."""
    with AwsProxy(moto.url, **proxy_opts) as proxy:
        r = run(["build", "-color=false", *args, "t.json"], {**env, "AWS_ENDPOINT_URL": proxy.url}, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return out, proxy


def plan(args: list[str], env: dict[str, str], tmp_path: Path, moto: MotoServer) -> tuple[str, AwsProxy]:
    with AwsProxy(moto.url) as proxy:
        r = run(["plan", "-color=false", *args, "t.json"], {**env, "AWS_ENDPOINT_URL": proxy.url}, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    return out, proxy


CREATING = ("RunInstances", "CreateImage", "CopyImage", "CreateKeyPair", "CreateSecurityGroup", "CreateTags",
            "ModifyImageAttribute", "CreateFleet", "CreateVolume", "CreateSnapshot")


def last_manifest_build(tmp_path: Path) -> dict[str, Any]:
    return dict(json.loads((tmp_path / "manifest.json").read_text())["builds"][-1])


def test_unchanged_build_is_reused(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    write(tmp_path, stack)
    out, first = build([], env, tmp_path, moto)
    assert len(first.sent("RunInstances")) == 1
    (image,) = own_images(moto)
    fp = tags(image)[TAG]
    assert len(fp) == 64
    # without the flag, the manifest is Packer's (no custom_data)
    assert last_manifest_build(tmp_path)["custom_data"] is None

    out, second = build(["-skip-unchanged", "-machine-readable"], env, tmp_path, moto)
    assert second.sent("RunInstances") == [], [r.action for r in second.requests]
    assert [i["ImageId"] for i in own_images(moto)] == [image["ImageId"]]
    assert f"fp,artifact,0,id,us-east-1:{image['ImageId']}" in out
    assert "fp,artifact,0,reused,true" in out
    assert "AMIs were reused" in out
    entry = last_manifest_build(tmp_path)
    assert entry["artifact_id"] == f"us-east-1:{image['ImageId']}"
    assert entry["custom_data"]["amibake:reused"] == "true"
    assert entry["custom_data"]["amibake:fingerprint"] == fp
    assert "amibake:fingerprint:file scripts/setup.sh" in entry["custom_data"]

    # AMIBAKE_SKIP_UNCHANGED=1 is the flag
    _, third = build([], {**env, "AMIBAKE_SKIP_UNCHANGED": "1"}, tmp_path, moto)
    assert third.sent("RunInstances") == []


def test_one_byte_script_change_rebuilds_and_plan_names_the_file(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    write(tmp_path, stack)
    build([], env, tmp_path, moto)
    (old,) = own_images(moto)

    out, proxy = plan(["-skip-unchanged"], env, tmp_path, moto)
    assert f"fp: reuse {old['ImageId']} and converge" in out, out
    assert not [r.action for r in proxy.requests if r.action in CREATING]

    write(tmp_path, stack, script=b"#!/bin/sh\necho setuq\n", launch_block_device_mappings=[
        {"device_name": "/dev/sdf", "volume_size": 1, "delete_on_termination": True}])
    out, proxy = plan(["-skip-unchanged"], env, tmp_path, moto)
    assert "==> fp: rebuild" in out, out
    would = ("    fp: would create or change: temporary key pair; temporary security group; "
             "instance (t2.micro) from the source AMI; volumes of the instance: the source AMI's and 1 "
             "launch block device(s); snapshots of the AMI's volumes; AMI in us-east-1")
    assert would in out.splitlines(), out
    assert f"why: since {old['ImageId']}: scripts/setup.sh changed" in out, out
    assert f"why: since {old['ImageId']}: builder amazon-ebs changed" in out, out
    assert "provisioner" not in out.split("why:")[1].split("\n")[0]
    assert not [r.action for r in proxy.requests if r.action in CREATING]
    out, proxy = plan(["-skip-unchanged", "-machine-readable"], env, tmp_path, moto)
    assert f"fp,plan-reason,since {old['ImageId']}: scripts/setup.sh changed" in out, out
    assert "fp,plan-action,rebuild" in out

    _, proxy = build(["-skip-unchanged"], env, tmp_path, moto)
    assert len(proxy.sent("RunInstances")) == 1
    images = own_images(moto)
    assert len(images) == 2 and tags(images[1])[TAG] != tags(old)[TAG]


def test_changed_tag_and_new_region_converge_without_instance(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    write(tmp_path, stack, tags={"Team": "a"})
    build([], env, tmp_path, moto)
    (image,) = own_images(moto)
    assert own_images(moto, "us-west-2") == []

    write(tmp_path, stack, tags={"Team": "b"}, ami_regions=["us-west-2"], ami_users=["111122223333"])
    out, proxy = plan(["-skip-unchanged"], env, tmp_path, moto)
    assert f"reuse {image['ImageId']} and converge" in out and "AMI copy in us-west-2" in out, out
    assert f"tags on {image['ImageId']}: Team" in out, out

    out, proxy = build(["-skip-unchanged"], env, tmp_path, moto)
    assert proxy.sent("RunInstances") == [] and proxy.sent("CreateImage") == []
    assert len(proxy.sent("CopyImage")) == 1
    (same,) = own_images(moto)
    assert same["ImageId"] == image["ImageId"] and tags(same)["Team"] == "b"
    (copy,) = own_images(moto, "us-west-2")
    assert tags(copy)[TAG] == tags(image)[TAG] and tags(copy)["Team"] == "b"
    perms = ec2(moto).describe_image_attribute(ImageId=image["ImageId"], Attribute="launchPermission")
    assert [p.get("UserId") for p in perms["LaunchPermissions"]] == ["111122223333"]

    # converged: a second run has nothing left to copy or tag, and plan says so
    out, _ = plan(["-skip-unchanged"], env, tmp_path, moto)
    assert "AMI copy in" not in out and "tags on" not in out, out
    _, proxy = build(["-skip-unchanged"], env, tmp_path, moto)
    assert proxy.sent("RunInstances") == [] and proxy.sent("CopyImage") == []
    assert [r.params for r in proxy.sent("CreateTags") if "amibake:finished" not in str(r.params)] == []

    # snapshot_users converge too: on the reused AMI's snapshots and on those of its existing copy
    write(tmp_path, stack, tags={"Team": "b"}, ami_regions=["us-west-2"], ami_users=["111122223333"],
          snapshot_users=["444455556666"])
    _, proxy = build(["-skip-unchanged"], env, tmp_path, moto)
    assert proxy.sent("RunInstances") == [] and proxy.sent("CopyImage") == []
    shared = {r.params["SnapshotId"] for r in proxy.sent("ModifySnapshotAttribute")
              if r.params.get("Attribute") == "createVolumePermission" and "444455556666" in str(r.params)}
    snaps = {m["Ebs"]["SnapshotId"] for img in (image, copy) for m in img["BlockDeviceMappings"]
             if "Ebs" in m}
    assert snaps and shared == snaps


def test_max_age_and_force_rebuild(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    write(tmp_path, stack)
    build([], env, tmp_path, moto)
    out, proxy = plan(["-skip-unchanged", "-max-age=1ns"], env, tmp_path, moto)
    assert "older than -max-age" in out, out
    _, proxy = build(["-skip-unchanged", "-max-age=1ns"], env, tmp_path, moto)
    assert len(proxy.sent("RunInstances")) == 1
    _, proxy = build(["-skip-unchanged", "-max-age=24h"], env, tmp_path, moto)
    assert proxy.sent("RunInstances") == []
    _, proxy = build(["-skip-unchanged", "-force"], env, tmp_path, moto)
    assert len(proxy.sent("RunInstances")) == 1


def test_newer_source_ami_matching_the_filter_rebuilds(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    c = ec2(moto)
    owner = c.describe_images(ImageIds=["ami-785db401"])["Images"][0]["OwnerId"]
    ebs = c.describe_images(Owners=[owner], Filters=[{"Name": "root-device-type", "Values": ["ebs"]},
                                                     {"Name": "virtualization-type", "Values": ["hvm"]}])
    one, two = sorted(i["ImageId"] for i in ebs["Images"])[:2]
    # the filter finds the image tagged role=fpbase-<test>: first one, then the other
    role = f"fpbase-{tmp_path.name}"
    c.create_tags(Resources=[one], Tags=[{"Key": "role", "Value": role}])
    flt = {"filters": {"tag:role": role}, "owners": [owner], "most_recent": True}
    write(tmp_path, stack, source_ami="", source_ami_filter=flt)
    build([], env, tmp_path, moto)
    _, proxy = build(["-skip-unchanged"], env, tmp_path, moto)
    assert proxy.sent("RunInstances") == []
    # the filter now finds another image
    c.delete_tags(Resources=[one], Tags=[{"Key": "role"}])
    c.create_tags(Resources=[two], Tags=[{"Key": "role", "Value": role}])
    out, _ = plan(["-skip-unchanged"], env, tmp_path, moto)
    assert f"source AMI resolved to another id ({one} -> {two})" in out, out
    _, proxy = build(["-skip-unchanged"], env, tmp_path, moto)
    assert len(proxy.sent("RunInstances")) == 1
    assert proxy.sent("RunInstances")[0].params["ImageId"] == two


def test_sensitive_value_appears_nowhere_and_still_counts(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    write(tmp_path, stack)
    log = tmp_path / "debug.log"
    logged = {**env, "AMIBAKE_LOG": "1", "AMIBAKE_LOG_PATH": str(log)}
    out, proxy = build(["-skip-unchanged"], logged, tmp_path, moto)
    out2, _ = build(["-skip-unchanged", "-machine-readable"], logged, tmp_path, moto)
    out3, _ = plan(["-skip-unchanged"], logged, tmp_path, moto)
    state_files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert any(p.name == "fingerprint.key" for p in state_files)
    everything = {
        "output": out + out2 + out3,
        "log": log.read_text(),
        "manifest": (tmp_path / "manifest.json").read_text(),
        "requests": json.dumps([r.params for r in proxy.requests]),
        "images": json.dumps(own_images(moto), default=str),
        "snapshots": json.dumps(ec2(moto).describe_snapshots(OwnerIds=["self"])["Snapshots"], default=str),
        "state": "".join(p.read_text(errors="replace") for p in state_files),
    }
    assert "PW=" in everything["log"] or "setup" in everything["output"]  # the build did pass it along
    for where, text in everything.items():
        assert SECRET not in text, where
    (image,) = own_images(moto)
    out, _ = plan(["-skip-unchanged", "-var", "pw=another-value"], env, tmp_path, moto)
    assert "==> fp: rebuild" in out and "provisioner 1 (shell) changed" in out, out
    assert tags(image)[TAG] not in out.split("fingerprint: ")[1]


def test_hcl2_parallel_builds_decide_alone(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    """Two sources in one HCL2 build, a script provisioned on one only: after a one-byte change of
    that script, that build rebuilds and the other reuses its AMI, in the same run."""
    (tmp_path / "a.sh").write_text("echo a\n")
    src = "\n".join(f'''
source "amazon-ebs" "{n}" {{
  region        = "us-east-1"
  source_ami    = "ami-785db401"
  instance_type = "t2.micro"
  ssh_username  = "{stack.sshd.user}"
  ssh_host      = "127.0.0.1"
  ssh_port      = {stack.sshd.port}
  ssh_timeout   = "60s"
  ami_name      = "fp-hcl-{n}-${{formatdate("YYYYMMDDhhmmss", timestamp())}}"
}}''' for n in ("a", "b"))
    (tmp_path / "t.pkr.hcl").write_text(src + """
build {
  sources = ["source.amazon-ebs.a", "source.amazon-ebs.b"]
  provisioner "shell" {
    only   = ["amazon-ebs.a"]
    script = "a.sh"
  }
  provisioner "shell" {
    inline = ["echo ${uuidv4()} ${timestamp()}"]
  }
}
""")

    def hcl(verb: str, *args: str) -> tuple[str, AwsProxy]:
        with AwsProxy(moto.url) as proxy:
            r = run([verb, "-color=false", *args, "t.pkr.hcl"], {**env, "AWS_ENDPOINT_URL": proxy.url},
                    tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout + r.stderr, proxy

    _, proxy = hcl("build")
    assert len(proxy.sent("RunInstances")) == 2
    before = {tags(i)["amibake:build"]: i["ImageId"] for i in own_images(moto)}
    assert set(before) == {"amazon-ebs.a", "amazon-ebs.b"}
    _, proxy = hcl("build", "-skip-unchanged")
    assert proxy.sent("RunInstances") == []

    (tmp_path / "a.sh").write_text("echo b\n")
    out, _ = hcl("plan", "-skip-unchanged")
    assert "amazon-ebs.a: rebuild" in out and "a.sh changed" in out, out
    assert f"amazon-ebs.b: reuse {before['amazon-ebs.b']} and converge" in out, out
    out, proxy = hcl("build", "-skip-unchanged", "-machine-readable")
    assert len(proxy.sent("RunInstances")) == 1
    assert "amazon-ebs.b,artifact,0,reused,true" in out
    assert f"amazon-ebs.b,artifact,0,id,us-east-1:{before['amazon-ebs.b']}" in out
    assert "amazon-ebs.a,artifact,0,reused" not in out


def test_deprecation_is_converged_on_the_reused_ami(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path,
) -> None:
    """deprecate_at added after the build: the converge enables it on the reused AMI (moto lacks
    EnableImageDeprecation: the proxy answers it as AWS documents, and records the request)."""
    write(tmp_path, stack)
    build([], env, tmp_path, moto)
    (image,) = own_images(moto)
    write(tmp_path, stack, deprecate_at="2031-01-02T03:04:05Z")
    emulate = {"EnableImageDeprecation": EMULATED["EnableImageDeprecation"]}
    _, proxy = build(["-skip-unchanged"], env, tmp_path, moto, emulate=emulate)
    assert proxy.sent("RunInstances") == []
    (call,) = proxy.sent("EnableImageDeprecation")
    assert call.params["ImageId"] == image["ImageId"]
    assert call.params["DeprecateAt"].startswith("2031-01-02T03:04:05")
