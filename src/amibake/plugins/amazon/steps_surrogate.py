"""amazon-ebssurrogate's own steps (packer-plugin-amazon ``builder/ebssurrogate``): snapshot the
launched volumes and register them as an AMI (StepSnapshotVolumes, StepRegisterAMI), or, with
``use_create_image``, swap the root volume and create the image from the instance (StepSwapVolumes).

The shared steps are amazon-ebs's; they read the options through :class:`SurrogateLaunch`.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from amibake.errors import BuildError
from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig
from amibake.plugins.amazon.ec2 import AwsError
from amibake.plugins.amazon.state import BuildState
from amibake.plugins.amazon.steps_ami import _rollback_image, register_features
from amibake.steps.context import StepContext

if TYPE_CHECKING:
    from amibake.plugins.amazon.ec2_volumes import VolumeCalls


class SurrogateLaunch:
    """An :class:`EbsSurrogateConfig` as amazon-ebs's steps read it. ``ami_virtualization_type`` is
    the type the AMI is registered with, not a requirement on the source AMI (RegisterImage sets it),
    so the source check of amazon-ebs does not apply; the options it has not are off."""

    no_ephemeral = False
    skip_create_ami = False
    ami_virtualization_type = ""

    def __init__(self, config: EbsSurrogateConfig) -> None:
        self._config = config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


@dataclass
class SurrogateState(BuildState):
    """amazon-ebs's build state, plus the snapshots of the launched volumes (device -> snapshot)."""

    snapshot_ids: dict[str, str] = field(default_factory=dict)
    #: the volumes StepSwapVolumes detached (one of them attached again as the root)
    swapped: list[str] = field(default_factory=list)
    surrogate_config: EbsSurrogateConfig | None = None

    @property
    def sc(self) -> EbsSurrogateConfig:
        assert self.surrogate_config is not None
        return self.surrogate_config

    @property
    def gw(self) -> VolumeCalls:
        return self.ec2  # type: ignore[return-value]


def _omitted(st: SurrogateState) -> set[str]:
    return {d.device_name for d in st.sc.launch_block_device_mappings if d.omit_from_artifact}


def snapshot_volumes(st: SurrogateState, ctx: StepContext) -> None:
    """StepSnapshotVolumes: snapshot each launched volume not omitted from the artifact, wait."""
    s = st.sc
    ui = st.ui
    inst = st.instance
    assert inst is not None
    region = st.region
    omit = _omitted(st)
    launched = {d.device_name for d in s.launch_block_device_mappings}
    tags = {**st.own_tags(), **st.render_tags(s.all_snapshot_tags)}
    description = st.render(s.snapshot_description) or f"Packer: {datetime.now()}"
    made: list[str] = []
    for dev in inst.block_devices:
        if dev.device_name not in launched or dev.device_name in omit or not dev.volume_id:
            continue
        ui.say(f"Creating snapshot of EBS Volume {dev.volume_id}...")
        try:
            snap = st.gw.create_snapshot(dev.volume_id, description=description, tags=tags)
        except AwsError as exc:
            raise BuildError(f"Error creating snapshot: {exc}") from exc
        ctx.on_failure(f"snapshot {snap} (region {region})", _delete_snapshot(st, region, snap))
        ui.message(f"Snapshot ID: {snap}")
        st.snapshot_ids[dev.device_name] = snap
        made.append(snap)
    for snap in made:
        ui.say(f"Waiting for snapshot {snap} to complete...")
        try:
            st.gw.wait_snapshot_completed(snap, cancel=ctx.cancel)
        except BuildError as exc:
            raise BuildError(f"Error waiting for snapshot: {exc}") from exc


def _delete_snapshot(st: BuildState, region: str, snap: str) -> Callable[[], None]:
    def undo() -> None:
        st.ui.say(f"Removing snapshot since we cancelled or halted: {snap}")
        st.ec2.delete_snapshot(snap, region)

    return undo


def combine_devices(st: SurrogateState) -> list[dict[str, Any]]:
    """Packer's combineDevices: ami_block_device_mappings, overridden by the launch devices that are
    not omitted (with their snapshot, encryption then inherited from it); the root source device is
    mapped under ami_root_device.device_name."""
    s = st.sc
    root = s.ami_root_device
    assert root is not None
    devices: dict[str, dict[str, Any]] = {}
    for dev in s.ami_block_device_mappings:
        devices[dev.device_name] = dev.to_api()
    for launch in s.launch_block_device_mappings:
        if launch.omit_from_artifact:
            continue
        mapping = launch.to_api()
        snap = st.snapshot_ids.get(launch.device_name)
        if snap and "Ebs" in mapping:
            mapping["Ebs"]["SnapshotId"] = snap
            mapping["Ebs"].pop("Encrypted", None)
            mapping["Ebs"].pop("KmsKeyId", None)
        if launch.device_name == root.source_device_name:
            mapping["DeviceName"] = root.device_name
        devices[mapping["DeviceName"]] = mapping
    return list(devices.values())


