"""Every resource a build creates carries amibake's own tags (``amibake:run-id``, ``amibake:build``,
``amibake:created``): ``amibake cleanup`` finds leftovers by them once a journal is lost.

Observed in the requests amibake sent (the recording proxy in front of moto) for every create call
of an on-demand build (key pair, security group, instance and its volumes, IAM role and instance
profile, image, snapshots, copied image) and of a spot build (launch template, the instance and
volumes it launches, fleet), and in the end state for what outlives the build (images, snapshots).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.api import BuildEnv
from amibake.plugins.amazon.cleanup import BUILD_TAG, CREATED_TAG, RUN_TAG
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.awsproxy import AwsProxy, Request
from tests.stack.test_ebs_builder import Hooks, RecUi, make_config
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

BUILD = "tagged"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                  "Resource": ["*"]}]}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


def env(run_id: str) -> BuildEnv:
    return BuildEnv(build_name=BUILD, builder_type="amazon-ebs", template_dir=Path("."), ui=RecUi(),
                    run_id=run_id)


def spec_tags(params: dict[str, str], resource_type: str, prefix: str = "") -> dict[str, str]:
    """The tags of the ``<prefix>TagSpecification.N`` for ``resource_type`` (query protocol)."""
    i = 1
    while f"{prefix}TagSpecification.{i}.ResourceType" in params:
        if params[f"{prefix}TagSpecification.{i}.ResourceType"] == resource_type:
            out, j = {}, 1
            while f"{prefix}TagSpecification.{i}.Tag.{j}.Key" in params:
                out[params[f"{prefix}TagSpecification.{i}.Tag.{j}.Key"]] = params.get(
                    f"{prefix}TagSpecification.{i}.Tag.{j}.Value", "")
                j += 1
            return out
        i += 1
    return {}


def member_tags(params: dict[str, str], name: str = "Tags") -> dict[str, str]:
    """IAM's ``Tags.member.N.Key/Value`` (or EC2 CreateTags' ``Tag.N.Key/Value`` with name="Tag")."""
    sep = ".member." if name == "Tags" else "."
    out, j = {}, 1
    while f"{name}{sep}{j}.Key" in params:
        out[params[f"{name}{sep}{j}.Key"]] = params.get(f"{name}{sep}{j}.Value", "")
        j += 1
    return out


def assert_own(tags: dict[str, str], run_id: str, what: str) -> None:
    assert tags.get(RUN_TAG) == run_id, f"{what}: {RUN_TAG} missing or wrong in {tags}"
    assert tags.get(BUILD_TAG) == BUILD, f"{what}: {BUILD_TAG} missing or wrong in {tags}"
    assert tags.get(CREATED_TAG, "").startswith("20"), f"{what}: {CREATED_TAG} missing in {tags}"


def one(proxy: AwsProxy, action: str, service: str = "ec2", region: str = "") -> Request:
    sent = [r for r in proxy.sent(action, service) if r.status == 200 and (not region or r.region == region)]
    assert len(sent) == 1, (action, [(r.action, r.region, r.status) for r in proxy.requests])
    return sent[0]


def tagged_ids(proxy: AwsProxy, region: str) -> dict[str, dict[str, str]]:
    """resource id -> tags, from every successful CreateTags sent to ``region``."""
    out: dict[str, dict[str, str]] = {}
    for r in proxy.sent("CreateTags", "ec2"):
        if r.status != 200 or r.region != region:
            continue
        for rid in r.values("ResourceId"):
            out.setdefault(rid, {}).update(member_tags(r.params, "Tag"))
    return out


def ec2(moto: MotoServer, region: str) -> Any:
    return boto3.client("ec2", endpoint_url=moto.url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def test_on_demand_build_tags_every_resource_it_creates(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = f"tags-{uuid.uuid4().hex[:8]}"
    with AwsProxy(moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # IAM goes through the proxy too
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ami_regions=["us-west-2"],
                             temporary_iam_instance_profile_policy_document=POLICY)
        artifact = EbsBuilder(config, env(run_id)).run(Hooks("true"))
        assert artifact is not None

        assert_own(one(proxy, "CreateKeyPair").tags("key-pair"), run_id, "CreateKeyPair key-pair")
        assert_own(one(proxy, "CreateSecurityGroup").tags("security-group"), run_id,
                   "CreateSecurityGroup security-group")
        run = one(proxy, "RunInstances")
        assert_own(run.tags("instance"), run_id, "RunInstances instance")
        assert_own(run.tags("volume"), run_id, "RunInstances volume")
        assert_own(member_tags(one(proxy, "CreateRole", "iam").params), run_id, "IAM CreateRole")
        assert_own(member_tags(one(proxy, "CreateInstanceProfile", "iam").params), run_id,
                   "IAM CreateInstanceProfile")
        create = one(proxy, "CreateImage")
        assert_own(create.tags("image"), run_id, "CreateImage image")
        assert_own(create.tags("snapshot"), run_id, "CreateImage snapshot")
        copy = one(proxy, "CopyImage", region="us-west-2")
        assert_own(copy.tags("image"), run_id, "CopyImage image")
        assert_own(copy.tags("snapshot"), run_id, "CopyImage snapshot")

        # snapshots: tagged in the call and again once their image is available, in each region
        amis = {"us-east-1": create.response, "us-west-2": copy.response}
        for region, answer in amis.items():
            ami = answer.decode().split("<imageId>", 1)[1].split("<", 1)[0]
            image = ec2(moto, region).describe_images(ImageIds=[ami])["Images"][0]
            snaps = [b["Ebs"]["SnapshotId"] for b in image["BlockDeviceMappings"] if "Ebs" in b]
            assert snaps, image
            sent = tagged_ids(proxy, region)
            for snap in snaps:
                assert_own(sent.get(snap, {}), run_id, f"CreateTags snapshot {snap} ({region})")
            # the end state: what outlives the build carries the tags
            assert_own({t["Key"]: t["Value"] for t in image.get("Tags", [])}, run_id, f"image {ami}")
            for s in ec2(moto, region).describe_snapshots(SnapshotIds=snaps)["Snapshots"]:
                assert_own({t["Key"]: t["Value"] for t in s.get("Tags", [])}, run_id,
                           f"snapshot {s['SnapshotId']}")

        # nothing else was created untagged: every create call is one checked above
        creates = {r.action for r in proxy.requests if r.status == 200
                   and r.action.startswith(("Create", "Run", "Copy", "Import", "Request"))}
        assert creates == {"CreateKeyPair", "CreateSecurityGroup", "RunInstances", "CreateRole",
                           "CreateInstanceProfile", "CreateImage", "CopyImage", "CreateTags"}, creates


def test_spot_build_tags_the_launch_template_fleet_and_what_they_launch(
    stack: Stack, moto: MotoServer
) -> None:
    run_id = f"tags-{uuid.uuid4().hex[:8]}"
    with AwsProxy(moto.url) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, spot_price="auto", instance_type="",
                             spot_instance_types=["t2.micro"], temporary_key_pair_type="ed25519")
        EbsBuilder(config, env(run_id)).run(Hooks("true"))

        assert_own(one(proxy, "CreateKeyPair").tags("key-pair"), run_id, "CreateKeyPair key-pair")
        assert_own(one(proxy, "CreateSecurityGroup").tags("security-group"), run_id,
                   "CreateSecurityGroup security-group")
        lt = one(proxy, "CreateLaunchTemplate")
        assert_own(lt.tags("launch-template"), run_id, "CreateLaunchTemplate launch-template")
        # the instance and volumes the fleet launches are tagged by the template's data
        for kind in ("instance", "volume"):
            assert_own(spec_tags(lt.params, kind, "LaunchTemplateData."), run_id,
                       f"CreateLaunchTemplate data {kind}")
        assert_own(one(proxy, "CreateFleet").tags("fleet"), run_id, "CreateFleet fleet")
        assert not proxy.sent("RunInstances") and not proxy.sent("RequestSpotInstances")
        assert_own(one(proxy, "CreateImage").tags("image"), run_id, "CreateImage image")
