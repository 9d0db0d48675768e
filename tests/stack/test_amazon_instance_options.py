"""amazon-instance options observed where they take effect.

The options amazon-instance shares with amazon-ebs (access, launch, network, key pair, communicator)
are carried out by the same steps. Their amazon-ebs effect tests (test_ebs_options.py,
test_ebs_ssh_options.py) run here again with an amazon-instance build in place of the amazon-ebs one:
``make_config`` and ``EbsBuilder`` of those modules are swapped for the amazon-instance config (the
same options, with the bundle options naming the stand-in AMI tools of tests/stack/data/instance,
installed on the stack's sshd host once for this module) and :class:`InstanceBuilder`, so each
assertion observes an amazon-instance build: launched, provisioned, bundled, uploaded to moto's S3 and
registered. Tests whose assertions involve CreateImage or the stop have an amazon-instance version below.
The bundle commands name their paths literally (these builds render no Go templates).
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tests.stack.test_ebs_options as ebs_opts
import tests.stack.test_ebs_ssh_options as ssh_opts
from amibake.errors import BuildError
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.instance import InstanceBuilder
from tests.awsproxy import EMULATED, AwsProxy
from tests.stack.test_ebs_builder import SOURCE_AMI, Hooks, RecUi, ec2, make_env
from tests.stack.test_ebs_ssh_options import agent, certd, jump  # noqa: F401  (fixtures the reused tests take)
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

TOOLS = Path(__file__).parent / "data" / "instance"
#: the directory of the stack's sshd host with the stand-in tools, the X509 files and the bundles
REMOTE: dict[str, str] = {}
#: the builder of the CLI build below (its type and own options, filled in by ``_tools``)
CLI_BUILDER: dict[str, Any] = {"type": "amazon-instance"}
CLI_ARTIFACT = "AMIs were created:"


@pytest.fixture(scope="module", autouse=True)
def _tools(stack: Stack) -> Iterator[None]:
    """The stand-in AMI tools installed on the "instance" (the local sshd's host), for every build here."""
    remote = Path("/tmp") / f"amibake-instance-opts-{uuid.uuid4().hex[:10]}"
    remote.mkdir(mode=0o777)
    remote.chmod(0o777)
    for script in ("ec2-bundle-vol", "ec2-upload-bundle"):
        shutil.copy(TOOLS / script, remote / script)
    local = remote / "local"
    local.mkdir()
    (local / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nopts\n-----END CERTIFICATE-----\n")
    (local / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nopts\n-----END PRIVATE KEY-----\n")
    REMOTE["dir"] = str(remote)
    CLI_BUILDER.update(bundle_options(stack), ami_name="instance-cli-{{timestamp}}")
    yield
    shutil.rmtree(remote, ignore_errors=True)


def bundle_options(stack: Stack) -> dict[str, Any]:
    """The amazon-instance options of a build here: the stand-in tools, literal paths, a unique prefix."""
    remote = REMOTE["dir"]
    prefix = f"image-{uuid.uuid4().hex[:8]}"
    bucket = f"opts-{uuid.uuid4().hex[:10]}"
    return dict(
        account_id="123456789012", s3_bucket=bucket, x509_cert_path=f"{remote}/local/cert.pem",
        x509_key_path=f"{remote}/local/key.pem", x509_upload_path=remote, bundle_destination=remote,
        bundle_prefix=prefix,
        bundle_vol_command=f"sh {remote}/ec2-bundle-vol -k {remote}/key.pem -u 123456789012 "
                           f"-c {remote}/cert.pem -r x86_64 -d {remote} -p {prefix}",
        bundle_upload_command=f"sh {remote}/ec2-upload-bundle -b {bucket} -m {remote}/{prefix}.manifest.xml "
                              f"-d {remote} --region us-east-1 --url {stack.moto.url}",
    )


def instance_config(stack: Stack, **over: Any) -> InstanceConfig:
    """amazon-ebs's test config (tests/stack/test_ebs_builder.py ``make_config``) as an amazon-instance
    config: the shared options as given, the bundle options of :func:`bundle_options`."""
    base: dict[str, Any] = dict(
        region="us-east-1", access_key="testing", secret_key="testing", custom_endpoint_ec2=stack.moto.url,
        source_ami=SOURCE_AMI, instance_type="t2.micro", ssh_username=stack.sshd.user, ssh_host="127.0.0.1",
        ssh_port=stack.sshd.port, ssh_timeout="60s", run_tags={"Name": "amibake-builder"},
        ami_name=f"instance-opts-{uuid.uuid4().hex[:8]}",
        aws_polling={"delay_seconds": 1, "max_attempts": 30}, **bundle_options(stack),
    )
    base.update(over)
    fields = {info.alias or name for name, info in InstanceConfig.model_fields.items()}
    return InstanceConfig.model_validate({k: v for k, v in base.items() if k in fields})


@pytest.fixture(autouse=True)
def _as_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()
    for module in (ebs_opts, ssh_opts):
        monkeypatch.setattr(module, "make_config", instance_config)
        monkeypatch.setattr(module, "EbsBuilder", InstanceBuilder)


# ---- amazon-ebs's tests, on an amazon-instance build -----------------------------------------


@pytest.mark.effect("builder/amazon-instance", "run_tags")
def test_default_instance_name(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_default_instance_name(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "pause_before_connecting", "ssh_clear_authorized_keys")
def test_pause_and_clear_authorized_keys(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_pause_and_clear_authorized_keys(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "assume_role", "access_key", "secret_key", "region")
def test_assume_role_signs_ec2_with_the_role(stack: Stack, moto: MotoServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ebs_opts.test_assume_role_signs_ec2_with_the_role(stack, moto, monkeypatch)


@pytest.mark.effect("builder/amazon-instance", "shared_credentials_file", "profile", "mfa_code")
def test_credentials_file_profile_and_mfa(stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    ebs_opts.test_credentials_file_profile_and_mfa(stack, moto, monkeypatch, tmp_path)


@pytest.mark.effect("builder/amazon-instance", "skip_credential_validation")
def test_credentials_resolved_before_anything_is_created(stack: Stack, moto: MotoServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ebs_opts.test_credentials_resolved_before_anything_is_created(stack, moto, monkeypatch)


@pytest.mark.effect("builder/amazon-instance", "spot_price", "spot_instance_types",
                    "spot_allocation_strategy", "spot_tags", "spot_tag", "fleet_tags", "fleet_tag")
def test_spot_options_reach_the_launch_template_and_fleet(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_spot_options_reach_the_launch_template_and_fleet(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "iam_instance_profile", "skip_profile_validation")
def test_instance_profile_is_checked_unless_skipped(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_instance_profile_is_checked_unless_skipped(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_local_tunnels", "ssh_remote_tunnels")
def test_ssh_tunnels(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_ssh_tunnels(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_disable_agent_forwarding")
def test_agent_forwarding_unless_disabled(stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    ebs_opts.test_agent_forwarding_unless_disabled(stack, moto, monkeypatch, tmp_path)


@pytest.mark.effect("builder/amazon-instance", "skip_metadata_api_check")
def test_instance_metadata_credentials_skipped(stack: Stack, moto: MotoServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ebs_opts.test_instance_metadata_credentials_skipped(stack, moto, monkeypatch)


@pytest.mark.effect("builder/amazon-instance", "ssh_pty", "ssh_ciphers", "ssh_key_exchange_algorithms")
def test_ssh_pty_ciphers_and_kex(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_ssh_pty_ciphers_and_kex(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_timeout", "ssh_wait_timeout")
def test_ssh_timeout_bounds_the_wait(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_ssh_timeout_bounds_the_wait(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_private_key_file", "ssh_keypair_name")
def test_existing_key_pair_and_private_key_file(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    ebs_opts.test_existing_key_pair_and_private_key_file(stack, moto, tmp_path)


@pytest.mark.effect("builder/amazon-instance", "ssh_interface")
def test_ssh_interface_picks_the_address(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_ssh_interface_picks_the_address(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_bastion_host", "ssh_bastion_port",
                    "ssh_bastion_username", "ssh_bastion_private_key_file")
def test_bastion_with_a_key_forwards_to_the_instance(stack: Stack, moto: MotoServer, jump: Any,  # noqa: F811
                                                     tmp_path: Path) -> None:
    ssh_opts.test_bastion_with_a_key_forwards_to_the_instance(stack, moto, jump, tmp_path)


@pytest.mark.effect("builder/amazon-instance", "ssh_certificate_file", "ssh_bastion_certificate_file")
def test_certificates_for_instance_and_bastion(stack: Stack, moto: MotoServer, certd: Any,  # noqa: F811
                                               tmp_path: Path) -> None:
    ssh_opts.test_certificates_for_instance_and_bastion(stack, moto, certd, tmp_path)


@pytest.mark.effect("builder/amazon-instance", "ssh_agent_auth", "ssh_bastion_agent_auth")
def test_agent_authenticates_to_instance_and_bastion(stack: Stack, moto: MotoServer, jump: Any,  # noqa: F811
                                                     agent: str,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ssh_opts.test_agent_authenticates_to_instance_and_bastion(stack, moto, jump, agent, monkeypatch)


@pytest.mark.effect("builder/amazon-instance", "ssh_file_transfer_method")
def test_file_transfer_method(stack: Stack, moto: MotoServer, jump: Any) -> None:  # noqa: F811
    """The X509 files go up and the manifest comes down by sftp (sshd's sftp subsystem) or by scp
    (``scp -t`` / ``scp -f`` commands): sshd logs each session's type (test_ebs_ssh_options.py's test,
    with the bundle's transfers in place of a file provisioner's)."""
    seen = {}
    for method in ("sftp", "scp"):
        mark = ssh_opts.log_mark(jump)
        config = instance_config(stack, ssh_port=jump.port, ssh_file_transfer_method=method)
        assert InstanceBuilder(config, make_env(RecUi())).run(Hooks("true")) is not None
        seen[method] = ssh_opts.log_since(jump, mark)
    sftp = "Starting session: subsystem 'sftp'"
    assert sftp in seen["sftp"] and sftp not in seen["scp"]
    commands = {m: log.count("Starting session: command ") for m, log in seen.items()}
    assert commands["scp"] == commands["sftp"] + 3, commands  # cert.pem and key.pem up, the manifest down


@pytest.mark.effect("builder/amazon-instance", "ssh_handshake_attempts")
def test_handshake_attempts_bound_authentication_failures(stack: Stack, moto: MotoServer) -> None:
    ssh_opts.test_handshake_attempts_bound_authentication_failures(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_keep_alive_interval")
def test_keep_alive_interval(stack: Stack, moto: MotoServer, jump: Any) -> None:  # noqa: F811
    ssh_opts.test_keep_alive_interval(stack, moto, jump)


@pytest.mark.effect("builder/amazon-instance", "ssh_read_write_timeout")
def test_read_write_timeout_drops_a_silent_connection(stack: Stack, moto: MotoServer) -> None:
    ssh_opts.test_read_write_timeout_drops_a_silent_connection(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "ssh_password")
def test_password_logs_in_without_a_key_pair(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    """ssh_password: no key pair is made, the instance (the SSH emulation of test_ebs_ssh_options.py)
    gets the password and runs the provisioner; the emulation has no file transfer, so the build stops
    at the X509 upload."""
    user = stack.sshd.user
    with ssh_opts.SshServerEmulation(user=user, workdir=tmp_path, commands=True, password="pw-Ab3") as emu, \
            AwsProxy(moto.url) as proxy:
        hooks = Hooks("echo password-login")
        config = instance_config(stack, custom_endpoint_ec2=proxy.url, ssh_port=emu.port,
                                 ssh_password="pw-Ab3")
        with pytest.raises(BuildError, match="Error uploading X509 cert"):
            InstanceBuilder(config, make_env(RecUi())).run(hooks)
        assert hooks.output == ["password-login"]
        assert not proxy.sent("CreateKeyPair") and not proxy.sent("ImportKeyPair")
        assert "KeyName" not in proxy.sent("RunInstances")[0].params
        assert ("password", user, True) in emu.events and ("exec", "echo password-login") in emu.events


@pytest.mark.effect("builder/amazon-instance", "ssh_bastion_password")
def test_bastion_password(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    ssh_opts.test_bastion_password(stack, moto, tmp_path)


# ---- amazon-instance versions of amazon-ebs tests whose assertions involve the AMI ------------------


@pytest.mark.effect(
    "builder/amazon-instance", "placement", "tenancy", "capacity_reservation_preference",
    "capacity_reservation_id", "capacity_reservation_group_arn", "enable_nitro_enclave",
    "enable_unlimited_credits", "run_tag",
    "metadata_options", "ebs_optimized", "shutdown_behavior", "temporary_key_pair_bits", "instance_type",
    "user_data", "license_specifications", "source_ami", "custom_endpoint_ec2", "ssh_host", "ssh_port",
    "ssh_username", "temporary_iam_instance_profile_policy_document", "temporary_security_group_source_cidrs",
)
def test_launch_options_reach_run_instances(stack: Stack, moto: MotoServer) -> None:
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]}]}
    with AwsProxy(moto.url) as proxy:
        hooks = Hooks("echo $(id -un)")
        config = instance_config(
            stack, custom_endpoint_ec2=proxy.url, instance_type="t2.micro",
            placement={"host_id": "h-0123456789abcdef0", "tenancy": "host"},
            capacity_reservation_preference="open", enable_nitro_enclave=True, enable_unlimited_credits=True,
            license_specifications=[{"license_configuration_request": {
                "license_configuration_arn": "arn:aws:license-manager:us-east-1:123456789012:lc/x"}}],
            run_tag=[{"key": "Block", "value": "run"}],
            metadata_options={"http_tokens": "required", "http_put_response_hop_limit": 2},
            ebs_optimized=True, shutdown_behavior="terminate", temporary_key_pair_bits=3072,
            user_data="#!/bin/sh\necho hi\n", temporary_iam_instance_profile_policy_document=policy,
            temporary_security_group_source_cidrs=["10.1.0.0/16"],
        )
        InstanceBuilder(config, make_env(RecUi())).run(hooks)
        p = ebs_opts.one(proxy, "RunInstances").params
        assert p["ImageId"] == SOURCE_AMI and p["InstanceType"] == "t2.micro"
        assert p["Placement.Tenancy"] == "host" and p["Placement.HostId"] == "h-0123456789abcdef0"
        assert p["CapacityReservationSpecification.CapacityReservationPreference"] == "open"
        assert p["EnclaveOptions.Enabled"] == "true" and p["CreditSpecification.CpuCredits"] == "unlimited"
        assert p["LicenseSpecification.1.LicenseConfigurationArn"].endswith(":lc/x")
        assert p["EbsOptimized"] == "true" and p["InstanceInitiatedShutdownBehavior"] == "terminate"
        assert p["MetadataOptions.HttpTokens"] == "required"
        assert p["MetadataOptions.HttpPutResponseHopLimit"] == "2"
        assert base64.b64decode(p["UserData"]) == b"#!/bin/sh\necho hi\n"
        assert p["IamInstanceProfile.Name"].startswith("packer-")
        policy_sent = ebs_opts.one(proxy, "PutRolePolicy", "iam").params["PolicyDocument"]
        assert json.loads(policy_sent)["Statement"][0]["Action"] == ["s3:GetObject"]
        ingress = ebs_opts.one(proxy, "AuthorizeSecurityGroupIngress").params
        assert "10.1.0.0/16" in ingress.values() and str(stack.sshd.port) in ingress.values()
        run = proxy.sent("RunInstances")[0]
        assert run.tags("instance")["Block"] == "run"
        imported = ebs_opts.one(proxy, "ImportKeyPair")
        from cryptography.hazmat.primitives.serialization import load_ssh_public_key

        key = load_ssh_public_key(base64.b64decode(imported.params["PublicKeyMaterial"]))
        assert key.key_size == 3072  # type: ignore[union-attr]
    # ssh_host / ssh_port / ssh_username: the provisioner ran as that user on the stack's sshd
    assert hooks.output == [stack.sshd.user] and hooks.data["Host"] == "127.0.0.1"
    assert hooks.data["Port"] == stack.sshd.port


@pytest.mark.effect("builder/amazon-instance", "enable_t2_unlimited", "user_data_file", "source_ami_filter",
                    "availability_zone")
def test_t2_unlimited_user_data_file_source_filter_and_zone(stack: Stack, moto: MotoServer,
                                                           tmp_path: Path) -> None:
    data = tmp_path / "user-data.sh"
    data.write_text("#!/bin/sh\necho from-file\n")
    with AwsProxy(moto.url) as proxy:
        config = instance_config(
            stack, custom_endpoint_ec2=proxy.url, enable_t2_unlimited=True, user_data_file=str(data),
            source_ami="", source_ami_filter={"filters": {"image-id": SOURCE_AMI}, "owners": ["amazon"]},
            availability_zone="us-east-1b",
        )
        InstanceBuilder(config, make_env(RecUi())).run(Hooks("true"))
        [described] = [r.params for r in proxy.sent("DescribeImages") if "Owner.1" in r.params
                       and r.params.get("Filter.1.Name") == "image-id"]
        assert described["Owner.1"] == "amazon" and described["Filter.1.Value.1"] == SOURCE_AMI
        p = ebs_opts.one(proxy, "RunInstances").params
        assert p["ImageId"] == SOURCE_AMI and p["CreditSpecification.CpuCredits"] == "unlimited"
        assert base64.b64decode(p["UserData"]) == b"#!/bin/sh\necho from-file\n"
        assert p["Placement.AvailabilityZone"] == "us-east-1b"


@pytest.mark.effect(
    "builder/amazon-instance", "security_group_ids", "security_group_id", "subnet_id", "vpc_id",
    "temporary_key_pair_name", "temporary_key_pair_type", "token", "associate_public_ip_address",
)
def test_network_ids_and_key_pair(stack: Stack, moto: MotoServer) -> None:
    client = ec2(stack)
    vpc = client.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = client.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    groups = [client.create_security_group(GroupName=f"vg{i}", Description="d", VpcId=vpc)["GroupId"]
              for i in range(2)]
    with AwsProxy(moto.url) as proxy:
        config = instance_config(
            stack, custom_endpoint_ec2=proxy.url, vpc_id=vpc, subnet_id=subnet, security_group_ids=groups,
            temporary_key_pair_name="inst-key-{{timestamp}}", temporary_key_pair_type="ed25519",
            token="session-token-1",
        )
        InstanceBuilder(config, make_env(RecUi())).run(Hooks("true"))
        run = ebs_opts.one(proxy, "RunInstances")
        assert run.params["SubnetId"] == subnet and run.values("SecurityGroupId") == groups
        key = ebs_opts.one(proxy, "CreateKeyPair")
        assert key.params["KeyName"].startswith("inst-key-") and key.params["KeyType"] == "ed25519"
        assert not proxy.sent("CreateSecurityGroup")
        assert {r.security_token for r in proxy.requests if r.service == "ec2"} == {"session-token-1"}
    with AwsProxy(moto.url) as proxy:
        single = instance_config(stack, custom_endpoint_ec2=proxy.url, subnet_id=subnet,
                               security_group_id=groups[1], associate_public_ip_address=True)
        InstanceBuilder(single, make_env(RecUi())).run(Hooks("true"))
        p = ebs_opts.one(proxy, "RunInstances").params
        assert p["NetworkInterface.1.AssociatePublicIpAddress"] == "true"
        assert p["NetworkInterface.1.SubnetId"] == subnet
        assert p["NetworkInterface.1.SecurityGroupId.1"] == groups[1]


@pytest.mark.effect("builder/amazon-instance", "vpc_filter", "subnet_filter", "security_group_filter")
def test_vpc_subnet_and_security_group_filters(stack: Stack, moto: MotoServer) -> None:
    client = ec2(stack)
    vpc = client.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    client.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "vol-vpc"}])
    small = client.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/28")["Subnet"]["SubnetId"]
    big = client.create_subnet(VpcId=vpc, CidrBlock="10.8.2.0/24")["Subnet"]["SubnetId"]
    client.create_tags(Resources=[small, big], Tags=[{"Key": "Role", "Value": "vol"}])
    group = client.create_security_group(GroupName="vol-ssh", Description="ssh", VpcId=vpc)["GroupId"]
    client.create_tags(Resources=[group], Tags=[{"Key": "Role", "Value": "vol"}])
    with AwsProxy(moto.url) as proxy:
        ui = RecUi()
        config = instance_config(
            stack, custom_endpoint_ec2=proxy.url, vpc_filter={"filters": {"tag:Name": "vol-vpc"}},
            subnet_filter={"filters": {"tag:Role": "vol"}, "most_free": True},
            security_group_filter={"filters": {"tag:Role": "vol"}},
        )
        InstanceBuilder(config, make_env(ui)).run(Hooks("true"))
        assert f"    Found VPC ID: {vpc}" in ui.lines and f"    Found Subnet ID: {big}" in ui.lines
        run = ebs_opts.one(proxy, "RunInstances")
        assert run.params["SubnetId"] == big and run.values("SecurityGroupId") == [group]


@pytest.mark.effect("builder/amazon-instance", "max_retries")
def test_max_retries_bounds_the_attempts_of_a_throttled_call(stack: Stack, moto: MotoServer) -> None:
    with ebs_opts.ThrottleFirst(moto.url, first=3) as proxy:
        config = instance_config(stack, custom_endpoint_ec2=proxy.url, max_retries=2)
        with pytest.raises(BuildError, match="RequestLimitExceeded"):
            InstanceBuilder(config, make_env(RecUi())).run(Hooks("true"))
        first = proxy.requests[0]
        assert [(r.action, r.status) for r in proxy.requests] == [(first.action, 503)] * 3
    with ebs_opts.ThrottleFirst(moto.url, first=3) as proxy:
        config = instance_config(stack, custom_endpoint_ec2=proxy.url, max_retries=3)
        assert InstanceBuilder(config, make_env(RecUi())).run(Hooks("true")) is not None
        assert [(r.action, r.status) for r in proxy.requests[:4]] == [
            (first.action, 503), (first.action, 503), (first.action, 503), (first.action, 200)]


@pytest.mark.effect("builder/amazon-instance", "aws_polling")
def test_aws_polling_bounds_the_waits(stack: Stack, moto: MotoServer) -> None:
    """The instance stays pending for a minute: 3 attempts 1 s apart give up; pending for 3 s,
    4 attempts 2 s apart wait it out."""
    with AwsProxy(moto.url, delays={"instance_pending": 60}) as proxy:
        config = instance_config(stack, custom_endpoint_ec2=proxy.url,
                               aws_polling={"delay_seconds": 1, "max_attempts": 3})
        with pytest.raises(BuildError, match=r"gave up waiting for instance .*\(3 attempts, 1s apart"):
            InstanceBuilder(config, make_env(RecUi())).run(Hooks("true"))
    with AwsProxy(moto.url, delays={"instance_pending": 3}) as proxy:
        config = instance_config(stack, custom_endpoint_ec2=proxy.url,
                               aws_polling={"delay_seconds": 2, "max_attempts": 4})
        assert InstanceBuilder(config, make_env(RecUi())).run(Hooks("true")) is not None


@pytest.mark.effect("builder/amazon-instance", "insecure_skip_tls_verify")
def test_insecure_skip_tls_verify(stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.tlsfront import TlsFront

    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    with AwsProxy(moto.url) as proxy, TlsFront(proxy.url) as front:
        with pytest.raises(BuildError, match="certificate verify failed"):
            InstanceBuilder(instance_config(stack, custom_endpoint_ec2=front.url),
                             make_env(RecUi())).run(Hooks("true"))
        assert proxy.requests == []
        config = instance_config(stack, custom_endpoint_ec2=front.url, insecure_skip_tls_verify=True)
        assert InstanceBuilder(config, make_env(RecUi())).run(Hooks("true")) is not None
        assert front.handshakes >= 1
        ebs_opts.one(proxy, "RunInstances")


@pytest.mark.effect("builder/amazon-instance", "ssh_bastion_interactive")
def test_bastion_interactive_asks_on_the_terminal(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    """`amibake build` of an amazon-instance template with a pseudo-terminal as standard input: the
    bastion's keyboard-interactive question is asked there and the typed answer, not echoed, goes to
    the bastion (test_ebs_ssh_options.py's amazon-ebs test, with this builder)."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    user = stack.sshd.user
    builder: dict[str, Any] = {
        **CLI_BUILDER, "region": "us-east-1", "source_ami": SOURCE_AMI,
        "instance_type": "t2.micro", "ssh_username": user, "ssh_host": "127.0.0.1",
        "ssh_port": stack.sshd.port, "ssh_timeout": "60s",
        "ssh_bastion_host": "127.0.0.1", "ssh_bastion_username": user,
        "ssh_bastion_password": "not-the-code", "ssh_bastion_interactive": True,
    }
    questions = (("Verification code: ", "424242"),)
    with ssh_opts.SshServerEmulation(user=user, workdir=tmp_path, questions=questions, forward=True) as emu:
        builder["ssh_bastion_port"] = emu.port
        path = tmp_path / "template.json"
        path.write_text(json.dumps({"builders": [builder], "provisioners": [
            {"type": "shell", "inline": ["echo via-interactive-bastion"]}]}))
        env = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(tmp_path / "state")}
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "amibake", "build", str(path)], stdin=slave,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
            os.close(slave)
            seen = b""
            deadline = time.monotonic() + 90
            while b"Verification code: " not in seen:
                assert proc.poll() is None and time.monotonic() < deadline, seen
                if select.select([master], [], [], 0.5)[0]:
                    seen += os.read(master, 4096)
            os.write(master, b"424242\n")
            out, _ = proc.communicate(timeout=120)
            while select.select([master], [], [], 0)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
        finally:
            os.close(master)
        text = out.decode("utf-8", "replace")
        assert proc.returncode == 0, text
        assert "via-interactive-bastion" in text and CLI_ARTIFACT in text
        assert b"424242" not in seen
        assert ("keyboard-interactive", user, True) in emu.events
        assert ("direct-tcpip", "127.0.0.1", stack.sshd.port) in emu.events


# ---- the AMI options, after RegisterImage -------------------------------------------------------


@pytest.mark.effect(
    "builder/amazon-instance", "tag", "ami_regions", "ami_users", "ami_groups", "ami_org_arns", "ami_ou_arns",
    "ami_product_codes", "imds_support", "deprecate_at", "deregistration_protection",
    "snapshot_copy_duration_minutes", "encrypt_boot", "kms_key_id", "region_kms_key_ids",
    "launch_block_device_mappings",
)
def test_ami_options_after_registration(stack: Stack, moto: MotoServer) -> None:
    emulate = {k: EMULATED[k] for k in ("EnableImageDeprecation", "EnableImageDeregistrationProtection")}
    with AwsProxy(moto.url, emulate=emulate) as proxy:
        config = instance_config(
            stack, custom_endpoint_ec2=proxy.url, tag=[{"key": "BlockTag", "value": "ami"}],
            ami_regions=["us-west-2"], ami_users=["123456789012"], ami_groups=["all"],
            ami_org_arns=["arn:aws:organizations::123456789012:organization/o-abc"],
            ami_ou_arns=["arn:aws:organizations::123456789012:ou/o-abc/ou-1"], ami_product_codes=["pc123"],
            imds_support="v2.0", deprecate_at="2031-01-02T03:04:05Z",
            deregistration_protection={"enabled": True, "with_cooldown": True},
            snapshot_copy_duration_minutes=15, encrypt_boot=True, kms_key_id="alias/build",
            region_kms_key_ids={"us-east-1": "alias/build", "us-west-2": "alias/west"},
            launch_block_device_mappings=[{"device_name": "/dev/sdg", "volume_size": 1,
                                           "delete_on_termination": True}],
        )
        artifact = InstanceBuilder(config, make_env(RecUi())).run(Hooks("true"))
        assert artifact is not None and set(artifact.amis) == {"us-east-1", "us-west-2"}
        run = ebs_opts.one(proxy, "RunInstances").params
        assert run["BlockDeviceMapping.1.DeviceName"] == "/dev/sdg"
        assert run["BlockDeviceMapping.1.Ebs.VolumeSize"] == "1"
        # encrypt_boot: registered under a temporary name, copied encrypted into every region
        register = ebs_opts.one(proxy, "RegisterImage").params
        assert register["Name"] != config.ami_name and register["ImageLocation"].startswith(config.s3_bucket)
        copies = {r.region: r.params for r in proxy.sent("CopyImage")}
        assert set(copies) == {"us-east-1", "us-west-2"}
        assert all(p["Encrypted"] == "true" and p["Name"] == config.ami_name for p in copies.values())
        assert copies["us-east-1"]["KmsKeyId"] == "alias/build"
        assert copies["us-west-2"]["KmsKeyId"] == "alias/west"
        assert all(p["SnapshotCopyCompletionDurationMinutes"] == "15" for p in copies.values())
        assert ebs_opts.one(proxy, "DeregisterImage").params["ImageId"] not in artifact.amis.values()
        modified = [r.params for r in proxy.sent("ModifyImageAttribute")]
        perms = {v for p in modified for k, v in p.items() if "LaunchPermission.Add" in k}
        assert perms == {"123456789012", "all", "arn:aws:organizations::123456789012:organization/o-abc",
                         "arn:aws:organizations::123456789012:ou/o-abc/ou-1"}
        assert any(p.get("ProductCode.1") == "pc123" for p in modified)
        assert any(p.get("ImdsSupport.Value") == "v2.0" for p in modified)
        deprecations = proxy.sent("EnableImageDeprecation")
        assert {r.region for r in deprecations} == {"us-east-1", "us-west-2"}
        assert all(r.params["DeprecateAt"].startswith("2031-01-02T03:04:05") for r in deprecations)
        protect = proxy.sent("EnableImageDeregistrationProtection")
        assert sorted(r.region for r in protect) == ["us-east-1", "us-west-2"]
        assert all(r.params["WithCooldown"] == "true" for r in protect)
    for region, ami in artifact.amis.items():
        [image] = ec2(stack, region).describe_images(ImageIds=[ami])["Images"]
        assert {t["Key"]: t["Value"] for t in image["Tags"]}["BlockTag"] == "ami"


@pytest.mark.effect("builder/amazon-instance", "skip_region_validation")
def test_regions_are_validated_unless_skipped(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_regions_are_validated_unless_skipped(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "skip_save_build_region")
def test_skip_save_build_region(stack: Stack, moto: MotoServer) -> None:
    ebs_opts.test_skip_save_build_region(stack, moto)


@pytest.mark.effect("builder/amazon-instance", "force_deregister", "force_delete_snapshot")
def test_force_deregister_replaces_an_ami_of_the_same_name(stack: Stack, moto: MotoServer) -> None:
    c = ec2(stack)
    name = f"instance-stale-{uuid.uuid4().hex[:6]}"
    iid = c.run_instances(ImageId=SOURCE_AMI, InstanceType="t2.micro", MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"]
    stale = c.create_image(InstanceId=iid, Name=name)["ImageId"]
    stale_snaps = [b["Ebs"]["SnapshotId"] for b in c.describe_images(ImageIds=[stale])["Images"][0][
        "BlockDeviceMappings"] if "Ebs" in b]
    c.terminate_instances(InstanceIds=[iid])
    with pytest.raises(BuildError, match="is used by an existing AMI"):
        InstanceBuilder(instance_config(stack, ami_name=name), make_env(RecUi())).run(Hooks("true"))
    config = instance_config(stack, ami_name=name, force_deregister=True, force_delete_snapshot=True)
    artifact = InstanceBuilder(config, make_env(RecUi())).run(Hooks("true"))
    assert artifact is not None
    assert c.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"][0]["ImageId"] != stale
    left = {s["SnapshotId"] for s in c.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert stale_snaps and not left & set(stale_snaps)


@pytest.mark.effect("builder/amazon-instance", "communicator")
def test_communicator_none_cannot_bundle(stack: Stack, moto: MotoServer) -> None:
    """Packer's amazon-instance uploads the X509 files over the communicator: with "none" the build
    fails there (no key pair, no SSH wait), and leaves nothing."""
    from tests.stack.test_reliability import assert_nothing_left, inventory

    class Records(Hooks):
        def provision(self, comm: Any, build_data: Any) -> None:
            self.data = dict(build_data)

    before = inventory(moto)
    with AwsProxy(moto.url) as proxy:
        ui = RecUi()
        config = instance_config(stack, custom_endpoint_ec2=proxy.url, communicator="none",
                                 ssh_host="127.0.0.1", ssh_port=1)
        hooks = Records("true")
        with pytest.raises(BuildError, match="Error uploading X509 cert"):
            InstanceBuilder(config, make_env(ui)).run(hooks)
        assert hooks.data["ConnType"] == "none"
        assert not proxy.sent("CreateKeyPair") and not proxy.sent("ImportKeyPair")
        assert "==> Waiting for SSH to become available..." not in ui.lines
    assert_nothing_left(moto, before)
