"""Typed configuration of the post-processors: manifest, checksum, compress, shell-local and
amazon-import. ``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from pydantic import Field

from amibake.builders.amazon.config_access import AccessConfig
from amibake.config.base import CheckContext, PluginConfig
from amibake.config.weak import Bool, Int, Str, StrList, StrMap
from amibake.errors import Problem
from amibake.provisioners.shell_local.config import ShellLocalConfig

CHECKSUM_TYPES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


class ManifestConfig(PluginConfig):
    """manifest: write the artifacts of the builds to a JSON file."""

    output: Str = Field(
        "packer-manifest.json",
        description=("The manifest will be written to this file. This defaults to `packer-manifest.json`."),
    )
    strip_path: Bool = Field(
        False,
        description=("Write only filename without the path to the manifest file. This defaults to false."),
    )
    strip_time: Bool = Field(False, description="Don't write the `build_time` field from the output.")
    custom_data: StrMap = Field(
        default_factory=dict,
        description=(
            "Arbitrary data to add to the manifest. This is a template engine. Therefore, you may use "
            "user variables and template functions in this field."
        ),
    )


class ChecksumConfig(PluginConfig):
    """checksum: write checksums of the artifact's files."""

    checksum_types: StrList = Field(
        default_factory=lambda: ["md5"],
        description="The checksum types to compute: md5, sha1, sha224, sha256, sha384, sha512.",
    )
    output: Str = Field(
        "packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum",
        description="The file the checksums are written to (a template).",
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        return [
            ctx.problem(f"Unrecognized checksum type: {kind}", f"checksum_types[{i}]")
            for i, kind in enumerate(self.checksum_types)
            if kind not in CHECKSUM_TYPES
        ]


class CompressConfig(PluginConfig):
    """compress: archive the artifact's files."""

    output: Str = Field("packer_{{.BuildName}}_{{.BuilderType}}", description="Fields from config file")
    format: Str = Field(
        "", description="The archive format (tar.gz, zip, lz4, bgzf, xz...); by default from `output`."
    )
    compression_level: Int = Field(
        0, description="The compression level, 1 (fastest) to 9 (best); 0 or -1 is the default (6)."
    )

    @property
    def effective_level(self) -> int:
        """``compression_level`` as Packer uses it: at most 9, 0 and -1 meaning 6."""
        level = min(self.compression_level, 9)
        return 6 if level in (0, -1) else level


class ShellLocalPostProcessorConfig(ShellLocalConfig):
    """shell-local as a post-processor (same options as the provisioner)."""

    @property
    def effective_execute_command(self) -> list[str]:
        """A one-element ``execute_command`` runs through ``sh -c``, as Packer does."""
        if len(self.execute_command) == 1:
            return ["sh", "-c", *self.execute_command]
        return list(self.execute_command) or ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]


