"""``amibake build -checks FILE``: the new AMI is tested on a fresh instance before it is distributed
(issue #15, part 1).

Real ``amibake build`` subprocesses against the local stack, every EC2 call through the recording
proxy (tests/awsproxy.py): the test instance is launched from the new AMI with its own key pair and
security group, the checks run on the "instance" (the local sshd), their JUnit report is fetched,
and nothing is copied before they pass. A failed check leaves no AMI, no snapshot, no copy and no
test instance; a build killed while its checks run leaves nothing ``amibake cleanup`` misses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.awsproxy import AwsProxy
from tests.stack.test_build_cli import builder
from tests.stack.test_reliability import assert_nothing_left, inventory, run_cleanup, start_build
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

JUNIT_OK = '<testsuite name="image"><testcase classname="image" name="sshd_enabled"/></testsuite>'
JUNIT_FAILED = ('<testsuites><testsuite name="image"><testcase classname="image" name="sshd_enabled"/>'
                '<testcase classname="image" name="motd"><failure message="no motd"/></testcase>'
                "</testsuite></testsuites>")


def ec2(moto: MotoServer, region: str) -> Any:
    return boto3.client("ec2", endpoint_url=moto.url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def images_named(moto: MotoServer, region: str, name: str) -> list[dict[str, Any]]:
    return list(ec2(moto, region).describe_images(
        Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"])


def write(tmp_path: Path, stack: Stack, remote: str, ami_name: str, check: list[str],
          junit: str = "") -> None:
    template = {
        "builders": [builder(stack, "checked", ami_name=ami_name, ami_regions=["us-west-2"])],
        "provisioners": [{"type": "shell",
                          "inline": [f"mkdir -p {remote}", f"echo baked > {remote}/provisioned"]}],
    }
    (tmp_path / "t.json").write_text(json.dumps(template))
    checks: dict[str, Any] = {"checks": [{"type": "shell", "inline": check}]}
    if junit:
        checks["junit_report"] = junit
        checks["junit_dir"] = "reports"
    (tmp_path / "checks.json").write_text(json.dumps(checks))


def build(tmp_path: Path, env: dict[str, str], moto: MotoServer) -> tuple[subprocess.CompletedProcess[str],
                                                                          AwsProxy]:
    with AwsProxy(moto.url) as proxy:
        res = subprocess.run([amibake_exe(), "build", "-color=false", "-checks", "checks.json", "t.json"],
                             cwd=tmp_path, env={**os.environ, **env, "AWS_ENDPOINT_URL": proxy.url},
                             capture_output=True, text=True, timeout=240)
    return res, proxy


@pytest.fixture
def env(aws_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**aws_env, "AMIBAKE_STATE_DIR": str(tmp_path / "state")}


@pytest.fixture
def remote(tmp_path: Path) -> Any:
    path = f"/tmp/amibake-checks-{uuid.uuid4().hex[:10]}"
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def test_passing_checks_run_on_a_fresh_instance_of_the_new_ami_before_the_copy(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path, remote: str,
) -> None:
    before = inventory(moto)
    name = f"checked-{uuid.uuid4().hex[:8]}"
    write(tmp_path, stack, remote, name, [
        f"test -f {remote}/provisioned",
        f"echo '{{{{ build `ID` }}}}' > {remote}/checked-on",
        f"mkdir -p {remote}/r && printf '%s' '{JUNIT_OK}' > {remote}/r/junit.xml",
    ], junit=f"{remote}/r/junit.xml")
    res, proxy = build(tmp_path, env, moto)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    [ami] = images_named(moto, "us-east-1", name)
    assert len(images_named(moto, "us-west-2", name)) == 1  # distributed once the checks passed

    # two launches: the build instance from the source AMI, then the test instance from the new AMI
    launches = proxy.sent("RunInstances")
    assert [r.params["ImageId"] for r in launches] == ["ami-785db401", ami["ImageId"]]
    # the test instance got its own key pair and security group, and they are gone
    assert len(proxy.sent("CreateKeyPair")) == 2 and len(proxy.sent("DeleteKeyPair")) == 2
    assert len(proxy.sent("CreateSecurityGroup")) == 2 and len(proxy.sent("DeleteSecurityGroup")) == 2
    test_instances = [i["InstanceId"] for r in ec2(moto, "us-east-1").describe_instances(
        Filters=[{"Name": "image-id", "Values": [ami["ImageId"]]}])["Reservations"] for i in r["Instances"]]
    assert len(test_instances) == 1
    # the test instance was launched after CreateImage and terminated before the region copy started
    reqs = proxy.requests
    at = {name: [i for i, r in enumerate(reqs) if r.action == name]
          for name in ("CreateImage", "RunInstances", "TerminateInstances", "CopyImage")}
    [terminated] = [i for i in at["TerminateInstances"]
                    if reqs[i].params["InstanceId.1"] == test_instances[0]]
    assert at["CreateImage"][0] < at["RunInstances"][1] < terminated < at["CopyImage"][0]
    # the check ran with the test instance's build data, on the instance
    assert Path(f"{remote}/checked-on").read_text().strip() == test_instances[0]
    report = tmp_path / "reports" / "checked.xml"
    assert report.read_text() == JUNIT_OK
    assert "1 test(s), 0 failure(s), 0 error(s), 0 skipped" in out
    assert "All checks passed." in out
    # nothing but the AMIs and their snapshots is left
    left = inventory(moto) - before
    assert all(item.split(":")[1].startswith(("ami-", "snap-")) for item in left), sorted(left)


@pytest.mark.parametrize("how", ["exit-status", "junit-failure"])
def test_a_failed_check_deletes_the_ami_and_distributes_nothing(
    stack: Stack, moto: MotoServer, env: dict[str, str], tmp_path: Path, remote: str, how: str,
) -> None:
    before = inventory(moto)
    name = f"rejected-{uuid.uuid4().hex[:8]}"
    if how == "exit-status":
        write(tmp_path, stack, remote, name, [f"test -f {remote}/provisioned", "echo checking; exit 3"])
    else:  # every command succeeds, the report says a test failed
        write(tmp_path, stack, remote, name, [f"mkdir -p {remote}/r",
                                              f"printf '%s' '{JUNIT_FAILED}' > {remote}/r/junit.xml"],
              junit=f"{remote}/r/junit.xml")
    res, proxy = build(tmp_path, env, moto)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "the image failed its checks" in out
    if how == "exit-status":
        assert "Check 1 failed: Script exited with non-zero exit status: 3." in out
    else:
        assert "1 failure(s)" in out and "image.motd" in out
        assert (tmp_path / "reports" / "checked.xml").read_text() == JUNIT_FAILED
    # the AMI was tested (launched), then deregistered with its snapshots; nothing was copied or shared
    [created] = proxy.sent("CreateImage")
    launches = proxy.sent("RunInstances")
    assert len(launches) == 2
    tested = launches[1].params["ImageId"]
    assert [r.params["ImageId"] for r in proxy.sent("DeregisterImage")] == [tested]
    assert proxy.sent("DeleteSnapshot")
    assert proxy.sent("CopyImage") == [] and proxy.sent("ModifyImageAttribute") == []
    assert created.params["Name"] == name
    assert images_named(moto, "us-east-1", name) == [] and images_named(moto, "us-west-2", name) == []
    assert inventory(moto) - before == set()


def test_sigkill_while_checks_run_then_cleanup_leaves_nothing(
    stack: Stack, moto: MotoServer, tmp_path: Path, remote: str,
) -> None:
    before = inventory(moto)
    template = {
        "variables": {"ssh_host": "", "ssh_port": "", "ssh_username": "", "ami_name": ""},
        "builders": [{**builder(stack, "killed", ami_regions=["us-west-2"]),
                      "ssh_host": "{{user `ssh_host`}}", "ssh_port": "{{user `ssh_port`}}",
                      "ssh_username": "{{user `ssh_username`}}", "ami_name": "{{user `ami_name`}}"}],
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template))
    (tmp_path / "checks.json").write_text(json.dumps({"checks": [{"type": "shell", "inline": ["true"]}]}))
    b = start_build(stack, path, tmp_path, pause_at="run-checks",
                    args=("-checks", str(tmp_path / "checks.json")))
    b.wait_marker("run-checks")
    # paused with the AMI, the build instance and the test instance (with their key pairs and groups)
    assert len([i for i in inventory(moto) - before if ":i-" in i]) == 2
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait(30)
    res = run_cleanup(stack, b, "--run", b.run_id())
    assert res.returncode == 0, res.stdout + res.stderr
    assert_nothing_left(moto, before)