def register_ami(st: SurrogateState, ctx: StepContext) -> None:
    """StepRegisterAMI: RegisterImage with the combined devices and the AMI's attributes; wait."""
    s = st.sc
    ui = st.ui
    root = s.ami_root_device
    assert root is not None
    region = st.region
    ui.say("Registering the AMI...")
    name = s.ami_name
    intermediary = bool(s.encrypt_boot) or s.skip_save_build_region
    if intermediary:
        name = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(7))
    params: dict[str, Any] = {
        "Name": name, "RootDeviceName": root.device_name,
        "VirtualizationType": s.ami_virtualization_type, "BlockDeviceMappings": combine_devices(st),
    }
    if s.ami_architecture:
        params["Architecture"] = s.ami_architecture
    description = st.render(s.ami_description)
    if description:
        params["Description"] = description
    params.update(register_features(s))
    run_tags = {} if s.skip_ami_run_tags else st.render_tags(s.all_run_tags)
    tags = {**st.own_tags(), **run_tags, **st.render_tags(s.all_tags), **st.fingerprint_tags()}
    try:
        image_id = st.gw.register_image(params, tags=tags)
    except AwsError as exc:
        raise BuildError(f"Error registering AMI: {exc}") from exc
    if intermediary:
        st.intermediary_ami = image_id
        ctx.defer(f"intermediary AMI {image_id} (region {region})", lambda: _deregister(st, region, image_id))
    else:
        ctx.on_failure(f"AMI {image_id} and its snapshots (region {region})",
                       lambda: _rollback_image(st, region, image_id))
        st.amis[region] = image_id
    ui.say(f"AMI: {image_id}")
    ui.say("Waiting for AMI to become ready...")
    try:
        image = st.ec2.wait_image_available(image_id, cancel=ctx.cancel, progress=ui.progress,
                                            registered=True)
    except BuildError as exc:
        raise BuildError(f"Error waiting for AMI: {exc}") from exc
    snaps = list(dict.fromkeys([*image.snapshot_ids, *st.snapshot_ids.values()]))
    st.ec2.note_snapshots(image_id, snaps, region)
    if not intermediary:
        st.snapshots[region] = snaps
        ui.say(f"Adding tags to AMI ({image_id})...")
        snap_tags = {**tags, **st.render_tags(s.all_snapshot_tags)}
        for snap in snaps:
            ui.say(f"Tagging snapshot: {snap}")
        st.ec2.create_tags(snaps, snap_tags, region)


def _deregister(st: BuildState, region: str, image_id: str) -> None:
    st.ui.say("Deregistering the intermediary AMI...")
    st.ec2.deregister_image(image_id, region)


def cleanup_swapped_volumes(st: SurrogateState, ctx: StepContext) -> None:
    """Before the launch (with ``use_create_image``): the volumes StepSwapVolumes detaches or moves
    no longer go with the instance, so they are deleted once it is gone (undos run in reverse)."""
    ctx.defer("the volumes the root swap detached", lambda: _delete_swapped(st))


def _delete_swapped(st: SurrogateState) -> None:
    for vid in st.swapped:
        st.ui.say(f"Destroying volume ({vid})...")
        try:
            st.ec2.delete_volume(vid)
        except AwsError as exc:
            if exc.code != "InvalidVolume.NotFound":
                raise


def swap_volumes(st: SurrogateState, ctx: StepContext) -> None:
    """StepSwapVolumes (``use_create_image``): detach the omitted volumes and the original root,
    attach the volume of ``ami_root_device.source_device_name`` as the root device."""
    s = st.sc
    ui = st.ui
    root = s.ami_root_device
    assert root is not None
    inst = st.instance
    assert inst is not None
    current = st.gw.describe_instance(inst.id)
    devices = {d.device_name: d.volume_id for d in (current or inst).block_devices if d.volume_id}
    omit = _omitted(st)
    for device, vid in devices.items():
        if device in omit:
            ui.say(f"Detaching Ommitted EBS Device Name: {device}, Volume ID: {vid}\n")
        elif device in (root.device_name, root.source_device_name, "/dev/sda1"):
            ui.say(f"Detaching Root EBS Device Name: {device}, Volume ID: {vid}\n")
        else:
            ui.say(f"Skip Detach of EBS Device Name: {device}, Volume ID: {vid}\n")
            continue
        st.swapped.append(vid)
        try:
            st.gw.detach_volume(vid, inst.id, cancel=ctx.cancel)
        except (AwsError, BuildError) as exc:
            raise BuildError(f"error detaching volume: {exc}") from exc
    vid = devices.get(root.source_device_name, "")
    ui.say(f"Attaching Root EBS Device Name {root.device_name}, Volume ID: {vid}")
    try:
        st.gw.attach_volume(vid, inst.id, root.device_name, cancel=ctx.cancel)
    except (AwsError, BuildError) as exc:
        raise BuildError(f"error attaching volume: {exc}") from exc
