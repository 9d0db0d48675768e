"""The run journal: a durable, append-only record of every cloud resource a run creates.

One JSON-lines file per run, ``<state dir>/runs/<run id>.jsonl``. The state directory is
``$AMIBAKE_STATE_DIR``, else ``$XDG_STATE_HOME/amibake``, else ``~/.local/state/amibake``.

Around each create call the gateway writes two entries, each flushed and fsync'ed before it goes on:

* ``intent`` *before* the call: what is about to be created (kind, region, name or client token),
  so that a crash while the call is in flight still leaves a record to search by;
* ``created`` *after* it: the resource id.

Removals append ``removed``; the end of a successful build appends ``finished`` with its artifacts
(exactly those AMIs, and their snapshots, are the user's and are never cleaned up). ``access``
records, per region, how the run reached AWS (endpoint, profile, role ARN; never a credential), so
that ``amibake cleanup`` talks to the same endpoint.

Every write is checked: a short write is completed or, when the disk or a quota refuses the rest,
the partial record is cut off again (``ftruncate``) and the write raises :class:`JournalError`, so a
record is on disk whole or not at all. A torn last line (power loss mid-write) is ignored when
reading. ``amibake cleanup`` reads these files (:func:`load_run`) and
appends its own ``removed`` entries, so running it twice is harmless.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: resource kinds, in the order they must be removed (dependents first)
KINDS = (
    "mount",  # amazon-chroot's mounts on the build host (region ""): unmounted before the volume goes
    "instance",
    "fleet",
    "spot-request",
    "launch-template",
    "iam-role-in-profile",
    "iam-role-policy",
    "iam-instance-profile",
    "iam-role",
    "security-group",
    "key-pair",
    "import-task",
    "volume",
    "image",
    "snapshot",
    "s3-object",
)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where amibake keeps its journals (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("AMIBAKE_STATE_DIR"):
        return Path(env["AMIBAKE_STATE_DIR"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "amibake"
    return Path(env.get("HOME") or Path.home()) / ".local" / "state" / "amibake"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def valid_run_id(run_id: str) -> bool:
    return bool(_RUN_ID.match(run_id))


class JournalError(OSError):
    """A journal entry could not be made durable (nothing of it is left in the file)."""


class Journal:
    """The journal file of one run; safe to share between the run's build threads."""

    def __init__(self, run_id: str, directory: Path | None = None) -> None:
        if not valid_run_id(run_id):
            raise ValueError(f"not a valid run id: {run_id!r}")
        self.run_id = run_id
        self.directory = (directory or state_dir()) / "runs"
        self.path = self.directory / f"{run_id}.jsonl"
        self._lock = threading.Lock()
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            _sync_directory(self.directory)  # the new file's entry survives a power loss too
            # held while the run writes: `amibake cleanup` leaves a run alone while it is locked
            fcntl.flock(self._fd, fcntl.LOCK_SH)
        return self._fd

    def write(self, event: str, **data: Any) -> None:
        """Append one entry and make it durable (fsync) before returning."""
        entry = {"ev": event, "at": now_iso(), "run": self.run_id, **data}
        line = (json.dumps(entry, sort_keys=True, default=str) + "\n").encode()
        with self._lock:
            fd = self._open()
            size = os.lseek(fd, 0, os.SEEK_END)
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # a torn last line (a writer killed mid-write): this record starts a line of its own,
                # or it would be glued to the torn one and lost with it when read
                line = b"\n" + line
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)  # complete or absent: never a torn record
                except OSError:
                    pass
                raise JournalError(
                    exc.errno or errno.EIO,
                    f"cannot write the run journal {self.path}: {exc.strerror or exc}",
                ) from exc

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def for_build(self, build: str) -> BuildJournal:
        return BuildJournal(self, build)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written; a write that makes no progress is an error."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "short write: the file accepts no more data")
        view = view[n:]


@dataclass
class BuildJournal:
    """A run's journal as seen by one build: every entry carries the build name.

    It also keeps, in memory, what this build created and removed, for the closing summary.
    """

    journal: Journal
    build: str
    #: "kind id (region)" of each resource removed, in order
    removed_log: list[str] = field(default_factory=list)
    _live: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _mem_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def live(self) -> list[str]:
        """What this build created and has not removed (yet)."""
        with self._mem_lock:
            return list(self._live.values())

    def live_resources(self) -> list[tuple[str, str, str]]:
        """(kind, region, id) of what this build created and has not removed (yet)."""
        with self._mem_lock:
            return list(self._live)

    @property
    def run_id(self) -> str:
        return self.journal.run_id

    def intent(self, kind: str, region: str, **detail: Any) -> None:
        self.journal.write("intent", build=self.build, kind=kind, region=region, **detail)

    # created/removed: the in-memory record follows the cloud, whether or not the entry could be
    # written (a build whose journal fails still reports truly what it removed and what is left)

    def created(self, kind: str, region: str, rid: str, **detail: Any) -> None:
        try:
            self.journal.write("created", build=self.build, kind=kind, region=region, id=rid, **detail)
        finally:
            with self._mem_lock:
                self._live[(kind, region, rid)] = Resource(kind, region, rid).describe()

    def removed(self, kind: str, region: str, rid: str) -> None:
        try:
            self.journal.write("removed", build=self.build, kind=kind, region=region, id=rid)
        finally:
            with self._mem_lock:
                desc = self._live.pop((kind, region, rid), None)
                self.removed_log.append(desc or Resource(kind, region, rid).describe())

    def started(self, **detail: Any) -> None:
        self.journal.write("build-started", build=self.build, **detail)

    def finished(self, artifacts: Mapping[str, str]) -> None:
        self.journal.write("finished", build=self.build, artifacts=dict(artifacts))

    def access(self, region: str, **how: str) -> None:
        """How this build reaches ``region``: endpoint, profile, role ARN. Never a credential."""
        self.journal.write("access", build=self.build, region=region,
                           **{k: v for k, v in how.items() if v})


