"""The gateway's EBS direct calls (amibake-local): start a snapshot, put its blocks, complete it.

A mixin over :class:`~amibake.plugins.amazon.ec2_base.GatewayBase`, as
:class:`~amibake.plugins.amazon.ec2_volumes.VolumeCalls` is: the ``ebs`` client is made by the shared
client pool exactly as the ``ec2`` one (same credentials; ``custom_endpoint_ec2`` serves it too, as it
serves every service of Packer's session; else botocore's ``AWS_ENDPOINT_URL_EBS`` /
``AWS_ENDPOINT_URL``, else AWS's). Only this module talks to the EBS direct API.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from amibake.aws.errors import AwsError, error_parts
from amibake.plugins.amazon.ec2_base import GatewayBase
from amibake.plugins.amazon.records import Tags, tag_list


class BlockRejected(AwsError):
    """One PutSnapshotBlock failed: AWS's error code, the HTTP status (0: no answer) and the
    ``Reason`` of a ValidationException (``INVALID_CHECKSUM``...), for the caller's retry decision."""

    def __init__(self, code: str, message: str, status: int, reason: str) -> None:
        super().__init__("PutSnapshotBlock", code, message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class StartedSnapshot:
    """StartSnapshot's answer: the snapshot and the block size every block must have."""

    snapshot_id: str
    block_size: int
    volume_size: int


class EbsDirectCalls(GatewayBase):
    """StartSnapshot, PutSnapshotBlock and CompleteSnapshot of one build."""

    def start_snapshot(self, volume_size: int, *, tags: Tags | None = None, description: str = "",
                       encrypted: bool = False, kms_key_arn: str = "", timeout_minutes: int = 0,
                       region: str | None = None) -> StartedSnapshot:
        """StartSnapshot with a client token (a retried call gets the same snapshot), journaled as a
        ``snapshot`` before the call (intent, with the token) and the moment it answers (created), so
        that ``amibake cleanup`` deletes what a killed build left; the build's tags find one whose
        answer was lost."""
        token = str(uuid.uuid4())
        params: dict[str, Any] = {"VolumeSize": volume_size, "ClientToken": token}
        if tags:
            params["Tags"] = tag_list(tags)
        if description:
            params["Description"] = description
        if encrypted:
            params["Encrypted"] = True
        if kms_key_arn:
            params["KmsKeyArn"] = kms_key_arn
        if timeout_minutes:
            params["Timeout"] = timeout_minutes
        self._intent("snapshot", region, token=token, api="ebs")
        resp = self._call("start_snapshot", region, "ebs", **params)
        snap = str(resp["SnapshotId"])
        self._created("snapshot", region, snap, token=token, api="ebs")
        block_size = int(resp.get("BlockSize") or 0)
        if block_size <= 0:
            raise AwsError("StartSnapshot", "", f"StartSnapshot of {snap} answered no BlockSize")
        self._pause("after-start-snapshot")
        return StartedSnapshot(snap, block_size, int(resp.get("VolumeSize") or volume_size))

    def put_snapshot_block(self, snapshot_id: str, index: int, data: bytes, checksum: str, *,
                           region: str | None = None) -> None:
        """One PutSnapshotBlock attempt (SHA-256 checksum, base64); the caller retries.
        :class:`BlockRejected` says why it failed."""
        client = self._client("ebs", region)
        try:
            client.put_snapshot_block(SnapshotId=snapshot_id, BlockIndex=index, BlockData=data,
                                      DataLength=len(data), Checksum=checksum, ChecksumAlgorithm="SHA256")
        except botocore.exceptions.ClientError as exc:
            code, message = error_parts(exc) or ("", str(exc))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            raise BlockRejected(code, message, status, str(exc.response.get("Reason", ""))) from exc
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            raise BlockRejected("", str(exc), 0, "") from exc

    def complete_snapshot(self, snapshot_id: str, changed_blocks: int, checksum: str, *,
                          region: str | None = None) -> str:
        """CompleteSnapshot with the changed-block count and the LINEAR aggregate SHA-256 checksum;
        the status it answers."""
        resp: Mapping[str, Any] = self._call(
            "complete_snapshot", region, "ebs", SnapshotId=snapshot_id, ChangedBlocksCount=changed_blocks,
            Checksum=checksum, ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR")
        self._pause("after-complete-snapshot")
        return str(resp.get("Status", ""))
