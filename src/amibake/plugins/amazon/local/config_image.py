"""amibake-local's image options: the root filesystem, the disk and the boot test.

The builder's config (``config.py``) composes these with the amazon access and AMI options.
"""

import os
import re
from typing import ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, PluginConfig
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Int, Str, StrList
from amibake.errors import Problem
from amibake.plugins.amazon.config_common import BOOT_MODES

#: the suites a test has built, booted and checked (Debian's current stable first)
PROVEN_SUITES = ("bookworm",)
#: mmdebstrap's variants
VARIANTS = ("extract", "custom", "essential", "apt", "required", "minbase", "buildd", "important",
            "debootstrap", "-", "standard")
#: the Debian architecture names amibake builds for, and the EC2 name of each
EC2_ARCHITECTURES = {"amd64": "x86_64", "arm64": "arm64"}
#: what an architecture other than the build host's needs: binfmt_misc emulation (qemu-user-static)
BINFMT_ENTRIES = {"arm64": "qemu-aarch64"}
#: a Debian package name (Policy 5.6.1), with an optional ``=version`` or ``/suite``
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+([=/][A-Za-z0-9.+~:-]+)?")
_COMPONENT = re.compile(r"[a-z0-9][a-z0-9-]*")

_SOURCE_KEYS = ("suite", "mirror", "variant", "components", "packages", "architecture")


class LocalImageOptions(PluginConfig):
    """The root filesystem (mmdebstrap or a tarball), the bootable disk and its boot test under QEMU."""

    not_image_shaping: ClassVar[frozenset[str]] = frozenset(
        {"bootstrap_cache", "bootstrap_cache_dir", "boot_test", "boot_test_timeout"})

    suite: Str = Field(
        "bookworm",
        description=(
            "The distribution suite mmdebstrap bootstraps (amibake: Debian `bookworm`, the suite a test "
            "has built and booted). Defaults to `bookworm`."
        ),
    )
    mirror: Str = Field(
        "http://deb.debian.org/debian",
        description=(
            "The Debian mirror (or a snapshot.debian.org URL, for a fixed package set) the root "
            "filesystem is bootstrapped from. Defaults to `http://deb.debian.org/debian`."
        ),
    )
    variant: Str = Field(
        "minbase",
        description=(
            "mmdebstrap's `--variant`: which packages make the base (`minbase`, `required`, "
            "`important`, `standard`...). Defaults to `minbase`."
        ),
    )
    components: StrList = Field(
        default_factory=lambda: ["main"],
        description="The archive components to use. Defaults to `[\"main\"]`.",
    )
    packages: StrList = Field(
        default_factory=list,
        description=(
            "Packages installed into the root filesystem besides the ones every bootable EC2 image "
            "gets (the kernel, systemd, systemd-boot, openssh-server, cloud-init...)."
        ),
    )
    architecture: Str = Field(
        "amd64",
        description=(
            "The Debian architecture of the image: `amd64` (registered as `x86_64`). Defaults to "
            "`amd64`."
        ),
    )
    rootfs_tarball: Str = Field(
        "",
        description=(
            "A tar archive of a root filesystem to start from instead of bootstrapping one (it must hold "
            "a kernel and initrd in /boot, systemd-boot's EFI binary, and cloud-init). The bootstrap "
            "options may not be set with it."
        ),
    )
    bootstrap_cache: Bool = Field(
        True,
        description=(
            "Keep the bootstrapped root filesystem as a tarball keyed by a hash of the bootstrap "
            "options, so that a second build with the same options skips the download. Defaults to "
            "true."
        ),
    )
    bootstrap_cache_dir: Str = Field(
        "",
        description="Where the bootstrap cache lives. Defaults to the builder's cache directory.",
    )
    boot_mode: Str = Field(
        "uefi",
        description=(
            "The boot mode of the disk and the AMI (RegisterImage's BootMode): `uefi` (systemd-boot on the "
            "ESP), `legacy-bios` (GRUB for a BIOS, from the build host's grub-pc-bin) or `uefi-preferred` "
            "(both). Defaults to `uefi`."
        ),
    )
    volume_size: Int = Field(
        0,
        description=(
            "The size of the disk (and the snapshot) in GiB. Defaults to the size of the root "
            "filesystem's files with headroom, rounded up to whole GiB."
        ),
    )
    kernel_command_line: StrList = Field(
        default_factory=list,
        description=(
            "Arguments added to the kernel command line after the ones for EC2 (serial console, NVMe "
            "timeout, interface names)."
        ),
    )
    boot_test: Bool = Field(
        True,
        description=(
            "Boot the disk under QEMU before it is uploaded, log in over SSH with a temporary key given "
            "through a NoCloud seed, run the checks and power off. Defaults to true."
        ),
    )
    boot_test_timeout: Duration = Field(
        600.0,
        description="How long the boot test may take, from start to power-off. Defaults to 10m.",
    )

    def local_inputs(self) -> list[tuple[str, str]]:
        return [("rootfs_tarball", self.rootfs_tarball)] if self.rootfs_tarball else []

    def check(self, ctx: CheckContext) -> list[Problem]:
        return image_problems(self, ctx)


