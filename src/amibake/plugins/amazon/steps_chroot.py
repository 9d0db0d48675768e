"""amazon-chroot's own steps (packer-plugin-amazon ``builder/chroot`` and packer-plugin-sdk ``chroot``):
find this host, make a volume from the source AMI's root snapshot, attach and mount it here, provision
it through the chroot communicator, unmount, detach, snapshot, register.

Local commands (mount, umount, cp, the pre/post mount commands) go through ``command_wrapper`` and
the local ``/bin/sh -c``, as Packer runs them (:mod:`amibake.localexec`). Every attachment, mount and
copied file is undone in reverse order on failure, and before the snapshot on success (Packer's
``StepEarlyCleanup``); the volume is always deleted at the end, the snapshot and the AMI on failure.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from amibake import api, localexec
from amibake.api import HTTP_NOT_IMPLEMENTED
from amibake.communicator.chroot import ChrootCommunicator
from amibake.config.custom_types import merged_tags
from amibake.errors import BuildError
from amibake.plugins.amazon.config_chroot import ChrootConfig
from amibake.plugins.amazon.ec2 import AwsError
from amibake.plugins.amazon.imds import MetadataClient, MetadataError
from amibake.plugins.amazon.records import Instance
from amibake.plugins.amazon.state import BuildState
from amibake.plugins.amazon.steps_ami import _rollback_image, register_features
from amibake.plugins.amazon.steps_instance import find_source_image
from amibake.steps.context import BuildCancelled, StepContext

if TYPE_CHECKING:
    from amibake.plugins.amazon.chroot import ChrootGateway

#: Packer's default ``chroot_mounts``
DEFAULT_CHROOT_MOUNTS: tuple[tuple[str, str, str], ...] = (
    ("proc", "proc", "/proc"),
    ("sysfs", "sysfs", "/sys"),
    ("bind", "/dev", "/dev"),
    ("devpts", "devpts", "/dev/pts"),
    ("binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc"),
)
#: Packer's lock file: one chroot build at a time prepares and attaches a device on this host
LOCK_FILE = "/var/lock/packer-chroot/lock"
#: how long the attached volume's device may take to appear on this host
DEVICE_WAIT_SECONDS = 300.0


class ChrootView:
    """A :class:`ChrootConfig` as amazon-ebs's AMI steps read it: the launch options it has not are off."""

    skip_create_ami = False
    vpc_id = ""
    subnet_id = ""

    def __init__(self, config: ChrootConfig) -> None:
        self._config = config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


@dataclass
class ChrootState(BuildState):
    """amazon-ebs's build state, plus what the chroot steps make on this host."""

    chroot_config: ChrootConfig | None = None
    #: the raw DescribeImages entry of the source AMI (its block device mappings)
    source_raw: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    volume_id: str = ""
    attached: bool = False
    mount_path: str = ""
    device_mount: str = ""
    extra_mounts: list[str] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    snapshot_id: str = ""
    lock_fd: int | None = None
    metadata_env: dict[str, str] | None = None
    ami_description_rendered: str = ""

    @property
    def cc(self) -> ChrootConfig:
        assert self.chroot_config is not None
        return self.chroot_config

    @property
    def gw(self) -> ChrootGateway:
        return self.ec2  # type: ignore[return-value]

    def build_data(self) -> dict[str, Any]:
        """Packer's generated data of amazon-chroot: the build info, Device and MountPath."""
        data = self.build_info()
        data.update(Device=self.device, MountPath=self.mount_path, PackerRunUUID=self.run_uuid,
                    **HTTP_NOT_IMPLEMENTED)
        return data

    def wrapped(self, command: str) -> str:
        """``command_wrapper`` with ``{{.Command}}``."""
        wrapper = self.cc.command_wrapper
        if "{{" not in wrapper:
            return wrapper
        return self.env.render(wrapper, {"Command": command})

    def local(self, command: str, *, stdout: Callable[[str], None] | None = None,
              stderr: Callable[[str], None] | None = None) -> int:
        """One local command through ``command_wrapper`` and ``/bin/sh -c``; its exit status."""
        try:
            return localexec.run(["/bin/sh", "-c", self.wrapped(command)], stdout=stdout, stderr=stderr)
        except localexec.LocalCommandError as exc:
            raise BuildError(str(exc)) from exc


