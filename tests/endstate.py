"""What a build left in the emulator, normalised so two runs (or two tools) can be compared.

Ids, timestamps and generated names are masked; amibake's own bookkeeping tags (``amibake:*``)
are listed apart, since Packer has none.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
_MASKS = [
    (re.compile(r"\bami-[0-9a-f]{8,17}\b"), "ami-X"),
    (re.compile(r"\bsnap-[0-9a-f]{8,17}\b"), "snap-X"),
    (re.compile(r"\bi-[0-9a-f]{8,17}\b"), "i-X"),
    (re.compile(r"\bvol-[0-9a-f]{8,17}\b"), "vol-X"),
    (re.compile(r"\bsg-[0-9a-f]{8,17}\b"), "sg-X"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\b1[6-9]\d{8}\b"), "TS"),
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"), "TIME"),
    (re.compile(r"\bsubnet-[0-9a-f]{8,17}\b"), "subnet-X"),
    (re.compile(r"\bvpc-[0-9a-f]{8,17}\b"), "vpc-X"),
    (re.compile(r"\blt-[0-9a-f]{8,17}\b"), "lt-X"),
    (re.compile(r"packer-\d+\.\d+\.\d+"), "packer-VERSION"),
]


def mask(value: Any) -> Any:
    if isinstance(value, str):
        for rx, repl in _MASKS:
            value = rx.sub(repl, value)
        return value
    if isinstance(value, Mapping):
        return {mask(k): mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((mask(v) for v in value), key=repr)
    return value


def client(env: Mapping[str, str], region: str) -> Any:
    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _tags(obj: Mapping[str, Any], own: bool = False) -> dict[str, str]:
    tags = {t["Key"]: t["Value"] for t in obj.get("Tags", [])}
    return {k: v for k, v in tags.items() if k.startswith("amibake:") == own}


def region_state(env: Mapping[str, str], region: str) -> dict[str, Any]:
    ec2 = client(env, region)
    images = []
    for img in ec2.describe_images(Owners=["self"])["Images"]:
        perms = ec2.describe_image_attribute(ImageId=img["ImageId"], Attribute="launchPermission")
        images.append(
            {
                "id": img["ImageId"],
                "name": img["Name"],
                "description": img.get("Description", ""),
                "state": img["State"],
                "tags": _tags(img),
                "launch_permissions": sorted(
                    p.get("UserId") or p.get("Group") or "" for p in perms.get("LaunchPermissions", [])
                ),
                "block_devices": sorted(
                    (
                        bd["DeviceName"],
                        bd.get("Ebs", {}).get("VolumeSize"),
                        bd.get("Ebs", {}).get("VolumeType"),
                        bd.get("Ebs", {}).get("DeleteOnTermination"),
                        bd.get("VirtualName", ""),
                    )
                    for bd in img.get("BlockDeviceMappings", [])
                ),
                "public": img.get("Public"),
                "ena_support": img.get("EnaSupport"),
                "sriov_net_support": img.get("SriovNetSupport", ""),
                "virtualization_type": img.get("VirtualizationType", ""),
                "snapshots": sorted(
                    bd["Ebs"]["SnapshotId"] for bd in img.get("BlockDeviceMappings", []) if "Ebs" in bd
                ),
            }
        )
    snapshots = {
        s["SnapshotId"]: {"tags": _tags(s), "state": s["State"], "size": s.get("VolumeSize")}
        for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }
    for img in images:  # permissions only for the images' own snapshots (moto lists thousands)
        for sid in img["snapshots"]:
            if sid in snapshots and "create_volume_permissions" not in snapshots[sid]:
                perms = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
                snapshots[sid]["create_volume_permissions"] = sorted(
                    p.get("UserId") or p.get("Group") or "" for p in perms.get("CreateVolumePermissions", [])
                )
    instances = [
        _instance(ec2, i) for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
    ]
    return {
        "images": images,
        "snapshots": snapshots,
        "instances": instances,
        "running_instances": [i for i in instances if i["state"] not in ("terminated", "shutting-down")],
        "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]],
        "security_groups": [
            g["GroupName"]
            for g in ec2.describe_security_groups()["SecurityGroups"]
            if g["GroupName"] != "default"
        ],
        "volumes": [v["VolumeId"] for v in ec2.describe_volumes()["Volumes"] if v["State"] != "deleted"],
        "launch_templates": [
            t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]
        ],
    }


def _attribute(ec2: Any, iid: str, name: str) -> Any:
    """One DescribeInstanceAttribute value ("" when moto does not model the attribute)."""
    try:
        answer = ec2.describe_instance_attribute(InstanceId=iid, Attribute=name)
    except botocore.exceptions.ClientError:
        return ""
    key = name[:1].upper() + name[1:]
    return answer.get(key, {}).get("Value", "")


def _instance(ec2: Any, i: Mapping[str, Any]) -> dict[str, Any]:
    """What an instance was launched with, as EC2 describes it (terminated instances included)."""
    iid = i["InstanceId"]
    user_data = _attribute(ec2, iid, "userData")
    placement = i.get("Placement", {})
    md = i.get("MetadataOptions", {})
    return {
        "id": iid,
        "state": i["State"]["Name"],
        "tags": _tags(i),
        "image": i.get("ImageId", ""),
        "instance_type": i.get("InstanceType", ""),
        "availability_zone": placement.get("AvailabilityZone", ""),
        "tenancy": placement.get("Tenancy", ""),
        "ebs_optimized": i.get("EbsOptimized"),
        "lifecycle": i.get("InstanceLifecycle", "normal"),
        "iam_instance_profile": i.get("IamInstanceProfile", {}).get("Arn", ""),
        "key_name": i.get("KeyName", ""),
        "in_subnet": bool(i.get("SubnetId")),
        "public_ip": bool(i.get("PublicIpAddress")),
        "sriov_net_support": i.get("SriovNetSupport", ""),
        "ena_support": i.get("EnaSupport"),
        "metadata_options": {k: md.get(k) for k in ("HttpEndpoint", "HttpTokens", "HttpPutResponseHopLimit")},
        "shutdown_behavior": _attribute(ec2, iid, "instanceInitiatedShutdownBehavior"),
        "user_data": _decode(user_data),
    }


def _decode(b64: str) -> str:
    """User data as the instance would read it (EC2 holds it base64-encoded)."""
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8", "replace") if b64 else ""
    except (binascii.Error, ValueError):
        return f"(not base64: {b64!r})"


def iam_state(env: Mapping[str, str]) -> dict[str, list[str]]:
    """IAM roles and instance profiles (global): a build's temporary ones must be gone."""
    iam = boto3.client(
        "iam",
        region_name="us-east-1",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return {
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "instance_profiles": sorted(
            p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]
        ),
    }


