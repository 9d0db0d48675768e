"""The amazon-ebs builder: launch a source instance, provision it, snapshot it into an AMI.

The step sequence is Packer's (builder/ebs/builder.go ``Run``), with fewer EC2 calls: resources are
tagged in their create calls, CreateImage carries the description, and waits that already saw the
data a later Describe would fetch replace that Describe.
"""

from __future__ import annotations

from amibake.journal import now_iso
from amibake.plugins.amazon import steps_ami, steps_check, steps_instance, steps_password
from amibake.plugins.amazon.builder import AmazonBuilder
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.steps.context import StepContext


class EbsBuilder(AmazonBuilder):
    config: EbsConfig

    def steps(self, st: BuildState) -> list[BoundStep]:
        spot = self.config.is_spot_instance()
        launch = steps_instance.run_spot_instance if spot else steps_instance.run_source_instance
        plan = [
            ("StepPreValidate", steps_instance.pre_validate),
            ("StepSourceAMIInfo", steps_instance.source_ami_info),
            ("StepNetworkInfo", steps_instance.network_info),
            ("StepKeyPair", steps_instance.key_pair),
            ("StepSecurityGroup", steps_instance.security_group),
            ("StepIamInstanceProfile", steps_instance.iam_instance_profile),
            ("StepCleanupVolumes", steps_instance.cleanup_volumes),
            ("StepRunSpotInstance" if spot else "StepRunSourceInstance", launch),
            ("StepGetPassword", steps_password.get_password),
            ("StepConnect", steps_ami.make_connect_step(self.connector)),
            ("StepProvision", steps_ami.provision),
            ("StepCleanupTempKeys", steps_ami.cleanup_temp_keys),
            ("StepStopEBSBackedInstance", steps_ami.stop_instance),
            ("StepModifyEBSBackedInstance", steps_ami.modify_instance),
            ("StepDeregisterAMI", steps_ami.deregister_ami),
            ("StepCreateAMI", steps_ami.create_ami),
            ("StepTestAMI", steps_check.make_test_step(self.connector)),
            ("StepAMIRegionCopy", steps_ami.region_copy),
            ("StepEnableDeprecation", steps_ami.enable_deprecation),
            ("StepEnableDeregistrationProtection", steps_ami.enable_deregistration_protection),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

def mark_finished(st: BuildState, ctx: StepContext) -> None:
    """Mark what the build delivers on the resources themselves, in every region, before the
    journal's ``finished`` record: ``amibake cleanup`` never deletes what carries the mark, even if
    the local journal is damaged or lost. A failure here fails the build (and rolls the AMIs back)."""
    stamp = {FINISHED_TAG: now_iso()}
    for region, ami in sorted(st.amis.items()):
        st.ec2.create_tags([ami, *st.snapshots.get(region, [])], stamp, region)
