"""How amibake reaches AWS: the access settings derived from a template's access options.

This module is light (no botocore import), so configs can compute an :class:`AwsAccess` during
``validate``; :mod:`amibake.aws.session` turns one into sessions and clients. The options follow
packer-plugin-amazon's ``AccessConfig`` (``builder/common/access_config.go``): static keys, a
profile, a shared credentials file, an MFA code for a profile's role, and an ``assume_role`` block
(STS AssumeRole on top of whichever credentials the rest resolve to).
"""

from __future__ import annotations

from dataclasses import dataclass

#: what follows a certificate the client refused, in errors (builders and data sources)
TLS_HINT = ("the endpoint's TLS certificate is not trusted: trust its CA (AWS_CA_BUNDLE) or, for a "
            "test endpoint, set insecure_skip_tls_verify = true")


def quiet_insecure_warnings() -> None:
    """``insecure_skip_tls_verify`` is the template's explicit choice: urllib3's per-request
    InsecureRequestWarning (a Python warning naming a site-packages file) is not printed for it."""
    import warnings

    import urllib3.exceptions

    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)


@dataclass(frozen=True)
class AssumeRole:
    """STS AssumeRole parameters (``assume_role { ... }``)."""

    role_arn: str
    duration_seconds: int = 0
    external_id: str = ""
    policy: str = ""
    policy_arns: tuple[str, ...] = ()
    session_name: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    transitive_tag_keys: tuple[str, ...] = ()

    def api_args(self) -> dict[str, object]:
        """The AssumeRole request parameters other than the role ARN and session name."""
        args: dict[str, object] = {}
        if self.duration_seconds:
            args["DurationSeconds"] = self.duration_seconds
        if self.external_id:
            args["ExternalId"] = self.external_id
        if self.policy:
            args["Policy"] = self.policy
        if self.policy_arns:
            args["PolicyArns"] = [{"arn": a} for a in self.policy_arns]
        if self.tags:
            args["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags]
        if self.transitive_tag_keys:
            args["TransitiveTagKeys"] = list(self.transitive_tag_keys)
        return args


@dataclass(frozen=True)
class AwsAccess:
    region: str
    profile: str = ""
    access_key: str = ""
    secret_key: str = ""
    token: str = ""
    endpoint_ec2: str = ""
    endpoint_iam: str = ""
    insecure_skip_tls_verify: bool = False
    max_retries: int = 0
    max_pool_connections: int = 20
    #: a credentials file read instead of ``~/.aws/credentials`` (``shared_credentials_file``)
    shared_credentials_file: str = ""
    #: the MFA token code given to a profile's ``mfa_serial`` role assumption (``mfa_code``)
    mfa_code: str = ""
    assume_role: AssumeRole | None = None
    #: leave the EC2 instance-metadata credential provider out of the chain
    skip_metadata_api_check: bool = False
    #: do not resolve the credentials before the first API call (``skip_credential_validation``)
    skip_credential_validation: bool = True

    @property
    def iam_endpoint(self) -> str:
        """IAM's endpoint: ``custom_endpoint_ec2`` serves the whole session, as in Packer."""
        return self.endpoint_iam or self.endpoint_ec2

    def endpoint(self, service: str) -> str:
        """The endpoint the template gives ``service``: ``custom_endpoint_ec2`` serves every service
        of the session (Packer sets it on the aws-sdk-go session), IAM's own when set; "" leaves it
        to botocore (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``, else AWS's)."""
        return self.iam_endpoint if service == "iam" else self.endpoint_ec2

    def session_key(self) -> tuple[object, ...]:
        """What distinguishes one botocore session (credential resolution) from another."""
        return (self.profile, self.shared_credentials_file, self.mfa_code, self.skip_metadata_api_check)

    def credentials_key(self) -> tuple[object, ...]:
        return (*self.session_key(), self.access_key, self.secret_key, self.token, self.assume_role)
