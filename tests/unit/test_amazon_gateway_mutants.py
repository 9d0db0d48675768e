"""The EC2/IAM gateway (``ec2.py``, ``ec2_base.py``, ``ec2_iam.py``, ``ec2_discovery.py``) against a
moto server on loopback: what each call sends (seen in moto's end state), what it records in the run
journal, and how its answers are read. Written for a mutation run's survivors (docs/mutation.md).

The moto server is tests/unit/conftest.py's ``moto_url`` (one per worker, or ``AMIBAKE_TEST_MOTO_URL``).
Every test makes its own uniquely named resources, so the tests share one server without resetting it."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
import pytest

from amibake.aws.access import AwsAccess
from amibake.aws.errors import AwsError
from amibake.aws.session import shared_loader
from amibake.journal import Journal
from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.ec2 import Ec2Gateway, NotOurs, WaitTimeout
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.steps.context import BuildCancelled, JournalUnwritable

REGION = "us-east-1"
AMI_ID = "ami-0123456789abcdef0"  # not in moto: tests register their own
RUN = "run-gw"
BUILD = "amazon-ebs.gw"


def botocore_session() -> Any:
    """A botocore session on amibake's shared data loader: the service models are read and parsed once
    per process, not once per test (parsing EC2's model costs tens of milliseconds)."""
    session = botocore.session.get_session()
    session.register_component("data_loader", shared_loader())
    return session


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Gw:
    """A gateway on moto with a journal in the test's tmp dir, and its pause points."""

    def __init__(self, url: str, tmp: Path, region: str = REGION, journal: bool = True) -> None:
        # an AWS account of this test's own (moto keeps accounts apart): what other tests, or other
        # mutants of a mutation run sharing the server, left behind is not seen here
        account = "".join(random.choice("0123456789") for _ in range(12))
        sts = botocore_session().create_client(
            "sts",
            region_name=REGION,
            endpoint_url=url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/gateway-test", RoleSessionName="gateway-test"
        )["Credentials"]
        self.access = AwsAccess(
            region=region,
            access_key=creds["AccessKeyId"],
            secret_key=creds["SecretAccessKey"],
            token=creds["SessionToken"],
            endpoint_ec2=url,
        )
        self.points: list[str] = []
        self.run_id = uid("run")
        self.journal_file = Journal(self.run_id, tmp) if journal else None
        self.gw = Ec2Gateway(
            self.access,
            Polling(delay=0.05, max_attempts=40, first_delay=0.01, overridden=True),
            pause=self.points.append,
            journal=self.journal_file.for_build(BUILD) if self.journal_file else None,
        )
        self.client = self.gw._client("ec2")
        self.iam = self.gw._client("iam")

    def records(self) -> list[dict[str, Any]]:
        assert self.journal_file is not None
        if not self.journal_file.path.exists():
            return []
        out = []
        for line in self.journal_file.path.read_text().splitlines():
            e = json.loads(line)
            out.append({k: v for k, v in e.items() if k not in ("at", "run")})
        return out


@pytest.fixture
def g(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gw:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return Gw(moto_url, tmp_path)


def own(g: Gw) -> dict[str, str]:
    return {"amibake:run-id": g.run_id, "amibake:build": BUILD}


def tags_of(items: list[dict[str, Any]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def source_image(g: Gw) -> str:
    """A registered AMI with one snapshot (moto: an instance imaged)."""
    iid = g.client.run_instances(ImageId=base_ami(g), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return str(g.client.create_image(InstanceId=iid, Name=uid("src"))["ImageId"])


_BASE: dict[str, str] = {}


def base_ami(g: Gw) -> str:
    """One of moto's own AMIs (looked up once: the listing is long)."""
    if "ami" not in _BASE:
        _BASE["ami"] = str(g.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    return _BASE["ami"]


def instance(g: Gw) -> str:
    return str(
        g.client.run_instances(ImageId=base_ami(g), MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    )


# -- images ---------------------------------------------------------------------------------------


def test_describe_images_sends_ids_owners_filters_and_reads_the_records(g: Gw) -> None:
    name = uid("img")
    iid = instance(g)
    ami = g.client.create_image(InstanceId=iid, Name=name, Description="d")["ImageId"]
    g.client.create_tags(Resources=[ami], Tags=[{"Key": "k", "Value": "v"}])
    (img,) = g.gw.describe_images(image_ids=[ami])
    (raw,) = g.client.describe_images(ImageIds=[ami])["Images"]
    assert (img.id, img.name, img.state, img.description) == (ami, name, "available", "d")
    assert img.tags == {"k": "v"} and img.snapshot_ids == tuple(
        b["Ebs"]["SnapshotId"] for b in raw["BlockDeviceMappings"] if "Ebs" in b
    )
    assert img.snapshot_ids
    assert (img.owner_id, img.creation_date, img.root_device_type, img.virtualization_type) == (
        raw["OwnerId"],
        raw["CreationDate"],
        raw["RootDeviceType"],
        raw["VirtualizationType"],
    )
    assert img.owner_id and img.creation_date and img.root_device_type and img.virtualization_type
    assert [i.id for i in g.gw.describe_images(owners=["self"], filters={"name": [name]})] == [ami]
    assert g.gw.describe_images(owners=["self"], filters={"name": [uid("none")]}) == []
    assert [i.id for i in g.gw.images_named(name)] == [ami]
    assert [i.id for i in g.gw.describe_images(image_ids=[ami], include_deprecated=True)] == [ami]
    assert g.gw.images_named(name, region="us-west-2") == []


def test_create_image_tags_the_image_and_its_snapshots_and_journals_it(g: Gw) -> None:
    iid = instance(g)
    name = uid("ami")
    ami = g.gw.create_image(
        iid,
        name,
        description="the description",
        block_devices=[{"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 2}}],
        tags={**own(g), "T": "1"},
        snapshot_tags={"S": "2"},
    )
    (img,) = g.client.describe_images(ImageIds=[ami])["Images"]
    assert img["Name"] == name and img["Description"] == "the description"
    assert tags_of(img["Tags"])["T"] == "1"
    snaps = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"] if "Ebs" in b]
    snap = g.client.describe_snapshots(SnapshotIds=snaps[:1])["Snapshots"][0]
    assert tags_of(snap.get("Tags", []))["S"] == "2"
    assert g.records() == [
        {"ev": "intent", "build": BUILD, "kind": "image", "region": REGION, "name": name, "instance": iid},
        {"ev": "created", "build": BUILD, "kind": "image", "region": REGION, "id": ami, "name": name},
    ]
    assert g.points == ["after-create-image"]


def test_create_image_without_extras_sends_none(g: Gw) -> None:
    iid = instance(g)
    ami = g.gw.create_image(iid, uid("plain"))
    (img,) = g.client.describe_images(ImageIds=[ami])["Images"]
    assert not img.get("Description") and not img.get("Tags")


def test_copy_image_with_tags_token_and_journal(g: Gw) -> None:
    src = source_image(g)
    name = uid("copy")
    ami = g.gw.copy_image(
        "us-west-2",
        source_region=REGION,
        source_image_id=src,
        name=name,
        description="copied",
        encrypted=False,
        tags={**own(g), "T": "c"},
        snapshot_tags={"S": "c"},
    )
    west = g.gw._client("ec2", "us-west-2")
    (img,) = west.describe_images(ImageIds=[ami])["Images"]
    assert img["Name"] == name and img["Description"] == "copied" and tags_of(img["Tags"])["T"] == "c"
    intent, created = g.records()
    token = intent.pop("token")
    assert len(token) == 36 and created.pop("token") == token
    assert intent == {
        "ev": "intent",
        "build": BUILD,
        "kind": "image",
        "region": "us-west-2",
        "name": name,
        "source": src,
    }
    assert created == {
        "ev": "created",
        "build": BUILD,
        "kind": "image",
        "region": "us-west-2",
        "id": ami,
        "name": name,
        "source": src,
    }
    assert g.points == ["after-copy-image"]


def test_adopt_image_takes_only_this_builds_live_image(g: Gw) -> None:
    iid = instance(g)
    name = uid("adopt")
    ami = g.client.create_image(InstanceId=iid, Name=name)["ImageId"]
    with pytest.raises(
        NotOurs, match=f"AMI {ami} named '{name}' already exists and was not made by this build"
    ):
        g.gw._adopt_image(name, own(g), None)
    g.client.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in own(g).items()])
    assert g.gw._adopt_image(name, own(g), None) == {"ImageId": ami}
    assert g.gw._adopt_image(uid("none"), own(g), None) is None
    g.client.deregister_image(ImageId=ami)
    assert g.gw._adopt_image(name, own(g), None) is None


def test_deregister_delete_note_and_destroy_are_journaled(g: Gw) -> None:
    iid = instance(g)
    ami = g.client.create_image(InstanceId=iid, Name=uid("d"))["ImageId"]
    (img,) = g.gw.describe_images(image_ids=[ami])
    g.gw.note_snapshots(ami, img.snapshot_ids, "us-east-1")
    g.gw.destroy_image(img)
    assert (
        g.client.describe_images(ImageIds=[ami]).get("Images", []) in ([], None)
        or g.client.describe_images(ImageIds=[ami])["Images"][0]["State"] == "deregistered"
    )
    snap = img.snapshot_ids[0]
    assert g.records() == [
        {"ev": "created", "build": BUILD, "kind": "snapshot", "region": REGION, "id": snap, "image": ami},
        {"ev": "removed", "build": BUILD, "kind": "image", "region": REGION, "id": ami},
        {"ev": "removed", "build": BUILD, "kind": "snapshot", "region": REGION, "id": snap},
    ]
    with pytest.raises(botocore.exceptions.ClientError):
        g.client.describe_snapshots(SnapshotIds=[snap])


def test_image_and_snapshot_attributes(g: Gw) -> None:
    iid = instance(g)
    ami = g.client.create_image(InstanceId=iid, Name=uid("attr"))["ImageId"]
    g.gw.modify_image_attribute(ami, LaunchPermission={"Add": [{"UserId": "123456789012"}]})
    perms = g.client.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": "123456789012"}]
    (img,) = g.gw.describe_images(image_ids=[ami])
    snap = img.snapshot_ids[0]
    # moto accepts the call but does not show the permission: only that it is sent without error
    g.gw.modify_snapshot_attribute(
        snap,
        Attribute="createVolumePermission",
        OperationType="add",
        CreateVolumePermission={"Add": [{"UserId": "123456789012"}]},
    )
    with pytest.raises(AwsError):
        g.gw.modify_snapshot_attribute(
            "snap-0123456789abcdef0",
            Attribute="createVolumePermission",
            OperationType="add",
            CreateVolumePermission={"Add": [{"Group": "all"}]},
        )


def test_create_tags_only_with_ids_and_tags(g: Gw) -> None:
    iid = instance(g)
    g.gw.create_tags([iid], {"A": "1"})
    g.gw.create_tags([], {"B": "2"})
    g.gw.create_tags([iid], {})
    res = g.client.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert tags_of(res["Tags"]) == {"A": "1"}


# -- key pairs and security groups ------------------------------------------------------------------


def test_create_key_pair_with_type_and_tags(g: Gw) -> None:
    name = uid("key")
    material = g.gw.create_key_pair(name, "ed25519", {**own(g), "T": "k"})
    assert "PRIVATE KEY" in material
    (pair,) = g.client.describe_key_pairs(KeyNames=[name])["KeyPairs"]
    assert tags_of(pair.get("Tags", []))["T"] == "k"
    assert pair.get("KeyType", "ed25519") == "ed25519"
    assert g.records() == [
        {"ev": "intent", "build": BUILD, "kind": "key-pair", "region": REGION, "name": name},
        {"ev": "created", "build": BUILD, "kind": "key-pair", "region": REGION, "id": name, "name": name},
    ]
    assert g.points == ["after-create-key-pair"]
    g.gw.delete_key_pair(name)
    assert g.records()[-1] == {
        "ev": "removed",
        "build": BUILD,
        "kind": "key-pair",
        "region": REGION,
        "id": name,
    }
    assert g.client.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []


def test_import_key_pair(g: Gw) -> None:
    import asyncssh

    public = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
    name = uid("imp")
    g.gw.import_key_pair(name, public, {"T": "i"})
    (pair,) = g.client.describe_key_pairs(KeyNames=[name])["KeyPairs"]
    assert tags_of(pair.get("Tags", [])) == {"T": "i"}
    assert [r["ev"] for r in g.records()] == ["intent", "created"]
    assert g.points == ["after-create-key-pair"]


def test_adopt_key_pair(g: Gw) -> None:
    name = uid("ak")
    assert g.gw._adopt_key_pair(name, own(g), keep=True) is None
    g.client.create_key_pair(
        KeyName=name,
        TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": [{"Key": k, "Value": v} for k, v in own(g).items()]}
        ],
    )
    assert g.gw._adopt_key_pair(name, own(g), keep=True) == {"KeyName": name}
    assert g.gw._adopt_key_pair(name, own(g), keep=False) is None
    assert g.client.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []
    other = uid("other")
    g.client.create_key_pair(KeyName=other)
    with pytest.raises(
        NotOurs,
        match=f"key pair '{other}' already exists and was not made by this build "
        r"\(no amibake tags\)",
    ):
        g.gw._adopt_key_pair(other, own(g), keep=True)


def test_security_group_create_ingress_and_delete(g: Gw) -> None:
    vpc = g.client.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    name = uid("sg")
    gid = g.gw.create_security_group(name, "temporary", vpc, {**own(g), "T": "s"})
    (grp,) = g.client.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert grp["GroupName"] == name and grp["Description"] == "temporary" and grp["VpcId"] == vpc
    assert tags_of(grp["Tags"])["T"] == "s"
    assert g.records() == [
        {"ev": "intent", "build": BUILD, "kind": "security-group", "region": REGION, "name": name},
        {
            "ev": "created",
            "build": BUILD,
            "kind": "security-group",
            "region": REGION,
            "id": gid,
            "name": name,
        },
    ]
    assert g.points == ["after-create-security-group"]
    g.gw.authorize_ingress(gid, 2222, ["10.0.0.0/8", "::/0"])
    (perm,) = g.client.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"]
    assert (perm["IpProtocol"], perm["FromPort"], perm["ToPort"]) == ("tcp", 2222, 2222)
    assert perm["IpRanges"] == [{"CidrIp": "10.0.0.0/8"}] and perm["Ipv6Ranges"] == [{"CidrIpv6": "::/0"}]
    assert g.gw.security_groups(ids=[gid]) == [gid]
    assert g.gw.security_groups(filters={"group-name": [name]}) == [gid]
    assert g.gw.security_group_by_name(name, REGION) == [gid]
    g.gw.delete_security_group(gid)
    assert g.records()[-1] == {
        "ev": "removed",
        "build": BUILD,
        "kind": "security-group",
        "region": REGION,
        "id": gid,
    }
    assert g.gw.security_groups(filters={"group-name": [name]}) == []


def test_ingress_v4_only_has_no_v6_ranges(g: Gw) -> None:
    gid = g.gw.create_security_group(uid("sg4"), "d", "", {})
    g.gw.authorize_ingress(gid, 22, ["0.0.0.0/0"])
    (perm,) = g.client.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissions"]
    assert perm["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}] and not perm.get("Ipv6Ranges")
    assert not g.client.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0].get("Tags")


def test_adopt_security_group(g: Gw) -> None:
    vpc = g.client.describe_vpcs()["Vpcs"][0]["VpcId"]
    name = uid("asg")
    assert g.gw._adopt_security_group(name, vpc, own(g)) is None
    gid = g.client.create_security_group(
        GroupName=name,
        Description="d",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in own(g).items()]}
        ],
    )["GroupId"]
    assert g.gw._adopt_security_group(name, vpc, own(g)) == {"GroupId": gid}
    assert g.gw._adopt_security_group(name, "", own(g)) == {"GroupId": gid}
    with pytest.raises(NotOurs, match=f"security group {gid} named '{name}' already exists"):
        g.gw._adopt_security_group(name, vpc, {"amibake:run-id": "other", "amibake:build": BUILD})


# -- network, instances ---------------------------------------------------------------------------


def test_vpcs_and_subnets(g: Gw) -> None:
    vpc = g.client.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    assert [v["VpcId"] for v in g.gw.vpcs(ids=[vpc])] == [vpc]
    assert [v["VpcId"] for v in g.gw.vpcs(filters={"isDefault": ["true"]})] == [vpc]
    subnets = g.gw.subnets(filters={"vpc-id": [vpc]})
    assert subnets and all(s["VpcId"] == vpc for s in subnets)
    sid = subnets[0]["SubnetId"]
    assert [s["SubnetId"] for s in g.gw.subnets(ids=[sid])] == [sid]
    assert len(g.gw.vpcs()) >= 1 and len(g.gw.subnets()) >= len(subnets)


def test_run_describe_stop_terminate_instance(g: Gw) -> None:
    token = str(uuid.uuid4())
    inst = g.gw.run_instance(
        {
            "ImageId": base_ami(g),
            "MinCount": 1,
            "MaxCount": 1,
            "ClientToken": token,
            "InstanceType": "t3.micro",
        }
    )
    assert inst.id.startswith("i-") and inst.state == "pending"
    assert g.records() == [
        {"ev": "intent", "build": BUILD, "kind": "instance", "region": REGION, "token": token},
        {
            "ev": "created",
            "build": BUILD,
            "kind": "instance",
            "region": REGION,
            "id": inst.id,
            "token": token,
        },
    ]
    assert g.points == ["after-run-instances"]
    seen = g.gw.describe_instance(inst.id)
    assert seen is not None and seen.id == inst.id and seen.state == "running"
    assert seen.private_ip and seen.vpc_id and seen.block_devices
    assert g.gw.stop_instance(inst.id) == "stopping"
    assert g.points[-1] == "after-stop-instances"
    assert g.gw.terminate_instance(inst.id) == "shutting-down"
    assert g.records()[-1] == {
        "ev": "removed",
        "build": BUILD,
        "kind": "instance",
        "region": REGION,
        "id": inst.id,
    }
    done = g.gw.wait_instance(inst.id, ["terminated"])
    assert done.id == inst.id and done.state == "terminated"


def test_describe_instance_of_an_unknown_id(g: Gw) -> None:
    with pytest.raises(AwsError) as err:
        g.gw.describe_instance("i-0123456789abcdef0")
    assert err.value.code == "InvalidInstanceID.NotFound"


def test_modify_instance_attribute(g: Gw) -> None:
    iid = instance(g)
    g.client.stop_instances(InstanceIds=[iid])
    g.gw.modify_instance_attribute(iid, InstanceType={"Value": "t3.large"})
    attr = g.client.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert attr["InstanceType"]["Value"] == "t3.large"


def test_volumes_and_delete_volume(g: Gw) -> None:
    vol = g.client.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    assert g.gw.volumes([vol, "vol-0123456789abcdef0"]) == [(vol, "available")]
    g.gw.delete_volume(vol)
    assert g.gw.volumes([vol]) == []
    assert g.records() == [{"ev": "removed", "build": BUILD, "kind": "volume", "region": REGION, "id": vol}]


# -- spot -----------------------------------------------------------------------------------------


def test_launch_template_create_find_delete(g: Gw) -> None:
    name = uid("lt")
    lt = g.gw.create_launch_template(name, {"ImageId": base_ami(g)}, {**own(g), "T": "l"})
    (found,) = g.client.describe_launch_templates(LaunchTemplateIds=[lt])["LaunchTemplates"]
    assert found["LaunchTemplateName"] == name and tags_of(found.get("Tags", []))["T"] == "l"
    intent, created = g.records()
    token = intent.pop("token")
    assert len(token) == 36
    assert intent == {
        "ev": "intent",
        "build": BUILD,
        "kind": "launch-template",
        "region": REGION,
        "name": name,
    }
    assert created == {
        "ev": "created",
        "build": BUILD,
        "kind": "launch-template",
        "region": REGION,
        "id": lt,
        "name": name,
    }
    assert g.points == ["after-create-launch-template"]
    assert g.gw.launch_templates_named(name, REGION) == [lt]
    assert g.gw.launch_templates_named(uid("none"), REGION) == []
    g.gw.delete_launch_template(lt)
    assert g.records()[-1] == {
        "ev": "removed",
        "build": BUILD,
        "kind": "launch-template",
        "region": REGION,
        "id": lt,
    }
    assert g.gw.launch_templates_named(name, REGION) == []


def test_create_fleet_journals_the_fleet_and_its_instance(g: Gw) -> None:
    lt = g.gw.create_launch_template(uid("flt"), {"ImageId": base_ami(g), "InstanceType": "t3.micro"}, {})
    ids = g.gw.create_fleet(
        {
            "Type": "instant",
            "TargetCapacitySpecification": {"DefaultTargetCapacityType": "spot", "TotalTargetCapacity": 1},
            "LaunchTemplateConfigs": [
                {"LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "1"}}
            ],
        }
    )
    assert len(ids) == 1 and ids[0].startswith("i-")
    recs = g.records()[2:]
    intent = recs[0]
    assert intent["ev"] == "intent" and intent["kind"] == "fleet" and len(intent["token"]) == 36
    fleet = recs[1]
    assert fleet["ev"] == "created" and fleet["kind"] == "fleet" and fleet["id"].startswith("fleet-")
    assert recs[2] == {
        "ev": "created",
        "build": BUILD,
        "kind": "instance",
        "region": REGION,
        "id": ids[0],
        "fleet": fleet["id"],
    }
    assert g.points[-1] == "after-create-fleet"
    g.gw.delete_fleet(fleet["id"])
    assert g.records()[-1] == {
        "ev": "removed",
        "build": BUILD,
        "kind": "fleet",
        "region": REGION,
        "id": fleet["id"],
    }


# -- IAM ------------------------------------------------------------------------------------------


def test_iam_profile_role_and_policy_lifecycle(g: Gw) -> None:
    name = uid("packer")
    assert g.gw.instance_profile_exists(name) is False
    g.gw.create_instance_profile(name, {**own(g), "T": "p"})
    assert g.gw.instance_profile_exists(name) is True
    prof = g.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    assert tags_of(prof.get("Tags", []))["T"] == "p"
    g.gw.create_role(name, json.dumps({"Version": "2012-10-17", "Statement": []}), {"T": "r"})
    role = g.iam.get_role(RoleName=name)["Role"]
    assert tags_of(role.get("Tags", [])) == {"T": "r"}
    g.gw.put_role_policy(
        name,
        "pol",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    g.gw.add_role_to_instance_profile(name, name)
    assert g.gw.iam_profile_roles(name) == [name]
    assert g.gw.iam_role_policies(name) == ["pol"]
    assert g.gw.iam_role_profiles(name) == [name]
    assert g.points == ["after-create-instance-profile", "after-create-role"]
    g.gw.remove_role_from_instance_profile(name, name)
    g.gw.delete_role_policy(name, "pol")
    g.gw.delete_role(name)
    g.gw.delete_instance_profile(name)
    assert g.gw.instance_profile_exists(name) is False
    assert g.records() == [
        {"ev": "intent", "build": BUILD, "kind": "iam-instance-profile", "region": "", "name": name},
        {
            "ev": "created",
            "build": BUILD,
            "kind": "iam-instance-profile",
            "region": "",
            "id": name,
            "name": name,
        },
        {"ev": "intent", "build": BUILD, "kind": "iam-role", "region": "", "name": name},
        {"ev": "created", "build": BUILD, "kind": "iam-role", "region": "", "id": name, "name": name},
        {
            "ev": "intent",
            "build": BUILD,
            "kind": "iam-role-policy",
            "region": "",
            "name": name,
            "policy": "pol",
        },
        {
            "ev": "created",
            "build": BUILD,
            "kind": "iam-role-policy",
            "region": "",
            "id": name,
            "name": name,
            "policy": "pol",
        },
        {
            "ev": "intent",
            "build": BUILD,
            "kind": "iam-role-in-profile",
            "region": "",
            "name": name,
            "role": name,
        },
        {
            "ev": "created",
            "build": BUILD,
            "kind": "iam-role-in-profile",
            "region": "",
            "id": name,
            "name": name,
            "role": name,
        },
        {"ev": "removed", "build": BUILD, "kind": "iam-role-in-profile", "region": "", "id": name},
        {"ev": "removed", "build": BUILD, "kind": "iam-role-policy", "region": "", "id": name},
        {"ev": "removed", "build": BUILD, "kind": "iam-role", "region": "", "id": name},
        {"ev": "removed", "build": BUILD, "kind": "iam-instance-profile", "region": "", "id": name},
    ]


def test_adopt_iam(g: Gw) -> None:
    name = uid("packer")
    assert g.gw._adopt_iam("get_role", "Role", f"IAM role {name!r}", own(g), RoleName=name) is None
    g.iam.create_role(
        RoleName=name, AssumeRolePolicyDocument="{}", Tags=[{"Key": k, "Value": v} for k, v in own(g).items()]
    )
    found = g.gw._adopt_iam("get_role", "Role", f"IAM role {name!r}", own(g), RoleName=name)
    assert found is not None and found["Role"]["RoleName"] == name
    with pytest.raises(
        NotOurs,
        match=f"IAM role '{name}' already exists and was not made by this build "
        rf"\(amibake:run-id={g.run_id}, amibake:build={BUILD}\)",
    ):
        g.gw._adopt_iam(
            "get_role",
            "Role",
            f"IAM role {name!r}",
            {"amibake:run-id": "x", "amibake:build": BUILD},
            RoleName=name,
        )


# -- discovery ------------------------------------------------------------------------------------


def test_find_tagged_every_kind_by_run_and_by_key(g: Gw) -> None:
    run = uid("run")
    tag = [{"Key": "amibake:run-id", "Value": run}]

    def spec(rt: str) -> list[dict[str, Any]]:
        return [{"ResourceType": rt, "Tags": tag}]

    iid = g.client.run_instances(
        ImageId=base_ami(g), MinCount=1, MaxCount=1, TagSpecifications=spec("instance")
    )["Instances"][0]["InstanceId"]
    dead = g.client.run_instances(
        ImageId=base_ami(g), MinCount=1, MaxCount=1, TagSpecifications=spec("instance")
    )["Instances"][0]["InstanceId"]
    g.client.terminate_instances(InstanceIds=[dead])
    gid = g.client.create_security_group(
        GroupName=uid("g"), Description="d", TagSpecifications=spec("security-group")
    )["GroupId"]
    key = uid("k")
    g.client.create_key_pair(KeyName=key, TagSpecifications=spec("key-pair"))
    vol = g.client.create_volume(AvailabilityZone=f"{REGION}a", Size=1, TagSpecifications=spec("volume"))[
        "VolumeId"
    ]
    lt = g.client.create_launch_template(
        LaunchTemplateName=uid("lt"), LaunchTemplateData={}, TagSpecifications=spec("launch-template")
    )["LaunchTemplate"]["LaunchTemplateId"]
    ami = g.client.create_image(InstanceId=iid, Name=uid("i"))["ImageId"]
    g.client.create_tags(Resources=[ami], Tags=tag)
    snap = g.client.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"][
        "SnapshotId"
    ]
    g.client.create_tags(Resources=[snap], Tags=tag)
    found = g.gw.find_tagged(REGION, "amibake:run-id", run)
    got = {(t.kind, t.id) for t in found}
    assert got == {
        ("instance", iid),
        ("security-group", gid),
        ("key-pair", key),
        ("volume", vol),
        ("launch-template", lt),
        ("image", ami),
        ("snapshot", snap),
    }
    for t in found:
        assert t.region == REGION and t.tags["amibake:run-id"] == run
    states = {t.kind: t.state for t in found}
    assert (
        states["instance"] == "running" and states["volume"] == "available" and states["image"] == "available"
    )
    by_key = {(t.kind, t.id) for t in g.gw.find_tagged(REGION, "amibake:run-id")}
    assert got <= by_key
    assert g.gw.find_tagged(REGION, "amibake:run-id", uid("none")) == []


def test_find_tagged_iam_only_packer_names_with_the_tag(g: Gw) -> None:
    run = uid("run")
    tags = [{"Key": "amibake:run-id", "Value": run}]
    name, other, untagged = uid("packer"), uid("mine"), uid("packer")
    for n in (name, other):
        g.iam.create_role(RoleName=n, AssumeRolePolicyDocument="{}", Tags=tags)
        g.iam.create_instance_profile(InstanceProfileName=n, Tags=tags)
    g.iam.create_role(RoleName=untagged, AssumeRolePolicyDocument="{}")
    found = g.gw.find_tagged_iam("amibake:run-id", run)
    assert {(t.kind, t.id, t.region) for t in found} == {
        ("iam-role", name, ""),
        ("iam-instance-profile", name, ""),
    }
    assert all(t.tags == {"amibake:run-id": run} for t in found)
    assert {(t.kind, t.id) for t in g.gw.find_tagged_iam("amibake:run-id", run, name_prefix="mine-")} == {
        ("iam-role", other),
        ("iam-instance-profile", other),
    }
    any_run = {t.id for t in g.gw.find_tagged_iam("amibake:run-id")}
    assert name in any_run and untagged not in any_run
    assert g.gw.find_tagged_iam("amibake:run-id", "other-run") == [] or name not in {
        t.id for t in g.gw.find_tagged_iam("amibake:run-id", "other-run")
    }


# -- the journal's records and its failures ----------------------------------------------------------


class BrokenJournal:
    """A BuildJournal whose writes fail (a full disk), with the journal's own error text or not."""

    run_id = "run-broken"

    def __init__(self, own_text: bool = False) -> None:
        self.own_text = own_text
        self.journal = type("J", (), {"path": "/state/runs/run-broken.jsonl"})()

    def _fail(self, *a: Any, **k: Any) -> None:
        if self.own_text:
            raise OSError(28, "cannot write the run journal /state/runs/run-broken.jsonl: No space left")
        raise OSError(28, "No space left on device")

    intent = created = removed = _fail


def test_a_failed_intent_stops_the_create_and_every_later_one(moto_url: str, tmp_path: Path) -> None:
    g = Gw(moto_url, tmp_path)
    told: list[str] = []
    g.gw.journal = BrokenJournal()  # type: ignore[assignment]
    g.gw.on_journal_error = told.append
    name = uid("never")
    with pytest.raises(JournalUnwritable) as err:
        g.gw.create_key_pair(name, "", {})
    problem = (
        "cannot write the run journal /state/runs/run-broken.jsonl: No space left on device "
        "(the intent to create the key-pair not recorded)"
    )
    assert str(err.value) == f"{problem}; no key-pair was created"
    assert g.gw.journal_errors == [problem] and told == [problem]
    assert g.client.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [name]}])["KeyPairs"] == []
    with pytest.raises(JournalUnwritable) as err2:
        g.gw.create_security_group(uid("never"), "d", "", {})
    assert str(err2.value) == f"{problem}; no security-group is created after that"


def test_a_failed_created_or_removed_record_is_noted_and_the_call_goes_on(
    moto_url: str, tmp_path: Path
) -> None:
    g = Gw(moto_url, tmp_path)
    broken = BrokenJournal(own_text=True)
    g.gw.journal = broken  # type: ignore[assignment]
    vol = g.client.create_volume(AvailabilityZone=f"{REGION}a", Size=1)["VolumeId"]
    g.gw.delete_volume(vol)
    assert g.gw.journal_errors == [
        f"cannot write the run journal /state/runs/run-broken.jsonl: No space left (volume {vol} removed "
        "not recorded)"
    ]
    g.gw._created("image", None, "ami-1")
    assert g.gw.journal_errors[-1].endswith("(image ami-1 created not recorded)")
    assert g.gw.volumes([vol]) == []


def test_without_a_journal_nothing_is_recorded(moto_url: str, tmp_path: Path) -> None:
    g = Gw(moto_url, tmp_path, journal=False)
    g.gw._intent("image", None)
    g.gw._created("image", None, "ami-1")
    g.gw._removed("image", None, "ami-1")
    assert g.gw.journal_errors == [] and g.gw.cleanup_hint() == "amibake cleanup"


def test_records_name_the_given_region_or_the_gateways(g: Gw) -> None:
    g.gw._intent("image", "eu-west-1", name="n")
    g.gw._created("image", "eu-west-1", "ami-1")
    g.gw._removed("image", "eu-west-1", "ami-1")
    g.gw._intent("iam-role", "", name="r")
    assert [r["region"] for r in g.records()] == ["eu-west-1"] * 3 + [""]
    assert g.gw.cleanup_hint() == f"amibake cleanup --run {g.run_id}"


def test_journal_problem_without_a_path_or_strerror() -> None:
    base = GatewayBase(AwsAccess(region=REGION))
    assert (
        base._journal_problem("x", ValueError("bad")) == "cannot write the run journal : bad (x not recorded)"
    )
    assert (
        base._journal_problem("y", OSError("plain"))
        == "cannot write the run journal : plain (y not recorded)"
    )


def test_owned_needs_both_own_tags_as_sent() -> None:
    base = GatewayBase(AwsAccess(region=REGION))
    sent = {"amibake:run-id": "r", "amibake:build": "b", "Other": "x"}
    base._owned("it", {"amibake:run-id": "r", "amibake:build": "b"}, sent)
    for found in ({"amibake:run-id": "r"}, {"amibake:run-id": "r", "amibake:build": "c"}, {}):
        with pytest.raises(NotOurs):
            base._owned("it", found, sent)
    with pytest.raises(NotOurs):
        base._owned("it", {"amibake:run-id": "r", "amibake:build": "b"}, {"amibake:run-id": "r"})
    with pytest.raises(NotOurs):
        base._owned("it", {}, None)
    with pytest.raises(NotOurs) as err:
        base._owned("thing", {"amibake:build": "b"}, sent)
    assert str(err.value) == (
        "thing already exists and was not made by this build (amibake:build=b): amibake "
        "does not adopt or remove it; use another name, or remove it if it is a leftover"
    )


def test_gateway_defaults() -> None:
    base = GatewayBase(AwsAccess(region="eu-west-1"))
    assert base.region == "eu-west-1" and base.journal is None and base.on_journal_error is None
    assert base.polling == Polling() and base.journal_errors == []
    base._pause("anything")  # the default pause does nothing


# -- waits ----------------------------------------------------------------------------------------


def test_wait_returns_the_state_that_ends_it_and_retries_not_yet_visible(g: Gw) -> None:
    answers: list[Any] = [AwsError("op", "NotYet", "x"), (False, "pending"), (True, "ready")]

    def probe() -> tuple[bool, str]:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a  # type: ignore[no-any-return]

    assert g.gw.wait("thing", probe, retry_codes=("NotYet",), point="p") == "ready"
    assert g.points == ["wait-p"]
    with pytest.raises(AwsError):
        g.gw.wait(
            "thing", lambda: (_ for _ in ()).throw(AwsError("op", "Other", "x")), retry_codes=("NotYet",)
        )


def test_wait_ends_in_a_failure_state_or_gives_up_naming_the_last_state(g: Gw) -> None:
    with pytest.raises(WaitTimeout) as err:
        g.gw.wait("the thing", lambda: (False, "broken"), failed_states=("broken",))
    assert str(err.value) == "the thing: reached the failure state 'broken'"
    g.gw.polling = Polling(delay=0.01, max_attempts=3, first_delay=0.01, overridden=True)
    with pytest.raises(WaitTimeout) as err2:
        g.gw.wait("the thing", lambda: (False, "pending"))
    text = str(err2.value)
    assert text.startswith("gave up waiting for the thing after ")
    assert "last state seen: pending" in text and text.endswith(f"amibake cleanup --run {g.run_id}")


def test_wait_stops_when_cancelled(g: Gw) -> None:
    import threading

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(BuildCancelled):
        g.gw.wait("x", lambda: (True, "done"), cancel=cancel)
    cancel2 = threading.Event()

    def probe() -> tuple[bool, str]:
        cancel2.set()
        return False, "pending"

    with pytest.raises(BuildCancelled):
        g.gw.wait("x", probe, cancel=cancel2)


def test_wait_image_available_and_failed(g: Gw) -> None:
    iid = instance(g)
    ami = g.client.create_image(InstanceId=iid, Name=uid("w"))["ImageId"]
    img = g.gw.wait_image_available(ami)
    assert img.id == ami and img.state == "available"
    assert g.points == ["wait-image-available"]
    west = Gw.__new__(Gw)
    del west
    with pytest.raises(WaitTimeout):
        g.gw.polling = Polling(delay=0.01, max_attempts=2, first_delay=0.01, overridden=True)
        g.gw.wait_image_available("ami-0123456789abcdef0", "us-west-2")
    assert g.points[-1] == "wait-copy-available"


def test_snapshot_progress(g: Gw) -> None:
    assert g.gw.snapshot_progress([]) is None
    iid = instance(g)
    ami = g.client.create_image(InstanceId=iid, Name=uid("p"))["ImageId"]
    (img,) = g.gw.describe_images(image_ids=[ami])
    assert g.gw.snapshot_progress(img.snapshot_ids) == 1.0


# -- what the calls send (botocore's own parameter event: the request still goes to moto) ----------


@pytest.fixture
def sent(g: Gw) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every API call the gateway's clients make in this test: (operation, parameters as sent)."""
    import copy

    calls: list[tuple[str, dict[str, Any]]] = []

    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, copy.deepcopy(params)))

    clients = [g.gw._client("ec2"), g.gw._client("ec2", "us-west-2"), g.gw._client("iam")]
    for c in clients:
        c.meta.events.register("provide-client-params", hook)
    try:
        yield calls
    finally:
        for c in clients:
            c.meta.events.unregister("provide-client-params", hook)


