"""The amazon-import undo's two races, in process: an import task that ends between DescribeImportImageTasks
and CancelImportTask (EC2 answers ``IncorrectState``), and an imported image that is gone before its
removal (``InvalidAMIID.NotFound``). Neither happens in the stack tests' emulated imports, which is how
the stack-only mutation sample (docs/mutation.md) found them unchecked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from amibake.aws.errors import AwsError
from amibake.plugins.amazon.amazon_import.config import AmazonImportConfig
from amibake.plugins.amazon.amazon_import.postprocessor import AmazonImportPostProcessor, _State
from amibake.plugins.amazon.ec2_import import ImportCalls, ImportTask
from amibake.plugins.amazon.liveness import FINISHED_TAG
from amibake.plugins.amazon.records import Image


class Calls(ImportCalls):
    """ImportCalls with EC2's answers scripted: ``tasks`` are DescribeImportImageTasks' successive
    answers, ``errors`` the error each named call raises."""

    def __init__(self, tasks: list[ImportTask | None], images: list[Image] | None = None,
                 errors: dict[str, str] | None = None) -> None:
        self.tasks, self.images, self.errors = list(tasks), images or [], errors or {}
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.destroyed: list[str] = []
        self.removed: list[tuple[str, str]] = []

    def _call(self, op: str, region: str | None = None, service: str = "ec2", *, retry_codes: Any = (),
              adopt: Any = None, duplicate_codes: Any = (), **params: Any) -> Any:
        self.sent.append((op, params))
        if op in self.errors:
            raise AwsError(op, self.errors[op], f"{op} refused")
        return {}

    def import_task(self, task_id: str, region: str | None = None) -> ImportTask | None:
        self.sent.append(("describe_import_image_tasks", {"ImportTaskIds": [task_id]}))
        return self.tasks.pop(0)

    def describe_images(self, *, image_ids: Any = (), region: str | None = None) -> list[Image]:
        self.sent.append(("describe_images", {"ImageIds": list(image_ids)}))
        if "describe_images" in self.errors:
            raise AwsError("DescribeImages", self.errors["describe_images"], "no such image")
        return [i for i in self.images if i.id in image_ids]

    def destroy_image(self, image: Image, region: str | None = None) -> None:
        self.destroyed.append(image.id)

    def _removed(self, kind: str, region: str | None, rid: str) -> None:
        self.removed.append((kind, rid))


RUNNING = ImportTask("import-ami-1", "active", progress="40")
DONE = ImportTask("import-ami-1", "completed", image_id="ami-imported", snapshot_ids=("snap-1",))


def test_a_task_that_completes_before_its_cancel_has_its_image_removed() -> None:
    calls = Calls([RUNNING, DONE], images=[Image("ami-imported", "import", "available")],
                  errors={"cancel_import_task": "IncorrectState"})
    calls.cancel_import("import-ami-1")
    assert [op for op, _ in calls.sent] == ["describe_import_image_tasks", "cancel_import_task",
                                            "describe_import_image_tasks", "describe_images"]
    assert calls.destroyed == ["ami-imported"]
    assert calls.removed == [("import-task", "import-ami-1")]


def test_a_cancel_refused_for_another_reason_is_an_error() -> None:
    calls = Calls([RUNNING], errors={"cancel_import_task": "UnauthorizedOperation"})
    with pytest.raises(AwsError) as err:
        calls.cancel_import("import-ami-1")
    assert err.value.code == "UnauthorizedOperation"
    assert calls.removed == []  # not settled: `amibake cleanup` tries again


@pytest.mark.parametrize("code", ["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"])
def test_an_imported_image_already_gone_is_not_an_error(code: str) -> None:
    calls = Calls([DONE], errors={"describe_images": code})
    calls.cancel_import("import-ami-1")
    assert calls.destroyed == [] and calls.removed == [("import-task", "import-ami-1")]
    assert "cancel_import_task" not in [op for op, _ in calls.sent]  # a completed task is not cancelled


def test_another_error_reading_the_imported_image_is_raised() -> None:
    calls = Calls([DONE], errors={"describe_images": "RequestLimitExceeded"})
    with pytest.raises(AwsError, match="no such image"):
        calls.cancel_import("import-ami-1")
    assert calls.removed == []


def test_a_delivered_imported_image_is_kept() -> None:
    delivered = Image("ami-imported", "import", "available", tags={FINISHED_TAG: "1"})
    calls = Calls([DONE], images=[delivered])
    calls.cancel_import("import-ami-1")
    assert calls.destroyed == [] and calls.removed == [("import-task", "import-ami-1")]


def test_an_import_task_read_from_describe_import_image_tasks() -> None:
    """What DescribeImportImageTasks says of a task: its snapshots (those with an id), and no image
    until it has one."""
    done = ImportTask.from_api({
        "ImportTaskId": "import-ami-2", "Status": "completed", "ImageId": "ami-2", "Progress": None,
        "SnapshotDetails": [{"SnapshotId": "snap-a", "DiskImageSize": 1.0}, {"Status": "active"},
                            {"SnapshotId": "snap-b"}],
    })
    assert done == ImportTask("import-ami-2", "completed", "", "", "ami-2", ("snap-a", "snap-b"))
    active = ImportTask.from_api({"ImportTaskId": "import-ami-3", "Status": "active",
                                  "StatusMessage": "converting", "Progress": "28", "SnapshotDetails": None})
    assert active == ImportTask("import-ami-3", "active", "converting", "28", "", ())


class _Uploads:
    def __init__(self) -> None:
        self.extra: list[dict[str, str]] = []

    def upload_object(self, path: Any, bucket: str, key: str, *, extra: dict[str, str], progress: Any,
                      keep: bool) -> None:
        self.extra.append(dict(extra))


@pytest.mark.parametrize(("encryption", "key", "sent"), [
    ("aws:kms", "alias/images", {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/images"}),
    ("AES256", "alias/images", {"ServerSideEncryption": "AES256"}),
    ("", "alias/images", {}),
])
def test_the_upload_sends_a_kms_key_only_with_aws_kms(tmp_path: Path, encryption: str, key: str,
                                                     sent: dict[str, str]) -> None:
    """amazon-import's PutObject headers: ``s3_encryption_key`` goes with ``aws:kms`` only (S3 refuses
    a KMS key with AES256; moto does not, so the stack test's end state cannot tell)."""
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\0" * 1024)
    cfg = AmazonImportConfig.model_validate({"s3_bucket_name": "b", "region": "us-east-1", "format": "raw",
                                             "s3_encryption": encryption, "s3_encryption_key": key,
                                             "skip_clean": True})
    gw = _Uploads()
    lines: list[str] = []
    ui = SimpleNamespace(say=lines.append, message=lines.append)
    pp = AmazonImportPostProcessor(cfg, cast(Any, None))
    pp._upload(cast(Any, gw), _State(image, "k.raw", "us-east-1"), cast(Any, None), ui)
    assert gw.extra == [sent]
    ignoring = "Ignoring s3_encryption_key because s3_encryption is set to 'AES256'"
    assert (ignoring in lines) == (encryption == "AES256")
