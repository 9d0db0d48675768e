"""Waits of several builds on one EC2 client share their Describe calls (issue #16,
plugins/amazon/describe_batch.py), against moto behind the state-delaying proxy.

Four "builds" (four gateways with the same access settings, so the process's one shared client) wait
at the same time for their own instance to run, then for their own AMI. The same four waits run
twice: with batching off (``AMIBAKE_DESCRIBE_BATCH=0``: each wait polls alone, as four separate
builds would) and on. Counted at the proxy: fewer DescribeInstances and DescribeImages calls with
batching, the batched ones carrying several ids through the ``instance-id`` / ``image-id`` filter,
and every wait still seeing its own resource pending, then ready."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

import boto3
import pytest

from amibake.plugins.amazon.access import AwsAccess
from amibake.plugins.amazon.ec2 import Ec2Gateway
from tests.awsproxy import AwsProxy, Request
from tests.stackkit import REGION, MotoServer

#: seconds the proxy shows a new instance pending and a new AMI pending: the waits' short backoff
#: (against a test endpoint) polls at 0, 0.5 and 1.5 s, so each wait needs three polls
PENDING = 1.2
BUILDS = 4
SOURCE_AMI = "ami-785db401"  # one of moto's stock AMIs


def _waits(gateways: list[Ec2Gateway], fn: Any, ids: list[str]) -> list[Any]:
    """Run ``fn(gateway, id)`` for every build at once (one thread each); their results in order."""
    barrier = threading.Barrier(len(ids))
    out: list[Any] = [None] * len(ids)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            out[i] = fn(gateways[i], ids[i])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(ids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


def _ids_of(req: Request, kind: str) -> list[str]:
    return req.values(f"{kind}Id") or req.values("Filter.1.Value")


def _round(moto: MotoServer, monkeypatch: pytest.MonkeyPatch, batching: bool) -> dict[str, list[Request]]:
    """The four builds' instance and AMI waits through a fresh proxy; the Describe requests sent."""
    monkeypatch.setenv("AMIBAKE_DESCRIBE_BATCH", "1" if batching else "0")
    monkeypatch.delenv("AMIBAKE_POLL_SCALE", raising=False)
    delays = {"instance_pending": PENDING, "image_pending": PENDING}
    with AwsProxy(moto.url, delays=delays) as proxy:
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=proxy.url, aws_access_key_id="testing",
                           aws_secret_access_key="testing")
        access = AwsAccess(region=REGION, endpoint_ec2=proxy.url, access_key="testing", secret_key="testing")
        gateways = [Ec2Gateway(access) for _ in range(BUILDS)]
        gateways[0]._client("ec2")  # the shared client made before the clock of the transitions starts
        run = ec2.run_instances(ImageId=SOURCE_AMI, MinCount=BUILDS, MaxCount=BUILDS, InstanceType="t3.micro")
        iids = [i["InstanceId"] for i in run["Instances"]]
        insts = _waits(gateways, lambda gw, iid: gw.wait_instance(iid, ["running"]), iids)
        assert [(i.id, i.state) for i in insts] == [(iid, "running") for iid in iids]
        amis = [ec2.create_image(InstanceId=iid, Name=f"batch-{batching}-{n}")["ImageId"]
                for n, iid in enumerate(iids)]
        images = _waits(gateways, lambda gw, image_id: gw.wait_image_available(image_id), amis)
        assert [(i.id, i.state) for i in images] == [(a, "available") for a in amis]
        sent = {"Instance": proxy.sent("DescribeInstances"), "Image": proxy.sent("DescribeImages")}
        # every wait saw its own resource pending before it was ready (its own transition)
        for kind, rids, pending, ready in (("Instance", iids, "pending", "running"),
                                           ("Image", amis, "pending", "available")):
            for rid in rids:
                seen = [_states_in(r.response, kind).get(rid) for r in sent[kind] if rid in _ids_of(r, kind)]
                states = [s for s in seen if s]
                assert states and states[0] == pending and states[-1] == ready, (rid, states)
        return sent


def _states_in(answer: bytes, kind: str) -> dict[str, str]:
    """id -> state of every instance or image in a Describe answer (as the client got it)."""
    out: dict[str, str] = {}
    for item in ET.fromstring(answer).iter():
        if item.tag.rsplit("}", 1)[-1] != "item":
            continue
        fields = {c.tag.rsplit("}", 1)[-1]: c for c in item}
        if kind == "Instance" and "instanceId" in fields and "instanceState" in fields:
            name = [c.text for c in fields["instanceState"] if c.tag.endswith("name")]
            out[str(fields["instanceId"].text)] = str(name[0] if name else "")
        if kind == "Image" and "imageId" in fields and "imageState" in fields:
            out[str(fields["imageId"].text)] = str(fields["imageState"].text)
    return out


def test_overlapping_waits_on_one_client_share_their_describe_calls(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = _round(moto, monkeypatch, batching=False)
    together = _round(moto, monkeypatch, batching=True)
    for kind in ("Instance", "Image"):
        assert all(len(_ids_of(r, kind)) == 1 and r.values(f"{kind}Id") for r in alone[kind]), kind
        assert len(alone[kind]) >= BUILDS * 2, (kind, len(alone[kind]))  # each wait polled at least twice
        batched = [r for r in together[kind] if len(_ids_of(r, kind)) > 1]
        assert batched, f"no batched Describe{kind}s call"
        for r in batched:  # the filter, never a list of ids (one id not yet visible fails a list)
            assert not r.values(f"{kind}Id") and r.params["Filter.1.Name"] == f"{kind.lower()}-id", r.params
            if kind == "Image":
                assert r.values("Owner") == ["self"], r.params
        assert len(together[kind]) < len(alone[kind]), (kind, len(together[kind]), len(alone[kind]))
