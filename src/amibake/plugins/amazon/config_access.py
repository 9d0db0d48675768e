"""AWS access options shared by every amazon builder and the amazon-import post-processor
(the amazon plugin's ``AccessConfig``)."""

from typing import Annotated, ClassVar

from pydantic import Field

from amibake.config.base import CheckContext, ConfigModel, PluginConfig
from amibake.config.weak import AsStruct, Bool, Int, Str, StrList, StrMap
from amibake.errors import Problem
from amibake.plugins.amazon.access import AssumeRole, AwsAccess, Polling


class AssumeRoleConfig(ConfigModel):
    """``assume_role { ... }``: the role to assume with the supplied credentials."""

    role_arn: Str = Field("", description="Amazon Resource Name (ARN) of the IAM Role to assume.")
    duration_seconds: Int = Field(
        0,
        description=("Number of seconds to restrict the assume role session duration."),
    )
    external_id: Str = Field(
        "",
        description=(
            "The external ID to use when assuming the role. If omitted, no external ID is passed to the "
            "AssumeRole call."
        ),
    )
    policy: Str = Field(
        "",
        description=(
            "IAM Policy JSON describing further restricting permissions for the IAM Role being assumed."
        ),
    )
    policy_arns: StrList = Field(
        default_factory=list,
        description=(
            "Set of Amazon Resource Names (ARNs) of IAM Policies describing further restricting "
            "permissions for the IAM Role being"
        ),
    )
    session_name: Str = Field("", description="Session name to use when assuming the role.")
    tags: StrMap = Field(default_factory=dict, description="Map of assume role session tags.")
    transitive_tag_keys: StrList = Field(
        default_factory=list,
        description=("Set of assume role session tag keys to pass to any subsequent sessions."),
    )


class VaultAWSEngineOptions(ConfigModel):
    """``vault_aws_engine { ... }``: credentials from Vault's AWS secrets engine."""

    name: Str = Field("", description="The Vault role name to read credentials for.")
    role_arn: Str = Field("", description="The ARN of the role to assume when the Vault role has several.")
    ttl: Str = Field(
        "",
        description=(
            "Specifies the TTL for the use of the STS token. This is specified as a string with a "
            "duration suffix. Valid only when credential_type is assumed_role or federation_token. When "
            "not specified, the default_sts_ttl set for the role will be used. If that is also not set, "
            "then the default value of 3600s will be used. AWS places limits on the maximum TTL "
            "allowed. See the AWS documentation on the DurationSeconds parameter for AssumeRole (for "
            "assumed_role credential types) and GetFederationToken (for federation_token credential "
            "types) for more details."
        ),
    )
    engine_name: Str = Field(
        "", description="The mount path of the AWS secrets engine in Vault (default `aws`)."
    )

    def empty(self) -> bool:
        return not (self.name or self.role_arn or self.ttl or self.engine_name)


class AWSPollingConfig(ConfigModel):
    """``aws_polling { ... }``: how often and how long to poll AWS waiters."""

    max_attempts: Int = Field(
        0,
        description=(
            "Specifies the maximum number of attempts the waiter will check for resource state. This "
            "value can also be set via the AWS_MAX_ATTEMPTS. If both option and environment variable "
            "are set, the max_attempts will be considered over the AWS_MAX_ATTEMPTS. If none is set, "
            "defaults to AWS waiter default which is 40 max_attempts. In aws sdk go v2, the max "
            "attempts is not set directly, but rather set via max wait time and delay seconds. "
            "maxWaitTime = maxAttempts * delaySeconds"
        ),
    )
    delay_seconds: Int = Field(
        0,
        description=(
            "Specifies the delay in seconds between attempts to check the resource state. This value "
            "can also be set via the AWS_POLL_DELAY_SECONDS. If both option and environment variable "
            "are set, the delay_seconds will be considered over the AWS_POLL_DELAY_SECONDS. If none is "
            "set, defaults to AWS waiter default which is 15 seconds."
        ),
    )


