"""The amibake-local builder: an AMI with no EC2 instance.

The steps: the root filesystem (mmdebstrap, or a tarball) in a directory of this host; the template's
provisioners inside it through the chroot communicator; a bootable raw GPT disk made from it; a boot
test of that disk under QEMU (a disk that does not boot fails the build before anything is sent to
AWS); the disk written into a new snapshot with the EBS direct APIs; RegisterImage with the snapshot
as root device; then amazon-ebs's own AMI steps (region copies, sharing, the finished mark).

Every snapshot and AMI is journaled the moment it exists and removed if the build fails; the
directory of the tree and the disk is removed at the end (the disk is kept at ``disk_output``).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from amibake import api
from amibake.api import HTTP_NOT_IMPLEMENTED, Hooks, Ui
from amibake.errors import BuildError
from amibake.journal import state_dir
from amibake.plugins.amazon import steps_ami, steps_instance
from amibake.plugins.amazon.builder import AmazonBuilder
from amibake.plugins.amazon.chroot import ChrootGateway
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ebs import mark_finished
from amibake.plugins.amazon.ec2 import AwsError
from amibake.plugins.amazon.ec2_ebsdirect import EbsDirectCalls
from amibake.plugins.amazon.local import upload
from amibake.plugins.amazon.local.config import LocalConfig
from amibake.plugins.amazon.local.reuse import LocalView, fingerprint_tags, mirror_snapshot
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.steps.context import StepContext

BUILDER_ID = "amibake.amazon.local"
#: RegisterImage's root device for the disk (the name DiskInfo gives when it has none)
ROOT_DEVICE = "/dev/xvda"


class LocalGateway(ChrootGateway, EbsDirectCalls):
    """amazon-chroot's gateway (snapshots, images, the journal of mounts on this host) with the EBS
    direct calls."""


@dataclass
class LocalState(BuildState):
    """amazon-ebs's build state, plus what the local steps make on this host."""

    local_config: LocalConfig | None = None
    work_dir: Path | None = None
    tree: Path | None = None
    image: Path | None = None
    rootfs: Any = None  # rootfs.RootfsInfo
    disk: Any = None  # disk.DiskInfo
    snapshot_id: str = ""
    uploaded: upload.UploadResult | None = None
    #: the fingerprint's components resolved at the start (the mirror snapshot), when it is computed
    resolved: dict[str, str] | None = None

    @property
    def lc(self) -> LocalConfig:
        assert self.local_config is not None
        return self.local_config

    @property
    def gw(self) -> LocalGateway:
        return self.ec2  # type: ignore[return-value]

    def fingerprint_tags(self) -> dict[str, str]:
        """``amibake:fingerprint`` (with the mirror snapshot taken at the start), when computed."""
        if self.env.fingerprint is None or self.resolved is None:
            return {}
        return fingerprint_tags(self.env, self.resolved, self.env.build_name)

    def build_data(self) -> dict[str, Any]:
        """The generated data the provisioners get: the build info, the tree's path as ``MountPath``
        (as amazon-chroot names its root), and the run's UUID."""
        data = self.build_info()
        data.update(MountPath=str(self.tree or ""), PackerRunUUID=self.run_uuid, **HTTP_NOT_IMPLEMENTED)
        return data


def cache_dir() -> Path:
    """Where bootstrapped root filesystems are cached unless ``bootstrap_cache_dir`` says otherwise."""
    return state_dir() / "cache" / "amibake-local"


# ---- the steps ------------------------------------------------------------------------------------


def resolve_fingerprint(st: LocalState, ctx: StepContext) -> None:
    """With a content fingerprint (``-skip-unchanged``, ``amibake plan``): the mirror's state now,
    before the bootstrap reads it (the AMI is tagged with the fingerprint it completes)."""
    if st.env.fingerprint is not None:
        st.resolved = mirror_snapshot(st.lc)


def work_dir(st: LocalState, ctx: StepContext) -> None:
    """A directory of this build for the tree and the disk, removed at the end."""
    st.work_dir = Path(tempfile.mkdtemp(prefix="amibake-local-"))
    st.tree = st.work_dir / "rootfs"
    st.image = Path(st.lc.disk_output).expanduser() if st.lc.disk_output else st.work_dir / "disk.raw"
    path = st.work_dir
    ctx.defer(f"work directory {path}", lambda: _remove_work(st, path))
    try:
        st.image.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"disk_output {st.lc.disk_output}: cannot create its directory: "
                         f"{exc.strerror or exc}") from exc


