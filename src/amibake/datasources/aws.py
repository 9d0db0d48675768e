"""boto3 clients for the AWS data sources, with the builders' access rules.

Credentials: ``access_key``/``secret_key``/``token``, else ``profile``, else boto3's default chain
(environment, shared files; ``shared_credentials_file`` names the credentials file). Region:
``region``, else ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile's. Calls go to
``custom_endpoint_ec2`` when set (Packer puts it on the session, so the SSM and Secrets Manager data
sources use it too); every service also honours boto3's ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_<SERVICE>``. ``insecure_skip_tls_verify`` turns certificate verification off for
every client of the data source (Packer sets it on the session's HTTP transport). This module
imports boto3: it is imported only when a data source is executed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import botocore.session

from amibake.builders.amazon.access import TLS_HINT, quiet_insecure_warnings
from amibake.builders.amazon.config_access import AccessConfig
from amibake.datasources.errors import DatasourceError

T = TypeVar("T")


class AwsCallError(DatasourceError):
    """An AWS call failed; ``code`` is AWS's error code ("" for a transport error)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.aws_message = message
        super().__init__(f"{code}: {message}" if code else message)


def client(access: AccessConfig, service: str) -> Any:
    kwargs: dict[str, Any] = {}
    if access.profile:
        kwargs["profile_name"] = access.profile
    if access.access_key:
        kwargs["aws_access_key_id"] = access.access_key
        kwargs["aws_secret_access_key"] = access.secret_key
        if access.token:
            kwargs["aws_session_token"] = access.token
    region = access.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    with translated():
        core = botocore.session.Session()
        if access.shared_credentials_file:
            core.set_config_variable("credentials_file", os.path.expanduser(access.shared_credentials_file))
        session = boto3.session.Session(region_name=region, botocore_session=core, **kwargs)
        cfg = botocore.config.Config(
            retries={"mode": "standard", "max_attempts": max(1, access.max_retries or 10)},
            connect_timeout=10,
            read_timeout=60,
        )
        kw: dict[str, Any] = {"config": cfg}
        # Packer sets it on the session (aws-sdk-go v1): every client of a data source uses it
        if access.custom_endpoint_ec2:
            kw["endpoint_url"] = access.custom_endpoint_ec2
        if access.insecure_skip_tls_verify:
            kw["verify"] = False
            quiet_insecure_warnings()
        if session.region_name is None:
            raise AwsCallError(
                "", "no AWS region: set `region` in the data source, AWS_REGION, or a profile's region"
            )
        return session.client(service, **kw)


@contextmanager
def translated() -> Iterator[None]:
    """botocore's exceptions become :class:`AwsCallError` (code and AWS's message)."""
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        raise AwsCallError(str(err.get("Code", "")), str(err.get("Message", exc))) from exc
    except botocore.exceptions.SSLError as exc:
        raise AwsCallError("", f"{exc}; {TLS_HINT}") from exc
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsCallError("", f"no AWS credentials found ({exc})") from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsCallError("", str(exc)) from exc


def call(fn: Callable[..., T], **params: Any) -> T:
    with translated():
        return fn(**params)