def only(calls: list[tuple[str, dict[str, Any]]], op: str) -> dict[str, Any]:
    (params,) = [p for name, p in calls if name == op]
    return params


def test_copy_image_sends_every_option(g: Gw, sent: list[tuple[str, dict[str, Any]]]) -> None:
    src = source_image(g)
    g.gw.copy_image(
        "us-west-2",
        source_region=REGION,
        source_image_id=src,
        name="full",
        description="d",
        encrypted=True,
        kms_key_id="alias/k",
        tags={"T": "1"},
        snapshot_tags={"S": "2"},
        copy_duration_minutes=30,
    )
    p = only(sent, "CopyImage")
    token = p.pop("ClientToken")
    assert token == g.records()[0]["token"]
    assert p == {
        "SourceRegion": REGION,
        "SourceImageId": src,
        "Name": "full",
        "CopyImageTags": True,
        "Description": "d",
        "Encrypted": True,
        "KmsKeyId": "alias/k",
        "SnapshotCopyCompletionDurationMinutes": 30,
        "TagSpecifications": [
            {"ResourceType": "image", "Tags": [{"Key": "T", "Value": "1"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "S", "Value": "2"}]},
        ],
    }
    sent.clear()
    g.gw.copy_image("us-west-2", source_region=REGION, source_image_id=src, name="bare")
    p2 = only(sent, "CopyImage")
    p2.pop("ClientToken")
    assert p2 == {"SourceRegion": REGION, "SourceImageId": src, "Name": "bare", "CopyImageTags": True}
    sent.clear()
    g.gw.copy_image(
        "us-west-2",
        source_region=REGION,
        source_image_id=src,
        name="unenc",
        encrypted=False,
        snapshot_tags={"S": "2"},
    )
    p3 = only(sent, "CopyImage")
    assert p3["Encrypted"] is False
    assert p3["TagSpecifications"] == [{"ResourceType": "snapshot", "Tags": [{"Key": "S", "Value": "2"}]}]