def _stderr_of(st: ChrootState, command: str) -> tuple[int, str]:
    lines: list[str] = []
    status = st.local(command, stderr=lines.append)
    return status, "\n".join(lines)


def _failed(status: int) -> str:
    return localexec.exit_description(status)


# ---- this host ------------------------------------------------------------------------------------


def instance_info(st: ChrootState, ctx: StepContext) -> None:
    """StepInstanceInfo: the instance this build runs on, through the instance metadata service."""
    st.ui.say("Gathering information about this EC2 instance...")
    try:
        iid = MetadataClient(st.metadata_env).instance_id()
    except MetadataError as exc:
        raise BuildError("Error retrieving the ID of the instance Packer is running on.\nPlease verify "
                         f"Packer is running on a proper AWS EC2 instance. ({exc})") from exc
    try:
        raw = st.gw.instance_raw(iid)
    except AwsError as exc:
        raise BuildError(f"Error getting instance data: {exc}") from exc
    if raw is None:
        raise BuildError("Error getting instance data: no instance found.")
    st.instance = Instance.from_api(raw)
    st.availability_zone = str(raw.get("Placement", {}).get("AvailabilityZone", ""))


def source_ami_info(st: ChrootState, ctx: StepContext) -> None:
    """StepSourceAMIInfo: the source AMI (Packer's common step) and its description."""
    s = st.cc
    image = find_source_image(st.ec2, s.source_ami, s.source_ami_filter, st.ui)
    virt = s.ami_virtualization_type or image.virtualization_type
    if (s.ena_support or s.sriov_support) and virt != "hvm":
        raise BuildError(f"Cannot enable enhanced networking, source AMI '{image.id}' is not HVM")
    st.source_image = image
    st.source_raw = st.gw.image_raw(image.id)


def check_root_device(st: ChrootState, ctx: StepContext) -> None:
    """StepCheckRootDevice: the source AMI must be EBS-backed."""
    st.ui.say("Checking the root device on source AMI...")
    if st.source_raw.get("RootDeviceType") != "ebs":
        raise BuildError("The root device of the source AMI must be EBS-backed.")


def flock(st: ChrootState, ctx: StepContext) -> None:
    """StepFlock: one chroot build at a time finds and attaches a device on this host."""
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if ctx.cancel.wait(0.5):
                os.close(fd)
                raise BuildCancelled("cancelled while waiting for the chroot lock") from None
    st.lock_fd = fd
    ctx.defer("the chroot lock", lambda: _unlock(st))


def _unlock(st: ChrootState) -> None:
    if st.lock_fd is not None:
        fd, st.lock_fd = st.lock_fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def early_unflock(st: ChrootState, ctx: StepContext) -> None:
    """StepEarlyUnflock: the device is attached, other builds may look for one."""
    _unlock(st)


def available_device(sys_block: str = "/sys/block", dev: str = "/dev") -> str:
    """Packer's AvailableDevice: the first ``/dev/{sd,xvd}[f-p]`` free with its first partition."""
    try:
        names = os.listdir(sys_block)
    except OSError as exc:
        raise BuildError(f"Error finding available device: {exc}") from exc
    prefix = next((p for name in names for p in ("sd", "xvd") if name.startswith(p)), "")
    if not prefix:
        raise BuildError("Error finding available device: device prefix could not be detected")
    for letter in "fghijklmnop":
        device = f"{dev}/{prefix}{letter}"
        if os.path.exists(device) or os.path.exists(device + "1"):
            continue
        return device
    raise BuildError("Error finding available device: available device could not be found")


def prepare_device(st: ChrootState, ctx: StepContext) -> None:
    """StepPrepareDevice: ``device_path``, or a free device; it must not exist before the attachment."""
    device = st.cc.device_path or available_device()
    if os.path.exists(device):
        raise BuildError(f"Device is in use: {device}")
    st.device = device


# ---- the volume -----------------------------------------------------------------------------------


