"""The ``amazon-import`` post-processor's options.
``keep_input_artifact`` and ``only``/``except`` are handled by the core."""

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.weak import Bool, Str, StrList, StrMap
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig


class AmazonImportConfig(AccessConfig):
    """amazon-import: import an OVA/VMDK/VHD/raw image into an AMI."""

    #: what the amazon builders refuse of the access options, for the same reasons
    unsupported: ClassVar[Mapping[str, str]] = {
        "vault_aws_engine": "credentials from Vault's AWS secrets engine are not implemented yet",
        "decode_authorization_messages": "decoding authorization failures through STS is not implemented yet",
    }

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
