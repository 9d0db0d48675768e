"""Behaviour pinned for survivors of the mutation sample of the amazon plugin's modules that no earlier
sample measured (every 40th mutant, 3 December 2026; docs/mutation.md)."""

from __future__ import annotations

import json
import struct
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from amibake.aws.errors import AwsError
from amibake.config.base import CheckContext, decode
from amibake.datasources import DatasourceError
from amibake.errors import BuildError
from amibake.plugins.amazon import prune
from amibake.plugins.amazon.datasource_configs import AmiDatasourceConfig
from amibake.plugins.amazon.datasources import pick_image
from amibake.plugins.amazon.ec2_ebsdirect import BlockRejected
from amibake.plugins.amazon.facts import clean_resource_name
from amibake.plugins.amazon.local import disk
from amibake.plugins.amazon.local.builder import register_params
from amibake.plugins.amazon.local.config import LocalConfig
from amibake.plugins.amazon.local.upload import MIB, UploadProgress
from amibake.plugins.amazon.pollschedule import calls_until_seen
from amibake.plugins.amazon.ssm import step as ssm_step
from amibake.plugins.amazon.ssm.channel import DataChannel
from amibake.plugins.amazon.ssm.message import OUTPUT_STREAM, ClientMessage, PayloadType, ProtocolError


def test_clean_resource_name_keeps_every_ascii_letter_and_digit_up_to_the_range_ends() -> None:
    # templateCleanAMIName keeps [A-Za-z0-9] whole: the ends of each range (0 9 A Z a z) included
    edges = "09AZaz"
    assert clean_resource_name(edges) == edges
    # the bytes just outside each range are replaced
    assert clean_resource_name("/:@[`{") == "/-@[--"


def test_calls_until_seen_counts_the_poll_that_sees_the_transition() -> None:
    times = [0.0, 5.0, 10.0, 20.0]
    assert calls_until_seen(times, 0.0) == 1
    assert calls_until_seen(times, 7.0) == 3
    assert calls_until_seen(times, 20.0) == 4
    assert calls_until_seen(times, 21.0) is None


def test_pick_image_more_than_one_result_is_packers_exact_text() -> None:
    cfg = AmiDatasourceConfig.model_validate({"owners": ["self"]})
    two: list[dict[str, Any]] = [{"ImageId": "a", "CreationDate": "2020-01-01T00:00:00.000Z"},
                                 {"ImageId": "b", "CreationDate": "2021-01-01T00:00:00.000Z"}]
    with pytest.raises(DatasourceError) as err:
        pick_image(two, cfg, {})
    assert str(err.value) == ("Your query returned more than one result. Please try a more specific search, "
                              "or set most_recent to true.")


def test_a_rejected_block_names_the_operation_that_failed() -> None:
    exc = BlockRejected("ValidationException", "bad checksum", 400, "INVALID_CHECKSUM")
    assert exc.operation == "PutSnapshotBlock"
    assert (exc.code, exc.aws_message, exc.status, exc.reason) == (
        "ValidationException", "bad checksum", 400, "INVALID_CHECKSUM")


