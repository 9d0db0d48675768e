"""The EC2 gateway's foundation: its state, the run journal's records of what it creates, and
:meth:`GatewayBase._call` (one API call through the shared clients, retried, with adoption of what an
attempt whose answer was lost made). :class:`~amibake.plugins.amazon.ec2.Ec2Gateway` builds on it."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import botocore.exceptions
import botocore.parsers

from amibake.aws.access import AwsAccess
from amibake.aws.errors import AwsError
from amibake.aws.errors import translated as _translated
from amibake.aws.retry import (
    RetryPolicy,
    ambiguous,
    retries,
)
from amibake.aws.session import CLIENTS
from amibake.errors import BuildError
from amibake.journal import BuildJournal
from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.records import Tags
from amibake.steps.context import JournalUnwritable

log = logging.getLogger("amibake.aws")


#: the tags that make a resource found by name this build's own (``amibake:*`` as sent)
OWNER_TAGS = ("amibake:run-id", "amibake:build")


class NotOurs(BuildError):
    """A create call's resource already exists, but this build did not make it."""


class GatewayBase:
    """What every family of the gateway's calls shares: access, polling, journal, retry policy."""

    def __init__(
        self,
        access: AwsAccess,
        polling: Polling | None = None,
        *,
        journal: BuildJournal | None = None,
        pause: Callable[[str], None] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.access = access
        self.region = access.region
        self.polling = polling or Polling()
        #: where every create is recorded before and after the call (None: not recorded)
        self.journal = journal
        #: called with a point name after each create call and inside each wait (AMIBAKE_PAUSE_AT)
        self._pause = pause or (lambda point: None)
        self.retry = retry or RetryPolicy(max_attempts=1 + retries(access))
        self._rng = random.Random()
        #: what could not be written to the journal (each write that failed, in order)
        self.journal_errors: list[str] = []
        #: told of each journal write that failed (the step context: the build stops after the step)
        self.on_journal_error: Callable[[str], None] | None = None

    def cleanup_hint(self) -> str:
        run = self.journal.run_id if self.journal else ""
        return f"amibake cleanup --run {run}" if run else "amibake cleanup"

    def _journal_problem(self, what: str, exc: BaseException) -> str:
        path = getattr(getattr(self.journal, "journal", None), "path", "")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if "run journal" in reason:  # the journal's own error names the file already
            problem = f"{reason} ({what} not recorded)"
        else:
            problem = f"cannot write the run journal {path}: {reason} ({what} not recorded)"
        self.journal_errors.append(problem)
        log.debug("%s", problem)
        if self.on_journal_error is not None:
            self.on_journal_error(problem)
        return problem

    def _intent(self, kind: str, region: str | None, **detail: Any) -> None:
        """Record what is about to be created; a journal that cannot record it stops the create
        (nothing is created that the journal does not know about)."""
        if self.journal is None:
            return
        if self.journal_errors:
            raise JournalUnwritable(f"{self.journal_errors[0]}; no {kind} is created after that")
        try:
            self.journal.intent(kind, self.region if region is None else region, **detail)
        except Exception as exc:
            problem = self._journal_problem(f"the intent to create the {kind}", exc)
            raise JournalUnwritable(f"{problem}; no {kind} was created") from None

    def _created(self, kind: str, region: str | None, rid: str, **detail: Any) -> None:
        """Record what a create call made. The resource exists whatever the journal says: a failed
        write is noted (the build stops after this step) and the caller goes on to register its undo."""
        if self.journal is None:
            return
        try:
            self.journal.created(kind, self.region if region is None else region, rid, **detail)
        except Exception as exc:
            self._journal_problem(f"{kind} {rid} created", exc)

    def _removed(self, kind: str, region: str | None, rid: str) -> None:
        """Record a removal; a failed write is noted, never stops the undo it follows."""
        if self.journal is None:
            return
        try:
            self.journal.removed(kind, self.region if region is None else region, rid)
        except Exception as exc:
            self._journal_problem(f"{kind} {rid} removed", exc)

    def _owned(self, what: str, found: Mapping[str, str], sent: Tags | None) -> None:
        """Raise :class:`NotOurs` unless ``found`` carries the build's own tags of ``sent``."""
        own = {k: v for k, v in (sent or {}).items() if k in OWNER_TAGS}
        if len(own) == len(OWNER_TAGS) and all(found.get(k) == v for k, v in own.items()):
            return
        have = ", ".join(f"{k}={found[k]}" for k in OWNER_TAGS if k in found) or "no amibake tags"
        raise NotOurs(
            f"{what} already exists and was not made by this build ({have}): amibake does not adopt "
            "or remove it; use another name, or remove it if it is a leftover"
        )

    # -- clients --------------------------------------------------------------------------

    def _client(self, service: str, region: str | None = None) -> Any:
        return CLIENTS.client(service, region or self.region, self.access)

    def _call(
        self,
        op: str,
        region: str | None = None,
        service: str = "ec2",
        *,
        retry_codes: Sequence[str] = (),
        adopt: Callable[[], Any] | None = None,
        duplicate_codes: Sequence[str] = (),
        **params: Any,
    ) -> Any:
        """One API call, retried on throttling, 5xx and connection errors (and ``retry_codes``:
        the eventual-consistency errors that follow a create) with bounded jittered backoff.

        For a create call with no client token, ``adopt`` looks up what an attempt may have made
        (by name, checking the build's own tags): after an ambiguous failure (:func:`ambiguous`) it
        is asked before the call is sent again, and its answer (the create call's answer, made up
        from what was found) is returned instead; None means nothing is there. A ``duplicate_codes``
        error after an ambiguous failure is the first attempt's resource: looked up again (it may not
        be visible yet) and adopted."""
        client = self._client(service, region)
        fn = getattr(client, op)
        attempt = 0
        lost = False  # an earlier attempt may have been carried out
        while True:
            try:
                with _translated(op):
                    try:
                        return fn(**params)
                    except botocore.exceptions.ClientError as exc:
                        code = str(exc.response.get("Error", {}).get("Code", ""))
                        duplicate = lost and adopt is not None and code in duplicate_codes
                        if not (duplicate or RetryPolicy.transient(exc) or code in retry_codes):
                            raise
                        failure: BaseException = exc
                    except (botocore.exceptions.EndpointConnectionError,
                            botocore.parsers.ResponseParserError,
                            botocore.exceptions.ConnectionClosedError,
                            botocore.exceptions.ReadTimeoutError,
                            botocore.exceptions.ConnectTimeoutError) as exc:
                        failure = exc
                    if adopt is not None and (lost or ambiguous(failure)):
                        lost = True
                        found = adopt()
                        if found is not None:
                            log.debug("%s (%s): adopted what an attempt whose answer was lost made",
                                      op, region or self.region)
                            return found
                    attempt += 1
                    if attempt >= self.retry.max_attempts:
                        raise failure
            except AwsError:
                raise
            pause = self.retry.backoff(attempt, self._rng)
            log.debug("%s (%s): %s; retry %d of %d in %.2fs", op, region or self.region, failure,
                      attempt, self.retry.max_attempts - 1, pause)
            time.sleep(pause)
