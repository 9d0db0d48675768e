"""The few small typed records the EC2 gateway makes of the API's dictionaries, and the tag helpers.

Plain data: no botocore here, so a module that only names an :class:`Image` or builds tags imports nothing
of AWS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Tags = Mapping[str, str]


def tag_dict(raw: Sequence[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t.get("Key", "")): str(t.get("Value", "")) for t in raw or ()}


def tag_list(tags: Tags) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    state: str
    owner_id: str = ""
    owner_alias: str = ""
    creation_date: str = ""
    root_device_type: str = ""
    virtualization_type: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    snapshot_ids: tuple[str, ...] = ()
    state_reason: str = ""

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Image:
        snaps = tuple(
            str(b["Ebs"]["SnapshotId"])
            for b in d.get("BlockDeviceMappings", [])
            if b.get("Ebs") and b["Ebs"].get("SnapshotId")
        )
        return cls(
            id=str(d.get("ImageId", "")),
            name=str(d.get("Name", "")),
            state=str(d.get("State", "")),
            owner_id=str(d.get("OwnerId", "")),
            owner_alias=str(d.get("ImageOwnerAlias", "")),
            creation_date=str(d.get("CreationDate", "")),
            root_device_type=str(d.get("RootDeviceType", "")),
            virtualization_type=str(d.get("VirtualizationType", "")),
            description=str(d.get("Description", "") or ""),
            tags=tag_dict(d.get("Tags")),
            snapshot_ids=snaps,
            state_reason=str((d.get("StateReason") or {}).get("Message", "")),
        )


@dataclass(frozen=True)
class BlockDevice:
    device_name: str
    volume_id: str
    delete_on_termination: bool


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    public_ip: str = ""
    private_ip: str = ""
    public_dns: str = ""
    private_dns: str = ""
    ipv6: str = ""
    vpc_id: str = ""
    block_devices: tuple[BlockDevice, ...] = ()
    state_reason: str = ""

    @classmethod
    def from_api(cls, d: Mapping[str, Any]) -> Instance:
        bdm = tuple(
            BlockDevice(
                str(b.get("DeviceName", "")),
                str(b["Ebs"].get("VolumeId", "")),
                bool(b["Ebs"].get("DeleteOnTermination", False)),
            )
            for b in d.get("BlockDeviceMappings", [])
            if b.get("Ebs")
        )
        ipv6 = ""
        for nic in d.get("NetworkInterfaces", []):
            for addr in nic.get("Ipv6Addresses", []):
                ipv6 = ipv6 or str(addr.get("Ipv6Address", ""))
        return cls(
            id=str(d.get("InstanceId", "")),
            state=str((d.get("State") or {}).get("Name", "")),
            public_ip=str(d.get("PublicIpAddress", "") or ""),
            private_ip=str(d.get("PrivateIpAddress", "") or ""),
            public_dns=str(d.get("PublicDnsName", "") or ""),
            private_dns=str(d.get("PrivateDnsName", "") or ""),
            ipv6=ipv6,
            vpc_id=str(d.get("VpcId", "") or ""),
            block_devices=bdm,
            state_reason=str((d.get("StateReason") or {}).get("Message", "")),
        )


def tag_specs(tags: Tags, *resource_types: str) -> list[dict[str, Any]]:
    if not tags:
        return []
    return [{"ResourceType": rt, "Tags": tag_list(tags)} for rt in resource_types]


@dataclass(frozen=True)
class Tagged:
    """A resource found by tag: kind (a journal kind), region ("" for IAM), id, tags, state."""

    kind: str
    region: str
    id: str
    tags: dict[str, str]
    state: str = ""
