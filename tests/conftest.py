"""Shared pytest fixtures: the local AWS stack (moto server + sshd), started once per session.

* ``stack`` (session): a running :class:`tests.stackkit.Stack`. Skipped with the reason when this
  machine cannot run it (not root, no sshd, no ``amibuild`` user); with ``CI=true`` it fails instead,
  so CI never skips the end-to-end tests silently.
* ``moto`` (function): the stack's :class:`~tests.stackkit.MotoServer`, reset before the test.
* ``aws_env`` (function): environment variables that point boto3/amibake at the stack's moto.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.stackkit import MotoServer, Stack, StackError, unavailable_reason

# Property tests: no deadline (the 2 cores are shared with moto and sshd); in CI the examples are
# derived from each test's name, so a run is reproducible and a failure shows again on a rerun.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "default")


# Commands the tests run are in-process: a developer's `amibake server` (default socket) must not
# take them over. tests/stack/test_server.py starts its own server on its own socket.
os.environ["AMIBAKE_NO_SERVER"] = "1"


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
