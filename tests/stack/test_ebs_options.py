"""amazon-ebs options observed where they take effect: the request amibake sent (through the
recording proxy in front of moto), the end state, or the "instance" (the local sshd's user).

Each test names the options it proves with the ``effect`` marker (tests/unit/test_option_effects.py).
"""

from __future__ import annotations

import base64
import itertools
import os
import pwd
import time
from pathlib import Path
from typing import Any

import pytest

from amibake.errors import BuildError, CommunicatorError
from amibake.plugins.amazon.ebs import EbsBuilder
from amibake.plugins.amazon.ec2 import CLIENTS
from tests.awsproxy import EMULATED, AwsProxy, Request
from tests.stack.test_ebs_builder import Hooks, RecUi, ec2, make_config, make_env, own_images
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()  # credentials are resolved per access settings: each test starts afresh


def one(proxy: AwsProxy, action: str, service: str = "ec2") -> Request:
    sent = proxy.sent(action, service)
    assert len(sent) == 1, [r.action for r in proxy.requests]
    return sent[0]


@pytest.mark.effect(
    "builder/amazon-ebs", "placement", "tenancy", "capacity_reservation_preference",
    "capacity_reservation_id", "capacity_reservation_group_arn", "enable_nitro_enclave",
    "enable_unlimited_credits", "enable_t2_unlimited", "license_specifications", "no_ephemeral",
    "run_tag", "run_volume_tag", "metadata_options", "ebs_optimized", "shutdown_behavior",
    "temporary_key_pair_bits", "instance_type", "user_data", "launch_block_device_mappings",
)
def test_launch_options_reach_run_instances(stack: Stack, moto: MotoServer) -> None:
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, instance_type="t2.micro",
            placement={"host_id": "h-0123456789abcdef0", "tenancy": "host"},
            capacity_reservation_preference="open",
            enable_nitro_enclave=True, enable_unlimited_credits=True,
            license_specifications=[{"license_configuration_request": {
                "license_configuration_arn": "arn:aws:license-manager:us-east-1:123456789012:lc/x"}}],
            no_ephemeral=True,
            run_tag=[{"key": "Block", "value": "run"}],
            run_volume_tag=[{"name": "VolBlock", "value": "vol"}],
            metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 2,
                              "instance_metadata_tags": "enabled"},
            ebs_optimized=True, shutdown_behavior="terminate",
            temporary_key_pair_bits=3072, user_data="#!/bin/sh\necho hi\n",
            launch_block_device_mappings=[{"device_name": "/dev/sdb", "volume_size": 3,
                                           "volume_type": "gp3", "delete_on_termination": True}],
        )
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        run = one(proxy, "RunInstances")
        p = run.params
        assert p["InstanceType"] == "t2.micro"
        assert p["Placement.Tenancy"] == "host" and p["Placement.HostId"] == "h-0123456789abcdef0"
        assert p["CapacityReservationSpecification.CapacityReservationPreference"] == "open"
        assert p["EnclaveOptions.Enabled"] == "true"
        assert p["CreditSpecification.CpuCredits"] == "unlimited"
        assert p["LicenseSpecification.1.LicenseConfigurationArn"].endswith(":lc/x")
        assert p["EbsOptimized"] == "true"
        assert p["InstanceInitiatedShutdownBehavior"] == "terminate"
        assert p["MetadataOptions.HttpTokens"] == "required"
        assert p["MetadataOptions.HttpPutResponseHopLimit"] == "2"
        assert p["MetadataOptions.InstanceMetadataTags"] == "enabled"
        assert base64.b64decode(p["UserData"]) == b"#!/bin/sh\necho hi\n"
        devices = {p[k]: k.rsplit(".", 1)[0] for k in p if k.endswith(".DeviceName")}
        assert p[devices["/dev/sdb"] + ".Ebs.VolumeSize"] == "3"
        assert p[devices["/dev/sdb"] + ".Ebs.VolumeType"] == "gp3"
        # no_ephemeral: xvdca..xvdcz mapped to nothing
        assert {f"xvdc{c}" for c in "az"} <= set(devices)
        assert p[devices["xvdcz"] + ".NoDevice"] == ""
        assert run.tags("instance")["Block"] == "run"
        assert run.tags("instance")["Name"] == "amibake-builder"
        assert run.tags("volume")["VolBlock"] == "vol"
        # temporary_key_pair_bits: the key is made locally at that size and imported
        imported = one(proxy, "ImportKeyPair")
        assert not proxy.sent("CreateKeyPair")
        from cryptography.hazmat.primitives.serialization import load_ssh_public_key

        key = load_ssh_public_key(base64.b64decode(imported.params["PublicKeyMaterial"]))
        assert key.key_size == 3072  # type: ignore[union-attr]


@pytest.mark.effect("builder/amazon-ebs", "run_tags")
def test_default_instance_name(stack: Stack, moto: MotoServer) -> None:
    """run_tags without a Name: the instance is "Packer Builder", as in Packer."""
    with AwsProxy(moto.url) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, run_tags={"Team": "x"})
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        tags = one(proxy, "RunInstances").tags("instance")
        assert tags["Name"] == "Packer Builder" and tags["Team"] == "x"


