"""amazon-instance (instance-store AMIs) against the local stack: moto for EC2 and S3 (EC2 through the
recording proxy), a real sshd for the "instance".

The stack's instance has no AMI tools: the builds install two small scripts (tests/stack/data/instance)
that stand in for ec2-bundle-vol (a real manifest and parts in the bundle directory) and
ec2-upload-bundle (the manifest and parts into moto's S3, over curl), and name them in
``bundle_vol_command`` / ``bundle_upload_command``. moto's RegisterImage keeps only the name and the
description: the exact RegisterImage request (ImageLocation...) is asserted through the proxy.
"""

from __future__ import annotations

import json
import shutil
import signal
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.instance import InstanceBuilder
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.template.interpolate import InterpContext, render
from tests.awsproxy import AwsProxy
from tests.stack.test_ebs_builder import SOURCE_AMI, Hooks, RecUi, ec2, make_env, tags
from tests.stack.test_reliability import assert_nothing_left, inventory, run_cleanup, start_build
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

TOOLS = Path(__file__).parent / "data" / "instance"
REGION = "us-east-1"
#: an instance-store AMI of moto's default images (what amazon-instance builds from on AWS)
INSTANCE_STORE_AMI = "ami-04681a1dbd79675b6"
#: the template's secret key (moto takes any): it must reach the upload command and never the output
SECRET = "sEcret-Key-4e0b"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()


