"""The wait for an AMI made by RegisterImage of completed snapshots (amibake-local, amazon-chroot,
amazon-ebssurrogate) is planned with its own prior, not CreateImage's 60-180 s (bench/LOCAL.md: with
CreateImage's prior the local builder saw a ~10 s registration ~50 s late at real-AWS timings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from amibake.plugins.amazon import pollschedule as ps
from amibake.plugins.amazon.ec2 import Ec2Gateway
from tests.unit.test_amazon_gateway_mutants import Gw


def test_the_registered_prior_is_short_and_within_packers_budget() -> None:
    registered, created = ps.prior_for("image_registered", 8), ps.prior_for("image_available", 8)
    assert registered.hi < created.lo  # size-independent: no data is copied
    mine = ps.plan(registered, 15.0, ps.PACKER_ATTEMPTS["image_registered"])
    packer = ps.fixed(15.0, ps.PACKER_ATTEMPTS["image_registered"])
    assert mine[-1] >= packer[-1]  # never gives up before Packer
    # a registration done at 5-30 s is seen within Packer's delay (CreateImage's prior polls sparsely
    # before its 60 s low end: a 10 s registration was seen at about 60 s)
    for x in range(5, 31):
        lag = ps.lag(mine, x)
        assert lag is not None and lag <= 15.0, (x, mine[:6])
    created_plan = ps.plan(created, 15.0, ps.PACKER_ATTEMPTS["image_available"])
    assert (ps.lag(created_plan, 10) or 0) > 30 and (ps.lag(mine, 10) or 99) < 10


@pytest.mark.parametrize("registered, kind", [(True, "image_registered"), (False, "image_available")])
def test_wait_image_available_plans_by_how_the_image_was_made(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    registered: bool, kind: str,
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    g = Gw(moto_url, tmp_path)
    image_id = g.client.register_image(Name=f"reg-{kind}", RootDeviceName="/dev/xvda",
                                       BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                             "Ebs": {"VolumeSize": 8}}])["ImageId"]
    kinds: list[str] = []
    real = Ec2Gateway._planned

    def planned(self: Ec2Gateway, k: str, region: Any, polling: Any) -> Any:
        kinds.append(k)
        return real(self, k, region, polling)

    monkeypatch.setattr(Ec2Gateway, "_planned", planned)
    image = g.gw.wait_image_available(image_id, registered=registered)
    assert image.id == image_id and kinds == [kind]
