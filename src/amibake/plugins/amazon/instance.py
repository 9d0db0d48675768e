"""The amazon-instance builder: launch an instance, provision it, bundle its volume and upload the bundle
to S3 over the communicator, register an instance-store AMI from the uploaded manifest.

The step sequence is Packer's (builder/instance/builder.go ``Run``); the steps it shares with
amazon-ebs are amazon-ebs's own functions (steps_instance, steps_ami), its own are in steps_bundle.
"""

from __future__ import annotations

from typing import Any, cast

from amibake.api import Hooks, Ui
from amibake.plugins.amazon import steps_ami, steps_bundle, steps_instance, steps_password
from amibake.plugins.amazon.builder import AmazonBuilder
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_bundle import BundleCalls, InstanceLaunch, InstanceState

BUILDER_ID = "mitchellh.amazon.instance"


class InstanceGateway(Ec2Gateway, BundleCalls):
    """The EC2 gateway with the bundle's calls."""


class InstanceBuilder(AmazonBuilder):
    config: InstanceConfig
    gateway_class = InstanceGateway
    builder_id = BUILDER_ID

    def steps(self, st: InstanceState) -> list[BoundStep]:
        spot = self.config.is_spot_instance()
        launch = steps_instance.run_spot_instance if spot else steps_instance.run_source_instance
        plan: list[tuple[str, Any]] = [
            ("StepPreValidate", steps_instance.pre_validate),
            ("StepSourceAMIInfo", steps_bundle.source_ami_info),
            ("StepNetworkInfo", steps_instance.network_info),
            ("StepKeyPair", steps_instance.key_pair),
            ("StepSecurityGroup", steps_instance.security_group),
            ("StepIamInstanceProfile", steps_instance.iam_instance_profile),
            ("StepRunSpotInstance" if spot else "StepRunSourceInstance", launch),
            ("StepGetPassword", steps_password.get_password),
            ("StepConnect", steps_ami.make_connect_step(self.connector)),
            ("StepProvision", steps_ami.provision),
            ("StepCleanupTempKeys", steps_ami.cleanup_temp_keys),
            ("StepUploadX509Cert", steps_bundle.upload_x509_cert),
            ("StepBundleVolume", steps_bundle.bundle_volume),
            ("StepUploadBundle", steps_bundle.upload_bundle),
            ("StepDeregisterAMI", steps_ami.deregister_ami),
            ("StepRegisterAMI", steps_bundle.register_ami),
            ("StepAMIRegionCopy", steps_ami.region_copy),
            ("StepEnableDeprecation", steps_ami.enable_deprecation),
            ("StepEnableDeregistrationProtection", steps_ami.enable_deregistration_protection),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", steps_bundle.mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    def _new_state(self, gateway: Any, hooks: Hooks, run_uuid: str, ui: Ui) -> InstanceState:
        # the shared steps read the options through the launch view (amazon-ebs's options it has not: off)
        return InstanceState(config=cast(EbsConfig, InstanceLaunch(self.config)), ec2=gateway, env=self.env,
                             hooks=hooks, run_uuid=run_uuid, ui_=ui, instance_config=self.config)
