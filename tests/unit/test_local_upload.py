"""The pure parts of amibake-local's EBS direct upload (plugins/amazon/local/upload.py): which blocks of a
disk are read, zero detection, the per-block and LINEAR aggregate checksums, the retry decision and
schedule, the snapshot size, the progress lines; and one upload against an in-memory EBS double that
checks what AWS checks (the stack tests run the real calls through the emulation)."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.errors import BuildError
from amibake.plugins.amazon.ec2_ebsdirect import BlockRejected, StartedSnapshot
from amibake.plugins.amazon.local import upload as up
from amibake.steps.context import BuildCancelled

BS = 524288


def test_aggregate_checksum_is_sha256_of_the_digests_in_index_order() -> None:
    blocks = {7: b"\x01" * BS, 2: b"\x02" * BS, 30: b"\x03" * BS}
    digests = {i: hashlib.sha256(b).digest() for i, b in blocks.items()}
    expected = hashlib.sha256(digests[2] + digests[7] + digests[30]).digest()
    assert up.aggregate_checksum(digests) == base64.b64encode(expected).decode()
    # the order is the block index's, not the insertion's
    assert up.aggregate_checksum(dict(reversed(list(digests.items())))) == up.aggregate_checksum(digests)
    assert up.b64(up.block_digest(blocks[2])) == base64.b64encode(hashlib.sha256(blocks[2]).digest()).decode()


@given(st.binary(min_size=0, max_size=4096))
def test_is_zero(data: bytes) -> None:
    assert up.is_zero(data) == all(b == 0 for b in data)
    assert up.is_zero(bytes(len(data)))


@given(st.lists(st.tuples(st.integers(0, 10 * BS), st.integers(1, 3 * BS)), max_size=8))
def test_blocks_of_are_exactly_the_blocks_the_extents_touch(raw: list[tuple[int, int]]) -> None:
    extents = [(start, start + length) for start, length in raw]
    expected = sorted({off // BS for start, end in extents for off in range(start, end)})
    assert up.blocks_of(extents, BS) == expected


def test_data_extents_skip_the_holes_of_a_sparse_file(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    with open(path, "wb") as f:
        f.truncate(64 * 1024 * 1024)
        f.seek(10 * 1024 * 1024)
        f.write(b"x" * 4096)
    fd = os.open(path, os.O_RDONLY)
    try:
        extents = up.data_extents(fd, 64 * 1024 * 1024)
    finally:
        os.close(fd)
    covered = sum(end - start for start, end in extents)
    assert covered < 1024 * 1024, extents  # not the whole 64 MiB: the hole is not read
    assert any(start <= 10 * 1024 * 1024 < end for start, end in extents)
    assert up.blocks_of(extents, BS) == [10 * 1024 * 1024 // BS]


def test_volume_size_gib() -> None:
    assert up.volume_size_gib(1) == 1
    assert up.volume_size_gib(1 << 30) == 1
    assert up.volume_size_gib((1 << 30) + 1) == 2
    assert up.volume_size_gib(1 << 30, 8) == 8
    with pytest.raises(BuildError, match="at least 2 GiB"):
        up.volume_size_gib((1 << 30) + 1, 1)


@pytest.mark.parametrize(("code", "status", "reason", "again"), [
    ("RequestThrottledException", 400, "ACCOUNT_THROTTLED", True),
    ("ThrottlingException", 429, "", True),
    ("InternalServerException", 500, "", True),
    ("ServiceUnavailable", 503, "", True),
    ("", 0, "", True),  # no answer (connection lost)
    ("ValidationException", 400, "INVALID_BLOCK", True),  # damaged on the way: checksum mismatch
    ("ConcurrentLimitExceededException", 400, "", True),
    ("ValidationException", 400, "INVALID_PARAMETER_VALUE", False),
    ("AccessDeniedException", 403, "UNAUTHORIZED_ACCOUNT", False),
    ("ResourceNotFoundException", 404, "SNAPSHOT_NOT_FOUND", False),
])
def test_which_block_failures_are_retried(code: str, status: int, reason: str, again: bool) -> None:
    assert up.retried(BlockRejected(code, "m", status, reason)) is again


def test_retry_schedule_is_bounded_jittered_and_growing() -> None:
    pauses = list(up.retry_pauses(random.Random(1)))
    assert len(pauses) == up.BLOCK_ATTEMPTS - 1
    for attempt, pause in enumerate(pauses, start=1):
        assert 0.0 <= pause <= min(up.BLOCK_RETRY.cap, up.BLOCK_RETRY.base * 2 ** attempt)
    # the cap grows: the late pauses may be longer than any early one can be
    assert max(pauses[-4:]) > up.BLOCK_RETRY.base * 2


def test_progress_lines_say_mib_rate_and_eta() -> None:
    lines: list[str] = []

    class Ui:
        def message(self, m: str) -> None:
            lines.append(m)

    now = [0.0]
    p = up.UploadProgress(Ui(), 100 * 1048576, clock=lambda: now[0])
    now[0] = 2.0
    p(50 * 1048576)
    p(1)  # same 10 % step: no new line
    now[0] = 4.0
    p(50 * 1048576 - 1)
    assert lines == ["Uploaded 50.0 of 100.0 MiB (50%), 25.0 MiB/s, ETA 2s",
                     "Uploaded 100.0 of 100.0 MiB (100%), 25.0 MiB/s, ETA 0s"]


class FakeEbs:
    """An in-memory EBS direct double with AWS's checks (block size, checksum, count, aggregate)."""

    def __init__(self, fail: dict[int, list[BlockRejected]] | None = None) -> None:
        self.blocks: dict[int, bytes] = {}
        self.fail = fail or {}
        self.calls: list[int] = []
        self.completed: tuple[int, str] | None = None
        self.started: dict[str, object] = {}
        self.lock = threading.Lock()

    def start_snapshot(self, volume_size: int, **kw: object) -> StartedSnapshot:
        self.started = dict(kw, volume_size=volume_size)
        return StartedSnapshot("snap-1", BS, volume_size)

    def put_snapshot_block(self, snapshot_id: str, index: int, data: bytes, checksum: str, *,
                           region: str | None = None) -> None:
        with self.lock:
            self.calls.append(index)
            pending = self.fail.get(index)
            if pending:
                raise pending.pop(0)
        assert len(data) == BS
        assert checksum == base64.b64encode(hashlib.sha256(data).digest()).decode()
        self.blocks[index] = data

    def complete_snapshot(self, snapshot_id: str, changed_blocks: int, checksum: str, *,
                          region: str | None = None) -> str:
        self.completed = (changed_blocks, checksum)
        return "completed"


