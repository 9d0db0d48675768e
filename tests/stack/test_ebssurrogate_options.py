"""amazon-ebssurrogate options observed where they take effect.

The options amazon-ebssurrogate shares with amazon-ebs are carried out by the same steps. The effect
tests of test_ebsvolume_options.py (amazon-ebs's tests on another builder, and their own) run here
again on an amazon-ebssurrogate build: ``make_config`` / ``volume_config`` and the builder classes of
those modules are swapped for the surrogate config (the same options, with the launch volume that
becomes the AMI's root) and :class:`EbsSurrogateBuilder`, so each assertion observes a surrogate
build. The AMI options have tests of their own in test_ebssurrogate.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

import tests.stack.test_ebs_options as ebs_opts
import tests.stack.test_ebs_ssh_options as ssh_opts
import tests.stack.test_ebsvolume_options as vol_opts
from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.surrogate import EbsSurrogateBuilder
from tests.stack.test_ebs_builder import SOURCE_AMI
from tests.stack.test_ebs_ssh_options import agent, certd, jump  # noqa: F401  (fixtures the reused tests take)
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack

#: the launch volume that becomes the AMI's root device
SOURCE = {"device_name": "/dev/xvdf", "volume_size": 1, "delete_on_termination": True}
ROOT = {"source_device_name": "/dev/xvdf", "device_name": "/dev/xvda", "volume_size": 1}


def surrogate_config(stack: Stack, **over: Any) -> EbsSurrogateConfig:
    """amazon-ebs's test config (tests/stack/test_ebs_builder.py ``make_config``) as an
    amazon-ebssurrogate config: the shared options as given, the launch volume of the AMI's root added."""
    base: dict[str, Any] = dict(
        region="us-east-1", access_key="testing", secret_key="testing", custom_endpoint_ec2=stack.moto.url,
        skip_region_validation=True, source_ami=SOURCE_AMI, instance_type="t2.micro",
        ssh_username=stack.sshd.user, ssh_host="127.0.0.1", ssh_port=stack.sshd.port, ssh_timeout="60s",
        ami_name=f"amibake-test-{uuid.uuid4().hex[:8]}", ami_description="amibake test build",
        tags={"Name": "amibake-test", "Project": "amibake"}, run_tags={"Name": "amibake-builder"},
        aws_polling={"delay_seconds": 1, "max_attempts": 30}, ami_virtualization_type="hvm",
        ami_root_device=ROOT,
    )
    base.update(over)
    fields = {info.alias or name for name, info in EbsSurrogateConfig.model_fields.items()}
    data = {k: v for k, v in base.items() if k in fields}
    data["launch_block_device_mappings"] = [SOURCE, *base.get("launch_block_device_mappings", [])]
    return EbsSurrogateConfig.model_validate(data)


@pytest.fixture(autouse=True)
def _as_surrogate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()
    for module in (ebs_opts, ssh_opts):
        monkeypatch.setattr(module, "make_config", surrogate_config)
        monkeypatch.setattr(module, "EbsBuilder", EbsSurrogateBuilder)
    monkeypatch.setattr(vol_opts, "volume_config", surrogate_config)
    monkeypatch.setattr(vol_opts, "EbsVolumeBuilder", EbsSurrogateBuilder)
    monkeypatch.setattr(vol_opts, "CLI_BUILDER", {
        "type": "amazon-ebssurrogate", "ami_name": "interactive-{{timestamp}}",
        "ami_virtualization_type": "hvm", "launch_block_device_mappings": [SOURCE], "ami_root_device": ROOT})
    monkeypatch.setattr(vol_opts, "CLI_ARTIFACT", "AMIs were created:")


# ---- the tests of test_ebsvolume_options.py, on an amazon-ebssurrogate build -------------------


