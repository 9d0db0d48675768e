"""The amazon-instance builder: launch an instance, provision it, bundle its volume and upload the bundle
to S3 over the communicator, register an instance-store AMI from the uploaded manifest.

The step sequence is Packer's (builder/instance/builder.go ``Run``); the steps it shares with
amazon-ebs are amazon-ebs's own functions (steps_instance, steps_ami), its own are in steps_bundle.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from amibake.api import BuildEnv, Hooks, Ui
from amibake.errors import BuildError
from amibake.journal import BuildJournal, Journal, JournalError
from amibake.plugins.amazon import steps_ami, steps_bundle, steps_instance
from amibake.plugins.amazon.artifact import AmiArtifact, generated_data
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.config_instance import InstanceConfig
from amibake.plugins.amazon.ebs import record_access
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.liveness import FINISHED_TAG, Heartbeat
from amibake.plugins.amazon.state import BoundStep
from amibake.plugins.amazon.steps_ami import Connector
from amibake.plugins.amazon.steps_bundle import BundleCalls, InstanceLaunch, InstanceState
from amibake.steps.context import BuildCancelled, StepContext, SturdyUi
from amibake.steps.runner import StepRunner
from amibake.ui.redact import RedactingUi

BUILDER_ID = "mitchellh.amazon.instance"


class InstanceGateway(Ec2Gateway, BundleCalls):
    """The EC2 gateway with the bundle's calls."""


class InstanceBuilder:
    def __init__(self, config: InstanceConfig, env: BuildEnv, *, connector: Connector | None = None) -> None:
        self.config = config
        self.env = env
        self.connector: Connector = connector or steps_ami.ssh_connector
        #: set after run(): what the cleanup could not undo (or -on-error=abort left behind)
        self.leftovers: list[str] = []

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
        ui = SturdyUi(RedactingUi(self.env.ui, self.env.secrets))
        ctx = StepContext(ui=ui, cancel=self.env.cancel, on_error=self.env.on_error, debug=self.env.debug)
        gateway = InstanceGateway(c.aws_access(), c.polling(), pause=ctx.pause)
        gateway.on_journal_error = ctx.journal_failed
        try:
            gateway.validate_credentials()
        except BuildError as exc:
            raise BuildError(f"AWS credentials could not be validated: {exc}") from exc
        journal = self._journal(run_id)
        gateway.journal = journal
        # the shared steps read the options through the launch view (amazon-ebs's options it has not: off)
        st = InstanceState(config=cast(EbsConfig, InstanceLaunch(c)), ec2=gateway, env=self.env, hooks=hooks,
                           run_uuid=run_uuid, ui_=ui, instance_config=c)
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
