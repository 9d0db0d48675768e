"""Packer 1.6.6 and amibake build one richly configured amazon-ebs template: same requests, same end state.

``data/differential/options.json`` has two amazon-ebs builders (an on-demand one and a spot one, since
Packer 1.6.6 refuses ``ena_support``/``sriov_support`` with spot) that set 42 distinct options Packer
1.6.6's amazon-ebs builder knows (38 and 19, ``type`` and ``name`` aside), a shell provisioner and a
manifest post-processor whose ``custom_data`` reads the build data (``{{build `ID`}}``,
``SourceAMIName``...). Both tools build it against the same moto (reset, then seeded with a stale AMI of
the same name in each region for ``force_deregister`` / ``force_delete_snapshot``), each through its own
:class:`~tests.awsproxy.AwsProxy`, with the same
environment. Compared, ids / uuids / times masked, ``amibake:*`` tags apart:

(a) the end state (:mod:`tests.endstate`: images, their snapshots and permissions, the terminated
    instances' attributes, leftovers, IAM roles and profiles);
(b) the manifests;
(c) what the requests asked for: the launch (RunInstances, or CreateLaunchTemplate + CreateFleet for
    spot: Packer 1.6.6 already uses a launch template and an instant fleet, not RequestSpotInstances;
    compared as what the instance gets, not the call shape), CreateImage, CopyImage, the launch and
    create-volume permissions added, the instance attributes modified, the ingress rules, and the tags
    each resource got (in its create call or by CreateTags).

Known differences, with evidence, left out of the comparison:

* ``ami_description``: Packer 1.6.6 sets it with ModifyImageAttribute ``Description.Value``, which
  moto answers 200 and drops; amibake passes it to CreateImage / CopyImage. (c) compares the
  description each tool asked for, wherever it asked; (a) leaves the image description out.
* moto drops, for both tools: ``Placement.Tenancy`` (both instances describe as ``default``), the
  instance profile (``IamInstanceProfile`` empty), the public IP of ``associate_public_ip_address``,
  the launch and AMI block device mappings (the image always gets moto's
  15 GiB ``standard`` root: ``DescribeImages`` after either build), ``ModifySnapshotAttribute``
  (``DescribeSnapshotAttribute`` lists no permission after either tool's request), ENA
  (``DescribeInstanceAttribute enaSupport`` is "Unknown attribute" in moto; images carry no
  ``EnaSupport``), volume tags (the volumes are gone with the instance). Those options are proven by
  the requests in (c) only.
* ``spot_tags`` is not in the template: Packer 1.6.6 tags the spot request with CreateTags on the
  instance's ``SpotInstanceRequestId``, which moto's fleet instances lack, so it sends CreateTags
  without any ``ResourceId`` and fails ("MissingParameter: ... resourceIdSet").
* ``metadata_options`` is not in the template: Packer 1.6.6 refuses it ("unknown configuration key").
  Neither template sets it; (a) shows both instances got moto's defaults (amibake sends the defaults
  explicitly, Packer 1.6.6 sends none).
* IAM endpoint: Packer 1.6.6 sets ``custom_endpoint_ec2`` as its AWS session's endpoint, so the IAM
  calls of ``temporary_iam_instance_profile_policy_document`` go there too (the proxy records them as
  service ``iam``). Both tools also get ``AWS_ENDPOINT_URL_IAM`` (which Debian's aws-sdk-go 1.44 does not
  read) so that amibake's IAM calls reach the same proxy; ``test_iam_follows_custom_endpoint_ec2``
  checks amibake without it. ``HTTP(S)_PROXY`` point at a closed loopback port for both tools, so a
  call meant for real AWS fails at once instead of leaving the machine.

Where current packer-plugin-amazon behaves differently from Packer 1.6.6, amibake follows the current
plugin, whose options it declares; those differences are named in :data:`NEWER_PLUGIN` and left out:

* the AMI and its snapshots get the run tags at CreateImage unless ``skip_ami_run_tags`` (the plugin's
  ``stepCreateAMI``: ``TagSpecifications`` for image and snapshot from ``RunTags``; 1.6.6 tags the AMI
  with ``tags`` only). The template's run tag ``SourceName`` is therefore on amibake's AMI only;
* the temporary instance's network interface is tagged with the run tags (the plugin's
  ``StepRunSourceInstance`` / ``StepRunSpotInstance`` add a ``network-interface`` tag specification).

The differences that were amibake's own are fixed (``data/differential/MISMATCHES.md`` tells which).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.awsproxy import AwsProxy, Request
from tests.endstate import comparable, comparable_manifest, end_state, iam_state, leftovers, mask
from tests.stackkit import Stack, amibake_exe

DATA = Path(__file__).parent / "data" / "differential"
PACKER = shutil.which("packer")
REGIONS = ("us-east-1", "us-west-2")
AMI_NAME = "diff-options-ondemand"
SOURCE_AMI = "ami-785db401"
DEAD_PROXY = "http://127.0.0.1:9"  # discard port: nothing listens, a call for real AWS fails at once


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


pytestmark = [pytest.mark.stack, pytest.mark.packer]


@pytest.fixture(scope="module")
def packer() -> str:
    if PACKER is None:
        if _in_ci():
            pytest.fail("packer 1.6.6 is not installed (scripts/bootstrap installs Debian's package)")
        pytest.skip("packer 1.6.6 not installed")
    return PACKER


@pytest.fixture(scope="module")
def packer_run(packer: str, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Packer 1.6.6's build of the template (one per module: two tests read it)."""
    return build_with("packer", [packer], stack, stack.env(), tmp_path_factory.mktemp("packer"))


