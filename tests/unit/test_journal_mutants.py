"""The run journal's details that mutation testing (docs/mutation.md) found untested in-process:
what a finished build keeps when a record has no region or no image, the text and errno of a refused
write, the records a build writes besides intent/created, and how a record missing keys reads back."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from amibake.journal import (
    Journal,
    JournalError,
    Resource,
    RunRecord,
    is_active,
    load_run,
    now_iso,
    run_files,
    state_dir,
)

# ---- RunRecord.keeps: exactly the listed artifacts of finished builds, and their snapshots ------


def _record(**finished: dict[str, str]) -> RunRecord:
    return RunRecord(run_id="r", path=Path("r.jsonl"), finished=dict(finished))


def test_only_images_and_snapshots_are_ever_kept() -> None:
    rec = _record(b={"us-east-1": "ami-1"})
    for kind in ("instance", "volume", "key-pair", "security-group"):
        assert not rec.keeps(Resource(kind, "us-east-1", "ami-1", detail={"image": "ami-1"}))


def test_an_image_is_kept_in_its_artifact_region_only() -> None:
    rec = _record(b={"us-east-1": "ami-1"}, c={"eu-west-1": "ami-3"})
    assert rec.keeps(Resource("image", "us-east-1", "ami-1"))
    assert rec.keeps(Resource("image", "eu-west-1", "ami-3"))
    assert not rec.keeps(Resource("image", "us-west-2", "ami-1"))  # the same id, another region
    assert not rec.keeps(Resource("image", "us-east-1", "ami-3"))
    assert not rec.keeps(Resource("image", "us-east-1", "ami-2"))


def test_an_image_without_a_region_is_kept_by_its_id_alone() -> None:
    rec = _record(b={"us-east-1": "ami-1"})
    assert rec.keeps(Resource("image", "", "ami-1"))
    assert not rec.keeps(Resource("image", "", "ami-2"))


def test_a_snapshot_is_kept_by_the_artifact_image_it_belongs_to() -> None:
    rec = _record(b={"us-east-1": "ami-1"})
    assert rec.keeps(Resource("snapshot", "us-east-1", "snap-1", detail={"image": "ami-1"}))
    assert not rec.keeps(Resource("snapshot", "us-west-2", "snap-1", detail={"image": "ami-1"}))
    assert not rec.keeps(Resource("snapshot", "us-east-1", "snap-2", detail={"image": "ami-2"}))
    # a snapshot's own id is no artifact, even when it equals one
    assert not rec.keeps(Resource("snapshot", "us-east-1", "ami-1"))


def test_a_snapshot_without_a_region_is_kept_by_its_image_alone() -> None:
    rec = _record(b={"us-east-1": "ami-1"})
    assert rec.keeps(Resource("snapshot", "", "snap-1", detail={"image": "ami-1"}))
    assert not rec.keeps(Resource("snapshot", "", "snap-2", detail={"image": "ami-2"}))


def test_a_snapshot_without_an_image_is_never_kept() -> None:
    """An empty image never matches, not even an artifact recorded with an empty id."""
    rec = _record(b={"us-east-1": ""}, c={"": ""})
    assert not rec.keeps(Resource("snapshot", "us-east-1", "snap-1"))
    assert not rec.keeps(Resource("snapshot", "", "snap-1"))
    assert not rec.keeps(Resource("snapshot", "us-east-1", "snap-1", detail={"image": ""}))


def test_nothing_is_kept_before_a_build_finishes() -> None:
    rec = _record()
    assert rec.artifacts() == set()
    assert not rec.keeps(Resource("image", "us-east-1", "ami-1"))
    assert not rec.keeps(Resource("snapshot", "", "snap-1", detail={"image": "ami-1"}))


# ---- Journal.write: a refused write is a JournalError naming the file and the cause -------------


def test_a_refused_write_names_the_journal_and_the_systems_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal("full", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(JournalError) as caught:
        j.for_build("b").created("volume", "r", "vol-2")
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.strerror == f"cannot write the run journal {j.path}: No space left on device"
    assert isinstance(caught.value.__cause__, OSError) and caught.value.__cause__.errno == errno.ENOSPC


def test_a_write_that_makes_no_progress_is_an_eio_short_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal("stuck", tmp_path)
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    with pytest.raises(JournalError) as caught:
        j.write("intent", build="b")
    assert caught.value.errno == errno.EIO
    assert caught.value.strerror == (
        f"cannot write the run journal {j.path}: short write: the file accepts no more data")


def test_an_error_without_errno_is_eio_with_the_errors_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal("noerrno", tmp_path)

    def odd(fd: int, data: bytes) -> int:
        raise OSError("the disk went away")

    monkeypatch.setattr(os, "write", odd)
    with pytest.raises(JournalError) as caught:
        j.write("intent", build="b")
    assert caught.value.errno == errno.EIO
    assert caught.value.strerror == f"cannot write the run journal {j.path}: the disk went away"


def test_a_refused_fsync_is_an_error_and_cuts_the_record_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal("nosync", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1")
    before = j.path.read_bytes()

    def refuse(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", refuse)
    with pytest.raises(JournalError, match="Input/output error"):
        j.for_build("b").created("volume", "r", "vol-2")
    monkeypatch.undo()
    j.close()
    assert j.path.read_bytes() == before


def test_a_failing_cut_off_still_raises_the_journal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When even the ftruncate fails, the write's own error is what the caller sees."""
    j = Journal("notrunc", tmp_path)

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def refuse(fd: int, size: int) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "write", full)
    monkeypatch.setattr(os, "ftruncate", refuse)
    with pytest.raises(JournalError) as caught:
        j.write("intent", build="b")
    assert caught.value.errno == errno.ENOSPC


