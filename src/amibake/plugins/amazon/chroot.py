"""The amazon-chroot builder: build an AMI from a volume attached to the EC2 instance amibake runs on.

The step sequence is Packer's (packer-plugin-amazon builder/chroot/builder.go ``Run``); the steps
it shares with amazon-ebs (AMI name check, deregister, region copy, deprecation, attributes) are
amazon-ebs's own functions, reading the options through :class:`~steps_chroot.ChrootView`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, cast

from amibake.api import BuildEnv, Hooks, Ui
from amibake.errors import BuildError
from amibake.plugins.amazon import steps_ami, steps_chroot, steps_instance
from amibake.plugins.amazon.builder import AmazonBuilder
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_chroot import ChrootConfig
from amibake.plugins.amazon.ebs import mark_finished
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.ec2_volumes import VolumeCalls
from amibake.plugins.amazon.records import Tags, tag_list, tag_specs
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_chroot import ChrootState, ChrootView

BUILDER_ID = "mitchellh.amazon.chroot"
_NOT_YET_VOLUME = ("InvalidVolume.NotFound",)
_NOT_YET_AMI = ("InvalidAMIID.NotFound",)


class ChrootGateway(Ec2Gateway, VolumeCalls):
    """The EC2 gateway with the volume, snapshot and image calls of amazon-chroot."""

    def note_mount(self, path: str) -> None:
        """Journal a mount made on this host (region ""): ``amibake cleanup`` unmounts what a killed
        build left mounted, when it runs on the same host."""
        self._created("mount", "", path)

    def note_unmounted(self, path: str) -> None:
        self._removed("mount", "", path)

    def instance_raw(self, instance_id: str) -> dict[str, Any] | None:
        resp = self._call("describe_instances", InstanceIds=[instance_id])
        for res in resp.get("Reservations", []):
            for inst in res.get("Instances", []):
                return dict(inst)
        return None

    def image_raw(self, image_id: str) -> dict[str, Any]:
        resp = self._call("describe_images", ImageIds=[image_id], retry_codes=_NOT_YET_AMI)
        for img in resp.get("Images", []):
            return dict(img)
        raise BuildError(f"the source AMI {image_id} is not visible")

    def create_chroot_volume(self, params: Mapping[str, Any], *, tags: Tags,
                             on_created: Callable[[str], None],
                             cancel: threading.Event | None = None) -> str:
        """CreateVolume (tagged, with a client token: a retry gets the same volume); ``on_created``
        registers its undo the moment it exists; then Packer's WaitUntilVolumeAvailable."""
        token = str(uuid.uuid4())
        call = dict(params, ClientToken=token)
        if tags:
            call["TagSpecifications"] = tag_specs(tags, "volume")
        self._intent("volume", None, token=token)
        vid = str(self._call("create_volume", **call)["VolumeId"])
        self._created("volume", None, vid, token=token)
        on_created(vid)
        self._pause("after-create-volume")
        self.wait_chroot_volume(vid, "available", cancel=cancel)
        return vid

    def wait_chroot_volume(self, volume_id: str, wanted: str, *,
                           cancel: threading.Event | None = None) -> None:
        def probe() -> tuple[bool, str]:
            resp = self._call("describe_volumes", VolumeIds=[volume_id])
            for vol in resp.get("Volumes", []):
                state = str(vol.get("State", ""))
                return state == wanted, state
            return False, "(not found)"

        self.wait(f"volume {volume_id} to be {wanted}", probe, cancel=cancel, retry_codes=_NOT_YET_VOLUME,
                  failed_states=("error", "deleted"), point=f"volume-{wanted}")

    def chroot_attach(self, volume_id: str, instance_id: str, device: str) -> None:
        self._call("attach_volume", VolumeId=volume_id, InstanceId=instance_id, Device=device)
        self._pause("after-attach-volume")

    def chroot_detach(self, volume_id: str, instance_id: str) -> None:
        # Packer names only the volume; moto needs the instance too (AWS takes it)
        self._call("detach_volume", VolumeId=volume_id, InstanceId=instance_id)

    def register_chroot_image(self, params: Mapping[str, Any], *, tags: Tags) -> str:
        """RegisterImage, then the image tagged (moto's RegisterImage keeps no TagSpecifications)."""
        name = str(params.get("Name", ""))
        self._intent("image", None, name=name)
        image_id = str(self._call("register_image", **dict(params))["ImageId"])
        self._created("image", None, image_id, name=name)
        self._pause("after-register-image")
        if tags:
            self._call("create_tags", Resources=[image_id], Tags=tag_list(tags), retry_codes=_NOT_YET_AMI)
        return image_id


class ChrootBuilder(AmazonBuilder):
    config: ChrootConfig
    gateway_class = ChrootGateway
    builder_id = BUILDER_ID

    def __init__(self, config: ChrootConfig, env: BuildEnv, *,
                 metadata_env: dict[str, str] | None = None) -> None:
        super().__init__(config, env)
        #: the environment the metadata endpoint is read from (None: the process's)
        self.metadata_env = metadata_env

    def steps(self, st: ChrootState) -> list[BoundStep]:
        c = self.config
        sc = steps_chroot
        plan: list[tuple[str, Any]] = [
            ("StepPreValidate", steps_instance.pre_validate),
            ("StepInstanceInfo", sc.instance_info),
        ]
        if not c.from_scratch:
            plan += [("StepSourceAMIInfo", sc.source_ami_info), ("StepCheckRootDevice", sc.check_root_device)]
        plan += [
            ("StepFlock", sc.flock),
            ("StepPrepareDevice", sc.prepare_device),
            ("StepCreateVolume", sc.create_volume),
            ("StepAttachVolume", sc.attach_volume),
            ("StepEarlyUnflock", sc.early_unflock),
            ("StepPreMountCommands", sc.pre_mount_commands),
            ("StepMountDevice", sc.mount_device),
            ("StepPostMountCommands", sc.post_mount_commands),
            ("StepMountExtra", sc.mount_extra),
            ("StepCopyFiles", sc.copy_files),
            ("StepChrootProvision", sc.provision),
            ("StepEarlyCleanup", sc.early_cleanup),
            ("StepSnapshot", sc.snapshot),
            ("StepDeregisterAMI", steps_ami.deregister_ami),
            ("StepRegisterAMI", sc.register_ami),
            ("StepAMIRegionCopy", steps_ami.region_copy),
            ("StepEnableDeprecation", steps_ami.enable_deprecation),
            ("StepEnableDeregistrationProtection", steps_ami.enable_deregistration_protection),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    def _secrets(self) -> tuple[str, ...]:
        c = self.config
        return (c.secret_key, c.token, c.mfa_code)  # no communicator: no SSH secret

    def _new_state(self, gateway: Any, hooks: Hooks, run_uuid: str, ui: Ui) -> ChrootState:
        return ChrootState(config=cast(EbsConfig, ChrootView(self.config)), ec2=gateway, env=self.env,
                           hooks=hooks, run_uuid=run_uuid, ui_=ui, chroot_config=self.config,
                           metadata_env=self.metadata_env)