@pytest.mark.effect(
    "builder/amazon-ebs", "ena_support", "sriov_support", "tag", "snapshot_tag", "skip_ami_run_tags",
    "deregistration_protection", "snapshot_copy_duration_minutes", "ami_regions",
)
def test_image_options(stack: Stack, moto: MotoServer) -> None:
    # moto has no EnableImageDeregistrationProtection: the proxy answers it as AWS documents
    emulate = {"EnableImageDeregistrationProtection": EMULATED["EnableImageDeregistrationProtection"]}
    with AwsProxy(moto.url, emulate=emulate) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, ena_support=True, sriov_support=True,
            tag=[{"key": "BlockTag", "value": "ami"}], snapshot_tag=[{"key": "SnapBlock", "value": "s"}],
            run_tags={"Name": "builder", "RunOnly": "r"}, skip_ami_run_tags=True,
            deregistration_protection={"enabled": True, "with_cooldown": True},
            ami_regions=["us-west-2"], snapshot_copy_duration_minutes=15,
        )
        artifact = EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None
        modified = proxy.sent("ModifyInstanceAttribute")
        assert {k: v for r in modified for k, v in r.params.items() if k != "Action" and k != "Version"
                and k != "InstanceId"} == {"SriovNetSupport.Value": "simple", "EnaSupport.Value": "true"}
        create = one(proxy, "CreateImage")
        assert create.tags("image")["BlockTag"] == "ami"
        assert "RunOnly" not in create.tags("image")  # skip_ami_run_tags
        copy = one(proxy, "CopyImage")
        assert copy.region == "us-west-2"
        assert copy.params["SnapshotCopyCompletionDurationMinutes"] == "15"
        protect = proxy.sent("EnableImageDeregistrationProtection")
        assert sorted(r.region for r in protect) == ["us-east-1", "us-west-2"]
        assert all(r.params["WithCooldown"] == "true" for r in protect)
    snaps = ec2(stack).describe_snapshots(OwnerIds=["self"])["Snapshots"]
    snap_tags = [{t["Key"]: t["Value"] for t in s.get("Tags", [])} for s in snaps]
    assert snap_tags and all(t.get("SnapBlock") == "s" for t in snap_tags if "amibake:run-id" in t)


@pytest.mark.effect("builder/amazon-ebs", "skip_save_build_region")
def test_skip_save_build_region(stack: Stack, moto: MotoServer) -> None:
    config = make_config(stack, ami_regions=["us-west-2"], skip_save_build_region=True)
    artifact = EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
    assert artifact is not None and list(artifact.amis) == ["us-west-2"]
    assert own_images(stack, "us-east-1") == []
    west = own_images(stack, "us-west-2")
    assert [i["Name"] for i in west] == [config.ami_name]


@pytest.mark.effect("builder/amazon-ebs", "pause_before_connecting", "ssh_clear_authorized_keys")
def test_pause_and_clear_authorized_keys(stack: Stack, moto: MotoServer) -> None:
    home = Path(pwd.getpwnam(stack.sshd.user).pw_dir)
    keys = home / ".ssh" / "authorized_keys"
    before = keys.read_text() if keys.exists() else None
    ui = RecUi()

    class PlantKey(Hooks):
        def provision(self, comm: Any, build_data: Any) -> None:
            self.data = dict(build_data)
            self.data["connected_at"] = time.monotonic()
            line = build_data["SSHPublicKey"]
            assert comm.run(f"mkdir -p ~/.ssh && echo '{line}' >> ~/.ssh/authorized_keys "
                            "&& echo 'ssh-ed25519 AAAAkeepme other' >> ~/.ssh/authorized_keys") == 0

    try:
        hooks = PlantKey("true")
        config = make_config(stack, pause_before_connecting="2s", ssh_clear_authorized_keys=True)
        start = time.monotonic()
        EbsBuilder(config, make_env(ui)).run(hooks)
        assert "==> Waiting 2s before establishing the SSH connection..." in ui.lines
        assert hooks.data["connected_at"] - start >= 2.0
        left = keys.read_text()
        assert "AAAAkeepme" in left
        assert hooks.data["SSHPublicKey"].split()[1] not in left
    finally:
        if before is None:
            keys.unlink(missing_ok=True)
        else:
            keys.write_text(before)


def _creds_files(tmp_path: Path) -> tuple[Path, Path]:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIAFROMFILE0000001\naws_secret_access_key = s\n"
                     "[base]\naws_access_key_id = AKIABASE00000000001\naws_secret_access_key = s\n")
    conf = tmp_path / "config"
    conf.write_text("[profile build]\nrole_arn = arn:aws:iam::123456789012:role/builder\n"
                    "source_profile = base\nmfa_serial = arn:aws:iam::123456789012:mfa/dev\n")
    return creds, conf


