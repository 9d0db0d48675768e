"""The EC2 gateway's VM Import calls (the ``amazon-import`` post-processor) and the S3 object it imports
from: each create journaled before and after, as every other create call of the gateway, so that
``amibake cleanup`` cancels an import in flight and deletes its upload after a SIGKILL."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amibake.aws.errors import AwsError, translated
from amibake.plugins.amazon.ec2_base import GatewayBase

if TYPE_CHECKING:
    from amibake.plugins.amazon.records import Image

#: DescribeImportImageTasks statuses after which nothing changes
TASK_DONE = frozenset({"completed", "deleted"})


@dataclass(frozen=True)
class ImportTask:
    """What DescribeImportImageTasks says of one import task."""

    id: str
    status: str
    message: str = ""
    progress: str = ""
    image_id: str = ""
    snapshot_ids: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, task: Mapping[str, Any]) -> ImportTask:
        details = task.get("SnapshotDetails", []) or []
        snaps = tuple(str(d["SnapshotId"]) for d in details if d.get("SnapshotId"))
        return cls(str(task.get("ImportTaskId", "")), str(task.get("Status", "")),
                   str(task.get("StatusMessage", "") or ""), str(task.get("Progress", "") or ""),
                   str(task.get("ImageId", "") or ""), snaps)


def s3_object_id(bucket: str, key: str) -> str:
    """The journal id of an S3 object: ``bucket/key`` (a bucket name holds no ``/``)."""
    return f"{bucket}/{key}"


class ImportCalls(GatewayBase):
    """S3 upload and delete, ImportImage, its task's state, and its cancellation."""

    def upload_object(self, path: Path, bucket: str, key: str, *, extra: Mapping[str, str] | None = None,
                      progress: Callable[[int], None] | None = None, region: str | None = None,
                      keep: bool = False) -> None:
        """Upload ``path`` to ``s3://bucket/key`` (multipart above 8 MiB, parts in parallel: boto3's
        transfer manager, which retries each part). ``keep``: the object is meant to stay, so the
        journal does not record it (``amibake cleanup`` never removes it)."""
        oid = s3_object_id(bucket, key)
        if not keep:
            self._intent("s3-object", region, name=oid)
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import S3Transfer, TransferConfig

        client = self._client("s3", region)
        transfer = S3Transfer(client, TransferConfig(multipart_threshold=8 << 20, max_concurrency=4))
        try:
            with translated("upload_file"):
                transfer.upload_file(str(path), bucket, key, extra_args=dict(extra or {}) or None,
                                     callback=progress)
        except S3UploadFailedError as exc:  # the transfer manager's own wrapper of a part's failure
            raise AwsError("upload_file", "", str(exc)) from exc
        if not keep:
            self._created("s3-object", region, oid, name=oid)
        self._pause("after-upload-object")

    def delete_object(self, object_id: str, region: str | None = None) -> None:
        bucket, _, key = object_id.partition("/")
        self._call("delete_object", region, service="s3", Bucket=bucket, Key=key)
        self._removed("s3-object", region, object_id)

    def import_image(self, params: Mapping[str, Any], region: str | None = None) -> str:
        """ImportImage with a client token (a repeated call answers with the first task); returns
        the import task's id."""
        token = str(uuid.uuid4())
        self._intent("import-task", region, name=token)
        task = str(self._call("import_image", region, ClientToken=token, **params)["ImportTaskId"])
        self._created("import-task", region, task, token=token)
        self._pause("after-import-image")
        return task

    def import_task(self, task_id: str, region: str | None = None) -> ImportTask | None:
        """The task's state; None when EC2 no longer knows it."""
        try:
            resp = self._call("describe_import_image_tasks", region, ImportTaskIds=[task_id])
        except AwsError as exc:
            if exc.code in ("InvalidConversionTaskId.Malformed", "InvalidConversionTaskId"):
                return None
            raise
        tasks = resp.get("ImportImageTasks", [])
        return ImportTask.from_api(tasks[0]) if tasks else None

    def settle_import(self, task_id: str, region: str | None = None) -> None:
        """The task completed and what it made is journaled (its image and snapshots): nothing of the
        task itself is left to clean up."""
        self._removed("import-task", region, task_id)

    def cancel_import(self, task_id: str, region: str | None = None) -> None:
        """Undo an import task: cancel it while it runs (CancelImportTask); if it completed meanwhile,
        remove the image and snapshots it made, unless they carry ``keep_tag`` (delivered). The
        journal's record of the task is settled either way."""
        task = self.import_task(task_id, region)
        if task is not None and task.status not in TASK_DONE and task.status != "deleting":
            try:
                self._call("cancel_import_task", region, ImportTaskId=task_id,
                           CancelReason="amibake: the build failed or was interrupted")
            except AwsError as exc:
                if exc.code != "IncorrectState":
                    raise
                task = self.import_task(task_id, region)  # it ended between the two calls
        if task is not None and task.status == "completed" and task.image_id:
            self._remove_import_result(task, region)
        self._removed("import-task", region, task_id)

    def _remove_import_result(self, task: ImportTask, region: str | None) -> None:
        from amibake.plugins.amazon.liveness import FINISHED_TAG

        try:
            images = self.describe_images(image_ids=[task.image_id], region=region)
        except AwsError as exc:
            if exc.code not in ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"):
                raise
            images = []
        for image in images:
            if FINISHED_TAG not in image.tags:
                self.destroy_image(image, region)

    if TYPE_CHECKING:  # Ec2Gateway's, which combines this mixin with its image calls
        def describe_images(self, *, image_ids: Sequence[str] = (),
                            region: str | None = None) -> list[Image]: ...

        def destroy_image(self, image: Image, region: str | None = None) -> None: ...
