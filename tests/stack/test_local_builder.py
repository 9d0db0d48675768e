"""amibake-local's AWS side against the stack, on a synthetic disk: the EBS direct upload through the
emulation (tests/ebsdirect_emulation.py: 512 KiB blocks, checksums and the aggregate verified), in
front of the recording proxy (tests/awsproxy.py) in front of moto; RegisterImage, sharing, tags,
faults, a killed upload and ``amibake cleanup``.

The disk here is a sparse file with random blocks, made by the test in place of the image steps
(``image_steps``): these tests are about the upload and the AMI, not the image, whose own steps and the
end-to-end build of a real Debian image are in tests/stack/test_local_image*.py and
test_local_builder_e2e.py. The disk is downloaded back with ListSnapshotBlocks/GetSnapshotBlock and
compared byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake import fingerprint
from amibake.api import BuildEnv
from amibake.aws.retry import RetryPolicy
from amibake.errors import BuildError
from amibake.fingerprint import Fingerprint
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.local import builder as lb
from amibake.plugins.amazon.local import upload
from amibake.plugins.amazon.local.config import LocalConfig
from amibake.plugins.amazon.local.disk import DiskInfo
from amibake.plugins.amazon.local.reuse import MIRROR_SNAPSHOT
from amibake.reuse import SkipOptions, try_reuse
from amibake.steps.context import StepContext
from tests.awsproxy import AwsProxy
from tests.ebsdirect_emulation import BLOCK_SIZE, EbsDirectEmulation
from tests.stack.test_ebs_builder import Hooks, RecUi, tags
from tests.stack.test_reliability import Build, assert_nothing_left, inventory, run_cleanup
from tests.stackkit import MotoServer, Stack, amibake_exe

pytestmark = pytest.mark.stack

MIB = 1 << 20
#: the synthetic disk: 67 MiB (a snapshot of 1 GiB), data in a few scattered places, the last block partial
DISK_SIZE = 67 * MIB + 4096
DATA_AT = (0, 7 * BLOCK_SIZE + 4000, 100 * BLOCK_SIZE, 40 * MIB, DISK_SIZE - 100)


@pytest.fixture(autouse=True)
def _isolated(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in stack.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()
    yield
    CLIENTS.clear()


def synthetic_disk(path: Path, seed: int = 1) -> bytes:
    """A sparse raw disk with random data at :data:`DATA_AT` (and one all-zero written block); its bytes."""
    import random

    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(DISK_SIZE)
        for off in DATA_AT:
            f.seek(off)
            f.write(rng.randbytes(min(3000, DISK_SIZE - off)))
        f.seek(30 * BLOCK_SIZE)
        f.write(bytes(BLOCK_SIZE))  # written, but all zero: never sent
    return path.read_bytes()


class SyntheticLocal(lb.LocalBuilder):
    """amibake-local with the synthetic disk in place of the image steps (rootfs, provision, disk)."""

    disk_seed = 1
    extra: list[tuple[str, Any]] = []

    def image_steps(self) -> list[tuple[str, Any]]:
        def synthetic(st: lb.LocalState, ctx: StepContext) -> None:
            assert st.image is not None
            synthetic_disk(st.image, self.disk_seed)
            st.disk = DiskInfo(size_bytes=DISK_SIZE, boot_mode="uefi", architecture="x86_64", root_uuid="",
                               root_device_name="/dev/xvda", ena_support=True, sriov="", data_bytes=0)

        return [("StepWorkDir", lb.work_dir), ("StepSyntheticDisk", synthetic), *self.extra]


def make_config(**over: Any) -> LocalConfig:
    raw: dict[str, Any] = {"region": "us-east-1", "ami_name": "local-test",
                           "aws_polling": {"delay_seconds": 1, "max_attempts": 30}}
    raw.update(over)
    return LocalConfig.model_validate(raw)


def env(ui: RecUi, run_id: str = "run-local", **kw: Any) -> BuildEnv:
    return BuildEnv(build_name="local", builder_type="amibake-local", template_dir=Path("."), ui=ui,
                    run_id=run_id, **kw)  # type: ignore[arg-type]


def ebs_client(url: str) -> Any:
    return boto3.client("ebs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def ec2(url: str, region: str = "us-east-1") -> Any:
    return boto3.client("ec2", endpoint_url=url, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def download(url: str, snapshot_id: str, size: int) -> bytes:
    """The snapshot read back with ListSnapshotBlocks/GetSnapshotBlock (zeroes where no block)."""
    c = ebs_client(url)
    out = bytearray(size)
    token: dict[str, str] = {}
    while True:
        page = c.list_snapshot_blocks(SnapshotId=snapshot_id, **token)
        bs = page["BlockSize"]
        assert bs == BLOCK_SIZE
        for b in page["Blocks"]:
            got = c.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"],
                                       BlockToken=b["BlockToken"])
            data = got["BlockData"].read()
            assert len(data) == bs and got["DataLength"] == bs
            assert got["Checksum"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
            start = b["BlockIndex"] * bs
            out[start:start + bs] = data[:max(0, min(bs, size - start))]
        if not page.get("NextToken"):
            return bytes(out)
        token = {"NextToken": page["NextToken"]}


def data_blocks(disk: bytes) -> set[int]:
    blocks = (disk[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE] for i in range(-(-len(disk) // BLOCK_SIZE)))
    return {i for i, block in enumerate(blocks) if block.count(0) != len(block)}


@pytest.fixture
def front(moto: MotoServer) -> Iterator[tuple[AwsProxy, EbsDirectEmulation]]:
    """amibake -> EBS direct emulation -> recording proxy -> moto."""
    with AwsProxy(moto.url) as proxy, EbsDirectEmulation(proxy.url) as emu:
        yield proxy, emu


@pytest.mark.effect("builder/amibake-local", "region", "access_key", "secret_key", "custom_endpoint_ec2",
                    "ami_name", "ami_description", "tags", "tag", "snapshot_tags", "snapshot_tag",
                    "snapshot_description", "snapshot_encrypted", "snapshot_kms_key_arn", "snapshot_timeout",
                    "snapshot_upload_workers", "disk_output", "ena_support", "sriov_support", "imds_support",
                    "tpm_support", "ami_users", "ami_groups", "snapshot_users", "snapshot_groups",
                    "aws_polling")
def test_upload_register_and_read_back(stack: Stack, moto: MotoServer, tmp_path: Path,
                                       front: tuple[AwsProxy, EbsDirectEmulation]) -> None:
    proxy, emu = front
    before = inventory(moto)
    kept = tmp_path / "out" / "disk.raw"
    kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = make_config(
        access_key="AKIDLOCALTEST", secret_key="local-secret", custom_endpoint_ec2=emu.url,
        ami_description="local us-east-1", tags={"T": "t"}, tag=[{"key": "T2", "value": "t2"}],
        snapshot_tags={"S": "s"}, snapshot_tag=[{"key": "S2", "value": "s2"}],
        snapshot_description="disk of us-east-1", snapshot_encrypted=True, snapshot_kms_key_arn=kms,
        snapshot_timeout="30m", snapshot_upload_workers=3, disk_output=str(kept), ena_support=False,
        sriov_support=True, imds_support="v2.0", tpm_support="v2.0", ami_users=["111122223333"],
        ami_groups=["all"], snapshot_users=["444455556666"], snapshot_groups=["all"],
        aws_polling={"delay_seconds": 1, "max_attempts": 5})
    ui = RecUi()

    artifact = SyntheticLocal(config, env(ui)).run(Hooks("true"))

    assert artifact is not None
    ami = artifact.amis["us-east-1"]
    disk = kept.read_bytes()  # disk_output keeps it
    assert len(disk) == DISK_SIZE
    # no instance: no RunInstances (nor any instance call) in what reached AWS
    actions = {r.action for r in proxy.requests}
    assert not {a for a in actions if "Instance" in a}, actions
    assert all(r.access_key == "AKIDLOCALTEST" for r in proxy.requests if r.service in ("ec2", "ebs"))
    # StartSnapshot: 2 GiB, tags, encryption, timeout in minutes, description, a client token
    [start] = emu.sent("StartSnapshot")
    body = start.body or {}
    assert body["VolumeSize"] == 1 and body["Encrypted"] is True and body["KmsKeyArn"] == kms
    assert body["Timeout"] == 30 and body["Description"] == "disk of us-east-1" and body["ClientToken"]
    sent_tags = {t["Key"]: t["Value"] for t in body["Tags"]}
    assert sent_tags["S"] == "s" and sent_tags["S2"] == "s2" and sent_tags["T"] == "t"
    assert sent_tags["amibake:run-id"] == "run-local"
    # every block with data was put once, verified by the emulation; no zero block was sent
    puts = emu.sent("PutSnapshotBlock")
    assert sorted(r.index for r in puts) == sorted(data_blocks(disk))
    assert all(r.status == 201 for r in puts) and not emu.refused
    assert 30 not in {r.index for r in puts}
    [complete] = emu.sent("CompleteSnapshot")
    assert complete.headers["x-amz-changedblockscount"] == str(len(puts))
    assert complete.headers["x-amz-checksum-aggregation-method"] == "LINEAR"
    [snap] = list(emu.snapshots)
    assert emu.snapshots[snap].status == "completed"
    # the snapshot reads back as the disk, byte for byte
    assert download(emu.url, snap, DISK_SIZE) == disk
    # the exact RegisterImage request
    [reg] = proxy.sent("RegisterImage")
    assert reg.params == {
        "Action": "RegisterImage", "Version": reg.params["Version"], "Name": "local-test",
        "Architecture": "x86_64", "VirtualizationType": "hvm", "RootDeviceName": "/dev/xvda",
        "BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.SnapshotId": snap,
        "BlockDeviceMapping.1.Ebs.VolumeSize": "1", "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
        "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true", "BootMode": "uefi",
        "Description": "local us-east-1", "SriovNetSupport": "simple", "ImdsSupport": "v2.0",
        "TpmSupport": "v2.0",
    }
    # the AMI and its snapshot: tags, sharing, the finished mark
    c = ec2(moto.url)
    img = c.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Name"] == "local-test" and tags(img)["T"] == "t" and tags(img)["T2"] == "t2"
    assert FINISHED_TAG in tags(img)
    s = c.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert tags(s)["S"] == "s" and tags(s)["T"] == "t" and FINISHED_TAG in tags(s)
    perms = c.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert {"UserId": "111122223333"} in perms and {"Group": "all"} in perms
    [sperm] = proxy.sent("ModifySnapshotAttribute")  # moto answers no createVolumePermission back
    assert sperm.params["SnapshotId"] == snap and sperm.params["Attribute"] == "createVolumePermission"
    assert sorted(v for k, v in sperm.params.items() if ".Add." in k) == ["444455556666", "all"]
    assert any("MiB/s, ETA" in line for line in ui.lines), ui.text
    # what is left is the AMI and its snapshot (the emulation removed moto's StartSnapshot volume); moto's
    # RegisterImage keeps only the name and description and hangs a snapshot of its own on the AMI
    own = {b["Ebs"]["SnapshotId"] for b in img.get("BlockDeviceMappings", []) if "Ebs" in b} - {snap}
    left = inventory(moto) - before
    assert left == {f"us-east-1:{x}" for x in (ami, snap, *own)}, left


@pytest.mark.effect("builder/amibake-local", "ami_regions", "force_deregister")
def test_throttling_and_5xx_on_blocks_and_a_region_copy(moto: MotoServer, tmp_path: Path) -> None:
    """Throttling (RequestThrottledException and 429) and 5xx answers on PutSnapshotBlock: every block
    is retried until the emulation verified it; the build succeeds and the snapshot reads back as the
    disk. The AMI is copied to ami_regions; a second build of the same name with force_deregister
    replaces the first."""
    faults = ["throttle", "429", "500", "503", None, "throttle", "500", None, "429", "503"]
    kept = tmp_path / "disk.raw"
    with AwsProxy(moto.url) as proxy, \
            EbsDirectEmulation(proxy.url, faults={"PutSnapshotBlock": faults}) as emu:
        config = make_config(custom_endpoint_ec2=emu.url, ami_name="local-faults", disk_output=str(kept),
                             snapshot_upload_workers=4, ami_regions=["us-west-2"])
        ui = RecUi()
        first = SyntheticLocal(config, env(ui, "run-faults")).run(Hooks("true"))
        assert first is not None
        assert sum(emu.faults_sent.values()) == 8 and not emu.refused
        assert len(emu.sent("StartSnapshot")) == 1
        [snap] = list(emu.snapshots)
        puts = [r for r in emu.sent("PutSnapshotBlock") if r.status == 201]
        disk = kept.read_bytes()
        assert sorted(r.index for r in puts) == sorted(data_blocks(disk))  # each block verified once
        assert download(emu.url, snap, DISK_SIZE) == disk
        west = first.amis["us-west-2"]
        [copy] = ec2(moto.url, "us-west-2").describe_images(ImageIds=[west])["Images"]
        assert copy["Name"] == "local-faults"
        # again, with force_deregister: the first AMI goes
        builder = SyntheticLocal(make_config(custom_endpoint_ec2=emu.url, ami_name="local-faults",
                                             force_deregister=True),
                                 env(RecUi(), "run-faults-2"))
        builder.disk_seed = 2
        second = builder.run(Hooks("true"))
        assert second is not None
        c = ec2(moto.url)
        named = c.describe_images(Filters=[{"Name": "name", "Values": ["local-faults"]}])["Images"]
        assert [i["ImageId"] for i in named] == [second.amis["us-east-1"]]
        assert [r.params["ImageId"] for r in proxy.sent("DeregisterImage")] == [first.amis["us-east-1"]]


def test_a_failed_upload_leaves_nothing(moto: MotoServer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A block AWS keeps refusing (throttled past the last attempt) fails the build: the snapshot started
    is deleted, no AMI is registered, the work directory is removed."""
    monkeypatch.setattr(upload, "BLOCK_RETRY", RetryPolicy(max_attempts=upload.BLOCK_ATTEMPTS, base=0.001,
                                                           cap=0.01))
    before = inventory(moto)
    with EbsDirectEmulation(moto.url, faults={"PutSnapshotBlock": ["throttle"] * 40}) as emu:
        config = make_config(custom_endpoint_ec2=emu.url, snapshot_upload_workers=1)
        ui = RecUi()
        builder = SyntheticLocal(config, env(ui, "run-fail"))
        with pytest.raises(BuildError, match=r"PutSnapshotBlock 0 of snap-.*RequestThrottledException"):
            builder.run(Hooks("true"))
        assert len(emu.sent("StartSnapshot")) == 1 and not emu.sent("CompleteSnapshot")
    assert_nothing_left(moto, before)
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("amibake-local-*/disk.raw"))


