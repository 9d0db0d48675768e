"""The amazon-ebssurrogate builder: launch a surrogate instance with extra volumes, provision it, then
register an AMI from snapshots of those volumes (or, with ``use_create_image``, make the chosen
volume the instance's root and create the image from it).

The step sequence is Packer's (builder/ebssurrogate/builder.go ``Run``); the steps it shares with
amazon-ebs are amazon-ebs's own functions (steps_instance, steps_ami).
"""

from __future__ import annotations

from typing import Any, cast

from amibake.api import BuildEnv, Hooks, Ui
from amibake.plugins.amazon import steps_ami, steps_instance, steps_password, steps_surrogate
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_surrogate import EbsSurrogateConfig
from amibake.plugins.amazon.ebs import EbsBuilder, mark_finished
from amibake.plugins.amazon.ebsvolume import VolumeGateway
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_ami import Connector
from amibake.plugins.amazon.steps_surrogate import SurrogateLaunch, SurrogateState

BUILDER_ID = "mitchellh.amazon.ebssurrogate"


class EbsSurrogateBuilder(EbsBuilder):
    def __init__(self, config: EbsSurrogateConfig, env: BuildEnv, *,
                 connector: Connector | None = None) -> None:
        super().__init__(cast(EbsConfig, SurrogateLaunch(config)), env, connector=connector)
        self.surrogate = config

    def steps(self, st: Any) -> list[BoundStep]:
        c = self.surrogate
        spot = c.is_spot_instance()
        launch = steps_instance.run_spot_instance if spot else steps_instance.run_source_instance
        if c.use_create_image:
            volumes: tuple[str, Any] = ("StepSwapVolumes", steps_surrogate.swap_volumes)
            image: tuple[str, Any] = ("StepCreateAMI", steps_ami.create_ami)
        else:
            volumes = ("StepSnapshotVolumes", steps_surrogate.snapshot_volumes)
            image = ("StepRegisterAMI", steps_surrogate.register_ami)
        plan: list[tuple[str, Any]] = [
            ("StepPreValidate", steps_instance.pre_validate),
            ("StepSourceAMIInfo", steps_instance.source_ami_info),
            ("StepNetworkInfo", steps_instance.network_info),
            ("StepKeyPair", steps_instance.key_pair),
            ("StepSecurityGroup", steps_instance.security_group),
            ("StepIamInstanceProfile", steps_instance.iam_instance_profile),
            ("StepCleanupVolumes", steps_instance.cleanup_volumes),
            *([("StepCleanupSwappedVolumes", steps_surrogate.cleanup_swapped_volumes)] if c.use_create_image
              else []),
            ("StepRunSpotInstance" if spot else "StepRunSourceInstance", launch),
            ("StepGetPassword", steps_password.get_password),
            ("StepConnect", steps_ami.make_connect_step(self.connector)),
            ("StepProvision", steps_ami.provision),
            ("StepCleanupTempKeys", steps_ami.cleanup_temp_keys),
            ("StepStopEBSBackedInstance", steps_ami.stop_instance),
            ("StepModifyEBSBackedInstance", steps_ami.modify_instance),
            volumes,
            ("StepDeregisterAMI", steps_ami.deregister_ami),
            image,
            ("StepAMIRegionCopy", steps_ami.region_copy),
            ("StepEnableDeprecation", steps_ami.enable_deprecation),
            ("StepEnableDeregistrationProtection", steps_ami.enable_deregistration_protection),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    gateway_class = VolumeGateway
    builder_id = BUILDER_ID

    @property
    def options(self) -> EbsSurrogateConfig:
        return self.surrogate

    def _new_state(self, gateway: Any, hooks: Hooks, run_uuid: str, ui: Ui) -> SurrogateState:
        return SurrogateState(config=self.config, ec2=gateway, env=self.env, hooks=hooks, run_uuid=run_uuid,
                              ui_=ui, surrogate_config=self.surrogate)