@pytest.mark.effect("builder/amazon-ebssurrogate", "run_tags")
def test_default_instance_name(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_default_instance_name(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "pause_before_connecting", "ssh_clear_authorized_keys")
def test_pause_and_clear_authorized_keys(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_pause_and_clear_authorized_keys(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "assume_role", "access_key", "secret_key", "region")
def test_assume_role_signs_ec2_with_the_role(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol_opts.test_assume_role_signs_ec2_with_the_role(stack, moto, monkeypatch)


@pytest.mark.effect("builder/amazon-ebssurrogate", "shared_credentials_file", "profile", "mfa_code")
def test_credentials_file_profile_and_mfa(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    vol_opts.test_credentials_file_profile_and_mfa(stack, moto, monkeypatch, tmp_path)


@pytest.mark.effect("builder/amazon-ebssurrogate", "skip_credential_validation")
def test_credentials_resolved_before_anything_is_created(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol_opts.test_credentials_resolved_before_anything_is_created(stack, moto, monkeypatch)


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "spot_price", "spot_instance_types", "spot_allocation_strategy",
    "spot_tags", "spot_tag", "fleet_tags", "fleet_tag",
)
def test_spot_options_reach_the_launch_template_and_fleet(
    stack: Stack, moto: MotoServer
) -> None:
    vol_opts.test_spot_options_reach_the_launch_template_and_fleet(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "iam_instance_profile", "skip_profile_validation")
def test_instance_profile_is_checked_unless_skipped(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_instance_profile_is_checked_unless_skipped(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_local_tunnels", "ssh_remote_tunnels")
def test_ssh_tunnels(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_ssh_tunnels(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_disable_agent_forwarding")
def test_agent_forwarding_unless_disabled(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    vol_opts.test_agent_forwarding_unless_disabled(stack, moto, monkeypatch, tmp_path)


@pytest.mark.effect("builder/amazon-ebssurrogate", "skip_metadata_api_check")
def test_instance_metadata_credentials_skipped(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol_opts.test_instance_metadata_credentials_skipped(stack, moto, monkeypatch)


@pytest.mark.effect("builder/amazon-ebssurrogate", "communicator")
def test_communicator_none_makes_no_key_and_no_connection(
    stack: Stack, moto: MotoServer
) -> None:
    vol_opts.test_communicator_none_makes_no_key_and_no_connection(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_pty", "ssh_ciphers", "ssh_key_exchange_algorithms")
def test_ssh_pty_ciphers_and_kex(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_ssh_pty_ciphers_and_kex(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_timeout", "ssh_wait_timeout")
def test_ssh_timeout_bounds_the_wait(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_ssh_timeout_bounds_the_wait(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_private_key_file", "ssh_keypair_name")
def test_existing_key_pair_and_private_key_file(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    vol_opts.test_existing_key_pair_and_private_key_file(stack, moto, tmp_path)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_interface")
def test_ssh_interface_picks_the_address(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_ssh_interface_picks_the_address(stack, moto)


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "ssh_bastion_host", "ssh_bastion_port", "ssh_bastion_username",
    "ssh_bastion_private_key_file",
)
def test_bastion_with_a_key_forwards_to_the_instance(
    stack: Stack, moto: MotoServer, jump: Any, tmp_path: Path  # noqa: F811
) -> None:
    vol_opts.test_bastion_with_a_key_forwards_to_the_instance(stack, moto, jump, tmp_path)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_certificate_file", "ssh_bastion_certificate_file")
def test_certificates_for_instance_and_bastion(
    stack: Stack, moto: MotoServer, certd: Any, tmp_path: Path  # noqa: F811
) -> None:
    vol_opts.test_certificates_for_instance_and_bastion(stack, moto, certd, tmp_path)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_agent_auth", "ssh_bastion_agent_auth")
def test_agent_authenticates_to_instance_and_bastion(
    stack: Stack, moto: MotoServer, jump: Any, agent: Any, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    vol_opts.test_agent_authenticates_to_instance_and_bastion(stack, moto, jump, agent, monkeypatch)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_file_transfer_method")
def test_file_transfer_method(
    stack: Stack, moto: MotoServer, jump: Any  # noqa: F811
) -> None:
    vol_opts.test_file_transfer_method(stack, moto, jump)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_handshake_attempts")
def test_handshake_attempts_bound_authentication_failures(
    stack: Stack, moto: MotoServer
) -> None:
    vol_opts.test_handshake_attempts_bound_authentication_failures(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_keep_alive_interval")
def test_keep_alive_interval(
    stack: Stack, moto: MotoServer, jump: Any  # noqa: F811
) -> None:
    vol_opts.test_keep_alive_interval(stack, moto, jump)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_read_write_timeout")
def test_read_write_timeout_drops_a_silent_connection(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_read_write_timeout_drops_a_silent_connection(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_password")
def test_password_logs_in_without_a_key_pair(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    vol_opts.test_password_logs_in_without_a_key_pair(stack, moto, tmp_path)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_bastion_password")
def test_bastion_password(stack: Stack, moto: MotoServer, tmp_path: Path) -> None:
    vol_opts.test_bastion_password(stack, moto, tmp_path)


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "placement", "tenancy", "capacity_reservation_preference",
    "capacity_reservation_id", "capacity_reservation_group_arn", "enable_nitro_enclave",
    "enable_unlimited_credits", "run_tag", "metadata_options", "ebs_optimized", "shutdown_behavior",
    "temporary_key_pair_bits", "instance_type", "user_data", "license_specifications", "source_ami",
    "custom_endpoint_ec2", "ssh_host", "ssh_port", "ssh_username",
    "temporary_iam_instance_profile_policy_document", "temporary_security_group_source_cidrs",
)
def test_launch_options_reach_run_instances(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_launch_options_reach_run_instances(stack, moto)


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "enable_t2_unlimited", "user_data_file", "source_ami_filter",
    "availability_zone",
)
def test_t2_unlimited_user_data_file_source_filter_and_zone(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    vol_opts.test_t2_unlimited_user_data_file_source_filter_and_zone(stack, moto, tmp_path)


@pytest.mark.effect(
    "builder/amazon-ebssurrogate", "security_group_ids", "security_group_id", "subnet_id", "vpc_id",
    "temporary_key_pair_name", "temporary_key_pair_type", "token", "associate_public_ip_address",
)
def test_network_ids_and_key_pair(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_network_ids_and_key_pair(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "vpc_filter", "subnet_filter", "security_group_filter")
def test_vpc_subnet_and_security_group_filters(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_vpc_subnet_and_security_group_filters(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "disable_stop_instance")
def test_disable_stop_instance_leaves_the_stop_to_the_template(
    stack: Stack, moto: MotoServer
) -> None:
    vol_opts.test_disable_stop_instance_leaves_the_stop_to_the_template(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "max_retries")
def test_max_retries_bounds_the_attempts_of_a_throttled_call(
    stack: Stack, moto: MotoServer
) -> None:
    vol_opts.test_max_retries_bounds_the_attempts_of_a_throttled_call(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "aws_polling")
def test_aws_polling_bounds_the_waits(stack: Stack, moto: MotoServer) -> None:
    vol_opts.test_aws_polling_bounds_the_waits(stack, moto)


@pytest.mark.effect("builder/amazon-ebssurrogate", "insecure_skip_tls_verify")
def test_insecure_skip_tls_verify(
    stack: Stack, moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol_opts.test_insecure_skip_tls_verify(stack, moto, monkeypatch)


@pytest.mark.effect("builder/amazon-ebssurrogate", "ssh_bastion_interactive")
def test_bastion_interactive_asks_on_the_terminal(
    stack: Stack, moto: MotoServer, tmp_path: Path
) -> None:
    vol_opts.test_bastion_interactive_asks_on_the_terminal(stack, moto, tmp_path)
