"""The publishing post-processors (issue #15 part 2): ``amibake-ssm-parameter`` and
``amibake-launch-template``.

One ``amibake build`` on the stack with an AMI copied to a second region publishes to both in both
regions: the SSM parameter's history keeps the earlier value (a version 1 seeded before the build),
the launch template gets a new version with the AMI, based on the latest version and made the
default. The undo ("undone only if the build fails before they complete") is driven in-process: a
build interrupted after the first region undoes what was published there; a missing launch template
in a region fails before anything changes; a completed publication stays.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.api import BuildEnv
from amibake.aws.session import CLIENTS
from amibake.errors import BuildError
from amibake.postprocessors.amibake_launch_template.config import LaunchTemplateConfig
from amibake.postprocessors.amibake_launch_template.postprocessor import LaunchTemplatePostProcessor
from amibake.postprocessors.amibake_ssm_parameter.config import SsmParameterConfig
from amibake.postprocessors.amibake_ssm_parameter.postprocessor import SsmParameterPostProcessor
from tests.awsproxy import AwsProxy
from tests.stack.test_build_cli import amibake, builder
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

REGIONS = ("us-east-1", "us-west-2")
PARAM = "/images/web/latest"


def client(env: dict[str, str], service: str, region: str) -> Any:
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def seed(env: dict[str, str]) -> dict[str, str]:
    """In each region: the parameter at version 1 (an older AMI) and the launch template "web" with two
    versions (the default is 1); region -> that older AMI."""
    old = {}
    for region in REGIONS:
        ec2 = client(env, "ec2", region)
        old[region] = ec2.register_image(Name="web-old")["ImageId"]
        client(env, "ssm", region).put_parameter(Name=PARAM, Value=old[region], Type="String",
                                                 DataType="aws:ec2:image")
        lt = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
            "ImageId": old[region], "InstanceType": "t3.micro"})
        ec2.create_launch_template_version(LaunchTemplateId=lt["LaunchTemplate"]["LaunchTemplateId"],
                                           LaunchTemplateData={"ImageId": old[region],
                                                               "InstanceType": "t3.small"})
    return old


def versions(env: dict[str, str], region: str) -> list[dict[str, Any]]:
    return list(client(env, "ec2", region).describe_launch_template_versions(
        LaunchTemplateName="web")["LaunchTemplateVersions"])


def default_version(env: dict[str, str], region: str) -> int:
    lts = client(env, "ec2", region).describe_launch_templates(LaunchTemplateNames=["web"])["LaunchTemplates"]
    return int(lts[0]["DefaultVersionNumber"])


@pytest.mark.effect("post-processor/amibake-ssm-parameter", "parameter_name", "description")
@pytest.mark.effect("post-processor/amibake-launch-template", "launch_template_name", "make_default",
                    "version_description")
def test_a_build_publishes_to_ssm_and_a_launch_template_in_both_regions(
        stack: Stack, aws_env: dict[str, str], moto: MotoServer, tmp_path: Path) -> None:
    old = seed(aws_env)
    template = {
        "builders": [builder(stack, "pub", ami_regions=["us-west-2"])],
        "post-processors": [[
            {"type": "amibake-ssm-parameter", "parameter_name": PARAM, "description": "web image"},
            {"type": "amibake-launch-template", "launch_template_name": "web", "make_default": True,
             "version_description": "built by amibake"},
        ]],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    r = amibake(["build", "-color=false", "-machine-readable", "t.json"], aws_env, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    artifact_ids = [line.split(",")[5] for line in r.stdout.splitlines() if ",artifact," in line
                    and line.split(",")[4] == "id"]
    amis = dict(pair.split(":") for pair in artifact_ids[-1].replace("%!(PACKER_COMMA)", ",").split(","))
    assert sorted(amis) == list(REGIONS)
    for region in REGIONS:
        ssm = client(aws_env, "ssm", region)
        p = ssm.get_parameter(Name=PARAM)["Parameter"]
        assert (p["Value"], p["DataType"], p["Version"]) == (amis[region], "aws:ec2:image", 2)
        history = ssm.get_parameter_history(Name=PARAM)["Parameters"]
        assert [h["Value"] for h in history] == [old[region], amis[region]]
        assert history[-1]["Description"] == "web image"
        vs = {v["VersionNumber"]: v for v in versions(aws_env, region)}
        assert sorted(vs) == [1, 2, 3]
        assert vs[3]["LaunchTemplateData"]["ImageId"] == amis[region]
        assert vs[3]["VersionDescription"] == "built by amibake"
        assert default_version(aws_env, region) == 3
        assert vs[1]["LaunchTemplateData"]["ImageId"] == old[region]  # the other versions untouched


class _Ui:
    """A build UI that sets ``cancel`` once a region has been published (an interrupted build)."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel
        self.lines: list[str] = []

    def say(self, message: str) -> None:
        self.lines.append(message)

    def message(self, message: str) -> None:
        self.lines.append(message)
        if self.cancel is not None and message.startswith("us-east-1:"):
            self.cancel.set()

    def error(self, message: str) -> None:
        self.lines.append("ERROR " + message)

    def progress(self, label: str, fraction: float | None) -> None:
        pass

    def ask(self, question: str) -> str:
        return ""


class _Artifact:
    builder_id = "mitchellh.amazonebs"
    files: list[str] = []

    def __init__(self, amis: dict[str, str]) -> None:
        self.id = ",".join(f"{r}:{a}" for r, a in sorted(amis.items()))

    def string(self) -> str:
        return self.id

    def state(self, name: str) -> Any:
        return None

    def destroy(self) -> None:
        raise AssertionError("a publishing post-processor never destroys its input")


