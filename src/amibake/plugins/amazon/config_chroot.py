"""amazon-chroot configuration."""

from collections.abc import Mapping
from typing import Annotated, ClassVar

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.custom_types import KeyValues
from amibake.config.weak import AsStruct, Bool, Int, Str, StrList, StrListList, StrMap, Trilean
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig
from amibake.plugins.amazon.config_ami import AMIConfig, valid_kms_key
from amibake.plugins.amazon.config_blockdev import BlockDevices, check_devices
from amibake.plugins.amazon.config_common import (
    ami_architecture_field,
    boot_mode_field,
    check_arch_boot,
    tpm_support_field,
    uefi_data_field,
)
from amibake.plugins.amazon.config_run import AmiFilterOptions

#: why amazon-chroot refuses an option the other amazon builders may carry out
_UNPROVEN = "not carried out by amazon-chroot yet: no test has seen it take effect in a chroot build"

_MOTO_500 = ("not carried out by amazon-chroot yet: the test stack's EC2 fails this call on a registered "
             "(not created) image, so no test has seen it take effect")


class ChrootConfig(AccessConfig, AMIConfig):
    """amazon-chroot: build an AMI from a volume attached to the instance Packer runs on."""

    unsupported: ClassVar[Mapping[str, str]] = {
        "vault_aws_engine": "credentials from Vault's AWS secrets engine are not implemented yet",
        "decode_authorization_messages": "decoding authorization failures through STS is not implemented yet",
        **{key: _MOTO_500 for key in ("deprecate_at", "deregistration_protection")},
        **{key: _UNPROVEN for key in (
            "ami_org_arns", "ami_ou_arns", "ami_product_codes", "region_kms_key_ids", "encrypt_boot",
            "kms_key_id", "skip_save_build_region", "snapshot_copy_duration_minutes",
            "root_volume_kms_key_id", "assume_role", "profile", "shared_credentials_file", "mfa_code",
            "token", "max_retries", "insecure_skip_tls_verify", "skip_credential_validation",
            "skip_metadata_api_check", "skip_region_validation")},
    }

    ami_block_device_mappings: BlockDevices = Field(
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
        default_factory=lambda: AmiFilterOptions.model_validate({}),
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
    ami_architecture: Str = ami_architecture_field()
    boot_mode: Str = boot_mode_field()
    uefi_data: Str = uefi_data_field()
    tpm_support: Str = tpm_support_field()

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
        errs += check_arch_boot(ctx, self.ami_architecture, self.boot_mode, self.uefi_data, self.tpm_support)
        return errs

    def warnings(self, ctx: CheckContext) -> list[str]:
        out = self.access_warnings()
        if self.from_scratch and (self.source_ami or not self.source_ami_filter.empty()):
            out.append("source_ami and source_ami_filter are unused when from_scratch is true")
        if not self.from_scratch and self.ami_block_device_mappings and self.root_device_name:
            out.append("ami_block_device_mappings from source image will be completely overwritten")
        return out
