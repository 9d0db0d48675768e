"""What every amazon builder's run shares: its secrets, the run journal (with the endpoint and profile
of each region it uses), credentials checked before anything is created, the heartbeat, Packer's
step runner with its undo stack, the report of an interrupted build, the journal's ``finished``
record. A builder (:class:`~amibake.plugins.amazon.ebs.EbsBuilder` and the others) gives its
steps and, where it differs from amazon-ebs, its gateway, state, delivery and artifact.
"""

from __future__ import annotations

import os
import urllib.parse
import uuid
from typing import Any

from amibake.api import BuildEnv, Hooks, Ui
from amibake.aws.access import AwsAccess
from amibake.errors import BuildError
from amibake.journal import BuildJournal, Journal, JournalError
from amibake.plugins.amazon import steps_ami
from amibake.plugins.amazon.artifact import BUILDER_ID, AmiArtifact, generated_data
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.liveness import FINISHED_TAG, Heartbeat
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.plugins.amazon.steps_ami import Connector
from amibake.steps.context import BuildCancelled, StepContext, SturdyUi
from amibake.steps.runner import Step, StepRunner
from amibake.ui.redact import RedactingUi


class AmazonBuilder:
    """The run of an amazon builder; subclasses give :meth:`steps` (and the hooks below)."""

    def __init__(self, config: Any, env: BuildEnv, *, connector: Connector | None = None) -> None:
        #: the frozen, typed options of the template: the steps read them directly
        self.config = config
        self.env = env
        self.connector: Connector = connector or steps_ami.ssh_connector
        #: set after run(): what the cleanup could not undo (or -on-error=abort left behind)
        self.leftovers: list[str] = []

    def steps(self, st: Any) -> list[BoundStep]:
        raise NotImplementedError

    def runnable(self, st: Any) -> list[Step]:
        """The steps as the runner runs them: :meth:`steps`, unless a builder overlaps some."""
        return list(self.steps(st))

    # -- what a builder changes of the run (amazon-ebs's, by default) -------------------------------

    #: the gateway the steps call (a builder with calls of its own adds them with a mixin)
    gateway_class: type[Ec2Gateway] = Ec2Gateway
    #: the artifact's builder id (Packer's)
    builder_id: str = BUILDER_ID

    @property
    def options(self) -> Any:
        """The builder's own typed config (``config`` may be a view of it the shared steps read)."""
        return self.config

    def _secrets(self) -> tuple[str, ...]:
        c = self.options
        return (c.ssh_password, c.ssh_bastion_password, c.secret_key, c.token, c.mfa_code,
                getattr(c, "winrm_password", ""))

    def _journal_started(self, journal: BuildJournal) -> None:
        c = self.options
        journal.started(region=c.region, ami_name=c.ami_name, ami_regions=list(c.ami_regions))
        record_access(journal, c.aws_access(), [c.region, *c.ami_regions])

    def _new_state(self, gateway: Ec2Gateway, hooks: Hooks, run_uuid: str, ui: Ui) -> BuildState:
        return BuildState(config=self.config, ec2=gateway, env=self.env, hooks=hooks, run_uuid=run_uuid,
                          ui_=ui)

    def _delivered(self, st: BuildState) -> dict[str, str]:
        """The journal's ``finished`` record: region -> AMI id of what the build delivers."""
        return dict(st.amis)

    #: said when the ``finished`` record could not be written (the finished tag protects the delivery)
    finished_note = f"The build's AMIs are marked {FINISHED_TAG} in AWS, so `amibake cleanup` keeps them."

    def _artifact(self, st: BuildState, gateway: Ec2Gateway, ui: Ui) -> Any:
        if not st.amis:
            return None
        return AmiArtifact(amis=dict(st.amis), gateway=gateway, builder_id=self.builder_id,
                           state_data={"generated_data": generated_data(st.build_data())})

    # -- the run ------------------------------------------------------------------------------------

    def _journal(self, run_id: str) -> BuildJournal:
        try:
            journal = Journal(run_id).for_build(self.env.build_name)
            self._journal_started(journal)
        except (OSError, ValueError) as exc:
            raise BuildError(
                f"cannot write the run journal (set AMIBAKE_STATE_DIR to a writable directory): {exc}"
            ) from exc
        return journal

    def run(self, hooks: Hooks) -> Any:
        c = self.options
        run_uuid = self.env.run_uuid or str(uuid.uuid4())
        run_id = self.env.run_id or run_uuid
        for secret in self._secrets():
            if secret and secret not in self.env.secrets:
                self.env.secrets.append(secret)
        # an unwritable stdout/stderr loses lines, never stops a step or an undo
        ui = SturdyUi(RedactingUi(self.env.ui, self.env.secrets))
        ctx = StepContext(ui=ui, cancel=self.env.cancel, on_error=self.env.on_error, debug=self.env.debug)
        if hooks.has_checks():
            refuse_untestable(c)
        gateway = self.gateway_class(c.aws_access(), c.polling(), pause=ctx.pause)
        # a journal write that fails stops the build after its step; every undo still runs
        gateway.on_journal_error = ctx.journal_failed
        try:
            gateway.validate_credentials()
        except BuildError as exc:
            raise BuildError(f"AWS credentials could not be validated: {exc}") from exc
        journal = self._journal(run_id)
        gateway.journal = journal
        st = self._new_state(gateway, hooks, run_uuid, ui)
        heartbeat = Heartbeat(gateway, journal).start()
        try:
            StepRunner(ctx).run(self.runnable(st))
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
            journal.finished(self._delivered(st))
        except JournalError as exc:
            # what it delivers already carries amibake:finished (StepMarkFinished): cleanup keeps it
            ui.error(f"{exc}. {self.finished_note}")
        journal.journal.close()
        return self._artifact(st, gateway, ui)

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



def refuse_untestable(c: Any) -> None:
    """``-checks`` on a build that makes no AMI to launch, or names no instance type to test it on."""
    if c.skip_create_ami:
        raise BuildError("-checks: skip_create_ami is set, so this build makes no AMI to test")
    if not c.instance_type:
        raise BuildError("-checks: the test instance is launched on demand with instance_type; this build "
                         "names only spot_instance_types")


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