def create_volume_params(st: ChrootState) -> dict[str, Any]:
    """StepCreateVolume's CreateVolume input (without tags)."""
    s = st.cc
    if s.from_scratch:
        vtype = "gp2"
        if s.root_volume_type == "io1":
            raise BuildError("Cannot use io1 volume when building from scratch")
        if s.root_volume_type:
            vtype = s.root_volume_type
        return {"AvailabilityZone": st.availability_zone, "Size": s.root_volume_size, "VolumeType": vtype}
    raw = st.source_raw
    root = next((m for m in raw.get("BlockDeviceMappings", [])
                 if m.get("DeviceName") == raw.get("RootDeviceName")), None)
    if root is None or "Ebs" not in root:
        raise BuildError("Couldn't find root device!")
    ebs = root["Ebs"]
    params: dict[str, Any] = {"AvailabilityZone": st.availability_zone}
    for key in ("VolumeSize", "SnapshotId", "VolumeType", "Iops", "Encrypted", "KmsKeyId"):
        if ebs.get(key) is not None:
            params["Size" if key == "VolumeSize" else key] = ebs[key]
    if s.root_volume_size > int(ebs.get("VolumeSize") or 0):
        params["Size"] = s.root_volume_size
    if s.root_volume_encrypt_boot:
        params["Encrypted"] = True
    if s.root_volume_kms_key_id:
        params["KmsKeyId"] = s.root_volume_kms_key_id
    if s.root_volume_type and s.root_volume_type != ebs.get("VolumeType"):
        if s.root_volume_type == "io1":
            raise BuildError("Root volume type cannot be io1, because existing root volume type was "
                             f"{ebs.get('VolumeType')}")
        params["VolumeType"] = s.root_volume_type
        params.pop("Iops", None)
    return params


def create_volume(st: ChrootState, ctx: StepContext) -> None:
    """StepCreateVolume: the volume, from the source root snapshot or empty (from_scratch); it is
    deleted at the end of the build, whatever happens."""
    s = st.cc
    params = create_volume_params(st)
    if not s.from_scratch:
        st.ui.say("Creating the root volume...")
    user_tags = st.render_tags(merged_tags(s.root_volume_tags, s.root_volume_tag))
    for k, v in user_tags.items():
        st.ui.message(f'Adding tag: "{k}": "{v}"')
    try:
        vid = st.gw.create_chroot_volume(params, tags={**st.own_tags(), **user_tags}, cancel=ctx.cancel,
                                         on_created=lambda v: ctx.defer(
                                             f"volume {v}", lambda: _delete_volume(st, v)))
    except AwsError as exc:
        raise BuildError(f"Error creating root volume: {exc}") from exc
    st.volume_id = vid


def _delete_volume(st: ChrootState, vid: str) -> None:
    st.ui.say("Deleting the created EBS volume...")
    st.ec2.delete_volume(vid)


def attach_volume(st: ChrootState, ctx: StepContext) -> None:
    """StepAttachVolume, then the device's appearance on this host awaited (``nvme_device_path`` when
    set, as the mount uses it)."""
    inst = st.instance
    assert inst is not None
    attach_as = st.device.replace("/xvd", "/sd", 1)
    st.ui.say(f"Attaching the root volume to {attach_as}")
    try:
        st.gw.chroot_attach(st.volume_id, inst.id, attach_as)
    except AwsError as exc:
        raise BuildError(f"Error attaching volume: {exc}") from exc
    st.attached = True
    ctx.defer(f"attachment of volume {st.volume_id}", lambda: detach(st, ctx))
    try:
        st.gw.wait_chroot_volume(st.volume_id, "in-use", cancel=ctx.cancel)
    except BuildError as exc:
        raise BuildError(f"Error waiting for volume: {exc}") from exc
    device = st.cc.nvme_device_path or st.device
    deadline = time.monotonic() + DEVICE_WAIT_SECONDS
    while not os.path.exists(device):
        if time.monotonic() > deadline:
            raise BuildError(f"Error waiting for volume: the device {device} did not appear in "
                             f"{DEVICE_WAIT_SECONDS:g}s")
        if ctx.cancel.wait(0.1):
            raise BuildCancelled("cancelled while waiting for the attached device")


