"""The server lock's timed wait (``forkserver._flock_within``): a lock its helper thread gets only
after the caller gave up is let go, so a later attempt in the same process is not blocked by it
(`server stop` waits, gives up, signals the server, and waits again on a new descriptor)."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from amibake.server.forkserver import _flock_within


def _helpers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "server-lock"]


def test_a_lock_got_after_the_wait_gave_up_is_let_go(tmp_path: Path) -> None:
    path = tmp_path / "server.lock"
    holder = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # the "server"
    waiter = os.open(path, os.O_RDWR)
    later = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert _flock_within(waiter, 0.2) is False  # the server holds it: the wait gives up
        os.close(holder)  # the server exits; the helper thread now gets the lock on `waiter`
        holder = -1
        for t in _helpers():
            t.join(10)
        assert not _helpers()
        # ...and lets it go: a new attempt takes it at once
        fcntl.flock(later, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        for fd in (holder, waiter, later):
            if fd >= 0:
                os.close(fd)


def test_a_free_lock_is_taken_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "server.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    other = os.open(path, os.O_RDWR)
    try:
        assert _flock_within(fd, 5) is True
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            raise AssertionError("the lock was not kept")
        except BlockingIOError:
            pass
    finally:
        os.close(fd)
        os.close(other)