def _remove_work(st: LocalState, path: Path) -> None:
    from amibake.plugins.amazon.local import rootfs

    if st.tree is not None:
        rootfs.remove_tree(st.tree)
    shutil.rmtree(path, ignore_errors=True)


def bootstrap(st: LocalState, ctx: StepContext) -> None:
    """The root filesystem: mmdebstrap (through the bootstrap cache) or ``rootfs_tarball``."""
    from amibake.plugins.amazon.local import rootfs

    assert st.tree is not None
    st.rootfs = rootfs.bootstrap(st.lc, st.tree, cache_dir=cache_dir(), ui=st.ui, cancel=ctx.cancel)


def provision(st: LocalState, ctx: StepContext) -> None:
    """The template's provisioners inside the tree, through the chroot communicator (/proc, /sys and
    /dev mounted as amazon-chroot mounts them, unmounted afterwards even on failure)."""
    from amibake.plugins.amazon.local import chroot_session

    assert st.tree is not None
    st.ui.say("Running the provision hook")
    with chroot_session.open_tree(st.tree, ui=st.ui, on_mount=st.gw.note_mount,
                                  on_unmount=st.gw.note_unmounted) as comm:
        st.comm = comm
        try:
            api.provision(st.hooks, comm, st.build_data(), st.env, st.ui)
        finally:
            st.comm = None


def make_disk(st: LocalState, ctx: StepContext) -> None:
    """The bootable raw disk from the tree; the tree is removed once the disk holds it."""
    from amibake.plugins.amazon.local import disk, rootfs

    assert st.tree is not None and st.image is not None
    st.disk = disk.make_disk(st.tree, st.image, opts=st.lc, ui=st.ui, cancel=ctx.cancel)
    rootfs.remove_tree(st.tree)
    st.tree = None
    if st.lc.disk_output:
        st.ui.message(f"Disk image kept at {st.image} (disk_output)")


def boot_test(st: LocalState, ctx: StepContext) -> None:
    """The disk booted under QEMU (a throwaway overlay: the disk stays as it is), unless ``boot_test``
    is false. A disk that does not boot fails the build here, before anything reaches AWS."""
    if not st.lc.boot_test:
        st.ui.say("Skipping the boot test (boot_test = false)")
        return
    from amibake.plugins.amazon.local import boottest

    assert st.image is not None
    boottest.boot_test(st.image, opts=st.lc, commands=[], ui=st.ui, cancel=ctx.cancel)


def upload_snapshot(st: LocalState, ctx: StepContext) -> None:
    """The disk written into a new snapshot with the EBS direct APIs, then waited for ``completed``.
    The snapshot is deleted if the build fails after StartSnapshot answered."""
    c = st.lc
    assert st.image is not None
    st.ui.say("Uploading the disk into a new EBS snapshot (EBS direct APIs)...")
    tags = {**st.own_tags(), **st.render_tags(c.all_tags), **st.render_tags(c.all_snapshot_tags)}
    description = st.render(c.snapshot_description) if c.snapshot_description else \
        f"amibake-local: {c.ami_name} {datetime.now()}"
    spec = upload.UploadSpec(volume_size=c.volume_size, tags=tags, description=description,
                             encrypted=bool(c.snapshot_encrypted), kms_key_arn=c.snapshot_kms_key_arn,
                             timeout_minutes=c.timeout_minutes(), workers=c.snapshot_upload_workers)
    region = st.region

    def started(snap: str) -> None:
        st.snapshot_id = snap
        ctx.on_failure(f"snapshot {snap} (region {region})", lambda: _delete_snapshot(st, snap))

    try:
        st.uploaded = upload.upload_disk(st.gw, st.image, spec, ui=st.ui, cancel=ctx.cancel,
                                         on_started=started)
    except AwsError as exc:
        raise BuildError(f"Error uploading the snapshot: {exc}") from exc
    try:
        st.gw.wait_snapshot_completed(st.snapshot_id, cancel=ctx.cancel)
    except BuildError as exc:
        raise BuildError(f"Error waiting for snapshot: {exc}") from exc


def _delete_snapshot(st: LocalState, snap: str) -> None:
    st.ui.say("Removing snapshot since we cancelled or halted...")
    try:
        st.ec2.delete_snapshot(snap)
    except AwsError as exc:
        if exc.code != "InvalidSnapshot.NotFound":  # gone with its AMI (the AMI's rollback runs first)
            raise


