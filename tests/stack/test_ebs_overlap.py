"""amazon-ebs overlaps what can overlap (issue #16 part 3), seen in the requests it sends.

Builds go through the recording proxy (tests/awsproxy.py), which keeps the requests in the order
their answers went out. The proxy holds every AMI (the build region's and each copy) ``pending``
for ``IMAGE_PENDING`` seconds after its CreateImage / CopyImage, so the copies wait while the
temporaries can already go. The assertions are on the order of requests, never on durations.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest

from amibake.api import BuildEnv
from amibake.errors import BuildError
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.awsproxy import AwsProxy, Request
from tests.endstate import end_state, iam_state, leftovers
from tests.stack.test_ebs_builder import Hooks, RecUi, make_config, tags
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

COPY_REGIONS = ("us-west-2", "eu-west-1")
REGIONS = ("us-east-1", *COPY_REGIONS)
#: how long the proxy holds each AMI pending: the temporaries' cleanup (a handful of loopback calls)
#: must fit in it many times over
IMAGE_PENDING = 4.0
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                  "Resource": ["*"]}]}
#: the calls of the preparation steps (source AMI, key pair, security group, IAM profile)
PREP = ("CreateKeyPair", "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "CreateInstanceProfile",
        "CreateRole", "PutRolePolicy", "AddRoleToInstanceProfile")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


def env(ui: RecUi, *, debug: bool = False) -> BuildEnv:
    return BuildEnv(build_name="overlap", builder_type="amazon-ebs", template_dir=Path("."), ui=ui,
                    run_id=f"ovl-{uuid.uuid4().hex[:8]}", debug=debug)


def first_available(requests: list[Request], region: str, ami: str) -> int:
    """The index of the first DescribeImages answer that showed ``ami`` available in ``region``."""
    for i, r in enumerate(requests):
        if (r.action == "DescribeImages" and r.region == region and ami.encode() in r.response
                and b"<imageState>available</imageState>" in r.response):
            return i
    raise AssertionError(f"no DescribeImages showed {ami} available in {region}")


def index_of(requests: list[Request], action: str, region: str = "us-east-1") -> int:
    found = [i for i, r in enumerate(requests) if r.action == action and (not r.region or r.region == region)]
    assert len(found) == 1, (action, [(r.action, r.region) for r in requests])
    return found[0]


def test_copies_overlap_cleanup_and_sharing(stack: Stack, moto: MotoServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with AwsProxy(moto.url, delays={"image_pending": IMAGE_PENDING}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # IAM goes through the proxy too
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, ami_regions=list(COPY_REGIONS), ami_users=["123456789012"],
            temporary_iam_instance_profile_policy_document=POLICY,
        )
        ui = RecUi()
        artifact = EbsBuilder(config, env(ui)).run(Hooks("true"))
        assert artifact is not None, ui.text
        reqs = list(proxy.requests)
    actions = [r.action for r in reqs]
    run = actions.index("RunInstances")
    # (1) every preparation call, and the source AMI's lookup, came before the launch
    for action in PREP:
        assert action in actions[:run], action
        assert action not in actions[run:], action
    source = config.source_ami
    assert [r for r in reqs[:run] if r.action == "DescribeImages" and r.params.get("ImageId.1") == source]
    # (2) the temporaries went while the copies were still pending: before the last copy read available
    last_copy = max(first_available(reqs, r, artifact.amis[r]) for r in COPY_REGIONS)
    copies = [i for i, a in enumerate(actions) if a == "CopyImage"]
    assert len(copies) == len(COPY_REGIONS)
    for action in ("TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair", "DeleteInstanceProfile",
                   "DeleteRole"):
        at = index_of(reqs, action)
        assert at < last_copy, (action, actions)
        # ... and after the AMI was available in the build region
        assert at > first_available(reqs, "us-east-1", artifact.amis["us-east-1"]), action
    # the temporaries in their usual order: the instance gone before its group and key pair
    assert index_of(reqs, "TerminateInstances") < index_of(reqs, "DeleteSecurityGroup")
    # (3) each copy is shared once it is available, and once only (StepModifyAMIAttributes skips it)
    for region in REGIONS:
        mods = [i for i, r in enumerate(reqs) if r.action == "ModifyImageAttribute" and r.region == region]
        assert len(mods) == 1, (region, mods)
        assert mods[0] > first_available(reqs, region, artifact.amis[region]), region
        assert reqs[mods[0]].params.get("ImageId") == artifact.amis[region]
    # the end state is the one of a build without overlap
    state = end_state({"AWS_ENDPOINT_URL": moto.url}, REGIONS)
    assert leftovers(state) == {}
    assert iam_state({"AWS_ENDPOINT_URL": moto.url}) == {"roles": [], "instance_profiles": []}
    for region, ami in artifact.amis.items():
        c = boto3.client("ec2", endpoint_url=moto.url, region_name=region,
                         aws_access_key_id="testing", aws_secret_access_key="testing")
        img = c.describe_images(ImageIds=[ami])["Images"][0]
        assert img["State"] == "available" and tags(img)["Project"] == "amibake", region
        perms = c.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
        assert perms == [{"UserId": "123456789012"}], region
    # removed once each: the runner's own cleanup found them done
    for action in ("TerminateInstances", "DeleteSecurityGroup", "DeleteKeyPair", "DeleteInstanceProfile",
                   "DeleteRole", "DeleteRolePolicy", "RemoveRoleFromInstanceProfile"):
        assert actions.count(action) == 1, action
    artifact.destroy()


def test_failed_security_group_undoes_the_other_preparations(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """StepSecurityGroup fails (its security_group_filter matches no group) while the key pair and
    the IAM profile are made at the same time: the build fails and removes them; nothing is launched."""
    with AwsProxy(moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url,
            security_group_filter={"filters": {"tag:amibake-test": f"none-{uuid.uuid4().hex[:8]}"}},
            temporary_iam_instance_profile_policy_document=POLICY,
        )
        ui = RecUi()
        with pytest.raises(BuildError, match="No security groups matching the filter"):
            EbsBuilder(config, env(ui)).run(Hooks("true"))
        reqs = list(proxy.requests)
    actions = [r.action for r in reqs]
    assert "DescribeSecurityGroups" in actions and "RunInstances" not in actions
    # what was made at the same time was removed, each once
    keys = [r.params["KeyName"] for r in reqs if r.action == "CreateKeyPair" and r.status == 200]
    assert len(keys) == 1, actions
    assert [r.params["KeyName"] for r in reqs if r.action == "DeleteKeyPair"] == keys
    made = [r.action for r in reqs if r.action.startswith(("Create", "Put", "Add")) and r.status == 200]
    assert sorted(made) == ["AddRoleToInstanceProfile", "CreateInstanceProfile", "CreateKeyPair",
                            "CreateRole", "PutRolePolicy"]
    for action in ("DeleteInstanceProfile", "DeleteRole", "DeleteRolePolicy",
                   "RemoveRoleFromInstanceProfile"):
        assert actions.count(action) == 1, action
    assert leftovers(end_state({"AWS_ENDPOINT_URL": moto.url}, ("us-east-1",))) == {}
    assert iam_state({"AWS_ENDPOINT_URL": moto.url}) == {"roles": [], "instance_profiles": []}


def test_debug_keeps_the_steps_one_at_a_time(stack: Stack, moto: MotoServer) -> None:
    """With -debug (a pause after each step), Packer's order: source AMI, key pair, group, launch;
    the temporaries go after the copies."""
    with AwsProxy(moto.url, delays={"image_pending": 1.0}) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ami_regions=["us-west-2"])
        ui = RecUi()
        artifact = EbsBuilder(config, env(ui, debug=True)).run(Hooks("true"))
        assert artifact is not None, ui.text
        reqs = list(proxy.requests)
    actions = [r.action for r in reqs]
    key, group, run = (actions.index(a) for a in ("CreateKeyPair", "CreateSecurityGroup", "RunInstances"))
    assert key < group < run
    last_copy = first_available(reqs, "us-west-2", artifact.amis["us-west-2"])
    assert index_of(reqs, "TerminateInstances") > last_copy
    assert index_of(reqs, "DeleteKeyPair") > last_copy
    artifact.destroy()