def test_create_image_and_key_pairs_and_groups_send_only_what_is_given(
    g: Gw, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    iid = instance(g)
    g.gw.create_image(iid, "bare-image")
    assert only(sent, "CreateImage") == {"InstanceId": iid, "Name": "bare-image"}
    sent.clear()
    g.gw.create_image(iid, "snap-tags", snapshot_tags={"S": "1"})
    assert only(sent, "CreateImage")["TagSpecifications"] == [
        {"ResourceType": "snapshot", "Tags": [{"Key": "S", "Value": "1"}]}
    ]
    sent.clear()
    name = uid("k")
    g.gw.create_key_pair(name, "", {})
    assert only(sent, "CreateKeyPair") == {"KeyName": name}
    sent.clear()
    g.gw.create_key_pair(uid("k"), "ed25519", {"T": "1"})
    p = only(sent, "CreateKeyPair")
    assert p["KeyType"] == "ed25519"
    assert p["TagSpecifications"] == [{"ResourceType": "key-pair", "Tags": [{"Key": "T", "Value": "1"}]}]
    sent.clear()
    gname = uid("sg")
    g.gw.create_security_group(gname, "d", "", {})
    assert only(sent, "CreateSecurityGroup") == {"GroupName": gname, "Description": "d"}


def test_import_key_pair_sends_and_records(g: Gw, sent: list[tuple[str, dict[str, Any]]]) -> None:
    import asyncssh

    public = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
    name = uid("imp")
    g.gw.import_key_pair(name, public, {})
    assert only(sent, "ImportKeyPair") == {"KeyName": name, "PublicKeyMaterial": public.encode()}
    assert g.records() == [
        {"ev": "intent", "build": BUILD, "kind": "key-pair", "region": REGION, "name": name},
        {"ev": "created", "build": BUILD, "kind": "key-pair", "region": REGION, "id": name, "name": name},
    ]


def test_run_instance_sends_its_parameters_and_reads_the_answer(
    g: Gw, sent: list[tuple[str, dict[str, Any]]]
) -> None:
    inst = g.gw.run_instance({"ImageId": base_ami(g), "MinCount": 1, "MaxCount": 1})
    assert only(sent, "RunInstances") == {"ImageId": base_ami(g), "MinCount": 1, "MaxCount": 1}
    assert g.records()[0] == {
        "ev": "intent",
        "build": BUILD,
        "kind": "instance",
        "region": REGION,
        "token": "",
    }
    sent.clear()
    assert g.gw.stop_instance(inst.id) == "stopping"
    assert only(sent, "StopInstances") == {"InstanceIds": [inst.id]}


def test_calls_in_another_region_go_there_and_are_journaled_there(g: Gw) -> None:
    west = g.gw._client("ec2", "us-west-2")
    src = source_image(g)
    ami = g.gw.copy_image("us-west-2", source_region=REGION, source_image_id=src, name=uid("w"))
    (img,) = g.gw.describe_images(image_ids=[ami], region="us-west-2")
    g.gw.modify_image_attribute(
        ami, region="us-west-2", LaunchPermission={"Add": [{"UserId": "123456789012"}]}
    )
    assert west.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == [
        {"UserId": "123456789012"}
    ]
    g.gw.create_tags([ami], {"W": "1"}, region="us-west-2")
    assert {"Key": "W", "Value": "1"} in west.describe_images(ImageIds=[ami])["Images"][0]["Tags"]
    with pytest.raises(NotOurs):  # found in us-west-2, where it is; not this build's
        g.gw._adopt_image(img.name, {}, "us-west-2")
    assert g.gw._adopt_image(img.name, {}, None) is None  # nothing of that name in the gateway's region
    g.gw.note_snapshots(ami, img.snapshot_ids, "us-west-2")
    for snap in img.snapshot_ids:
        g.gw.modify_snapshot_attribute(
            snap,
            region="us-west-2",
            Attribute="createVolumePermission",
            OperationType="add",
            CreateVolumePermission={"Add": [{"Group": "all"}]},
        )
    g.gw.destroy_image(img, "us-west-2")
    assert (
        west.describe_images(ImageIds=[ami]).get("Images", []) in ([],)
        or west.describe_images(ImageIds=[ami])["Images"][0]["State"] == "deregistered"
    )
    west_recs = [
        r for r in g.records() if r["ev"] in ("created", "removed") and r["kind"] in ("image", "snapshot")
    ]
    assert {r["region"] for r in west_recs} == {"us-west-2"}
    assert [r["ev"] for r in west_recs] == ["created"] + ["created"] * len(img.snapshot_ids) + ["removed"] * (
        1 + len(img.snapshot_ids)
    )
    key = uid("wk")
    west.create_key_pair(KeyName=key)
    g.gw.delete_key_pair(key, "us-west-2")
    assert west.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key]}])["KeyPairs"] == []
    gid = west.create_security_group(GroupName=uid("wsg"), Description="d")["GroupId"]
    g.gw.delete_security_group(gid, "us-west-2")
    vol = west.create_volume(AvailabilityZone="us-west-2a", Size=1)["VolumeId"]
    g.gw.delete_volume(vol, "us-west-2")
    lt = west.create_launch_template(LaunchTemplateName=uid("wlt"), LaunchTemplateData={})["LaunchTemplate"][
        "LaunchTemplateId"
    ]
    g.gw.delete_launch_template(lt, "us-west-2")
    wami = west.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    wiid = west.run_instances(ImageId=wami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    seen = g.gw.describe_instance(wiid, "us-west-2")
    assert seen is not None and seen.id == wiid
    assert g.gw.terminate_instance(wiid, "us-west-2") == "shutting-down"
    removed = [(r["kind"], r["region"]) for r in g.records() if r["ev"] == "removed"]
    for kind in ("key-pair", "security-group", "volume", "launch-template", "instance"):
        assert (kind, "us-west-2") in removed, kind
    assert g.gw.security_group_by_name("nothing-" + uid(), "us-west-2") == []


def test_find_tagged_iam_reads_profile_tags_and_skips_other_names(g: Gw) -> None:
    run = uid("run")
    tags = [{"Key": "amibake:run-id", "Value": run}, {"Key": "amibake:build", "Value": "b"}]
    name = uid("packer")
    g.iam.create_instance_profile(InstanceProfileName=name, Tags=tags)
    g.iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}", Tags=tags)
    (prof,) = [t for t in g.gw.find_tagged_iam("amibake:run-id", run) if t.kind == "iam-instance-profile"]
    assert prof.tags == {"amibake:run-id": run, "amibake:build": "b"} and prof.state == ""
    assert g.gw.find_tagged_iam("amibake:build", run) == []
    assert {t.id for t in g.gw.find_tagged_iam("amibake:build", "b")} >= {name}