def detach(st: ChrootState, ctx: StepContext | None = None) -> None:
    if not st.attached:
        return
    inst = st.instance
    assert inst is not None
    st.ui.say("Detaching EBS volume...")
    try:
        st.gw.chroot_detach(st.volume_id, inst.id)
    except AwsError as exc:
        raise BuildError(f"Error detaching EBS volume: {exc}") from exc
    st.attached = False
    try:
        st.gw.wait_chroot_volume(st.volume_id, "available")
    except BuildError as exc:
        raise BuildError(f"Error waiting for volume: {exc}") from exc


# ---- local commands and mounts --------------------------------------------------------------------


def _run_commands(st: ChrootState, commands: Sequence[str], data: dict[str, Any]) -> None:
    """Packer's RunLocalCommands: each rendered, wrapped, run by ``sh -c``; a non-zero exit stops."""
    for raw in commands:
        text = st.env.render(raw, {**st.build_info(), **data}) if "{{" in raw else raw
        command = st.wrapped(text)
        st.ui.say(f"Executing command: {command}")
        try:
            status = localexec.run(["sh", "-c", command], stdout=st.ui.message, stderr=st.ui.error)
        except localexec.LocalCommandError as exc:
            raise BuildError(f"Error executing command: {exc}") from exc
        if status != 0:
            raise BuildError(f"Received non-zero exit code {status} from command: {command}")


def pre_mount_commands(st: ChrootState, ctx: StepContext) -> None:
    """StepPreMountCommands (``{{.Device}}``)."""
    if st.cc.pre_mount_commands:
        st.ui.say("Running device setup commands...")
        _run_commands(st, st.cc.pre_mount_commands, {"Device": st.device})


def mount_device(st: ChrootState, ctx: StepContext) -> None:
    """StepMountDevice: ``mount_path`` (``{{.Device}}``: the device's base name) made and mounted."""
    s = st.cc
    device = s.nvme_device_path or st.device
    if s.from_scratch or s.ami_virtualization_type:
        virt = s.ami_virtualization_type
    else:
        virt = str(st.source_raw.get("VirtualizationType", ""))
    path = s.mount_path
    if "{{" in path:
        path = st.env.render(path, {**st.build_info(), "Device": os.path.basename(device)})
    path = os.path.abspath(path)
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"Error creating mount directory: {exc}") from exc
    device_mount = device
    if virt == "hvm" and s.mount_partition != "0":
        device_mount = f"{device}{s.mount_partition}"
    st.device_mount = device_mount
    st.ui.say("Mounting the root device...")
    opts = ("-o " + " -o ".join(s.mount_options)) if s.mount_options else ""
    status, err = _stderr_of(st, f"mount {opts} {device_mount} {path}")
    if status != 0:
        raise BuildError(f"Error mounting root volume: {_failed(status)}\nStderr: {err}")
    st.mount_path = path
    st.gw.note_mount(path)
    ctx.defer(f"mount {path}", lambda: unmount_device(st))


def unmount_device(st: ChrootState) -> None:
    if not st.mount_path:
        return
    st.ui.say("Unmounting the root device...")
    status, err = _stderr_of(st, f"umount {st.mount_path}")
    if status != 0:
        raise BuildError(f"Error unmounting root device: {_failed(status)}\nStderr: {err}")
    st.gw.note_unmounted(st.mount_path)
    st.mount_path = ""


def post_mount_commands(st: ChrootState, ctx: StepContext) -> None:
    """StepPostMountCommands (``{{.Device}}``, ``{{.MountPath}}``)."""
    if st.cc.post_mount_commands:
        st.ui.say("Running post-mount commands...")
        _run_commands(st, st.cc.post_mount_commands, {"Device": st.device, "MountPath": st.mount_path})


def chroot_mounts(config: ChrootConfig) -> list[Sequence[str]]:
    return list(config.chroot_mounts) if config.chroot_mounts else [list(m) for m in DEFAULT_CHROOT_MOUNTS]


