"""amazon-chroot's device lock and RegisterImage input, and amazon-ebsvolume's volume removal, in
process: the survivors of the first stack-only mutation sample (docs/mutation.md, "Stack-only code:
subprocess calls counted") that no stack test could kill, because no build there makes the case happen."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from amibake.aws.errors import AwsError
from amibake.errors import BuildError
from amibake.plugins.amazon import steps_chroot, steps_volume
from tests.stack.local_image_fixtures import RecordingUi


def test_the_device_lock_is_released_and_forgotten(tmp_path: Path) -> None:
    """Packer's early unflock: once the volume is attached, another build may take the device lock."""
    path = tmp_path / "device.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    st: Any = SimpleNamespace(lock_fd=fd)
    other = os.open(path, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # held: another open file cannot take it
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        steps_chroot._unlock(st)
        assert st.lock_fd is None
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: now it can
        with pytest.raises(OSError):
            os.fstat(fd)  # and the build's descriptor is closed
        steps_chroot._unlock(st)  # a second call (the final cleanup) does nothing
    finally:
        os.close(other)


def _chroot_state(virtualization: str) -> Any:
    cc = SimpleNamespace(
        from_scratch=False, ami_block_device_mappings=[], root_device_name="", root_volume_size=0,
        ami_architecture="x86_64", model_fields_set=set(), ami_virtualization_type=virtualization,
        imds_support="", sriov_support=False, ena_support=False, boot_mode="", uefi_data="",
        tpm_support="",
    )
    source = {
        "Architecture": "x86_64", "VirtualizationType": "paravirtual", "KernelId": "aki-1234abcd",
        "RamdiskId": "ari-1234abcd", "RootDeviceName": "/dev/sda1",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-src", "VolumeSize": 8}},
        ],
    }
    return SimpleNamespace(cc=cc, source_raw=source, snapshot_id="snap-new", ami_description_rendered="")


def test_an_hvm_image_from_a_paravirtual_source_takes_no_kernel_or_ramdisk() -> None:
    """Packer's buildBaseRegisterOpts: the source AMI's kernel and ramdisk are registered only when
    ``ami_virtualization_type`` is not ``hvm`` (an HVM image boots its own kernel)."""
    hvm = steps_chroot.register_params(_chroot_state("hvm"), "ami-name")
    assert hvm["VirtualizationType"] == "hvm"
    assert "KernelId" not in hvm and "RamdiskId" not in hvm
    pv = steps_chroot.register_params(_chroot_state("paravirtual"), "ami-name")
    assert (pv["VirtualizationType"], pv["KernelId"], pv["RamdiskId"]) == \
        ("paravirtual", "aki-1234abcd", "ari-1234abcd")
    assert pv["BlockDeviceMappings"] == [{"DeviceName": "/dev/sda1",
                                          "Ebs": {"SnapshotId": "snap-new", "VolumeSize": 8}}]


class _Ec2:
    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete_volume(self, vid: str, region: str) -> None:
        if vid == "vol-busy":
            raise AwsError("DeleteVolume", "VolumeInUse", f"Volume {vid} is currently attached")
        self.deleted.append((vid, region))


def test_a_volume_that_cannot_be_removed_is_named_and_the_others_are_still_removed() -> None:
    ec2 = _Ec2()
    ui = RecordingUi()
    st: Any = SimpleNamespace(volumes={"us-west-2": ["vol-busy", "vol-2"], "us-east-1": ["vol-1"]},
                              ui=ui, ec2=ec2)
    with pytest.raises(BuildError) as exc:
        steps_volume._delete_volumes(st)
    assert str(exc.value) == ("could not remove volume vol-busy: VolumeInUse: Volume vol-busy is "
                              "currently attached")
    assert ec2.deleted == [("vol-1", "us-east-1"), ("vol-2", "us-west-2")]
    assert ui.lines == ["==> Destroying volume (vol-1)...", "==> Destroying volume (vol-busy)...",
                        "==> Destroying volume (vol-2)..."]
