"""How long the amazon builders' waits last (:class:`Polling`), and the access settings of the AWS
session layer (:mod:`amibake.aws.access`), re-exported for the configs.

This module is light (no botocore import), so configs can compute an :class:`AwsAccess` and a
:class:`Polling` during ``validate``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from amibake.aws.access import TLS_HINT, AssumeRole, AwsAccess, quiet_insecure_warnings

__all__ = ["TLS_HINT", "AssumeRole", "AwsAccess", "Polling", "quiet_insecure_warnings"]


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
