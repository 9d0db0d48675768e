"""EbsBuilder end to end against the local stack: moto for EC2, a real sshd for the "instance"."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.api import BuildEnv
from amibake.errors import BuildError
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ebs import EbsBuilder
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

SOURCE_AMI = "ami-785db401"


@dataclass
class RecUi:
    lines: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.lines.append(f"==> {message}")

    def message(self, message: str) -> None:
        self.lines.append(f"    {message}")

    def error(self, message: str) -> None:
        self.lines.append(f"ERR {message}")

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, question: str) -> str:
        return ""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass
class Hooks:
    """Runs one command over the communicator, as a shell provisioner would."""

    command: str
    results: list[int] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    cleanup_called: bool = False

    def provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        self.data = dict(build_data)
        code = comm.run(self.command, stdout=self.output.append)
        self.results.append(code)
        if code != 0:
            raise BuildError(f"Script exited with non-zero exit status: {code}")

    def cleanup_provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        self.cleanup_called = True

    def has_checks(self) -> bool:
        return False

    def run_checks(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        raise AssertionError("no -checks in these builds")


def make_config(stack: Stack, **over: Any) -> EbsConfig:
    base: dict[str, Any] = dict(
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
        custom_endpoint_ec2=stack.moto.url,
        skip_region_validation=True,
        source_ami=SOURCE_AMI,
        instance_type="t2.micro",
        ssh_username=stack.sshd.user,
        ssh_host="127.0.0.1",
        ssh_port=stack.sshd.port,
        ssh_timeout="60s",
        ami_name=f"amibake-test-{uuid.uuid4().hex[:8]}",
        ami_description="amibake test build",
        tags={"Name": "amibake-test", "Project": "amibake"},
        run_tags={"Name": "amibake-builder"},
        aws_polling={"delay_seconds": 1, "max_attempts": 30},
    )
    base.update(over)
    return EbsConfig.model_validate(base)


def make_env(ui: RecUi, on_error: str = "cleanup") -> BuildEnv:
    return BuildEnv(
        build_name="basic", builder_type="amazon-ebs", template_dir=Path("."), ui=ui,
        on_error=on_error, run_id="run-test",  # type: ignore[arg-type]
    )


def ec2(stack: Stack, region: str = "us-east-1") -> Any:
    return boto3.client(
        "ec2", endpoint_url=stack.moto.url, region_name=region,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def own_images(stack: Stack, region: str = "us-east-1") -> list[dict[str, Any]]:
    return list(ec2(stack, region).describe_images(Owners=["self"])["Images"])


def assert_no_temporaries(stack: Stack) -> None:
    c = ec2(stack)
    assert c.describe_key_pairs()["KeyPairs"] == []
    groups = [g["GroupName"] for g in c.describe_security_groups()["SecurityGroups"]]
    assert groups == ["default"] * len(groups)
    assert c.describe_volumes()["Volumes"] == []
    states = [
        i["State"]["Name"] for r in c.describe_instances()["Reservations"] for i in r["Instances"]
    ]
    assert states and set(states) == {"terminated"}


def tags(d: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in d.get("Tags", [])}


def test_basic_build(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    marker = f"/tmp/amibake-ebs-{uuid.uuid4().hex[:8]}"
    hooks = Hooks(f"echo built-by-$(id -un) | tee {marker}; rm -f {marker}")
    config = make_config(stack)
    mark = moto.mark()

    artifact = EbsBuilder(config, make_env(ui)).run(hooks)

    actions = moto.ec2_actions(since=mark)
    assert len(actions) <= 18, actions
    assert artifact is not None
    assert hooks.results == [0]
    assert hooks.output == [f"built-by-{stack.sshd.user}"]
    # what the provisioners got
    assert hooks.data["SourceAMI"] == SOURCE_AMI
    assert hooks.data["BuildRegion"] == "us-east-1"
    assert hooks.data["Host"] == "127.0.0.1" and hooks.data["User"] == stack.sshd.user
    assert hooks.data["SSHPrivateKey"].startswith("-----BEGIN")
    assert hooks.data["PackerHTTPAddr"] == "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER"
    assert hooks.data["SourceAMIName"].startswith("ubuntu/images/")
    # the AMI
    images = own_images(stack)
    assert len(images) == 1
    img = images[0]
    assert artifact.amis == {"us-east-1": img["ImageId"]}
    assert artifact.id == f"us-east-1:{img['ImageId']}"
    assert artifact.string() == f"AMIs were created:\nus-east-1: {img['ImageId']}\n"
    assert artifact.builder_id == "mitchellh.amazonebs"
    assert artifact.state("atlas.artifact.metadata") == {"region.us-east-1": img["ImageId"]}
    assert "SSHPrivateKey" not in artifact.state("generated_data")
    assert img["Name"] == config.ami_name
    assert img["Description"] == "amibake test build"
    t = tags(img)
    assert t["Name"] == "amibake-test" and t["Project"] == "amibake"
    assert t["amibake:run-id"] == "run-test" and t["amibake:build"] == "basic"
    snaps = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"] if "Ebs" in b]
    assert snaps
    for snap in ec2(stack).describe_snapshots(SnapshotIds=snaps)["Snapshots"]:
        assert tags(snap)["Name"] == "amibake-test"
    # the instance carries the run tags; nothing temporary is left
    inst = ec2(stack).describe_instances()["Reservations"][0]["Instances"][0]
    assert tags(inst)["Name"] == "amibake-builder"
    assert_no_temporaries(stack)
    # Packer's lines
    for line in (
        f"==> Prevalidating AMI Name: {config.ami_name}",
        f"    Found Image ID: {SOURCE_AMI}",
        "==> Launching a source AWS instance...",
        "==> Using SSH communicator to connect: 127.0.0.1",
        "==> Waiting for SSH to become available...",
        "==> Connected to SSH!",
        "==> Stopping the source instance...",
        f"==> Creating AMI {config.ami_name} from instance {inst['InstanceId']}",
        f"    AMI: {img['ImageId']}",
        "==> Waiting for AMI to become ready...",
        "==> Terminating the source AWS instance...",
        "==> Cleaning up any extra volumes...",
        "==> Deleting temporary security group...",
        "==> Deleting temporary keypair...",
    ):
        assert line in ui.lines, line
    assert hooks.data["SSHPrivateKey"] not in ui.text


def test_copies_permissions_and_destroy(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    config = make_config(
        stack, ami_regions=["us-west-2", "eu-west-1"], ami_users=["123456789012"],
        snapshot_tags={"Kind": "snap"},
    )
    artifact = EbsBuilder(config, make_env(ui)).run(Hooks("true"))
    assert artifact is not None
    assert set(artifact.amis) == {"us-east-1", "us-west-2", "eu-west-1"}
    assert artifact.id == ",".join(sorted(f"{r}:{a}" for r, a in artifact.amis.items()))
    for region, ami in artifact.amis.items():
        c = ec2(stack, region)
        img = c.describe_images(ImageIds=[ami])["Images"][0]
        assert img["Name"] == config.ami_name
        assert tags(img)["Project"] == "amibake"
        perms = c.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
        assert {"UserId": "123456789012"} in perms
        snaps = [b["Ebs"]["SnapshotId"] for b in img["BlockDeviceMappings"] if "Ebs" in b]
        for snap in c.describe_snapshots(SnapshotIds=snaps)["Snapshots"]:
            assert tags(snap)["Kind"] == "snap"
    assert_no_temporaries(stack)
    artifact.destroy()
    for region in artifact.amis:
        assert own_images(stack, region) == []


def test_failing_provisioner_leaves_nothing(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    hooks = Hooks("exit 3")
    with pytest.raises(BuildError, match="exit status: 3"):
        EbsBuilder(make_config(stack), make_env(ui)).run(hooks)
    assert hooks.cleanup_called
    assert own_images(stack) == []
    assert_no_temporaries(stack)


def test_abort_leaves_resources_and_lists_them(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    builder = EbsBuilder(make_config(stack), make_env(ui, on_error="abort"))
    with pytest.raises(BuildError):
        builder.run(Hooks("exit 1"))
    c = ec2(stack)
    keys = [k["KeyName"] for k in c.describe_key_pairs()["KeyPairs"]]
    assert len(keys) == 1 and keys[0].startswith("packer_")
    inst = c.describe_instances()["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "running"
    left = "\n".join(builder.leftovers)
    assert inst["InstanceId"] in left and keys[0] in left and "security group sg-" in left
    assert inst["InstanceId"] in ui.text


def test_taken_ami_name_fails_before_creating_anything(stack: Stack, moto: MotoServer) -> None:
    config = make_config(stack)
    EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
    mark = moto.mark()
    with pytest.raises(BuildError, match="is used by an existing AMI"):
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
    assert moto.ec2_actions(since=mark) == ["DescribeImages"]
    # force_deregister replaces it
    forced = make_config(stack, ami_name=config.ami_name, force_deregister=True, force_delete_snapshot=True)
    art = EbsBuilder(forced, make_env(RecUi())).run(Hooks("true"))
    assert art is not None
    assert [i["ImageId"] for i in own_images(stack)] == [art.amis["us-east-1"]]
