"""amibake-local configuration: the amazon access and AMI options, the image options
(:class:`~amibake.plugins.amazon.local.config_image.LocalImageOptions`), and the upload's own."""

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.durations import Duration
from amibake.config.weak import Bool, Int, Str
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.plugins.amazon.config_ami import AMIConfig
from amibake.plugins.amazon.config_common import snapshot_description_field, tpm_support_field
from amibake.plugins.amazon.local.config_image import LocalImageOptions, image_problems

#: why amibake-local refuses an option the other amazon builders may carry out
_UNPROVEN = "not carried out by amibake-local yet: no test has seen it take effect in a local build"
_HVM = ("amibake-local registers the disk it built, which boots with UEFI or a BIOS: its AMI is always hvm "
        "(RegisterImage VirtualizationType hvm)")
_ENCRYPT = ("the local build encrypts its snapshot when it is written (snapshot_encrypted, "
            "snapshot_kms_key_arn); encrypted copies of the AMI are not carried out yet")
_MOTO_MAPPINGS = ("not carried out by amibake-local yet: the test stack's RegisterImage keeps no block "
                  "device mappings, so no test can see the snapshot of a deregistered AMI deleted")
#: StartSnapshot's Timeout: minutes, from 10 to 4320 (the EBS direct API reference)
TIMEOUT_MINUTES = (10, 4320)
#: the most PutSnapshotBlock calls in flight at once (the AWS client pool holds 32 connections)
MAX_WORKERS = 32


class LocalConfig(AccessConfig, AMIConfig, LocalImageOptions):
    """amibake-local: an AMI built on this host with no EC2 instance (a root filesystem, a bootable
    disk, a boot test under QEMU), written into a snapshot with the EBS direct APIs and registered."""

    unsupported: ClassVar[Mapping[str, str]] = {
        "vault_aws_engine": "credentials from Vault's AWS secrets engine are not implemented yet",
        "decode_authorization_messages": "decoding authorization failures through STS is not implemented yet",
        "ami_virtualization_type": _HVM,
        "encrypt_boot": _ENCRYPT,
        "kms_key_id": _ENCRYPT,
        "region_kms_key_ids": _ENCRYPT,
        "force_delete_snapshot": _MOTO_MAPPINGS,
        **{key: _UNPROVEN for key in (
            "ami_org_arns", "ami_ou_arns", "ami_product_codes", "skip_save_build_region",
            "snapshot_copy_duration_minutes", "deprecate_at", "deregistration_protection", "assume_role",
            "profile", "shared_credentials_file", "mfa_code", "token", "max_retries",
            "insecure_skip_tls_verify", "skip_credential_validation", "skip_metadata_api_check",
            "skip_region_validation")},
    }
    #: how the disk reaches AWS, not what it holds
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "snapshot_upload_workers", "snapshot_timeout", "snapshot_description", "disk_output",
    })

    tpm_support: Str = tpm_support_field()
    snapshot_description: Str = snapshot_description_field()
    snapshot_encrypted: Bool = Field(
        False,
        description=(
            "Write the snapshot encrypted (StartSnapshot `Encrypted`): with the account's default EBS "
            "key, or `snapshot_kms_key_arn`. Defaults to false."
        ),
    )
    snapshot_kms_key_arn: Str = Field(
        "",
        description=(
            "The ARN of the KMS key the snapshot is encrypted with (StartSnapshot `KmsKeyArn`); needs "
            "`snapshot_encrypted`."
        ),
    )
    snapshot_upload_workers: Int = Field(
        16,
        description=(
            f"How many blocks are written at once (parallel PutSnapshotBlock calls), 1 to {MAX_WORKERS}. "
            "Defaults to 16."
        ),
    )
    snapshot_timeout: Duration = Field(
        0.0,
        description=(
            "How long the snapshot may stay unfinished before EBS gives it up (StartSnapshot `Timeout`, "
            "10m to 72h, in whole minutes). Defaults to EBS's (60 minutes)."
        ),
    )
    disk_output: Str = Field(
        "",
        description=(
            "Keep the raw disk image that was uploaded at this path (replaced if it exists). By default "
            "it is built in a temporary directory and deleted at the end of the build."
        ),
    )

    def check(self, ctx: CheckContext) -> list[Problem]:
        p = ctx.problem
        errs = self.check_access(ctx)
        errs += self.check_ami(ctx)
        errs += image_problems(self, ctx)
        if self.tpm_support and self.tpm_support != "v2.0":
            errs.append(p('The only valid tpm_support value is "v2.0"', "tpm_support"))
        elif self.tpm_support and self.boot_mode == "legacy-bios":
            # NitroTPM needs UEFI: RegisterImage refuses TpmSupport with BootMode legacy-bios
            errs.append(p('tpm_support needs UEFI: it cannot be used with boot_mode "legacy-bios"',
                          "tpm_support"))
        if self.snapshot_kms_key_arn:
            if not self.snapshot_encrypted:
                errs.append(p("snapshot_kms_key_arn needs snapshot_encrypted = true", "snapshot_encrypted"))
            if not self.snapshot_kms_key_arn.startswith("arn:"):
                errs.append(p("snapshot_kms_key_arn must be a KMS key ARN (arn:aws:kms:...)",
                              "snapshot_kms_key_arn"))
        if not 1 <= self.snapshot_upload_workers <= MAX_WORKERS:
            errs.append(p(f"snapshot_upload_workers must be from 1 to {MAX_WORKERS}",
                          "snapshot_upload_workers"))
        if self.snapshot_timeout:
            low, high = TIMEOUT_MINUTES
            if not low * 60 <= self.snapshot_timeout <= high * 60:
                errs.append(p("snapshot_timeout must be from 10m to 72h", "snapshot_timeout"))
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        return self.access_warnings()

    def timeout_minutes(self) -> int:
        """StartSnapshot's Timeout (whole minutes, rounded up); 0 when not set."""
        return int(-(-self.snapshot_timeout // 60)) if self.snapshot_timeout else 0
