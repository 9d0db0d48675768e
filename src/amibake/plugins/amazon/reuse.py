"""amazon-ebs's side of ``-skip-unchanged`` and ``amibake plan``: an AMI found by its content
fingerprint is converged instead of rebuilt.

Nothing here launches an instance. Resolving the source AMI and finding images are
DescribeImages calls; a converge makes only what is missing: copies in regions that have none
with the fingerprint, tags that differ, then the sharing, deprecation and protection steps of a
build (idempotent calls), and the ``amibake:finished`` mark on what it made.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from amibake import fingerprint
from amibake.api import BuildEnv, FoundImage, Hooks, NothingToReuse
from amibake.errors import BuildError
from amibake.plugins.amazon import steps_ami, steps_instance
from amibake.plugins.amazon.artifact import AmiArtifact, generated_data
from amibake.plugins.amazon.config import EbsConfig
from amibake.plugins.amazon.ec2 import AwsError, Ec2Gateway, Image
from amibake.plugins.amazon.ec2api import Ec2Api
from amibake.plugins.amazon.liveness import parse_time
from amibake.plugins.amazon.state import BoundStep, BuildState
from amibake.steps.context import StepContext, SturdyUi
from amibake.steps.runner import StepRunner
from amibake.ui.redact import RedactingUi


class AmiReuse:
    def __init__(self, config: EbsConfig, env: BuildEnv) -> None:
        self.config = config
        self.env = env
        self.ui = SturdyUi(RedactingUi(env.ui, env.secrets))
        self.gateway = Ec2Gateway(config.aws_access(), config.polling())
        self.source_image: Image | None = None
        #: images seen by find / newest_of_build, by id (a converge needs no second Describe)
        self.seen: dict[str, Image] = {}

    def _state(self, gateway: Ec2Api, hooks: Any = None) -> BuildState:
        st = BuildState(config=self.config, ec2=gateway, env=self.env, hooks=hooks,
                        run_uuid=self.env.run_uuid or str(uuid.uuid4()), ui_=self.ui)
        st.source_image = self.source_image
        return st

    def _ctx(self) -> StepContext:
        return StepContext(ui=self.ui, cancel=self.env.cancel, on_error=self.env.on_error)

    def resolve(self) -> dict[str, str]:
        if self.config.skip_create_ami:
            raise NothingToReuse("skip_create_ami is set: this build makes no AMI to reuse")
        st = self._state(self.gateway)
        steps_instance.source_ami_info(st, self._ctx())
        self.source_image = st.source_image
        assert st.source_image is not None
        return {fingerprint.SOURCE_IMAGE: st.source_image.id}

    def _images(self, filters: dict[str, list[str]], region: str | None = None) -> list[Image]:
        try:
            found = self.gateway.describe_images(
                owners=["self"], filters={**filters, "state": ["available"]}, region=region)
        except AwsError as exc:
            raise BuildError(f"Error looking for AMIs by fingerprint: {exc}") from exc
        self.seen.update({i.id: i for i in found})
        return sorted(found, key=lambda i: (i.creation_date, i.id), reverse=True)

    def find(self, digest: str, max_age: float | None) -> FoundImage | None:
        for img in self._images({f"tag:{fingerprint.TAG}": [digest]}):
            if max_age is not None and _age(img.creation_date) > max_age:
                continue
            return FoundImage(img.id, self.gateway.region, digest, img.creation_date)
        return None

    def newest_of_build(self) -> FoundImage | None:
        imgs = self._images({"tag:amibake:build": [self.env.build_name], "tag-key": [fingerprint.TAG]})
        if not imgs:
            return None
        img = imgs[0]
        return FoundImage(img.id, self.gateway.region, img.tags.get(fingerprint.TAG, ""), img.creation_date)

    def resources(self, image: FoundImage | None) -> list[str]:
        c = self.config
        region = self.gateway.region
        copies = c.copy_regions(region)
        if image is not None:
            have = {r for r in copies if self._images({f"tag:{fingerprint.TAG}": [image.fingerprint]}, r)}
            missing = [r for r in copies if r not in have]
            out = [f"AMI copy in {r} (and its snapshots)" for r in missing]
            img = self.seen.get(image.id)
            if img is not None:
                tags = self._missing_tags(self._state(self.gateway), img, image.fingerprint)
                if tags:
                    out.append(f"tags on {image.id}: " + ", ".join(sorted(tags)))
            if c.all_snapshot_tags:
                out.append(f"snapshot tags on the snapshots of {image.id}")
            if c.ami_users or c.ami_groups or c.ami_org_arns or c.ami_ou_arns or c.snapshot_users:
                out.append("launch/volume permissions (sharing)")
            if c.deprecate_at:
                out.append("deprecation time")
            return out
        out = []
        if c.communicator != "none" and not c.ssh_keypair_name and not c.ssh_private_key_file:
            out.append("temporary key pair")
        if not c.security_group_ids and not c.security_group_id and c.security_group_filter.empty():
            out.append("temporary security group")
        if c.temporary_iam_instance_profile_policy_document is not None:
            out.append("temporary IAM role and instance profile")
        kind = "spot instance" if c.is_spot_instance() else "instance"
        out.append(f"{kind} ({c.instance_type or ', '.join(c.spot_instance_types)}) from the source AMI")
        extra = len(c.launch_block_device_mappings)
        out.append("volumes of the instance: the source AMI's" + (f" and {extra} launch block device(s)"
                                                                   if extra else ""))
        out.append("snapshots of the AMI's volumes")
        out.append(f"AMI in {region}")
        out += [f"AMI copy in {r} (and its snapshots)" for r in copies]
        return out

    def _missing_tags(self, st: BuildState, img: Image, digest: str) -> dict[str, str]:
        """The template's tags (and the fingerprint) that ``img`` lacks or has with another value."""
        want = {**st.render_tags(self.config.all_tags), fingerprint.TAG: digest}
        return {k: v for k, v in want.items() if img.tags.get(k) != v}

    def converge(self, image: FoundImage, hooks: Hooks) -> AmiArtifact:
        from amibake.journal import JournalError, now_iso
        from amibake.plugins.amazon.ebs import EbsBuilder
        from amibake.plugins.amazon.liveness import FINISHED_TAG

        env, ui = self.env, self.ui
        run_id = env.run_id or env.run_uuid or str(uuid.uuid4())
        ctx = self._ctx()
        gateway = Ec2Gateway(self.config.aws_access(), self.config.polling(), pause=ctx.pause)
        gateway.on_journal_error = ctx.journal_failed
        journal = EbsBuilder(self.config, env)._journal(run_id)
        gateway.journal = journal
        st = self._state(gateway, hooks)
        seen = self.seen.get(image.id)
        images = [seen] if seen is not None else gateway.describe_images(image_ids=[image.id])
        if not images:
            raise BuildError(f"AMI {image.id} is gone")
        found = images[0]
        st.amis[st.region] = found.id
        st.snapshots[st.region] = list(found.snapshot_ids)
        ui.say(f"Reusing AMI {found.id} ({found.name}): its content fingerprint {image.fingerprint[:16]}... "
               "is unchanged; no instance is launched")
        existing = {st.region: found}

        def copies(st: BuildState, ctx: StepContext) -> None:
            for r in self.config.copy_regions(st.region):
                there = self._images({f"tag:{fingerprint.TAG}": [image.fingerprint]}, r)
                if there:
                    existing[r] = there[0]
                    st.amis[r] = there[0].id
                    st.snapshots[r] = list(there[0].snapshot_ids)
                    ui.message(f"{r} already has {there[0].id}")
                    continue
                key = dict(self.config.region_kms_key_ids).get(r, "") if self.config.encrypt_boot else ""
                ui.say(f"Copying AMI ({found.id}) to {r}...")
                steps_ami._copy_one(st, ctx, st.region, found.id, r, key)

        def tags(st: BuildState, ctx: StepContext) -> None:
            snap_tags = st.render_tags(self.config.all_snapshot_tags)
            for r, img in existing.items():
                missing = self._missing_tags(st, img, image.fingerprint)
                if missing:
                    ui.say(f"Adding tags to AMI ({img.id})...")
                    st.ec2.create_tags([img.id], missing, region=r)
                # a snapshot's tags are not in the image's description: snapshot_tags are set each time
                snap = {**missing, **snap_tags}
                if img.snapshot_ids and snap:
                    st.ec2.create_tags(list(img.snapshot_ids), snap, region=r)

        def mark_finished(st: BuildState, ctx: StepContext) -> None:
            """``amibake:finished`` on what this converge made, and on any reused AMI without it."""
            stamp = {FINISHED_TAG: now_iso()}
            for r, ami in sorted(st.amis.items()):
                if r in existing and FINISHED_TAG in existing[r].tags:
                    continue
                st.ec2.create_tags([ami, *st.snapshots.get(r, [])], stamp, r)

        plan = [
            ("StepAMIRegionCopy", copies),
            ("StepConvergeTags", tags),
            ("StepEnableDeprecation", steps_ami.enable_deprecation),
            ("StepEnableDeregistrationProtection", steps_ami.enable_deregistration_protection),
            ("StepModifyAMIAttributes", steps_ami.modify_attributes),
            ("StepMarkFinished", mark_finished),
        ]
        try:
            StepRunner(ctx).run([BoundStep(name, fn, st) for name, fn in plan])
        finally:
            journal.journal.close()
        try:
            journal.finished(st.amis)
        except JournalError as exc:
            ui.error(str(exc))
        journal.journal.close()
        env.image_fingerprint.update(fingerprint=image.fingerprint, reused=True)
        return AmiArtifact(amis=dict(st.amis), gateway=gateway,
                           state_data={"generated_data": generated_data(st.build_info())}, reused=True)


def _age(created: str) -> float:
    """Seconds since an RFC 3339 time (an unreadable one counts as infinitely old)."""
    when = parse_time(created)
    return float("inf") if when is None else time.time() - when