@pytest.fixture
def remote() -> Iterator[str]:
    """A directory of the "instance" (the local sshd's host) for the tools, the X509 files, the bundle."""
    path = Path("/tmp") / f"amibake-instance-{uuid.uuid4().hex[:10]}"
    yield str(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def bucket() -> str:
    return f"bundles-{uuid.uuid4().hex[:10]}"


def s3(moto: MotoServer) -> Any:
    return boto3.client("s3", endpoint_url=moto.url, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def objects(moto: MotoServer, bucket: str) -> list[str]:
    try:
        return sorted(o["Key"] for o in s3(moto).list_objects_v2(Bucket=bucket).get("Contents", []))
    except s3(moto).exceptions.NoSuchBucket:
        return []


def vol_command(remote: str) -> str:
    """Packer's default bundle_vol_command, the stand-in script in place of ``sudo -i -n ec2-bundle-vol``."""
    return (f"sh {remote}/tools/ec2-bundle-vol -k {{{{.KeyPath}}}} -u {{{{.AccountId}}}} "
            "-c {{.CertPath}} -r {{.Architecture}} -e {{.PrivatePath}}/* -d {{.Destination}} -p {{.Prefix}} "
            "--batch --no-filter")


def upload_command(remote: str, moto: MotoServer) -> str:
    """Packer's default bundle_upload_command (with keys), the stand-in script in place of
    ``sudo -i -n ec2-upload-bundle``, and moto's URL."""
    return (f"sh {remote}/tools/ec2-upload-bundle -b {{{{.BucketName}}}} -m {{{{.ManifestPath}}}} "
            "-a {{.AccessKey}} -s {{.SecretKey}} -t '{{.Token}}' -d {{.BundleDirectory}} --batch "
            f"--region {{{{.Region}}}} --retry --url {moto.url}")


@dataclass
class ToolHooks(Hooks):
    """The provisioner: installs the stand-in AMI tools on the instance, then runs ``command``."""

    remote: str = ""

    def provision(self, comm: Any, build_data: Mapping[str, Any]) -> None:
        assert comm.run(f"mkdir -p {self.remote}/tools {self.remote}/x509 {self.remote}/bundle") == 0
        for script in ("ec2-bundle-vol", "ec2-upload-bundle"):
            comm.upload(f"{self.remote}/tools/{script}", (TOOLS / script).read_bytes(), mode=0o755)
        super().provision(comm, build_data)


def make_config(stack: Stack, moto: MotoServer, tmp_path: Path, remote: str, bucket: str,
                **over: Any) -> InstanceConfig:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\ntest-cert\n-----END CERTIFICATE-----\n")
    key.write_text("-----BEGIN PRIVATE KEY-----\ntest-key\n-----END PRIVATE KEY-----\n")
    base: dict[str, Any] = dict(
        region=REGION, access_key="testing", secret_key="testing", custom_endpoint_ec2=moto.url,
        source_ami=SOURCE_AMI, instance_type="t2.micro", ssh_username=stack.sshd.user, ssh_host="127.0.0.1",
        ssh_port=stack.sshd.port, ssh_timeout="60s", ami_name=f"instance-{uuid.uuid4().hex[:8]}",
        run_tags={"Name": "amibake-instance"}, aws_polling={"delay_seconds": 1, "max_attempts": 30},
        account_id="1234-5678-9012", s3_bucket=bucket, x509_cert_path=str(cert), x509_key_path=str(key),
        x509_upload_path=f"{remote}/x509", bundle_destination=f"{remote}/bundle",
        bundle_prefix=f"image-{uuid.uuid4().hex[:6]}", bundle_vol_command=vol_command(remote),
        bundle_upload_command=upload_command(remote, moto),
    )
    base.update(over)
    return InstanceConfig.model_validate(base)


def go_env(ui: RecUi) -> Any:
    """The build environment, rendering late strings as the CLI does (Go templates, the data given)."""
    env = make_env(ui)
    env.builder_type = "amazon-instance"
    env.render = lambda text, data: render(text, InterpContext(data=dict(data)))
    return env


def args_of(path: Path) -> dict[str, str]:
    """The ``key=value`` lines a stand-in script wrote (the options it was run with)."""
    out: dict[str, str] = {}
    last = ""
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            out[key], last = value, key
        else:
            out[last] += "\n" + line
    return out


@pytest.mark.effect("builder/amazon-instance", "account_id", "bundle_destination", "bundle_prefix",
                    "bundle_upload_command", "bundle_vol_command", "s3_bucket", "x509_cert_path",
                    "x509_key_path", "x509_upload_path", "ami_name", "ami_description", "tags",
                    "ami_block_device_mappings", "ami_virtualization_type", "sriov_support", "ena_support",
                    "tpm_support")
def test_build_bundles_uploads_and_registers(stack: Stack, moto: MotoServer, tmp_path: Path, remote: str,
                                             bucket: str) -> None:
    ui = RecUi()
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, moto, tmp_path, remote, bucket, custom_endpoint_ec2=proxy.url, s3_bucket=f"{bucket}/amis",
            source_ami=INSTANCE_STORE_AMI,
            ami_description="from {{ .SourceAMI }}", tags={"Role": "bundle"},
            ami_block_device_mappings=[{"device_name": "/dev/sdb", "virtual_name": "ephemeral0"}],
            ami_virtualization_type="hvm", sriov_support=True, ena_support=True, tpm_support="v2.0",
            secret_key=SECRET,
            bundle_upload_command=upload_command(remote, moto) + " && echo sent-with {{.SecretKey}}")
        env = go_env(ui)
        artifact = InstanceBuilder(config, env).run(ToolHooks("true", remote=remote))
        assert artifact is not None
        [register] = proxy.sent("RegisterImage")
        assert register.params == {
            "Action": "RegisterImage", "Version": register.params["Version"],
            "ImageLocation": f"{bucket}/amis/{config.bundle_prefix}.manifest.xml", "Name": config.ami_name,
            "BlockDeviceMapping.1.DeviceName": "/dev/sdb", "BlockDeviceMapping.1.VirtualName": "ephemeral0",
            "VirtualizationType": "hvm", "SriovNetSupport": "simple", "EnaSupport": "true",
            "TpmSupport": "v2.0", "Description": f"from {INSTANCE_STORE_AMI}",
        }
        assert not proxy.sent("CreateImage") and not proxy.sent("StopInstances")
        # launched from the instance-store source AMI (amazon-ebs refuses one)
        assert proxy.sent("RunInstances")[0].params["ImageId"] == INSTANCE_STORE_AMI
    [source] = ec2(stack).describe_images(ImageIds=[INSTANCE_STORE_AMI])["Images"]
    assert source["RootDeviceType"] == "instance-store"
    ami = artifact.amis[REGION]
    assert artifact.builder_id == "mitchellh.amazon.instance"
    # the instance's side: the X509 files uploaded, the tools run with Packer's template data
    x509 = Path(remote) / "x509"
    assert (x509 / "cert.pem").read_text() == Path(config.x509_cert_path).read_text()
    assert (x509 / "key.pem").read_text() == Path(config.x509_key_path).read_text()
    bundled = args_of(Path(remote) / "bundle" / f"{config.bundle_prefix}.args")
    assert bundled["user"] == "123456789012" and bundled["arch"] == "x86_64"
    assert bundled["exclude"] == f"{remote}/x509/cert.pem"  # {{.PrivatePath}}/*, as the shell expands it
    assert "test-cert" in bundled["cert"] and "test-key" in bundled["key"]
    uploaded = args_of(Path(remote) / "bundle" / "upload.args")
    assert uploaded == {"bucket": f"{bucket}/amis",
                        "manifest": f"{remote}/bundle/{config.bundle_prefix}.manifest.xml",
                        "access": "testing", "secret": SECRET, "token": "", "region": REGION}
    # the bundle is in S3 (the AMI's backing store), kept
    prefix = config.bundle_prefix
    assert objects(moto, bucket) == [f"amis/{prefix}.manifest.xml", f"amis/{prefix}.part.0",
                                     f"amis/{prefix}.part.1"]
    # the AMI: named, described, tagged, marked delivered; the instance gone
    c = ec2(stack)
    [image] = c.describe_images(ImageIds=[ami])["Images"]
    assert image["Name"] == config.ami_name and image["Description"] == f"from {INSTANCE_STORE_AMI}"
    assert tags(image)["Role"] == "bundle" and FINISHED_TAG in tags(image)
    states = {i["State"]["Name"] for r in c.describe_instances()["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}
    text = ui.text
    order = ["Uploading X509 Certificate...", "Bundling the volume...", f"Bundled {prefix} into",
             "Uploading the bundle...", "Registering the AMI...", f"AMI: {ami}"]
    assert [text.index(s) for s in order] == sorted(text.index(s) for s in order)
    # the secret key reached the command (the script has it) but no output: the echo shows it redacted
    assert "sent-with" in text and SECRET not in text


def test_failing_provisioner_leaves_nothing(stack: Stack, moto: MotoServer, tmp_path: Path, remote: str,
                                           bucket: str) -> None:
    before = inventory(moto)
    config = make_config(stack, moto, tmp_path, remote, bucket)
    with pytest.raises(BuildError, match="non-zero exit status"):
        InstanceBuilder(config, go_env(RecUi())).run(ToolHooks("exit 3", remote=remote))
    assert_nothing_left(moto, before)
    assert objects(moto, bucket) == []


def test_failed_upload_removes_the_bundle_objects(stack: Stack, moto: MotoServer, tmp_path: Path,
                                                  remote: str, bucket: str) -> None:
    """An upload that put the objects, then exited 3: the objects are deleted, no AMI is registered."""
    before = inventory(moto)
    ui = RecUi()
    config = make_config(stack, moto, tmp_path, remote, bucket,
                         bundle_upload_command=upload_command(remote, moto) + "; exit 3")
    with pytest.raises(BuildError, match="Bundle upload failed"):
        InstanceBuilder(config, go_env(ui)).run(ToolHooks("true", remote=remote))
    assert f"Please check that the bucket `{bucket}` does not exist" in ui.text
    assert "Uploaded " in ui.text  # the objects were there
    assert objects(moto, bucket) == []
    assert_nothing_left(moto, before)


TEMPLATE: dict[str, Any] = {
    "variables": {"ssh_host": "", "ssh_port": "22", "ssh_username": "", "ami_name": "", "remote": "",
                  "tools": "", "bucket": "", "cert": "", "s3_url": ""},
    "builders": [{
        "type": "amazon-instance", "region": REGION, "source_ami": SOURCE_AMI, "instance_type": "t2.micro",
        "ssh_username": "{{user `ssh_username`}}", "ssh_host": "{{user `ssh_host`}}",
        "ssh_port": "{{user `ssh_port`}}", "ssh_timeout": "60s", "ami_name": "{{user `ami_name`}}",
        "account_id": "123456789012", "s3_bucket": "{{user `bucket`}}",
        "x509_cert_path": "{{user `cert`}}", "x509_key_path": "{{user `cert`}}",
        "x509_upload_path": "{{user `remote`}}", "bundle_destination": "{{user `remote`}}",
        "bundle_vol_command": "sh {{user `remote`}}/ec2-bundle-vol -k {{.KeyPath}} -u {{.AccountId}} "
                              "-c {{.CertPath}} -r {{.Architecture}} -d {{.Destination}} -p {{.Prefix}}",
        "bundle_upload_command": "sh {{user `remote`}}/ec2-upload-bundle -b {{.BucketName}} "
                                 "-m {{.ManifestPath}} -a {{.AccessKey}} -s {{.SecretKey}} "
                                 "-d {{.BundleDirectory}} --region {{.Region}} --url {{user `s3_url`}}",
    }],
    "provisioners": [{"type": "file", "source": "{{user `tools`}}/", "destination": "{{user `remote`}}"}],
}


def _cli_vars(moto: MotoServer, tmp_path: Path, remote: str, bucket: str) -> tuple[str, ...]:
    cert = tmp_path / "x509.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\ncli\n-----END CERTIFICATE-----\n")
    return (f"remote={remote}", f"tools={TOOLS}", f"bucket={bucket}", f"cert={cert}", f"s3_url={moto.url}")


def test_sigkill_then_cleanup_leaves_nothing(stack: Stack, moto: MotoServer, tmp_path: Path, remote: str,
                                             bucket: str) -> None:
    """Killed once the AMI is registered from the uploaded bundle: `amibake cleanup` deregisters it and
    deletes the bundle's objects, which the journal named before the upload ran."""
    before = inventory(moto)
    template = tmp_path / "instance.json"
    template.write_text(json.dumps(TEMPLATE))
    point = "after-register-image"
    b = start_build(stack, template, tmp_path, pause_at=point,
                    extra_vars=_cli_vars(moto, tmp_path, remote, bucket))
    b.wait_marker(point)
    assert len(objects(moto, bucket)) == 3
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    res = run_cleanup(stack, b, "--run", b.run_id())
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert_nothing_left(moto, before)
    assert objects(moto, bucket) == []


def test_cli_build_then_cleanup_keeps_the_ami_and_its_bundle(stack: Stack, moto: MotoServer, tmp_path: Path,
                                                             remote: str, bucket: str) -> None:
    template = tmp_path / "instance.json"
    template.write_text(json.dumps(TEMPLATE))
    b = start_build(stack, template, tmp_path, extra_vars=_cli_vars(moto, tmp_path, remote, bucket))
    assert b.proc.wait(120) == 0, b.stdout()[-3000:] + b.stderr()[-2000:]
    out = b.stdout()
    c = ec2(stack)
    [image] = c.describe_images(Filters=[{"Name": "name", "Values": [b.ami_name]}])["Images"]
    assert f"us-east-1: {image['ImageId']}" in out
    kept = objects(moto, bucket)
    assert len(kept) == 3 and any(k.endswith(".manifest.xml") for k in kept)
    res = run_cleanup(stack, b, "--run", b.run_id(), "--older-than", "0s")
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert c.describe_images(ImageIds=[image["ImageId"]])["Images"]
    assert objects(moto, bucket) == kept


def test_upload_command_gets_the_session_credentials(stack: Stack, moto: MotoServer, tmp_path: Path,
                                                     remote: str, bucket: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No access_key / secret_key in the template: the upload command's AccessKey, SecretKey and Token
    are the session's credentials (here from the environment), as Packer's StepUploadBundle; none of
    them shows in the output."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSESSION")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "session-Secret-91")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-Token-73")
    ui = RecUi()
    config = make_config(stack, moto, tmp_path, remote, bucket, access_key="", secret_key="")
    artifact = InstanceBuilder(config, go_env(ui)).run(ToolHooks("true", remote=remote))
    assert artifact is not None
    uploaded = args_of(Path(remote) / "bundle" / "upload.args")
    assert (uploaded["access"], uploaded["secret"], uploaded["token"]) == (
        "AKIDSESSION", "session-Secret-91", "session-Token-73")
    assert "session-Secret-91" not in ui.text and "session-Token-73" not in ui.text
