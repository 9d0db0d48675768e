"""How long waits last: Packer's AWSPollingConfig. Without ``aws_polling`` or AWS_POLL_DELAY_SECONDS /
AWS_MAX_ATTEMPTS, the AMI wait lasts 120 attempts x 15 s (Packer: "the aws default of ten minutes
doesn't work for some of our long-running copies"), the others the SDK's 40; with any override,
every wait uses the overrides."""

from __future__ import annotations

import dataclasses
import time

import pytest

from amibake.plugins.amazon.access import AwsAccess, Polling
from amibake.plugins.amazon.ec2 import Ec2Gateway, Image, WaitTimeout


def test_defaults_are_packers() -> None:
    p = Polling.resolve(None, None, environ={})
    assert (p.delay, p.max_attempts, p.overridden) == (15.0, 40, False)
    assert p.budget == 600
    assert (p.long().max_attempts, p.long().budget) == (120, 1800)


@pytest.mark.parametrize(("delay", "attempts", "environ", "expected"), [
    (None, None, {"AWS_MAX_ATTEMPTS": "5"}, (15.0, 5)),
    (None, None, {"AWS_POLL_DELAY_SECONDS": "2"}, (2.0, 40)),
    (3, None, {}, (3.0, 40)),
    (None, 7, {}, (15.0, 7)),
])
def test_any_override_applies_to_the_ami_wait_too(
    delay: float | None, attempts: int | None, environ: dict[str, str], expected: tuple[float, int]
) -> None:
    p = Polling.resolve(delay, attempts, environ=environ)
    assert p.overridden
    assert (p.delay, p.max_attempts) == expected
    assert p.long() == p


def _gateway(polling: Polling, pending_for: float) -> Ec2Gateway:
    """A gateway whose AMI is pending for ``pending_for`` seconds (DescribeImages answered here)."""
    gw = Ec2Gateway(AwsAccess(region="us-east-1"), polling)
    until = time.monotonic() + pending_for

    def describe_images(**kw: object) -> list[Image]:
        state = "pending" if time.monotonic() < until else "available"
        return [Image(id="ami-1", name="n", state=state)]

    gw.describe_images = describe_images  # type: ignore[method-assign]
    return gw


def test_the_ami_wait_outlasts_the_others_without_overrides() -> None:
    # a short clock: 10 attempts 0.05 s apart is 0.5 s; the AMI wait's 120 attempts, 6 s
    short = Polling(delay=0.05, max_attempts=10, first_delay=0.05)
    gw = _gateway(short, pending_for=1.0)
    with pytest.raises(WaitTimeout, match="10 attempts"):
        gw.wait("the AMI as any other wait", lambda: (gw.describe_images()[0].state == "available", "x"))
    gw = _gateway(short, pending_for=1.0)
    assert gw.wait_image_available("ami-1").state == "available"
    # with an override, the AMI wait keeps it: it gives up as the others do
    gw = _gateway(dataclasses.replace(short, overridden=True), pending_for=1.0)
    with pytest.raises(WaitTimeout, match="10 attempts"):
        gw.wait_image_available("ami-1")