class AmazonImportConfig(AccessConfig):
    """amazon-import: import an OVA/VMDK/VHD/raw image into an AMI."""

    s3_bucket_name: Str = Field("", description="The S3 bucket to upload the image to before importing.")
    s3_key_name: Str = Field(
        "", description="The S3 key of the uploaded image; default `packer-import-{{timestamp}}.<format>`."
    )
    s3_encryption: Str = Field("", description="Server-side encryption of the upload: `AES256` or `aws:kms`.")
    s3_encryption_key: Str = Field("", description="The KMS key for `aws:kms` encryption.")
    skip_clean: Bool = Field(False, description="Keep the uploaded image in S3 after the import.")
    tags: StrMap = Field(default_factory=dict, description="Tags applied to the imported AMI and snapshot.")
    ami_name: Str = Field("", description="The name of the imported AMI (copied after the import).")
    ami_description: Str = Field("", description="The description of the imported AMI.")
    ami_users: StrList = Field(default_factory=list, description="Account IDs that may launch the AMI.")
    ami_groups: StrList = Field(default_factory=list, description="Groups that may launch the AMI (`all`).")
    ami_org_arns: StrList = Field(
        default_factory=list, description="Organization ARNs that may launch the AMI."
    )
    ami_ou_arns: StrList = Field(
        default_factory=list, description="Organizational unit ARNs that may launch it."
    )
    ami_encrypt: Bool = Field(False, description="Encrypt the imported AMI.")
    ami_kms_key: Str = Field("", description="The KMS key used to encrypt the imported AMI.")
    imds_support: Str = Field("", description="Enforce IMDSv2 on instances of the AMI: `v2.0` or empty.")
    license_type: Str = Field("", description="The license type of the imported image (`AWS` or `BYOL`).")
    role_name: Str = Field("", description="The IAM role VM Import uses; default `vmimport`.")
    format: Str = Field("ova", description="The image format: ova, raw, vmdk, vhd or vhdx.")
    architecture: Str = Field("x86_64", description="The architecture of the image: x86_64 or arm64.")
    boot_mode: Str = Field(
        "", description="legacy-bios or uefi; default uefi for arm64 and legacy-bios otherwise."
    )
    platform: Str = Field("", description="The OS of the image: linux or windows (required for uefi).")

    @property
    def effective_boot_mode(self) -> str:
        return self.boot_mode or ("uefi" if self.architecture == "arm64" else "legacy-bios")

    @property
    def effective_s3_key_name(self) -> str:
        return self.s3_key_name or f"packer-import-{{{{timestamp}}}}.{self.format}"

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = []
        boot = self.effective_boot_mode
        if self.boot_mode and self.boot_mode not in ("legacy-bios", "uefi", "uefi-preferred"):
            errs.append(
                p(
                    f"invalid boot mode \"{self.boot_mode}\", valid values are either 'uefi', "
                    "'legacy-bios' or 'uefi-preferred'",
                    "boot_mode",
                )
            )
        errs += self.check_access(ctx)
        if not self.s3_bucket_name:
            errs.append(p("s3_bucket_name must be set", "s3_bucket_name"))
        if self.format not in ("ova", "raw", "vmdk", "vhd", "vhdx"):
            errs.append(
                p(
                    f"invalid format '{self.format}'. Only 'ova', 'raw', 'vhd', 'vhdx', or 'vmdk' are "
                    "allowed",
                    "format",
                )
            )
        if self.platform not in ("", "windows", "linux"):
            errs.append(
                p(f"invalid platform '{self.platform}'. Only 'linux' and 'windows' are allowed", "platform")
            )
        elif not self.platform and boot == "uefi":
            errs.append(p("invalid platform '', 'platform' must be set for 'uefi' image imports", "platform"))
        if self.s3_encryption not in ("", "AES256", "aws:kms"):
            errs.append(
                p(
                    f"invalid s3 encryption format '{self.s3_encryption}'. Only 'AES256' and 'aws:kms' "
                    "are allowed",
                    "s3_encryption",
                )
            )
        if boot not in ("legacy-bios", "uefi"):
            errs.append(
                p(f"invalid boot mode '{boot}'. Only 'uefi' and 'legacy-bios' are allowed", "boot_mode")
            )
        if self.architecture == "arm64" and boot != "uefi":
            errs.append(p(f"invalid boot mode '{boot}' for 'arm64' architecture", "boot_mode"))
        if self.imds_support not in ("", "v2.0"):
            errs.append(
                p('The only valid imds_support values are "v2.0" or the empty string', "imds_support")
            )
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        return self.access_warnings()


class ArtificeConfig(PluginConfig):
    """artifice: replace the build's artifact with the listed local files (Packer's
    ``post-processor/artifice``). ``keep_input_artifact`` is the core's, as for every post-processor."""

    files: StrList = Field(
        default_factory=list,
        description=(
            "A list of files that comprise your artifact. These files must exist on your local disk "
            "after the provisioning phase of packer is complete. These will replace any of the "
            "builder's original artifacts (such as a VM snapshot). Glob patterns are expanded."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        if not self.files:
            return [ctx.problem("No files specified in artifice configuration", "files")]
        return []
