"""StepTestAMI: amibake's test-before-distribute for amazon-ebs (``amibake build -checks FILE``).

Between the AMI's creation and its region copies, sharing and attributes, a fresh instance is
launched **from the new AMI** with its own temporary key pair and security group (or the template's
own key and groups, exactly as the build instance got them), reached through the builder's
communicator, and the checks run on it as provisioners. The test instance, key pair and group are
removed whatever happens (each registered for removal the moment it exists, and journaled by the
gateway like every other create call, so a SIGKILL leaves nothing ``amibake cleanup`` cannot find).
A failed check fails the step: the build then unwinds, and the AMI and its snapshots are
deregistered and deleted by StepCreateAMI's rollback before anything was copied or shared.
"""

from __future__ import annotations

from collections.abc import Callable

from amibake.errors import BuildError
from amibake.plugins.amazon import steps_instance, steps_password
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.plugins.amazon.steps_ami import Connector, make_connect_step
from amibake.steps.context import StepContext
from amibake.steps.runner import StepRunner


def make_test_step(connector: Connector) -> Callable[[BuildState, StepContext], None]:
    def test_ami(st: BuildState, ctx: StepContext) -> None:
        """StepTestAMI: launch the new AMI, run the checks on it, remove the test instance."""
        if not st.hooks.has_checks():
            return
        s = st.config
        ami = st.amis.get(st.region) or st.intermediary_ami
        if not ami:
            raise BuildError("checks need the new AMI, and this build made none")
        images = st.ec2.describe_images(image_ids=[ami])
        if not images:
            raise BuildError(f"checks: the new AMI {ami} is not visible")
        st.ui.say(f"Testing AMI {ami} on a fresh instance before distributing it...")
        test = BuildState(config=s, ec2=st.ec2, env=st.env, hooks=st.hooks, run_uuid=st.run_uuid,
                          created_at=st.created_at, ui_=st.ui)
        test.source_image = images[0]
        test.vpc_id, test.subnet_id = st.vpc_id, st.subnet_id
        test.availability_zone = st.availability_zone
        test.instance_profile = st.instance_profile
        # the test instance's own cleanup stack: its teardowns run when the checks end, pass or fail
        inner = StepContext(ui=ctx.ui, cancel=ctx.cancel, on_error=ctx.on_error, debug=ctx.debug)
        plan = [
            ("StepTestKeyPair", steps_instance.key_pair),
            ("StepTestSecurityGroup", steps_instance.security_group),
            ("StepRunTestInstance", steps_instance.run_source_instance),
            # a Windows test instance has a password of its own (no-op unless winrm without winrm_password)
            ("StepTestGetPassword", steps_password.get_password),
            ("StepConnectTestInstance", make_connect_step(connector)),
            ("StepRunChecks", run_checks),
        ]
        try:
            StepRunner(inner).run([BoundStep(name, fn, test) for name, fn in plan])
        finally:
            ctx.leftovers.extend(inner.leftovers)
            for problem in inner.journal_errors:
                ctx.journal_failed(problem)

    return test_ami


def run_checks(st: BuildState, ctx: StepContext) -> None:
    """The checks, over the test instance's communicator (with the test instance's build data)."""
    ctx.pause("run-checks")
    st.hooks.run_checks(st.comm, st.build_data())
