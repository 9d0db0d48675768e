"""Test isolation: every test gets its own amibake state, temp and server-socket locations, and the
suite fails if anything was written under the real ones.

``tests/conftest.py`` uses this: an autouse fixture points :data:`ISOLATED_VARS` at a fresh
per-test directory (subprocesses inherit them; :meth:`tests.stackkit.Stack.env` carries them too),
and the session hooks compare a :func:`snapshot` of each :func:`real_state_dirs` taken at session
start with one taken at the end.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from amibake.journal import state_dir
from tests.stackkit import ISOLATED_VARS

#: relative path -> (kind, size, mtime in ns); kind is "dir", "file" or "other"
Snapshot = dict[str, tuple[str, int, int]]


def isolated_env(base: Path) -> dict[str, str]:
    """Values of :data:`ISOLATED_VARS` under ``base`` (whose directories this creates)."""
    env = {
        "AMIBAKE_STATE_DIR": base / "amibake-state",
        "XDG_STATE_HOME": base / "xdg-state",
        "TMPDIR": base / "tmp",
    }
    for d in env.values():
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = {k: str(v) for k, v in env.items()}
    out["AMIBAKE_SERVER_SOCKET"] = str(base / "server.sock")  # nobody listens there
    assert set(out) == set(ISOLATED_VARS)
    return out


def real_state_dirs(environ: Mapping[str, str]) -> list[Path]:
    """The state directories amibake would use with ``environ`` (the environment pytest started
    with), and the user's default ``~/.local/state/amibake`` in any case."""
    home = Path(environ.get("HOME") or Path.home())
    dirs = [state_dir(environ), home / ".local" / "state" / "amibake"]
    out: list[Path] = []
    for d in dirs:
        d = Path(os.path.abspath(d))
        if d not in out:
            out.append(d)
    return out


def snapshot(root: Path) -> Snapshot:
    """Everything under ``root`` (empty when it does not exist; ``.`` is ``root`` itself)."""
    out: Snapshot = {}
    try:
        st = root.lstat()
    except FileNotFoundError:
        return out
    out["."] = ("dir" if root.is_dir() else "other", 0, st.st_mtime_ns)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            kind = "dir" if p.is_dir() and not p.is_symlink() else "file" if p.is_file() else "other"
            out[str(p.relative_to(root))] = (kind, 0 if kind == "dir" else st.st_size, st.st_mtime_ns)
    return out


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs, one line each: ``added X``, ``removed X``, ``changed X`` (sorted)."""
    lines = [f"added {p}" for p in after.keys() - before.keys()]
    lines += [f"removed {p}" for p in before.keys() - after.keys()]
    lines += [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(lines, key=lambda s: (s.split(" ", 1)[1], s))
