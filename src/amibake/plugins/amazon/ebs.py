"""The amazon-ebs builder: launch a source instance, provision it, snapshot it into an AMI.

The step sequence is Packer's (builder/ebs/builder.go ``Run``), with fewer EC2 calls: resources are
tagged in their create calls, CreateImage carries the description, and waits that already saw the
data a later Describe would fetch replace that Describe.
"""

from __future__ import annotations

import os

from amibake.journal import now_iso
from amibake.plugins.amazon import steps_ami, steps_check, steps_instance, steps_password
from amibake.plugins.amazon.builder import AmazonBuilder
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.steps.context import StepContext
from amibake.steps.overlap import ConcurrentSteps, start_early_teardown
from amibake.steps.runner import Step

#: the steps whose temporaries (key pair, security group, IAM profile, the instance and its volumes,
#: the connection) are no longer needed once the AMI is available and tested
TEMPORARY_STEPS = frozenset({
    "StepKeyPair", "StepSecurityGroup", "StepIamInstanceProfile", "StepCleanupVolumes",
    "StepRunSourceInstance", "StepRunSpotInstance", "StepGetPassword", "StepConnect",
})


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
            ("StepAMIRegionCopy", region_copy),
            ("StepEnableDeprecation", steps_ami.enable_deprecation),
            ("StepEnableDeregistrationProtection", steps_ami.enable_deregistration_protection),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", mark_finished),
        ]
        return [BoundStep(name, fn, st) for name, fn in plan]

    def runnable(self, st: BuildState) -> list[Step]:
        """The step plan as run: the preparation steps overlapped (see ``overlaps``)."""
        bound = self.steps(st)
        if not self.overlaps():
            return list(bound)
        by_name = {b.name: b for b in bound}
        # the source AMI lookup first, alone (one Describe call): a source that does not exist, or an
        # option it refuses, fails the build before anything is created, as in Packer, and the
        # temporaries' tags may render its data; then the key pair, security group (after the
        # network look-up it needs) and IAM profile at once
        lanes: list[list[Step]] = [
            [by_name["StepKeyPair"]],
            [by_name["StepIamInstanceProfile"]],
            [by_name["StepNetworkInfo"], by_name["StepSecurityGroup"]],
        ]
        grouped = {step.name for lane in lanes for step in lane}
        out: list[Step] = []
        for step in bound:
            if step.name == "StepSourceAMIInfo":
                out += [step, ConcurrentSteps(lanes)]
            elif step.name not in grouped:
                out.append(step)
        return out

    def overlaps(self) -> bool:
        """See :func:`overlapping`."""
        return overlapping(self.env.debug, self.env.on_error)


def overlapping(debug: bool, on_error: str) -> bool:
    """Steps overlap unless the build runs them one at a time for a person: with ``-debug`` (a
    pause after each step), ``-on-error=ask`` (a failed step is retried alone) or pause points
    (``AMIBAKE_PAUSE_AT``: the build stops at one point, not one lane of it). The temporaries go
    early only when a failure would remove them anyway: ``-on-error=cleanup``, the default."""
    return not debug and on_error == "cleanup" and not os.environ.get("AMIBAKE_PAUSE_AT", "").strip()


def region_copy(st: BuildState, ctx: StepContext) -> None:
    """StepAMIRegionCopy, with the temporaries removed while the copies wait (the AMI is available
    in the build region, and tested with -checks: nothing needs the instance any more) and each
    copy's attributes set as it becomes available. Only when there are copies to wait for, and only
    when steps overlap (:func:`overlapping`)."""
    s = st.config
    if overlapping(ctx.debug, ctx.on_error) and not s.skip_create_ami and s.copy_regions(st.region):
        start_early_teardown(ctx, TEMPORARY_STEPS, "the temporary resources' cleanup")
        # each copy gets its launch permissions (StepModifyAMIAttributes) as it becomes available
        st.attributes_per_copy = True
    steps_ami.region_copy(st, ctx)


def mark_finished(st: BuildState, ctx: StepContext) -> None:
    """Mark what the build delivers on the resources themselves, in every region, before the
    journal's ``finished`` record: ``amibake cleanup`` never deletes what carries the mark, even if
    the local journal is damaged or lost. A failure here fails the build (and rolls the AMIs back)."""
    stamp = {FINISHED_TAG: now_iso()}
    for region, ami in sorted(st.amis.items()):
        st.ec2.create_tags([ami, *st.snapshots.get(region, [])], stamp, region)
