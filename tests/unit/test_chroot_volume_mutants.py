"""amazon-chroot's steps and the volume builders' undos, in process: the cases no stack build makes happen
(a lock held by another build, a device search without ``device_path``, a volume that cannot be deleted...),
written for the survivors of the stack-only mutation runs (docs/mutation.md, "Stack-only code: subprocess
calls counted" and "The sample's stack-only mutants, with the stack tests")."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from amibake.aws.errors import AwsError
from amibake.errors import BuildError
from amibake.plugins.amazon import steps_chroot, steps_surrogate, steps_volume
from amibake.plugins.amazon.chroot import ChrootBuilder
from amibake.plugins.amazon.config_chroot import ChrootConfig
from amibake.steps.context import BuildCancelled, StepContext
from amibake.steps.runner import StepRunner
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
    """DeleteVolume: ``vol-gone`` no longer exists, ``vol-busy`` is attached, the others are deleted."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []

    def delete_volume(self, vid: str, region: str = "") -> None:
        if vid == "vol-gone":
            raise AwsError("DeleteVolume", "InvalidVolume.NotFound", f"no volume '{vid}'")
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


def test_a_mount_directory_that_cannot_be_made_stops_the_build(tmp_path: Path) -> None:
    """StepMountExtra's own error (Packer's text), before anything is mounted: the undo that unmounts
    is registered first, and nothing is left for it."""
    root = tmp_path / "root"
    root.write_text("a file where the chroot's root should be")
    st: Any = SimpleNamespace(cc=SimpleNamespace(chroot_mounts=[]), mount_path=str(root), ui=RecordingUi(),
                              extra_mounts=[], gw=None)
    deferred: list[str] = []
    ctx: Any = SimpleNamespace(defer=lambda what, undo: deferred.append(what), pause=lambda point: None)
    with pytest.raises(BuildError) as err:
        steps_chroot.mount_extra(st, ctx)
    assert str(err.value) == f"Error creating mount directory: [Errno 20] Not a directory: '{root}/proc'"
    assert deferred == ["the chroot_mounts"] and st.extra_mounts == []
    assert st.ui.lines == ["==> Mounting additional paths within the chroot..."]


def _volume_state(**cc: Any) -> Any:
    options = {"from_scratch": False, "root_volume_size": 0, "root_volume_type": "",
               "root_volume_encrypt_boot": False, "root_volume_kms_key_id": "", **cc}
    source = {"RootDeviceName": "/dev/xvda", "BlockDeviceMappings": [
        {"DeviceName": "/dev/xvdb", "Ebs": {"SnapshotId": "snap-data", "VolumeSize": 50}},
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-root", "VolumeSize": 8, "VolumeType": "gp2",
                                            "Encrypted": False, "DeleteOnTermination": True}},
    ]}
    return SimpleNamespace(cc=SimpleNamespace(**options), source_raw=source, availability_zone="us-east-1a")


def test_the_root_volume_is_made_from_the_source_root_snapshot_grown_to_root_volume_size() -> None:
    """Packer's StepCreateVolume (buildCreateVolumeInput): the source's root mapping, its size raised
    to ``root_volume_size`` when that is larger, never shrunk."""
    base = {"AvailabilityZone": "us-east-1a", "SnapshotId": "snap-root", "VolumeType": "gp2",
            "Encrypted": False}
    assert steps_chroot.create_volume_params(_volume_state()) == {**base, "Size": 8}
    assert steps_chroot.create_volume_params(_volume_state(root_volume_size=4)) == {**base, "Size": 8}
    assert steps_chroot.create_volume_params(_volume_state(root_volume_size=20)) == {**base, "Size": 20}
    assert steps_chroot.create_volume_params(_volume_state(
        root_volume_encrypt_boot=True, root_volume_kms_key_id="alias/k", root_volume_type="gp3",
    )) == {**base, "Size": 8, "Encrypted": True, "KmsKeyId": "alias/k", "VolumeType": "gp3"}
    with pytest.raises(BuildError) as err:
        steps_chroot.create_volume_params(_volume_state(root_volume_type="io1"))
    assert str(err.value) == "Root volume type cannot be io1, because existing root volume type was gp2"
    assert steps_chroot.create_volume_params(_volume_state(from_scratch=True, root_volume_size=3)) == {
        "AvailabilityZone": "us-east-1a", "Size": 3, "VolumeType": "gp2"}


