"""The amazon-ebs builder: launch a source instance, provision it, snapshot it into an AMI.

The step sequence is Packer's (builder/ebs/builder.go ``Run``), with fewer EC2 calls: resources are
tagged in their create calls, CreateImage carries the description, and waits that already saw the
data a later Describe would fetch replace that Describe.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid

from amibake.api import BuildEnv, Hooks, Ui
from amibake.aws.access import AwsAccess
from amibake.errors import BuildError
from amibake.journal import BuildJournal, Journal, JournalError, now_iso
from amibake.plugins.amazon import steps_ami, steps_check, steps_instance
from amibake.plugins.amazon.artifact import AmiArtifact, generated_data
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.liveness import FINISHED_TAG, Heartbeat
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.plugins.amazon.steps_ami import Connector
from amibake.steps.context import BuildCancelled, StepContext, SturdyUi
from amibake.steps.runner import StepRunner
from amibake.ui.redact import RedactingUi


class EbsBuilder:
    def __init__(self, config: EbsConfig, env: BuildEnv, *, connector: Connector | None = None) -> None:
        #: the frozen, typed options of the template: the steps read them directly
        self.config = config
        self.env = env
        self.connector: Connector = connector or steps_ami.ssh_connector
        #: set after run(): what the cleanup could not undo (or -on-error=abort left behind)
        self.leftovers: list[str] = []

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
        for secret in (c.ssh_password, c.ssh_bastion_password, c.secret_key, c.token, c.mfa_code):
            if secret and secret not in self.env.secrets:
                self.env.secrets.append(secret)
        # an unwritable stdout/stderr loses lines, never stops a step or an undo
        ui = SturdyUi(RedactingUi(self.env.ui, self.env.secrets))
        ctx = StepContext(ui=ui, cancel=self.env.cancel, on_error=self.env.on_error, debug=self.env.debug)
        if hooks.has_checks():
            _refuse_untestable(c)
        gateway = Ec2Gateway(c.aws_access(), c.polling(), pause=ctx.pause)
        # a journal write that fails stops the build after its step; every undo still runs
        gateway.on_journal_error = ctx.journal_failed
        try:
            gateway.validate_credentials()
        except BuildError as exc:
            raise BuildError(f"AWS credentials could not be validated: {exc}") from exc
        journal = self._journal(run_id)
        gateway.journal = journal
        st = BuildState(config=c, ec2=gateway, env=self.env, hooks=hooks, run_uuid=run_uuid, ui_=ui)
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
            journal.finished(st.amis)
        except JournalError as exc:
            # the AMIs already carry amibake:finished (StepMarkFinished): cleanup keeps them anyway
            ui.error(f"{exc}. The build's AMIs are marked {FINISHED_TAG} in AWS, so `amibake cleanup` "
                     "keeps them.")
        journal.journal.close()
        if not st.amis:
            return None
        return AmiArtifact(
            amis=dict(st.amis),
            gateway=gateway,
            state_data={"generated_data": generated_data(st.build_data())},
        )

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


def _refuse_untestable(c: EbsConfig) -> None:
    """``-checks`` on a build that makes no AMI to launch, or names no instance type to test it on."""
    if c.skip_create_ami:
        raise BuildError("-checks: skip_create_ami is set, so this build makes no AMI to test")
    if not c.instance_type:
        raise BuildError("-checks: the test instance is launched on demand with instance_type; this build "
                         "names only spot_instance_types")


def mark_finished(st: BuildState, ctx: StepContext) -> None:
    """Mark what the build delivers on the resources themselves, in every region, before the
    journal's ``finished`` record: ``amibake cleanup`` never deletes what carries the mark, even if
    the local journal is damaged or lost. A failure here fails the build (and rolls the AMIs back)."""
    stamp = {FINISHED_TAG: now_iso()}
    for region, ami in sorted(st.amis.items()):
        st.ec2.create_tags([ami, *st.snapshots.get(region, [])], stamp, region)


def record_access(journal: BuildJournal, access: AwsAccess, regions: list[str]) -> None:
    """Journal, per region, the endpoint and the profile or role a run reaches AWS through (never a
    credential), so that ``amibake cleanup`` talks to the same endpoint as the run did."""
    endpoint = _public_url(access.endpoint_ec2 or os.environ.get("AWS_ENDPOINT_URL_EC2", "")
                           or os.environ.get("AWS_ENDPOINT_URL", ""))
    profile = access.profile or os.environ.get("AWS_PROFILE", "")
    role = access.assume_role.role_arn if access.assume_role else ""
    for region in dict.fromkeys(regions):
        journal.access(region, endpoint=endpoint, profile=profile, role_arn=role)


def _public_url(url: str) -> str:
    """An endpoint URL without any user:password part (the journal never holds a credential)."""
    if not url:
        return ""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
