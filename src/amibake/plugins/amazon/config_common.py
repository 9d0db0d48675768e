"""Options and rules shared by several amazon builders.

An option that several builders (or an AMI and a volume) accept with the same meaning is declared
once here, as a function returning its ``Field`` (default and description); each config class names
it with its type, e.g. ``tpm_support: Str = tpm_support_field()``. Functions rather than shared
mixin classes keep every config's options in Packer's order (pydantic orders inherited fields first).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.plugins.amazon.config_run import RunConfig

ARCHITECTURES = ("arm64", "arm64_mac", "i386", "x86_64", "x86_64_mac")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
SPOT_NO_MODIFY = (
    "Spot instances do not support modification, which is required when either `ena_support` or "
    "`sriov_support` are set. Please ensure you use an AMI that already has either SR-IOV or ENA enabled."
)


def ena_support_field() -> Any:
    """``ena_support`` of the AMI builders and amazon-ebsvolume."""
    return Field(
        None,
        description=(
            "Enable enhanced networking (ENA but not SriovNetSupport) on HVM-compatible AMIs. If set, "
            "add `ec2:ModifyInstanceAttribute` to your AWS IAM policy. Note: you must make sure "
            "enhanced networking is enabled on your instance. See Amazon's documentation on enabling "
            "enhanced networking."
        ),
    )


def sriov_support_field() -> Any:
    """``sriov_support`` of the AMI builders and amazon-ebsvolume."""
    return Field(
        False,
        description=(
            "Enable enhanced networking (SriovNetSupport but not ENA) on HVM-compatible AMIs. If true, "
            "add `ec2:ModifyInstanceAttribute` to your AWS IAM policy. Note: you must make sure "
            "enhanced networking is enabled on your instance. See Amazon's documentation on enabling "
            "enhanced networking. Default `false`."
        ),
    )


def skip_ami_run_tags_field() -> Any:
    """``skip_ami_run_tags`` of amazon-ebs and amazon-ebssurrogate."""
    return Field(
        False,
        description=(
            "If true will not propagate the run tags set on Packer created instance to the AMI created."
        ),
    )


def run_volume_tags_field() -> Any:
    """``run_volume_tags`` of amazon-ebs and amazon-ebssurrogate (amazon-ebsvolume's differs)."""
    return Field(
        default_factory=dict,
        description=(
            "Tags to apply to the volumes that are *launched* to create the AMI. These tags are *not* "
            "applied to the resulting AMI unless they're duplicated in `tags`. This is a template "
            "engine, see Build template data for more information."
        ),
    )


def run_volume_tag_field() -> Any:
    """``run_volume_tag`` (name/value blocks) of amazon-ebs and amazon-ebssurrogate."""
    return Field(
        default_factory=list,
        description=(
            "Same as `run_volume_tags` but defined as a singular block containing a `name` and a "
            "`value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )


def snapshot_description_field() -> Any:
    """``snapshot_description`` of amazon-ebssurrogate and of amazon-ebsvolume's volumes."""
    return Field("", description="The description for the snapshot.")


def ami_architecture_field() -> Any:
    """``ami_architecture`` of the builders that register an AMI from a volume (checked by
    :func:`check_arch_boot`)."""
    return Field(
        "x86_64",
        description=(
            'what architecture to use when registering the final AMI; valid options are "arm64", '
            '"arm64_mac", "i386", "x86_64", or "x86_64_mac". Defaults to "x86_64".'
        ),
    )


def boot_mode_field() -> Any:
    """``boot_mode`` of the builders that register an AMI from a volume."""
    return Field(
        "",
        description=(
            "The boot mode. Valid options are `legacy-bios` and `uefi`. See the documentation on boot "
            "modes for more information. Defaults to `legacy-bios` when `ami_architecture` is `x86_64` "
            "and `uefi` when `ami_architecture` is `arm64`."
        ),
    )


def uefi_data_field() -> Any:
    """``uefi_data`` of the builders that register an AMI from a volume."""
    return Field(
        "",
        description=(
            "Base64 representation of the non-volatile UEFI variable store. For more information see "
            "AWS documentation."
        ),
    )


def tpm_support_field() -> Any:
    """``tpm_support`` of amazon-chroot, amazon-ebssurrogate and amazon-instance."""
    return Field(
        "",
        description=(
            "NitroTPM Support. Valid options are `v2.0`. See the documentation on NitroTPM Support for "
            "more information. Only enabled if a valid option is provided, otherwise ignored."
        ),
    )


def spot_modification(config: RunConfig, ctx: CheckContext, ena: bool | None, sriov: bool) -> list[Problem]:
    """Spot instances cannot be modified to enable ENA or SR-IOV."""
    if config.is_spot_instance() and (ena is True or sriov):
        return [ctx.problem(SPOT_NO_MODIFY, "spot_price")]
    return []


def builder_warnings(config: AccessConfig | RunConfig) -> list[str]:
    out = config.access_warnings() if isinstance(config, AccessConfig) else []
    return out + (config.run_warnings() if isinstance(config, RunConfig) else [])


def check_arch_boot(ctx: CheckContext, arch: str, boot_mode: str, uefi_data: str, tpm: str) -> list[Problem]:
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