def test_a_free_device_is_the_first_letter_with_no_device_and_no_first_partition(tmp_path: Path) -> None:
    """Packer's AvailableDevice: the prefix (``sd`` or ``xvd``) of the first block device that has one,
    then ``f`` to ``p``, skipping a letter whose device or first partition exists."""
    sys_block, dev = tmp_path / "sys-block", tmp_path / "dev"
    sys_block.mkdir()
    dev.mkdir()
    for name in ("loop0", "nvme0n1", "xvda"):
        (sys_block / name).mkdir()
    (dev / "xvdf").touch()
    (dev / "xvdg1").touch()
    (dev / "sdh").touch()  # another prefix: not in the way
    assert steps_chroot.available_device(str(sys_block), str(dev)) == f"{dev}/xvdh"
    for letter in "hijklmnop":
        (dev / f"xvd{letter}").touch()
    with pytest.raises(BuildError) as err:
        steps_chroot.available_device(str(sys_block), str(dev))
    assert str(err.value) == "Error finding available device: available device could not be found"
    (sys_block / "xvda").rmdir()
    (sys_block / "sda").mkdir()
    assert steps_chroot.available_device(str(sys_block), str(dev)) == f"{dev}/sdf"
    (sys_block / "sda").rmdir()
    with pytest.raises(BuildError) as err:
        steps_chroot.available_device(str(sys_block), str(dev))
    assert str(err.value) == "Error finding available device: device prefix could not be detected"
    with pytest.raises(BuildError, match=r"^Error finding available device: \[Errno 2\]"):
        steps_chroot.available_device(str(tmp_path / "absent"), str(dev))


@pytest.mark.parametrize("from_scratch", [False, True])
def test_the_chroot_step_plan_is_packers(from_scratch: bool) -> None:
    """Packer's amazon-chroot steps by name, in its order (the names ``-debug`` and ``-on-error=ask``
    print): StepSourceAMIInfo and StepCheckRootDevice only with a source AMI; amibake's StepMarkFinished
    last."""
    raw: dict[str, Any] = {"region": "us-east-1", "ami_name": "a", "source_ami": "ami-12345678"}
    if from_scratch:
        raw = {**raw, "source_ami": "", "from_scratch": True, "root_volume_size": 8,
               "pre_mount_commands": ["true"], "ami_block_device_mappings": [
                   {"device_name": "/dev/xvda", "delete_on_termination": True, "volume_type": "gp2"}],
               "root_device_name": "/dev/xvda"}
    builder = ChrootBuilder(ChrootConfig.model_validate(raw), cast(Any, SimpleNamespace()))
    source = ["StepSourceAMIInfo", "StepCheckRootDevice"] if not from_scratch else []
    assert [s.name for s in builder.steps(cast(Any, None))] == [
        "StepPreValidate", "StepInstanceInfo", *source, "StepFlock", "StepPrepareDevice", "StepCreateVolume",
        "StepAttachVolume", "StepEarlyUnflock", "StepPreMountCommands", "StepMountDevice",
        "StepPostMountCommands", "StepMountExtra", "StepCopyFiles", "StepChrootProvision", "StepEarlyCleanup",
        "StepSnapshot", "StepDeregisterAMI", "StepRegisterAMI", "StepAMIRegionCopy", "StepEnableDeprecation",
        "StepEnableDeregistrationProtection", "StepModifyAMIAttributes", "StepMarkFinished",
    ]


def test_the_chroot_lock_waits_for_another_build_and_is_held_until_its_undo(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """StepFlock: while another process holds the lock the step waits (and a cancel ends the wait);
    once it is free the step takes it, holds it and registers its release."""
    lock = tmp_path / "packer-chroot" / "lock"
    monkeypatch.setattr(steps_chroot, "LOCK_FILE", str(lock))
    lock.parent.mkdir()
    other = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other, fcntl.LOCK_EX)
    undos: list[Any] = []
    cancel = threading.Event()
    ctx: Any = SimpleNamespace(cancel=cancel, defer=lambda what, undo: undos.append((what, undo)))
    st: Any = SimpleNamespace(lock_fd=None)
    try:
        threading.Timer(0.3, cancel.set).start()
        with pytest.raises(BuildCancelled, match="waiting for the chroot lock"):
            steps_chroot.flock(st, ctx)
        assert st.lock_fd is None and undos == []
        cancel.clear()
        threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN)).start()
        steps_chroot.flock(st, ctx)  # taken once the other process lets go
        assert st.lock_fd is not None and [what for what, _ in undos] == ["the chroot lock"]
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        undos[0][1]()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(other)


def test_the_volumes_a_root_swap_detached_are_deleted_after_the_instance_and_named_if_left() -> None:
    """amazon-ebssurrogate with ``use_create_image``: the undo deletes each swapped-out volume (one
    already gone is fine); one it cannot delete is reported under the undo's name and left."""
    ui = RecordingUi()
    st: Any = SimpleNamespace(swapped=["vol-1", "vol-gone", "vol-busy"], ui=ui, ec2=_Ec2())
    ctx = StepContext(ui=cast(Any, ui))
    steps_surrogate.cleanup_swapped_volumes(st, ctx)
    assert ui.lines == [] and st.ec2.deleted == []  # nothing yet: it runs once the instance is gone
    StepRunner(ctx).unwind(include_rollback=True)
    assert st.ec2.deleted == [("vol-1", "")]
    assert ctx.leftovers == ["the volumes the root swap detached"]
    assert ui.lines == ["==> Destroying volume (vol-1)...", "==> Destroying volume (vol-gone)...",
                        "==> Destroying volume (vol-busy)...",
                        "!!! Error during cleanup (the volumes the root swap detached): VolumeInUse: "
                        "Volume vol-busy is currently attached"]