_DRIVER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from tests.stack.test_local_builder import SyntheticLocal, env, make_config
    from tests.stack.test_ebs_builder import Hooks, RecUi
    config = make_config(**json.loads(sys.argv[1]))
    SyntheticLocal(config, env(RecUi(), sys.argv[2])).run(Hooks("true"))
""")


@pytest.mark.parametrize("point", ["after-start-snapshot", "after-complete-snapshot"])
def test_sigkill_during_the_upload_then_cleanup_leaves_no_snapshot(stack: Stack, moto: MotoServer,
                                                                    tmp_path: Path, point: str) -> None:
    """Killed (SIGKILL) right after StartSnapshot answered, or once the blocks are written and the
    snapshot completed: the journal holds the snapshot, and ``amibake cleanup`` deletes it."""
    before = inventory(moto)
    state = tmp_path / "state-kill"
    with EbsDirectEmulation(moto.url) as emu:
        env_ = {**os.environ, **stack.env(), "AMIBAKE_STATE_DIR": str(state), "AMIBAKE_PAUSE_AT": point,
                "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        out, err = tmp_path / "stdout", tmp_path / "stderr"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(
                [sys.executable, "-c", _DRIVER, json.dumps({"custom_endpoint_ec2": emu.url}), "run-kill"],
                stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=env_, cwd=tmp_path)
        build = Build(proc, state, out, err, "")
        build.wait_marker(point, timeout=120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        snaps = [s["SnapshotId"] for s in ec2(moto.url).describe_snapshots(OwnerIds=["self"])["Snapshots"]
                 if f"us-east-1:{s['SnapshotId']}" not in before]
        assert len(snaps) == 1 and snaps[0] in emu.snapshots
        # as AWS shows it: pending until CompleteSnapshot (the build waits for completed after it)
        [seen] = ec2(emu.url).describe_snapshots(SnapshotIds=snaps)["Snapshots"]
        assert seen["State"] == ("pending" if point == "after-start-snapshot" else "completed")
        res = run_cleanup(stack, build, "--run", build.run_id())
        assert res.returncode == 0, res.stdout + res.stderr
        assert snaps[0] in res.stdout + res.stderr
    assert_nothing_left(moto, before)
    assert amibake_exe()


def test_skip_unchanged_reuses_the_ami_until_the_mirror_moves(
        moto: MotoServer, tmp_path: Path, front: tuple[AwsProxy, EbsDirectEmulation]) -> None:
    """-skip-unchanged: the AMI carries the content fingerprint, which covers the options (the package set
    asked for) and the mirror snapshot (the suite's InRelease, read at the start); the same build again
    converges that AMI (no StartSnapshot); once the mirror's index changes, it builds."""
    _, emu = front
    mirror = tmp_path / "mirror"
    index = mirror / "dists" / "bookworm" / "InRelease"
    index.parent.mkdir(parents=True)
    index.write_text("Date: Sat, 01 Jun 2024 00:00:00 UTC\n")
    config = make_config(custom_endpoint_ec2=emu.url, ami_name="local-reuse", mirror=f"file://{mirror}")
    fp = Fingerprint({"template": "t"})
    first = SyntheticLocal(config, env(RecUi(), "run-reuse-1", fingerprint=fp)).run(Hooks("true"))
    assert first is not None
    ami = first.amis["us-east-1"]
    digest = fp.resolved({MIRROR_SNAPSHOT: hashlib.sha256(index.read_bytes()).hexdigest()}).digest
    [img] = ec2(moto.url).describe_images(ImageIds=[ami])["Images"]
    assert tags(img)[fingerprint.TAG] == digest
    ui = RecUi()
    again = try_reuse("amibake-local", config, env(ui, "run-reuse-2", fingerprint=fp), Hooks("true"),
                      SkipOptions(enabled=True))
    assert again is not None and again.amis == {"us-east-1": ami}, ui.text
    assert len(emu.sent("StartSnapshot")) == 1
    index.write_text("Date: Sun, 02 Jun 2024 00:00:00 UTC\n")  # the archive moved on
    ui = RecUi()
    assert try_reuse("amibake-local", config, env(ui, "run-reuse-3", fingerprint=fp), Hooks("true"),
                     SkipOptions(enabled=True)) is None
    assert "-skip-unchanged: building" in ui.text
