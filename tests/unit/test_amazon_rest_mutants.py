"""Behaviour pinned for survivors of the mutation sample of the amazon plugin's modules that no earlier
sample measured (every 40th mutant, 3 December 2026; docs/mutation.md)."""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import tarfile
import threading
from collections.abc import Sequence
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
from amibake.plugins.amazon.local import disk, rootfs
from amibake.plugins.amazon.local.builder import register_params
from amibake.plugins.amazon.local.config import LocalConfig
from amibake.plugins.amazon.local.config_image import LocalImageOptions
from amibake.plugins.amazon.local.upload import MIB, UploadProgress, UploadSpec, upload_disk
from amibake.plugins.amazon.pollschedule import calls_until_seen
from amibake.plugins.amazon.ssm import step as ssm_step
from amibake.plugins.amazon.ssm.channel import DataChannel
from amibake.plugins.amazon.ssm.message import OUTPUT_STREAM, ClientMessage, PayloadType, ProtocolError
from amibake.plugins.amazon.ssm.tunnel import SessionInfo, Tunnel, bind_local
from amibake.steps.context import StepContext
from tests.ssm_emulation import SsmEmulator
from tests.stack.local_image_fixtures import RecordingUi
from tests.unit.test_describe_batch import poll, two_waits
from tests.unit.test_local_image_bios import _require as require_disk_tools
from tests.unit.test_local_image_bios import _stand_in_tree as stand_in_tree
from tests.unit.test_local_upload import BS as UPLOAD_BS
from tests.unit.test_local_upload import FakeEbs
from tests.unit.test_ssm_step import ssm  # noqa: F401  (its fixture: the SSM emulation)
from tests.unit.test_ssm_step import state as ssm_state
from tests.unit.test_ssm_tunnel import BASIC, emulator, exchange  # noqa: F401  (emulator: its fixture)


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


def test_a_waits_own_call_after_a_failed_batch_dates_the_observation_another_wait_takes() -> None:
    clock, ec2, batch, a, b = two_waits()
    b.next_due(clock.now + 1.0)
    clock.now += 1.0

    def slow_failing_batch(ids: Sequence[str]) -> dict[str, str]:
        clock.now += 0.3  # the batched call took 0.3 s, then failed: a's own call is made after it
        raise AwsError("describe_instances", "InternalError", "boom")

    assert batch.poll(a, ec2.single("i-a"), slow_failing_batch).at == 101.3
    # a second wait on the same id takes that observation, dated when its call was made
    again = batch.join("i-a", 0.5)
    got = poll(batch, again, ec2)
    assert (got.shared, got.at, got.value) == (True, 101.3, "pending")


def test_a_short_last_block_is_uploaded_padded_with_zeros(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    with path.open("wb") as f:  # two blocks and 100 bytes, data only in the last 100
        f.truncate(2 * UPLOAD_BS + 100)
        f.seek(2 * UPLOAD_BS + 10)
        f.write(b"tail")
    ebs = FakeEbs()
    result = upload_disk(ebs, path, UploadSpec(), ui=_Ui(), cancel=threading.Event(),
                         on_started=lambda s: None)
    assert sorted(ebs.blocks) == [2] and result.changed_blocks == 1
    assert ebs.blocks[2] == bytes(10) + b"tail" + bytes(UPLOAD_BS - 14)


def test_extract_as_another_user_is_refused_with_the_reason(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootfs, "running_as_root", lambda: False)
    with pytest.raises(BuildError) as err:
        rootfs.extract(tmp_path / "r.tar", tmp_path / "t", ui=RecordingUi(), cancel=None)
    assert str(err.value) == ("amibake-local makes the root filesystem as root (its files' owners, the "
                              "chroot mounts); run the build as root")


def test_a_rootfs_tarball_without_installed_packages_is_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootfs, "running_as_root", lambda: True)  # the tarball has no owners to keep
    made = tmp_path / "made"
    (made / "var/lib/dpkg").mkdir(parents=True)
    (made / "var/lib/dpkg/status").write_text("")  # a dpkg database that lists nothing
    (made / "etc").mkdir()
    tarball = tmp_path / "empty.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(made, arcname=".")
    opts = LocalImageOptions.model_validate({"rootfs_tarball": str(tarball)})
    with pytest.raises(BuildError) as err:
        rootfs.bootstrap(opts, tmp_path / "tree", cache_dir=tmp_path / "cache", ui=RecordingUi(), cancel=None)
    assert str(err.value) == "the root filesystem from empty.tar has no installed packages (no dpkg database)"


def test_make_disk_says_what_each_partition_gets_and_a_failing_mkfs_ext4_ends_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_disk_tools("mkfs.vfat", "mcopy")
    tree = tmp_path / "tree"
    stand_in_tree(tree)
    bindir = tmp_path / "bin"  # an mkfs.ext4 that fails: the disk stops there, before its slow part
    bindir.mkdir()
    (bindir / "mkfs.ext4").write_text("#!/bin/sh\necho 'no space left' >&2\nexit 1\n")
    (bindir / "mkfs.ext4").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    ui = RecordingUi()
    opts = LocalImageOptions.model_validate({"boot_mode": "uefi", "volume_size": 1})
    with pytest.raises(BuildError, match=r"^mkfs\.ext4 failed: "):
        disk.make_disk(tree, tmp_path / "disk.raw", opts=opts, ui=ui, cancel=None)
    root_mib = disk.layout(1).root_size // disk.MIB
    assert "    EFI system partition: systemd-boot, the kernel and initrd" in ui.lines
    root_line = rf"    root file system: ext4 UUID [0-9a-f-]{{36}} \({root_mib} MiB\), mkfs\.ext4 -d"
    assert [line for line in ui.lines if re.fullmatch(root_line, line)] != []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "tree"]  # no disk, no work files


