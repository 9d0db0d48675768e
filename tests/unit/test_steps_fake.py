"""amazon-ebs steps against ``CountingEc2`` (tests/fakes/ec2.py), an in-memory fake of ``Ec2Api``:
what each step asks EC2 for, in which order and how often, and what is undone when a later step
fails. The stack tests (tests/stack) remain the proof against an EC2 API."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from amibake.api import BuildEnv
from amibake.config.base import CheckContext, decode
from amibake.errors import BuildError
from amibake.plugins.amazon import steps_ami, steps_instance
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.ec2api import Ec2Api
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.steps.context import StepContext
from amibake.steps.runner import StepRunner
from tests.fakes.ec2 import CountingEc2, as_ec2api, aws_error

BASE: dict[str, Any] = {
    "ami_name": "packer-example",
    "instance_type": "t3.micro",
    "region": "us-east-1",
    "ssh_username": "ubuntu",
    "source_ami": "ami-0123456789abcdef0",
}
RUN_ID = "run-0001"


class Lines:
    """A Ui that keeps what it is told."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        self.lines.append(f"say: {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"message: {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"error: {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        self.lines.append(f"progress: {label}")

    def ask(self, question: str) -> str:
        return ""


def make_state(fake: CountingEc2, **options: Any) -> tuple[BuildState, StepContext]:
    cfg, problems, _ = decode(EbsConfig, {**BASE, **options},
                              CheckContext(Path("."), "source.amazon-ebs.x", check_files=False))
    assert cfg is not None, problems
    ui = Lines()
    env = BuildEnv(build_name="amazon-ebs.x", builder_type="amazon-ebs", template_dir=Path("."), ui=ui,
                   run_id=RUN_ID)
    st = BuildState(config=cfg, ec2=as_ec2api(fake), env=env, hooks=None,  # type: ignore[arg-type]
                    run_uuid="uuid-1")
    st.source_image = fake.add_image("ubuntu-source")
    return st, StepContext(ui=ui)


def run_steps(st: BuildState, ctx: StepContext, *fns: Any) -> None:
    StepRunner(ctx).run([BoundStep(fn.__name__, fn, st) for fn in fns])


def undo_calls(fake: CountingEc2, since: int) -> list[str]:
    """The calls made after the ``since``-th (the undo phase), waits and describes left out."""
    quiet = ("wait", "describe_instances", "describe_images")
    return [c.name for c in fake.calls[since:] if c.name not in quiet]


# -- the protocol --------------------------------------------------------------------------------

def _methods(cls: type) -> set[str]:
    """The public methods ``cls`` defines or inherits from its own bases (the gateway's IAM and
    discovery calls live in base classes), not those of ``object`` or ``typing``."""
    own = [c for c in cls.__mro__ if c.__module__ not in ("builtins", "typing")]
    return {n for c in own for n, v in vars(c).items() if callable(v) and not n.startswith("_")}


def test_the_gateway_and_the_fake_implement_every_method_of_ec2api_with_its_signature() -> None:
    wanted = _methods(Ec2Api)
    assert wanted <= _methods(Ec2Gateway)
    assert wanted <= _methods(CountingEc2)
    for name in wanted:
        proto = inspect.signature(getattr(Ec2Api, name))
        assert list(inspect.signature(getattr(Ec2Gateway, name)).parameters) == list(proto.parameters), name
        assert list(inspect.signature(getattr(CountingEc2, name)).parameters) == list(proto.parameters), name


def test_ec2api_lists_exactly_what_the_steps_call() -> None:
    import re

    src = Path(steps_instance.__file__).parent
    called: set[str] = set()
    for f in ("steps_instance.py", "steps_ami.py", "ebs.py", "reuse.py"):
        called |= set(re.findall(r"st\.ec2\.([a-z_]+)", (src / f).read_text()))
    assert called - {"region"} == _methods(Ec2Api)


# -- undo: registered the moment a resource exists, run newest first ------------------------------

def test_a_failed_launch_undoes_the_security_group_then_the_key_pair() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    fake.fail_next("run_instance", aws_error("InsufficientInstanceCapacity", "no t3.micro left"))
    with pytest.raises(BuildError, match="Error launching source instance: InsufficientInstanceCapacity"):
        run_steps(st, ctx, steps_instance.key_pair, steps_instance.security_group,
                  steps_instance.run_source_instance)
    failed_at = fake.names().index("run_instance") + 1
    assert undo_calls(fake, failed_at) == ["delete_security_group", "delete_key_pair"]
    assert fake.last("delete_security_group").args[0] == st.security_group_ids[0]
    assert fake.last("delete_key_pair").args[0] == st.key_pair_name == fake.last("create_key_pair").args[0]
    assert fake.key_pairs == {} and fake.security_groups_ == {}
    assert ctx.leftovers == []


def test_an_instance_that_never_runs_is_terminated_before_the_group_and_key_are_removed() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    original = fake.run_instance

    def launched(params: Any) -> Any:
        inst = original(params)
        fake.instance_states[inst.id] = ["pending", "shutting-down"]
        return inst

    fake.run_instance = launched  # type: ignore[method-assign]
    with pytest.raises(BuildError, match="to become ready"):
        run_steps(st, ctx, steps_instance.key_pair, steps_instance.security_group,
                  steps_instance.run_source_instance)
    assert st.instance is not None
    iid = st.instance.id
    names = fake.names()
    first_undo = names.index("terminate_instance")
    assert undo_calls(fake, first_undo) == ["terminate_instance", "delete_security_group", "delete_key_pair"]
    assert fake.last("terminate_instance").args[0] == iid
    # the terminate undo waits for "terminated" before the group (which the instance holds) goes
    assert "describe_instances" in names[first_undo:names.index("delete_security_group")]


def test_the_temporary_iam_profile_is_undone_in_reverse_order_of_creation() -> None:
    fake = CountingEc2()
    doc = {"Statement": [{"Effect": "Allow", "Action": ["ec2:DescribeTags"], "Resource": ["*"]}],
           "Version": "2012-10-17"}
    st, ctx = make_state(fake, temporary_iam_instance_profile_policy_document=doc)
    fake.fail_next("create_key_pair", aws_error("UnauthorizedOperation", "not allowed"))
    with pytest.raises(BuildError):
        run_steps(st, ctx, steps_instance.iam_instance_profile, steps_instance.key_pair)
    assert fake.names() == [
        "create_instance_profile", "create_role", "put_role_policy", "add_role_to_instance_profile",
        "create_key_pair",
        "remove_role_from_instance_profile", "delete_role_policy", "delete_role", "delete_instance_profile",
    ]
    policy = json.loads(fake.last("put_role_policy").args[2])
    assert policy["Statement"][0]["Action"] == ["ec2:DescribeTags"]
    assert fake.iam_profiles == {} and fake.iam_roles == {}


def test_an_ami_that_fails_is_rolled_back_with_its_snapshots() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    st.instance = fake.run_instance({})
    original = fake.create_image
    created = []

    def create(*args: Any, **kwargs: Any) -> str:
        image_id = original(*args, **kwargs)
        fake.image_states[image_id] = ["pending", "failed"]
        created.append(fake.images[image_id])
        return image_id

    fake.create_image = create  # type: ignore[method-assign]
    with pytest.raises(BuildError, match="Error waiting for AMI"):
        run_steps(st, ctx, steps_ami.create_ami)
    image_id = st.amis["us-east-1"]
    assert undo_calls(fake, fake.names().index("create_image") + 1) == ["deregister_image", "delete_snapshot"]
    assert fake.last("deregister_image").args == (image_id,)
    assert fake.last("delete_snapshot").args == created[0].snapshot_ids
    assert image_id not in fake.images


def test_a_successful_build_keeps_its_ami_and_removes_only_the_temporary_resources() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    run_steps(st, ctx, steps_instance.key_pair, steps_instance.security_group,
              steps_instance.run_source_instance, steps_ami.create_ami)
    image_id = st.amis["us-east-1"]
    assert image_id in fake.images
    assert "deregister_image" not in fake.names()
    tail = undo_calls(fake, fake.names().index("note_snapshots") + 1)
    assert tail[-3:] == ["terminate_instance", "delete_security_group", "delete_key_pair"]


# -- tags passed in the create calls --------------------------------------------------------------

def test_create_calls_carry_the_run_tags_and_amibakes_own() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, run_tags={"Team": "infra", "Region": "{{ .BuildRegion }}"},
                         tags={"Release": "1.2"})
    st.env.render = lambda text, data: text.replace("{{ .BuildRegion }}", data["BuildRegion"])
    run_steps(st, ctx, steps_instance.key_pair, steps_instance.security_group,
              steps_instance.run_source_instance, steps_ami.create_ami)
    for call in ("create_key_pair", "create_security_group"):
        tags = fake.last(call).args[-1]
        assert tags["Team"] == "infra" and tags["Region"] == "us-east-1", call
        assert tags["amibake:run-id"] == RUN_ID and tags["amibake:build"] == "amazon-ebs.x", call
        assert "Release" not in tags, call
    specs = {s["ResourceType"]: {t["Key"]: t["Value"] for t in s["Tags"]}
             for s in fake.last("run_instance").args[0]["TagSpecifications"]}
    assert specs["instance"]["Name"] == "Packer Builder" and specs["instance"]["Team"] == "infra"
    assert specs["instance"]["amibake:run-id"] == RUN_ID
    image = fake.last("create_image").kwargs
    assert image["tags"]["Release"] == "1.2" and image["tags"]["Team"] == "infra"
    assert image["tags"]["amibake:run-id"] == RUN_ID


# -- waits: how many Describe calls -------------------------------------------------------------

def test_waiting_for_running_describes_once_per_poll_and_keeps_the_last_answer() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    original = fake.run_instance

    def launched(params: Any) -> Any:
        inst = original(params)
        fake.instance_states[inst.id] = ["pending", "pending", "running"]
        return inst

    fake.run_instance = launched  # type: ignore[method-assign]
    run_steps(st, ctx, steps_instance.run_source_instance)
    # three polls, no DescribeInstances of its own for the addresses; one more for the termination
    polls = fake.names()[:fake.names().index("terminate_instance")]
    assert polls.count("describe_instances") == 3
    assert st.instance is not None and st.instance.state == "running"
    assert st.instance.public_ip == "203.0.113.10"


def test_ingress_is_retried_while_the_new_group_is_not_visible() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake, ssh_interface="public_ip")
    fake.fail_next("authorize_ingress", aws_error("InvalidGroup.NotFound"),
                   aws_error("InvalidSecurityGroupID.NotFound"))
    steps_instance.security_group(st, ctx)
    assert fake.count("authorize_ingress") == 3
    assert fake.count("wait") == 1
    assert fake.ingress[st.security_group_ids[0]] == [(22, tuple(st.config.source_cidrs))]


def test_ingress_failing_otherwise_stops_at_once() -> None:
    fake = CountingEc2()
    st, ctx = make_state(fake)
    fake.fail_next("authorize_ingress", aws_error("InvalidPermission.Malformed"))
    with pytest.raises(BuildError, match=r"InvalidPermission\.Malformed"):
        run_steps(st, ctx, steps_instance.security_group)
    assert fake.count("authorize_ingress") == 1
    assert fake.names()[-1] == "delete_security_group"
