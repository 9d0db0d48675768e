"""botocore sessions and clients for every AWS user of the process: the credential chain (static
keys, a profile, a shared credentials file, the environment and instance roles), ``assume_role``
through STS, MFA for a profile's role, endpoints, timeouts, TLS verification, and the client pool.

Builds and ``amibake cleanup`` share the pool's clients (:data:`CLIENTS`), retried by amibake's own
:class:`~amibake.aws.retry.RetryPolicy` (botocore's retries off). The data sources make a detached
client per call (:meth:`ClientPool.detached`): botocore's standard retries, the environment read at
the time of the call.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

import botocore.config
import botocore.session

from amibake.aws.access import AssumeRole, AwsAccess, quiet_insecure_warnings
from amibake.aws.errors import AwsError, translated

_LOADER: list[Any] = []
_LOADER_LOCK = threading.Lock()


def shared_loader() -> Any:
    """One botocore data loader for every build of the run.

    Each botocore session otherwise parses its own copy of the EC2 API model (about 2 MB of JSON,
    23 MiB in memory and 0.1-0.4 s of CPU per build). The models every build needs are loaded once,
    under a lock, before build threads ask for them concurrently; botocore caches them after that.
    """
    import botocore.loaders

    with _LOADER_LOCK:
        if not _LOADER:
            loader = botocore.loaders.create_loader()
            for name in ("service-2", "endpoint-rule-set-1", "waiters-2", "paginators-1"):
                try:
                    loader.load_service_model("ec2", name)
                except Exception:  # a model this botocore does not ship is loaded lazily, if ever
                    pass
            try:
                loader.load_data("partitions")
            except Exception:
                pass
            _LOADER.append(loader)
        return _LOADER[0]


@functools.cache
def known_regions() -> frozenset[str]:
    """The EC2 regions of every partition this botocore knows (its endpoint data, no API call);
    read once per process."""
    session = botocore.session.Session()
    session.register_component("data_loader", shared_loader())
    regions: set[str] = set()
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition))
    return frozenset(regions)


#: a client's (connect, read) timeouts in seconds
CALL_TIMEOUTS = (10.0, 60.0)

#: the message of a build whose credential chain finds nothing
NO_CREDENTIALS = ("no valid credential sources found for the AWS builder: set access_key and "
                  "secret_key, a profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an instance role")


def _new_session(access: AwsAccess) -> Any:
    """A botocore session for ``access``: its profile, region, credentials file, MFA code, and
    whether the instance-metadata provider is in the chain."""
    session = botocore.session.Session(profile=access.profile or None)
    session.register_component("data_loader", shared_loader())
    if access.region:
        # the template's region also serves the STS calls a profile's role makes
        session.set_config_variable("region", access.region)
    if access.shared_credentials_file:
        session.set_config_variable("credentials_file", os.path.expanduser(access.shared_credentials_file))
    resolver = session.get_component("credential_provider")
    if access.skip_metadata_api_check:
        resolver.remove("iam-role")
    if access.mfa_code:
        # a profile's role with mfa_serial asks for a token code: give it the template's
        code = access.mfa_code
        provider = resolver.get_provider("assume-role")
        provider._prompter = lambda _prompt: code
    return session


def _base_credentials(session: Any, access: AwsAccess) -> Any:
    """Explicit keys, else the session's chain (None when it finds nothing)."""
    import botocore.credentials

    if access.access_key:
        return botocore.credentials.Credentials(access.access_key, access.secret_key, access.token or None)
    return session.get_credentials()


def _assumed(session: Any, base: Any, role: AssumeRole, region: str, access: AwsAccess) -> Any:
    """Temporary credentials from STS AssumeRole on top of ``base``, refreshed before they expire;
    assumed at once, so that a wrong role fails before anything exists."""
    import botocore.credentials

    def sts_client(service: str, **kw: Any) -> Any:
        kw.setdefault("region_name", region)
        if access.insecure_skip_tls_verify:
            kw["verify"] = False
            quiet_insecure_warnings()
        return session.create_client(service, **kw)

    args = role.api_args()
    args["RoleSessionName"] = role.session_name or f"packer-{int(time.time() * 1000)}"
    fetcher = botocore.credentials.AssumeRoleCredentialFetcher(
        client_creator=sts_client, source_credentials=base, role_arn=role.role_arn,
        extra_args=args,
    )
    creds = botocore.credentials.DeferredRefreshableCredentials(
        refresh_using=fetcher.fetch_credentials, method="assume-role")
    with translated("AssumeRole"):
        creds.get_frozen_credentials()
    return creds


def _resolved_session(access: AwsAccess, creds: Any) -> Any:
    """A session whose credential chain is exactly ``creds``."""
    import botocore.credentials

    class Resolved(botocore.credentials.CredentialProvider):  # type: ignore[misc]
        METHOD = "amibake"

        def load(self) -> Any:
            return creds

    session = botocore.session.Session(profile=access.profile or None)
    session.register_component("data_loader", shared_loader())
    session.register_component(
        "credential_provider", botocore.credentials.CredentialResolver(providers=[Resolved()]))
    return session


