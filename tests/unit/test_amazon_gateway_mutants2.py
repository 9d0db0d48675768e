"""The EC2/IAM gateway, second part: what the 3 December mutation sample of the gateway found untested
(docs/mutation.md): which endpoints count as AWS's own, the planned waits' schedule, the batched
Describe calls, calls in another region, waits with batching off, and a create call whose first
answer is lost (a read timeout) while what it asked for reaches EC2 or IAM only as the call is sent
again: the retry meets its own resource as a duplicate and adopts it. The lost answer is injected at
botocore's ``before-send`` event of the gateway's own client; every request that is sent goes to
moto (the shared server: tests/unit/conftest.py's ``moto_url``)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from amibake.aws.errors import AwsError
from amibake.aws.retry import RetryPolicy
from amibake.errors import BuildError
from amibake.plugins.amazon import describe_batch, pollschedule
from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.ec2 import Ec2Gateway, NotOurs, WaitTimeout, _aws_endpoint, _Planned
from tests.unit.test_amazon_gateway_mutants import Gw, botocore_session, own, uid

WEST = "us-west-2"


@pytest.fixture
def g(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gw:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv(pollschedule.SCALE_ENV, raising=False)
    gw = Gw(moto_url, tmp_path)
    gw.gw.retry = RetryPolicy(max_attempts=4, base=0.01, cap=0.02)
    return gw


def side_client(g: Gw, service: str, region: str | None = None) -> Any:
    """A client of the same account that is not the gateway's (no injected faults)."""
    a = g.access
    return botocore_session().create_client(
        service, region_name=region or a.region, endpoint_url=a.endpoint_ec2,
        aws_access_key_id=a.access_key, aws_secret_access_key=a.secret_key, aws_session_token=a.token,
    )


class LateArrival:
    """The first attempt of ``event`` times out before its answer (nothing reached the service yet);
    just before the second attempt is sent, ``arrive`` makes what the first one asked for (it arrived
    late). The second attempt then meets a duplicate."""

    def __init__(self, client: Any, event: str, arrive: Callable[[], Any]) -> None:
        self.sent = 0
        self.arrive = arrive
        self.made: Any = None
        self.event = event
        client.meta.events.register(event, self)
        self.client = client

    def __call__(self, request: Any, **_: Any) -> None:
        self.sent += 1
        if self.sent == 1:
            raise botocore.exceptions.ReadTimeoutError(endpoint_url=request.url)
        if self.sent == 2:
            self.made = self.arrive()

    def close(self) -> None:
        self.client.meta.events.unregister(self.event, self)


@pytest.fixture
def late() -> Iterator[list[LateArrival]]:
    made: list[LateArrival] = []
    yield made
    for m in made:
        m.close()


def _expect_retry_logged(caplog: pytest.LogCaptureFixture, op: str, region: str) -> None:
    lines = [r.getMessage() for r in caplog.records if r.name == "amibake.aws"]
    assert any(
        re.fullmatch(
            rf"{op} \({region}\): Read timeout on endpoint URL: \"[^\"]+\"; retry 1 of 3 in \d\.\d\ds", line
        )
        for line in lines
    ), lines
    assert f"{op} ({region}): adopted what an attempt whose answer was lost made" in lines


# -- which endpoint is AWS's own (the waits are planned only there) ----------------------------------


def test_aws_endpoint_is_none_set_or_one_of_aws_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _aws_endpoint("", {}) is True
    assert _aws_endpoint("", {"AWS_ENDPOINT_URL": "  "}) is True
    assert _aws_endpoint("", {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}) is False
    local = {"AWS_ENDPOINT_URL_EC2": "http://localhost:4566", "AWS_ENDPOINT_URL": ""}
    assert _aws_endpoint("", local) is False
    assert _aws_endpoint("https://ec2.cn-north-1.amazonaws.com.cn", {}) is True
    assert _aws_endpoint("vpce-0a1b.ec2.us-east-1.vpce.amazonaws.com", {}) is True
    assert _aws_endpoint("https://ec2.us-east-1.api.aws", {}) is True
    assert _aws_endpoint("https://ec2.amazonaws.com.example.net", {}) is False
    # the process environment when none is given
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    assert _aws_endpoint("") is False
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert _aws_endpoint("") is True


