"""Block device mappings (``launch_block_device_mappings``, ``ami_block_device_mappings`` ...)."""

from typing import Any

from pydantic import Field

from amibake.config.base import CheckContext, ConfigModel
from amibake.config.weak import Bool, Int, Str, StructList, Trilean
from amibake.errors import Problem

MIN_IOPS, MAX_IOPS = 100, 64000
MIN_IOPS_GP3, MAX_IOPS_GP3 = 3000, 16000
MIN_THROUGHPUT, MAX_THROUGHPUT = 125, 1000
IOPS_RATIOS = {"io1": 50, "io2": 500}


def delete_on_termination_field() -> Any:
    """``delete_on_termination`` of a block device mapping (and of ``ami_root_device``)."""
    return Field(
        False,
        description=(
            "Indicates whether the EBS volume is deleted on instance termination. Default false. NOTE: "
            "If this value is not explicitly set to true and volumes are not cleaned up by an "
            "alternative method, additional volumes will accumulate after every build."
        ),
    )


def device_name_field() -> Any:
    """``device_name`` of a block device mapping (and of ``ami_root_device``)."""
    return Field(
        "",
        description=(
            "The device name exposed to the instance (for example, /dev/sdh or xvdh). Required for "
            "every device in the block device mapping."
        ),
    )


def iops_field(default: int | None) -> Any:
    """``iops`` of a block device mapping (unset: None) and of ``ami_root_device`` (unset: 0)."""
    return Field(
        default,
        description=(
            "The number of I/O operations per second (IOPS) that the volume supports. See the "
            "documentation on IOPs for more information"
        ),
    )


def volume_size_field() -> Any:
    """``volume_size`` of a block device mapping (and of ``ami_root_device``)."""
    return Field(
        0,
        description=("The size of the volume, in GiB. Required if not specifying a snapshot_id."),
    )


class BlockDevice(ConfigModel):
    """One block device mapping."""

    delete_on_termination: Bool = delete_on_termination_field()
    device_name: Str = device_name_field()
    encrypted: Trilean = Field(
        None,
        description=(
            "Indicates whether or not to encrypt the volume. By default, Packer will keep the "
            "encryption setting to what it was in the source image. Setting false will result in an "
            "unencrypted device, and true will result in an encrypted one."
        ),
    )
    iops: Int | None = iops_field(None)
    no_device: Bool = Field(
        False,
        description=("Suppresses the specified device included in the block device mapping of the AMI."),
    )
    snapshot_id: Str = Field("", description="The ID of the snapshot.")
    throughput: Int | None = Field(
        None,
        description=(
            "The throughput for gp3 volumes, only valid for gp3 types See the documentation on "
            "Throughput for more information"
        ),
    )
    virtual_name: Str = Field(
        "",
        description=(
            "The virtual device name. See the documentation on Block Device Mapping for more "
            "information. Note: virtual_name only applies for ephemeral (instance) volumes. Any "
            "EBS-backed volume will have a `snapshot_id` instead. The volume virtual_name should be in "
            "the `ephemeral[0-23]` form, e.g. ephemeral1"
        ),
    )
    volume_type: Str = Field(
        "",
        description=(
            "The volume type. gp2 & gp3 for General Purpose (SSD) volumes, io1 & io2 for Provisioned "
            "IOPS (SSD) volumes, st1 for Throughput Optimized HDD, sc1 for Cold HDD, and standard for "
            "Magnetic volumes."
        ),
    )
    volume_size: Int = volume_size_field()
    kms_key_id: Str = Field(
        "",
        description=(
            "ID, alias or ARN of the KMS key to use for boot volume encryption. This option exists for "
            "launch_block_device_mappings but not ami_block_device_mappings. The kms key id defined "
            "here only applies to the original build region; if the AMI gets copied to other regions, "
            "the volume in those regions will be encrypted by the default EBS KMS key. For valid "
            "formats see KmsKeyId in the AWS API docs - CopyImage This field is validated by Packer. "
            "When using an alias, you will have to prefix kms_key_id with alias/."
        ),
    )

    def to_api(self) -> dict[str, Any]:
        """The EC2 ``BlockDeviceMapping``, as Packer's ``BuildEC2BlockDeviceMappings`` builds it."""
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

    def check_device(self, ctx: CheckContext, key: str) -> Problem | None:
        """The first problem of this mapping (Packer reports one per device)."""
        p = ctx.problem
        if not self.device_name:
            return p("The `device_name` must be specified for every device in the block device mapping.", key)
        if self.kms_key_id and self.encrypted is False:
            return p(
                f"The device {self.device_name}, must also have `encrypted: true` when setting a kms_key_id.",
                key,
            )
        ratio = IOPS_RATIOS.get(self.volume_type)
        if ratio is not None and self.volume_size != 0 and self.iops is not None:
            if int(self.iops / self.volume_size) > ratio:
                return p(
                    f"{self.device_name}: the maximum ratio of provisioned IOPS to requested "
                    "volume size "
                    f"(in GiB) is {ratio}:1 for {self.volume_type} volumes",
                    key,
                )
            if not MIN_IOPS <= self.iops <= MAX_IOPS:
                return p(f"IOPS must be between {MIN_IOPS} and {MAX_IOPS} for device {self.device_name}", key)
        if self.volume_type == "gp3":
            if self.throughput is not None and not MIN_THROUGHPUT <= self.throughput <= MAX_THROUGHPUT:
                return p(
                    f"Throughput must be between {MIN_THROUGHPUT} and {MAX_THROUGHPUT} for device "
                    f"{self.device_name}",
                    key,
                )
            if self.iops is not None and not MIN_IOPS_GP3 <= self.iops <= MAX_IOPS_GP3:
                return p(
                    f"IOPS must be between {MIN_IOPS_GP3} and {MAX_IOPS_GP3} for device {self.device_name}",
                    key,
                )
        elif self.throughput is not None:
            return p(
                f'Throughput is only valid for gp3 volumes, "{self.device_name}" is of type '
                f"{self.volume_type}",
                key,
            )
        return None


#: ``ami_block_device_mappings``, ``launch_block_device_mappings``
BlockDevices = StructList[BlockDevice]


def ami_devices_field() -> Any:
    """``ami_block_device_mappings`` of amazon-ebs, -ebssurrogate and -instance."""
    return Field(
        default_factory=list,
        description=(
            "Add one or more block device mappings to the AMI. These will be attached when booting a "
            "new instance from your AMI. To add a block device during the Packer build see "
            "`launch_block_device_mappings` below. Your options here may vary depending on the type of "
            "VM you use. See the BlockDevices documentation for fields."
        ),
    )


def launch_devices_field() -> Any:
    """``launch_block_device_mappings`` of amazon-ebs, -ebssurrogate and -instance (a list of
    :class:`BlockDevice`, or of a subclass that adds options)."""
    return Field(
        default_factory=list,
        description=(
            "Add one or more block devices before the Packer build starts. If you add instance store "
            "volumes or EBS volumes in addition to the root device volume, the created AMI will contain "
            "block device mapping information for those volumes. Amazon creates snapshots of the source "
            "instance's root volume and any other EBS volumes described here. When you launch an "
            "instance from this new AMI, the instance automatically launches with these additional "
            "volumes, and will restore them from snapshots taken from the source instance. See the "
            "BlockDevices documentation for fields."
        ),
    )


def check_devices(devices: list[BlockDevice], ctx: CheckContext, key: str) -> list[Problem]:
    out = []
    for i, device in enumerate(devices):
        problem = device.check_device(ctx, f"{key}[{i}]")
        if problem is not None:
            out.append(problem)
    return out