def env_for(ui: _Ui, cancel: threading.Event) -> BuildEnv:
    return BuildEnv(build_name="pub", builder_type="amazon-ebs", template_dir=Path("."), ui=ui, cancel=cancel)


@pytest.fixture
def fresh_clients(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in aws_env.items():
        monkeypatch.setenv(k, v)
    CLIENTS.clear()
    yield aws_env
    CLIENTS.clear()


@pytest.mark.effect("post-processor/amibake-ssm-parameter", "regions")
def test_an_interrupted_publication_is_undone_and_a_completed_one_stays(
        fresh_clients: dict[str, str], moto: MotoServer) -> None:
    env = fresh_clients
    old = seed(env)
    new = {r: client(env, "ec2", r).register_image(Name="web-new")["ImageId"] for r in REGIONS}
    client(env, "ssm", "us-west-2").delete_parameter(Name=PARAM)  # us-west-2 has none before

    # interrupted after us-east-1: us-east-1 gets its old value back (a new version), us-west-2 nothing
    cancel = threading.Event()
    ui = _Ui(cancel)
    pp = SsmParameterPostProcessor(SsmParameterConfig(parameter_name=PARAM), env_for(ui, cancel))
    with pytest.raises(BuildError, match=r"us-west-2: the build was interrupted; what was published in "
                                         r"us-east-1 was undone"):
        pp.post_process(_Artifact(new))
    east = client(env, "ssm", "us-east-1")
    assert [h["Value"] for h in east.get_parameter_history(Name=PARAM)["Parameters"]] == [
        old["us-east-1"], new["us-east-1"], old["us-east-1"]]
    with pytest.raises(client(env, "ssm", "us-west-2").exceptions.ParameterNotFound):
        client(env, "ssm", "us-west-2").get_parameter(Name=PARAM)

    # complete: it stays
    ui = _Ui()
    pp = SsmParameterPostProcessor(SsmParameterConfig(parameter_name=PARAM, regions=["us-west-2"]),
                                   env_for(ui, threading.Event()))
    out, keep, force = pp.post_process(_Artifact(new))
    assert keep and force and out.id == _Artifact(new).id
    assert client(env, "ssm", "us-west-2").get_parameter(Name=PARAM)["Parameter"]["Value"] == new["us-west-2"]
    assert [h["Value"] for h in east.get_parameter_history(Name=PARAM)["Parameters"]] == [
        old["us-east-1"], new["us-east-1"], old["us-east-1"]]  # not in regions: untouched


@pytest.mark.effect("post-processor/amibake-launch-template", "source_version")
def test_an_interrupted_launch_template_publication_deletes_its_version_and_restores_the_default(
        fresh_clients: dict[str, str], moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    env = fresh_clients
    seed(env)
    new = {r: client(env, "ec2", r).register_image(Name="web-new")["ImageId"] for r in REGIONS}
    # moto has no DeleteLaunchTemplateVersions: the proxy answers it as AWS documents, and records it
    ok = ('<DeleteLaunchTemplateVersionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
          '<requestId>r</requestId><successfullyDeletedLaunchTemplateVersionSet/>'
          '<unsuccessfullyDeletedLaunchTemplateVersionSet/></DeleteLaunchTemplateVersionsResponse>')
    with AwsProxy(env["AWS_ENDPOINT_URL"], emulate={"DeleteLaunchTemplateVersions": ok}) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        CLIENTS.clear()
        cancel = threading.Event()
        config = LaunchTemplateConfig(launch_template_name="web", make_default=True, source_version="1")
        pp = LaunchTemplatePostProcessor(config, env_for(_Ui(cancel), cancel))
        with pytest.raises(BuildError, match="was undone"):
            pp.post_process(_Artifact(new))
        created = proxy.sent("CreateLaunchTemplateVersion")
        assert [(c.region, c.params["SourceVersion"], c.params["LaunchTemplateData.ImageId"])
                for c in created] == [("us-east-1", "1", new["us-east-1"])]
        deleted = proxy.sent("DeleteLaunchTemplateVersions")
        assert [(d.region, d.values("LaunchTemplateVersion")) for d in deleted] == [("us-east-1", ["3"])]
    assert default_version(env, "us-east-1") == 1  # made default (3), then put back
    modified = [m.params["SetDefaultVersion"] for m in proxy.sent("ModifyLaunchTemplate")]
    assert modified == ["3", "1"]
    assert [v["VersionNumber"] for v in versions(env, "us-west-2")] == [1, 2]


@pytest.mark.effect("post-processor/amibake-launch-template", "regions")
def test_a_missing_launch_template_fails_before_anything_changes(
        fresh_clients: dict[str, str], moto: MotoServer) -> None:
    env = fresh_clients
    seed(env)
    client(env, "ec2", "us-west-2").delete_launch_template(LaunchTemplateName="web")
    new = {r: client(env, "ec2", r).register_image(Name="web-new")["ImageId"] for r in REGIONS}
    pp = LaunchTemplatePostProcessor(LaunchTemplateConfig(launch_template_name="web"),
                                     env_for(_Ui(), threading.Event()))
    with pytest.raises(BuildError, match="us-west-2: no launch template named 'web'; nothing was changed"):
        pp.post_process(_Artifact(new))
    assert [v["VersionNumber"] for v in versions(env, "us-east-1")] == [1, 2]
    # with regions, only those are looked up and published
    pp = LaunchTemplatePostProcessor(LaunchTemplateConfig(launch_template_name="web", regions=["us-east-1"]),
                                     env_for(_Ui(), threading.Event()))
    pp.post_process(_Artifact(new))
    got = {v["VersionNumber"]: v["LaunchTemplateData"].get("ImageId") for v in versions(env, "us-east-1")}
    assert sorted(got) == [1, 2, 3] and got[3] == new["us-east-1"]
    assert default_version(env, "us-east-1") == 1  # make_default not set