# ---------------------------------------------------------------------------------------------
# reading


@dataclass(frozen=True)
class Resource:
    kind: str
    region: str
    id: str
    build: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.kind} {self.id} ({self.region})" if self.region else f"{self.kind} {self.id}"


@dataclass
class RunRecord:
    """What one run's journal says."""

    run_id: str
    path: Path
    started: str = ""
    #: created and not yet removed, in creation order
    live: list[Resource] = field(default_factory=list)
    #: intents with no matching ``created`` entry (a crash while the call was in flight)
    dangling: list[Resource] = field(default_factory=list)
    #: build name -> {region: AMI id} of the builds that finished
    finished: dict[str, dict[str, str]] = field(default_factory=dict)
    #: every region the run touched
    regions: set[str] = field(default_factory=set)
    builds: set[str] = field(default_factory=set)
    #: region -> how the run reached it ({"endpoint": ..., "profile": ..., "role_arn": ...})
    access: dict[str, dict[str, str]] = field(default_factory=dict)

    def artifacts(self) -> set[tuple[str, str]]:
        """(region, AMI id) of every AMI a finished build of this run listed as its artifact."""
        return {(r, a) for arts in self.finished.values() for r, a in arts.items()}

    def keeps(self, res: Resource) -> bool:
        """True for exactly the listed artifacts of finished builds: their AMIs and those AMIs'
        snapshots. Any other image or snapshot of the run (a duplicate, an intermediate) is not kept."""
        if res.kind not in ("image", "snapshot"):
            return False
        arts = self.artifacts()
        if res.kind == "image":
            return (res.region, res.id) in arts or (not res.region and res.id in {a for _, a in arts})
        image = str(res.detail.get("image", ""))
        return bool(image) and ((res.region, image) in arts
                                or (not res.region and image in {a for _, a in arts}))


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    for line in raw.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn line from a crash mid-write
        if isinstance(entry, dict):
            yield entry


def load_run(path: Path) -> RunRecord:
    rec = RunRecord(run_id=path.name.removesuffix(".jsonl"), path=path)
    live: dict[tuple[str, str, str], Resource] = {}
    intents: dict[tuple[str, str, str], Resource] = {}
    for e in _entries(path):
        ev = str(e.get("ev", ""))
        at = str(e.get("at", ""))
        rec.started = rec.started or at
        build = str(e.get("build", ""))
        if build:
            rec.builds.add(build)
        region = str(e.get("region", ""))
        if region:
            rec.regions.add(region)
        kind = str(e.get("kind", ""))
        detail = {k: v for k, v in e.items() if k not in ("ev", "run", "build", "kind", "region", "id")}
        if ev == "intent":
            token = str(e.get("token") or e.get("name") or "")
            intents[(kind, region, token)] = Resource(kind, region, token, build, detail)
        elif ev == "created":
            rid = str(e.get("id", ""))
            live[(kind, region, rid)] = Resource(kind, region, rid, build, detail)
            token = str(e.get("token") or e.get("name") or "")
            intents.pop((kind, region, token), None)
        elif ev == "removed":
            rid = str(e.get("id", ""))
            live.pop((kind, region, rid), None)
            # cleanup found nothing (or removed what) a dangling intent named: it is settled
            intents.pop((kind, region, rid), None)
            intents.pop((kind, region, str(e.get("name") or "")), None)
        elif ev == "finished":
            arts = e.get("artifacts") or {}
            rec.finished[build] = {str(k): str(v) for k, v in arts.items()} if isinstance(arts, dict) else {}
        elif ev == "access" and region:
            rec.access[region] = {k: str(e[k]) for k in ("endpoint", "profile", "role_arn")
                                  if isinstance(e.get(k), str) and e[k]}
    rec.live = list(live.values())
    rec.dangling = list(intents.values())
    return rec


def is_active(path: Path) -> bool:
    """True while a live amibake process holds the run's journal open (the run is in progress)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def run_files(directory: Path | None = None) -> list[Path]:
    runs = (directory or state_dir()) / "runs"
    try:
        return sorted(runs.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    except FileNotFoundError:
        return []
