"""Shared pytest fixtures: the local AWS stack (moto server + sshd), started once per session.

* ``stack`` (session): a running :class:`tests.stackkit.Stack`. Skipped with the reason when this
  machine cannot run it (not root, no sshd, no ``amibuild`` user); with ``CI=true`` it fails instead,
  so CI never skips the end-to-end tests silently.
* ``moto`` (function): the stack's :class:`~tests.stackkit.MotoServer`, reset before the test.
* ``aws_env`` (function): environment variables that point boto3/amibake at the stack's moto.
* ``isolated`` (function, autouse): the test's own amibake state dir, XDG state home, TMPDIR and
  server socket (:mod:`tests.isolation`), set in ``os.environ`` so that subprocesses inherit them.
  At session end the suite fails if anything under the real state dir (the one the environment
  pytest started with resolves to, and ``~/.local/state/amibake``) was added, removed or changed.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.isolation import Snapshot, changes, isolated_env, real_state_dirs, snapshot
from tests.stackkit import MotoServer, Stack, StackError, unavailable_reason

# Property tests: no deadline (the 2 cores are shared with moto and sshd); in CI the examples are
# derived from each test's name, so a run is reproducible and a failure shows again on a rerun.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "default")


# Commands the tests run are in-process: a developer's `amibake server` (default socket) must not
# take them over. tests/stack/test_server.py starts its own server on its own socket.
os.environ["AMIBAKE_NO_SERVER"] = "1"


# the real state dirs, resolved from the environment pytest started with (before any test changed it)
_REAL_STATE_DIRS = real_state_dirs(os.environ)
_BEFORE: dict[Path, Snapshot] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    for d in _REAL_STATE_DIRS:
        _BEFORE[d] = snapshot(d)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = [f"{d}: {line}" for d in _REAL_STATE_DIRS for line in changes(_BEFORE.get(d, {}), snapshot(d))]
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["the tests wrote under the real amibake state dir (each test must use its own):", *found[:50]]
    if reporter is not None:
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: the test modules that boot a disk under QEMU (software emulation: minutes each), slowest first.
#: They go to the front of the run: xdist's worksteal hands each worker a contiguous half of the list at
#: the start, so the first worker boots them one after the other while the other worker runs the rest,
#: instead of a worker reaching them last and the run waiting for them alone.
SLOW_FIRST = ("tests/stack/test_local_builder_e2e.py", "tests/stack/test_local_image.py")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its place


@pytest.fixture(autouse=True)
def isolated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's own state dir, XDG state home, TMPDIR and server socket (in ``os.environ``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:24]
    env = isolated_env(tmp_path_factory.mktemp(f"iso-{name}"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(tempfile, "tempdir", None)  # recomputed from the new TMPDIR on first use
    return env


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    reason = unavailable_reason()
    if reason:
        if _in_ci():
            pytest.fail(f"local stack unavailable in CI: {reason}")
        pytest.skip(f"local stack unavailable: {reason}")
    st = Stack.temporary()
    try:
        st.start()
    except StackError as exc:
        st.stop()
        pytest.fail(f"local stack failed to start: {exc}")
    try:
        yield st
    finally:
        st.stop()


@pytest.fixture
def moto(stack: Stack) -> MotoServer:
    stack.moto.reset()
    return stack.moto


@pytest.fixture
def aws_env(stack: Stack, moto: MotoServer) -> dict[str, str]:
    return stack.env()