# -- planned waits ----------------------------------------------------------------------------------


def test_planned_wait_schedule_is_its_kinds_prior_at_the_clock_scale() -> None:
    polling = Polling(delay=15.0, max_attempts=40)
    p = _Planned("instance_running", "us-east-1", polling, 0.5, None)
    prior = pollschedule.prior_for("instance_running", 0.0)
    assert p.times() == pollschedule.plan(prior.scaled(0.5), 7.5, 40)
    assert p.times() != pollschedule.plan(prior, 7.5, 40)
    assert p.extra == 0 and p.polls == 0
    # a progress call is counted when it is allowed
    ok = p.spend_extra()
    assert isinstance(ok, bool) and p.extra == int(ok)
    explicit = Polling(delay=2.0, max_attempts=3, overridden=True)
    fixed = _Planned("instance_running", "us-east-1", explicit, 1.0, None)
    assert fixed.times() == pollschedule.fixed(2.0, 3)
    assert fixed.spend_extra() is True and fixed.spend_extra() is True


def test_gateway_plans_state_waits_only_with_aws_polling_on_a_custom_endpoint(g: Gw) -> None:
    # moto is not AWS's endpoint: with aws_polling set the wait is planned (Packer's fixed schedule)
    planned = g.gw._planned("instance_running", None, g.gw.polling)
    assert planned is not None
    assert (planned.kind, planned.region, planned.scale) == ("instance_running", "us-east-1", 1.0)
    assert planned.times() == pollschedule.fixed(g.gw.polling.delay, g.gw.polling.max_attempts)
    # without it, the short backoff of Ec2Gateway.wait
    assert g.gw._planned("instance_running", WEST, Polling()) is None


def test_batch_window_on_the_short_backoff_is_half_the_first_delay() -> None:
    assert Ec2Gateway._batch_window(Polling(delay=15.0, first_delay=1.0), None) == 0.5
    assert Ec2Gateway._batch_window(Polling(delay=2.0, first_delay=1.0), None) == pytest.approx(0.2)
    planned = _Planned("instance_running", "us-east-1", Polling(delay=4.0, overridden=True), 1.0, None)
    assert Ec2Gateway._batch_window(Polling(delay=99.0), planned) == pytest.approx(0.4)


# -- batched Describe calls, calls in another region, waits with batching off ----------------------


def _west_instance(g: Gw) -> tuple[Any, str]:
    west = side_client(g, "ec2", WEST)
    ami = west.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    iid = west.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    return west, str(iid)


def test_batched_describes_ask_for_the_ids_in_the_waits_region(g: Gw) -> None:
    west, iid = _west_instance(g)
    _, other = _west_instance(g)
    got = g.gw._instances_by_id([iid, "i-0123456789abcdef0"], WEST)
    assert list(got) == [iid] and got[iid].id == iid and got[iid].state in ("pending", "running")
    ami = str(west.create_image(InstanceId=iid, Name=uid("b"))["ImageId"])
    west.create_image(InstanceId=other, Name=uid("b2"))  # another own image, not asked for
    images = g.gw._images_by_id([ami], WEST)
    assert list(images) == [ami] and images[ami].state == "available"
    assert g.gw._images_by_id([ami], None) == {}  # not in the gateway's own region