def mount_extra(st: ChrootState, ctx: StepContext) -> None:
    """StepMountExtra: the ``chroot_mounts`` (Packer's defaults when empty), unmounted in reverse."""
    st.ui.say("Mounting additional paths within the chroot...")
    ctx.defer("the chroot_mounts", lambda: unmount_extra(st))
    for fstype, source, target in chroot_mounts(st.cc):
        inner = st.mount_path + target
        try:
            os.makedirs(inner, 0o755, exist_ok=True)
        except OSError as exc:
            raise BuildError(f"Error creating mount directory: {exc}") from exc
        flags = "--bind" if fstype == "bind" else f"-t {fstype}"
        st.ui.message(f"Mounting: {target}")
        status, err = _stderr_of(st, f"mount {flags} {source} {inner}")
        if status != 0:
            raise BuildError(f"Error mounting: {_failed(status)}\nStderr: {err}")
        st.extra_mounts.append(inner)
        st.gw.note_mount(inner)
    ctx.pause("after-mount-extra")


def unmount_extra(st: ChrootState) -> None:
    while st.extra_mounts:
        path = st.extra_mounts[-1]
        if st.local(f"grep {path} /proc/mounts") == 1:
            st.extra_mounts.pop()  # already unmounted
            st.gw.note_unmounted(path)
            continue
        status, err = _stderr_of(st, f"umount {path}")
        if status != 0:
            raise BuildError(f"Error unmounting device: {_failed(status)}\nStderr: {err}")
        st.extra_mounts.pop()
        st.gw.note_unmounted(path)


def copy_files(st: ChrootState, ctx: StepContext) -> None:
    """StepCopyFiles: ``copy_files`` (``/etc/resolv.conf`` unless the template sets the option or
    builds from scratch) into the chroot; removed again before the snapshot."""
    s = st.cc
    files = list(s.copy_files)
    if "copy_files" not in s.model_fields_set and not s.from_scratch:
        files = ["/etc/resolv.conf"]
    ctx.defer("the files copied into the chroot", lambda: remove_copied(st))
    if not files:
        return
    st.ui.say("Copying files from host to chroot...")
    for path in files:
        st.ui.message(path)
        inner = os.path.join(st.mount_path, path.lstrip("/"))
        status, err = _stderr_of(st, f"cp --remove-destination {path} {inner}")
        if status != 0:
            raise BuildError(f"Error copying file: {_failed(status)}\nnStderr: {err}")
        st.copied.append(inner)


def remove_copied(st: ChrootState) -> None:
    while st.copied:
        path = st.copied[-1]
        status = st.local(f"rm -f {path}")
        if status != 0:
            raise BuildError(f"rm -f {path} {_failed(status)}")
        st.copied.pop()


def provision(st: ChrootState, ctx: StepContext) -> None:
    """StepChrootProvision: the provisioners, through the chroot communicator."""
    st.ui.say("Running the provision hook")
    st.comm = ChrootCommunicator(st.mount_path, st.wrapped)
    api.provision(st.hooks, st.comm, st.build_data(), st.env, st.ui)


def early_cleanup(st: ChrootState, ctx: StepContext) -> None:
    """StepEarlyCleanup: copied files, extra mounts, the root mount, the attachment, in that order."""
    remove_copied(st)
    unmount_extra(st)
    unmount_device(st)
    detach(st)


# ---- snapshot and AMI -----------------------------------------------------------------------------


def snapshot(st: ChrootState, ctx: StepContext) -> None:
    """StepSnapshot: the volume's snapshot, deleted if the build fails."""
    st.ui.say("Creating snapshot...")
    description = f"Packer: {datetime.now()}"
    region = st.region
    try:
        snap = st.gw.create_snapshot(st.volume_id, description=description, tags=st.own_tags())
    except AwsError as exc:
        raise BuildError(f"Error creating snapshot: {exc}") from exc
    st.snapshot_id = snap
    ctx.on_failure(f"snapshot {snap} (region {region})", lambda: _delete_snapshot(st, snap))
    st.ui.message(f"Snapshot ID: {snap}")
    try:
        st.gw.wait_snapshot_completed(snap, cancel=ctx.cancel)
    except BuildError as exc:
        raise BuildError(f"Error waiting for snapshot: {exc}") from exc