# ---- running a tool -------------------------------------------------------------------------------


def _env(aws_env: Mapping[str, str], proxy: AwsProxy, state_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        **aws_env,
        "CHECKPOINT_DISABLE": "1",
        "PACKER_NO_COLOR": "1",
        "AWS_POLL_DELAY_SECONDS": "1",
        "AWS_MAX_ATTEMPTS": "60",
        "AWS_ENDPOINT_URL_IAM": proxy.url,
        "HTTP_PROXY": DEAD_PROXY,
        "HTTPS_PROXY": DEAD_PROXY,
        "http_proxy": DEAD_PROXY,
        "https_proxy": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "AMIBAKE_STATE_DIR": str(state_dir),
    }
    env.pop("AWS_ENDPOINT_URL", None)  # both tools get the EC2 endpoint from the template
    return env


def run_tool(
    argv0: list[str], work: Path, stack: Stack, proxy: AwsProxy, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    args = [
        "build",
        "-color=false",
        f"-var=ec2_endpoint={proxy.url}",
        f"-var=ssh_port={stack.sshd.port}",
        f"-var=ssh_username={stack.sshd.user}",
        f"-var=out_dir={work}",
        "options.json",
    ]
    return subprocess.run(
        [*argv0, *args], cwd=work, env=dict(env), capture_output=True, text=True, timeout=240
    )


def seed_stale_amis(aws_env: Mapping[str, str]) -> None:
    """An AMI named like the build's (and its snapshot) in each region, for force_deregister."""
    for region in REGIONS:
        ec2 = boto3.client(
            "ec2", region_name=region, endpoint_url=aws_env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        iid = ec2.run_instances(ImageId=SOURCE_AMI, InstanceType="t2.micro", MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        ami = ec2.create_image(InstanceId=iid, Name=AMI_NAME)["ImageId"]
        snaps = [
            bd["Ebs"]["SnapshotId"]
            for bd in ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"]
            if "Ebs" in bd
        ]
        ec2.create_tags(Resources=[ami, *snaps], Tags=[{"Key": "Stale", "Value": "yes"}])
        ec2.terminate_instances(InstanceIds=[iid])


def stale_snapshots(aws_env: Mapping[str, str]) -> dict[str, int]:
    out = {}
    for region in REGIONS:
        ec2 = boto3.client(
            "ec2", region_name=region, endpoint_url=aws_env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        found = ec2.describe_snapshots(Filters=[{"Name": "tag:Stale", "Values": ["yes"]}])["Snapshots"]
        out[region] = len(found)
    return out


# ---- what the requests asked for ------------------------------------------------------------------


def _own(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith("amibake:")}


def _text(b64: str) -> str:
    try:
        return base64.b64decode(b64, validate=True).decode("utf-8", "replace") if b64 else ""
    except (binascii.Error, ValueError):
        return f"(not base64: {b64!r})"


def _xml_values(body: bytes, tag: str) -> list[str]:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []
    return [(e.text or "").strip() for e in root.iter() if e.tag.rsplit("}", 1)[-1] == tag]


def _instances_volumes(body: bytes) -> dict[str, list[str]]:
    """instance id -> its EBS volume ids, from a DescribeInstances answer."""
    out: dict[str, list[str]] = {}
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return out
    for item in root.iter():
        children = {c.tag.rsplit("}", 1)[-1]: c for c in item}
        if "instanceId" in children and "blockDeviceMapping" in children:
            vols = [
                (e.text or "").strip()
                for e in children["blockDeviceMapping"].iter()
                if e.tag.rsplit("}", 1)[-1] == "volumeId"
            ]
            out[(children["instanceId"].text or "").strip()] = vols
    return out


def _indexed(params: Mapping[str, str], prefix: str) -> list[dict[str, str]]:
    """``Prefix.N.Field`` parameters as a list of {Field: value} (N = 1, 2...)."""
    out = []
    i = 1
    while any(k.startswith(f"{prefix}.{i}.") for k in params):
        head = f"{prefix}.{i}."
        out.append({k[len(head):]: v for k, v in params.items() if k.startswith(head)})
        i += 1
    return out


def _values(params: Mapping[str, str], prefix: str) -> list[str]:
    out, i = [], 1
    while f"{prefix}.{i}" in params:
        out.append(params[f"{prefix}.{i}"])
        i += 1
    return out


def _block_devices(params: Mapping[str, str], prefix: str) -> list[dict[str, str]]:
    defaults = {"Ebs.DeleteOnTermination": "false"}  # EC2's default, sent or not
    return sorted(({**defaults, **bd} for bd in _indexed(params, prefix)), key=lambda d: d["DeviceName"])


def _tag_specs(params: Mapping[str, str], prefix: str = "TagSpecification") -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for spec in _indexed(params, prefix):
        tags = {spec[f"Tag.{j}.Key"]: spec.get(f"Tag.{j}.Value", "")
                for j in range(1, 100) if f"Tag.{j}.Key" in spec}
        out.setdefault(spec.get("ResourceType", ""), {}).update(_own(tags))
    return out


class Requests:
    """One tool's relayed requests, read back as what each build asked EC2 (and IAM) for."""

    def __init__(self, requests: Iterable[Request]) -> None:
        self.all = [r for r in requests if r.status == 200]
        self.failed = [r for r in requests if r.status != 200]
        #: resource id -> logical name ("ondemand/instance", "ondemand/us-west-2/image"...)
        self.names: dict[str, str] = {}
        self.volumes: dict[str, list[str]] = {}
        for r in self.of("DescribeInstances"):  # a terminated instance lists no volumes: keep all seen
            for iid, vols in _instances_volumes(r.response).items():
                self.volumes[iid] = sorted({*self.volumes.get(iid, []), *vols})

    def of(self, action: str, service: str = "ec2") -> list[Request]:
        return [r for r in self.all if r.action == action and r.service == service]

    def launches(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for r in self.of("RunInstances"):
            out["ondemand"] = self._launch(r.params, [r.params.get("InstanceType", "")], {}, "")
            out["ondemand"]["tags"] = _tag_specs(r.params)
            for iid in _xml_values(r.response, "instanceId"):
                self.names[iid] = "ondemand/instance"
        templates = {}
        for r in self.of("CreateLaunchTemplate"):
            data = {k[len("LaunchTemplateData."):]: v for k, v in r.params.items()
                    if k.startswith("LaunchTemplateData.")}
            for key in (r.params.get("LaunchTemplateName", ""), *_xml_values(r.response, "launchTemplateId")):
                templates[key] = data
        for r in self.of("CreateFleet"):
            cfg = _indexed(r.params, "LaunchTemplateConfigs")[0]
            data = templates[cfg.get("LaunchTemplateSpecification.LaunchTemplateName")
                             or cfg.get("LaunchTemplateSpecification.LaunchTemplateId", "")]
            overrides = _indexed({k: v for k, v in cfg.items()}, "Overrides")
            types = sorted(o["InstanceType"] for o in overrides) or [data.get("InstanceType", "")]
            azs = {o["AvailabilityZone"] for o in overrides if "AvailabilityZone" in o}
            spec = self._launch(data, types, data, azs.pop() if len(azs) == 1 else "")
            spec["allocation_strategy"] = r.params.get("SpotOptions.AllocationStrategy", "(EC2's default)")
            spec["capacity"] = (r.params.get("TargetCapacitySpecification.DefaultTargetCapacityType"),
                                r.params.get("TargetCapacitySpecification.TotalTargetCapacity"),
                                r.params.get("Type"))
            spec["tags"] = _tag_specs(data)
            out["spot"] = spec
            for iid in _xml_values(r.response, "item") + _xml_values(r.response, "instanceId"):
                if iid.startswith("i-"):
                    self.names[iid] = "spot/instance"
        # tags added after the launch (Packer 1.6.6's spot build tags the instance and its volumes)
        for r in self.of("CreateTags"):
            tags = _own({t["Key"]: t.get("Value", "") for t in _indexed(r.params, "Tag")})
            for rid in _values(r.params, "ResourceId"):
                build = self.names.get(rid, "").split("/")[0]
                if build in out and rid.startswith("i-"):
                    out[build]["tags"].setdefault("instance", {}).update(tags)
                for iid, vols in self.volumes.items():
                    name = self.names.get(iid, "")
                    if rid in vols and name.split("/")[0] in out:
                        out[name.split("/")[0]]["tags"].setdefault("volume", {}).update(tags)
        for spec in out.values():  # tag specifications that add nothing are not sent by Packer
            spec["tags"] = {k: v for k, v in spec["tags"].items() if v}
        return out

    @staticmethod
    def _launch(p: Mapping[str, str], types: list[str], lt: Mapping[str, str], az: str) -> dict[str, Any]:
        nic = (_indexed(p, "NetworkInterface") or _indexed(p, "NetworkInterfaces") or [{}])[0]
        groups = _values(p, "SecurityGroupId") or [
            v for k, v in nic.items() if k.startswith("SecurityGroupId.")]
        market = {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith("InstanceMarketOptions.")}
        # EC2's defaults for a one-time spot request, sent by amibake, not by Packer 1.6.6
        for key, default in (("SpotOptions.SpotInstanceType", "one-time"),
                             ("SpotOptions.InstanceInterruptionBehavior", "terminate")):
            if market.get(key) == default:
                del market[key]
        return {
            "image": p.get("ImageId", ""),
            "instance_types": types,
            "user_data": _text(p.get("UserData", "")),
            "block_devices": _block_devices(p, "BlockDeviceMapping"),
            "ebs_optimized": p.get("EbsOptimized", "false"),
            "iam_instance_profile": mask(p.get("IamInstanceProfile.Name", "")),
            "key_pair": mask(p.get("KeyName", "")),
            "availability_zone": p.get("Placement.AvailabilityZone", "") or az,
            "tenancy": p.get("Placement.Tenancy", "default"),
            "shutdown_behavior": p.get("InstanceInitiatedShutdownBehavior", "stop" if not lt else ""),
            "subnet": mask(p.get("SubnetId", "") or nic.get("SubnetId", "")),
            "associate_public_ip": nic.get("AssociatePublicIpAddress", ""),
            "security_groups": len(groups),
            "market": market,
        }

    def images(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        described: dict[str, list[str]] = {}
        for r in self.of("DescribeImages"):
            root = ET.fromstring(r.response)
            for item in root.iter():
                kids = {c.tag.rsplit("}", 1)[-1]: c for c in item}
                if "imageId" in kids and "blockDeviceMapping" in kids:
                    described[(kids["imageId"].text or "").strip()] = [
                        (e.text or "").strip() for e in kids["blockDeviceMapping"].iter()
                        if e.tag.rsplit("}", 1)[-1] == "snapshotId"
                    ]
        for r in self.of("CreateImage"):
            build = r.params["Name"].rsplit("-", 1)[-1]
            name = f"{build}/{r.region}/image"
            out[name] = {
                "name": r.params["Name"],
                "description": r.params.get("Description", ""),
                "block_devices": _block_devices(r.params, "BlockDeviceMapping"),
                "tags": _tag_specs(r.params),
            }
            for ami in _xml_values(r.response, "imageId"):
                self.names[ami] = name
        for r in self.of("CopyImage"):
            build = r.params["Name"].rsplit("-", 1)[-1]
            name = f"{build}/{r.region}/image"
            out[name] = {
                "name": r.params["Name"],
                "source_region": r.params.get("SourceRegion", ""),
                "source_image": self.names.get(r.params.get("SourceImageId", ""), "?"),
                "description": r.params.get("Description", ""),
                "encrypted": r.params.get("Encrypted", "false"),
                "kms_key_id": r.params.get("KmsKeyId", ""),
                "tags": _tag_specs(r.params),
            }
            for ami in _xml_values(r.response, "imageId"):
                self.names[ami] = name
        for ami, snaps in described.items():
            if ami in self.names:
                for sid in snaps:
                    self.names[sid] = self.names[ami].replace("/image", "/snapshot")
        for image in out.values():
            image.update(launch_permissions=[], create_volume_permissions=[], tags_added={})
        for r in self.of("ModifyImageAttribute"):
            image = out[self.names[r.params["ImageId"]]]
            if "Description.Value" in r.params:
                image["description"] = r.params["Description.Value"]
            for perm in _indexed(r.params, "LaunchPermission.Add"):
                image["launch_permissions"].append(perm.get("UserId") or f"group:{perm.get('Group')}")
        for r in self.of("ModifySnapshotAttribute"):
            image = out[self.names[r.params["SnapshotId"]].replace("/snapshot", "/image")]
            for perm in _indexed(r.params, "CreateVolumePermission.Add"):
                image["create_volume_permissions"].append(perm.get("UserId") or f"group:{perm.get('Group')}")
        for r in self.of("CreateTags"):
            tags = _own({t["Key"]: t.get("Value", "") for t in _indexed(r.params, "Tag")})
            for rid in _values(r.params, "ResourceId"):
                name = self.names.get(rid, "")
                if "/" in name and not name.endswith("/instance") and tags:
                    image = out[name.replace("/snapshot", "/image")]
                    image["tags_added"].setdefault(name.rsplit("/", 1)[-1], {}).update(tags)
        for image in out.values():  # tags given in the create call count as added
            for kind, tags in image.pop("tags").items():
                if tags:
                    image["tags_added"].setdefault(kind, {}).update(tags)
            image["launch_permissions"].sort()
            image["create_volume_permissions"].sort()
        return out

    def instance_attributes(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for r in self.of("ModifyInstanceAttribute"):
            build = self.names.get(r.params.get("InstanceId", ""), "?").split("/")[0]
            attrs = {k: v for k, v in r.params.items() if k not in ("Action", "Version", "InstanceId")}
            out.setdefault(build, {}).update(attrs)
        return out

    def ingress(self) -> list[tuple[str, ...]]:
        rules = []
        for r in self.of("AuthorizeSecurityGroupIngress"):
            for perm in _indexed(r.params, "IpPermissions"):
                cidrs = sorted(v for k, v in perm.items() if k.endswith(".CidrIp"))
                rules.append((perm.get("IpProtocol", ""), perm.get("FromPort", ""), perm.get("ToPort", ""),
                              *cidrs))
        return sorted(rules)

    def iam(self) -> list[tuple[str, str]]:
        """The IAM calls that change something (action, policy document if any); waits left out."""
        out = []
        for r in self.all:
            if r.service != "iam" or r.action.startswith(("Get", "List")):
                continue
            doc = r.params.get("PolicyDocument") or r.params.get("AssumeRolePolicyDocument") or ""
            out.append((r.action, json.dumps(json.loads(doc), sort_keys=True) if doc else ""))
        return out

    def summary(self) -> dict[str, Any]:
        launches = self.launches()
        return {
            "launch": launches,
            "images": self.images(),
            "instance_attributes": self.instance_attributes(),
            "ingress": self.ingress(),
            "iam": sorted(set(self.iam())),
        }


# ---- the test -------------------------------------------------------------------------------------


def build_with(
    tool: str, argv0: list[str], stack: Stack, aws_env: Mapping[str, str], tmp_path: Path
) -> dict[str, Any]:
    work = tmp_path / tool
    shutil.copytree(DATA, work, ignore=shutil.ignore_patterns("*.md"))
    stack.moto.reset()
    seed_stale_amis(aws_env)
    with AwsProxy(aws_env["AWS_ENDPOINT_URL"]) as proxy:
        r = run_tool(argv0, work, stack, proxy, _env(aws_env, proxy, tmp_path / f"{tool}-state"))
        requests = list(proxy.requests)
    assert r.returncode == 0, f"{tool}:\n{r.stdout}\n{r.stderr}"
    state = end_state(aws_env, REGIONS)
    for region in state.values():
        for img in region["images"]:
            img["description"] = "(moto drops Packer 1.6.6's ModifyImageAttribute Description)"
    provisioned = sorted(line.split(": ", 1)[-1] for line in r.stdout.splitlines()
                         if "diff-provisioned" in line and "echo" not in line)
    return {
        "stdout": r.stdout,
        "requests": requests,
        "signers": sorted({(q.service, q.access_key) for q in requests}),
        "summary": mask(Requests(requests).summary()),
        "end_state": comparable(state),
        "leftovers": leftovers(state),
        "iam": iam_state(aws_env),
        "stale_snapshots": stale_snapshots(aws_env),
        "manifest": comparable_manifest(work / "manifest.json"),
        "provisioned": provisioned,
    }


@pytest.mark.effect(
    "builder/amazon-ebs",
    # launch: RunInstances / launch template + fleet, and the instance EC2 describes afterwards
    "source_ami", "source_ami_filter", "instance_type", "availability_zone", "vpc_filter",
    "subnet_filter", "associate_public_ip_address", "ebs_optimized", "shutdown_behavior", "tenancy",
    "user_data", "user_data_file", "run_tags", "run_volume_tags", "launch_block_device_mappings",
    "temporary_security_group_source_cidrs", "temporary_iam_instance_profile_policy_document",
    "spot_price", "spot_instance_types",
    # the AMI: CreateImage, CopyImage, permissions, tags, attributes
    "ami_name", "ami_description", "ami_block_device_mappings", "ami_users", "ami_groups",
    "snapshot_users", "snapshot_groups", "ami_regions", "tags", "snapshot_tags", "ena_support",
    "sriov_support", "force_deregister", "force_delete_snapshot",
    # every call goes to the template's endpoint (the environment has none, real AWS is unreachable)
    "custom_endpoint_ec2",
    # the communicator: the shell provisioner ran over SSH as this user on this port
    "ssh_username", "ssh_host", "ssh_port",
)
def test_options_same_as_packer(
    packer_run: dict[str, Any], stack: Stack, aws_env: dict[str, str], tmp_path: Path
) -> None:
    pk = packer_run
    ab = build_with("amibake", [amibake_exe()], stack, aws_env, tmp_path)

    # the proxy saw both tools' EC2 and IAM calls, signed with the stack's key
    for got in (pk, ab):
        assert ("ec2", "testing") in got["signers"] and ("iam", "testing") in got["signers"], got["signers"]
        assert {s for s, _ in got["signers"]} <= {"ec2", "iam"}, got["signers"]
    # a provisioner ran on "the instance" for each build
    assert pk["provisioned"] == ["diff-provisioned build=ondemand user=amibuild",
                                 "diff-provisioned build=spot user=amibuild"], pk["stdout"]
    assert ab["provisioned"] == pk["provisioned"], ab["stdout"]

    # nothing temporary left, and the stale AMIs' snapshots deleted (force_delete_snapshot)
    assert pk["leftovers"] == {} and ab["leftovers"] == {}
    assert pk["iam"] == {"roles": [], "instance_profiles": []}
    assert ab["iam"] == pk["iam"]
    assert pk["stale_snapshots"] == {"us-east-1": 0, "us-west-2": 0}
    assert ab["stale_snapshots"] == pk["stale_snapshots"]

    # (c) the requests, (a) the end state, (b) the manifests: every difference listed at once
    diffs = differences("requests", pk["summary"], ab["summary"])
    for region in REGIONS:
        diffs += differences(f"end state {region}", pk["end_state"][region], ab["end_state"][region])
    diffs += differences("manifest", pk["manifest"], ab["manifest"])
    report = "\n".join(diffs)
    assert not diffs, f"amibake differs from Packer 1.6.6 (see data/differential/MISMATCHES.md):\n{report}"


#: leaves where amibake follows the current plugin rather than Packer 1.6.6 (see the docstring)
NEWER_PLUGIN = (
    re.compile(r"/tags_added/(image|snapshot)/SourceName: packer=\(none\)"),
    re.compile(r"/snapshot_tags\[[^]]*\]/tags/SourceName: packer=\(none\)"),
    re.compile(r"\]/tags/SourceName: packer=\(none\)"),
    re.compile(r"^requests/launch/[a-z]+/tags/network-interface: packer=\(none\)"),
)


def differences(path: str, packer: Any, amibake: Any) -> list[str]:
    """Each leaf where the two differ, except :data:`NEWER_PLUGIN`'s."""
    return [d for d in _differences(path, packer, amibake) if not any(r.search(d) for r in NEWER_PLUGIN)]


def _differences(path: str, packer: Any, amibake: Any) -> list[str]:
    """Each leaf where the two differ, as 'path: packer=... amibake=...'."""
    if isinstance(packer, dict) and isinstance(amibake, dict):
        out = []
        for key in sorted(set(packer) | set(amibake), key=str):
            if key not in amibake:
                out.append(f"{path}/{key}: packer={packer[key]!r} amibake=(none)")
            elif key not in packer:
                out.append(f"{path}/{key}: packer=(none) amibake={amibake[key]!r}")
            else:
                out += _differences(f"{path}/{key}", packer[key], amibake[key])
        return out
    if isinstance(packer, list) and isinstance(amibake, list) and len(packer) == len(amibake):
        out = []
        for i, (p, a) in enumerate(zip(packer, amibake)):
            label = p.get("name") or p.get("tags", {}).get("Name") or i if isinstance(p, dict) else i
            out += _differences(f"{path}[{label}]", p, a)
        return out
    return [] if packer == amibake else [f"{path}: packer={packer!r} amibake={amibake!r}"]


def test_packer_sends_what_the_template_sets(packer_run: dict[str, Any], stack: Stack) -> None:
    """The comparison is not vacuous: Packer 1.6.6's own requests carry the template's settings."""
    pk = packer_run
    launch = pk["summary"]["launch"]
    assert launch["ondemand"]["tenancy"] == "dedicated"
    assert launch["ondemand"]["availability_zone"] == "us-east-1b"
    assert launch["ondemand"]["associate_public_ip"] == "true"
    assert launch["ondemand"]["user_data"].startswith("#!/bin/sh\necho ondemand-user-data")
    assert launch["ondemand"]["tags"]["volume"] == {"VolumeOf": "diff-ami-X"}  # ids masked
    assert launch["spot"]["market"] == {"MarketType": "spot", "SpotOptions.MaxPrice": "0.05"}
    assert launch["spot"]["instance_types"] == ["t2.micro", "t3.micro"]
    assert launch["spot"]["tags"]["volume"] == {"VolumeOf": "spot-ami-X"}
    images = pk["summary"]["images"]
    assert sorted(images) == ["ondemand/us-east-1/image", "ondemand/us-west-2/image", "spot/us-east-1/image"]
    assert images["ondemand/us-west-2/image"]["launch_permissions"] == ["111122223333", "group:all"]
    assert images["ondemand/us-west-2/image"]["create_volume_permissions"] == ["111122223333", "group:all"]
    assert images["ondemand/us-east-1/image"]["tags_added"]["snapshot"]["Kind"] == "snapshot"
    assert pk["summary"]["instance_attributes"]["ondemand"] == {
        "SriovNetSupport.Value": "simple", "EnaSupport.Value": "true"}
    assert ("tcp", str(stack.sshd.port), str(stack.sshd.port), "10.11.0.0/16", "127.0.0.1/32") in \
        pk["summary"]["ingress"]
    custom = pk["manifest"]["builds"][0]["custom_data"]
    assert custom["id"] == "i-X" and custom["source_ami_name"].startswith("ubuntu/images/")


def test_iam_follows_custom_endpoint_ec2(stack: Stack, aws_env: dict[str, str], tmp_path: Path) -> None:
    """Packer 1.6.6 sends the temporary instance profile's IAM calls to ``custom_endpoint_ec2``."""
    work = tmp_path / "amibake"
    shutil.copytree(DATA, work, ignore=shutil.ignore_patterns("*.md"))
    stack.moto.reset()
    with AwsProxy(aws_env["AWS_ENDPOINT_URL"]) as proxy:
        env = _env(aws_env, proxy, tmp_path / "state")
        del env["AWS_ENDPOINT_URL_IAM"]
        r = run_tool([amibake_exe()], work, stack, proxy, env)
        iam = [q.action for q in proxy.requests if q.service == "iam"]
    assert "CreateInstanceProfile" in iam, f"{iam}\n{r.stdout[-3000:]}"
    assert leftovers(end_state(aws_env, REGIONS)) == {}
