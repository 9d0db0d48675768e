"""amazon-ebsvolume's own steps (packer-plugin-amazon ``builder/ebsvolume``): keep the launched
instance's ``ebs_volumes``, retag them, snapshot the ones that ask for it.

The shared steps (network, key pair, launch, connect, provision, stop...) are amazon-ebs's: they read
the build's options through :class:`VolumeLaunch`, the ebsvolume config seen with ``ebs_volumes`` as
the launch block devices, as Packer's ebsvolume builder hands ``launchBlockDevices`` to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from amibake.errors import BuildError
from amibake.journal import now_iso
from amibake.plugins.amazon.config_ebsvolume import EbsVolumeConfig, VolumeBlockDevice
from amibake.plugins.amazon.ec2 import AwsError
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.state import BuildState
from amibake.steps.context import StepContext

if TYPE_CHECKING:
    from amibake.plugins.amazon.ec2_volumes import VolumeCalls


class VolumeLaunch:
    """An :class:`EbsVolumeConfig` as amazon-ebs's launch steps read it: ``ebs_volumes`` are the
    launch block devices; the AMI options this builder has not (it makes no AMI) are off."""

    launch_block_device_mappings: Sequence[VolumeBlockDevice]
    no_ephemeral = False
    ami_virtualization_type = ""

    def __init__(self, config: EbsVolumeConfig) -> None:
        self._config = config
        self.launch_block_device_mappings = list(config.ebs_volumes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._config, name)


@dataclass
class VolumeState(BuildState):
    """The build state of amazon-ebsvolume: amazon-ebs's, plus the volumes and snapshots it keeps."""

    #: region -> the ids of the kept volumes (``ebs_volumes`` with ``delete_on_termination`` false)
    volumes: dict[str, list[str]] = field(default_factory=dict)
    #: region -> the ids of the snapshots of the volumes with ``snapshot_volume``
    volume_snapshots: dict[str, list[str]] = field(default_factory=dict)
    #: the ebsvolume options (``config`` is their :class:`VolumeLaunch` view)
    volume_config: EbsVolumeConfig | None = None

    @property
    def vc(self) -> EbsVolumeConfig:
        assert self.volume_config is not None
        return self.volume_config

    @property
    def gw(self) -> VolumeCalls:
        return self.ec2  # type: ignore[return-value]


def _instance_volumes(st: VolumeState) -> list[tuple[VolumeBlockDevice, str]]:
    """(the ``ebs_volumes`` entry, its volume id) for each of the instance's mapped devices."""
    inst = st.instance
    assert inst is not None
    out = []
    for dev in inst.block_devices:
        for mapping in st.vc.ebs_volumes:
            if mapping.device_name == dev.device_name and dev.volume_id:
                out.append((mapping, dev.volume_id))
    return out


def rollback_volumes(st: VolumeState, ctx: StepContext) -> None:
    """Before the launch: the kept volumes are removed if the build fails, once the instance is
    gone (undos run in reverse, so this one runs after the instance's termination)."""
    ctx.on_failure("the EBS volumes the build keeps", lambda: _delete_volumes(st))


def _delete_volumes(st: VolumeState) -> None:
    failed = []
    for region, vids in sorted(st.volumes.items()):
        for vid in vids:
            st.ui.say(f"Destroying volume ({vid})...")
            try:
                st.ec2.delete_volume(vid, region)
            except AwsError as exc:
                failed.append(f"volume {vid}: {exc}")
    if failed:
        raise BuildError("could not remove " + "; ".join(failed))


def tag_volumes(st: VolumeState, ctx: StepContext) -> None:
    """stepTagEBSVolumes: note the kept volumes; replace the run_volume_tags on the ``ebs_volumes``
    volumes with each volume's own ``tags``."""
    s = st.vc
    ui = st.ui
    inst = st.instance
    assert inst is not None
    region = st.region
    pairs = _instance_volumes(st)
    kept = [vid for mapping, vid in pairs if not mapping.delete_on_termination]
    st.volumes = {region: kept} if kept else {}
    st.gw.note_volumes(inst.id, kept, region)
    if not s.ebs_volumes:
        return
    run_volume_tags = st.render_tags(s.all_run_volume_tags)
    if run_volume_tags:
        ui.say("Removing any tags applied to EBS volumes when the source instance was created...")
        ui.say("Compiling list of existing tags to remove...")
        _report(st, run_volume_tags)
        ids = [vid for _, vid in pairs]
        ui.say(f"Deleting 'run_volume_tags' on EBS Volumes: {', '.join(ids)}")
        try:
            st.gw.delete_tags(ids, run_volume_tags)
        except AwsError as exc:
            raise BuildError(f"Error deleting tags on EBS Volumes {', '.join(ids)}: {exc}") from exc
    ui.say("Tagging EBS volumes...")
    to_tag: dict[str, dict[str, str]] = {}
    for mapping in s.ebs_volumes:
        if not mapping.all_tags:
            ui.say(f"No tags specified for volume on {mapping.device_name}...")
            continue
        ui.message(f"Compiling list of tags to apply to volume on {mapping.device_name}...")
        tags = st.render_tags(mapping.all_tags)
        _report(st, tags)
        for m, vid in pairs:
            if m.device_name == mapping.device_name:
                to_tag[vid] = tags
    for vid, tags in to_tag.items():
        ui.message(f"Applying tags to EBS Volume: {vid}")
        try:
            st.ec2.create_tags([vid], tags)
        except AwsError as exc:
            raise BuildError(f"Error tagging EBS Volume {vid} on {inst.id}: {exc}") from exc


