"""amazon-ebsvolume, amazon-ebssurrogate and amazon-instance builds through the native Session Manager
tunnel: the same StepCreateSSMTunnel before StepConnect as amazon-ebs (Packer 1.6.6 has it in each of
these builders; amazon-instance's build uses the stand-in AMI tools of its option tests), observed
as in test_ssm_tunnel.py: StartSession's document and ports, the pause, no SSH ingress rule, an upload
that survives a dropped WebSocket, TerminateSession at the end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.plugins.amazon.ebsvolume import EbsVolumeBuilder
from amibake.plugins.amazon.instance import InstanceBuilder
from amibake.plugins.amazon.surrogate import EbsSurrogateBuilder
from tests.awsproxy import AwsProxy
from tests.ssm_emulation import SsmEmulator
from tests.stack.test_amazon_instance_options import _tools, instance_config  # noqa: F401  (_tools: autouse)
from tests.stack.test_ebs_builder import make_env
from tests.stack.test_ebssurrogate_options import surrogate_config
from tests.stack.test_ebsvolume_options import volume_config
from tests.stack.test_ssm_tunnel import Hooks, TimedUi, free_port, ssm_endpoint
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack


@pytest.fixture
def proxy(stack: Stack, moto: MotoServer) -> Iterator[AwsProxy]:
    with AwsProxy(moto.url) as p:
        yield p


@pytest.fixture
def ssm(stack: Stack, proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[SsmEmulator]:
    with ssm_endpoint(stack, proxy, monkeypatch) as emu:
        yield emu

#: what the tunnel tests change of a builder's stack-test config: no endpoint or host of their own
THROUGH_SSM: dict[str, Any] = dict(custom_endpoint_ec2="", ssh_host="", ssh_port=22,
                                   ssh_interface="session_manager", iam_instance_profile="ssm-builder",
                                   pause_before_ssm="200ms")


def build_through_the_tunnel(stack: Stack, ssm: SsmEmulator, proxy: AwsProxy, config: Any,
                             builder: Any) -> None:
    boto3.client("iam", endpoint_url=stack.moto.url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_instance_profile(InstanceProfileName="ssm-builder")
    marker = Path(f"/tmp/amibake-ssm-{uuid.uuid4().hex[:8]}")
    blob = uuid.uuid4().bytes * 8000  # 128 KB through the tunnel
    ui = TimedUi()
    hooks = Hooks([
        lambda comm: ssm.drop_after(10),
        lambda comm: comm.upload(str(marker), blob),
        f"wc -c < {marker}",
    ])
    try:
        artifact = builder(config, make_env(ui)).run(hooks)
        assert artifact is not None
        assert marker.read_bytes() == blob and hooks.output == [str(len(blob))]
    finally:
        marker.unlink(missing_ok=True)
    (run,) = proxy.sent("RunInstances")
    assert run.params["IamInstanceProfile.Name"] == "ssm-builder"
    assert proxy.sent("AuthorizeSecurityGroupIngress") == []
    (start,) = [body for op, body in ssm.calls if op == "StartSession"]
    assert start["DocumentName"] == "AWS-StartPortForwardingSession"
    local = str(config.session_manager_port)
    assert start["Parameters"] == {"portNumber": ["22"], "localPortNumber": [local]}
    (session,) = ssm.sessions.values()
    assert session.bytes_to_target > len(blob) and ssm.drops == 1 and session.connections == 2
    assert ssm.ops() == ["StartSession", "ResumeSession", "TerminateSession"]
    assert ssm.open_sessions() == [] and ssm.violations == []
    wait_line = "Waiting 200ms before establishing the SSM session..."
    assert ssm.started_at[session.id] - ui.said_at[wait_line] >= 0.2
    assert "==> Using SSH communicator to connect: localhost" in ui.lines


@pytest.mark.effect("builder/amazon-ebsvolume", "ssh_interface", "session_manager_port", "pause_before_ssm")
def test_ebsvolume_through_the_tunnel(stack: Stack, ssm: SsmEmulator, proxy: AwsProxy) -> None:
    config = volume_config(stack, **THROUGH_SSM, session_manager_port=free_port())
    build_through_the_tunnel(stack, ssm, proxy, config, EbsVolumeBuilder)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_interface", "session_manager_port",
                    "pause_before_ssm")
def test_ebssurrogate_through_the_tunnel(stack: Stack, ssm: SsmEmulator,
                                        proxy: AwsProxy) -> None:
    config = surrogate_config(stack, **THROUGH_SSM, session_manager_port=free_port())
    build_through_the_tunnel(stack, ssm, proxy, config, EbsSurrogateBuilder)


@pytest.mark.effect("builder/amazon-instance", "ssh_interface", "session_manager_port", "pause_before_ssm")
def test_instance_through_the_tunnel(stack: Stack, ssm: SsmEmulator, proxy: AwsProxy) -> None:
    config = instance_config(stack, **THROUGH_SSM, session_manager_port=free_port())
    build_through_the_tunnel(stack, ssm, proxy, config, InstanceBuilder)
