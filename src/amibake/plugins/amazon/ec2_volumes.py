"""The EC2 gateway's volume and snapshot calls (amazon-ebsvolume, amazon-ebssurrogate): journal the
volumes a launch made, retag them, snapshot them and wait for the snapshots. A mixin over
:class:`~amibake.plugins.amazon.ec2_base.GatewayBase`; the builders use it through a gateway subclass."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from amibake.plugins.amazon.access import Polling
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.plugins.amazon.records import Instance, Tags, tag_list, tag_specs

#: the error codes of a snapshot or volume that EC2 does not show yet (eventual consistency)
_NOT_YET = ("InvalidSnapshot.NotFound", "InvalidVolume.NotFound")
_NOT_YET_AMI = ("InvalidAMIID.NotFound",)


class VolumeCalls(GatewayBase):
    """Volumes and snapshots of one build."""

    def note_volumes(self, instance_id: str, volume_ids: Sequence[str], region: str | None = None) -> None:
        """Journal volumes a launch made that outlive the instance (``delete_on_termination`` false):
        they exist from RunInstances on, so a build stopped later leaves nothing the journal misses."""
        for vid in volume_ids:
            self._created("volume", region, vid, instance=instance_id)

    def delete_tags(self, resource_ids: Sequence[str], tags: Tags, region: str | None = None) -> None:
        if resource_ids and tags:
            self._call("delete_tags", region, Resources=list(resource_ids), Tags=tag_list(tags),
                       retry_codes=_NOT_YET)

    def create_snapshot(self, volume_id: str, *, description: str = "", tags: Tags | None = None,
                        region: str | None = None) -> str:
        """CreateSnapshot, tagged in the call. It takes no client token: the intent names the volume,
        and ``amibake cleanup`` finds a snapshot whose answer was lost by the build's tags."""
        params: dict[str, Any] = {"VolumeId": volume_id}
        if description:
            params["Description"] = description
        specs = tag_specs(tags or {}, "snapshot")
        if specs:
            params["TagSpecifications"] = specs
        token = str(uuid.uuid4())
        self._intent("snapshot", region, volume=volume_id, token=token)
        snap = str(self._call("create_snapshot", region, retry_codes=_NOT_YET, **params)["SnapshotId"])
        self._created("snapshot", region, snap, volume=volume_id, token=token)
        self._pause("after-create-snapshot")
        return snap

    def snapshot_state(self, snapshot_id: str, region: str | None = None) -> str:
        resp = self._call("describe_snapshots", region, SnapshotIds=[snapshot_id])
        for snap in resp.get("Snapshots", []):
            return str(snap.get("State", ""))
        return ""

    def wait_snapshot_completed(self, snapshot_id: str, *, cancel: threading.Event | None = None,
                                region: str | None = None) -> None:
        """Packer's WaitUntilSnapshotDone: until the snapshot is ``completed`` (``error`` fails)."""
        def probe() -> tuple[bool, str]:
            state = self.snapshot_state(snapshot_id, region)
            return state == "completed", state

        self.wait(f"snapshot {snapshot_id} to be completed", probe, cancel=cancel, retry_codes=_NOT_YET,
                  failed_states=("error",), point="snapshot-completed", polling=self.polling.long())

    def register_image(self, params: Mapping[str, Any], *, tags: Tags | None = None,
                       region: str | None = None) -> str:
        """RegisterImage, then the image tagged (moto's RegisterImage keeps no TagSpecifications). It
        takes no client token: the intent names the image, which ``amibake cleanup`` looks up by name."""
        name = str(params.get("Name", ""))
        self._intent("image", region, name=name)
        image_id = str(self._call("register_image", region, **dict(params))["ImageId"])
        self._created("image", region, image_id, name=name)
        self._pause("after-register-image")
        if tags:
            self._call("create_tags", region, Resources=[image_id], Tags=tag_list(tags),
                       retry_codes=_NOT_YET_AMI)
        return image_id

    def detach_volume(self, volume_id: str, instance_id: str, *, cancel: threading.Event | None = None,
                      region: str | None = None) -> None:
        """DetachVolume (naming the instance too, which AWS takes and moto needs), then Packer's
        WaitUntilVolumeDetached."""
        self._call("detach_volume", region, VolumeId=volume_id, InstanceId=instance_id)
        self.wait(f"volume {volume_id} to be detached",
                  lambda: self._volume_state(volume_id, region, "available"),
                  cancel=cancel, retry_codes=_NOT_YET, point="volume-detached")

    def attach_volume(self, volume_id: str, instance_id: str, device: str, *,
                      cancel: threading.Event | None = None, region: str | None = None) -> None:
        """AttachVolume, then Packer's WaitUntilVolumeAttached."""
        self._call("attach_volume", region, VolumeId=volume_id, InstanceId=instance_id, Device=device)
        self.wait(f"volume {volume_id} to be attached",
                  lambda: self._volume_state(volume_id, region, "in-use"),
                  cancel=cancel, retry_codes=_NOT_YET, point="volume-attached")

    def _volume_state(self, volume_id: str, region: str | None, wanted: str) -> tuple[bool, str]:
        resp = self._call("describe_volumes", region, VolumeIds=[volume_id])
        for vol in resp.get("Volumes", []):
            state = str(vol.get("State", ""))
            return state == wanted, state
        return False, "(not found)"

    if TYPE_CHECKING:  # Ec2Gateway's, which the builders' gateways combine this mixin with
        def describe_instance(self, instance_id: str, region: str | None = None) -> Instance | None: ...

        def wait(
            self,
            what: str,
            probe: Callable[[], tuple[bool, str]],
            *,
            cancel: threading.Event | None = None,
            retry_codes: Sequence[str] = (),
            failed_states: Sequence[str] = (),
            point: str = "",
            polling: Polling | None = None,
        ) -> str: ...
