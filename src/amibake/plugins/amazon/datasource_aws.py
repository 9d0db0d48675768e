"""AWS clients for the data sources, from the AWS session layer (:mod:`amibake.aws`).

Credentials: ``access_key``/``secret_key``/``token``, else ``profile``, else botocore's default chain
(environment, shared files; ``shared_credentials_file`` names the credentials file). Region:
``region``, else ``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile's. Calls go to
``custom_endpoint_ec2`` when set (Packer puts it on the session, so the SSM and Secrets Manager data
sources use it too); every service also honours botocore's ``AWS_ENDPOINT_URL`` /
``AWS_ENDPOINT_URL_<SERVICE>``. ``insecure_skip_tls_verify`` turns certificate verification off for
every client of the data source (Packer sets it on the session's HTTP transport). Each client is the
data source's own (:meth:`~amibake.aws.session.ClientPool.detached`), retried by botocore's standard
mode ``max_retries`` times (10 when unset). This module imports botocore: it is imported only when a
data source is executed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from amibake.aws.errors import AwsError
from amibake.aws.errors import translated as aws_translated
from amibake.aws.session import CLIENTS
from amibake.datasources.errors import DatasourceError
from amibake.plugins.amazon.config_access import AccessConfig

T = TypeVar("T")


class AwsCallError(DatasourceError):
    """An AWS call failed; ``code`` is AWS's error code ("" for a transport error)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.aws_message = message
        super().__init__(f"{code}: {message}" if code else message)


def client(access: AccessConfig, service: str) -> Any:
    with translated():
        return CLIENTS.detached(service, access.aws_access(), attempts=max(1, access.max_retries or 10))


@contextmanager
def translated() -> Iterator[None]:
    """botocore's exceptions (and the session layer's :class:`AwsError`) become
    :class:`AwsCallError` (code and AWS's message)."""
    try:
        with aws_translated("datasource"):
            yield
    except AwsError as exc:
        raise AwsCallError(exc.code, exc.aws_message) from exc


def call(fn: Callable[..., T], **params: Any) -> T:
    with translated():
        return fn(**params)
