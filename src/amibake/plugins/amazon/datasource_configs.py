"""The configuration of the amazon plugin's data sources, as Packer's plugin declares it (strict, with
did-you-mean).

Every AWS data source embeds the amazon plugin's ``AccessConfig`` (region, profile, keys,
``custom_endpoint_ec2``...), as the builders do. Required options and cross-field rules are checked
in :meth:`check`, with Packer's messages (the plugins' ``Configure``).
"""

from __future__ import annotations

from pydantic import Field

from amibake.config.base import CheckContext
from amibake.config.weak import Bool, Str, StrList, StrMap
from amibake.errors import Problem
from amibake.plugins.amazon.config_access import AccessConfig

#: the access options the AWS data sources do not carry out yet (the builders' own list, if any, counts too)
ACCESS_UNSUPPORTED = {
    "assume_role": "the data sources do not assume a role yet",
    "vault_aws_engine": "the data sources do not read credentials from Vault",
    "mfa_code": "the data sources do not pass an MFA code (it only serves a profile's assumed role)",
    "decode_authorization_messages": "the data sources do not decode authorization messages",
    "skip_credential_validation": "the data sources never validate credentials before their call",
    "aws_polling": "a data source waits for nothing: it would have no effect",
    "skip_metadata_api_check": "deprecated: Packer ignores it",
}


class AmiDatasourceConfig(AccessConfig):
    """``data "amazon-ami"``: AccessConfig plus AmiFilterOptions."""

    unsupported = ACCESS_UNSUPPORTED

    filters: StrMap = Field(
        default_factory=dict,
        description="Filters used to select an AMI (any DescribeImages filter).",
    )
    owners: StrList = Field(
        default_factory=list,
        description='Owners of the images: account ids, "self", or an alias such as "amazon".',
    )
    most_recent: Bool = Field(False, description="Selects the newest created image when several match.")
    include_deprecated: Bool = Field(False, description="Include deprecated AMIs in the response.")

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        if not self.owners and not self.filters:
            errs.append(ctx.problem("The `filters` must be specified", "filters"))
        if not self.owners:
            errs.append(ctx.problem("For security reasons, you must declare an owner.", "owners"))
        return errs


class ParameterStoreConfig(AccessConfig):
    """``data "amazon-parameterstore"``."""

    unsupported = ACCESS_UNSUPPORTED

    name: Str = Field("", description="The name of the parameter you want to query.")
    with_decryption: Bool = Field(False, description="Return decrypted values for secure string parameters.")

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        if not self.name:
            errs.append(ctx.problem("a 'name' must be provided", "name"))
        return errs


class SecretsManagerConfig(AccessConfig):
    """``data "amazon-secretsmanager"``."""

    unsupported = ACCESS_UNSUPPORTED

    name: Str = Field("", description="The ARN or friendly name of the secret.")
    key: Str = Field("", description="The key of a JSON secret whose value becomes `value`.")
    version_id: Str = Field("", description="The version of the secret (overrides version_stage).")
    version_stage: Str = Field("", description="The staging label of the version (default AWSCURRENT).")

    def check(self, ctx: CheckContext) -> list[Problem]:
        errs = self.check_access(ctx)
        if not self.name:
            errs.append(ctx.problem("a 'name' must be provided", "name"))
        return errs

    @property
    def stage(self) -> str:
        return self.version_stage or "AWSCURRENT"