def _delete_snapshot(st: ChrootState, snap: str) -> None:
    st.ui.say("Removing snapshot since we cancelled or halted...")
    st.ec2.delete_snapshot(snap)


def register_params(st: ChrootState, name: str) -> dict[str, Any]:
    """StepRegisterAMI's RegisterImage input (buildBaseRegisterOpts and its options)."""
    s = st.cc
    new_mappings = s.from_scratch or bool(s.ami_block_device_mappings)
    if new_mappings:
        mappings = [b.to_api() for b in s.ami_block_device_mappings]
        root_name = s.root_device_name
    else:
        mappings = [dict(m) for m in st.source_raw.get("BlockDeviceMappings", [])]
        root_name = str(st.source_raw.get("RootDeviceName", ""))
    out = []
    for m in mappings:
        m = {k: (dict(v) if isinstance(v, dict) else v) for k, v in m.items()}
        if m.get("DeviceName") == root_name:
            ebs = m.setdefault("Ebs", {})
            ebs["SnapshotId"] = st.snapshot_id
            if new_mappings or s.root_volume_size > int(ebs.get("VolumeSize") or 0):
                ebs["VolumeSize"] = s.root_volume_size
        if isinstance(m.get("Ebs"), dict):
            m["Ebs"].pop("Encrypted", None)
        out.append(m)
    raw = st.source_raw
    params: dict[str, Any] = {"Name": name, "RootDeviceName": root_name, "BlockDeviceMappings": out}
    if s.from_scratch:
        params["Architecture"] = s.ami_architecture
        params["VirtualizationType"] = s.ami_virtualization_type
    else:
        params["Architecture"] = s.ami_architecture if "ami_architecture" in s.model_fields_set \
            else raw.get("Architecture", "")
        params["VirtualizationType"] = s.ami_virtualization_type or raw.get("VirtualizationType", "")
        if s.ami_virtualization_type != "hvm":
            for key in ("KernelId", "RamdiskId"):
                if raw.get(key):
                    params[key] = raw[key]
    if st.ami_description_rendered:
        params["Description"] = st.ami_description_rendered
    params.update(register_features(s))
    if s.imds_support:
        params["ImdsSupport"] = s.imds_support
    return {k: v for k, v in params.items() if v not in ("", None)}


def register_ami(st: ChrootState, ctx: StepContext) -> None:
    """StepRegisterAMI, tagged with ``tags`` (the snapshot with ``snapshot_tags`` too), as Packer's
    StepCreateTags does after it."""
    s = st.cc
    st.ui.say("Registering the AMI...")
    name = s.ami_name
    intermediary = bool(s.encrypt_boot) or (s.skip_save_build_region and bool(s.copy_regions(st.region)))
    if intermediary:
        name = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(7))
    st.ami_description_rendered = st.render(s.ami_description)
    tags = {**st.own_tags(), **st.render_tags(s.all_tags), **st.fingerprint_tags()}
    region = st.region
    try:
        image_id = st.gw.register_chroot_image(register_params(st, name), tags=tags)
    except AwsError as exc:
        raise BuildError(f"Error registering AMI: {exc}") from exc
    if intermediary:
        st.intermediary_ami = image_id
        ctx.defer(f"intermediary AMI {image_id} and its snapshots (region {region})",
                  lambda: _rollback_image(st, region, image_id))
    else:
        ctx.on_failure(f"AMI {image_id} and its snapshots (region {region})",
                       lambda: _rollback_image(st, region, image_id))
        st.amis[region] = image_id
    st.ui.say(f"AMI: {image_id}")
    st.ui.say("Waiting for AMI to become ready...")
    try:
        st.ec2.wait_image_available(image_id, cancel=ctx.cancel, progress=st.ui.progress, registered=True)
    except BuildError as exc:
        raise BuildError(f"Error waiting for AMI: {exc}") from exc
    st.snapshots[region] = [st.snapshot_id]
    if not intermediary:
        st.ec2.create_tags([st.snapshot_id], {**tags, **st.render_tags(s.all_snapshot_tags)}, region)
