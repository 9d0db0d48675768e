"""botocore's exceptions, mapped once to AWS's error code and message.

Every AWS user raises its own error type from the same mapping: the builders and ``amibake
cleanup`` :class:`AwsError` (through :func:`translated`), the data sources their ``AwsCallError``
(through :func:`error_parts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions
import botocore.parsers

from amibake.aws.access import TLS_HINT
from amibake.errors import BuildError


class AwsError(BuildError):
    """An AWS API call failed. ``code`` is AWS's error code (``InvalidAMIID.NotFound``...)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.aws_message = message
        super().__init__(f"{code}: {message}" if code else message)


def error_parts(exc: BaseException) -> tuple[str, str] | None:
    """(AWS's error code, its message) for a failed botocore call; the code is "" for a failure
    with no answer from AWS (connection, timeout, TLS, credentials, an unreadable answer). None
    when ``exc`` is not botocore's."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return str(err.get("Code", "")), str(err.get("Message", exc))
    if isinstance(exc, botocore.exceptions.SSLError):
        return "", f"{exc}; {TLS_HINT}"
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "", f"no AWS credentials found ({exc})"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return "", str(exc)
    if isinstance(exc, botocore.parsers.ResponseParserError):
        return "", f"unreadable answer from AWS: {str(exc)[:300]}"
    return None


@contextmanager
def translated(operation: str) -> Iterator[None]:
    """botocore's exceptions raised inside become :class:`AwsError` (``operation``, code, message)."""
    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
            botocore.parsers.ResponseParserError) as exc:
        code, message = error_parts(exc) or ("", str(exc))
        raise AwsError(operation, code, message) from exc
