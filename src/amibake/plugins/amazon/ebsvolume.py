"""The amazon-ebsvolume builder: launch an instance with ``ebs_volumes``, provision it, keep the volumes
(and snapshots of those with ``snapshot_volume``); the instance is removed.

The step sequence is Packer's (builder/ebsvolume/builder.go ``Run``); the steps it shares with
amazon-ebs are amazon-ebs's own functions (steps_instance, steps_ami).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

from amibake.api import BuildEnv, Hooks, Ui
from amibake.errors import BuildError
from amibake.journal import BuildJournal, Journal, JournalError
from amibake.plugins.amazon import steps_ami, steps_instance, steps_volume
from amibake.plugins.amazon.artifact import generated_data
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_ebsvolume import EbsVolumeConfig
from amibake.plugins.amazon.ebs import _public_url
from amibake.plugins.amazon.ec2 import AwsError, Ec2Gateway
from amibake.plugins.amazon.ec2_volumes import VolumeCalls
from amibake.plugins.amazon.liveness import FINISHED_TAG, Heartbeat
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_ami import Connector
from amibake.plugins.amazon.steps_volume import VolumeLaunch, VolumeState
from amibake.steps.context import BuildCancelled, StepContext, SturdyUi
from amibake.steps.runner import StepRunner
from amibake.ui.redact import RedactingUi

BUILDER_ID = "mitchellh.amazon.ebsvolume"


class VolumeGateway(Ec2Gateway, VolumeCalls):
    """The EC2 gateway with the volume and snapshot calls."""


@dataclass
class VolumeArtifact:
    """Packer's ebsvolume Artifact: the kept volumes and the snapshots, per region."""

    volumes: dict[str, list[str]]
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    gateway: Ec2Gateway | None = None
    builder_id: str = BUILDER_ID
    state_data: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def _ids(self) -> list[str]:
        parts = [f"{region}:{vid}" for region, vids in self.volumes.items() for vid in vids]
        parts += [f"{region}:{sid}" for region, sids in self.snapshots.items() for sid in sids]
        return sorted(parts)

    @property
    def id(self) -> str:
        return ",".join(self._ids())

    def string(self) -> str:
        return "EBS Volumes were created:\n\n" + "\n".join(self._ids())

    def __str__(self) -> str:
        return self.string()

    def state(self, name: str) -> Any:
        return self.state_data.get(name)

    def destroy(self) -> None:
        """Delete the volumes (Packer's Destroy leaves the snapshots)."""
        if self.gateway is None:
            raise BuildError("this artifact has no AWS connection to destroy its volumes with")
        errors: list[str] = []
        for region, vids in sorted(self.volumes.items()):
            for vid in vids:
                try:
                    self.gateway.delete_volume(vid, region)
                except AwsError as exc:
                    errors.append(f"{region}: {exc}")
        if errors:
            raise BuildError("\n".join(errors))


