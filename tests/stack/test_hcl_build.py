"""HCL2 builds on the local stack: ``hcl2_upgrade`` output builds what the JSON template builds,
and a template whose source AMI comes from a ``data "amazon-ami"`` builds (secrets from a
``data "amazon-secretsmanager"`` redacted in the output).

The baseline templates (``tests/stack/data/packer-baseline/templates``) are copied with ``files/`` into
a temporary directory and built with ``-var ec2_endpoint=...`` as in ``test_differential.py``.
Known, explained differences between the two end states, normalised before comparing:

* build names: JSON ``basic`` is HCL2 ``amazon-ebs.basic`` (manifest ``name``);
* ``{{build_name}}`` is upgraded to ``${build.name}``, which in HCL2 is the *build block's* name
  ("" here, as in Packer 1.9.4): the four parallel builds would upload to one path on the stack's
  single sshd host and collide. The test makes the edit a user makes after the upgrade:
  ``${source.name}``, the per-source name;
* ``{{timestamp}}`` (Unix seconds) becomes ``local.timestamp``, ``regex_replace(timestamp(),
  "[- TZ:]", "")`` (``YYYYMMDDhhmmss``) in the upgraded template, as Packer's upgrade writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.endstate import comparable, end_state, leftovers, mask
from tests.stackkit import Stack

BASELINE = Path(__file__).resolve().parent / "data" / "packer-baseline"

pytestmark = [pytest.mark.stack]

_HCL_TIMESTAMP = re.compile(r"\b20\d{12}\b")


def remote_dir(work: Path) -> Path:
    """The directory on the "instance" (this machine, through the stack's sshd) where the baseline
    templates' provisioners write (their ``remote_dir`` variable, "/tmp" by default): one per test,
    so that no other run's files are touched. Under /tmp, where the stack's login user can reach it."""
    return Path("/tmp") / f"amibake-baseline-{hashlib.sha256(str(work).encode()).hexdigest()[:16]}"


def clear(remote: Path) -> None:
    for p in remote.iterdir():
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def amibake(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "AWS_POLL_DELAY_SECONDS": "1", "AWS_MAX_ATTEMPTS": "60"}
    return subprocess.run(
        [sys.executable, "-m", "amibake", *args], cwd=cwd, env=full_env, capture_output=True, text=True,
        timeout=300,
    )


def build(template: Path, stack: Stack, env: dict[str, str], out: Path) -> subprocess.CompletedProcess[str]:
    out.mkdir(exist_ok=True)  # the manifest post-processor does not create its directory
    clear(remote_dir(out.parent))
    no_endpoint = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
    args = [
        "build",
        "-color=false",
        f"-var=ec2_endpoint={env['AWS_ENDPOINT_URL']}",
        f"-var=ssh_port={stack.sshd.port}",
        f"-var=ssh_username={stack.sshd.user}",
        f"-var=out_dir={out}",
        f"-var=remote_dir={remote_dir(out.parent)}",
        str(template),
    ]
    # the endpoint comes from the template (custom_endpoint_ec2), as in test_differential
    return amibake(args, no_endpoint | {"AWS_ENDPOINT_URL": ""}, template.parent.parent)


def normalised(value: Any) -> Any:
    if isinstance(value, str):
        return _HCL_TIMESTAMP.sub("TS", value)
    if isinstance(value, dict):
        return {normalised(k): normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((normalised(v) for v in value), key=repr)
    return value


def manifest(path: Path) -> Any:
    data = json.loads(path.read_text())
    for b in data["builds"]:
        b["build_time"] = 0
        b["name"] = b["name"].rsplit(".", 1)[-1]  # amazon-ebs.basic -> basic
    data["builds"].sort(key=lambda b: b["name"])
    return normalised(mask(data))


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(BASELINE / "templates", tmp_path / "templates")
    shutil.copytree(BASELINE / "files", tmp_path / "files")
    remote = remote_dir(tmp_path)
    remote.mkdir(mode=0o1777)
    remote.chmod(0o1777)  # the login user writes there
    yield tmp_path
    shutil.rmtree(remote, ignore_errors=True)


@pytest.mark.parametrize(
    ("template", "manifest_name", "builds"),
    [("basic.json", "manifest-basic.json", 1), ("parallel.json", "manifest-parallel.json", 4)],
)
def test_upgraded_template_builds_the_same(
    template: str, manifest_name: str, builds: int, stack: Stack, aws_env: dict[str, str], work: Path
) -> None:
    tpl = work / "templates" / template
    hcl = tpl.with_name(template + ".pkr.hcl")
    r = amibake(["hcl2_upgrade", "-output-file", str(hcl), str(tpl)], aws_env, work)
    assert r.returncode == 0, r.stdout + r.stderr
    text = hcl.read_text()
    assert "${var.remote_dir}/packer-baseline-upload-${build.name}.txt" in text
    hcl.write_text(text.replace("${build.name}", "${source.name}"))
    results = {}
    for kind, path in (("json", tpl), ("hcl", hcl)):
        stack.moto.reset()
        r = build(path, stack, aws_env, work / kind)
        assert r.returncode == 0, f"{kind}:\n{r.stdout}\n{r.stderr}"
        assert r.stdout.count("AMIs were created") >= builds, r.stdout
        state = end_state(aws_env, ("us-east-1",))
        assert leftovers(state) == {}, kind
        shown = r.stdout.count("AMIs were created")
        results[kind] = (normalised(comparable(state)), manifest(work / kind / manifest_name), shown)
    assert results["hcl"][0] == results["json"][0]
    assert results["hcl"][1] == results["json"][1]
    assert results["hcl"][2] == results["json"][2]


DATASOURCE_TEMPLATE = """
variable "ssh_port" {
  type = number
}
variable "ssh_username" {
  type = string
}
data "amazon-ami" "ubuntu" {
  owners      = ["099720109477"]
  most_recent = true
  filters = {
    name                = "ubuntu/images/hvm-ssd/ubuntu-xenial-*"
    virtualization-type = "hvm"
  }
}
data "amazon-secretsmanager" "token" {
  name = "build/token"
  key  = "token"
}
source "amazon-ebs" "ds" {
  region                 = "us-east-1"
  skip_region_validation = true
  source_ami             = data.amazon-ami.ubuntu.id
  instance_type          = "t2.micro"
  ssh_username           = var.ssh_username
  ssh_host               = "127.0.0.1"
  ssh_port               = var.ssh_port
  ssh_timeout            = "2m"
  ami_name               = "from-data-source-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  tags = {
    Base     = data.amazon-ami.ubuntu.name
    BaseId   = data.amazon-ami.ubuntu.id
  }
}
build {
  sources = ["source.amazon-ebs.ds"]
  provisioner "shell" {
    inline = [
      "echo token is ${data.amazon-secretsmanager.token.value}",
      "echo base ${data.amazon-ami.ubuntu.id}",
    ]
  }
}
"""


def aws(service: str, env: dict[str, str]) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_source_ami_from_data_source(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    stack.moto.reset()
    secret = "tok-5f1e2d3c4b5a"
    sm = aws("secretsmanager", aws_env)
    sm.create_secret(Name="build/token", SecretString=json.dumps({"token": secret}))
    tpl = tmp_path / "ds.pkr.hcl"
    tpl.write_text(DATASOURCE_TEMPLATE)
    args = ["build", "-color=false", f"-var=ssh_port={stack.sshd.port}",
            f"-var=ssh_username={stack.sshd.user}"]
    r = amibake([*args, str(tpl)], aws_env, tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "AMIs were created" in r.stdout
    assert "base ami-785db401" in r.stdout
    assert "token is <sensitive>" in r.stdout
    assert secret not in out
    state = end_state(aws_env, ("us-east-1",))
    assert leftovers(state) == {}
    (image,) = state["us-east-1"]["images"]
    assert image["tags"]["BaseId"] == "ami-785db401"
    assert image["tags"]["Base"].startswith("ubuntu/images/hvm-ssd/ubuntu-xenial-16.04")
    ec2 = aws("ec2", aws_env)
    launched = [i["ImageId"] for res in ec2.describe_instances()["Reservations"] for i in res["Instances"]]
    assert launched == ["ami-785db401"]