def test_waits_in_another_region_batched_and_not(g: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    west, iid = _west_instance(g)
    assert g.gw.wait_instance(iid, ["running"], region=WEST).id == iid
    monkeypatch.setenv(describe_batch.SWITCH_ENV, "0")
    inst = g.gw.wait_instance(iid, ["running"], region=WEST)
    assert (inst.id, inst.state) == (iid, "running")
    ami = str(west.create_image(InstanceId=iid, Name=uid("w"))["ImageId"])
    assert g.gw.wait_image_available(ami, WEST).id == ami


def test_security_group_by_name_in_another_region(g: Gw) -> None:
    name = uid("sgw")
    gid = side_client(g, "ec2", WEST).create_security_group(GroupName=name, Description="d")["GroupId"]
    assert g.gw.security_group_by_name(name, WEST) == [gid]
    assert g.gw.security_group_by_name(name, "us-east-1") == []


# -- retries: a throttled answer, a lost answer ----------------------------------------------------


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def test_a_throttled_call_is_sent_again(g: Gw, caplog: pytest.LogCaptureFixture) -> None:
    import botocore.awsrequest

    sent: list[int] = []

    def throttle_once(request: Any, **_: Any) -> Any:
        sent.append(1)
        if len(sent) > 1:
            return None
        body = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                b"</Message></Error></Errors><RequestID>r-1</RequestID></Response>")
        return botocore.awsrequest.AWSResponse(request.url, 503, {}, _Raw(body))

    g.client.meta.events.register("before-send.ec2.DescribeVpcs", throttle_once)
    caplog.set_level(logging.DEBUG, "amibake.aws")
    try:
        vpcs = g.gw.vpcs()
    finally:
        g.client.meta.events.unregister("before-send.ec2.DescribeVpcs", throttle_once)
    assert len(sent) == 2 and vpcs
    lines = [r.getMessage() for r in caplog.records if r.name == "amibake.aws"]
    assert any(line.startswith("describe_vpcs (us-east-1): An error occurred (RequestLimitExceeded)")
               and re.search(r"; retry 1 of 3 in \d\.\d\ds$", line) for line in lines), lines


def test_security_group_arriving_late_is_adopted(g: Gw, late: list[LateArrival],
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "amibake.aws")
    vpc = g.client.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    name, tags = uid("sgl"), {**own(g), "T": "late"}
    side = side_client(g, "ec2")
    spec = [{"ResourceType": "security-group", "Tags": _iam_tags(tags)}]
    late.append(LateArrival(g.client, "before-send.ec2.CreateSecurityGroup",
                            lambda: side.create_security_group(GroupName=name, Description="d", VpcId=vpc,
                                                               TagSpecifications=spec)["GroupId"]))
    gid = g.gw.create_security_group(name, "d", vpc, tags)
    assert gid == late[0].made and late[0].sent == 2
    assert [(r["ev"], r.get("id")) for r in g.records()] == [("intent", None), ("created", gid)]
    _expect_retry_logged(caplog, "create_security_group", "us-east-1")