class Quiet:
    def message(self, m: str) -> None:
        pass


def _disk(path: Path, size: int, writes: dict[int, bytes]) -> None:
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in writes.items():
            f.seek(off)
            f.write(data)


@settings(max_examples=15, deadline=None)
@given(st.dictionaries(st.integers(0, 40 * BS), st.binary(min_size=1, max_size=3000), max_size=6),
       st.integers(1, 6))
def test_upload_puts_every_non_zero_block_and_reads_back_the_disk(
        tmp_path_factory: pytest.TempPathFactory, writes: dict[int, bytes], workers: int) -> None:
    path = tmp_path_factory.mktemp("up") / "disk"
    size = 41 * BS + 1234  # not a multiple of the block size: the last block is padded
    _disk(path, size, writes)
    ebs = FakeEbs()
    result = up.upload_disk(ebs, path, up.UploadSpec(workers=workers), ui=Quiet(), cancel=threading.Event(),
                            on_started=lambda s: None)
    disk = path.read_bytes()
    back = bytearray(42 * BS)
    for index, data in ebs.blocks.items():
        back[index * BS:(index + 1) * BS] = data
    assert bytes(back[:size]) == disk and not any(back[size:])
    assert all(not up.is_zero(b) for b in ebs.blocks.values())  # zero blocks are never sent
    digests = {i: hashlib.sha256(b).digest() for i, b in ebs.blocks.items()}
    assert ebs.completed == (len(ebs.blocks), up.aggregate_checksum(digests))
    assert result.changed_blocks == len(ebs.blocks) and ebs.started["volume_size"] == 1


def test_upload_retries_throttled_and_damaged_blocks(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    _disk(path, 4 * BS, {0: b"a", BS: b"b", 3 * BS: b"d"})
    ebs = FakeEbs({0: [BlockRejected("RequestThrottledException", "t", 400, "ACCOUNT_THROTTLED"),
                       BlockRejected("InternalServerException", "e", 500, "")],
                   3: [BlockRejected("ValidationException", "c", 400, "INVALID_BLOCK")]})
    pauses: list[float] = []
    result = up.upload_disk(ebs, path, up.UploadSpec(workers=2), ui=Quiet(), cancel=threading.Event(),
                            on_started=lambda s: None, sleep=pauses.append, seed=3)
    assert sorted(ebs.blocks) == [0, 1, 3]
    assert result.retries == 3 and len(pauses) == 3
    assert sorted(ebs.calls) == [0, 0, 0, 1, 3, 3]


def test_upload_stops_on_a_refused_block_and_does_not_complete(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    _disk(path, 2 * BS, {0: b"a"})
    ebs = FakeEbs({0: [BlockRejected("AccessDeniedException", "no", 403, "UNAUTHORIZED_ACCOUNT")]})
    started: list[str] = []
    with pytest.raises(BuildError, match="PutSnapshotBlock 0 of snap-1: AccessDeniedException: no"):
        up.upload_disk(ebs, path, up.UploadSpec(), ui=Quiet(), cancel=threading.Event(),
                       on_started=started.append)
    assert started == ["snap-1"] and ebs.completed is None


def test_upload_gives_up_after_the_last_attempt(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    _disk(path, BS, {0: b"a"})
    throttled = [BlockRejected("ThrottlingException", "t", 429, "") for _ in range(up.BLOCK_ATTEMPTS)]
    ebs = FakeEbs({0: throttled})
    with pytest.raises(BuildError, match="ThrottlingException"):
        up.upload_disk(ebs, path, up.UploadSpec(), ui=Quiet(), cancel=threading.Event(),
                       on_started=lambda s: None, sleep=lambda s: None)
    assert len(ebs.calls) == up.BLOCK_ATTEMPTS and ebs.completed is None


def test_a_cancelled_upload_stops_without_completing(tmp_path: Path) -> None:
    path = tmp_path / "disk"
    _disk(path, 8 * BS, {i * BS: b"x" for i in range(8)})
    cancel = threading.Event()
    cancel.set()
    ebs = FakeEbs()
    with pytest.raises(BuildCancelled):
        up.upload_disk(ebs, path, up.UploadSpec(), ui=Quiet(), cancel=cancel, on_started=lambda s: None)
    assert ebs.calls == [] and ebs.completed is None
