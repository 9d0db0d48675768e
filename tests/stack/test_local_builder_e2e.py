"""amibake-local end to end (issue #17's "Done when"): a minimal Debian image built with no EC2 instance.

The root filesystem comes from the run's one bootstrap (tests/stack/local_image_fixtures.py: mmdebstrap
once per CI run, then its cache, which the template points ``bootstrap_cache_dir`` at), a provisioner
runs in the tree, the disk is made and booted under QEMU to SSH, where checks (added to the build's own
boot test) see what the options did, then written through the EBS direct APIs (the emulation in front
of the recording proxy in front of moto). The test then downloads the snapshot with
ListSnapshotBlocks/GetSnapshotBlock into a raw file that must be byte-identical to the disk the build
kept (``disk_output``), the very file the boot test booted (through an overlay: it stays as it was), so
the checks hold for the snapshot too without a second boot; the RegisterImage request is asserted
exactly, and no instance call reached AWS.

A disk that does not boot fails the build before anything is sent to AWS (no StartSnapshot).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from amibake.errors import BuildError
from amibake.plugins.amazon.ec2 import CLIENTS
from amibake.plugins.amazon.local import boottest
from amibake.plugins.amazon.local.builder import LocalBuilder, boot_test
from tests.awsproxy import AwsProxy
from tests.ebsdirect_emulation import BLOCK_SIZE, EbsDirectEmulation
from tests.stack.local_image_fixtures import (  # noqa: F401 - the fixture
    LocalImageKit,
    RecordingUi,
    local_image,
    require_local_image_tools,
)
from tests.stack.test_ebs_builder import Hooks
from tests.stack.test_local_builder import SyntheticLocal, env, make_config
from tests.stackkit import MotoServer, Stack

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def _isolated(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in stack.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "state"))
    CLIENTS.clear()
    yield
    CLIENTS.clear()


def download_to(url: str, snapshot_id: str, size: int, dest: Path) -> int:
    """The snapshot read back with ListSnapshotBlocks/GetSnapshotBlock into the sparse file ``dest``
    of ``size`` bytes (holes where no block was written); the number of blocks read."""
    c = boto3.client("ebs", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing")
    count = 0
    kw: dict[str, Any] = {}
    with open(dest, "wb") as f:
        f.truncate(size)
        while True:
            page = c.list_snapshot_blocks(SnapshotId=snapshot_id, **kw)
            assert page["BlockSize"] == BLOCK_SIZE
            for b in page["Blocks"]:
                got = c.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"],
                                           BlockToken=b["BlockToken"])
                data = got["BlockData"].read()
                offset = b["BlockIndex"] * BLOCK_SIZE
                f.seek(offset)
                f.write(data[:max(0, min(BLOCK_SIZE, size - offset))])
                count += 1
            if not page.get("NextToken"):
                return count
            kw = {"NextToken": page["NextToken"]}


#: what the options did, checked on the booted disk (run as the boot test's commands)
CHECKS = [
    'test "$(cat /etc/amibake-provisioned)" = provisioned',
    "grep -q 'amibake.e2e=1' /proc/cmdline",
    "grep -q VERSION_CODENAME=bookworm /etc/os-release",
    "dpkg-query -W less",
    "grep -rqs contrib /etc/apt/sources.list /etc/apt/sources.list.d",
    "test \"$(uname -m)\" = x86_64",
    "! dpkg-query -W man-db 2>/dev/null",  # minbase: nothing of the standard variant
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.timeout(900)  # the run's one bootstrap (when this test is the first to need it) and one boot
@pytest.mark.effect("builder/amibake-local", "suite", "mirror", "variant", "components", "packages",
                    "architecture", "bootstrap_cache", "bootstrap_cache_dir", "kernel_command_line",
                    "volume_size", "boot_test_timeout", "disk_output")
def test_minimal_debian_image_end_to_end(stack: Stack, moto: MotoServer, local_image: LocalImageKit,  # noqa: F811
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kit = local_image
    kept = tmp_path / "disk.raw"
    booted: list[Path] = []
    real_boot_test = boottest.boot_test

    def boot_test_with_checks(image: Path, *, opts: Any, commands: list[str], ui: Any, cancel: Any) -> None:
        """The build's own boot test, with the checks of what the options did added to its commands."""
        booted.append(image)
        real_boot_test(image, opts=opts, commands=[*commands, *CHECKS], ui=ui, cancel=cancel)

    monkeypatch.setattr(boottest, "boot_test", boot_test_with_checks)
    with AwsProxy(moto.url) as proxy, EbsDirectEmulation(proxy.url) as emu:
        config = make_config(
            ami_name="local-debian", custom_endpoint_ec2=emu.url, **kit.template_options,
            kernel_command_line=["amibake.e2e=1"], volume_size=2, boot_test_timeout="10m",
            disk_output=str(kept))
        ui = RecordingUi()
        hooks = Hooks("test -c /dev/null && test -r /proc/self/status "
                      "&& echo provisioned > /etc/amibake-provisioned")

        artifact = LocalBuilder(config, env(ui, "run-e2e")).run(hooks)  # type: ignore[arg-type]

        assert artifact is not None, ui.text()
        assert hooks.results == [0]
        text = ui.text()
        assert "Using the cached root filesystem" in text  # bootstrap_cache_dir: the run's cache entry
        # one boot, of the kept disk, before the upload; every check ran in it (a failing one fails the build)
        assert booted == [kept]
        assert [line for line in text.splitlines() if "check: " in line] == \
            [f"    check: {c}" for c in CHECKS], text
        assert text.index("Boot test passed") < text.index("Uploading the disk")
        # no instance was ever asked for
        actions = {r.action for r in proxy.requests}
        assert not {a for a in actions if "Instance" in a}, actions
        [start] = emu.sent("StartSnapshot")
        assert (start.body or {})["VolumeSize"] == 2
        puts = emu.sent("PutSnapshotBlock")
        assert puts and all(r.status == 201 for r in puts) and not emu.refused
        [snap] = list(emu.snapshots)
        assert emu.snapshots[snap].status == "completed"
        [reg] = proxy.sent("RegisterImage")
        p = reg.params
        expected = {
            "Action": "RegisterImage", "Version": p["Version"], "Name": "local-debian",
            "Architecture": "x86_64", "VirtualizationType": "hvm", "RootDeviceName": "/dev/xvda",
            "BlockDeviceMapping.1.DeviceName": "/dev/xvda", "BlockDeviceMapping.1.Ebs.SnapshotId": snap,
            "BlockDeviceMapping.1.Ebs.VolumeSize": "2", "BlockDeviceMapping.1.Ebs.VolumeType": "gp3",
            "BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true", "BootMode": "uefi",
            "EnaSupport": "true",  # the cloud kernel has the ENA driver
        }
        if "SriovNetSupport" in p:
            expected["SriovNetSupport"] = "simple"
        assert p == expected
        # the snapshot, downloaded, is the disk byte for byte, and boots
        assert kept.stat().st_size == 2 << 30
        back = tmp_path / "downloaded.raw"
        with EbsDirectEmulation(moto.url) as reader:  # straight to moto: the proxy would keep every block
            assert download_to(reader.url, snap, kept.stat().st_size, back) == len(puts)
    # the snapshot is the booted, checked disk byte for byte
    assert sha256(back) == sha256(kept)