class AccessConfig(PluginConfig):
    """Credentials, region and AWS client options."""

    #: credentials and client options never shape an image (the build region is where the
    #: fingerprint is looked up; the source AMI id, region-specific, is a component of its own)
    not_image_shaping: ClassVar[frozenset[str]] = frozenset({
        "access_key", "assume_role", "custom_endpoint_ec2", "shared_credentials_file",
        "decode_authorization_messages", "insecure_skip_tls_verify", "max_retries", "mfa_code", "profile",
        "region", "secret_key", "skip_metadata_api_check", "skip_credential_validation", "token",
        "vault_aws_engine", "aws_polling",
    })

    access_key: Str = Field(
        "",
        description=(
            "The access key used to communicate with AWS. Learn how to set this. On EBS, this is not "
            "required if you are using `use_vault_aws_engine` for authentication instead."
        ),
    )
    assume_role: Annotated[AssumeRoleConfig, AsStruct] = Field(
        default_factory=lambda: AssumeRoleConfig.model_validate({}),
        description=(
            "If provided with a role ARN, Packer will attempt to assume this role using the supplied "
            "credentials. See AssumeRoleConfig below for more details on all of the options available, "
            "and for a usage example."
        ),
    )
    custom_endpoint_ec2: Str = Field(
        "",
        description=(
            "This option is useful if you use a cloud provider whose API is compatible with aws EC2. "
            "Specify another endpoint like this https://ec2.custom.endpoint.com."
        ),
    )
    shared_credentials_file: Str = Field(
        "",
        description=("Path to a credentials file to load credentials from"),
    )
    decode_authorization_messages: Bool = Field(
        False,
        description=(
            "Enable automatic decoding of any encoded authorization (error) messages using the "
            "`sts:DecodeAuthorizationMessage` API. Note: requires that the effective user/role have "
            "permissions to `sts:DecodeAuthorizationMessage` on resource `*`. Default `false`."
        ),
    )
    insecure_skip_tls_verify: Bool = Field(
        False,
        description=("This allows skipping TLS verification of the AWS EC2 endpoint. The default is false."),
    )
    max_retries: Int = Field(
        10,
        description=(
            "This is the maximum number of times an API call is retried, in the case where requests are "
            "being throttled or experiencing transient failures. The delay between the subsequent API "
            "calls increases exponentially."
        ),
    )
    mfa_code: Str = Field(
        "",
        description=(
            "The MFA TOTP code. This should probably be a user variable since it changes all the time."
        ),
    )
    profile: Str = Field(
        "",
        description=(
            "The profile to use in the shared credentials file for AWS. See Amazon's documentation on "
            "specifying profiles for more details."
        ),
    )
    region: Str = Field(
        "",
        description=(
            "The name of the region, such as `us-east-1`, in which to launch the EC2 instance to create "
            "the AMI. When chroot building, this value is guessed from environment."
        ),
    )
    secret_key: Str = Field(
        "",
        description=(
            "The secret key used to communicate with AWS. Learn how to set this. This is not required "
            "if you are using `use_vault_aws_engine` for authentication instead."
        ),
    )
    skip_metadata_api_check: Bool = Field(
        False, description="Deprecated and ignored (Packer logs a warning)."
    )
    skip_credential_validation: Bool = Field(
        False,
        description=("Set to true if you want to skip validating AWS credentials before runtime."),
    )
    token: Str = Field(
        "",
        description=(
            "The access token to use. This is different from the access key and secret key. If you're "
            "not sure what this is, then you probably don't need it. This will also be read from the "
            "AWS_SESSION_TOKEN environmental variable."
        ),
    )
    vault_aws_engine: Annotated[VaultAWSEngineOptions, AsStruct] = Field(
        default_factory=lambda: VaultAWSEngineOptions.model_validate({}),
        description=(
            "Get credentials from HashiCorp Vault's aws secrets engine. You must already have created a "
            "role to use. For more information about generating credentials via the Vault engine, see "
            "the Vault docs. If you set this flag, you must also set the below options: - `name` "
            "(string) - Required. Specifies the name of the role to generate credentials against. This "
            "is part of the request URL. - `engine_name` (string) - The name of the aws secrets engine. "
            'In the Vault docs, this is normally referred to as "aws", and Packer will default to '
            '"aws" if `engine_name` is not set. - `role_arn` (string)- The ARN of the role to assume '
            "if credential\\_type on the Vault role is assumed\\_role. Must match one of the allowed "
            "role ARNs in the Vault role. Optional if the Vault role only allows a single AWS role ARN; "
            "required otherwise. - `ttl` (string) - Specifies the TTL for the use of the STS token. "
            "This is specified as a string with a duration suffix. Valid only when credential\\_type is "
            "assumed\\_role or federation\\_token. When not specified, the default\\_sts\\_ttl set for "
            "the role will be used. If that is also not set, then the default value of 3600s will be "
            "used. AWS places limits on the maximum TTL allowed. See the AWS documentation on the "
            "DurationSeconds parameter for AssumeRole (for assumed\\_role credential types) and "
            "GetFederationToken (for federation\\_token credential types) for more details."
        ),
    )
    aws_polling: Annotated[AWSPollingConfig | None, AsStruct] = Field(
        None,
        description=(
            "Polling configuration for the AWS waiter. Configures the waiter that checks resource state."
        ),
    )

    def aws_access(self) -> AwsAccess:
        """The access settings every AWS client of the build is made from (the one mapping)."""
        role = self.assume_role
        return AwsAccess(
            region=self.region,
            profile=self.profile,
            access_key=self.access_key,
            secret_key=self.secret_key,
            token=self.token,
            endpoint_ec2=self.custom_endpoint_ec2,
            insecure_skip_tls_verify=self.insecure_skip_tls_verify,
            max_retries=self.max_retries,
            shared_credentials_file=self.shared_credentials_file,
            mfa_code=self.mfa_code,
            assume_role=AssumeRole(
                role_arn=role.role_arn,
                duration_seconds=role.duration_seconds,
                external_id=role.external_id,
                policy=role.policy,
                policy_arns=tuple(role.policy_arns),
                session_name=role.session_name,
                tags=tuple(role.tags.items()),
                transitive_tag_keys=tuple(role.transitive_tag_keys),
            ) if role.role_arn else None,
            skip_metadata_api_check=self.skip_metadata_api_check,
            skip_credential_validation=self.skip_credential_validation,
        )

    def polling(self) -> Polling:
        """``aws_polling``, else AWS_POLL_DELAY_SECONDS / AWS_MAX_ATTEMPTS, else Packer's defaults."""
        p = self.aws_polling
        # 0 is unset, as in Packer: the environment or the AWS waiter defaults then apply
        if p is None:
            return Polling.resolve(None, None)
        return Polling.resolve(p.delay_seconds or None, p.max_attempts or None)

    def check_access(self, ctx: CheckContext) -> list[Problem]:
        errs: list[Problem] = []
        if not self.vault_aws_engine.empty() and self.access_key:
            errs.append(
                ctx.problem(
                    "If you have set vault_aws_engine, you must not set the access_key or secret_key.",
                    "vault_aws_engine",
                )
            )
        if bool(self.access_key) != bool(self.secret_key):
            errs.append(
                ctx.problem(
                    "`access_key` and `secret_key` must both be either set or not set.",
                    "access_key" if self.access_key else "secret_key",
                )
            )
        return errs

    def access_warnings(self) -> list[str]:
        return ["skip_metadata_api_check is ignored"] if self.skip_metadata_api_check else []
