"""amazon-ebs configuration. The shared pieces (access, AMI, run/communicator, block devices) are
declared once in the ``config_*`` modules and composed here, as the amazon plugin composes its structs;
the other amazon builders have a module each (``config_surrogate``, ``config_ebsvolume``,
``config_chroot``, ``config_instance``) so ``validate`` only builds the models a template uses.
"""

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, ConfigModel
from amibake.config.custom_types import NameValues, merged_tags
from amibake.config.weak import AsStruct, Bool, Int, Str, StrMap, StructList, Trilean
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.plugins.amazon.config_ami import AMIConfig
from amibake.plugins.amazon.config_blockdev import (
    BlockDevices,
    ami_devices_field,
    check_devices,
    launch_devices_field,
)
from amibake.plugins.amazon.config_common import (
    builder_warnings,
    run_volume_tag_field,
    run_volume_tags_field,
    skip_ami_run_tags_field,
    spot_modification,
)
from amibake.plugins.amazon.config_refused import SHARED_UNSUPPORTED
from amibake.plugins.amazon.config_run import RunConfig


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
    region_launch_templates: StructList[FastLaunchTemplateConfig] = Field(
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
                FastLaunchTemplateConfig.model_validate(
                    {
                        "region": build_region,
                        "template_id": self.template_id,
                        "template_name": self.template_name,
                        "template_version": self.template_version,
                    }
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


class EbsConfig(AccessConfig, AMIConfig, RunConfig):
    """amazon-ebs: launch an instance from a source AMI, provision it, create an AMI from it."""

    #: tags on the temporary volumes, and Windows fast launch (a distribution setting)
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "skip_ami_run_tags", "run_volume_tags", "run_volume_tag", "fast_launch",
    })

    unsupported: ClassVar[Mapping[str, str]] = {
        **SHARED_UNSUPPORTED,
        "fast_launch": "Windows fast launch (EnableFastLaunch) is not implemented yet",
    }

    skip_create_ami: Bool = Field(
        False,
        description=(
            "If true, Packer will not create the AMI. Useful for setting to `true` during a build test "
            "stage. Default `false`."
        ),
    )
    skip_ami_run_tags: Bool = skip_ami_run_tags_field()
    ami_block_device_mappings: BlockDevices = ami_devices_field()
    launch_block_device_mappings: BlockDevices = launch_devices_field()
    run_volume_tags: StrMap = run_volume_tags_field()
    run_volume_tag: NameValues = run_volume_tag_field()
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
        default_factory=lambda: FastLaunchConfig.model_validate({}),
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
        errs += spot_modification(self, ctx, self.ena_support, self.sriov_support)
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        return builder_warnings(self)