def image_problems(o: LocalImageOptions, ctx: CheckContext,
                   binfmt_dir: str = "/proc/sys/fs/binfmt_misc") -> list[Problem]:
    """The image options' cross-field rules."""
    errs: list[Problem] = []
    if o.rootfs_tarball:
        defaults = LocalImageOptions.model_fields
        for key in _SOURCE_KEYS:
            if getattr(o, key) != defaults[key].get_default(call_default_factory=True):
                errs.append(ctx.problem(f"{key} cannot be used with rootfs_tarball: the root filesystem "
                                        "comes from the tarball", key))
        missing = ctx.stat_error(o.rootfs_tarball)
        if missing:
            errs.append(ctx.problem(missing, "rootfs_tarball"))
    if o.suite not in PROVEN_SUITES:
        errs.append(ctx.problem(f"suite {o.suite!r} is not supported by amibake yet: only "
                                + ", ".join(PROVEN_SUITES) + " has been built and booted by a test", "suite"))
    if not re.fullmatch(r"(https?|file)://\S+", o.mirror):
        errs.append(ctx.problem("mirror must be an http://, https:// or file:// URL", "mirror"))
    if o.variant not in VARIANTS:
        errs.append(ctx.problem(f"variant must be one of {', '.join(VARIANTS)}", "variant"))
    if not o.components or any(not _COMPONENT.fullmatch(c) for c in o.components):
        errs.append(ctx.problem("components must be archive component names such as main", "components"))
    bad = [p for p in o.packages if not _PACKAGE.fullmatch(p)]
    if bad:
        errs.append(ctx.problem("not a Debian package name: " + ", ".join(repr(p) for p in bad), "packages"))
    if o.architecture not in EC2_ARCHITECTURES:
        errs.append(ctx.problem(f"architecture must be one of {', '.join(EC2_ARCHITECTURES)}",
                                "architecture"))
    elif o.architecture != "amd64":
        entry = BINFMT_ENTRIES[o.architecture]
        if not os.path.exists(os.path.join(binfmt_dir, entry)):
            errs.append(ctx.problem(f"architecture {o.architecture} needs binfmt_misc emulation on this host "
                                    f"({entry}, from qemu-user-static), which is not registered",
                                    "architecture"))
        else:
            errs.append(ctx.problem(f"architecture {o.architecture} is not supported by amibake yet: its "
                                    "disk and boot test (qemu-system-aarch64, AAVMF) are not done",
                                    "architecture"))
    if o.boot_mode not in BOOT_MODES:
        errs.append(ctx.problem(f"invalid boot mode \"{o.boot_mode}\", valid values are either 'uefi', "
                                "'legacy-bios' or 'uefi-preferred'", "boot_mode"))
    if o.volume_size < 0:
        errs.append(ctx.problem("volume_size must be a positive number of GiB", "volume_size"))
    for arg in o.kernel_command_line:
        if not arg or any(ch.isspace() for ch in arg):
            errs.append(ctx.problem("each kernel_command_line entry is one argument, without spaces",
                                    "kernel_command_line"))
            break
    if o.boot_test_timeout <= 0:
        errs.append(ctx.problem("boot_test_timeout must be a positive duration", "boot_test_timeout"))
    return errs


def ec2_architecture(o: LocalImageOptions) -> str:
    """The image's architecture as EC2's RegisterImage names it."""
    return EC2_ARCHITECTURES[o.architecture]