def test_writes_of_one_byte_at_a_time_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:1])))
    j = Journal("dribble", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1")
    monkeypatch.undo()
    j.close()
    assert [r.id for r in load_run(j.path).live] == ["vol-1"]


def test_a_record_is_one_line_of_json_with_sorted_keys(tmp_path: Path) -> None:
    j = Journal("sorted", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1", zone="r-a", attempt=2)
    j.close()
    (line,) = j.path.read_text().splitlines()
    entry = json.loads(line)
    assert line == json.dumps(entry, sort_keys=True)
    assert list(entry) == ["at", "attempt", "build", "ev", "id", "kind", "region", "run", "zone"]


# ---- the records a build writes, and its closing summary -----------------------------------------


def _lines(j: Journal) -> list[dict[str, object]]:
    j.close()
    return [{k: v for k, v in json.loads(line).items() if k not in ("at", "run")}
            for line in j.path.read_bytes().splitlines()]


def test_started_finished_and_removed_records_carry_the_build(tmp_path: Path) -> None:
    j = Journal("records", tmp_path)
    b = j.for_build("web")
    b.started(region="us-east-1", source="ami-0")
    b.removed("instance", "us-east-1", "i-1")
    b.finished({"us-east-1": "ami-1"})
    assert _lines(j) == [
        {"ev": "build-started", "build": "web", "region": "us-east-1", "source": "ami-0"},
        {"ev": "removed", "build": "web", "kind": "instance", "region": "us-east-1", "id": "i-1"},
        {"ev": "finished", "build": "web", "artifacts": {"us-east-1": "ami-1"}},
    ]
    rec = load_run(j.path)
    assert rec.builds == {"web"} and rec.finished == {"web": {"us-east-1": "ami-1"}}
    assert rec.access == {}  # only access records say how a region was reached


def test_access_records_carry_the_build_and_leave_out_empty_values(tmp_path: Path) -> None:
    j = Journal("access", tmp_path)
    j.for_build("web").access("us-east-1", endpoint="http://e", profile="", role_arn="arn:r")
    assert _lines(j) == [{"ev": "access", "build": "web", "region": "us-east-1", "endpoint": "http://e",
                          "role_arn": "arn:r"}]


def test_a_resource_removed_without_being_created_here_is_still_in_the_summary(tmp_path: Path) -> None:
    j = Journal("summary", tmp_path)
    b = j.for_build("b")
    b.created("volume", "r", "vol-1")
    b.removed("instance", "us-east-1", "i-9")  # created by another process (or an earlier attempt)
    b.removed("iam-role", "", "role-x")  # a global resource: no region
    b.removed("volume", "r", "vol-1")
    j.close()
    assert b.removed_log == ["instance i-9 (us-east-1)", "iam-role role-x", "volume vol-1 (r)"]
    assert b.live() == [] and b.live_resources() == []


def test_the_summary_follows_the_cloud_when_the_journal_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal("failing", tmp_path)
    b = j.for_build("b")
    b.created("volume", "r", "vol-1")

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(JournalError):
        b.created("instance", "r", "i-1")
    with pytest.raises(JournalError):
        b.removed("volume", "r", "vol-1")
    assert b.live_resources() == [("instance", "r", "i-1")]
    assert b.removed_log == ["volume vol-1 (r)"]


# ---- reading: records missing keys, what goes into a resource's detail ----------------------------


def test_records_missing_keys_read_as_empty_text(tmp_path: Path) -> None:
    path = tmp_path / "bare.jsonl"
    records = [{"ev": "created", "kind": "volume"}, {"ev": "intent", "kind": "instance"}, {"ev": "created"},
               {"ev": "finished", "build": "b", "artifacts": ["not", "a", "map"]},
               {"ev": "access", "region": "r", "endpoint": 5, "profile": "p", "role_arn": ""},
               {"kind": "nothing"}, ["not", "a", "record"]]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    rec = load_run(path)
    assert rec.run_id == "bare" and rec.started == ""
    assert [(r.kind, r.region, r.id, r.build) for r in rec.live] == [("volume", "", "", ""), ("", "", "", "")]
    assert [(r.kind, r.region, r.id, r.build) for r in rec.dangling] == [("instance", "", "", "")]
    assert rec.builds == {"b"} and rec.regions == {"r"}
    assert rec.finished == {"b": {}}
    assert rec.access == {"r": {"profile": "p"}}


def test_a_resources_detail_is_every_key_but_the_identifying_ones(tmp_path: Path) -> None:
    path = tmp_path / "detail.jsonl"
    path.write_text(json.dumps({"ev": "created", "at": "T", "run": "detail", "build": "b", "kind": "image",
                                "region": "r", "id": "ami-1", "name": "n", "token": "t"}) + "\n")
    (res,) = load_run(path).live
    assert dict(res.detail) == {"at": "T", "name": "n", "token": "t"}


def test_the_run_starts_at_its_first_record(tmp_path: Path) -> None:
    path = tmp_path / "start.jsonl"
    path.write_text("".join(json.dumps({"ev": "intent", "at": at}) + "\n" for at in ("T1", "T2")))
    assert load_run(path).started == "T1"


def test_run_files_are_listed_oldest_first(tmp_path: Path) -> None:
    assert run_files(tmp_path) == []
    runs = tmp_path / "runs"
    runs.mkdir()
    for i, name in enumerate(["b", "a", "c"]):
        (runs / f"{name}.jsonl").write_text("")
        os.utime(runs / f"{name}.jsonl", (1_000_000 + i, 1_000_000 + i))
    (runs / "notes.txt").write_text("")
    assert [p.name for p in run_files(tmp_path)] == ["b.jsonl", "a.jsonl", "c.jsonl"]


def test_a_dangling_intent_keeps_its_detail(tmp_path: Path) -> None:
    j = Journal("dangling", tmp_path)
    j.for_build("b").intent("image", "r", name="my-ami", source="ami-0")
    j.close()
    (res,) = load_run(j.path).dangling
    assert {k: v for k, v in res.detail.items() if k != "at"} == {"name": "my-ami", "source": "ami-0"}


def test_records_after_a_line_that_is_not_json_are_still_read(tmp_path: Path) -> None:
    """A bad line is skipped, not the end of the journal. (A torn last line with no newline is another
    matter: the next record appended is glued to it and lost; see docs/mutation.md.)"""
    j = Journal("torn", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1")
    j.close()
    with open(j.path, "ab") as f:
        f.write(b'{"ev": "created", "kind": "inst\n')
    j2 = Journal("torn", tmp_path)
    j2.write("removed", build="b", kind="volume", region="r", id="vol-1", by="cleanup")
    j2.close()
    assert load_run(j.path).live == []


def test_a_journal_reopens_after_close(tmp_path: Path) -> None:
    j = Journal("reopen", tmp_path)
    j.write("intent", build="b")
    j.close()
    j.write("intent", build="c")
    j.close()
    assert load_run(j.path).builds == {"b", "c"}


def test_a_missing_journal_is_not_active(tmp_path: Path) -> None:
    assert not is_active(tmp_path / "runs" / "gone.jsonl")


def test_the_state_dir_comes_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMIBAKE_STATE_DIR", str(tmp_path / "s"))
    assert state_dir() == tmp_path / "s"


def test_times_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from datetime import UTC, datetime

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        stamp = datetime.strptime(now_iso(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_bad_run_id_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^not a valid run id: '\.\./x'$"):
        Journal("../x", tmp_path)
