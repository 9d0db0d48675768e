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

from tests.stackkit import MotoServer, Stack, StackError, unavailable_reason


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
