"""The retry policy of every AWS call amibake retries itself: which failures are transient, which
may have been carried out anyway (:func:`ambiguous`), and how long to wait between attempts."""

from __future__ import annotations

import random
from dataclasses import dataclass

import botocore.exceptions
import botocore.parsers

from amibake.aws.access import AwsAccess

#: error codes that mean "slow down" or "try again": retried with jittered backoff
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "RequestLimitExceeded", "RequestThrottled", "TooManyRequestsException", "SlowDown",
    "BandwidthLimitExceeded", "EC2ThrottledException", "PriorRequestNotComplete",
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "ServerError",
    "RequestTimeout", "RequestTimeoutException", "RequestExpired",
})

#: the transient codes that are throttling (the request was refused, never carried out)
THROTTLING = frozenset(c for c in TRANSIENT_CODES if "hrottl" in c or "Limit" in c or c == "SlowDown")

#: connection failures retried like a 5xx answer
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded, full-jitter exponential backoff for throttling, 5xx and connection errors.

    botocore's own retries are turned off (one attempt per botocore call) so that this policy is the
    only one: its base is much smaller than botocore's standard mode (1 s), which wastes seconds on
    every throttled call, and its attempt count is larger, so that a burst of faults is survived.
    """

    max_attempts: int = 12
    base: float = 0.1
    cap: float = 8.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * (2 ** attempt)))

    @staticmethod
    def transient(exc: BaseException) -> bool:
        if isinstance(exc, botocore.exceptions.ClientError):
            err = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            return str(err.get("Code", "")) in TRANSIENT_CODES or status >= 500 or status == 429
        return isinstance(exc, CONNECTION_ERRORS)


#: Packer's ``max_retries`` when the template leaves it 0 (the AccessConfig's Prepare)
DEFAULT_RETRIES = 10


def retries(access: AwsAccess) -> int:
    """``max_retries``: the retries after a call's first attempt on throttling, 5xx and connection
    errors (aws-sdk-go's MaxRetries, so 1 + max_retries attempts); 0 means Packer's 10."""
    return access.max_retries if access.max_retries > 0 else DEFAULT_RETRIES


def ambiguous(exc: BaseException) -> bool:
    """True when a failed call may still have been carried out by AWS: a 5xx answer (other than
    throttling), a connection dropped after the request went out, a read timeout, or an answer that
    could not be read. A create call that failed so must look for what it may have made before it
    is sent again (throttling and connection failures before sending are not ambiguous)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return status >= 500 and str(err.get("Code", "")) not in THROTTLING
    return isinstance(exc, (
        botocore.exceptions.ConnectionClosedError, botocore.exceptions.ReadTimeoutError,
        botocore.parsers.ResponseParserError,
    ))