def end_state(env: Mapping[str, str], regions: Iterable[str] = REGIONS) -> dict[str, dict[str, Any]]:
    return {r: region_state(env, r) for r in regions}


def leftovers(state: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Temporary resources still there: running instances, key pairs, security groups, volumes,
    launch templates."""
    out: dict[str, list[Any]] = {}
    for region, st in state.items():
        for kind in ("running_instances", "key_pairs", "security_groups", "volumes", "launch_templates"):
            if st[kind]:
                out[f"{region}:{kind}"] = list(st[kind])
    return out


def comparable(state: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The end state with ids masked and images' snapshots resolved to their tags."""
    out: dict[str, Any] = {}
    for region, st in state.items():
        images = []
        for img in st["images"]:
            snaps = [st["snapshots"].get(s, {}) for s in img["snapshots"]]
            images.append(
                mask(
                    {k: v for k, v in img.items() if k not in ("id", "snapshots")} | {"snapshot_tags": snaps}
                )
            )
        out[region] = {
            "images": sorted(images, key=repr),
            # by Name tag first: parallel builds launch in any order, and a masked repr alone can
            # order two builds' instances differently from one run to the next
            "instances": sorted(
                (mask({k: v for k, v in i.items() if k != "id"}) for i in st["instances"]),
                key=lambda i: (str(i.get("tags", {}).get("Name", "")), repr(i)),
            ),
            "key_pairs": st["key_pairs"],
            "security_groups": st["security_groups"],
            "volumes": mask(st["volumes"]),
            "launch_templates": mask(st["launch_templates"]),
        }
    return out


def comparable_manifest(path: Path) -> Any:
    """A manifest file with build times zeroed, builds in name order, ids and times masked."""
    data = json.loads(path.read_text())
    for b in data["builds"]:
        b["build_time"] = 0
    data["builds"].sort(key=lambda b: b["name"])
    return mask(data)
