"""Options of the AMI a builder makes (the amazon plugin's ``AMIConfig`` and ``SnapshotConfig``)."""

import re
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, ConfigModel, PluginConfig
from amibake.config.custom_types import KeyValues, merged_tags
from amibake.config.weak import AsStruct, Bool, Int, Str, StrList, StrMap, Trilean
from amibake.errors import Problem
from amibake.plugins.amazon.config_common import ena_support_field, sriov_support_field
from amibake.plugins.amazon.facts import clean_resource_name

_KMS_KEY_ID = r"[a-f0-9]+[a-f0-9-]+$"
_KMS_MRK = r"mrk-[a-f0-9]+[a-f0-9-]+$"
_KMS_ALIAS = r"alias/[a-zA-Z0-9:/_-]+$"
_KMS_ARN = r"^arn:aws(-[a-z]{2}(-gov)?)?:kms:([a-z]{2}-(gov-)?[a-z]+-\d{1})?:(\d{12}):"
_KMS_PATTERNS = [
    re.compile("^" + _KMS_KEY_ID),
    re.compile("^" + _KMS_MRK),
    re.compile("^" + _KMS_ALIAS),
    re.compile(_KMS_ARN + "key/" + _KMS_KEY_ID),
    re.compile(_KMS_ARN + "key/" + _KMS_MRK),
    re.compile(_KMS_ARN + _KMS_ALIAS),
]
AMI_NAME_MESSAGE = (
    "AMIName should only contain alphanumeric characters, parentheses (()), square brackets ([]), "
    "spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('), at-signs (@), or "
    "underscores(_). You can use the `clean_resource_name` template filter to automatically clean "
    "your ami name."
)


def valid_kms_key(key: str) -> bool:
    """A KMS key id, alias or ARN, by the amazon plugin's ``ValidateKmsKey`` patterns."""
    return any(p.search(key) for p in _KMS_PATTERNS)


def valid_rfc3339(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


class DeregistrationProtectionOptions(ConfigModel):
    """``deregistration_protection { ... }``."""

    enabled: Bool = Field(
        False,
        description=(
            "Enable AMI deregistration protection. To allow the AMI to be deregistered, you must first "
            "disable deregistration protection."
        ),
    )
    with_cooldown: Bool = Field(
        False,
        description=(
            "When you turn on deregistration protection on an AMI, you have the option to include a "
            "24-hour cooldown period. This cooldown period is the time during which deregistration "
            "protection remains in effect after you turn it off. During this cooldown period, the AMI "
            "can’t be deregistered. When the cooldown period ends, the AMI can be deregistered."
        ),
    )


class SnapshotConfig(PluginConfig):
    """Tags and sharing of the snapshots behind an AMI."""

    #: tags and sharing distribute the image: a converge applies them to a reused AMI
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "snapshot_tags", "snapshot_tag", "snapshot_users", "snapshot_groups",
    })

    snapshot_tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags to apply to snapshot. They will override AMI tags if already applied "
            "to snapshot. This is a template engine, see Build template data for more information."
        ),
    )
    snapshot_tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `snapshot_tags` but defined as a singular repeatable block containing a `key` and "
            "a `value` field. In HCL2 mode the `dynamic_block` will allow you to create those "
            "programatically."
        ),
    )
    snapshot_users: StrList = Field(
        default_factory=list,
        description=(
            "A list of account IDs that have access to create volumes from the snapshot(s). By default "
            "no additional users other than the user creating the AMI has permissions to create volumes "
            "from the backing snapshot(s)."
        ),
    )
    snapshot_groups: StrList = Field(
        default_factory=list,
        description=(
            "A list of groups that have access to create volumes from the snapshot(s). By default no "
            "groups have permission to create volumes from the snapshot(s). all will make the snapshot "
            "publicly accessible."
        ),
    )

    @property
    def all_snapshot_tags(self) -> dict[str, str]:
        return merged_tags(self.snapshot_tags, self.snapshot_tag)