def test_a_tunnel_that_fails_in_setup_is_an_ssm_error(ssm: SsmEmulator) -> None:  # noqa: F811
    ssm.kms = True  # the agent asks for KMS encryption, which amibake refuses in the handshake
    st = ssm_state()
    ctx = StepContext(ui=st.ui)
    try:
        with pytest.raises(BuildError) as err:
            ssm_step.open_tunnel(st, ctx)
    finally:
        for undo in reversed(ctx.undo_stack):
            undo.fn()
    assert str(err.value).startswith("ssm error: ") and "handshake" in str(err.value)


@pytest.mark.parametrize("emulator", [BASIC], indirect=True)
def test_a_resume_that_fails_once_then_answers_without_a_stream_url_reconnects(
        emulator: SsmEmulator) -> None:  # noqa: F811
    status, answer = emulator.api("StartSession", {"Target": "i-1",
                                                   "DocumentName": "AWS-StartPortForwardingSession",
                                                   "Parameters": {"portNumber": ["22"]}})
    assert status == 200
    attempts: list[str] = []

    def resume(sid: str) -> SessionInfo | None:
        attempts.append(sid)
        if len(attempts) == 1:
            raise OSError("connection reset")  # the ResumeSession call itself failed: tried again
        _, a = emulator.api("ResumeSession", {"SessionId": sid})
        return SessionInfo(sid, a["TokenValue"], "")  # no StreamUrl: the session's own is used

    first = SessionInfo(answer["SessionId"], answer["TokenValue"], answer["StreamUrl"])
    tunnel = Tunnel(bind_local(0), first, resume=resume)
    tunnel.start(timeout=20)
    try:
        emulator.drop_after(5)
        payload = b"y" * 20000
        assert exchange(tunnel.port, payload) == payload
        assert len(attempts) == 2 and tunnel.resumes == 1 and emulator.drops == 1
    finally:
        tunnel.close()


def test_a_metadata_service_that_does_not_answer_is_named_with_the_reason() -> None:
    """The chroot builders' instance metadata client: a refused connection (nothing listens on the
    endpoint) ends the lookup with the endpoint and the socket's own reason, not urllib's wrapper."""
    from amibake.plugins.amazon.imds import MetadataClient, MetadataError
    from tests.stackkit import free_port

    base = f"http://127.0.0.1:{free_port()}/"
    client = MetadataClient({"AWS_EC2_METADATA_SERVICE_ENDPOINT": base}, attempts=2)
    with pytest.raises(MetadataError) as err:
        client.get("latest/meta-data/instance-id")
    assert str(err.value) == \
        f"the instance metadata service at {base} did not answer: [Errno 111] Connection refused"


def test_the_amibake_local_step_plan() -> None:
    """amibake-local's steps by name, in order (the names ``-debug`` and ``-on-error=ask`` print): the
    disk made and boot-tested on this host, then Packer's AMI steps."""
    from amibake.plugins.amazon.local.builder import LocalBuilder

    config = LocalConfig.model_validate({"region": "us-east-1", "ami_name": "local-a"})
    builder = LocalBuilder(config, SimpleNamespace())  # type: ignore[arg-type]
    assert [s.name for s in builder.steps(None)] == [  # type: ignore[arg-type]
        "StepPreValidate", "StepResolveFingerprint", "StepWorkDir", "StepBootstrapRootfs",
        "StepProvisionTree", "StepMakeDisk", "StepBootTest", "StepUploadSnapshot", "StepDeregisterAMI",
        "StepRegisterAMI", "StepAMIRegionCopy", "StepModifyAMIAttributes", "StepMarkFinished",
    ]


def test_a_block_upload_with_no_answer_is_retried() -> None:
    """PutSnapshotBlock that gets no answer (a dropped connection, botocore's or the socket's error)
    is BlockRejected with status 0 and no code, which the upload sends again; a 4xx is not."""
    import botocore.exceptions

    from amibake.plugins.amazon.ec2_ebsdirect import EbsDirectCalls
    from amibake.plugins.amazon.local.upload import retried

    class Client:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def put_snapshot_block(self, **params: Any) -> None:
            raise self.exc

    class Calls(EbsDirectCalls):
        def __init__(self, exc: Exception) -> None:
            self.client = Client(exc)

        def _client(self, service: str, region: str | None = None) -> Any:
            assert service == "ebs"
            return self.client

    dropped = [botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1/"),
               ConnectionResetError(104, "Connection reset by peer")]
    for exc in dropped:
        with pytest.raises(BlockRejected) as err:
            Calls(exc).put_snapshot_block("snap-1", 0, b"\0" * 512, "c2hh")
        assert (err.value.status, err.value.code, err.value.reason) == (0, "", "")
        assert retried(err.value)
    refused = botocore.exceptions.ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "no"},
         "ResponseMetadata": {"HTTPStatusCode": 403}},
        "PutSnapshotBlock")
    with pytest.raises(BlockRejected) as err:
        Calls(refused).put_snapshot_block("snap-1", 0, b"\0" * 512, "c2hh")
    assert (err.value.status, err.value.code) == (403, "AccessDeniedException") and not retried(err.value)
