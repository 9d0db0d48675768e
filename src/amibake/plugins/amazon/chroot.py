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

from amibake.api import BuildEnv, Hooks
from amibake.errors import BuildError
from amibake.journal import BuildJournal, Journal, JournalError
from amibake.plugins.amazon import steps_ami, steps_chroot, steps_instance
from amibake.plugins.amazon.artifact import AmiArtifact, generated_data
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_chroot import ChrootConfig
from amibake.plugins.amazon.ebs import EbsBuilder, mark_finished, record_access
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.ec2_volumes import VolumeCalls
from amibake.plugins.amazon.liveness import FINISHED_TAG, Heartbeat
from amibake.plugins.amazon.records import Tags, tag_list, tag_specs
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_chroot import ChrootState, ChrootView
from amibake.steps.context import BuildCancelled, StepContext, SturdyUi
from amibake.steps.runner import StepRunner
from amibake.ui.redact import RedactingUi

BUILDER_ID = "mitchellh.amazon.chroot"
_NOT_YET_VOLUME = ("InvalidVolume.NotFound",)
_NOT_YET_AMI = ("InvalidAMIID.NotFound",)


class ChrootGateway(Ec2Gateway, VolumeCalls):
    """The EC2 gateway with the volume, snapshot and image calls of amazon-chroot."""

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


class ChrootBuilder:
    def __init__(self, config: ChrootConfig, env: BuildEnv, *,
                 metadata_env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = env
        #: the environment the metadata endpoint is read from (None: the process's)
        self.metadata_env = metadata_env
        #: set after run(): what the cleanup could not undo (or -on-error=abort left behind)
        self.leftovers: list[str] = []

    def steps(self, st: ChrootState) -> list[BoundStep]:
        c = self.config
        sc = steps_chroot
        plan: list[tuple[str, Any]] = [
            ("StepPreValidate", steps_instance.pre_validate),
            ("StepInstanceInfo", sc.instance_info),
        ]
        if not c.from_scratch:
            plan.append(("StepSourceAMIInfo", sc.source_ami_info))
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

    def _journal(self, run_id: str) -> BuildJournal:
        try:
            journal = Journal(run_id).for_build(self.env.build_name)
            c = self.config
            journal.started(region=c.region, ami_name=c.ami_name, ami_regions=list(c.ami_regions))
            record_access(journal, c.aws_access(), [c.region, *c.ami_regions])
        except (OSError, ValueError) as exc:
            raise BuildError(
                f"cannot write the run journal (set AMIBAKE_STATE_DIR to a writable directory): {exc}"
            ) from exc
        return journal

    def run(self, hooks: Hooks) -> AmiArtifact | None:
        c = self.config
        run_uuid = self.env.run_uuid or str(uuid.uuid4())
        run_id = self.env.run_id or run_uuid
        for secret in (c.secret_key, c.token, c.mfa_code):
            if secret and secret not in self.env.secrets:
                self.env.secrets.append(secret)
        ui = SturdyUi(RedactingUi(self.env.ui, self.env.secrets))
        ctx = StepContext(ui=ui, cancel=self.env.cancel, on_error=self.env.on_error, debug=self.env.debug)
        gateway = ChrootGateway(c.aws_access(), c.polling(), pause=ctx.pause)
        gateway.on_journal_error = ctx.journal_failed
        try:
            gateway.validate_credentials()
        except BuildError as exc:
            raise BuildError(f"AWS credentials could not be validated: {exc}") from exc
        journal = self._journal(run_id)
        gateway.journal = journal
        st = ChrootState(config=cast(EbsConfig, ChrootView(c)), ec2=gateway, env=self.env, hooks=hooks,
                         run_uuid=run_uuid, ui_=ui, chroot_config=c, metadata_env=self.metadata_env)
        heartbeat = Heartbeat(gateway, journal).start()
        try:
            StepRunner(ctx).run(self.steps(st))
        except BaseException as exc:
            self.leftovers = list(ctx.leftovers)
            if isinstance(exc, BuildCancelled) or ctx.cancelled:
                EbsBuilder._report_interrupted(cast(EbsBuilder, self), ui, journal)
            raise
        finally:
            heartbeat.stop()
            self.leftovers = list(ctx.leftovers)
            journal.journal.close()
        try:
            journal.finished(st.amis)
        except JournalError as exc:
            ui.error(f"{exc}. The build's AMIs are marked {FINISHED_TAG} in AWS, so `amibake cleanup` "
                     "keeps them.")
        journal.journal.close()
        if not st.amis:
            return None
        return AmiArtifact(
            amis=dict(st.amis),
            gateway=gateway,
            builder_id=BUILDER_ID,
            state_data={"generated_data": generated_data(st.build_data())},
        )
