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
