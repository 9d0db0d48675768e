"""Rules shared by several amazon builders."""

from __future__ import annotations

from typing import Annotated

from amibake.builders.amazon.config_access import AccessConfig
from amibake.builders.amazon.config_blockdev import BlockDevice
from amibake.builders.amazon.config_run import RunConfig
from amibake.config.base import CheckContext
from amibake.config.weak import AsList, AsStruct
from amibake.errors import Problem

ARCHITECTURES = ("arm64", "arm64_mac", "i386", "x86_64", "x86_64_mac")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
SPOT_NO_MODIFY = (
    "Spot instances do not support modification, which is required when either `ena_support` or "
    "`sriov_support` are set. Please ensure you use an AMI that already has either SR-IOV or ENA enabled."
)

BlockDevices = Annotated[list[Annotated[BlockDevice, AsStruct]], AsList]


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
