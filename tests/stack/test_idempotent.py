"""Ambiguous create failures: a create call carried out by AWS whose answer was lost (HTTP 500 or a
dropped connection *after* the request was forwarded) is retried without making a second resource.

Every build goes through the recording proxy (tests/awsproxy.py) with ``lose_answer``: moto carries
out the first call of one create action, then the client gets a 500 or nothing. The proxy also
emulates EC2's client-token idempotency (``client_tokens=True``), which moto lacks. Each build must
succeed and leave exactly one of each resource: one AMI per region with its snapshots, one
(terminated) instance, and no temporary key pair, security group, volume, launch template or IAM
role/profile.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.api import BuildEnv
from amibake.errors import BuildError
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.awsproxy import AwsProxy
from tests.endstate import end_state, iam_state, leftovers
from tests.stack.test_ebs_builder import Hooks, RecUi, make_config
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

REGIONS = ("us-east-1", "us-west-2")
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                  "Resource": ["*"]}]}


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


def env(ui: RecUi) -> BuildEnv:
    return BuildEnv(build_name="idem", builder_type="amazon-ebs", template_dir=Path("."), ui=ui,
                    run_id=f"idem-{uuid.uuid4().hex[:8]}")


SPOT = {"spot_price": "auto", "instance_type": "", "spot_instance_types": ["t2.micro"]}

#: (the actions whose first answer is lost, and how; template options that make the build call them).
#: One build loses the first answer of several create calls, each of a different kind: every retry
#: must find (or be answered for) what the lost call made, whatever was lost before it.
CASES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("500", {"CreateKeyPair": "500", "CreateSecurityGroup": "500", "RunInstances": "500",
             "CreateImage": "500", "CopyImage": "500", "CreateRole": "500",
             "AddRoleToInstanceProfile": "500"},
     {"temporary_iam_instance_profile_policy_document": POLICY}),
    ("drop", {"CreateKeyPair": "drop", "CreateSecurityGroup": "drop", "RunInstances": "drop",
              "CreateImage": "drop", "CopyImage": "drop", "CreateTags": "drop",
              "CreateInstanceProfile": "drop"},
     {"temporary_iam_instance_profile_policy_document": POLICY}),
    ("import-key", {"ImportKeyPair": "500"}, {"temporary_key_pair_bits": 2048}),
    ("spot", {"CreateLaunchTemplate": "500", "CreateFleet": "drop"}, SPOT),
]

#: answered from the first attempt's client token when retried
TOKENED = {"RunInstances", "CreateLaunchTemplate", "CreateFleet"}


@pytest.mark.parametrize(("lose", "options"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_lost_answers_make_exactly_one(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch,
    lose: dict[str, str], options: dict[str, Any],
) -> None:
    before = {r: set(s) for r, s in ((r, end_state(moto_env(moto), [r])[r]["snapshots"]) for r in REGIONS)}
    with AwsProxy(moto.url, lose_answer=lose, client_tokens=True) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # IAM goes through the proxy too
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ami_regions=["us-west-2"], **options)
        ui = RecUi()
        artifact = EbsBuilder(config, env(ui)).run(Hooks("true"))
        assert artifact is not None, ui.text
        # the faults happened: moto carried out each call, and the client never got its answer
        assert sorted(r.action for r in proxy.lost) == sorted(lose), [r.action for r in proxy.requests]
        # the AMI and the copy tag their snapshots in the call; a copy's attempts share one token
        for create in proxy.sent("CreateImage") + proxy.sent("CopyImage"):
            assert create.tags("snapshot").get("amibake:run-id", "").startswith("idem-"), create.params
        assert len({r.params.get("ClientToken") for r in proxy.sent("CopyImage")}) == 1
        # the retries that carried the first attempt's client token were answered with its result
        assert sorted(r.action for r in proxy.replayed) == sorted(TOKENED & set(lose))

    state = end_state(moto_env(moto), REGIONS)
    for region in REGIONS:
        images = state[region]["images"]
        assert [i["id"] for i in images] == [artifact.amis[region]], (region, images)
        # every new snapshot is the AMI's (no orphan of a second CreateImage/CopyImage)
        assert set(state[region]["snapshots"]) - before[region] == set(images[0]["snapshots"]), region
    instances = state["us-east-1"]["instances"]
    assert len(instances) == 1 and instances[0]["state"] == "terminated", instances
    assert state["us-west-2"]["instances"] == []
    assert leftovers(state) == {}
    assert iam_state(moto_env(moto)) == {"roles": [], "instance_profiles": []}


def moto_env(moto: MotoServer) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": moto.url}


def test_refused_create_does_not_adopt_another_builds_resource(stack: Stack, moto: MotoServer) -> None:
    """A 500 whose request never ran, and a key pair of the same name that is not this build's (no
    amibake tags): it is neither adopted nor deleted, the build creates nothing and says why."""
    name = f"taken-{uuid.uuid4().hex[:8]}"
    c = boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing")
    c.create_key_pair(KeyName=name)
    with AwsProxy(moto.url, lose_answer={"CreateKeyPair": "refuse"}, client_tokens=True) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, temporary_key_pair_name=name)
        ui = RecUi()
        with pytest.raises(BuildError) as err:
            EbsBuilder(config, env(ui)).run(Hooks("true"))
        assert not proxy.sent("DeleteKeyPair") and not proxy.sent("RunInstances")
        assert [r.status for r in proxy.sent("CreateKeyPair")] == [500]
    assert f"key pair '{name}' already exists and was not made by this build" in str(err.value)
    assert [k["KeyName"] for k in c.describe_key_pairs()["KeyPairs"]] == [name]
