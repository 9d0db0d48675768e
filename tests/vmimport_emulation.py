"""EMULATION of EC2 VM Import (ImportImage, DescribeImportImageTasks, CancelImportTask) for the stack's
moto server, which has none of them (test code only; installed by tests/motoserver.py).

Built from AWS's published behaviour (EC2 API reference for the three actions, and the VM Import/Export
user guide: "Required permissions", "Troubleshooting VM Import/Export"), not from amibake's code:

* ImportImage needs the service role (``RoleName``, default ``vmimport``): a role that does not
  exist fails the call with ``InvalidParameter`` "The service role <name> provided does not exist or
  does not have sufficient permissions". The answer carries ``ImportTaskId`` (``import-ami-`` and 17
  hex digits), ``Status`` ``active``, ``StatusMessage`` ``pending``, ``Progress`` and the request's
  architecture, platform, license type, encryption and KMS key. A repeated ``ClientToken`` answers
  with the first task.
* The task then runs ``active`` with the status messages ``pending`` -> ``validating`` ->
  ``validated`` -> ``converting`` -> ``updating`` -> ``booting`` -> ``booted`` -> ``preparing ami``
  and ends ``completed`` with ``ImageId`` and ``SnapshotDetails``, or ``deleted`` with a
  ``ClientError: ...`` status message. Here a task advances three stages per DescribeImportImageTasks
  of it (AWS's take minutes; the emulation is driven by its callers' polls, so it is deterministic).
  At ``validating`` the S3 object is read (moto's S3): missing, it fails with "ClientError: Unable
  to find the S3 object"; empty, or of a ``raw`` size that is not a multiple of 512 bytes, with
  "ClientError: Disk validation failed [Unsupported specified file format]".
* On completion an AMI is registered in moto (EBS root, with one snapshot: moto's model makes it),
  named after the task as AWS does (``import-ami-...``), with the request's architecture, platform
  and boot mode.
* CancelImportTask of an active task answers ``PreviousState`` ``active``, ``State`` ``deleting``;
  the task is then ``deleted`` with the status message "Task cancelled by user" and makes nothing.
  Cancelling a task that ended fails with ``IncorrectState``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

STAGES = ("pending", "validating", "validated", "converting", "updating", "booting", "booted",
          "preparing ami")
PROGRESS = {"pending": "2", "validating": "10", "validated": "20", "converting": "28", "updating": "56",
            "booting": "70", "booted": "80", "preparing ami": "95"}


@dataclass
class Task:
    id: str
    account: str
    region: str
    params: dict[str, Any]
    stage: int = 0
    status: str = "active"
    message: str = "pending"
    image_id: str = ""
    snapshot_id: str = ""
    tags: list[dict[str, str]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        p = self.params
        container = (p.get("DiskContainers") or [{}])[0]
        out: dict[str, Any] = {
            "ImportTaskId": self.id, "Status": self.status, "StatusMessage": self.message,
            "Architecture": p.get("Architecture", "x86_64"), "Encrypted": bool(p.get("Encrypted", False)),
            "BootMode": p.get("BootMode", "legacy-bios"),
        }
        if self.status == "active":
            out["Progress"] = PROGRESS.get(self.message, "2")
        for key in ("Platform", "LicenseType", "KmsKeyId", "Description"):
            if p.get(key):
                out[key] = p[key]
        detail: dict[str, Any] = {"Format": str(container.get("Format", "")).upper(),
                                  "UserBucket": container.get("UserBucket", {}),
                                  "Status": "completed" if self.status == "completed" else self.status}
        if self.image_id:
            out["ImageId"] = self.image_id
            detail.update(SnapshotId=self.snapshot_id, DeviceName="/dev/sda1")
        out["SnapshotDetails"] = [detail]
        if self.tags:
            out["Tags"] = self.tags
        return out


#: (account, region) -> task id -> task
TASKS: dict[tuple[str, str], dict[str, Task]] = {}
#: (account, region, client token) -> task id
TOKENS: dict[tuple[str, str, str], str] = {}


def _error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


def _s3_problem(account: str, container: dict[str, Any]) -> str:
    """Why VM Import cannot read the disk image ("" when it can)."""
    from moto.s3.models import s3_backends

    bucket = (container.get("UserBucket") or {}).get("S3Bucket", "")
    key = (container.get("UserBucket") or {}).get("S3Key", "")
    backend = s3_backends[account]["aws"]
    try:
        obj = backend.get_object(bucket, key)
    except Exception:
        obj = None
    if obj is None:
        return f"ClientError: Unable to find the S3 object s3://{bucket}/{key}"
    size = len(obj.value)
    fmt = str(container.get("Format", "")).lower()
    if size == 0 or (fmt == "raw" and size % 512):
        return "ClientError: Disk validation failed [Unsupported specified file format]"
    return ""


def _advance(task: Task) -> None:
    if task.status != "active":
        return
    for _ in range(3):
        task.stage += 1
        if task.stage == 1:
            problem = _s3_problem(task.account, (task.params.get("DiskContainers") or [{}])[0])
            if problem:
                task.status, task.message = "deleted", problem
                return
        if task.stage >= len(STAGES):
            _complete(task)
            return
        task.message = STAGES[task.stage]


def _complete(task: Task) -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    backend = ec2_backends[task.account][task.region]
    p = task.params
    ami_id = random_ami_id()
    ami = Ami(backend, ami_id, name=task.id,
              description=p.get("Description") or f"AWS-VMImport service: {task.id}",
              architecture=p.get("Architecture", "x86_64"), platform=p.get("Platform") or None,
              root_device_type="ebs", boot_mode=p.get("BootMode", "legacy-bios"),
              snapshot_description=f"Created by AWS-VMImport service for {task.id}")
    backend.amis[ami_id] = ami
    task.status, task.message = "completed", ""
    task.image_id, task.snapshot_id = ami_id, ami.ebs_snapshot.id


def install() -> None:
    """Add the three actions to moto's EC2 responses (in this process only)."""
    from moto.core.responses import ActionResult
    from moto.ec2.responses import EC2Response

    def import_image(self: Any) -> ActionResult:
        account, region = self.current_account, self.region
        self.error_on_dryrun()
        params = {k: self._get_param(k) for k in (
            "Architecture", "BootMode", "ClientToken", "Description", "DiskContainers", "Encrypted",
            "KmsKeyId", "LicenseType", "Platform", "RoleName", "TagSpecifications")}
        params = {k: v for k, v in params.items() if v not in (None, "", [])}
        token = params.get("ClientToken", "")
        if token and (account, region, token) in TOKENS:
            return ActionResult(TASKS[(account, region)][TOKENS[(account, region, token)]].view())
        containers = params.get("DiskContainers") or []
        if len(containers) != 1 or not (containers[0].get("UserBucket") or {}).get("S3Bucket"):
            raise _error("InvalidParameter", "DiskContainers: exactly one disk in an S3 bucket (UserBucket)")
        role = params.get("RoleName", "vmimport")
        from moto.iam.models import iam_backends

        try:
            iam_backends[account]["aws"].get_role(role)
        except Exception:
            raise _error("InvalidParameter", f"The service role {role} provided does not exist or does not "
                         "have sufficient permissions") from None
        task = Task(f"import-ami-{secrets.token_hex(9)[:17]}", account, region, params)
        for spec in params.get("TagSpecifications") or []:
            if spec.get("ResourceType") == "import-image-task":
                task.tags += [{"Key": t["Key"], "Value": t.get("Value", "")} for t in spec.get("Tags", [])]
        TASKS.setdefault((account, region), {})[task.id] = task
        if token:
            TOKENS[(account, region, token)] = task.id
        return ActionResult(task.view())

    def describe_import_image_tasks(self: Any) -> ActionResult:
        tasks = TASKS.get((self.current_account, self.region), {})
        ids = self._get_param("ImportTaskIds") or list(tasks)
        out = []
        for tid in ids:
            task = tasks.get(tid)
            if task is None:
                raise _error("InvalidConversionTaskId.Malformed", f"The import task ID '{tid}' is malformed")
            _advance(task)
            out.append(task.view())
        return ActionResult({"ImportImageTasks": out})

    def cancel_import_task(self: Any) -> ActionResult:
        tid = self._get_param("ImportTaskId")
        task = TASKS.get((self.current_account, self.region), {}).get(tid)
        if task is None:
            raise _error("InvalidConversionTaskId", f"The import task ID '{tid}' does not exist")
        if task.status != "active":
            raise _error("IncorrectState", f"The import task {tid} is {task.status} and cannot be cancelled")
        task.status, task.message = "deleted", "Task cancelled by user"
        return ActionResult({"ImportTaskId": tid, "PreviousState": "active", "State": "deleting"})

    EC2Response.import_image = import_image  # type: ignore[attr-defined]
    EC2Response.describe_import_image_tasks = describe_import_image_tasks  # type: ignore[attr-defined]
    EC2Response.cancel_import_task = cancel_import_task  # type: ignore[attr-defined]
