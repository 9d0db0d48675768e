"""The typed view of an amazon-ebs config that the build steps read.

The config class (:mod:`amibake.builders.amazon.config`) owns the declarations, defaults and
validation of every template key. This module only *reads* it, in one place, by Packer's key names,
so that the steps depend on a small frozen record instead of on the config's nested models. Every
attribute read here is listed in :data:`CONFIG_ATTRIBUTES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amibake.builders.amazon.ec2 import AwsAccess, Polling

#: the config attributes (Packer key names) this view reads
CONFIG_ATTRIBUTES = (
    "region", "access_key", "secret_key", "token", "profile", "custom_endpoint_ec2",
    "insecure_skip_tls_verify", "max_retries", "skip_region_validation", "aws_polling",
    "source_ami", "source_ami_filter", "instance_type", "ami_name", "ami_description", "tags",
    "run_tags", "snapshot_tags", "run_volume_tags", "ami_regions", "ami_users", "ami_groups",
    "ami_org_arns", "ami_ou_arns", "ami_product_codes", "snapshot_users", "snapshot_groups",
    "force_deregister", "force_delete_snapshot", "encrypt_boot", "kms_key_id", "region_kms_key_ids",
    "deprecate_at", "imds_support", "skip_create_ami", "launch_block_device_mappings",
    "ami_block_device_mappings", "associate_public_ip_address", "subnet_id", "vpc_id",
    "security_group_id", "security_group_ids", "temporary_security_group_source_cidrs",
    "availability_zone", "user_data", "user_data_file", "iam_instance_profile",
    "temporary_iam_instance_profile_policy_document", "spot_price", "spot_instance_types",
    "spot_tags", "ebs_optimized", "shutdown_behavior", "disable_stop_instance", "metadata_options",
    "communicator", "ssh_host", "ssh_port", "ssh_username", "ssh_password", "ssh_private_key_file",
    "ssh_keypair_name", "ssh_agent_auth", "ssh_timeout", "ssh_interface", "temporary_key_pair_name",
    "temporary_key_pair_type", "ssh_handshake_attempts", "ssh_keep_alive_interval",
    "ssh_file_transfer_method", "ssh_pty", "ssh_ciphers", "ssh_key_exchange_algorithms",
    "ssh_certificate_file", "ssh_bastion_host", "ssh_bastion_port", "ssh_bastion_username",
    "ssh_bastion_password", "ssh_bastion_private_key_file",
)


def _get(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, None)
    return default if value is None else value


def _plain(value: Any) -> Any:
    """A pydantic model / dataclass / namespace -> dict; lists and dicts recursively."""
    if value is None:
        return None
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, str | int | float | bool):
        return {k: _plain(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value


def _seconds(value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    text = str(value).strip()
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    total, num = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = "ms" if text[i : i + 2] == "ms" else ch
        total += float(num or 0) * units.get(unit, 1.0)
        num = ""
        i += len(unit)
    if num:
        total += float(num)
    return total


def _tribool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


@dataclass(frozen=True)
class BlockDeviceSpec:
    device_name: str
    volume_size: int | None = None
    volume_type: str = ""
    delete_on_termination: bool = False
    encrypted: bool | None = None
    kms_key_id: str = ""
    iops: int | None = None
    throughput: int | None = None
    snapshot_id: str = ""
    no_device: bool = False
    virtual_name: str = ""

    @classmethod
    def from_any(cls, raw: Any) -> BlockDeviceSpec:
        d = _plain(raw) or {}
        return cls(
            device_name=str(d.get("device_name") or ""),
            volume_size=d.get("volume_size") or None,
            volume_type=str(d.get("volume_type") or ""),
            delete_on_termination=bool(d.get("delete_on_termination") or False),
            encrypted=_tribool(d.get("encrypted")),
            kms_key_id=str(d.get("kms_key_id") or ""),
            iops=d.get("iops") or None,
            throughput=d.get("throughput") or None,
            snapshot_id=str(d.get("snapshot_id") or ""),
            no_device=bool(d.get("no_device") or False),
            virtual_name=str(d.get("virtual_name") or ""),
        )

    def to_api(self) -> dict[str, Any]:
        """The EC2 BlockDeviceMapping, as Packer's BuildEC2BlockDeviceMappings builds it."""
        out: dict[str, Any] = {"DeviceName": self.device_name}
        if self.no_device:
            out["NoDevice"] = ""
            return out
        if self.virtual_name:
            out["VirtualName"] = self.virtual_name
            return out
        ebs: dict[str, Any] = {"DeleteOnTermination": self.delete_on_termination}
        if self.volume_type:
            ebs["VolumeType"] = self.volume_type
        if self.volume_size:
            ebs["VolumeSize"] = int(self.volume_size)
        if self.iops:
            ebs["Iops"] = int(self.iops)
        if self.throughput:
            ebs["Throughput"] = int(self.throughput)
        if self.snapshot_id:
            ebs["SnapshotId"] = self.snapshot_id
        if self.encrypted is not None:
            ebs["Encrypted"] = self.encrypted
        if self.kms_key_id:
            ebs["KmsKeyId"] = self.kms_key_id
        out["Ebs"] = ebs
        return out


