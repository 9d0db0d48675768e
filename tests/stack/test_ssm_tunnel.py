"""amazon-ebs builds whose SSH goes through amibake's native Session Manager tunnel: moto for EC2 and
IAM, the SSM emulation (tests/ssm_emulation.py) for StartSession/ResumeSession/TerminateSession and the
agent's side of the data channel, which forwards to the stack's sshd (the "instance").

The builds reach the emulated SSM as a user reaches a custom endpoint: ``AWS_ENDPOINT_URL_SSM`` (EC2 and
IAM through ``AWS_ENDPOINT_URL``), with no ``ssh_host``: SSH goes to localhost, on the tunnel's port.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.aws.session import CLIENTS
from amibake.errors import BuildError
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ebs import EbsBuilder
from tests.awsproxy import AwsProxy
from tests.ssm_emulation import SsmEmulator
from tests.stack.test_ebs_builder import SOURCE_AMI, RecUi, make_env
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

SSM_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Resource": ["*"],
    "Action": ["ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel",
               "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
               "ssmmessages:OpenDataChannel"]}]}


@pytest.fixture
def proxy(stack: Stack, moto: MotoServer) -> Iterator[AwsProxy]:
    """The recording proxy in front of moto (EC2 and IAM requests as sent)."""
    with AwsProxy(moto.url) as p:
        yield p


@contextlib.contextmanager
def ssm_endpoint(stack: Stack, proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[SsmEmulator]:
    """The SSM emulation forwarding to the stack's sshd, reached through AWS_ENDPOINT_URL_SSM; EC2 and
    IAM through the recording proxy (AWS_ENDPOINT_URL)."""
    emu = SsmEmulator(stack.sshd.port).start()
    for key, value in stack.env().items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", emu.endpoint)
    CLIENTS.clear()  # no client made before the SSM endpoint was set
    try:
        yield emu
    finally:
        CLIENTS.clear()
        emu.stop()


@pytest.fixture
def ssm(stack: Stack, proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[SsmEmulator]:
    with ssm_endpoint(stack, proxy, monkeypatch) as emu:
        yield emu


def run_instances(proxy: AwsProxy) -> dict[str, str]:
    sent = proxy.sent("RunInstances")
    assert len(sent) == 1
    return dict(sent[0].params)


@dataclass
class TimedUi(RecUi):
    said_at: dict[str, float] = field(default_factory=dict)

    def say(self, message: str) -> None:
        self.said_at.setdefault(message, time.monotonic())
        super().say(message)


@dataclass
class Hooks:
    """Provisioning over the communicator: each step a command, or a callable given the communicator."""

    commands: list[Any]
    output: list[str] = field(default_factory=list)

    def provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        for command in self.commands:
            if callable(command):
                command(comm)
                continue
            code = comm.run(command, stdout=self.output.append)
            if code != 0:
                raise BuildError(f"Script exited with non-zero exit status: {code}")

    def cleanup_provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        pass

    def has_checks(self) -> bool:
        return False

    def run_checks(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        raise AssertionError("no -checks in these builds")


def make_config(stack: Stack, **over: Any) -> EbsConfig:
    base: dict[str, Any] = dict(
        region="us-east-1", skip_region_validation=True, source_ami=SOURCE_AMI, instance_type="t2.micro",
        ssh_username=stack.sshd.user, ssh_timeout="60s", ssh_interface="session_manager",
        pause_before_ssm="100ms",
        ami_name=f"amibake-ssm-{uuid.uuid4().hex[:8]}", aws_polling={"delay_seconds": 1, "max_attempts": 30},
    )
    base.update(over)
    return EbsConfig.model_validate(base)


def iam(stack: Stack) -> Any:
    return boto3.client("iam", endpoint_url=stack.moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def ec2(stack: Stack) -> Any:
    return boto3.client("ec2", endpoint_url=stack.moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def only_instance(stack: Stack) -> dict[str, Any]:
    reservations = ec2(stack).describe_instances()["Reservations"]
    instances = [i for r in reservations for i in r["Instances"]]
    assert len(instances) == 1
    return dict(instances[0])


@pytest.mark.effect("builder/amazon-ebs", "ssh_interface", "session_manager_port", "pause_before_ssm")
def test_build_through_the_tunnel_survives_a_dropped_websocket(stack: Stack, ssm: SsmEmulator,
                                                              proxy: AwsProxy) -> None:
    iam(stack).create_instance_profile(InstanceProfileName="ssm-builder")
    port = free_port()
    marker = Path(f"/tmp/amibake-ssm-{uuid.uuid4().hex[:8]}")
    upload = Path(f"{marker}.bin")
    blob = uuid.uuid4().bytes * 20000  # 320 KB through the tunnel
    ui = TimedUi()
    hooks = Hooks([
        f"echo provisioned-by-$(id -un) > {marker}",
        lambda comm: ssm.drop_after(20),  # the WebSocket drops in the middle of the upload
        lambda comm: comm.upload(str(upload), blob),
        f"cat {upload} >> {marker}; wc -c < {marker}",
    ])
    config = make_config(stack, iam_instance_profile="ssm-builder", session_manager_port=port,
                         pause_before_ssm="1s")
    try:
        artifact = EbsBuilder(config, make_env(ui)).run(hooks)
        assert artifact is not None and len(artifact.amis) == 1
        # the provisioner's file is on the "instance", written through the tunnel, whole
        first = f"provisioned-by-{stack.sshd.user}\n".encode()
        assert marker.read_bytes() == first + blob
        assert hooks.output == [str(len(first) + len(blob))]
    finally:
        marker.unlink(missing_ok=True)
        upload.unlink(missing_ok=True)
    inst = only_instance(stack)
    assert run_instances(proxy)["IamInstanceProfile.Name"] == "ssm-builder"
    # Packer's SkipSSHRuleCreation: the temporary security group lets nothing in
    assert len(proxy.sent("CreateSecurityGroup")) == 1 and proxy.sent("AuthorizeSecurityGroupIngress") == []
    assert not [line for line in ui.lines if "Authorizing access to port" in line]
    # StartSession as Packer sends it: the port-forwarding document, the instance, remote and local ports
    starts = [body for op, body in ssm.calls if op == "StartSession"]
    assert starts == [{"Target": inst["InstanceId"], "DocumentName": "AWS-StartPortForwardingSession",
                       "Parameters": {"portNumber": ["22"], "localPortNumber": [str(port)]}}]
    (session,) = ssm.sessions.values()
    # the SSH bytes went through the WebSocket, both ways; the drop was resumed with a new token
    assert session.bytes_to_target > len(blob) and session.bytes_from_target > 0
    assert ssm.drops == 1 and session.connections == 2 and len(set(session.tokens_used)) == 2
    assert ssm.ops() == ["StartSession", "ResumeSession", "TerminateSession"]
    assert ssm.open_sessions() == [] and ssm.violations == []
    # pause_before_ssm: said, then waited before StartSession
    wait_line = "Waiting 1s before establishing the SSM session..."
    assert wait_line in ui.said_at
    for line in (f'    Starting portForwarding session "{session.id}".',
                 "==> Using SSH communicator to connect: localhost", "==> Connected to SSH!"):
        assert line in ui.lines, line
    connect_line = "==> Using SSH communicator to connect: localhost"
    assert ui.lines.index(f"==> {wait_line}") < ui.lines.index(connect_line)
    assert ssm.started_at[session.id] - ui.said_at[wait_line] >= 1.0


def test_temporary_profile_and_a_target_not_connected_yet(stack: Stack, ssm: SsmEmulator,
                                                          proxy: AwsProxy) -> None:
    ssm.not_connected = 2  # the agent registers late: StartSession is retried
    ssm.agent_version = "3.1.1511.0"  # a current agent: the SSH connection is an smux stream
    ui = TimedUi()
    hooks = Hooks(["test -n \"$SSH_CONNECTION\" && echo ok"])
    config = make_config(stack, temporary_iam_instance_profile_policy_document=SSM_POLICY)
    artifact = EbsBuilder(config, make_env(ui)).run(hooks)
    assert artifact is not None and hooks.output == ["ok"]
    profile = run_instances(proxy)["IamInstanceProfile.Name"]
    assert profile.startswith("packer-")
    assert [r.params["RoleName"] for r in proxy.sent("PutRolePolicy", "iam")] == [profile]
    assert iam(stack).list_instance_profiles()["InstanceProfiles"] == []  # the temporary profile is gone
    starts = [body for op, body in ssm.calls if op == "StartSession"]
    assert len(starts) == 3
    local = int(starts[-1]["Parameters"]["localPortNumber"][0])
    assert local > 0
    (session,) = ssm.sessions.values()
    assert session.mux and session.stream_ids == [3] and session.bytes_to_target > 0
    assert ssm.ops()[-1] == "TerminateSession" and ssm.open_sessions() == [] and ssm.violations == []


def test_a_failed_build_leaves_no_session_open(stack: Stack, ssm: SsmEmulator) -> None:
    iam(stack).create_instance_profile(InstanceProfileName="ssm-builder")
    ui = TimedUi()
    config = make_config(stack, iam_instance_profile="ssm-builder")
    with pytest.raises(BuildError, match="non-zero exit status: 3"):
        EbsBuilder(config, make_env(ui)).run(Hooks(["exit 3"]))
    assert ssm.ops() == ["StartSession", "TerminateSession"]
    assert ssm.open_sessions() == [] and ssm.violations == []
    assert only_instance(stack)["State"]["Name"] == "terminated"
    assert ec2(stack).describe_images(Owners=["self"])["Images"] == []
