"""The amazon-ebsvolume builder: launch an instance with ``ebs_volumes``, provision it, keep the volumes
(and snapshots of those with ``snapshot_volume``); the instance is removed.

The step sequence is Packer's (builder/ebsvolume/builder.go ``Run``); the steps it shares with
amazon-ebs are amazon-ebs's own functions (steps_instance, steps_ami).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from amibake.api import Hooks, Ui
from amibake.errors import BuildError
from amibake.journal import BuildJournal
from amibake.plugins.amazon import steps_ami, steps_instance, steps_password, steps_volume
from amibake.plugins.amazon.artifact import generated_data
from amibake.plugins.amazon.builder import AmazonBuilder, record_access
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_ebsvolume import EbsVolumeConfig
from amibake.plugins.amazon.ec2 import AwsError, Ec2Gateway
from amibake.plugins.amazon.ec2_volumes import VolumeCalls
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_volume import VolumeLaunch, VolumeState

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


class EbsVolumeBuilder(AmazonBuilder):
    config: EbsVolumeConfig
    gateway_class = VolumeGateway

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
            ("StepGetPassword", steps_password.get_password),
            ("StepConnect", steps_ami.make_connect_step(self.connector)),
            ("StepProvision", steps_ami.provision),
            ("StepCleanupTempKeys", steps_ami.cleanup_temp_keys),
            ("StepStopEBSBackedInstance", steps_ami.stop_instance),
            ("StepModifyEBSBackedInstance", steps_ami.modify_instance),
            ("StepSnapshotEBSVolumes", steps_volume.snapshot_volumes),
            ("StepMarkFinished", steps_volume.mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    def _journal_started(self, journal: BuildJournal) -> None:
        c = self.config
        journal.started(region=c.region, ami_name="", ami_regions=[])
        record_access(journal, c.aws_access(), [c.region])

    def _new_state(self, gateway: Any, hooks: Hooks, run_uuid: str, ui: Ui) -> VolumeState:
        # the shared steps read the options through the launch view (ebs_volumes as launch devices)
        return VolumeState(config=cast(EbsConfig, VolumeLaunch(self.config)), ec2=gateway, env=self.env,
                           hooks=hooks, run_uuid=run_uuid, ui_=ui, volume_config=self.config)

    def _delivered(self, st: Any) -> dict[str, str]:
        return {}  # volumes and snapshots, not AMIs: protected by their amibake:finished tag

    finished_note = (f"The build's volumes and snapshots are marked {FINISHED_TAG} in AWS, so "
                     "`amibake cleanup` keeps them.")

    def _artifact(self, st: Any, gateway: Any, ui: Ui) -> VolumeArtifact:
        artifact = VolumeArtifact(
            volumes={r: list(v) for r, v in st.volumes.items()},
            snapshots={r: list(s) for r, s in st.volume_snapshots.items()},
            gateway=gateway,
            state_data={"generated_data": generated_data(st.build_data())},
        )
        ui.say(f"Created Volumes: {artifact}")
        return artifact