@dataclass(frozen=True)
class SourceAmiFilter:
    filters: dict[str, list[str]] = field(default_factory=dict)
    owners: tuple[str, ...] = ()
    most_recent: bool = False

    @classmethod
    def from_any(cls, raw: Any) -> SourceAmiFilter | None:
        d = _plain(raw)
        if not d:
            return None
        filters = {
            str(k): [str(x) for x in (v if isinstance(v, list) else [v])]
            for k, v in (d.get("filters") or {}).items()
        }
        owners = tuple(str(o) for o in d.get("owners") or ())
        if not filters and not owners:
            return None
        return cls(filters, owners, bool(d.get("most_recent") or False))


@dataclass(frozen=True)
class NetworkFilter:
    """``vpc_filter`` / ``subnet_filter`` / ``security_group_filter``: EC2 filters (plus subnet choice)."""

    filters: dict[str, list[str]] = field(default_factory=dict)
    most_free: bool = False
    random: bool = False

    @classmethod
    def from_any(cls, raw: Any) -> NetworkFilter | None:
        d = _plain(raw)
        if not d or not d.get("filters"):
            return None
        filters = {
            str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in d["filters"].items()
        }
        return cls(filters, bool(d.get("most_free") or False), bool(d.get("random") or False))


@dataclass(frozen=True)
class EbsSettings:
    access: AwsAccess
    polling: Polling
    skip_region_validation: bool = True
    # source
    source_ami: str = ""
    source_ami_filter: SourceAmiFilter | None = None
    instance_type: str = "t2.micro"
    # outputs
    ami_name: str = ""
    ami_description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    run_tags: dict[str, str] = field(default_factory=dict)
    run_volume_tags: dict[str, str] = field(default_factory=dict)
    snapshot_tags: dict[str, str] = field(default_factory=dict)
    ami_regions: tuple[str, ...] = ()
    ami_users: tuple[str, ...] = ()
    ami_groups: tuple[str, ...] = ()
    ami_org_arns: tuple[str, ...] = ()
    ami_ou_arns: tuple[str, ...] = ()
    ami_product_codes: tuple[str, ...] = ()
    snapshot_users: tuple[str, ...] = ()
    snapshot_groups: tuple[str, ...] = ()
    force_deregister: bool = False
    force_delete_snapshot: bool = False
    encrypt_boot: bool | None = None
    kms_key_id: str = ""
    region_kms_key_ids: dict[str, str] = field(default_factory=dict)
    deprecate_at: str = ""
    imds_support: str = ""
    skip_create_ami: bool = False
    launch_block_device_mappings: tuple[BlockDeviceSpec, ...] = ()
    ami_block_device_mappings: tuple[BlockDeviceSpec, ...] = ()
    # network / instance
    associate_public_ip_address: bool | None = None
    subnet_id: str = ""
    vpc_id: str = ""
    availability_zone: str = ""
    security_group_ids: tuple[str, ...] = ()
    vpc_filter: NetworkFilter | None = None
    subnet_filter: NetworkFilter | None = None
    security_group_filter: NetworkFilter | None = None
    temporary_security_group_source_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    user_data: str = ""
    user_data_file: str = ""
    iam_instance_profile: str = ""
    temporary_iam_instance_profile_policy_document: Any = None
    spot_price: str = ""
    spot_instance_types: tuple[str, ...] = ()
    spot_tags: dict[str, str] = field(default_factory=dict)
    ebs_optimized: bool = False
    shutdown_behavior: str = "stop"
    disable_stop_instance: bool = False
    metadata_options: dict[str, Any] = field(default_factory=dict)
    # communicator
    communicator: str = "ssh"
    ssh_host: str = ""
    ssh_port: int = 22
    ssh_username: str = ""
    ssh_password: str = ""
    ssh_private_key_file: str = ""
    ssh_keypair_name: str = ""
    ssh_agent_auth: bool = False
    ssh_timeout: float = 300.0
    ssh_interface: str = ""
    temporary_key_pair_name: str = ""
    temporary_key_pair_type: str = "rsa"
    ssh_handshake_attempts: int = 10
    ssh_keep_alive_interval: float = 5.0
    ssh_file_transfer_method: str = "scp"
    ssh_pty: bool = False
    ssh_ciphers: tuple[str, ...] = ()
    ssh_key_exchange_algorithms: tuple[str, ...] = ()
    ssh_certificate_file: str = ""
    bastion: dict[str, Any] = field(default_factory=dict)

    @property
    def is_spot(self) -> bool:
        return self.spot_price not in ("", "0")

    @classmethod
    def from_config(cls, c: Any) -> EbsSettings:
        polling = _plain(_get(c, "aws_polling")) or {}
        access = AwsAccess(
            region=str(_get(c, "region", "")),
            profile=str(_get(c, "profile", "")),
            access_key=str(_get(c, "access_key", "")),
            secret_key=str(_get(c, "secret_key", "")),
            token=str(_get(c, "token", "")),
            endpoint_ec2=str(_get(c, "custom_endpoint_ec2", "")),
            insecure_skip_tls_verify=bool(_get(c, "insecure_skip_tls_verify", False)),
            max_retries=int(_get(c, "max_retries", 0) or 0),
        )
        sg_ids = list(_get(c, "security_group_ids", []) or [])
        if _get(c, "security_group_id"):
            sg_ids.insert(0, str(_get(c, "security_group_id")))
        bastion = {
            k: _get(c, f"ssh_bastion_{k}")
            for k in ("host", "port", "username", "password", "private_key_file")
            if _get(c, f"ssh_bastion_{k}") not in (None, "")
        }

        def strs(name: str) -> tuple[str, ...]:
            v = _get(c, name, ())
            return tuple(str(x) for x in (v if isinstance(v, list | tuple) else [v]))

        def tags(name: str) -> dict[str, str]:
            return {str(k): str(v) for k, v in (_plain(_get(c, name, {})) or {}).items()}

        def bdms(name: str) -> tuple[BlockDeviceSpec, ...]:
            return tuple(BlockDeviceSpec.from_any(b) for b in (_get(c, name, []) or []))

        cidrs = strs("temporary_security_group_source_cidrs") or ("0.0.0.0/0",)
        return cls(
            access=access,
            polling=Polling.resolve(polling.get("delay_seconds"), polling.get("max_attempts")),
            skip_region_validation=bool(_get(c, "skip_region_validation", False)),
            source_ami=str(_get(c, "source_ami", "")),
            source_ami_filter=SourceAmiFilter.from_any(_get(c, "source_ami_filter")),
            instance_type=str(_get(c, "instance_type", "")),
            ami_name=str(_get(c, "ami_name", "")),
            ami_description=str(_get(c, "ami_description", "")),
            tags=tags("tags"),
            run_tags=tags("run_tags"),
            run_volume_tags=tags("run_volume_tags"),
            snapshot_tags=tags("snapshot_tags"),
            ami_regions=strs("ami_regions"),
            ami_users=strs("ami_users"),
            ami_groups=strs("ami_groups"),
            ami_org_arns=strs("ami_org_arns"),
            ami_ou_arns=strs("ami_ou_arns"),
            ami_product_codes=strs("ami_product_codes"),
            snapshot_users=strs("snapshot_users"),
            snapshot_groups=strs("snapshot_groups"),
            force_deregister=bool(_get(c, "force_deregister", False)),
            force_delete_snapshot=bool(_get(c, "force_delete_snapshot", False)),
            encrypt_boot=_tribool(_get(c, "encrypt_boot")),
            kms_key_id=str(_get(c, "kms_key_id", "")),
            region_kms_key_ids=tags("region_kms_key_ids"),
            deprecate_at=str(_get(c, "deprecate_at", "")),
            imds_support=str(_get(c, "imds_support", "")),
            skip_create_ami=bool(_get(c, "skip_create_ami", False)),
            launch_block_device_mappings=bdms("launch_block_device_mappings"),
            ami_block_device_mappings=bdms("ami_block_device_mappings"),
            associate_public_ip_address=_tribool(_get(c, "associate_public_ip_address")),
            subnet_id=str(_get(c, "subnet_id", "")),
            vpc_id=str(_get(c, "vpc_id", "")),
            availability_zone=str(_get(c, "availability_zone", "")),
            security_group_ids=tuple(sg_ids),
            vpc_filter=NetworkFilter.from_any(_get(c, "vpc_filter")),
            subnet_filter=NetworkFilter.from_any(_get(c, "subnet_filter")),
            security_group_filter=NetworkFilter.from_any(_get(c, "security_group_filter")),
            temporary_security_group_source_cidrs=cidrs,
            user_data=str(_get(c, "user_data", "")),
            user_data_file=str(_get(c, "user_data_file", "")),
            iam_instance_profile=str(_get(c, "iam_instance_profile", "")),
            temporary_iam_instance_profile_policy_document=_plain(
                _get(c, "temporary_iam_instance_profile_policy_document")
            ),
            spot_price=str(_get(c, "spot_price", "")),
            spot_instance_types=strs("spot_instance_types"),
            spot_tags=tags("spot_tags"),
            ebs_optimized=bool(_get(c, "ebs_optimized", False)),
            shutdown_behavior=str(_get(c, "shutdown_behavior", "stop")),
            disable_stop_instance=bool(_get(c, "disable_stop_instance", False)),
            metadata_options=_plain(_get(c, "metadata_options", {})) or {},
            communicator=str(_get(c, "communicator", "ssh")),
            ssh_host=str(_get(c, "ssh_host", "")),
            ssh_port=int(_get(c, "ssh_port", 22) or 22),
            ssh_username=str(_get(c, "ssh_username", "")),
            ssh_password=str(_get(c, "ssh_password", "")),
            ssh_private_key_file=str(_get(c, "ssh_private_key_file", "")),
            ssh_keypair_name=str(_get(c, "ssh_keypair_name", "")),
            ssh_agent_auth=bool(_get(c, "ssh_agent_auth", False)),
            ssh_timeout=_seconds(_get(c, "ssh_timeout"), 300.0),
            ssh_interface=str(_get(c, "ssh_interface", "")),
            temporary_key_pair_name=str(_get(c, "temporary_key_pair_name", "")),
            temporary_key_pair_type=str(_get(c, "temporary_key_pair_type", "rsa")),
            ssh_handshake_attempts=int(_get(c, "ssh_handshake_attempts", 10) or 10),
            ssh_keep_alive_interval=_seconds(_get(c, "ssh_keep_alive_interval"), 5.0),
            ssh_file_transfer_method=str(_get(c, "ssh_file_transfer_method", "scp")),
            ssh_pty=bool(_get(c, "ssh_pty", False)),
            ssh_ciphers=strs("ssh_ciphers"),
            ssh_key_exchange_algorithms=strs("ssh_key_exchange_algorithms"),
            ssh_certificate_file=str(_get(c, "ssh_certificate_file", "")),
            bastion=bastion,
        )


def as_list(value: Sequence[str] | str) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
