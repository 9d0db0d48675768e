"""How a build reaches AWS: the access settings derived from a template's access options.

This module is light (no botocore import), so configs can compute an :class:`AwsAccess` during
``validate``; :mod:`amibake.builders.amazon.ec2` turns one into sessions and clients. The options
follow packer-plugin-amazon's ``AccessConfig`` (``builder/common/access_config.go``): static keys,
a profile, a shared credentials file, an MFA code for a profile's role, and an ``assume_role`` block
(STS AssumeRole on top of whichever credentials the rest resolve to).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
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

    def session_key(self) -> tuple[object, ...]:
        """What distinguishes one botocore session (credential resolution) from another."""
        return (self.profile, self.shared_credentials_file, self.mfa_code, self.skip_metadata_api_check)

    def credentials_key(self) -> tuple[object, ...]:
        return (*self.session_key(), self.access_key, self.secret_key, self.token, self.assume_role)


@dataclass(frozen=True)
class Polling:
    """How long waits last: ``aws_polling`` in the template, else AWS_POLL_DELAY_SECONDS etc."""

    delay: float = 15.0
    max_attempts: int = 40
    first_delay: float = 0.5
    #: set by the template (``aws_polling``) or the environment; else the AMI and snapshot waits
    #: last 30 minutes, as Packer's (``LONG_ATTEMPTS``), and the others 10
    overridden: bool = False

    #: Packer's WaitUntilAMIAvailable / WaitUntilSnapshotDone without overrides: 120 x 15 s
    LONG_ATTEMPTS = 120

    @classmethod
    def resolve(
        cls,
        delay_seconds: float | None,
        max_attempts: int | None,
        environ: Mapping[str, str] | None = None,
    ) -> Polling:
        env = os.environ if environ is None else environ
        delay = delay_seconds
        attempts = max_attempts
        if delay is None and env.get("AWS_POLL_DELAY_SECONDS", "").strip():
            delay = float(env["AWS_POLL_DELAY_SECONDS"])
        if attempts is None and env.get("AWS_MAX_ATTEMPTS", "").strip():
            attempts = int(env["AWS_MAX_ATTEMPTS"])
        if attempts is None and env.get("AWS_TIMEOUT_SECONDS", "").strip():
            # deprecated knob: turned into attempts, as Packer does
            d = delay if delay is not None else cls.delay
            attempts = max(1, int(float(env["AWS_TIMEOUT_SECONDS"]) / max(d, 1.0)))
        return cls(
            delay=cls.delay if delay is None else max(0.0, float(delay)),
            max_attempts=cls.max_attempts if attempts is None or attempts <= 0 else int(attempts),
            overridden=delay is not None or (attempts is not None and attempts > 0),
        )

    def long(self) -> Polling:
        """For the AMI and snapshot waits: 30 minutes unless the template or environment says."""
        if self.overridden or self.max_attempts >= self.LONG_ATTEMPTS:
            return self
        return dataclasses.replace(self, max_attempts=self.LONG_ATTEMPTS)

    def delays(self) -> Iterator[float]:
        """The sleeps between polls: 0.5 s doubling to ``delay`` (the first poll is immediate)."""
        d = min(self.first_delay, self.delay)
        while True:
            yield d
            d = min(d * 2, self.delay)

    @property
    def budget(self) -> float:
        return max(self.delay * self.max_attempts, self.first_delay * self.max_attempts)
