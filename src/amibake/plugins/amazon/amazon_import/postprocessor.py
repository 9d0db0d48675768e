"""The ``amazon-import`` post-processor (packer-plugin-amazon ``post-processor/import``): upload the
artifact's image file to S3, import it with EC2 VM Import (ImportImage), wait for the task, rename
the AMI by copying it (``ami_name``), tag the AMI and its snapshots, set its attributes and launch
permissions, delete the upload (unless ``skip_clean``).

Packer's order and requests, with what amibake adds: each resource is journaled by the gateway
and undone the moment something fails or the build is interrupted (the upload deleted unless
``skip_clean``, the import task cancelled, the imported AMI and its snapshots removed), where
Packer leaves them; the delivered AMI is marked ``amibake:finished``, so ``amibake cleanup``
keeps it. Its artifact is an AMI artifact of the access config's region.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from amibake.api import Artifact, BuildEnv
from amibake.errors import BuildError
from amibake.journal import Journal, JournalError, now_iso
from amibake.plugins.amazon.amazon_import.config import AmazonImportConfig
from amibake.plugins.amazon.artifact import AmiArtifact
from amibake.plugins.amazon.builder import record_access
from amibake.plugins.amazon.ec2 import Ec2Gateway
from amibake.plugins.amazon.ec2_import import TASK_DONE, ImportTask
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.steps.context import StepContext, SturdyUi
from amibake.steps.runner import StepRunner
from amibake.ui.redact import RedactingUi

BUILDER_ID = "packer.post-processor.amazon-import"


@dataclass
class _State:
    source: Path
    key: str
    region: str
    task: str = ""
    imported: ImportTask | None = None
    ami: str = ""
    snapshots: list[str] = field(default_factory=list)


@dataclass
class _Step:
    name: str
    fn: Any

    def run(self, ctx: StepContext) -> None:
        self.fn(ctx)


class AmazonImportPostProcessor:
    def __init__(self, config: AmazonImportConfig, env: BuildEnv) -> None:
        self.config = config
        self.env = env

    def post_process(self, artifact: Artifact) -> tuple[Artifact, bool, bool]:
        c = self.config
        data = artifact.state("generated_data") or {}
        key = self.env.render(c.effective_s3_key_name, data)
        source = next((f for f in artifact.files if f.endswith("." + c.format)), "")
        if not source:
            raise BuildError(f"No {c.format} image file found in artifact from builder")
        for secret in (c.secret_key, c.token, c.mfa_code):
            if secret and secret not in self.env.secrets:
                self.env.secrets.append(secret)
        ui = SturdyUi(RedactingUi(self.env.ui, self.env.secrets))
        ctx = StepContext(ui=ui, cancel=self.env.cancel, on_error=self.env.on_error, debug=self.env.debug)
        gw = Ec2Gateway(c.aws_access(), c.polling(), pause=ctx.pause)
        gw.on_journal_error = ctx.journal_failed
        try:
            gw.validate_credentials()
        except BuildError as exc:
            raise BuildError(f"AWS credentials could not be validated: {exc}") from exc
        try:
            # a journal entry of its own (the build's finished AMIs stay recorded under the build's name)
            journal = Journal(self.env.run_id or self.env.run_uuid).for_build(
                f"{self.env.build_name}/amazon-import")
            record_access(journal, c.aws_access(), [gw.region])
        except (OSError, ValueError) as exc:
            raise BuildError(f"cannot write the run journal (set AMIBAKE_STATE_DIR to a writable directory): "
                             f"{exc}") from exc
        gw.journal = journal
        st = _State(Path(source), key, gw.region)
        steps = [
            _Step("StepUploadImage", lambda x: self._upload(gw, st, x, ui)),
            _Step("StepImportImage", lambda x: self._import(gw, st, x, ui)),
            _Step("StepWaitImport", lambda x: self._wait(gw, st, x, ui)),
            _Step("StepRenameAMI", lambda x: self._rename(gw, st, x, ui)),
            _Step("StepTagAMI", lambda x: self._tag(gw, st, ui)),
            _Step("StepModifyAMIAttributes", lambda x: self._attributes(gw, st, ui)),
            _Step("StepMarkFinished", lambda x: gw.create_tags([st.ami, *st.snapshots],
                                                               {FINISHED_TAG: now_iso()})),
        ]
        try:
            StepRunner(ctx).run(steps)
            try:
                journal.finished({st.region: st.ami})
            except JournalError as exc:
                ui.error(f"{exc}. The imported AMI is marked {FINISHED_TAG} in AWS, so `amibake cleanup` "
                         "keeps it.")
        finally:
            journal.journal.close()
        result = AmiArtifact(amis={st.region: st.ami}, gateway=gw, builder_id=BUILDER_ID,
                             state_data={"generated_data": data})
        # AmiArtifact's id is a read-only property where the Artifact protocol declares an attribute
        return cast(Artifact, result), False, False

    # -- steps ----------------------------------------------------------------------------------

    def _upload(self, gw: Ec2Gateway, st: _State, ctx: StepContext, ui: Any) -> None:
        c = self.config
        if c.s3_encryption == "AES256" and c.s3_encryption_key:
            ui.say(f"Ignoring s3_encryption_key because s3_encryption is set to '{c.s3_encryption}'")
        extra: dict[str, str] = {}
        if c.s3_encryption:
            extra["ServerSideEncryption"] = c.s3_encryption
            if c.s3_encryption == "aws:kms" and c.s3_encryption_key:
                extra["SSEKMSKeyId"] = c.s3_encryption_key
        try:
            size = os.path.getsize(st.source)
        except OSError as exc:
            raise BuildError(f"Failed to open {st.source}: {exc.strerror}") from None
        ui.say(f"Uploading {st.source} to s3://{c.s3_bucket_name}/{st.key}")
        progress = _Progress(ui, size)
        gw.upload_object(st.source, c.s3_bucket_name, st.key, extra=extra, progress=progress,
                         keep=c.skip_clean)
        oid = f"{c.s3_bucket_name}/{st.key}"
        if not c.skip_clean:
            ctx.defer(f"s3://{oid}", lambda: self._delete_upload(gw, oid, ui))
        ui.say(f"Completed upload of {st.source} to s3://{oid}")

    @staticmethod
    def _delete_upload(gw: Ec2Gateway, oid: str, ui: Any) -> None:
        ui.say(f"Deleting import source s3://{oid}")
        gw.delete_object(oid)

    def _import(self, gw: Ec2Gateway, st: _State, ctx: StepContext, ui: Any) -> None:
        c = self.config
        params: dict[str, Any] = {
            "Encrypted": bool(c.ami_encrypt),
            "DiskContainers": [{"Format": c.format,
                                "UserBucket": {"S3Bucket": c.s3_bucket_name, "S3Key": st.key}}],
            "Architecture": c.architecture,
            "BootMode": c.effective_boot_mode,
        }
        if c.platform:
            params["Platform"] = c.platform
        if c.ami_encrypt and c.ami_kms_key:
            params["KmsKeyId"] = c.ami_kms_key
        if c.role_name:
            params["RoleName"] = c.role_name
        if c.license_type:
            ui.say(f"Setting license type to '{c.license_type}'")
            params["LicenseType"] = c.license_type
        try:
            st.task = gw.import_image(params)
        except BuildError as exc:
            raise BuildError(f"Failed to start import from s3://{c.s3_bucket_name}/{st.key}: {exc}") from exc
        ctx.on_failure(f"import task {st.task}", lambda: gw.cancel_import(st.task))
        ui.say(f"Started import of s3://{c.s3_bucket_name}/{st.key}, task id {st.task}")

    def _wait(self, gw: Ec2Gateway, st: _State, ctx: StepContext, ui: Any) -> None:
        ui.say(f"Waiting for task {st.task} to complete (may take a while)")
        seen: list[str] = []

        def probe() -> tuple[bool, str]:
            task = gw.import_task(st.task)
            if task is None:
                raise BuildError(f"Failed to find import task {st.task}")
            st.imported = task
            status = f"{task.status}: {task.message} ({task.progress or 0}%)"
            if task.status not in TASK_DONE and status not in seen:
                seen.append(status)
                ui.message(f"Import task {st.task}: {task.message or task.status}, {task.progress or 0}%")
            return task.status in TASK_DONE, task.status

        gw.wait(f"import task {st.task} to complete", probe, cancel=ctx.cancel, point="import-task",
                polling=gw.polling.long())
        task = st.imported
        assert task is not None
        if task.status != "completed" or not task.image_id:
            raise BuildError(f"Import task {st.task} failed with status message: {task.message}")
        st.ami, st.snapshots = task.image_id, list(task.snapshot_ids)
        gw._created("image", None, st.ami, task=st.task)
        gw.note_snapshots(st.ami, st.snapshots)
        gw.settle_import(st.task)
        ctx.on_failure(f"AMI {st.ami} (imported)", lambda: self._destroy(gw, st.ami))
        # amibake's own tags (VM Import tags nothing): `amibake cleanup` finds them if the journal is lost
        gw.create_tags([st.ami, *st.snapshots], {"amibake:run-id": self.env.run_id or self.env.run_uuid,
                                                 "amibake:build": self.env.build_name,
                                                 "amibake:created": now_iso()})
        ui.say(f"Import task {st.task} complete")

    @staticmethod
    def _destroy(gw: Ec2Gateway, ami: str) -> None:
        for img in gw.describe_images(image_ids=[ami]):
            gw.destroy_image(img)

    def _rename(self, gw: Ec2Gateway, st: _State, ctx: StepContext, ui: Any) -> None:
        c = self.config
        if not c.ami_name:
            return
        ui.say(f"Starting rename of AMI ({st.ami})")
        new = gw.copy_image(st.region, source_region=st.region, source_image_id=st.ami, name=c.ami_name,
                            encrypted=True if c.ami_encrypt else None,
                            kms_key_id=c.ami_kms_key if c.ami_encrypt else "")
        ctx.on_failure(f"AMI {new} ({c.ami_name})", lambda: self._destroy(gw, new))
        ui.say("Waiting for AMI rename to complete (may take a while)")
        image = gw.wait_image_available(new, st.region, cancel=ctx.cancel)
        ui.say("Destroying intermediary AMI...")
        self._destroy(gw, st.ami)
        ui.say("AMI rename completed")
        st.ami = new
        st.snapshots = list(image.snapshot_ids)
        gw.note_snapshots(new, st.snapshots)

    def _tag(self, gw: Ec2Gateway, st: _State, ui: Any) -> None:
        tags = dict(self.config.tags)
        if not tags:
            return
        for k, v in tags.items():
            ui.say(f'Adding tag "{k}": "{v}"')
        images = gw.describe_images(image_ids=[st.ami])
        if not images:
            raise BuildError(f"AMI {st.ami} has no images")
        for snap in images[0].snapshot_ids:
            ui.say(f"Tagging snapshot {snap}")
        ui.say(f"Tagging AMI {st.ami}")
        gw.create_tags([st.ami, *images[0].snapshot_ids], tags)

    def _attributes(self, gw: Ec2Gateway, st: _State, ui: Any) -> None:
        c = self.config
        options: list[tuple[str, dict[str, Any]]] = []
        if c.ami_description:
            options.append(("description", {"Description": {"Value": c.ami_description}}))
        if c.ami_groups:
            options.append(("groups", {"UserGroups": list(c.ami_groups), "LaunchPermission": {
                "Add": [{"Group": g} for g in c.ami_groups]}}))
        if c.ami_users:
            options.append(("users", {"UserIds": list(c.ami_users), "LaunchPermission": {
                "Add": [{"UserId": u} for u in c.ami_users]}}))
        if c.ami_org_arns:
            options.append(("ami org arns", {"OrganizationArns": list(c.ami_org_arns), "LaunchPermission": {
                "Add": [{"OrganizationArn": a} for a in c.ami_org_arns]}}))
        if c.ami_ou_arns:
            options.append(("ami ou arns", {
                "OrganizationalUnitArns": list(c.ami_ou_arns),
                "LaunchPermission": {"Add": [{"OrganizationalUnitArn": a} for a in c.ami_ou_arns]}}))
        if c.imds_support:
            options.append(("ami imds support", {"ImdsSupport": {"Value": c.imds_support}}))
        for name, params in options:
            ui.say(f"Modifying: {name}")
            gw.modify_image_attribute(st.ami, **params)


class _Progress:
    """boto3's upload callback (bytes since the last call, from several threads): a line per 10%."""

    def __init__(self, ui: Any, total: int) -> None:
        import threading

        self.ui, self.total, self.done, self.shown = ui, max(total, 1), 0, 0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
            pct = min(100, self.done * 100 // self.total)
            if pct >= self.shown + 10 or (pct == 100 and self.shown < 100):
                self.shown = pct - pct % 10 if pct < 100 else 100
                self.ui.message(f"Uploaded {self.done / 1048576:.1f} of {self.total / 1048576:.1f} MiB "
                                f"({self.shown}%)")