class _Ui:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def test_upload_progress_shows_the_start_once_then_each_tenth() -> None:
    ui = _Ui()
    now = [0.0]
    progress = UploadProgress(ui, 10 * MIB, clock=lambda: now[0])
    now[0] = 1.0
    progress(MIB // 2)  # 5 %: the 0 % line, shown once
    progress(MIB // 4)
    assert len(ui.lines) == 1 and "(0%)" in ui.lines[0]
    progress(MIB // 4)  # 10 %
    assert len(ui.lines) == 2 and ui.lines[1].startswith("Uploaded 1.0 of 10.0 MiB (10%)")


def test_gpt_usable_range_and_root_end_are_exact() -> None:
    # UEFI: LBA 0 MBR, 1 header, 2.. the entries; at the end the entries then the backup header at
    # the last LBA, so the last usable LBA is sectors - 2 - (entry sectors); a partition's last LBA is
    # inclusive
    lay = disk.layout(3)
    head, _tail = disk.gpt_structures(lay, disk.Ids.new(), "x86_64")
    first_usable, last_usable = struct.unpack_from("<QQ", head, 512 + 40)
    assert first_usable == 2 + disk.GPT_ENTRY_SECTORS
    assert last_usable == lay.sectors - 2 - disk.GPT_ENTRY_SECTORS
    root_first, root_last = struct.unpack_from("<QQ", head, 1024 + disk.GPT_ENTRY_SIZE + 32)
    assert root_first == lay.root_start // disk.SECTOR
    assert root_last == (lay.root_start + lay.root_size) // disk.SECTOR - 1


def test_ssm_message_refusals_are_the_plugins_texts() -> None:
    msg = ClientMessage(message_type="output_stream_data", header_length=0)
    with pytest.raises(ProtocolError, match=r"^HeaderLength cannot be zero$"):
        msg.validate()
    with pytest.raises(ProtocolError, match=r"is longer than 32 bytes$"):
        ClientMessage(message_type="x" * 33).encode()


def test_prune_reads_an_images_tags_and_public_flag() -> None:
    img = prune._image({"ImageId": "ami-1", "Tags": [{"Key": "k"}, {"Key": "a", "Value": "b"}],
                        "Public": True, "CreationDate": "2024-01-02T03:04:05.000Z"}, "eu-west-1")
    assert img.tags == {"k": "", "a": "b"}
    assert img.public is True
    assert img.created == datetime(2024, 1, 2, 3, 4, 5)
    assert prune._image({"ImageId": "ami-2"}, "eu-west-1").public is False


def test_prune_table_pads_every_column_but_the_last() -> None:
    rows = [("Region", "AMI", "Reason"), ("eu-west-1", "ami-123456", "kept")]
    assert prune._table(rows) == ("Region     AMI         Reason\n"
                                  "eu-west-1  ami-123456  kept")


def test_local_register_image_maps_the_snapshot_as_an_ebs_root_with_sriov() -> None:
    d = disk.DiskInfo(size_bytes=disk.GIB, boot_mode="uefi", architecture="x86_64", root_uuid="u",
                      root_device_name="/dev/xvda", ena_support=False, sriov="simple", data_bytes=0)
    lc = SimpleNamespace(ami_description="", ena_support=None, sriov_support=False, model_fields_set=set(),
                         imds_support="", tpm_support="")
    st = SimpleNamespace(lc=lc, disk=d, uploaded=SimpleNamespace(volume_size=8), snapshot_id="snap-1",
                         render=lambda s: s)
    params = register_params(st, "ami")
    assert params["BlockDeviceMappings"] == [{"DeviceName": "/dev/xvda", "Ebs": {
        "SnapshotId": "snap-1", "VolumeSize": 8, "VolumeType": "gp3", "DeleteOnTermination": True}}]
    assert params["SriovNetSupport"] == "simple"
    assert "EnaSupport" not in params


class _SsmGateway:
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def start_port_session(self, instance_id: str, remote: int, local: int) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise AwsError("StartSession", "TargetNotConnected", "not yet")
        return {"SessionId": "s-1"}

    def terminate_session(self, session_id: str) -> None:
        raise AwsError("TerminateSession", "AccessDenied", "no")


def test_ssm_start_backs_off_one_retry_step_more_each_time() -> None:
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return False

    ctx = SimpleNamespace(cancel=SimpleNamespace(wait=wait))
    got = ssm_step._start(_SsmGateway(3), "i-1", 22, 0, 3600.0, ctx)
    assert got == {"SessionId": "s-1"}
    assert waits == [ssm_step.RETRY_STEP, 2 * ssm_step.RETRY_STEP, 3 * ssm_step.RETRY_STEP]


def test_ssm_end_reports_a_failed_terminate_as_packer_does() -> None:
    ui = SimpleNamespace(errors=[])
    ui.error = ui.errors.append
    closed: list[bool] = []
    ssm_step._end(SimpleNamespace(ui=ui), _SsmGateway(0), SimpleNamespace(close=lambda: closed.append(True)),
                  "s-1")
    assert closed == [True]
    assert ui.errors == ['Error terminating SSM Session "s-1". Please terminate the session manually: '
                         "AccessDenied: no"]


def test_local_config_reports_a_key_that_is_no_arn_at_its_own_key(tmp_path: Path) -> None:
    ctx = CheckContext(template_dir=tmp_path, key_path="source.amibake-local.x")
    options = {"region": "us-east-1", "ami_name": "local-a", "snapshot_encrypted": True,
               "snapshot_kms_key_arn": "alias/k"}
    _, problems, _ = decode(LocalConfig, options, ctx)
    assert [str(p) for p in problems] == [
        "source.amibake-local.x.snapshot_kms_key_arn: snapshot_kms_key_arn must be a KMS key ARN "
        "(arn:aws:kms:...)"]


def test_ssm_handshake_answers_an_unknown_action_as_unsupported() -> None:
    request = {"AgentVersion": "3.0.161.0", "RequestedClientActions": [
        {"ActionType": "SessionType", "ActionParameters": {"SessionType": "Port", "Properties": {}}},
        {"ActionType": "Teleport", "ActionParameters": {}}]}
    got = DataChannel().receive(ClientMessage(
        message_type=OUTPUT_STREAM, payload=json.dumps(request).encode(),
        payload_type=PayloadType.HANDSHAKE_REQUEST).encode())
    body = json.loads(ClientMessage.decode(got.replies[1]).payload)
    assert body["ProcessedClientActions"][1] == {
        "ActionType": "Teleport", "ActionStatus": 0, "ActionResult": 3,
        "Error": "Unsupported action Teleport"}
    assert body["Errors"] == ["Unsupported action Teleport"]


def test_a_failing_disk_tool_fails_the_build_with_its_name() -> None:
    with pytest.raises(BuildError, match=r"^sfdisk failed: "):
        disk._run([sys.executable, "-c", "raise SystemExit(3)"], "sfdisk", cancel=None)