class AMIConfig(SnapshotConfig):
    """Name, sharing, copying and encryption of the resulting AMI."""

    #: what names, copies, shares or protects the image; virtualization type, ENA/SR-IOV and the
    #: encryption of the build region's AMI shape it and stay in the fingerprint
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "ami_name", "ami_description", "ami_users", "ami_groups", "ami_org_arns", "ami_ou_arns",
        "ami_product_codes", "ami_regions", "skip_region_validation", "snapshot_copy_duration_minutes",
        "tags", "tag", "force_deregister", "force_delete_snapshot", "region_kms_key_ids",
        "skip_save_build_region", "imds_support", "deprecate_at", "deregistration_protection",
    })

    ami_name: Str = Field(
        "",
        description=(
            "The name of the resulting AMI that will appear when managing AMIs in the AWS console or "
            "via APIs. This must be unique. To help make this unique, use a function like timestamp "
            "(see template engine for more info)."
        ),
    )
    ami_description: Str = Field(
        "",
        description=(
            "The description to set for the resulting AMI(s). By default this description is empty. "
            "This is a template engine, see Build template data for more information."
        ),
    )
    ami_virtualization_type: Str = Field(
        "",
        description=(
            "The type of virtualization for the AMI you are building. This option is required to "
            "register HVM images. Can be paravirtual (default) or hvm."
        ),
    )
    ami_users: StrList = Field(
        default_factory=list,
        description=(
            "A list of account IDs that have access to launch the resulting AMI(s). By default no "
            "additional users other than the user creating the AMI has permissions to launch it."
        ),
    )
    ami_groups: StrList = Field(
        default_factory=list,
        description=(
            "A list of groups that have access to launch the resulting AMI(s). By default no groups "
            "have permission to launch the AMI. `all` will make the AMI publicly accessible. AWS "
            'currently doesn\'t accept any value other than "all"'
        ),
    )
    ami_org_arns: StrList = Field(
        default_factory=list,
        description=(
            "A list of Amazon Resource Names (ARN) of AWS Organizations that have access to launch the "
            "resulting AMI(s). By default no organizations have permission to launch the AMI."
        ),
    )
    ami_ou_arns: StrList = Field(
        default_factory=list,
        description=(
            "A list of Amazon Resource Names (ARN) of AWS Organizations organizational units (OU) that "
            "have access to launch the resulting AMI(s). By default no organizational units have "
            "permission to launch the AMI."
        ),
    )
    ami_product_codes: StrList = Field(
        default_factory=list,
        description=(
            "A list of product codes to associate with the AMI. By default no product codes are "
            "associated with the AMI."
        ),
    )
    ami_regions: StrList = Field(
        default_factory=list,
        description=(
            "A list of regions to copy the AMI to. Tags and attributes are copied along with the AMI. "
            "AMI copying takes time depending on the size of the AMI, but will generally take many "
            "minutes."
        ),
    )
    skip_region_validation: Bool = Field(
        False,
        description=(
            "Set to true if you want to skip validation of the ami_regions configuration option. "
            "Default false."
        ),
    )
    snapshot_copy_duration_minutes: Int | None = Field(
        None,
        description=(
            "Specify a completion duration, in 15 minute increments, to initiate a time-based AMI copy. "
            "The specified completion duration applies to each of the snapshots associated with the "
            "AMI. Each snapshot associated with the AMI will be completed within the specified "
            "completion duration, regardless of their size. If you do not specify a value, the AMI copy "
            "operation is completed on a best-effort basis."
        ),
    )
    tags: StrMap = Field(
        default_factory=dict,
        description=(
            "Key/value pair tags applied to the AMI. This is a template engine, see Build template data "
            'for more information. The builder no longer adds a "Name": "Packer Builder" entry to '
            "the tags."
        ),
    )
    tag: KeyValues = Field(
        default_factory=list,
        description=(
            "Same as `tags` but defined as a singular repeatable block containing a `key` and a `value` "
            "field. In HCL2 mode the `dynamic_block` will allow you to create those programatically."
        ),
    )
    ena_support: Trilean = ena_support_field()
    sriov_support: Bool = sriov_support_field()
    force_deregister: Bool = Field(
        False,
        description=(
            "Force Packer to first deregister an existing AMI if one with the same name already exists. "
            "Default false."
        ),
    )
    force_delete_snapshot: Bool = Field(
        False,
        description=(
            "Force Packer to delete snapshots associated with AMIs, which have been deregistered by "
            "force_deregister. Default false."
        ),
    )
    encrypt_boot: Trilean = Field(
        None,
        description=(
            "Whether or not to encrypt the resulting AMI when copying a provisioned instance to an AMI. "
            "By default, Packer will keep the encryption setting to what it was in the source image. "
            "Setting false will result in an unencrypted image, and true will result in an encrypted "
            "one. If you have used the `launch_block_device_mappings` to set an encryption key and that "
            "key is the same as the one you want the image encrypted with at the end, then you don't "
            "need to set this field; leaving it empty will prevent an unnecessary extra copy step and "
            "save you some time."
        ),
    )
    kms_key_id: Str = Field(
        "",
        description=(
            "ID, alias or ARN of the KMS key to use for AMI encryption. This only applies to the main "
            "`region` -- any regions the AMI gets copied to will be encrypted by the default EBS KMS "
            "key for that region, unless you set region-specific keys in `region_kms_key_ids`. Set this "
            "value if you select `encrypt_boot`, but don't want to use the region's default KMS key."
        ),
    )
    region_kms_key_ids: StrMap = Field(
        default_factory=dict,
        description=(
            "regions to copy the ami to, along with the custom kms key id (alias or arn) to use for "
            "encryption for that region. Keys must match the regions provided in `ami_regions`. If you "
            "just want to encrypt using a default ID, you can stick with `kms_key_id` and "
            "`ami_regions`. If you want a region to be encrypted with that region's default key ID, you "
            'can use an empty string `""` instead of a key id in this map. (e.g. `"us-east-1": '
            '""`) However, you cannot use default key IDs if you are using this in conjunction with '
            "`snapshot_users` -- in that situation you must use custom keys. For valid formats see "
            "*KmsKeyId* in the AWS API docs - CopyImage."
        ),
    )
    skip_save_build_region: Bool = Field(
        False,
        description=(
            "If true, Packer will not check whether an AMI with the `ami_name` exists in the region it "
            "is building in. It will use an intermediary AMI name, which it will not convert to an AMI "
            "in the build region. It will copy the intermediary AMI into any regions provided in "
            "`ami_regions`, then delete the intermediary AMI. Default `false`."
        ),
    )
    imds_support: Str = Field(
        "",
        description=(
            "Enforce version of the Instance Metadata Service on the built AMI. Valid options are unset "
            "(legacy) and `v2.0`. See the documentation on IMDS for more information. Defaults to "
            "legacy."
        ),
    )
    deprecate_at: Str = Field(
        "",
        description=(
            "The date and time to deprecate the AMI, in UTC, in the following format: "
            "YYYY-MM-DDTHH:MM:SSZ. If you specify a value for seconds, Amazon EC2 rounds the seconds to "
            "the nearest minute. You can’t specify a date in the past. The upper limit for DeprecateAt "
            "is 10 years from now."
        ),
    )
    deregistration_protection: Annotated[DeregistrationProtectionOptions, AsStruct] = Field(
        default_factory=lambda: DeregistrationProtectionOptions.model_validate({}),
        description=(
            "Enable AMI deregistration protection. See DeregistrationProtectionOptions below for more "
            "details on all of the options available, and for a usage example."
        ),
    )

    @property
    def all_tags(self) -> dict[str, str]:
        """``tags`` with the ``tag`` blocks copied on."""
        return merged_tags(self.tags, self.tag)

    def check_ami(self, ctx: CheckContext, *, name_required: bool = True) -> list[Problem]:
        p = ctx.problem
        errs: list[Problem] = []
        if name_required and not self.ami_name:
            errs.append(p("ami_name must be specified", "ami_name"))
        for region in self.region_kms_key_ids:
            if region not in self.ami_regions:
                errs.append(
                    p(
                        f"Region {region} is in region_kms_key_ids but not in ami_regions",
                        "region_kms_key_ids",
                    )
                )
        if self.region_kms_key_ids:
            for region in dict.fromkeys(self.ami_regions):
                if region not in self.region_kms_key_ids:
                    errs.append(
                        p(f"Region {region} is in ami_regions but not in region_kms_key_ids", "ami_regions")
                    )
        default_key = not self.kms_key_id and not self.region_kms_key_ids and self.encrypt_boot is True
        if self.ami_users or self.ami_org_arns or self.ami_ou_arns:
            if default_key:
                errs.append(p("Cannot share AMI encrypted with default KMS key", "ami_users"))
            if any(not k for k in self.region_kms_key_ids.values()):
                errs.append(
                    p(
                        "Cannot share AMI encrypted with default KMS key for other regions",
                        "region_kms_key_ids",
                    )
                )
        keys = ([self.kms_key_id] if self.kms_key_id else []) + [
            k for k in self.region_kms_key_ids.values() if k
        ]
        if keys and self.encrypt_boot is not True:
            errs.append(
                p(
                    "If you have set either region_kms_key_ids or kms_key_id, encrypt_boot must "
                    "also be true.",
                    "encrypt_boot",
                )
            )
        for key in keys:
            if not valid_kms_key(key):
                errs.append(
                    p(
                        f'"{key}" is not a valid KMS Key Id.',
                        "kms_key_id" if key == self.kms_key_id else "region_kms_key_ids",
                    )
                )
        if self.snapshot_users:
            if default_key:
                errs.append(
                    p(
                        "Cannot share snapshot encrypted with default KMS key, see "
                        "https://www.packer.io/docs/builders/amazon-ebs#region_kms_key_ids for more "
                        "information",
                        "snapshot_users",
                    )
                )
            if any(not k for k in self.region_kms_key_ids.values()):
                errs.append(p("Cannot share snapshot encrypted with default KMS key", "region_kms_key_ids"))
        if name_required or self.ami_name:
            if not 3 <= len(self.ami_name.encode()) <= 128:
                errs.append(p("ami_name must be between 3 and 128 characters long", "ami_name"))
            if self.ami_name != clean_resource_name(self.ami_name):
                errs.append(p(AMI_NAME_MESSAGE, "ami_name"))
        if self.imds_support not in ("", "v2.0"):
            errs.append(
                p('The only valid imds_support values are "v2.0" or the empty string', "imds_support")
            )
        if self.deprecate_at and not valid_rfc3339(self.deprecate_at):
            errs.append(
                p(
                    f'deprecate_at is not a valid time: "{self.deprecate_at}". Expect time format: '
                    "YYYY-MM-DDTHH:MM:SSZ",
                    "deprecate_at",
                )
            )
        return errs

    def copy_regions(self, build_region: str) -> list[str]:
        """``ami_regions`` without duplicates and without the build region (Packer drops it)."""
        return [r for r in dict.fromkeys(self.ami_regions) if r != build_region]