class EbsVolumeBuilder:
    def __init__(self, config: EbsVolumeConfig, env: BuildEnv, *, connector: Connector | None = None) -> None:
        self.config = config
        self.env = env
        self.connector: Connector = connector or steps_ami.ssh_connector
        #: set after run(): what the cleanup could not undo (or -on-error=abort left behind)
        self.leftovers: list[str] = []

    def steps(self, st: VolumeState) -> list[BoundStep]:
        spot = self.config.is_spot_instance()
        launch = steps_instance.run_spot_instance if spot else steps_instance.run_source_instance
        plan: list[tuple[str, Any]] = [
            ("StepSourceAMIInfo", steps_instance.source_ami_info),
            ("StepNetworkInfo", steps_instance.network_info),
            ("StepKeyPair", steps_instance.key_pair),
            ("StepSecurityGroup", steps_instance.security_group),
            ("StepIamInstanceProfile", steps_instance.iam_instance_profile),
            ("StepRollbackVolumes", steps_volume.rollback_volumes),
            ("StepRunSpotInstance" if spot else "StepRunSourceInstance", launch),
            ("StepTagEBSVolumes", steps_volume.tag_volumes),
            ("StepConnect", steps_ami.make_connect_step(self.connector)),
            ("StepProvision", steps_ami.provision),
            ("StepCleanupTempKeys", steps_ami.cleanup_temp_keys),
            ("StepStopEBSBackedInstance", steps_ami.stop_instance),
            ("StepModifyEBSBackedInstance", steps_ami.modify_instance),
            ("StepSnapshotEBSVolumes", steps_volume.snapshot_volumes),
            ("StepMarkFinished", steps_volume.mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    def _journal(self, run_id: str) -> BuildJournal:
        try:
            journal = Journal(run_id).for_build(self.env.build_name)
            c = self.config
            journal.started(region=c.region, ami_name="", ami_regions=[])
            access = c.aws_access()
            endpoint = _public_url(access.endpoint_ec2 or os.environ.get("AWS_ENDPOINT_URL_EC2", "")
                                   or os.environ.get("AWS_ENDPOINT_URL", ""))
            profile = access.profile or os.environ.get("AWS_PROFILE", "")
            role = access.assume_role.role_arn if access.assume_role else ""
            journal.access(c.region, endpoint=endpoint, profile=profile, role_arn=role)
        except (OSError, ValueError) as exc:
            raise BuildError(
                f"cannot write the run journal (set AMIBAKE_STATE_DIR to a writable directory): {exc}"
            ) from exc
        return journal

    def run(self, hooks: Hooks) -> VolumeArtifact | None:
        c = self.config
        run_uuid = self.env.run_uuid or str(uuid.uuid4())
        run_id = self.env.run_id or run_uuid
        for secret in (c.ssh_password, c.ssh_bastion_password, c.secret_key, c.token, c.mfa_code):
            if secret and secret not in self.env.secrets:
                self.env.secrets.append(secret)
        ui = SturdyUi(RedactingUi(self.env.ui, self.env.secrets))
        ctx = StepContext(ui=ui, cancel=self.env.cancel, on_error=self.env.on_error, debug=self.env.debug)
        gateway = VolumeGateway(c.aws_access(), c.polling(), pause=ctx.pause)
        gateway.on_journal_error = ctx.journal_failed
        try:
            gateway.validate_credentials()
        except BuildError as exc:
            raise BuildError(f"AWS credentials could not be validated: {exc}") from exc
        journal = self._journal(run_id)
        gateway.journal = journal
        # the shared steps read the options through the launch view (ebs_volumes as launch devices)
        st = VolumeState(config=cast(EbsConfig, VolumeLaunch(c)), ec2=gateway, env=self.env, hooks=hooks,
                         run_uuid=run_uuid, ui_=ui, volume_config=c)
        heartbeat = Heartbeat(gateway, journal).start()
        try:
            StepRunner(ctx).run(self.steps(st))
        except BaseException as exc:
            self.leftovers = list(ctx.leftovers)
            if isinstance(exc, BuildCancelled) or ctx.cancelled:
                self._report_interrupted(ui, journal)
            raise
        finally:
            heartbeat.stop()
            self.leftovers = list(ctx.leftovers)
            journal.journal.close()
        try:
            journal.finished({})
        except JournalError as exc:
            ui.error(f"{exc}. The build's volumes and snapshots are marked {FINISHED_TAG} in AWS, so "
                     "`amibake cleanup` keeps them.")
        journal.journal.close()
        artifact = VolumeArtifact(
            volumes={r: list(v) for r, v in st.volumes.items()},
            snapshots={r: list(s) for r, s in st.volume_snapshots.items()},
            gateway=gateway,
            state_data={"generated_data": generated_data(st.build_data())},
        )
        ui.say(f"Created Volumes: {artifact}")
        return artifact

    def _report_interrupted(self, ui: Ui, journal: BuildJournal) -> None:
        """After a cancelled build has unwound: what its cleanup removed and what is left."""
        removed, left = journal.removed_log, journal.live()
        if removed:
            ui.say(f"Cleanup after the interruption removed {len(removed)} resource(s): "
                   + ", ".join(removed))
        else:
            ui.say("Cleanup after the interruption: nothing had been created yet.")
        if left:
            ui.error("Left behind: " + ", ".join(left)
                     + f". Remove them with: amibake cleanup --run {journal.run_id}")