@pytest.mark.effect("builder/amibake-local", "boot_test")
def test_a_disk_that_does_not_boot_fails_before_any_upload(stack: Stack, moto: MotoServer,
                                                           tmp_path: Path) -> None:
    """The boot test runs on the disk before the upload: a disk with no boot loader fails the build with
    "did not boot", and no StartSnapshot (nor any other EBS call) is sent. With ``boot_test = false`` the
    same disk is not booted, and uploaded."""
    require_local_image_tools(("qemu-system-x86_64", "qemu-img", "timeout"))

    class NotBootable(SyntheticLocal):
        """The synthetic disk (data, no boot loader), then the builder's real boot test step."""

        extra = [("StepBootTest", boot_test)]

    with EbsDirectEmulation(moto.url) as emu:
        config = make_config(custom_endpoint_ec2=emu.url, boot_test_timeout="3m")
        ui = RecordingUi()
        with pytest.raises(BuildError, match="did not boot"):
            NotBootable(config, env(ui, "run-noboot")).run(Hooks("true"))  # type: ignore[arg-type]
        assert emu.requests == []
        assert "Uploading the disk" not in ui.text()
        unchecked = NotBootable(make_config(custom_endpoint_ec2=emu.url, ami_name="local-unchecked",
                                            boot_test=False), env(RecordingUi(), "run-unchecked"))
        assert unchecked.run(Hooks("true")) is not None  # type: ignore[arg-type]
        assert len(emu.sent("StartSnapshot")) == 1 and emu.sent("CompleteSnapshot")