def test_key_pair_arriving_late_is_adopted(g: Gw, late: list[LateArrival]) -> None:
    import asyncssh

    public = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
    name, tags = uid("kpl"), own(g)
    side = side_client(g, "ec2")
    late.append(LateArrival(g.client, "before-send.ec2.ImportKeyPair", lambda: side.import_key_pair(
        KeyName=name, PublicKeyMaterial=public.encode(),
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": _iam_tags(tags)}])))
    g.gw.import_key_pair(name, public, tags)
    assert late[0].sent == 2
    assert [p["KeyName"] for p in g.client.describe_key_pairs(KeyNames=[name])["KeyPairs"]] == [name]
    assert [r["ev"] for r in g.records()] == ["intent", "created"]


def _iam_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def test_role_and_instance_profile_arriving_late_are_adopted(g: Gw, late: list[LateArrival],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "amibake.aws")
    name, tags = uid("late"), own(g)
    side = side_client(g, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    late.append(LateArrival(g.iam, "before-send.iam.CreateRole", lambda: side.create_role(
        RoleName=name, AssumeRolePolicyDocument=trust, Tags=_iam_tags(tags))))
    late.append(LateArrival(g.iam, "before-send.iam.CreateInstanceProfile",
                            lambda: side.create_instance_profile(InstanceProfileName=name,
                                                                 Tags=_iam_tags(tags))))
    g.gw.create_role(name, trust, tags)
    g.gw.create_instance_profile(name, tags)
    assert [x.sent for x in late] == [2, 2]
    assert [(r["ev"], r["kind"]) for r in g.records()] == [
        ("intent", "iam-role"), ("created", "iam-role"),
        ("intent", "iam-instance-profile"), ("created", "iam-instance-profile"),
    ]
    _expect_retry_logged(caplog, "create_instance_profile", "us-east-1")


def test_a_late_role_that_is_not_the_builds_own_is_refused(g: Gw, late: list[LateArrival]) -> None:
    name = uid("nlate")
    side = side_client(g, "iam")
    late.append(LateArrival(g.iam, "before-send.iam.CreateRole", lambda: side.create_role(
        RoleName=name, AssumeRolePolicyDocument="{}", Tags=_iam_tags({"amibake:run-id": "run-other"}))))
    with pytest.raises(NotOurs, match=rf"IAM role '{name}' already exists and was not made by this build "
                                      r"\(amibake:run-id=run-other\)"):
        g.gw.create_role(name, "{}", own(g))


def test_a_late_instance_profile_without_adoption_is_an_error(g: Gw) -> None:
    # the same duplicate with no earlier lost answer is not adopted: the name is taken
    name = uid("dup")
    g.iam.create_instance_profile(InstanceProfileName=name, Tags=_iam_tags(own(g)))
    with pytest.raises(AwsError) as err:
        g.gw.create_instance_profile(name, own(g))
    assert err.value.code == "EntityAlreadyExists"


def test_journal_problem_is_logged(g: Gw, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "amibake.aws")
    problem = g.gw._journal_problem("volume vol-1 removed", OSError(28, "No space left on device"))
    assert problem.endswith(": No space left on device (volume vol-1 removed not recorded)")
    assert [r.getMessage() for r in caplog.records if r.name == "amibake.aws"] == [problem]


def _answer(request: Any, status: int, body: str) -> Any:
    import botocore.awsrequest

    return botocore.awsrequest.AWSResponse(request.url, status, {}, _Raw(body.encode()))


def _ec2_error(code: str, message: str) -> str:
    return (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>r-1</RequestID></Response>")


def test_run_instance_waits_for_a_new_instance_profile_to_be_visible(g: Gw) -> None:
    """EC2 refuses a just-made instance profile for a few seconds (InvalidParameterValue naming an IAM
    instance profile): RunInstances is sent again, up to the retry policy's attempts."""
    message = ("Value (packer-x) for parameter iamInstanceProfile.name is invalid. "
               "Invalid IAM Instance Profile name")
    refuse, sent = [3], [0]  # refused this many times more; requests sent

    def not_visible(request: Any, **_: Any) -> Any:
        sent[0] += 1
        if refuse[0] > 0:
            refuse[0] -= 1
            return _answer(request, 400, _ec2_error("InvalidParameterValue", message))
        return None

    ami = g.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    g.client.meta.events.register("before-send.ec2.RunInstances", not_visible)
    try:
        inst = g.gw.run_instance({"ImageId": ami, "MinCount": 1, "MaxCount": 1})
        assert inst.id.startswith("i-") and sent == [4]  # the policy's 4 attempts: the fourth went through
        refuse[0], sent[0] = 99, 0  # never visible: the last attempt's error
        with pytest.raises(AwsError, match="Invalid IAM Instance Profile name"):
            g.gw.run_instance({"ImageId": ami, "MinCount": 1, "MaxCount": 1})
        assert sent == [4]
    finally:
        g.client.meta.events.unregister("before-send.ec2.RunInstances", not_visible)


def _fleet_params(lt: str) -> dict[str, Any]:
    return {
        "Type": "instant",
        "TargetCapacitySpecification": {"DefaultTargetCapacityType": "spot", "TotalTargetCapacity": 1},
        "LaunchTemplateConfigs": [{"LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "1"}}],
    }


def test_create_fleet_is_sent_again_while_its_launch_template_is_not_visible(g: Gw) -> None:
    ami = g.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    lt = g.gw.create_launch_template(uid("flv"), {"ImageId": ami, "InstanceType": "t3.micro"}, {})
    sent: list[int] = []

    def not_yet(request: Any, **_: Any) -> Any:
        sent.append(1)
        if len(sent) == 1:
            return _answer(request, 400, _ec2_error("InvalidLaunchTemplateId.NotFound",
                                                    f"The specified launch template, with template ID {lt}, "
                                                    "does not exist."))
        return None

    g.client.meta.events.register("before-send.ec2.CreateFleet", not_yet)
    try:
        ids = g.gw.create_fleet(_fleet_params(lt))
    finally:
        g.client.meta.events.unregister("before-send.ec2.CreateFleet", not_yet)
    assert len(sent) == 2 and len(ids) == 1 and ids[0].startswith("i-")


def test_create_fleet_that_launched_nothing_says_why(g: Gw) -> None:
    """An instant fleet answers 200 with no instance and its errors (AWS's CreateFleet answer,
    ``errorSet``) when there is no Spot capacity: the build stops with those errors."""
    body = (
        '<CreateFleetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-2</requestId>'
        "<fleetId>fleet-0123456789abcdef0</fleetId><errorSet>"
        "<item><errorCode>InsufficientInstanceCapacity</errorCode>"
        "<errorMessage>There is no Spot capacity available that matches your request.</errorMessage></item>"
        "<item><errorCode>SpotMaxPriceTooLow</errorCode><errorMessage>low</errorMessage></item>"
        "</errorSet><fleetInstanceSet/></CreateFleetResponse>"
    )

    def no_capacity(request: Any, **_: Any) -> Any:
        return _answer(request, 200, body)

    g.client.meta.events.register("before-send.ec2.CreateFleet", no_capacity)
    try:
        with pytest.raises(BuildError) as err:
            g.gw.create_fleet(_fleet_params("lt-0123456789abcdef0"))
    finally:
        g.client.meta.events.unregister("before-send.ec2.CreateFleet", no_capacity)
    assert str(err.value) == (
        "Error waiting for fleet request: InsufficientInstanceCapacity: There is no Spot capacity available "
        "that matches your request.; SpotMaxPriceTooLow: low"
    )
    assert [(r["ev"], r["kind"], r.get("id")) for r in g.records()][1] == (
        "created", "fleet", "fleet-0123456789abcdef0")


def test_an_ami_wait_is_learnt_under_its_kind(g: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the benchmark's clock scale on a custom endpoint, the AMI waits are planned without
    aws_polling and what they saw is kept in the state dir's poll history under the wait's kind:
    CreateImage's, RegisterImage's (``registered``) and a copy's (another region) apart."""
    from amibake.plugins.amazon import pollhistory

    monkeypatch.setenv(pollschedule.SCALE_ENV, "0.01")
    g.gw.polling = Polling(delay=0.05, max_attempts=40)
    made = g.client.create_image(InstanceId=g.client.run_instances(
        ImageId=g.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"], MinCount=1, MaxCount=1,
    )["Instances"][0]["InstanceId"], Name=uid("learn"))["ImageId"]
    west, iid = _west_instance(g)
    copy = west.create_image(InstanceId=iid, Name=uid("learnw"))["ImageId"]
    history = pollhistory.PollHistory.default()
    g.gw.wait_image_available(made)
    assert history.observations(pollhistory.key("us-east-1", "image_available", 8.0)) == [(0.0, 0.0)]
    assert history.observations(pollhistory.key("us-east-1", "image_registered", 0.0)) == []
    g.gw.wait_image_available(made, registered=True)
    assert history.observations(pollhistory.key("us-east-1", "image_registered", 0.0)) == [(0.0, 0.0)]
    g.gw.wait_image_available(copy, WEST)
    assert history.observations(pollhistory.key(WEST, "image_copy", 8.0)) == [(0.0, 0.0)]
    g.gw.wait_instance(iid, ["running"], region=WEST)
    assert history.observations(pollhistory.key(WEST, "instance_running")) == [(0.0, 0.0)]


def test_image_and_key_pair_whose_first_attempt_never_arrived_are_made_once(
    g: Gw, late: list[LateArrival]
) -> None:
    """A read timeout before anything reached EC2: the lookup by name finds nothing, and the call is
    sent again (CreateImage and CreateKeyPair take no client token)."""
    late.append(LateArrival(g.client, "before-send.ec2.CreateImage", lambda: None))
    late.append(LateArrival(g.client, "before-send.ec2.CreateKeyPair", lambda: None))
    name = uid("once")
    iid = g.client.run_instances(ImageId=g.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"],
                                 MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ami = g.gw.create_image(iid, name, tags=own(g))
    assert [i["ImageId"] for i in g.client.describe_images(Owners=["self"], Filters=[
        {"Name": "name", "Values": [name]}])["Images"]] == [ami]
    pem = g.gw.create_key_pair(name, "ed25519", own(g))
    assert "PRIVATE KEY" in pem and [x.sent for x in late] == [2, 2]
    assert [p["KeyName"] for p in g.client.describe_key_pairs(KeyNames=[name])["KeyPairs"]] == [name]


def test_a_late_instance_profile_that_is_not_the_builds_own_is_refused(
    g: Gw, late: list[LateArrival]
) -> None:
    name = uid("nlp")
    side = side_client(g, "iam")
    other = _iam_tags({"amibake:run-id": "run-other"})
    late.append(LateArrival(g.iam, "before-send.iam.CreateInstanceProfile",
                            lambda: side.create_instance_profile(InstanceProfileName=name, Tags=other)))
    with pytest.raises(NotOurs, match=rf"^instance profile '{name}' already exists and was not made by this "
                                      r"build \(amibake:run-id=run-other\)"):
        g.gw.create_instance_profile(name, own(g))


def test_a_role_not_yet_visible_to_its_instance_profile_is_added_again(g: Gw) -> None:
    name = uid("arp")
    g.iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    g.iam.create_instance_profile(InstanceProfileName=name)
    sent: list[int] = []

    def not_yet(request: Any, **_: Any) -> Any:
        sent.append(1)
        if len(sent) > 1:
            return None
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>NoSuchEntity</Code>"
                f"<Message>The role with name {name} cannot be found.</Message></Error>"
                "<RequestId>r-3</RequestId></ErrorResponse>")
        return _answer(request, 404, body)

    g.iam.meta.events.register("before-send.iam.AddRoleToInstanceProfile", not_yet)
    try:
        g.gw.add_role_to_instance_profile(name, name)
    finally:
        g.iam.meta.events.unregister("before-send.iam.AddRoleToInstanceProfile", not_yet)
    assert len(sent) == 2 and g.gw.iam_profile_roles(name) == [name]


def test_launch_templates_named_in_another_region(g: Gw) -> None:
    name = uid("ltw")
    west = side_client(g, "ec2", WEST)
    lt = west.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"InstanceType": "t3.micro"})
    assert g.gw.launch_templates_named(name, WEST) == [lt["LaunchTemplate"]["LaunchTemplateId"]]


def test_waits_that_give_up_say_what_they_last_saw(g: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    g.gw.polling = Polling(delay=0.01, max_attempts=3, first_delay=0.01, overridden=True)
    missing_ami = "ami-0fedcba9876543210"
    with pytest.raises(WaitTimeout, match=rf"^gave up waiting for AMI {missing_ami} to become available "
                                          r"after "
                                          r"0\.03s \(3 attempts, 0\.01s apart; .*"
                                          r"last state seen: InvalidAMIID\.NotFound\."):
        g.gw.wait_image_available(missing_ami)
    monkeypatch.setenv(describe_batch.SWITCH_ENV, "0")
    missing = "i-0fedcba9876543210"
    with pytest.raises(WaitTimeout, match=rf"^gave up waiting for instance {missing} to be running after .*"
                                          r"last state seen: InvalidInstanceID\.NotFound\."):
        g.gw.wait_instance(missing, ["running"])


def test_a_planned_wait_that_gives_up_names_the_scaled_schedule(
    g: Gw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without aws_polling, under the benchmark's clock scale, the gave-up message names the scaled
    delay the plan used (Packer's 3 attempts here, 2 s apart at scale 0.01 of 200 s)."""
    monkeypatch.setenv(pollschedule.SCALE_ENV, "0.01")
    g.gw.polling = Polling(delay=2.0, max_attempts=3, first_delay=0.01)
    iid = g.client.run_instances(ImageId=g.client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"],
                                 MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    with pytest.raises(WaitTimeout, match=rf"^gave up waiting for instance {iid} to be stopped after 0\.06s "
                                          r"\(3 attempts, 0\.02s apart; .*last state seen: running\."):
        g.gw.wait_instance(iid, ["stopped"])


def test_the_default_retry_policy_is_the_access_retries() -> None:
    from amibake.aws.access import AwsAccess
    from amibake.aws.retry import retries

    access = AwsAccess(region="us-east-1", access_key="a", secret_key="b", endpoint_ec2="http://127.0.0.1:9")
    assert Ec2Gateway(access).retry == RetryPolicy(max_attempts=1 + retries(access))
