"""amazon-ebssurrogate configuration."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from amibake.builders.amazon.config_access import AccessConfig
from amibake.builders.amazon.config_ami import AMIConfig
from amibake.builders.amazon.config_blockdev import BlockDevice, check_devices
from amibake.builders.amazon.config_common import (
    builder_warnings,
    check_arch_boot,
    spot_modification,
)
from amibake.builders.amazon.config_run import RunConfig
from amibake.config.base import CheckContext, ConfigModel
from amibake.config.custom_types import NameValues, merged_tags
from amibake.config.weak import AsList, AsStruct, Bool, Int, Str, StrMap
from amibake.errors import Problem


class SurrogateBlockDevice(BlockDevice):
    """A launch block device of amazon-ebssurrogate."""

    omit_from_artifact: Bool = Field(
        False,
        description=(
            "If true, this block device will not be snapshotted and the created AMI will not contain "
            "block device mapping information for this volume. If false, the block device will be "
            "mapped into the final created AMI. Set this option to true if you need a block device "
            "mounted in the surrogate AMI but not in the final created AMI."
        ),
    )


class RootBlockDevice(ConfigModel):
    """``ami_root_device``: the root device of the AMI amazon-ebssurrogate registers."""

    source_device_name: Str = Field(
        "",
        description="The device name of the block device on the source instance to be used as the root "
        "device for the AMI.",
    )
    device_name: Str = Field(
        "",
        description=(
            "The device name exposed to the instance (for example, /dev/sdh or xvdh). Required for "
            "every device in the block device mapping."
        ),
    )
    delete_on_termination: Bool = Field(
        False,
        description=(
            "Indicates whether the EBS volume is deleted on instance termination. Default false. NOTE: "
            "If this value is not explicitly set to true and volumes are not cleaned up by an "
            "alternative method, additional volumes will accumulate after every build."
        ),
    )
    iops: Int = Field(
        0,
        description=(
            "The number of I/O operations per second (IOPS) that the volume supports. See the "
            "documentation on IOPs for more information"
        ),
    )
    volume_type: Str = Field(
        "",
        description=(
            "The volume type. gp2 for General Purpose (SSD) volumes, io1 for Provisioned IOPS (SSD) "
            "volumes, st1 for Throughput Optimized HDD, sc1 for Cold HDD, and standard for Magnetic "
            "volumes."
        ),
    )
    volume_size: Int = Field(
        0,
        description=("The size of the volume, in GiB. Required if not specifying a snapshot_id."),
    )

    def check_root(self, ctx: CheckContext) -> list[Problem]:
        key = "ami_root_device"
        errs = []
        if not self.source_device_name:
            errs.append(ctx.problem("source_device_name for the root_device must be specified", key))
        if not self.device_name:
            errs.append(ctx.problem("device_name for the root_device must be specified", key))
        if self.volume_type == "gp2" and self.iops != 0:
            errs.append(ctx.problem("iops may not be specified for a gp2 volume", key))
        if self.iops < 0:
            errs.append(ctx.problem("iops must be greater than 0", key))
        if self.volume_size < 0:
            errs.append(ctx.problem("volume_size must be greater than 0", key))
        return errs


class EbsSurrogateConfig(AccessConfig, AMIConfig, RunConfig):
    """amazon-ebssurrogate: build a volume on a surrogate instance and register it as an AMI."""

    snapshot_description: Str = Field("", description="The description for the snapshot.")
    ami_block_device_mappings: Annotated[list[Annotated[BlockDevice, AsStruct]], AsList] = Field(
        default_factory=list,
        description=(
            "Add one or more block device mappings to the AMI. These will be attached when booting a "
            "new instance from your AMI. To add a block device during the Packer build see "
            "`launch_block_device_mappings` below. Your options here may vary depending on the type of "
            "VM you use. See the BlockDevices documentation for fields."
        ),
    )
    skip_ami_run_tags: Bool = Field(
        False,
        description=(
            "If true will not propagate the run tags set on Packer created instance to the AMI created."
        ),
    )
    launch_block_device_mappings: Annotated[list[Annotated[SurrogateBlockDevice, AsStruct]], AsList] = Field(
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
    ami_root_device: Annotated[RootBlockDevice | None, AsStruct] = Field(
        None,
        description=(
            "A block device mapping describing the root device of the AMI. This looks like the mappings "
            "in `ami_block_device_mapping`, except with an additional field: - `source_device_name` "
            "(string) - The device name of the block device on the source instance to be used as the "
            "root device for the AMI. This must correspond to a block device in "
            "`launch_block_device_mapping`."
        ),
    )
    run_volume_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Tags to apply to the volumes that are *launched* to create the AMI. These tags are *not* "
            "applied to the resulting AMI unless they're duplicated in `tags`. This is a template "
            "engine, see Build template data for more information."
        ),
    )
    run_volume_tag: NameValues = Field(
        default_factory=list,
        description=(
            "Same as `run_volume_tags` but defined as a singular block containing a `name` and a "
            "`value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )
    ami_architecture: Str = Field(
        "x86_64",
        description=(
            'what architecture to use when registering the final AMI; valid options are "arm64", '
            '"arm64_mac", "i386", "x86_64", or "x86_64_mac". Defaults to "x86_64".'
        ),
    )
    boot_mode: Str = Field(
        "",
        description=(
            "The boot mode. Valid options are `legacy-bios` and `uefi`. See the documentation on boot "
            "modes for more information. Defaults to `legacy-bios` when `ami_architecture` is `x86_64` "
            "and `uefi` when `ami_architecture` is `arm64`."
        ),
    )
    uefi_data: Str = Field(
        "",
        description=(
            "Base64 representation of the non-volatile UEFI variable store. For more information see "
            "AWS documentation."
        ),
    )
    tpm_support: Str = Field(
        "",
        description=(
            "NitroTPM Support. Valid options are `v2.0`. See the documentation on NitroTPM Support for "
            "more information. Only enabled if a valid option is provided, otherwise ignored."
        ),
    )
    use_create_image: Bool = Field(
        False,
        description=(
            "Whether to use the CreateImage or RegisterImage API when creating the AMI. When set to "
            "`true`, the CreateImage API is used and will create the image from the instance itself, "
            "and inherit properties from the instance. When set to `false`, the RegisterImage API is "
            "used and the image is created using a snapshot of the specified EBS volume, and no "
            "properties are inherited from the instance. Defaults to `false`. Ref: "
            "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html "
            "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html"
        ),
    )

    @property
    def all_run_volume_tags(self) -> dict[str, str]:
        return merged_tags(self.run_volume_tags, self.run_volume_tag)

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        errs += self.check_run(ctx)
        errs += self.check_ami(ctx)
        errs += check_devices(self.ami_block_device_mappings, ctx, "ami_block_device_mappings")
        errs += check_devices(list(self.launch_block_device_mappings), ctx, "launch_block_device_mappings")
        root = self.ami_root_device or RootBlockDevice.model_validate({})
        errs += root.check_root(ctx)
        if not self.ami_virtualization_type:
            errs.append(ctx.problem("ami_virtualization_type is required.", "ami_virtualization_type"))
        found = False
        for i, device in enumerate(self.launch_block_device_mappings):
            if device.device_name == root.source_device_name:
                found = True
                if device.omit_from_artifact:
                    errs.append(
                        ctx.problem(
                            'You cannot set "omit_from_artifact": "true" for the root volume.',
                            f"launch_block_device_mappings[{i}].omit_from_artifact",
                        )
                    )
        if not found:
            errs.append(
                ctx.problem(f"no volume with name '{root.source_device_name}' is found", "ami_root_device")
            )
        errs += spot_modification(self, ctx, self.ena_support, self.sriov_support)
        errs += check_arch_boot(ctx, self.ami_architecture, self.boot_mode, self.uefi_data, self.tpm_support)
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        return builder_warnings(self)