def _client_kwargs(access: AwsAccess, service: str, region: str | None, retries: dict[str, Any],
                   timeouts: tuple[float, float], max_pool_connections: int) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "region_name": region,
        "config": botocore.config.Config(
            retries=retries, max_pool_connections=max_pool_connections,
            connect_timeout=timeouts[0], read_timeout=timeouts[1],
        ),
    }
    endpoint = access.endpoint(service)
    if endpoint:
        kw["endpoint_url"] = endpoint
    if access.insecure_skip_tls_verify:
        kw["verify"] = False
        quiet_insecure_warnings()
    return kw


class ClientPool:
    """The process's botocore sessions and clients, shared by every build of the run.

    botocore clients are thread-safe and each costs 20-60 ms of CPU to make (an SSL context with the
    CA bundle, a credential resolver chain, one Python method per API operation), which 16 parallel
    builds used to pay 16 times over. Builds with the same access settings (profile, keys, endpoint,
    region) share one client; sessions (not thread-safe) are only touched under the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sessions: dict[tuple[object, ...], Any] = {}
        self._clients: dict[tuple[object, ...], Any] = {}
        #: credentials_key -> the credentials every client of those access settings signs with
        self._credentials: dict[tuple[object, ...], Any] = {}

    def client(self, service: str, region: str, access: AwsAccess,
               timeouts: tuple[float, float] = CALL_TIMEOUTS) -> Any:
        """The shared client; ``timeouts`` (connect, read) in seconds (cleanup's are short)."""
        key = (service, region, access.credentials_key(), access.endpoint(service),
               access.insecure_skip_tls_verify, access.max_pool_connections, timeouts)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._create(service, region, access, timeouts)
            return client

    def _session(self, access: AwsAccess) -> Any:
        """The botocore session for ``access`` (its profile, credentials file, MFA, IMDS choice)."""
        key = access.session_key()
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _new_session(access)
        return session

    def credentials(self, access: AwsAccess, region: str) -> Any:
        """The credentials clients for ``access`` sign with: explicit keys, else the session's
        chain; with ``assume_role``, temporary ones from STS AssumeRole on top of those (refreshed
        before they expire)."""
        with self._lock:
            return self._resolve(access, region)

    def _resolve(self, access: AwsAccess, region: str) -> Any:
        key = access.credentials_key()
        creds = self._credentials.get(key)
        if creds is not None:
            return creds
        session = self._session(access)
        base = _base_credentials(session, access)
        if base is None:
            raise AwsError("credentials", "NoCredentialProviders", NO_CREDENTIALS)
        creds = base
        if access.assume_role is not None:
            creds = _assumed(session, base, access.assume_role, region, access)
        self._credentials[key] = creds
        return creds

    def _client_session(self, access: AwsAccess, region: str) -> Any:
        """A session whose credential chain is exactly the credentials resolved for ``access``."""
        key = ("client", access.credentials_key())
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _resolved_session(access, self.credentials(access, region))
        return session

    def _create(self, service: str, region: str, access: AwsAccess, timeouts: tuple[float, float]) -> Any:
        with translated("session"):
            session = self._client_session(access, region)
        kw = _client_kwargs(
            access, service, region,
            {"mode": "standard", "total_max_attempts": 1},  # amibake retries (RetryPolicy)
            timeouts,
            # one pool for every build sharing the client: room for each build's calls
            max(32, access.max_pool_connections),
        )
        with translated("client"):
            return session.create_client(service, **kw)

    def detached(self, service: str, access: AwsAccess, *, attempts: int,
                 timeouts: tuple[float, float] = CALL_TIMEOUTS) -> Any:
        """A client of its own (not pooled) for one data source: the session and the environment as
        they are now, retried by botocore's standard mode (``attempts`` retries after the first).

        The region is ``access.region``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION`` or the
        profile's (:class:`AwsError` ``MissingRegion`` when there is none). Credentials resolve
        lazily, at the first call, unless ``assume_role`` asks for STS now. botocore exceptions
        propagate (the caller maps them to its own error)."""
        session = _new_session(access)
        region = (access.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                  or session.get_config_variable("region"))
        if not region:
            raise AwsError("session", "", "no AWS region: set `region` in the data source, AWS_REGION, "
                           "or a profile's region")
        session.set_config_variable("region", region)
        if access.assume_role is not None:
            base = _base_credentials(session, access)
            if base is None:
                raise AwsError("credentials", "NoCredentialProviders", NO_CREDENTIALS)
            session = _resolved_session(access, _assumed(session, base, access.assume_role, region, access))
        elif access.access_key:
            session.set_credentials(access.access_key, access.secret_key, access.token or None)
        kw = _client_kwargs(access, service, region, {"mode": "standard", "max_attempts": attempts},
                            timeouts, 10)
        return session.create_client(service, **kw)

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()
            self._sessions.clear()
            self._credentials.clear()


#: the clients of this process (builds, data sources and ``amibake cleanup`` share them)
CLIENTS = ClientPool()
