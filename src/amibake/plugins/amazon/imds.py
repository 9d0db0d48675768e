"""The EC2 instance metadata service, as boto3 reaches it: which instance amibake runs on.

IMDSv2 first (a session token from ``PUT /latest/api/token``), IMDSv1 when the service answers the
token request with 403, 404 or 405 (botocore's fallback). The endpoint is
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` when set, else the IPv4 or IPv6 address that
``AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`` names; ``AWS_EC2_METADATA_DISABLED=true`` turns it off.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Mapping

from amibake.errors import BuildError

IPV4_ENDPOINT = "http://169.254.169.254/"
IPV6_ENDPOINT = "http://[fd00:ec2::254]/"
TOKEN_TTL_SECONDS = 21600
#: botocore's defaults: one attempt, one second
TIMEOUT_SECONDS = 1.0
ATTEMPTS = 1


class MetadataError(BuildError):
    """The instance metadata service could not be reached or did not answer."""


def endpoint(env: Mapping[str, str] | None = None) -> str:
    """The metadata service's base URL (ending in ``/``), as botocore chooses it."""
    env = os.environ if env is None else env
    url = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "")
    if url:
        return url if url.endswith("/") else url + "/"
    mode = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "ipv4").lower()
    if mode == "ipv6":
        return IPV6_ENDPOINT
    if mode != "ipv4":
        raise MetadataError(f"AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE must be ipv4 or ipv6, not {mode!r}")
    return IPV4_ENDPOINT


class MetadataClient:
    def __init__(self, env: Mapping[str, str] | None = None, *, timeout: float = TIMEOUT_SECONDS,
                 attempts: int = ATTEMPTS) -> None:
        self.env = os.environ if env is None else env
        self.base = endpoint(self.env)
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self._token: str | None = None
        self._token_tried = False

    def _open(self, req: urllib.request.Request) -> bytes:
        last: Exception | None = None
        for _ in range(self.attempts):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return bytes(resp.read())
            except urllib.error.HTTPError:
                raise
            except (urllib.error.URLError, OSError) as exc:
                last = exc
        raise MetadataError(f"the instance metadata service at {self.base} did not answer: "
                            f"{getattr(last, 'reason', last)}")

    def token(self) -> str | None:
        """An IMDSv2 session token, or None where the service takes IMDSv1 requests only."""
        if self._token_tried:
            return self._token
        req = urllib.request.Request(self.base + "latest/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
        try:
            self._token = self._open(req).decode()
        except urllib.error.HTTPError as exc:
            if exc.code not in (403, 404, 405):
                raise MetadataError(f"the instance metadata service refused a session token: "
                                    f"HTTP {exc.code}") from exc
            if self.env.get("AWS_EC2_METADATA_V1_DISABLED", "").lower() == "true":
                raise MetadataError("the instance metadata service gave no session token (HTTP "
                                    f"{exc.code}) and AWS_EC2_METADATA_V1_DISABLED is set") from exc
            self._token = None
        self._token_tried = True
        return self._token

    def get(self, path: str) -> str:
        """``GET /latest/meta-data/<path>``."""
        if self.env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
            raise MetadataError("the instance metadata service is disabled (AWS_EC2_METADATA_DISABLED)")
        token = self.token()
        headers = {"X-aws-ec2-metadata-token": token} if token else {}
        req = urllib.request.Request(self.base + "latest/meta-data/" + path, headers=headers)
        try:
            return self._open(req).decode().strip()
        except urllib.error.HTTPError as exc:
            raise MetadataError(f"the instance metadata service has no {path}: HTTP {exc.code}") from exc

    def instance_id(self) -> str:
        return self.get("instance-id")
