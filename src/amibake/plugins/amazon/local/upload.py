"""Write a raw disk image into a new EBS snapshot with the EBS direct APIs, as coldsnap does.

StartSnapshot (size in GiB, tags, encryption, KMS key, a client token, a timeout, a description)
answers the block size every block must have (524288 bytes on AWS; taken from the answer, never
assumed). The disk's blocks that hold data are put in parallel by a bounded number of workers, each
with its base64 SHA-256 checksum; all-zero blocks are skipped (an EBS snapshot reads zeroes where no
block was written), and the holes of a sparse file are never read (``SEEK_DATA``/``SEEK_HOLE``). A
block is retried with jittered backoff on throttling, 5xx answers, lost connections and checksum
rejections. CompleteSnapshot carries the number of blocks put and the LINEAR aggregate checksum:
SHA-256 over the blocks' SHA-256 digests concatenated in block-index order, base64.

The pure parts (extents, block choice, zero detection, checksums, retry decision and schedule) are
functions of their own, tested without AWS.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from amibake.aws.retry import THROTTLING, TRANSIENT_CODES, RetryPolicy
from amibake.errors import BuildError
from amibake.plugins.amazon.ec2_ebsdirect import BlockRejected, StartedSnapshot
from amibake.plugins.amazon.records import Tags
from amibake.steps.context import BuildCancelled

GIB = 1 << 30
MIB = 1 << 20
#: how often one block is tried before the upload fails (coldsnap: 12)
BLOCK_ATTEMPTS = 12
#: the backoff between a block's attempts: full jitter, 0.2 s doubling up to 10 s
BLOCK_RETRY = RetryPolicy(max_attempts=BLOCK_ATTEMPTS, base=0.2, cap=10.0)
#: the ValidationException reasons of a block that was damaged on the way (sent again)
RETRIED_REASONS = frozenset({"INVALID_CHECKSUM", "INVALID_BLOCK", "INVALID_CONTENT_ENCODING"})
#: too many requests in flight at once on the snapshot (EBS direct's own throttling)
_CONCURRENCY = frozenset({"ConcurrentLimitExceededException"})


class EbsDirect(Protocol):
    """The gateway calls the upload makes (:class:`~amibake.plugins.amazon.ec2_ebsdirect.EbsDirectCalls`)."""

    def start_snapshot(self, volume_size: int, *, tags: Tags | None = None, description: str = "",
                       encrypted: bool = False, kms_key_arn: str = "", timeout_minutes: int = 0,
                       region: str | None = None) -> StartedSnapshot: ...

    def put_snapshot_block(self, snapshot_id: str, index: int, data: bytes, checksum: str, *,
                           region: str | None = None) -> None: ...

    def complete_snapshot(self, snapshot_id: str, changed_blocks: int, checksum: str, *,
                          region: str | None = None) -> str: ...


# ---- the pure parts --------------------------------------------------------------------------------


def volume_size_gib(size_bytes: int, requested: int = 0) -> int:
    """The snapshot's size in GiB: ``requested``, or the disk rounded up to whole GiB (at least 1);
    a requested size smaller than the disk is refused."""
    needed = max(1, -(-size_bytes // GIB))
    if requested and requested < needed:
        raise BuildError(f"the disk image is {size_bytes} bytes: a snapshot of {requested} GiB cannot hold "
                         f"it (at least {needed} GiB)")
    return requested or needed


def data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """The (start, end) byte ranges of ``fd`` that may hold data: its holes left out where the file
    system tells them apart (``SEEK_DATA``/``SEEK_HOLE``), else the whole file."""
    seek_data = getattr(os, "SEEK_DATA", None)
    seek_hole = getattr(os, "SEEK_HOLE", None)
    if seek_data is None or seek_hole is None:
        return [(0, size)] if size else []
    out: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, seek_data)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                raise
            end = min(os.lseek(fd, start, seek_hole), size)
            if end > start:
                out.append((start, end))
            pos = end
    except OSError:
        return [(0, size)] if size else []
    return out


def blocks_of(extents: Iterable[tuple[int, int]], block_size: int) -> list[int]:
    """The indexes of the blocks of ``block_size`` bytes that the extents touch, in order."""
    found: set[int] = set()
    for start, end in extents:
        if end > start:
            found.update(range(start // block_size, (end - 1) // block_size + 1))
    return sorted(found)


def is_zero(block: bytes) -> bool:
    """Whether a block is all zero bytes (compared as one memory block, not byte by byte)."""
    return not block or (block[0] == 0 and block == bytes(len(block)))


def block_digest(block: bytes) -> bytes:
    return hashlib.sha256(block).digest()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def aggregate_checksum(digests: Mapping[int, bytes]) -> str:
    """CompleteSnapshot's LINEAR checksum: SHA-256 of the blocks' SHA-256 digests (raw bytes)
    concatenated in block-index order, base64."""
    h = hashlib.sha256()
    for index in sorted(digests):
        h.update(digests[index])
    return b64(h.digest())


def retried(exc: BlockRejected) -> bool:
    """Whether a failed PutSnapshotBlock is sent again: throttling, a 5xx or 429 answer, no answer
    at all, or a block AWS found damaged (its checksum)."""
    if exc.status == 0 and not exc.code:
        return True
    if exc.code in TRANSIENT_CODES or exc.code in THROTTLING or exc.code in _CONCURRENCY:
        return True
    if exc.status >= 500 or exc.status == 429:
        return True
    return exc.code == "ValidationException" and exc.reason in RETRIED_REASONS


def retry_pauses(rng: random.Random, policy: RetryPolicy | None = None) -> Iterator[float]:
    """The pauses before a block's second, third... attempt (``policy.max_attempts - 1`` of them;
    :data:`BLOCK_RETRY` by default)."""
    policy = policy or BLOCK_RETRY
    for attempt in range(1, policy.max_attempts):
        yield policy.backoff(attempt, rng)


# ---- progress --------------------------------------------------------------------------------------


class UploadProgress:
    """A line at each 10 % of the data to send: MiB sent, the rate (MiB/s) and the time left."""

    def __init__(self, ui: Any, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ui, self.total, self.done, self.shown = ui, total, 0, -1
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
            pct = 100 if self.total <= 0 else min(100, self.done * 100 // self.total)
            step = pct - pct % 10
            if step <= self.shown:
                return
            self.shown = step
            elapsed = max(self.clock() - self.started, 1e-6)
            rate = self.done / elapsed
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            self.ui.message(f"Uploaded {self.done / MIB:.1f} of {self.total / MIB:.1f} MiB ({step}%), "
                            f"{rate / MIB:.1f} MiB/s, ETA {left:.0f}s")


# ---- the upload ------------------------------------------------------------------------------------


@dataclass
class UploadResult:
    snapshot_id: str
    block_size: int
    volume_size: int
    #: blocks put (the changed-block count of CompleteSnapshot)
    changed_blocks: int
    #: the LINEAR aggregate checksum sent with CompleteSnapshot
    checksum: str
    bytes_sent: int
    seconds: float
    #: PutSnapshotBlock attempts that failed and were retried
    retries: int = 0
    digests: dict[int, bytes] = field(default_factory=dict, repr=False)


@dataclass
class UploadSpec:
    """What the snapshot is: size (0: the disk's, rounded up to GiB), tags, description, encryption."""

    volume_size: int = 0
    tags: Tags = field(default_factory=dict)
    description: str = ""
    encrypted: bool = False
    kms_key_arn: str = ""
    timeout_minutes: int = 0
    workers: int = 16


def upload_disk(gw: EbsDirect, image: Path, spec: UploadSpec, *, ui: Any, cancel: threading.Event,
                on_started: Callable[[str], None], region: str | None = None,
                sleep: Callable[[float], Any] | None = None, seed: int | None = None) -> UploadResult:
    """Upload ``image`` (a raw disk) into a new snapshot and complete it. ``on_started`` gets the
    snapshot id the moment StartSnapshot answers (to register its undo); the snapshot is not waited
    for here (the caller waits for ``completed``)."""
    t0 = time.monotonic()
    fd = os.open(image, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        gib = volume_size_gib(size, spec.volume_size)
        started = gw.start_snapshot(gib, tags=spec.tags, description=spec.description,
                                    encrypted=spec.encrypted, kms_key_arn=spec.kms_key_arn,
                                    timeout_minutes=spec.timeout_minutes, region=region)
        on_started(started.snapshot_id)
        ui.message(f"Snapshot ID: {started.snapshot_id} ({gib} GiB, blocks of {started.block_size} bytes)")
        bs = started.block_size
        indexes = blocks_of(data_extents(fd, size), bs)
        total = sum(min(bs, size - i * bs) for i in indexes)
        ui.message(f"Uploading {total / MIB:.1f} MiB of data ({size / MIB:.1f} MiB disk) with "
                   f"{spec.workers} worker(s)...")
        run = _Upload(gw, fd, size, started, region, cancel, UploadProgress(ui, total),
                      sleep or cancel.wait, random.Random(seed))
        run.go(indexes, max(1, spec.workers))
        checksum = aggregate_checksum(run.digests)
        gw.complete_snapshot(started.snapshot_id, len(run.digests), checksum, region=region)
        seconds = time.monotonic() - t0
        ui.message(f"Put {len(run.digests)} block(s), {run.sent / MIB:.1f} MiB in {seconds:.1f}s "
                   f"({run.sent / MIB / max(seconds, 1e-6):.1f} MiB/s); {len(indexes) - len(run.digests)} "
                   "all-zero block(s) skipped")
        return UploadResult(started.snapshot_id, bs, gib, len(run.digests), checksum, run.sent, seconds,
                            run.retries, dict(run.digests))
    finally:
        os.close(fd)


class _Upload:
    """The workers of one upload: a queue of block indexes, each block read with ``pread``."""

    def __init__(self, gw: EbsDirect, fd: int, size: int, started: StartedSnapshot, region: str | None,
                 cancel: threading.Event, progress: UploadProgress, sleep: Callable[[float], Any],
                 rng: random.Random) -> None:
        self.gw, self.fd, self.size, self.started, self.region = gw, fd, size, started, region
        self.cancel, self.progress, self.sleep, self.rng = cancel, progress, sleep, rng
        self.digests: dict[int, bytes] = {}
        self.sent = 0
        self.retries = 0
        self.failure: BaseException | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def go(self, indexes: list[int], workers: int) -> None:
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in indexes:
            todo.put(i)
        threads = [threading.Thread(target=self._worker, args=(todo,), name=f"ebs-put-{n}", daemon=True)
                   for n in range(min(workers, max(1, len(indexes))))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.failure is not None:
            raise self.failure
        if self.cancel.is_set():
            raise BuildCancelled()

    def _worker(self, todo: queue.SimpleQueue[int]) -> None:
        while not (self._stop.is_set() or self.cancel.is_set()):
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                self._block(index)
            except BaseException as exc:  # the first failure stops every worker
                with self._lock:
                    if self.failure is None:
                        self.failure = exc
                self._stop.set()
                return

    def _block(self, index: int) -> None:
        bs = self.started.block_size
        offset = index * bs
        length = min(bs, self.size - offset)
        data = os.pread(self.fd, length, offset)
        if len(data) != length:
            raise BuildError(f"the disk image changed while it was read: block {index} is short")
        if is_zero(data):
            self.progress(length)
            return
        block = data if length == bs else data + bytes(bs - length)  # the last block, padded
        digest = block_digest(block)
        pauses = retry_pauses(self.rng)
        while True:
            try:
                self.gw.put_snapshot_block(self.started.snapshot_id, index, block, b64(digest),
                                           region=self.region)
                break
            except BlockRejected as exc:
                pause = next(pauses, None) if retried(exc) else None
                if pause is None:
                    snap = self.started.snapshot_id
                    raise BuildError(f"PutSnapshotBlock {index} of {snap}: {exc}") from exc
                with self._lock:
                    self.retries += 1
                if self.sleep(pause) is True or self.cancel.is_set() or self._stop.is_set():
                    return  # cancelled (cancel.wait answers True) or another block failed
        with self._lock:
            self.digests[index] = digest
            self.sent += bs
        self.progress(length)
