"""amazon-ebssurrogate configuration."""

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, ConfigModel
from amibake.config.custom_types import NameValues, merged_tags
from amibake.config.weak import AsStruct, Bool, Int, Str, StrMap, StructList
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.plugins.amazon.config_ami import AMIConfig
from amibake.plugins.amazon.config_blockdev import (
    BlockDevice,
    BlockDevices,
    ami_devices_field,
    check_devices,
    delete_on_termination_field,
    device_name_field,
    iops_field,
    launch_devices_field,
    volume_size_field,
)
from amibake.plugins.amazon.config_common import (
    ami_architecture_field,
    boot_mode_field,
    builder_warnings,
    check_arch_boot,
    run_volume_tag_field,
    run_volume_tags_field,
    skip_ami_run_tags_field,
    snapshot_description_field,
    spot_modification,
    tpm_support_field,
    uefi_data_field,
)
from amibake.plugins.amazon.config_refused import SHARED_UNSUPPORTED
from amibake.plugins.amazon.config_run import RunConfig


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
    device_name: Str = device_name_field()
    delete_on_termination: Bool = delete_on_termination_field()
    iops: Int = iops_field(0)
    volume_type: Str = Field(
        "",
        description=(
            "The volume type. gp2 for General Purpose (SSD) volumes, io1 for Provisioned IOPS (SSD) "
            "volumes, st1 for Throughput Optimized HDD, sc1 for Cold HDD, and standard for Magnetic "
            "volumes."
        ),
    )
    volume_size: Int = volume_size_field()

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

    #: what amazon-ebs refuses of the options this builder shares with it, for the same reasons
    unsupported: ClassVar[Mapping[str, str]] = SHARED_UNSUPPORTED

    snapshot_description: Str = snapshot_description_field()
    ami_block_device_mappings: BlockDevices = ami_devices_field()
    skip_ami_run_tags: Bool = skip_ami_run_tags_field()
    launch_block_device_mappings: StructList[SurrogateBlockDevice] = launch_devices_field()
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
    run_volume_tags: StrMap = run_volume_tags_field()
    run_volume_tag: NameValues = run_volume_tag_field()
    ami_architecture: Str = ami_architecture_field()
    boot_mode: Str = boot_mode_field()
    uefi_data: Str = uefi_data_field()
    tpm_support: Str = tpm_support_field()
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
