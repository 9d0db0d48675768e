"""The test-isolation machinery itself (tests/isolation.py, tests/conftest.py): each test's own state
dir, and the session-end check that fails the suite when a test wrote under the real one."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from amibake.journal import state_dir
from tests.isolation import changes, real_state_dirs, snapshot
from tests.stackkit import ISOLATED_VARS, Stack, StackError, amibake_exe

ROOT = Path(__file__).resolve().parents[2]


def test_each_test_has_its_own_state_tmp_and_socket(isolated: dict[str, str]) -> None:
    assert set(isolated) == set(ISOLATED_VARS)
    for key in ISOLATED_VARS:
        assert os.environ[key] == isolated[key]
    assert state_dir() == Path(isolated["AMIBAKE_STATE_DIR"])
    xdg = isolated["XDG_STATE_HOME"]
    assert state_dir({"XDG_STATE_HOME": xdg}) == Path(xdg) / "amibake"
    assert Path(tempfile.gettempdir()) == Path(isolated["TMPDIR"])
    # what stack tests pass to their subprocesses carries them
    env = Stack(Path(isolated["TMPDIR"]) / "stack").env()
    assert {k: env[k] for k in ISOLATED_VARS} == isolated


def test_snapshot_compare_sees_additions_removals_and_changes(tmp_path: Path) -> None:
    root = tmp_path / "state"
    assert snapshot(root) == {}
    root.mkdir()
    (root / "runs").mkdir()
    (root / "runs" / "a.jsonl").write_text("1\n")
    before = snapshot(root)
    assert changes(before, snapshot(root)) == []
    (root / "runs" / "b.jsonl").write_text("x")
    (root / "runs" / "a.jsonl").write_text("1\n2\n")
    after = snapshot(root)
    assert "added runs/b.jsonl" in changes(before, after)
    assert "changed runs/a.jsonl" in changes(before, after)
    (root / "runs" / "b.jsonl").unlink()
    (root / "runs" / "a.jsonl").unlink()
    assert "removed runs/a.jsonl" in changes(before, snapshot(root))
    assert changes({}, before)[0] == "added ."  # the directory itself appearing counts


def test_real_state_dirs_include_the_resolved_and_the_default() -> None:
    env = {"HOME": "/home/u", "XDG_STATE_HOME": "/x"}
    assert real_state_dirs(env) == [Path("/x/amibake"), Path("/home/u/.local/state/amibake")]
    assert real_state_dirs({"HOME": "/home/u"}) == [Path("/home/u/.local/state/amibake")]


INNER = '''
import os
from pathlib import Path

from amibake.journal import state_dir


def test_through_amibake_stays_isolated():
    d = state_dir() / "runs"
    d.mkdir(parents=True, exist_ok=True)
    (d / "run-isolated.jsonl").write_text("{}")


def test_writes_the_real_one():
    if os.environ.get("INNER_WRITE_REAL"):
        d = Path(os.environ["HOME"]) / ".local" / "state" / "amibake" / "runs"
        d.mkdir(parents=True, exist_ok=True)
        (d / "run-test.jsonl").write_text("{}")
'''


def _inner_session(tmp_path: Path, write_real: bool) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A pytest session of INNER with tests/conftest.py as a plugin and HOME in tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "inner").mkdir()
    test = tmp_path / "inner" / "test_inner.py"
    test.write_text(textwrap.dedent(INNER))
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED_VARS and not k.startswith("PYTEST_")}
    env["HOME"] = str(home)
    env.pop("CI", None)
    if write_real:
        env["INNER_WRITE_REAL"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "--rootdir", str(tmp_path / "inner"), str(test)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    return res, home / ".local" / "state" / "amibake"


def test_the_session_fails_when_a_test_writes_the_real_state_dir(tmp_path: Path) -> None:
    res, real = _inner_session(tmp_path, write_real=True)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert "2 passed" in out  # the tests themselves passed: the session check failed the run
    assert "the tests wrote under the real amibake state dir" in out, out
    assert f"{real}: added runs/run-test.jsonl" in out, out
    assert "run-isolated" not in out


def test_the_session_passes_when_tests_write_only_their_own(tmp_path: Path) -> None:
    res, real = _inner_session(tmp_path, write_real=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not real.exists()


def test_amibake_exe_is_the_one_beside_the_running_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert amibake_exe() == str(Path(sys.executable).with_name("amibake"))
    bindir = tmp_path / "venv" / "bin"
    bindir.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(bindir / "python"))
    with pytest.raises(StackError, match=r"no amibake executable beside .*venv/bin/python"):
        amibake_exe()
    (bindir / "amibake").write_text("#!/bin/sh\n")
    (bindir / "amibake").chmod(0o755)
    assert amibake_exe() == str(bindir / "amibake")
