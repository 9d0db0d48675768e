"""amazon-instance configuration."""

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.weak import Str
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
    SPOT_NO_MODIFY,
    builder_warnings,
    tpm_support_field,
)
from amibake.plugins.amazon.config_refused import SHARED_UNSUPPORTED
from amibake.plugins.amazon.config_run import RunConfig

NO_SNAPSHOTS = ("an instance-store AMI has no EBS snapshots of its own: amibake does not carry out the "
                "snapshot options for amazon-instance yet")

class InstanceConfig(AccessConfig, AMIConfig, RunConfig):
    """amazon-instance: an instance-store AMI, bundled and uploaded to S3."""

    #: what amazon-ebs refuses of the options this builder shares with it, for the same reasons; and
    #: what this builder has no use for
    unsupported: ClassVar[Mapping[str, str]] = {
        **SHARED_UNSUPPORTED,
        "disable_stop_instance": ("amazon-instance bundles the running instance and never stops it (Packer's "
                                  "builder has no stop step): there is no stop to disable"),
        "snapshot_users": NO_SNAPSHOTS,
        "snapshot_groups": NO_SNAPSHOTS,
        "snapshot_tags": NO_SNAPSHOTS,
        "snapshot_tag": NO_SNAPSHOTS,
    }

    ami_block_device_mappings: BlockDevices = ami_devices_field()
    launch_block_device_mappings: BlockDevices = launch_devices_field()
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
    tpm_support: Str = tpm_support_field()

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

    def warnings(self, ctx: CheckContext) -> list[str]:
        return builder_warnings(self)