def _no_env_credentials(monkeypatch: pytest.MonkeyPatch, proxy: AwsProxy) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # STS, as a user points boto3 at an endpoint
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.mark.effect("builder/amazon-ebs", "assume_role", "access_key", "secret_key", "region")
def test_assume_role_signs_ec2_with_the_role(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AwsProxy(moto.url) as proxy:
        _no_env_credentials(monkeypatch, proxy)
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, access_key="AKIACALLER000000001", secret_key="s",
            assume_role={"role_arn": "arn:aws:iam::123456789012:role/baker", "session_name": "bake",
                         "external_id": "ext-1", "duration_seconds": 1800,
                         "tags": {"Project": "p"}, "transitive_tag_keys": ["Project"],
                         "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"]},
        )
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assume = one(proxy, "AssumeRole", "sts")
        assert assume.access_key == "AKIACALLER000000001"
        p = assume.params
        assert p["RoleArn"] == "arn:aws:iam::123456789012:role/baker" and p["RoleSessionName"] == "bake"
        assert p["ExternalId"] == "ext-1" and p["DurationSeconds"] == "1800"
        assert p["Tags.member.1.Key"] == "Project" and p["TransitiveTagKeys.member.1"] == "Project"
        assert p["PolicyArns.member.1.arn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
        ec2_keys = {r.access_key for r in proxy.requests if r.service == "ec2"}
        assert len(ec2_keys) == 1
        (key,) = ec2_keys
        assert key != "AKIACALLER000000001" and key.startswith("ASIA")  # the role's temporary key
        assert {r.region for r in proxy.requests if r.service == "ec2"} == {"us-east-1"}


@pytest.mark.effect("builder/amazon-ebs", "shared_credentials_file", "profile", "mfa_code")
def test_credentials_file_profile_and_mfa(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    creds, conf = _creds_files(tmp_path)
    with AwsProxy(moto.url) as proxy:
        _no_env_credentials(monkeypatch, proxy)
        config = make_config(stack, custom_endpoint_ec2=proxy.url, access_key="", secret_key="",
                             shared_credentials_file=str(creds))
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert {r.access_key for r in proxy.requests if r.service == "ec2"} == {"AKIAFROMFILE0000001"}
    CLIENTS.clear()
    monkeypatch.setenv("AWS_CONFIG_FILE", str(conf))
    with AwsProxy(moto.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        config = make_config(stack, custom_endpoint_ec2=proxy.url, access_key="", secret_key="",
                             shared_credentials_file=str(creds), profile="build", mfa_code="424242")
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assume = one(proxy, "AssumeRole", "sts")
        assert assume.access_key == "AKIABASE00000000001"
        assert assume.params["TokenCode"] == "424242"
        assert assume.params["SerialNumber"] == "arn:aws:iam::123456789012:mfa/dev"
        assert all(r.access_key.startswith("ASIA") for r in proxy.requests if r.service == "ec2")


@pytest.mark.effect("builder/amazon-ebs", "skip_credential_validation")
def test_credentials_resolved_before_anything_is_created(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AwsProxy(moto.url) as proxy:
        _no_env_credentials(monkeypatch, proxy)
        config = make_config(stack, custom_endpoint_ec2=proxy.url, access_key="", secret_key="")
        with pytest.raises(BuildError, match=r"credentials could not be validated: .*no valid credential"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert proxy.requests == []
        CLIENTS.clear()
        skipped = make_config(stack, custom_endpoint_ec2=proxy.url, access_key="", secret_key="",
                              skip_credential_validation=True)
        with pytest.raises(BuildError) as exc:
            EbsBuilder(skipped, make_env(RecUi())).run(Hooks("true"))
        assert "could not be validated" not in str(exc.value)


@pytest.mark.effect(
    "builder/amazon-ebs", "spot_price", "spot_instance_types", "spot_allocation_strategy", "spot_tags",
    "spot_tag", "fleet_tags", "fleet_tag",
)
def test_spot_options_reach_the_launch_template_and_fleet(stack: Stack, moto: MotoServer) -> None:
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, spot_price="auto", instance_type="",
            spot_instance_types=["t2.micro", "t3.micro"], spot_allocation_strategy="capacity-optimized",
            spot_tags={"SpotMap": "m"}, spot_tag=[{"key": "SpotBlock", "value": "b"}],
            fleet_tags={"FleetMap": "f"}, fleet_tag=[{"key": "FleetBlock", "value": "g"}],
        )
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        template = one(proxy, "CreateLaunchTemplate")
        assert template.params["LaunchTemplateData.InstanceMarketOptions.MarketType"] == "spot"
        assert "LaunchTemplateData.InstanceMarketOptions.SpotOptions.MaxPrice" not in template.params
        lt_tags = template.tags("launch-template")
        assert lt_tags["SpotMap"] == "m" and lt_tags["SpotBlock"] == "b"
        fleet = one(proxy, "CreateFleet")
        assert fleet.params["SpotOptions.AllocationStrategy"] == "capacity-optimized"
        types = {v for k, v in fleet.params.items() if k.endswith(".InstanceType")}
        assert types == {"t2.micro", "t3.micro"}
        assert fleet.tags("fleet")["FleetMap"] == "f" and fleet.tags("fleet")["FleetBlock"] == "g"
        assert not proxy.sent("RunInstances")


@pytest.mark.effect("builder/amazon-ebs", "iam_instance_profile", "skip_profile_validation")
def test_instance_profile_is_checked_unless_skipped(stack: Stack, moto: MotoServer) -> None:
    import boto3

    iam = boto3.client("iam", endpoint_url=moto.url, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_instance_profile(InstanceProfileName="baker-profile")
    with AwsProxy(moto.url) as proxy:
        missing = make_config(stack, custom_endpoint_ec2=proxy.url, iam_instance_profile="no-such-profile")
        with pytest.raises(BuildError, match="Couldn't find specified instance profile"):
            EbsBuilder(missing, make_env(RecUi())).run(Hooks("true"))
        assert one(proxy, "GetInstanceProfile", "iam").params["InstanceProfileName"] == "no-such-profile"
        assert not proxy.sent("RunInstances")
    with AwsProxy(moto.url) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, iam_instance_profile="baker-profile",
                             skip_profile_validation=True)
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert not proxy.sent("GetInstanceProfile", "iam")
        assert one(proxy, "RunInstances").params["IamInstanceProfile.Name"] == "baker-profile"


@pytest.mark.effect("builder/amazon-ebs", "skip_region_validation")
def test_regions_are_validated_unless_skipped(stack: Stack, moto: MotoServer) -> None:
    with AwsProxy(moto.url) as proxy:
        bad = make_config(stack, custom_endpoint_ec2=proxy.url, skip_region_validation=False,
                          ami_regions=["xx-nowhere-9"])
        with pytest.raises(BuildError, match="Invalid region: xx-nowhere-9"):
            EbsBuilder(bad, make_env(RecUi())).run(Hooks("true"))
        assert proxy.requests == []
        # max_retries: the copy to a region with no endpoint fails at its first attempt, not after ~20 s
        # of retries (what is checked is that the build got past the region check)
        skipped = make_config(stack, custom_endpoint_ec2=proxy.url, skip_region_validation=True,
                              ami_regions=["xx-nowhere-9"], max_retries=1)
        with pytest.raises(BuildError) as exc:
            EbsBuilder(skipped, make_env(RecUi())).run(Hooks("true"))
        assert "Invalid region" not in str(exc.value)
        assert proxy.sent("RunInstances")  # past the region check: the build went on


def _serve(handler_body: bytes) -> tuple[Any, int, list[str]]:
    """A loopback HTTP server answering every GET with ``handler_body``; returns it, its port and
    the paths it was asked for."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(handler_body)))
            self.end_headers()
            self.wfile.write(handler_body)

        def do_PUT(self) -> None:  # IMDSv2 token request: refuse, as an instance without IMDS would
            seen.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1], seen


@pytest.mark.effect("builder/amazon-ebs", "ssh_local_tunnels", "ssh_remote_tunnels")
def test_ssh_tunnels(stack: Stack, moto: MotoServer) -> None:
    from tests.stackkit import free_port

    server, http_port, _ = _serve(b"through-the-tunnel")
    local_port, remote_port = free_port(), free_port()
    got: dict[str, str] = {}

    class UseTunnels(Hooks):
        def provision(self, comm: Any, build_data: Any) -> None:
            import urllib.request

            with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/", timeout=10) as resp:
                got["local"] = resp.read().decode()
            out: list[str] = []
            code = comm.run(f"exec 3<>/dev/tcp/127.0.0.1/{remote_port}; "
                            "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3; cat <&3", stdout=out.append)
            assert code == 0
            got["remote"] = out[-1]

    try:
        config = make_config(stack, ssh_local_tunnels=[f"{local_port}:127.0.0.1:{http_port}"],
                             ssh_remote_tunnels=[f"{remote_port}:127.0.0.1:{http_port}"])
        EbsBuilder(config, make_env(RecUi())).run(UseTunnels("true"))
    finally:
        server.shutdown()
    assert got == {"local": "through-the-tunnel", "remote": "through-the-tunnel"}


@pytest.mark.effect("builder/amazon-ebs", "ssh_disable_agent_forwarding")
def test_agent_forwarding_unless_disabled(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import subprocess

    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        seen: dict[bool, str] = {}
        for disabled in (False, True):
            hooks = Hooks('echo "agent=${SSH_AUTH_SOCK:-none}"')
            config = make_config(stack, ssh_disable_agent_forwarding=disabled)
            EbsBuilder(config, make_env(RecUi())).run(hooks)
            seen[disabled] = hooks.output[-1]
        assert seen[True] == "agent=none"
        assert seen[False].startswith("agent=/") and seen[False] != f"agent={sock}"
    finally:
        agent.terminate()
        agent.wait(10)


@pytest.mark.effect("builder/amazon-ebs", "skip_metadata_api_check")
def test_instance_metadata_credentials_skipped(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, port, asked = _serve(b"")
    try:
        with AwsProxy(moto.url) as proxy:
            _no_env_credentials(monkeypatch, proxy)
            monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
            monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{port}/")
            for skip in (False, True):
                CLIENTS.clear()
                asked.clear()
                config = make_config(stack, custom_endpoint_ec2=proxy.url, access_key="", secret_key="",
                                     skip_metadata_api_check=skip)
                with pytest.raises(BuildError, match="no valid credential sources"):
                    EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
                if skip:
                    assert asked == []
                else:
                    assert asked, "the credential chain never asked the instance metadata service"
            assert proxy.requests == []
    finally:
        server.shutdown()


@pytest.mark.effect(
    "builder/amazon-ebs", "ami_org_arns", "ami_ou_arns", "ami_product_codes", "imds_support", "deprecate_at",
    "encrypt_boot", "kms_key_id", "region_kms_key_ids",
)
def test_ami_attributes_and_encryption(stack: Stack, moto: MotoServer) -> None:
    # moto has no EnableImageDeprecation: the proxy answers it as AWS documents
    with AwsProxy(moto.url, emulate={"EnableImageDeprecation": EMULATED["EnableImageDeprecation"]}) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url,
            ami_org_arns=["arn:aws:organizations::123456789012:organization/o-abc"],
            ami_ou_arns=["arn:aws:organizations::123456789012:ou/o-abc/ou-1"],
            ami_product_codes=["pc123"], imds_support="v2.0", deprecate_at="2031-01-02T03:04:05Z",
            encrypt_boot=True, kms_key_id="alias/build", ami_regions=["us-west-2"],
            region_kms_key_ids={"us-east-1": "alias/build", "us-west-2": "alias/west"},
        )
        EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        modified = [r.params for r in proxy.sent("ModifyImageAttribute")]
        perms = {v for p in modified for k, v in p.items() if "LaunchPermission.Add" in k}
        assert "arn:aws:organizations::123456789012:organization/o-abc" in perms
        assert "arn:aws:organizations::123456789012:ou/o-abc/ou-1" in perms
        assert any(p.get("ProductCode.1") == "pc123" for p in modified)
        assert any(p.get("ImdsSupport.Value") == "v2.0" for p in modified)
        deprecations = proxy.sent("EnableImageDeprecation")
        assert {r.region for r in deprecations} == {"us-east-1", "us-west-2"}
        assert all(r.params["DeprecateAt"].startswith("2031-01-02T03:04:05") for r in deprecations)
        # encrypt_boot: an intermediary AMI, copied encrypted into every region with its key
        copies = {r.region: r.params for r in proxy.sent("CopyImage")}
        assert set(copies) == {"us-east-1", "us-west-2"}
        assert all(p["Encrypted"] == "true" for p in copies.values())
        assert copies["us-east-1"]["KmsKeyId"] == "alias/build"
        assert copies["us-west-2"]["KmsKeyId"] == "alias/west"
        assert one(proxy, "CreateImage").params["Name"] != config.ami_name  # the intermediary
        assert proxy.sent("DeregisterImage")  # ... which is gone at the end


@pytest.mark.effect(
    "builder/amazon-ebs", "skip_create_ami", "security_group_ids", "security_group_id", "subnet_id", "vpc_id",
    "temporary_key_pair_name", "temporary_key_pair_type", "token",
)
def test_network_ids_key_pair_and_skip_create_ami(stack: Stack, moto: MotoServer) -> None:
    client = ec2(stack)
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    groups = [client.create_security_group(GroupName=f"g{i}", Description="d", VpcId=vpc)["GroupId"]
              for i in range(2)]
    with AwsProxy(moto.url) as proxy:
        config = make_config(
            stack, custom_endpoint_ec2=proxy.url, skip_create_ami=True, vpc_id=vpc, subnet_id=subnet,
            security_group_ids=groups, temporary_key_pair_name="baker-key-{{timestamp}}",
            temporary_key_pair_type="ed25519", token="session-token-1",
        )
        artifact = EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is None and not proxy.sent("CreateImage")
        run = one(proxy, "RunInstances")
        assert run.params["SubnetId"] == subnet and run.values("SecurityGroupId") == groups
        key = one(proxy, "CreateKeyPair")
        assert key.params["KeyName"].startswith("baker-key-") and key.params["KeyType"] == "ed25519"
        assert run.params["KeyName"] == key.params["KeyName"]
        assert not proxy.sent("CreateSecurityGroup")
        assert {r.security_token for r in proxy.requests if r.service == "ec2"} == {"session-token-1"}
    with AwsProxy(moto.url) as proxy:
        single = make_config(stack, custom_endpoint_ec2=proxy.url, skip_create_ami=True,
                             subnet_id=subnet, security_group_id=groups[1])
        EbsBuilder(single, make_env(RecUi())).run(Hooks("true"))
        assert one(proxy, "RunInstances").values("SecurityGroupId") == [groups[1]]


@pytest.mark.effect("builder/amazon-ebs", "communicator")
def test_communicator_none_makes_no_key_and_no_connection(stack: Stack, moto: MotoServer) -> None:
    class Records(Hooks):
        def provision(self, comm: Any, build_data: Any) -> None:
            self.data = dict(build_data)

    with AwsProxy(moto.url) as proxy:
        hooks = Records("true")
        config = make_config(stack, custom_endpoint_ec2=proxy.url, communicator="none",
                             ssh_host="127.0.0.1", ssh_port=1)  # nothing listens there: never tried
        ui = RecUi()
        EbsBuilder(config, make_env(ui)).run(hooks)
        assert not proxy.sent("CreateKeyPair") and not proxy.sent("ImportKeyPair")
        assert not proxy.sent("AuthorizeSecurityGroupIngress")
        assert "==> Waiting for SSH to become available..." not in ui.lines
        assert hooks.data["ConnType"] == "none"


@pytest.mark.effect("builder/amazon-ebs", "disable_stop_instance")
def test_disable_stop_instance_leaves_the_stop_to_the_template(stack: Stack, moto: MotoServer) -> None:
    class StopsItself(Hooks):
        def provision(self, comm: Any, build_data: Any) -> None:
            # what a provisioner's `shutdown -h` does on a real instance
            ec2(stack).stop_instances(InstanceIds=[build_data["ID"]])

    with AwsProxy(moto.url) as proxy:
        ui = RecUi()
        config = make_config(stack, custom_endpoint_ec2=proxy.url, disable_stop_instance=True)
        EbsBuilder(config, make_env(ui)).run(StopsItself("true"))
        assert not proxy.sent("StopInstances")
        assert "==> Automatic instance stop disabled. Please stop instance manually." in ui.lines
        assert proxy.sent("CreateImage")


@pytest.mark.effect("builder/amazon-ebs", "ssh_pty", "ssh_ciphers", "ssh_key_exchange_algorithms")
def test_ssh_pty_ciphers_and_kex(stack: Stack, moto: MotoServer) -> None:
    seen: dict[bool, str] = {}
    for pty in (False, True):
        hooks = Hooks("test -t 0 && echo tty || echo notty")
        config = make_config(stack, ssh_pty=pty, ssh_ciphers=["aes256-ctr"],
                             ssh_key_exchange_algorithms=["curve25519-sha256"])
        EbsBuilder(config, make_env(RecUi())).run(hooks)
        seen[pty] = hooks.output[-1].strip()
    assert seen == {False: "notty", True: "tty"}
    # a cipher / key exchange the server does not offer: the connection fails on it
    unoffered = (
        ({"ssh_ciphers": ["3des-cbc"]}, "No matching encryption algorithm"),
        ({"ssh_key_exchange_algorithms": ["diffie-hellman-group1-sha1"]}, "No matching key exchange"),
    )
    for over, message in unoffered:
        config = make_config(stack, ssh_timeout="10s", ssh_handshake_attempts=1, **over)
        with pytest.raises(CommunicatorError, match=message):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))


@pytest.mark.effect("builder/amazon-ebs", "ssh_timeout", "ssh_wait_timeout")
def test_ssh_timeout_bounds_the_wait(stack: Stack, moto: MotoServer) -> None:
    from tests.stackkit import free_port

    for key in ("ssh_timeout", "ssh_wait_timeout"):
        config = make_config(stack, ssh_port=free_port(), **{"ssh_timeout": "", key: "3s"})
        start = time.monotonic()
        with pytest.raises(CommunicatorError, match="timeout waiting for SSH"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert 2.5 <= time.monotonic() - start < 40


@pytest.mark.effect("builder/amazon-ebs", "ssh_private_key_file", "ssh_keypair_name")
def test_existing_key_pair_and_private_key_file(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    pem = key.export_private_key("openssh").decode()
    key_file = tmp_path / "baker.pem"
    key_file.write_text(pem)
    ec2(stack).import_key_pair(KeyName="baker", PublicKeyMaterial=key.export_public_key("openssh"))
    with AwsProxy(moto.url) as proxy:
        hooks = Hooks("true")
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ssh_keypair_name="baker",
                             ssh_private_key_file=str(key_file))
        EbsBuilder(config, make_env(RecUi())).run(hooks)
        assert not proxy.sent("CreateKeyPair") and not proxy.sent("ImportKeyPair")
        assert one(proxy, "RunInstances").params["KeyName"] == "baker"
        assert hooks.data["SSHPrivateKey"] == pem  # the key the connection was made with


@pytest.mark.effect("builder/amazon-ebs", "ssh_interface")
def test_ssh_interface_picks_the_address(stack: Stack, moto: MotoServer) -> None:
    ui = RecUi()
    config = make_config(stack, ssh_host="", ssh_interface="private_ip", ssh_timeout="2s")
    with pytest.raises(CommunicatorError):
        EbsBuilder(config, make_env(ui)).run(Hooks("true"))
    reservations = ec2(stack).describe_instances()["Reservations"]
    private_ip = reservations[-1]["Instances"][0]["PrivateIpAddress"]
    assert f"==> Using SSH communicator to connect: {private_ip}" in ui.lines


# --- AWS access: retries, polling, TLS; the virtualization type -------------------------------------


class ThrottleFirst(AwsProxy):
    """Answers the first ``first`` EC2 calls with throttling (503 RequestLimitExceeded, as AWS sheds
    load), then relays every call: a deterministic burst, where ``throttle_rate`` is random."""

    def __init__(self, upstream: str, first: int) -> None:
        super().__init__(upstream)
        self.first = first
        self._seen = 0

    def _fault_for(self) -> str:
        with self._lock:
            self._seen += 1
            return "throttle" if self._seen <= self.first else ""


@pytest.mark.effect("builder/amazon-ebs", "max_retries")
def test_max_retries_bounds_the_attempts_of_a_throttled_call(stack: Stack, moto: MotoServer) -> None:
    """max_retries is the retries after the first attempt (aws-sdk-go's MaxRetries): a call throttled
    three times fails the build with max_retries = 2 (1 + 2 attempts), and gets through on its fourth
    attempt with max_retries = 3."""
    with ThrottleFirst(moto.url, first=3) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, max_retries=2)
        with pytest.raises(BuildError, match="RequestLimitExceeded"):
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        first = proxy.requests[0]
        assert [(r.action, r.status) for r in proxy.requests] == [(first.action, 503)] * 3
        assert first.params == proxy.requests[2].params  # the same call, attempted three times
    with ThrottleFirst(moto.url, first=3) as proxy:
        config = make_config(stack, custom_endpoint_ec2=proxy.url, max_retries=3)
        artifact = EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None
        assert [(r.action, r.status) for r in proxy.requests[:4]] == [
            (first.action, 503), (first.action, 503), (first.action, 503), (first.action, 200)]
        assert proxy.faults["throttle"] == 3
        one(proxy, "CreateImage")


class PollClock(AwsProxy):
    """Notes when each DescribeImages answer showed an image still ``pending`` (a poll of a wait)."""

    def __init__(self, upstream: str, **kw: Any) -> None:
        super().__init__(upstream, **kw)
        self.pending_polls: list[float] = []

    def __enter__(self) -> PollClock:
        self.start()
        return self

    def observe(self, action: str, body: bytes) -> bytes:
        out = super().observe(action, body)
        if action == "DescribeImages" and b"<imageState>pending</imageState>" in out:
            with self._lock:
                self.pending_polls.append(time.monotonic())
        return out


class ClockUi(RecUi):
    """Notes when each message was said."""

    def __init__(self) -> None:
        super().__init__()
        self.said: dict[str, float] = {}

    def say(self, message: str) -> None:
        self.said.setdefault(message, time.monotonic())
        super().say(message)

    def polls(self, proxy: PollClock) -> list[float]:
        """The polls of the wait for the AMI (not a look at it before or after)."""
        start = self.said["Waiting for AMI to become ready..."]
        end = min([t for m, t in self.said.items() if t > start] + [float("inf")])
        return [t for t in proxy.pending_polls if start <= t < end]


@pytest.mark.effect("builder/amazon-ebs", "aws_polling")
def test_aws_polling_spaces_and_bounds_the_waits(stack: Stack, moto: MotoServer) -> None:
    """aws_polling: polls are at most delay_seconds apart (amibake starts at 0.5 s and doubles up to
    it), and a wait lasts at most max_attempts x delay_seconds (the plugin's waiter MaxWaitTime)."""
    # the AMI stays pending for a minute: 3 attempts 1 s apart give up after about 3 s
    with PollClock(moto.url, delays={"image_pending": 60}) as proxy:
        ui = ClockUi()
        config = make_config(stack, custom_endpoint_ec2=proxy.url,
                             aws_polling={"delay_seconds": 1, "max_attempts": 3})
        with pytest.raises(BuildError, match=r"gave up waiting for .*\(3 attempts, 1s apart; raise aws_pol"):
            EbsBuilder(config, make_env(ui)).run(Hooks("true"))
        polls = ui.polls(proxy)
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        assert 3 <= len(polls) <= 5, gaps  # at once, then 0.5 s, 1 s, 1 s...
        # (bounds with room for a loaded machine: each poll's own latency adds to its gap)
        # the last gap is the full second (the backoff's 0.5 s step is below 0.8): each gap is measured
        # when moto's answer arrives, so one slow answer before a fast one shortens it by the difference
        assert max(gaps) <= 2.0 and gaps[-1] >= 0.8, gaps
        # measured from the wait's start (its first poll may answer before the message is noted)
        started = ui.said["Waiting for AMI to become ready..."]
        gave_up = min(t for t in ui.said.values() if t > polls[-1])
        assert 2.0 <= gave_up - started <= 4.5, (gaps, gave_up - started)
    # pending for 5 s: 4 attempts 2 s apart (8 s) wait it out, with polls reaching 2 s apart
    with PollClock(moto.url, delays={"image_pending": 5}) as proxy:
        ui = ClockUi()
        config = make_config(stack, custom_endpoint_ec2=proxy.url,
                             aws_polling={"delay_seconds": 2, "max_attempts": 4})
        artifact = EbsBuilder(config, make_env(ui)).run(Hooks("true"))
        assert artifact is not None
        polls = ui.polls(proxy)
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        assert 1.8 <= max(gaps) <= 3.2 and gaps[-1] >= 1.8, gaps
        assert polls[-1] - polls[0] >= 3.0, gaps  # longer than the first wait's whole budget


@pytest.mark.effect("builder/amazon-ebs", "insecure_skip_tls_verify")
def test_insecure_skip_tls_verify(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An HTTPS EC2 endpoint with a self-signed certificate (tests/tlsfront.py in front of the
    recording proxy): refused by default, with a clear error and nothing sent; used with
    insecure_skip_tls_verify."""
    import json
    import subprocess
    import sys

    from tests.tlsfront import TlsFront

    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with AwsProxy(moto.url) as proxy, TlsFront(proxy.url) as front:
        config = make_config(stack, custom_endpoint_ec2=front.url)
        with pytest.raises(BuildError) as exc:
            EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert "certificate verify failed" in str(exc.value)
        assert "insecure_skip_tls_verify" in str(exc.value)
        assert front.handshakes == 0 and front.wait_refused()  # the client refused the certificate
        assert proxy.requests == []
        # the same through the CLI: an error message, no traceback
        template = tmp_path / "t.json"
        template.write_text(json.dumps({"builders": [{
            "type": "amazon-ebs", "region": "us-east-1", "source_ami": "ami-785db401",
            "instance_type": "t2.micro", "ssh_username": stack.sshd.user, "ami_name": "tls-{{timestamp}}",
            "custom_endpoint_ec2": front.url, "skip_region_validation": True,
        }]}))
        env = {**os.environ, **stack.env(), "AWS_ENDPOINT_URL": front.url,
               "AMIBAKE_STATE_DIR": str(tmp_path / "cli-state")}
        r = subprocess.run([sys.executable, "-m", "amibake", "build", str(template)], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "certificate verify failed" in r.stdout + r.stderr
        assert "Traceback" not in r.stdout + r.stderr and "InsecureRequestWarning" not in r.stderr
        assert proxy.requests == []
        # skipping verification: the whole build goes through the TLS front
        config = make_config(stack, custom_endpoint_ec2=front.url, insecure_skip_tls_verify=True)
        artifact = EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None and front.handshakes >= 1
        one(proxy, "RunInstances")
        one(proxy, "CreateImage")


#: a paravirtual AMI among moto's bundled images
PARAVIRTUAL_AMI = "ami-8104a4f8"


@pytest.mark.effect("builder/amazon-ebs", "ami_virtualization_type")
def test_ami_virtualization_type_is_checked_against_the_source(stack: Stack, moto: MotoServer) -> None:
    """Packer's amazon-ebs reads ami_virtualization_type only to allow ENA/SR-IOV; the image always
    has its source AMI's type. amibake refuses a type the source AMI does not have (before anything is
    created) rather than build another image than the template says."""
    creates = ("RunInstances", "CreateKeyPair", "ImportKeyPair", "CreateSecurityGroup", "CreateImage")
    with AwsProxy(moto.url) as proxy:
        refused = (
            ({"ami_virtualization_type": "paravirtual"},
             r"ami_virtualization_type is 'paravirtual' but the source AMI ami-785db401 is 'hvm'"),
            ({"ami_virtualization_type": "hvm", "source_ami": PARAVIRTUAL_AMI},
             rf"ami_virtualization_type is 'hvm' but the source AMI {PARAVIRTUAL_AMI} is 'paravirtual'"),
            # Packer's own check: enhanced networking needs HVM
            ({"ami_virtualization_type": "paravirtual", "ena_support": True},
             r"Cannot enable enhanced networking, AMIVirtType 'paravirtual' is not HVM"),
            ({"source_ami": PARAVIRTUAL_AMI, "sriov_support": True},
             rf"Cannot enable enhanced networking, source AMI '{PARAVIRTUAL_AMI}' is not HVM"),
        )
        for over, message in refused:
            config = make_config(stack, custom_endpoint_ec2=proxy.url, **over)
            with pytest.raises(BuildError, match=message):
                EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert not [r.action for r in proxy.requests if r.action in creates]
        assert len(proxy.sent("DescribeImages")) >= len(refused)  # each looked at its source AMI
        config = make_config(stack, custom_endpoint_ec2=proxy.url, ami_virtualization_type="hvm",
                             ena_support=True)
        artifact = EbsBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None
        one(proxy, "CreateImage")
    image = ec2(stack).describe_images(ImageIds=[artifact.amis["us-east-1"]])["Images"][0]
    assert image["VirtualizationType"] == "hvm"
