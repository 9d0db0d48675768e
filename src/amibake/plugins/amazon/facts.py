"""The amazon plugin's facts the template layer needs, registered with each type in
:mod:`amibake.plugins` (the core hands them to the template layer, which never names a plugin).

Cheap to import: no pydantic model, no boto3.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Packer's ``required_plugins`` source name of the plugin (``github.com/hashicorp/amazon``)
PLUGIN = "amazon"
#: what finds and removes the leftovers of every amazon builder's runs (``amibake cleanup``)
CLEANUP = "amibake.plugins.amazon.cleanup:new_cleaner"
#: what deregisters the old AMIs of a selection and deletes their snapshots (``amibake prune``)
PRUNE = "amibake.plugins.amazon.prune:prune"

#: The config keys each amazon builder leaves out of its first interpolation pass (in Prepare)
#: and renders later, at build time, with the build data (``{{ .SourceAMI }}``...). They are still
#: *parsed* in Prepare, so an unknown function in them is an error before the build starts.
#: Source: the ``InterpolateFilter: &interpolate.RenderFilter{Exclude: ...}`` list of each
#: builder's ``Prepare`` in github.com/hashicorp/packer-plugin-amazon (HEAD of 2026-07):
#: ``builder/ebs/builder.go``, ``builder/ebssurrogate/builder.go``, ``builder/ebsvolume/builder.go``,
#: ``builder/instance/builder.go``, ``builder/chroot/builder.go``. Packer 1.6.6's copies in
#: ``builder/amazon/*/builder.go`` are the same lists without ``fleet_tags``/``fleet_tag`` (keys
#: that 1.6.6 did not have at all). The filter compares keys case-insensitively.
LATE_FIELDS_BY_BUILDER: Mapping[str, frozenset[str]] = {
    "amazon-ebs": frozenset({
        "ami_description", "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags",
        "run_volume_tag", "spot_tags", "spot_tag", "snapshot_tags", "snapshot_tag", "tags", "tag",
    }),
    "amazon-ebssurrogate": frozenset({
        "ami_description", "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags",
        "run_volume_tag", "snapshot_tags", "snapshot_tag", "spot_tags", "spot_tag", "tags", "tag",
    }),
    "amazon-ebsvolume": frozenset({
        "fleet_tags", "fleet_tag", "run_tags", "run_tag", "run_volume_tags", "run_volume_tag",
        "spot_tags", "spot_tag", "tags", "tag",
    }),
    "amazon-instance": frozenset({
        "ami_description", "bundle_upload_command", "bundle_vol_command", "fleet_tags", "fleet_tag",
        "run_tags", "run_volume_tags", "snapshot_tags", "tags", "spot_tags",
    }),
    "amazon-chroot": frozenset({
        "ami_description", "snapshot_tags", "snapshot_tag", "tags", "tag", "root_volume_tags",
        "root_volume_tag", "command_wrapper", "post_mount_commands", "pre_mount_commands",
        "mount_path",
    }),
}  # fmt: skip

#: Union of :data:`LATE_FIELDS_BY_BUILDER`: what every amazon builder renders late in amibake
#: (the union, not each builder's own list: amibake's behaviour since the first amazon builder).
LATE_FIELDS: frozenset[str] = frozenset().union(*LATE_FIELDS_BY_BUILDER.values())

#: The build data the amazon builders offer to late fields (``{{ .SourceAMI }}``), from
#: packer-plugin-amazon ``common/build_filter.go``/``step_source_ami_info.go`` (``BuildInfoTemplate``).
BUILD_DATA_FIELDS: frozenset[str] = frozenset({
    "BuildRegion", "SourceAMI", "SourceAMIName", "SourceAMIOwner", "SourceAMIOwnerName",
    "SourceAMICreationDate", "SourceAMITags",
})  # fmt: skip

#: The keys each builder adds (its ``Prepare``'s generated-data list): packer-plugin-amazon
#: ``common/interpolate_build_info.go`` ``GetGeneratedDataList`` for every amazon builder,
#: plus ``Device`` and ``MountPath`` for amazon-chroot (``builder/chroot/builder.go``). Not
#: ``SourceAMITags``: a map, offered only to the builder's own late fields (``{{ .SourceAMITags.X }}``),
#: never to ``build``.
GENERATED: tuple[str, ...] = (
    "SourceAMIName", "BuildRegion", "SourceAMI", "SourceAMICreationDate", "SourceAMIOwner",
    "SourceAMIOwnerName",
)  # fmt: skip
CHROOT_GENERATED: tuple[str, ...] = (*GENERATED, "Device", "MountPath")

#: Functions the amazon builders add to their interpolation context
#: (packer-plugin-amazon ``common/template_funcs.go``: ``TemplateFuncs``). ``clean_ami_name``, its
#: name before Packer 1.5, is rejected by Packer 1.6.6 and by current Packer alike (``function
#: "clean_ami_name" not defined``), and so it is here, with a hint.
TEMPLATE_FUNCS: tuple[tuple[str, str], ...] = (("clean_resource_name", f"{__name__}:clean_resource_name"),)
RENAMED_FUNCS: tuple[tuple[str, str], ...] = (("clean_ami_name", "clean_resource_name"),)

#: nested blocks the amazon plugin declares as a single block (decoded to a dict); every other
#: nested block is a list of blocks (decoded to a list of dicts). Declared, not derived from the
#: config types: derivation would add ``ami_root_device``, ``deregistration_protection`` and
#: ``license_configuration_request`` and drop ``filters`` and the others typed as maps or strings
#: (a change of behaviour), and it would build every amazon validator at load time.
SINGLE_BLOCKS: frozenset[str] = frozenset({
    "source_ami_filter", "security_group_filter", "subnet_filter", "vpc_filter", "metadata_options",
    "assume_role", "aws_polling", "vault_aws_engine", "placement", "launch_template",
    "temporary_iam_instance_profile_policy_document", "filters", "ami_filters", "fast_launch",
    "capacity_reservation", "tenancy", "hcp_packer_registry",
})  # fmt: skip

#: keys the amazon plugin's HCL2 spec declares as (repeatable) blocks even when their JSON value
#: is a flat object, where Packer's guess in ``hcl2_upgrade`` (object of scalars = attribute) is wrong
HCL2_BLOCK_KEYS: frozenset[str] = frozenset({
    "ami_block_device_mappings", "assume_role", "aws_polling", "launch_block_device_mappings",
    "metadata_options", "security_group_filter", "source_ami_filter", "subnet_filter", "vault_aws_engine",
    "vpc_filter", "temporary_iam_instance_profile_policy_document", "fleet_tag", "run_tag",
    "run_volume_tag", "spot_tag", "tag",
})  # fmt: skip

#: access settings ``hcl2_upgrade`` copies from an amazon builder into the ``amazon-ami`` data source
#: it makes of the builder's ``source_ami_filter``
ACCESS_KEYS: tuple[str, ...] = (
    "access_key", "assume_role", "custom_endpoint_ec2", "shared_credentials_file",
    "decode_authorization_messages", "insecure_skip_tls_verify", "max_retries", "mfa_code", "profile",
    "region", "secret_key", "skip_metadata_api_check", "skip_credential_validation", "token",
    "vault_aws_engine", "aws_polling",
)  # fmt: skip

#: packer-plugin-amazon datasource/*/data.go ``DatasourceOutput``
AMI_OUTPUTS = ("id", "name", "creation_date", "owner", "owner_name", "tags")
PARAMETERSTORE_OUTPUTS = ("value", "version", "arn")
SECRETSMANAGER_OUTPUTS = ("value", "secret_string", "secret_binary", "version_id")

_CLEAN_ALLOWED = frozenset(b"()[] ./-'@_")


def clean_resource_name(s: str) -> str:
    """packer-plugin-amazon ``templateCleanAMIName``: byte by byte, anything but ASCII letters,
    digits and ``( ) [ ] space . / - ' @ _`` becomes ``-`` (so a 2-byte UTF-8 char gives ``--``)."""
    out = bytearray()
    for b in s.encode("utf-8", "surrogatepass"):
        ok = 48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b in _CLEAN_ALLOWED
        out.append(b if ok else 0x2D)
    return out.decode("ascii")
