"""Typed configuration of the amazon builders: amazon-ebs, amazon-ebssurrogate, amazon-ebsvolume,
amazon-chroot and amazon-instance. Shared pieces (access, AMI, run/communicator, block devices) are
declared once in the ``config_*`` modules and composed here, as the amazon plugin composes its structs.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from amibake.builders.amazon.config_access import AccessConfig
from amibake.builders.amazon.config_ami import AMIConfig, valid_kms_key
from amibake.builders.amazon.config_blockdev import BlockDevice, check_devices
from amibake.builders.amazon.config_run import AmiFilterOptions, RunConfig
from amibake.config.base import CheckContext, ConfigModel
from amibake.config.custom_types import KeyValues, NameValues, merged_tags
from amibake.config.weak import AsList, AsStruct, Bool, Int, Str, StrList, StrListList, StrMap, Trilean
from amibake.errors import Problem

ARCHITECTURES = ("arm64", "arm64_mac", "i386", "x86_64", "x86_64_mac")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
SPOT_NO_MODIFY = (
    "Spot instances do not support modification, which is required when either `ena_support` or "
    "`sriov_support` are set. Please ensure you use an AMI that already has either SR-IOV or ENA enabled."
)

BlockDevices = Annotated[list[Annotated[BlockDevice, AsStruct]], AsList]


class FastLaunchTemplateConfig(ConfigModel):
    """A per-region launch template for fast launch."""

    enable_fast_launch: Trilean = Field(
        None,
        description=(
            "Enable fast launch allows you to disable fast launch settings on the region level. If "
            "unset, the default region behavior will be assumed - i.e. either use the globally "
            "specified template ID/name (if specified), or AWS will set it for you. Using other fast "
            "launch options, while unset, will imply enable_fast_launch to be true. If this is "
            "explicitly set to `false` fast-launch will be disabled for the specified region and all "
            "other options besides region will be ignored."
        ),
    )
    region: Str = Field("", description="The region in which to find the launch template to use")
    template_id: Str = Field(
        "",
        description=(
            "The ID of the launch template to use for the fast launch This cannot be specified in "
            "conjunction with the template name. If no template is specified, the default launch "
            "template will be used, as specified in the AWS docs."
        ),
    )
    template_name: Str = Field(
        "",
        description=(
            "The name of the launch template to use for fast launch This cannot be specified in "
            "conjunction with the template ID. If no template is specified, the default launch template "
            "will be used, as specified in the AWS docs."
        ),
    )
    template_version: Int = Field(
        0,
        description=(
            "The version of the launch template to use If unspecified, and a template is referenced, "
            "this will default to the latest version available for the template."
        ),
    )


class FastLaunchConfig(ConfigModel):
    """``fast_launch { ... }``: pre-provisioned snapshots for Windows AMIs."""

    enable_fast_launch: Bool = Field(False, description="Configure fast-launch for Windows AMIs")
    template_id: Str = Field(
        "",
        description=(
            "The ID of the launch template to use for fast launch for the main AMI. This cannot be "
            "specified in conjunction with the template name. If no template is specified, the default "
            "launch template will be used, as specified in the AWS docs. If you copy the AMI to other "
            "regions, this option should not be used, use instead the `fast_launch_template_config` "
            "option."
        ),
    )
    template_name: Str = Field(
        "",
        description=(
            "The name of the launch template to use for fast launch for the main AMI. This cannot be "
            "specified in conjunction with the template ID. If no template is specified, the default "
            "launch template will be used, as specified in the AWS docs. If you copy the AMI to other "
            "regions, this option should not be used, use instead the `fast_launch_template_config` "
            "option."
        ),
    )
    template_version: Int = Field(
        0,
        description=(
            "The version of the launch template to use for fast launch for the main AMI. If "
            "unspecified, and a template is referenced, this will default to the latest version "
            "available for the template. If you copy the AMI to other regions, this option should not "
            "be used, use instead the `fast_launch_template_config` option."
        ),
    )
    region_launch_templates: Annotated[list[Annotated[FastLaunchTemplateConfig, AsStruct]], AsList] = Field(
        default_factory=list,
        description=(
            "RegionLaunchTemplates is the list of launch templates per region. This should be specified "
            "if you want to use a custom launch template for your fast-launched images, and you are "
            "copying the image to other regions. All regions don't need a launch template "
            "configuration, but for each that don't have a launch template specified, AWS will pick a "
            "default one for that purpose."
        ),
    )
    max_parallel_launches: Int = Field(
        0,
        description=(
            "Maximum number of instances to launch for creating pre-provisioned snapshots If specified, "
            "must be a minimum of `6`"
        ),
    )
    target_resource_count: Int = Field(
        0,
        description=(
            "The number of snapshots to pre-provision for later launching windows instances from the "
            "resulting fast-launch AMI. If unspecified, this will create the default number of "
            "snapshots (as of march 2023, this defaults to 5 on AWS)"
        ),
    )

    def check_fast_launch(
        self, ctx: CheckContext, build_region: str, ami_regions: list[str]
    ) -> list[Problem]:
        key = "fast_launch"
        errs: list[Problem] = []
        if self.max_parallel_launches != 0 and self.max_parallel_launches < 6:
            errs.append(
                ctx.problem(
                    f"max_parallel_launches must be >= 6, provided value is {self.max_parallel_launches}",
                    f"{key}.max_parallel_launches",
                )
            )
        if self.target_resource_count != 0 and self.target_resource_count < 1:
            errs.append(
                ctx.problem(
                    f"target_resource_count must be >= 1, provided value is {self.target_resource_count}",
                    f"{key}.target_resource_count",
                )
            )
        templates = list(self.region_launch_templates)
        if self.template_id or self.template_name or self.template_version:
            templates.append(
                FastLaunchTemplateConfig(
                    region=build_region,
                    template_id=self.template_id,
                    template_name=self.template_name,
                    template_version=self.template_version,
                )
            )
        seen: set[str] = set()
        for i, t in enumerate(templates):
            tkey = f"{key}.region_launch_templates[{i}]"
            if not t.region:
                errs.append(ctx.problem("region cannot be empty for a regional fast template config", tkey))
                continue
            if t.template_id and t.template_name:
                errs.append(
                    ctx.problem(
                        f'fast_launch_template_config region "{t.region}": both template ID and '
                        "name cannot be specified at the same time",
                        tkey,
                    )
                )
            if t.template_version != 0 and t.template_version < 1:
                errs.append(
                    ctx.problem(
                        f'fast_launch_template_config region "{t.region}": the launch template '
                        f"version must be >= 1, provided value is {t.template_version}",
                        tkey,
                    )
                )
            if t.template_version != 0 and not t.template_id and not t.template_name:
                errs.append(
                    ctx.problem(
                        f'fast_launch_template_config region "{t.region}": launch template '
                        "version specified without an ID or name",
                        tkey,
                    )
                )
            if t.region in seen:
                errs.append(
                    ctx.problem(
                        f'fast launch: launch template specified twice for region "{t.region}", '
                        "only once is supported",
                        tkey,
                    )
                )
            seen.add(t.region)
            if t.region != build_region and t.region not in ami_regions:
                errs.append(
                    ctx.problem(
                        f'Launch template specified for enabling fast-launch on region "{t.region}", '
                        "but the AMI won't be copied there.",
                        tkey,
                    )
                )
        return errs


class _AmazonBuilderConfig(AccessConfig, AMIConfig, RunConfig):
    """The parts every instance-launching amazon builder shares."""

    def _spot_modification(self, ctx: CheckContext) -> list[Problem]:
        if self.is_spot_instance() and (self.ena_support is True or self.sriov_support):
            return [ctx.problem(SPOT_NO_MODIFY, "spot_price")]
        return []

    def warnings(self, ctx: CheckContext) -> list[str]:
        return self.access_warnings() + self.run_warnings()


class EbsConfig(_AmazonBuilderConfig):
    """amazon-ebs: launch an instance from a source AMI, provision it, create an AMI from it."""

    skip_create_ami: Bool = Field(
        False,
        description=(
            "If true, Packer will not create the AMI. Useful for setting to `true` during a build test "
            "stage. Default `false`."
        ),
    )
    skip_ami_run_tags: Bool = Field(
        False,
        description=(
            "If true will not propagate the run tags set on Packer created instance to the AMI created."
        ),
    )
    ami_block_device_mappings: Annotated[list[Annotated[BlockDevice, AsStruct]], AsList] = Field(
        default_factory=list,
        description=(
            "Add one or more block device mappings to the AMI. These will be attached when booting a "
            "new instance from your AMI. To add a block device during the Packer build see "
            "`launch_block_device_mappings` below. Your options here may vary depending on the type of "
            "VM you use. See the BlockDevices documentation for fields."
        ),
    )
    launch_block_device_mappings: Annotated[list[Annotated[BlockDevice, AsStruct]], AsList] = Field(
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
    no_ephemeral: Bool = Field(
        False,
        description=(
            "Relevant only to Windows guests: If you set this flag, we'll add clauses to the "
            "launch_block_device_mappings that make sure ephemeral drives don't show up in the EC2 "
            "console. If you launched from the EC2 console, you'd get this automatically, but the SDK "
            "does not provide this service. For more information, see "
            "https://docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/InstanceStorage.html. Because we "
            "don't validate the OS type of your guest, it is up to you to make sure you don't set this "
            "for *nix guests; behavior may be unpredictable."
        ),
    )
    fast_launch: Annotated[FastLaunchConfig, AsStruct] = Field(
        default_factory=FastLaunchConfig,
        description=(
            "The configuration for fast launch support. Fast launch is only relevant for Windows AMIs, "
            "and should not be used for other OSes. See the Fast Launch Configuration section for "
            "information on the attributes supported for this block."
        ),
    )

    @property
    def all_run_volume_tags(self) -> dict[str, str]:
        return merged_tags(self.run_volume_tags, self.run_volume_tag)

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        errs += self.check_ami(ctx)
        errs += check_devices(self.ami_block_device_mappings, ctx, "ami_block_device_mappings")
        errs += check_devices(self.launch_block_device_mappings, ctx, "launch_block_device_mappings")
        errs += self.check_run(ctx)
        errs += self.fast_launch.check_fast_launch(ctx, self.region, self.ami_regions)
        errs += self._spot_modification(ctx)
        return errs


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


def _check_arch_boot(ctx: CheckContext, arch: str, boot_mode: str, uefi_data: str, tpm: str) -> list[Problem]:
    errs = []
    if arch not in ARCHITECTURES:
        errs.append(
            ctx.problem(
                'The only valid ami_architecture values are "arm64", "arm64_mac", "i386", '
                '"x86_64", or "x86_64_mac"',
                "ami_architecture",
            )
        )
    if tpm and tpm != "v2.0":
        errs.append(ctx.problem('The only valid tpm_support value is "v2.0"', "tpm_support"))
    if boot_mode and boot_mode not in BOOT_MODES:
        errs.append(
            ctx.problem(
                f"invalid boot mode \"{boot_mode}\", valid values are either 'uefi', "
                "'legacy-bios' or 'uefi-preferred'",
                "boot_mode",
            )
        )
    if uefi_data:
        if boot_mode == "legacy-bios":
            errs.append(
                ctx.problem('You can\'t use uefi_data with boot_mode set to "legacy-bios".', "uefi_data")
            )
        elif not boot_mode and arch != "arm64":
            errs.append(
                ctx.problem(
                    'You need boot_mode set to "uefi" to use uefi_data, '
                    f'"{arch}" architecture defaults to "legacy-bios".',
                    "uefi_data",
                )
            )
    return errs


class EbsSurrogateConfig(_AmazonBuilderConfig):
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
        root = self.ami_root_device or RootBlockDevice()
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
        errs += self._spot_modification(ctx)
        errs += _check_arch_boot(ctx, self.ami_architecture, self.boot_mode, self.uefi_data, self.tpm_support)
        return errs


class VolumeBlockDevice(BlockDevice):
    """One of ``ebs_volumes`` of amazon-ebsvolume."""

    tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to the volume. These are retained after the builder "
            "completes. This is a template engine, see Build template data for more information."
        ),
    )
    tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `tags` but defined as a singular repeatable block containing a `key` and a `value` "
            "field. In HCL2 mode the `dynamic_block` will allow you to create those programatically."
        ),
    )
    snapshot_volume: Bool = Field(False, description="Create a Snapshot of this Volume.")
    snapshot_description: Str = Field("", description="The description for the snapshot.")

    @property
    def all_tags(self) -> dict[str, str]:
        return merged_tags(self.tags, self.tag)


class EbsVolumeConfig(AccessConfig, RunConfig):
    """amazon-ebsvolume: launch an instance, provision its EBS volumes, keep the volumes."""

    ena_support: Trilean = Field(
        None,
        description=(
            "Enable enhanced networking (ENA but not SriovNetSupport) on HVM-compatible AMIs. If set, "
            "add `ec2:ModifyInstanceAttribute` to your AWS IAM policy. Note: you must make sure "
            "enhanced networking is enabled on your instance. See Amazon's documentation on enabling "
            "enhanced networking."
        ),
    )
    sriov_support: Bool = Field(
        False,
        description=(
            "Enable enhanced networking (SriovNetSupport but not ENA) on HVM-compatible AMIs. If true, "
            "add `ec2:ModifyInstanceAttribute` to your AWS IAM policy. Note: you must make sure "
            "enhanced networking is enabled on your instance. See Amazon's documentation on enabling "
            "enhanced networking. Default `false`."
        ),
    )
    ebs_volumes: Annotated[list[Annotated[VolumeBlockDevice, AsStruct]], AsList] = Field(
        default_factory=list,
        description=(
            "Add the block device mappings to the AMI. If you add instance store volumes or EBS volumes "
            "in addition to the root device volume, the created AMI will contain block device mapping "
            "information for those volumes. Amazon creates snapshots of the source instance's root "
            "volume and any other EBS volumes described here. When you launch an instance from this new "
            "AMI, the instance automatically launches with these additional volumes, and will restore "
            "them from snapshots taken from the source instance. See the BlockDevices documentation for "
            "fields."
        ),
    )
    run_volume_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to the volumes of the instance that is *launched* to create "
            "EBS Volumes. These tags will *not* appear in the tags of the resulting EBS volumes unless "
            "they're duplicated under `tags` in the `ebs_volumes` setting. This is a template engine, "
            "see Build template data for more information."
        ),
    )
    run_volume_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `run_volume_tags` but defined as a singular repeatable block containing a `key` "
            "and a `value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        errs += self.check_run(ctx)
        errs += check_devices(list(self.ebs_volumes), ctx, "ebs_volumes")
        if self.is_spot_instance() and (self.ena_support is True or self.sriov_support):
            errs.append(ctx.problem(SPOT_NO_MODIFY, "spot_price"))
        for i, volume in enumerate(self.ebs_volumes):
            if volume.snapshot_description and not volume.snapshot_volume:
                errs.append(
                    ctx.problem(
                        "All `ebs_volumes` blocks setting `snapshot_description` must also set "
                        "`snapshot_volume`.",
                        f"ebs_volumes[{i}]",
                    )
                )
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        return self.access_warnings() + self.run_warnings()


class ChrootConfig(AccessConfig, AMIConfig):
    """amazon-chroot: build an AMI from a volume attached to the instance Packer runs on."""

    ami_block_device_mappings: Annotated[list[Annotated[BlockDevice, AsStruct]], AsList] = Field(
        default_factory=list,
        description=(
            "Add one or more block device mappings to the AMI. If this field is populated, and you are "
            "building from an existing source image, the block device mappings in the source image will "
            "be overwritten. This means you must have a block device mapping entry for your root "
            "volume, `root_volume_size` and `root_device_name`. See the BlockDevices documentation for "
            "fields."
        ),
    )
    chroot_mounts: StrListList = Field(
        default_factory=list,
        description=(
            "This is a list of devices to mount into the chroot environment. This configuration "
            "parameter requires some additional documentation which is in the Chroot Mounts section. "
            "Please read that section for more information on how to use this."
        ),
    )
    command_wrapper: Str = Field(
        "{{.Command}}",
        description=(
            "How to run shell commands. This defaults to `{{.Command}}`. This may be useful to set if "
            "you want to set environmental variables or perhaps run it with sudo or so on. This is a "
            "configuration template where the .Command variable is replaced with the command to be run. "
            "Defaults to `{{.Command}}`."
        ),
    )
    copy_files: StrList = Field(
        default_factory=list,
        description=(
            "Paths to files on the running EC2 instance that will be copied into the chroot environment "
            "prior to provisioning. Defaults to /etc/resolv.conf so that DNS lookups work. Pass an "
            "empty list to skip copying /etc/resolv.conf. You may need to do this if you're building an "
            "image that uses systemd."
        ),
    )
    device_path: Str = Field(
        "",
        description=(
            "The path to the device where the root volume of the source AMI will be attached. This "
            'defaults to "" (empty string), which forces Packer to find an open device automatically.'
        ),
    )
    nvme_device_path: Str = Field(
        "",
        description=(
            "When we call the mount command (by default mount -o device dir), the string provided in "
            "nvme_mount_path will replace device in that command. When this option is not set, device "
            "in that command will be something like /dev/sdf1, mirroring the attached device name. This "
            "assumption works for most instances but will fail with c5 and m5 instances. In order to "
            "use the chroot builder with c5 and m5 instances, you must manually set nvme_device_path "
            "and device_path."
        ),
    )
    from_scratch: Bool = Field(
        False,
        description=(
            "Build a new volume instead of starting from an existing AMI root volume snapshot. Default "
            "false. If true, source_ami/source_ami_filter are no longer used and the following options "
            "become required: ami_virtualization_type, pre_mount_commands and root_volume_size."
        ),
    )
    mount_options: StrList = Field(
        default_factory=list,
        description=(
            "Options to supply the mount command when mounting devices. Each option will be prefixed "
            "with -o and supplied to the mount command ran by Packer. Because this command is ran in a "
            "shell, user discretion is advised. See this manual page for the mount command for valid "
            "file system specific options."
        ),
    )
    mount_partition: Str = Field(
        "1",
        description=(
            "The partition number containing the / partition. By default this is the first partition of "
            "the volume, (for example, xvda1) but you can designate the entire block device by setting "
            '"mount_partition": "0" in your config, which will mount xvda instead.'
        ),
    )
    mount_path: Str = Field(
        "/mnt/packer-amazon-chroot-volumes/{{.Device}}",
        description=(
            "The path where the volume will be mounted. This is where the chroot environment will be. "
            "This defaults to `/mnt/packer-amazon-chroot-volumes/{{.Device}}`. This is a configuration "
            "template where the .Device variable is replaced with the name of the device where the "
            "volume is attached."
        ),
    )
    post_mount_commands: StrList = Field(
        default_factory=list,
        description=(
            "As pre_mount_commands, but the commands are executed after mounting the root device and "
            "before the extra mount and copy steps. The device and mount path are provided by "
            "`{{.Device}}` and `{{.MountPath}}`."
        ),
    )
    pre_mount_commands: StrList = Field(
        default_factory=list,
        description=(
            "A series of commands to execute after attaching the root volume and before mounting the "
            "chroot. This is not required unless using from_scratch. If so, this should include any "
            "partitioning and filesystem creation commands. The path to the device is provided by "
            "`{{.Device}}`."
        ),
    )
    root_device_name: Str = Field("", description="The root device name. For example, xvda.")
    root_volume_size: Int = Field(
        0,
        description=(
            "The size of the root volume in GB for the chroot environment and the resulting AMI. "
            "Default size is the snapshot size of the source_ami unless from_scratch is true, in which "
            "case this field must be defined."
        ),
    )
    root_volume_type: Str = Field(
        "",
        description=(
            "The type of EBS volume for the chroot environment and resulting AMI. The default value is "
            "the type of the source_ami, unless from_scratch is true, in which case the default value "
            "is gp2. You can only specify io1 if building based on top of a source_ami which is also "
            "io1."
        ),
    )
    source_ami: Str = Field(
        "",
        description=(
            "The source AMI whose root volume will be copied and provisioned on the currently running "
            "instance. This must be an EBS-backed AMI with a root volume snapshot that you have access "
            "to. Note: this is not used when from_scratch is set to true."
        ),
    )
    source_ami_filter: Annotated[AmiFilterOptions, AsStruct] = Field(
        default_factory=AmiFilterOptions,
        description=("Filters used to populate the source_ami field. Example:"),
    )
    root_volume_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to the volumes that are *launched*. This is a template "
            "engine, see Build template data for more information."
        ),
    )
    root_volume_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `root_volume_tags` but defined as a singular block containing a `key` and a "
            "`value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )
    root_volume_encrypt_boot: Trilean = Field(
        None,
        description=(
            "Whether or not to encrypt the volumes that are *launched*. By default, Packer will keep "
            "the encryption setting to what it was in the source image when set to `false`. Setting "
            "true will always result in an encrypted one."
        ),
    )
    root_volume_kms_key_id: Str = Field(
        "",
        description=(
            "ID, alias or ARN of the KMS key to use for *launched* volumes encryption. Set this value "
            "if you select `root_volume_encrypt_boot`, but don't want to use the region's default KMS "
            "key. If you have a custom kms key you'd like to apply to the launch volume, and are only "
            "building in one region, it is more efficient to set this and `root_volume_encrypt_boot` to "
            "`true` and not use `encrypt_boot` and `kms_key_id`. This saves potentially many minutes at "
            "the end of the build by preventing Packer from having to copy and re-encrypt the image at "
            "the end of the build."
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

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = self.check_access(ctx)
        errs += self.check_ami(ctx)
        errs += check_devices(self.ami_block_device_mappings, ctx, "ami_block_device_mappings")
        for i, mount in enumerate(self.chroot_mounts):
            if len(mount) != 3:
                errs.append(p("Each chroot_mounts entry should be three elements.", f"chroot_mounts[{i}]"))
        if self.from_scratch:
            for ok, message, key in (
                (
                    self.root_volume_size != 0,
                    "root_volume_size is required with from_scratch.",
                    "root_volume_size",
                ),
                (
                    bool(self.pre_mount_commands),
                    "pre_mount_commands is required with from_scratch.",
                    "pre_mount_commands",
                ),
                (
                    bool(self.ami_virtualization_type),
                    "ami_virtualization_type is required with from_scratch.",
                    "ami_virtualization_type",
                ),
                (
                    bool(self.root_device_name),
                    "root_device_name is required with from_scratch.",
                    "root_device_name",
                ),
                (
                    bool(self.ami_block_device_mappings),
                    "ami_block_device_mappings is required with from_scratch.",
                    "ami_block_device_mappings",
                ),
            ):
                if not ok:
                    errs.append(p(message, key))
        else:
            if not self.source_ami and self.source_ami_filter.empty():
                errs.append(p("source_ami or source_ami_filter is required.", "source_ami"))
            if self.ami_block_device_mappings and self.root_device_name:
                if self.root_volume_size == 0:
                    errs.append(
                        p(
                            "root_volume_size is required if ami_block_device_mappings is specified",
                            "root_volume_size",
                        )
                    )
            elif self.ami_block_device_mappings:
                errs.append(
                    p(
                        "If ami_block_device_mappings is specified, root_device_name must be specified",
                        "root_device_name",
                    )
                )
            elif self.root_device_name:
                errs.append(
                    p(
                        "If root_device_name is specified, ami_block_device_mappings must be specified",
                        "ami_block_device_mappings",
                    )
                )
        if self.root_volume_kms_key_id:
            if self.root_volume_encrypt_boot is False:
                errs.append(
                    p(
                        "If you have set root_volume_kms_key_id, root_volume_encrypt_boot must also be true.",
                        "root_volume_encrypt_boot",
                    )
                )
            elif self.root_volume_encrypt_boot is True and not valid_kms_key(self.root_volume_kms_key_id):
                errs.append(
                    p(f'"{self.root_volume_kms_key_id}" is not a valid KMS Key Id.', "root_volume_kms_key_id")
                )
        errs += _check_arch_boot(ctx, self.ami_architecture, self.boot_mode, self.uefi_data, self.tpm_support)
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        out = self.access_warnings()
        if self.from_scratch and (self.source_ami or not self.source_ami_filter.empty()):
            out.append("source_ami and source_ami_filter are unused when from_scratch is true")
        if not self.from_scratch and self.ami_block_device_mappings and self.root_device_name:
            out.append("ami_block_device_mappings from source image will be completely overwritten")
        return out


class InstanceConfig(_AmazonBuilderConfig):
    """amazon-instance: an instance-store AMI, bundled and uploaded to S3."""

    ami_block_device_mappings: Annotated[list[Annotated[BlockDevice, AsStruct]], AsList] = Field(
        default_factory=list,
        description=(
            "Add one or more block device mappings to the AMI. These will be attached when booting a "
            "new instance from your AMI. To add a block device during the Packer build see "
            "`launch_block_device_mappings` below. Your options here may vary depending on the type of "
            "VM you use. See the BlockDevices documentation for fields."
        ),
    )
    launch_block_device_mappings: Annotated[list[Annotated[BlockDevice, AsStruct]], AsList] = Field(
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
    account_id: Str = Field(
        "",
        description=(
            "Your AWS account ID. This is required for bundling the AMI. This is not the same as the "
            "access key. You can find your account ID in the security credentials page of your AWS "
            "account."
        ),
    )
    bundle_destination: Str = Field(
        "/tmp",
        description=(
            "The directory on the running instance where the bundled AMI will be saved prior to "
            "uploading. By default this is /tmp. This directory must exist and be writable."
        ),
    )
    bundle_prefix: Str = Field(
        "image-{{timestamp}}",
        description=(
            "The prefix for files created from bundling the root volume. By default this is "
            "`image-{{timestamp}}`. The timestamp variable should be used to make sure this is unique, "
            "otherwise it can collide with other created AMIs by Packer in your account."
        ),
    )
    bundle_upload_command: Str = Field(
        "",
        description=(
            'The command to use to upload the bundled volume. See the "custom bundle commands" '
            "section below for more information."
        ),
    )
    bundle_vol_command: Str = Field(
        "",
        description=(
            'The command to use to bundle the volume. See the "custom bundle commands" section below '
            "for more information."
        ),
    )
    s3_bucket: Str = Field(
        "",
        description=(
            "The name of the S3 bucket to upload the AMI. This bucket will be created if it doesn't exist."
        ),
    )
    x509_cert_path: Str = Field(
        "",
        description=(
            "The local path to a valid X509 certificate for your AWS account. This is used for bundling "
            "the AMI. This X509 certificate must be registered with your account from the security "
            "credentials page in the AWS console."
        ),
    )
    x509_key_path: Str = Field(
        "",
        description=(
            "The local path to the private key for the X509 certificate specified by x509_cert_path. "
            "This is used for bundling the AMI."
        ),
    )
    x509_upload_path: Str = Field(
        "/tmp",
        description=(
            "The path on the remote machine where the X509 certificate will be uploaded. This path must "
            "already exist and be writable. X509 certificates are uploaded after provisioning is run, "
            "so it is perfectly okay to create this directory as part of the provisioning process. "
            "Defaults to /tmp."
        ),
    )
    tpm_support: Str = Field(
        "",
        description=(
            "NitroTPM Support. Valid options are `v2.0`. See the documentation on NitroTPM Support for "
            "more information. Only enabled if a valid option is provided, otherwise ignored."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = self.check_access(ctx)
        errs += self.check_ami(ctx)
        errs += check_devices(self.ami_block_device_mappings, ctx, "ami_block_device_mappings")
        errs += check_devices(self.launch_block_device_mappings, ctx, "launch_block_device_mappings")
        errs += self.check_run(ctx)
        if not self.account_id:
            errs.append(p("account_id is required", "account_id"))
        if not self.s3_bucket:
            errs.append(p("s3_bucket is required", "s3_bucket"))
        for key, path in (("x509_cert_path", self.x509_cert_path), ("x509_key_path", self.x509_key_path)):
            if not path:
                errs.append(p(f"{key} is required", key))
            else:
                missing = ctx.stat_error(path)
                if missing:
                    errs.append(p(f"{key} points to bad file: {missing}", key))
        if self.is_spot_instance() and (
            self.ena_support is True or self.sriov_support or self.enable_nitro_enclave
        ):
            errs.append(p(SPOT_NO_MODIFY, "spot_price"))
        if self.tpm_support and self.tpm_support != "v2.0":
            errs.append(p('The only valid tpm_support value is "v2.0"', "tpm_support"))
        return errs