def register_params(st: LocalState, name: str) -> dict[str, Any]:
    """RegisterImage's input: the snapshot as the root device; architecture, boot mode, ENA and
    SR-IOV from the disk (the template's ``ena_support``/``sriov_support`` win when set), IMDS and
    NitroTPM support from the template."""
    c = st.lc
    d = st.disk
    assert st.uploaded is not None
    root = getattr(d, "root_device_name", "") or ROOT_DEVICE
    params: dict[str, Any] = {
        "Name": name,
        "Architecture": d.architecture,
        "VirtualizationType": "hvm",
        "RootDeviceName": root,
        "BlockDeviceMappings": [{"DeviceName": root, "Ebs": {
            "SnapshotId": st.snapshot_id, "VolumeSize": st.uploaded.volume_size, "VolumeType": "gp3",
            "DeleteOnTermination": True}}],
        "BootMode": d.boot_mode,
    }
    description = st.render(c.ami_description)
    if description:
        params["Description"] = description
    ena = c.ena_support if c.ena_support is not None else bool(d.ena_support)
    if ena:
        params["EnaSupport"] = True
    if c.sriov_support or ("sriov_support" not in c.model_fields_set and d.sriov):
        params["SriovNetSupport"] = "simple"
    if c.imds_support:
        params["ImdsSupport"] = c.imds_support
    if c.tpm_support:
        params["TpmSupport"] = c.tpm_support
    return params


def register_ami(st: LocalState, ctx: StepContext) -> None:
    """RegisterImage, tagged with ``tags`` (the snapshot with ``snapshot_tags`` too); waits until the
    AMI is available. Deregistered with its snapshot if the build fails later."""
    c = st.lc
    st.ui.say("Registering the AMI...")
    tags = {**st.own_tags(), **st.render_tags(c.all_tags), **st.fingerprint_tags()}
    region = st.region
    try:
        image_id = st.gw.register_image(register_params(st, c.ami_name), tags=tags)
    except AwsError as exc:
        raise BuildError(f"Error registering AMI: {exc}") from exc
    ctx.on_failure(f"AMI {image_id} and its snapshots (region {region})",
                   lambda: steps_ami._rollback_image(st, region, image_id))
    st.amis[region] = image_id
    st.ui.say(f"AMI: {image_id}")
    st.ui.say("Waiting for AMI to become ready...")
    try:
        st.ec2.wait_image_available(image_id, cancel=ctx.cancel, progress=st.ui.progress, registered=True)
    except BuildError as exc:
        raise BuildError(f"Error waiting for AMI: {exc}") from exc
    st.snapshots[region] = [st.snapshot_id]
    st.ec2.create_tags([st.snapshot_id], {**tags, **st.render_tags(c.all_snapshot_tags)}, region)


class LocalBuilder(AmazonBuilder):
    config: LocalConfig
    gateway_class = LocalGateway
    builder_id = BUILDER_ID

    def image_steps(self) -> list[tuple[str, Any]]:
        """The steps that make and check the disk on this host."""
        return [
            ("StepWorkDir", work_dir),
            ("StepBootstrapRootfs", bootstrap),
            ("StepProvisionTree", provision),
            ("StepMakeDisk", make_disk),
            ("StepBootTest", boot_test),
        ]

    def steps(self, st: LocalState) -> list[BoundStep]:
        plan: list[tuple[str, Any]] = [
            ("StepPreValidate", steps_instance.pre_validate),
            ("StepResolveFingerprint", resolve_fingerprint),
            *self.image_steps(),
            ("StepUploadSnapshot", upload_snapshot),
            ("StepDeregisterAMI", steps_ami.deregister_ami),
            ("StepRegisterAMI", register_ami),
            ("StepAMIRegionCopy", steps_ami.region_copy),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    def _secrets(self) -> tuple[str, ...]:
        c = self.config
        return (c.secret_key, c.token, c.mfa_code)  # no SSH communicator of the template's

    def _new_state(self, gateway: Any, hooks: Hooks, run_uuid: str, ui: Ui) -> LocalState:
        return LocalState(config=cast(EbsConfig, LocalView(self.config)), ec2=gateway, env=self.env,
                          hooks=hooks, run_uuid=run_uuid, ui_=ui, local_config=self.config)
