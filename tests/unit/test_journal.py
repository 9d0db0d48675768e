"""The run journal: durable entries, torn lines, what is live, what a finished build keeps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amibake.journal import Journal, is_active, load_run, run_files, state_dir, valid_run_id


def test_state_dir_precedence(tmp_path: Path) -> None:
    assert state_dir({"AMIBAKE_STATE_DIR": str(tmp_path), "XDG_STATE_HOME": "/x"}) == tmp_path
    assert state_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/amibake")
    assert state_dir({"HOME": "/h"}) == Path("/h/.local/state/amibake")


def test_created_then_removed_is_not_live(tmp_path: Path) -> None:
    j = Journal("run1", tmp_path)
    b = j.for_build("b")
    b.intent("key-pair", "us-east-1", name="k")
    b.created("key-pair", "us-east-1", "k", name="k")
    b.intent("instance", "us-east-1", token="t")
    b.created("instance", "us-east-1", "i-1", token="t")
    b.removed("instance", "us-east-1", "i-1")
    j.close()
    rec = load_run(j.path)
    assert [r.id for r in rec.live] == ["k"]
    assert rec.dangling == []
    assert b.live() == ["key-pair k (us-east-1)"]
    assert b.removed_log == ["instance i-1 (us-east-1)"]


def test_intent_without_created_is_dangling(tmp_path: Path) -> None:
    j = Journal("run2", tmp_path)
    j.for_build("b").intent("image", "us-west-2", name="my-ami")
    j.close()
    rec = load_run(j.path)
    assert [(r.kind, r.region, r.id) for r in rec.dangling] == [("image", "us-west-2", "my-ami")]
    assert rec.regions == {"us-west-2"}


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    j = Journal("run3", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1")
    j.close()
    with open(j.path, "ab") as f:
        f.write(b'{"ev": "created", "kind": "inst')
    assert [r.id for r in load_run(j.path).live] == ["vol-1"]


def test_finished_build_keeps_its_images_and_snapshots(tmp_path: Path) -> None:
    j = Journal("run4", tmp_path)
    b = j.for_build("b")
    b.created("image", "r", "ami-1")
    b.created("snapshot", "r", "snap-1", image="ami-1")
    b.created("instance", "r", "i-1")
    b.finished({"r": "ami-1"})
    j.close()
    rec = load_run(j.path)
    kept = {r.id for r in rec.live if rec.keeps(r)}
    assert kept == {"ami-1", "snap-1"}


def test_unfinished_build_keeps_nothing(tmp_path: Path) -> None:
    j = Journal("run5", tmp_path)
    j.for_build("b").created("image", "r", "ami-1")
    j.close()
    rec = load_run(j.path)
    assert not any(rec.keeps(r) for r in rec.live)


def test_file_mode_and_lock(tmp_path: Path) -> None:
    j = Journal("run6", tmp_path)
    j.for_build("b").started()
    assert (os.stat(j.path).st_mode & 0o777) == 0o600
    assert is_active(j.path)
    j.close()
    assert not is_active(j.path)
    assert run_files(tmp_path) == [j.path]


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-x", "x" * 200])
def test_bad_run_ids_are_refused(bad: str, tmp_path: Path) -> None:
    assert not valid_run_id(bad)
    with pytest.raises(ValueError):
        Journal(bad, tmp_path)


_ids = st.text(alphabet="abcdef0123456789", min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["created", "removed"]), _ids), max_size=30))
def test_live_is_created_minus_removed(events: list[tuple[str, str]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        j = Journal("prop", Path(d))
        b = j.for_build("b")
        live: dict[str, None] = {}
        for ev, rid in events:
            if ev == "created":
                b.created("volume", "r", rid)
                live[rid] = None
            else:
                b.removed("volume", "r", rid)
                live.pop(rid, None)
        j.close()
        assert {r.id for r in load_run(j.path).live} == set(live)


# ---- every write checked: a record is complete or absent (#19 finding 1) ----------------------




def _write_under_limit(path: Path, limit: int, records: int) -> str:
    """In a child with `ulimit -f`: write records until one fails; return what the child saw."""
    import subprocess
    import sys

    code = (
        "import sys, resource, signal\n"
        "from pathlib import Path\n"
        "from amibake.journal import Journal, JournalError\n"
        f"signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        f"j = Journal('lim', Path(sys.argv[1])).for_build('b')\n"
        f"for i in range({records}):\n"
        "    try:\n"
        "        j.created('volume', 'r', f'vol-{i:04d}', pad='x' * 40)\n"
        "    except JournalError as exc:\n"
        "        print('failed at', i, exc); break\n"
        "else:\n"
        "    print('all written')\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_a_write_cut_short_by_a_file_size_limit_is_an_error_and_leaves_no_torn_record(
    tmp_path: Path,
) -> None:
    # the repro is `ulimit -f 3` (3 KiB): the record crossing the limit is cut short
    out = _write_under_limit(tmp_path, 3 * 1024, 200)
    assert out.startswith("failed at "), out
    assert "cannot write the run journal" in out and "File too large" in out, out
    n = int(out.split()[2])
    raw = (tmp_path / "runs" / "lim.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "a partial record was left at the end of the journal"
    lines = raw.splitlines()
    assert len(lines) == n, (len(lines), n)  # every record before the failing one, whole
    live = [r.id for r in load_run(tmp_path / "runs" / "lim.jsonl").live]
    assert live == [f"vol-{i:04d}" for i in range(n)]


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.write
    calls: list[int] = []

    def dribble(fd: int, data: bytes) -> int:  # a write that takes 7 bytes at a time
        calls.append(len(data))
        return real(fd, bytes(data[:7]))

    j = Journal("short", tmp_path)
    monkeypatch.setattr(os, "write", dribble)
    j.for_build("b").created("volume", "r", "vol-1")
    monkeypatch.setattr(os, "write", real)
    j.close()
    assert len(calls) > 5
    assert [r.id for r in load_run(j.path).live] == ["vol-1"]


def test_a_write_that_makes_no_progress_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amibake.journal import JournalError

    real = os.write
    j = Journal("stuck", tmp_path)
    j.for_build("b").created("volume", "r", "vol-1")
    state = {"n": 0}

    def half_then_nothing(fd: int, data: bytes) -> int:
        state["n"] += 1
        return real(fd, bytes(data[:10])) if state["n"] == 1 else 0

    monkeypatch.setattr(os, "write", half_then_nothing)
    with pytest.raises(JournalError, match="short write"):
        j.for_build("b").created("volume", "r", "vol-2")
    monkeypatch.setattr(os, "write", real)
    j.close()
    raw = j.path.read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1  # the cut-off second record is gone
    assert [r.id for r in load_run(j.path).live] == ["vol-1"]


# ---- what a finished build keeps: exactly its listed artifacts ---------------------------------


def test_finished_build_keeps_only_its_listed_artifacts(tmp_path: Path) -> None:
    j = Journal("run7", tmp_path)
    b = j.for_build("b")
    b.created("image", "r1", "ami-1")
    b.created("snapshot", "r1", "snap-1", image="ami-1")
    b.created("image", "r1", "ami-dup")  # a second AMI from a retried CreateImage
    b.created("snapshot", "r1", "snap-dup", image="ami-dup")
    b.created("image", "r2", "ami-2")
    b.created("snapshot", "r2", "snap-2", image="ami-2")
    b.finished({"r1": "ami-1", "r2": "ami-2"})
    j.close()
    rec = load_run(j.path)
    assert {r.id for r in rec.live if rec.keeps(r)} == {"ami-1", "snap-1", "ami-2", "snap-2"}
    assert {r.id for r in rec.live if not rec.keeps(r)} == {"ami-dup", "snap-dup"}


def test_access_is_recorded_per_region_without_credentials(tmp_path: Path) -> None:
    j = Journal("run8", tmp_path)
    b = j.for_build("b")
    role = "arn:aws:iam::1:role/r"
    b.access("us-east-1", endpoint="http://127.0.0.1:4566", profile="ci", role_arn=role)
    b.access("us-west-2", endpoint="", profile="ci")
    j.close()
    rec = load_run(j.path)
    assert rec.access == {
        "us-east-1": {"endpoint": "http://127.0.0.1:4566", "profile": "ci", "role_arn": role},
        "us-west-2": {"profile": "ci"},
    }


def test_a_removed_entry_settles_the_intent_it_names(tmp_path: Path) -> None:
    j = Journal("run9", tmp_path)
    b = j.for_build("b")
    b.intent("key-pair", "r", name="k1")
    b.intent("security-group", "r", name="sg-name")
    j.write("removed", build="b", kind="key-pair", region="r", id="k1", by="cleanup")
    j.write("removed", build="b", kind="security-group", region="r", id="sg-1", name="sg-name", by="cleanup")
    j.close()
    assert load_run(j.path).dangling == []


# ---- liveness: the heartbeat a running build shows every cleaner ------------------------------


class _Gateway:
    def __init__(self, gone: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.calls: list[tuple[tuple[str, ...], dict[str, str], str]] = []
        self.gone = set(gone)

    def create_tags(self, ids: list[str], tags: dict[str, str], region: str) -> None:
        from amibake.plugins.amazon.ec2 import AwsError

        self.calls.append((tuple(ids), dict(tags), region))
        if self.gone & set(ids):
            raise AwsError("CreateTags", "InvalidGroup.NotFound", "gone")


def test_a_heartbeat_tags_the_builds_live_ec2_resources_per_region(tmp_path: Path) -> None:
    from amibake.plugins.amazon.liveness import HEARTBEAT_TAG, Heartbeat, parse_time

    j = Journal("hb", tmp_path)
    b = j.for_build("b")
    b.created("key-pair", "us-east-1", "kp")  # tagged by its key-... id only: not beaten on
    b.created("security-group", "us-east-1", "sg-1")
    b.created("instance", "us-east-1", "i-1")
    b.created("image", "us-west-2", "ami-2")
    b.created("volume", "us-east-1", "vol-1")
    b.removed("volume", "us-east-1", "vol-1")
    gw = _Gateway()
    Heartbeat(gw, b, every=60).beat()  # type: ignore[arg-type]
    j.close()
    by_region = {region: set(ids) for ids, _, region in gw.calls}
    assert by_region == {"us-east-1": {"sg-1", "i-1"}, "us-west-2": {"ami-2"}}
    stamps = {tags[HEARTBEAT_TAG] for _, tags, _ in gw.calls}
    assert len(stamps) == 1 and parse_time(stamps.pop()) is not None


def test_a_heartbeat_goes_on_past_a_resource_that_is_gone(tmp_path: Path) -> None:
    from amibake.plugins.amazon.liveness import Heartbeat

    j = Journal("hb2", tmp_path)
    b = j.for_build("b")
    b.created("security-group", "r", "sg-gone")
    b.created("instance", "r", "i-1")
    gw = _Gateway(gone={"sg-gone"})
    Heartbeat(gw, b, every=60).beat()  # type: ignore[arg-type]
    j.close()
    assert (("i-1",), gw.calls[-1][1], "r") in gw.calls  # beaten on alone after the batch failed


def test_a_heartbeat_thread_beats_on_schedule_and_stops(tmp_path: Path) -> None:
    import time

    from amibake.plugins.amazon.liveness import Heartbeat

    j = Journal("hb3", tmp_path)
    b = j.for_build("b")
    b.created("instance", "r", "i-1")
    gw = _Gateway()
    hb = Heartbeat(gw, b, every=0.01).start()  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while hb.beats < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    hb.stop()
    j.close()
    assert hb.beats >= 3
    after = hb.beats
    assert not hb._thread.is_alive() and hb.beats == after


def test_last_sign_of_life_is_the_newest_of_heartbeat_and_creation() -> None:
    from amibake.plugins.amazon.liveness import last_sign_of_life, parse_time, stale_after

    created, beat = "2026-01-01T00:00:00.000000Z", "2026-01-01T00:10:00.000000Z"
    assert last_sign_of_life({"amibake:created": created, "amibake:heartbeat": beat}) == parse_time(beat)
    assert last_sign_of_life({"amibake:created": created}) == parse_time(created)
    assert last_sign_of_life({"amibake:heartbeat": "garbage"}) is None
    assert stale_after({}) == 300 and stale_after({"AMIBAKE_HEARTBEAT_SECONDS": "2"}) == 10
    assert stale_after({"AMIBAKE_HEARTBEAT_SECONDS": "nonsense"}) == 300


def test_endpoints_are_journaled_without_userinfo() -> None:
    from amibake.plugins.amazon.builder import _public_url

    assert _public_url("https://user:pw@ec2.example:8443/x") == "https://ec2.example:8443/x"
    assert _public_url("http://127.0.0.1:4566") == "http://127.0.0.1:4566"
    assert _public_url("") == ""