def _report(st: BuildState, tags: dict[str, str]) -> None:
    """Packer's EC2Tags.Report."""
    for k, v in tags.items():
        st.ui.message(f'Adding tag: "{k}": "{v}"')


def snapshot_volumes(st: VolumeState, ctx: StepContext) -> None:
    """stepSnapshotEBSVolumes: snapshot each volume with ``snapshot_volume``, wait, share."""
    ui = st.ui
    region = st.region
    made: list[tuple[str, VolumeBlockDevice]] = []
    for mapping, vid in _instance_volumes(st):
        if not mapping.snapshot_volume:
            continue
        ui.message(f"Compiling list of tags to apply to snapshot from Volume {mapping.device_name}...")
        user_tags = st.render_tags(mapping.all_snapshot_tags)
        _report(st, user_tags)
        description = mapping.snapshot_description or f"Packer: {datetime.now()}"
        ui.message(f"Requesting snapshot of volume: {vid}...")
        try:
            snap = st.gw.create_snapshot(vid, description=description, tags={**st.own_tags(), **user_tags})
        except AwsError as exc:
            raise BuildError(f"Error generating snapsot for volume {vid}: {exc}") from exc
        ctx.on_failure(f"snapshot {snap} (region {region})", _snapshot_undo(st, region, snap))
        ui.message(f"Requested Snapshot of Volume {vid}: {snap}")
        made.append((snap, mapping))
        st.volume_snapshots.setdefault(region, []).append(snap)
    ui.say("Waiting for Snapshots to become ready...")
    for snap, _ in made:
        ui.message(f"Waiting for {snap} to be ready.")
        try:
            st.gw.wait_snapshot_completed(snap, cancel=ctx.cancel)
        except BuildError as exc:
            ui.message("Failed to wait")
            raise BuildError(f"Error waiting for snapsot to become ready {exc}") from exc
        ui.message(f"Snapshot Ready: {snap}")
    ui.say("Setting User/Group Permissions for Snapshots...")
    for snap, mapping in made:
        # Packer's inputs: the names and the CreateVolumePermission additions, one call for each kind
        options: dict[str, dict[str, Any]] = {}
        if mapping.snapshot_groups:
            groups = list(mapping.snapshot_groups)
            options["groups"] = {"GroupNames": groups,
                                 "CreateVolumePermission": {"Add": [{"Group": g} for g in groups]}}
        if mapping.snapshot_users:
            users = list(mapping.snapshot_users)
            options["users"] = {"UserIds": users,
                                "CreateVolumePermission": {"Add": [{"UserId": u} for u in users]}}
        for name, params in options.items():
            ui.message(f"Modifying: {name}")
            try:
                st.ec2.modify_snapshot_attribute(
                    snap, Attribute="createVolumePermission", OperationType="add", **params)
            except AwsError as exc:
                raise BuildError(f"Error modify snapshot attributes: {exc}") from exc


def _snapshot_undo(st: BuildState, region: str, snap: str) -> Callable[[], None]:
    def undo() -> None:
        st.ui.say(f"Deleting snapshot: {snap}")
        st.ec2.delete_snapshot(snap, region)

    return undo


def mark_finished(st: VolumeState, ctx: StepContext) -> None:
    """Mark the kept volumes and snapshots ``amibake:finished`` (as amazon-ebs marks its AMIs), so
    ``amibake cleanup`` never removes what the build delivers."""
    stamp = {FINISHED_TAG: now_iso()}
    for region in sorted(set(st.volumes) | set(st.volume_snapshots)):
        ids = [*st.volumes.get(region, []), *st.volume_snapshots.get(region, [])]
        st.ec2.create_tags(ids, stamp, region)
