"""Which failed calls may have been carried out by AWS (a create call must look before retrying)."""

from __future__ import annotations

import botocore.exceptions
import pytest

from amibake.plugins.amazon.access import AwsAccess
from amibake.plugins.amazon.ec2 import OWNER_TAGS, Ec2Gateway, NotOurs, ambiguous


def client_error(status: int, code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "CreateImage")


@pytest.mark.parametrize(("exc", "expected"), [
    (client_error(500, "InternalError"), True),
    (client_error(503, "Unavailable"), True),
    (client_error(503, "RequestLimitExceeded"), False),  # throttled: not carried out
    (client_error(400, "Throttling"), False),
    (client_error(400, "InvalidParameterValue"), False),
    (botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"), True),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), True),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), False),  # never sent
    (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), False),
])
def test_ambiguous(exc: BaseException, expected: bool) -> None:
    assert ambiguous(exc) is expected


def test_only_this_builds_resource_is_adopted() -> None:
    gw = Ec2Gateway(AwsAccess(region="us-east-1"))
    sent = {"amibake:run-id": "r1", "amibake:build": "b", "amibake:created": "t", "Name": "n"}
    gw._owned("key pair 'k'", {"amibake:run-id": "r1", "amibake:build": "b"}, sent)
    for found in ({}, {"amibake:run-id": "r2", "amibake:build": "b"}, {"amibake:run-id": "r1"}):
        with pytest.raises(NotOurs, match="already exists and was not made by this build"):
            gw._owned("key pair 'k'", found, sent)
    # a create call that sent no amibake tags can never prove a resource is its own
    with pytest.raises(NotOurs):
        gw._owned("key pair 'k'", {"amibake:run-id": "r1", "amibake:build": "b"}, {"Name": "n"})
    assert OWNER_TAGS == ("amibake:run-id", "amibake:build")
