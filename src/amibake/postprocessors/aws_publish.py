"""What the publishing post-processors (``amibake-ssm-parameter``, ``amibake-launch-template``) share:
the AMI ids of the artifact, AWS calls through the session layer, and publishing region by region
with undo.

"Undone only if the build fails before they complete": a publishing post-processor is all its
regions or none. When a region fails, or the build is interrupted (Ctrl-C, a cancelled build)
before the last region is done, what was already published is undone, newest first, and the build
fails. Once every region is done, the publication stays whatever happens later in the build (a
later post-processor failing leaves the AMIs and what points at them in place). A SIGKILL in the
middle of publishing is not undone (``amibake cleanup`` does not know these publications).

Credentials, endpoint and retries are those of ``amibake cleanup``: the environment's (profile,
``AWS_*`` variables, instance role), through :data:`~amibake.aws.session.CLIENTS`, retried by
:class:`~amibake.aws.retry.RetryPolicy`; errors are :class:`~amibake.aws.errors.AwsError`.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from amibake.api import Artifact, BuildEnv
from amibake.errors import BuildError

T = TypeVar("T")

_PAIR = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+):(ami-[0-9a-zA-Z]+)$")


def amis_of(artifact: Artifact, who: str) -> dict[str, str]:
    """region -> AMI id, from an artifact id such as ``us-east-1:ami-1,us-west-2:ami-2``."""
    out: dict[str, str] = {}
    for part in (artifact.id or "").split(","):
        m = _PAIR.match(part.strip())
        if m:
            out[m.group(1)] = m.group(2)
    if not out:
        raise BuildError(f"{who}: the artifact holds no AMI (its id is {artifact.id!r}, from "
                         f"{artifact.builder_id}); put this post-processor after an amazon builder's "
                         "artifact")
    return out


def chosen_regions(amis: dict[str, str], regions: Sequence[str], who: str) -> list[str]:
    """The artifact's regions, or the configured ones (each must be one of them)."""
    if not regions:
        return sorted(amis)
    missing = [r for r in regions if r not in amis]
    if missing:
        raise BuildError(f"{who}: regions: {', '.join(missing)} not among the artifact's regions "
                         f"({', '.join(sorted(amis))})")
    return list(dict.fromkeys(regions))


class Aws:
    """One retried call at a time, through the session layer's shared clients."""

    def __init__(self) -> None:
        from amibake.aws.retry import RetryPolicy, retries

        self._policy = RetryPolicy(max_attempts=1 + retries(self._access("us-east-1")))
        self._rng = random.Random()

    @staticmethod
    def _access(region: str) -> Any:
        from amibake.aws.access import AwsAccess

        return AwsAccess(region=region)

    def call(self, service: str, op: str, region: str, **params: Any) -> Any:
        from amibake.aws.errors import translated
        from amibake.aws.retry import RetryPolicy
        from amibake.aws.session import CLIENTS

        fn = getattr(CLIENTS.client(service, region, self._access(region)), op)
        attempt = 0
        while True:
            try:
                return fn(**params)
            except Exception as exc:
                attempt += 1
                if not RetryPolicy.transient(exc) or attempt >= self._policy.max_attempts:
                    with translated(op):
                        raise
            time.sleep(self._policy.backoff(attempt, self._rng))


def publish(env: BuildEnv, who: str, regions: Sequence[str], do: Callable[[str], T],
            undo: Callable[[str, T], None]) -> list[T]:
    """``do`` in each region, in order; when one fails or the build is cancelled before the last is
    done, ``undo`` what was done (newest first) and fail the build."""
    done: list[tuple[str, T]] = []
    current = ""
    try:
        for current in regions:
            if env.cancel.is_set():
                raise BuildError("the build was interrupted")
            done.append((current, do(current)))
    except Exception as exc:
        problems = []
        for region, state in reversed(done):
            try:
                undo(region, state)
                env.ui.message(f"{who}: undone in {region}")
            except Exception as undo_exc:  # reported; the other regions are still undone
                problems.append(f"{region}: {undo_exc}")
                env.ui.error(f"{who}: could not undo in {region}: {undo_exc}")
        where = ", ".join(r for r, _ in done)
        after = (f"; what was published in {where} could not all be undone: {'; '.join(problems)}" if problems
                 else f"; what was published in {where} was undone" if done else "")
        raise BuildError(f"{who}: {current}: {exc}{after}") from exc
    return [state for _, state in done]
