"""Fixtures of the unit tests that talk to a moto server on loopback (the ``*_mutants`` modules)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.stackkit import MotoServer

if TYPE_CHECKING:
    from tests.unit.test_cleanup_mutants import Aws


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One moto server for every unit test of this worker that needs one, started on first use;
    ``AMIBAKE_TEST_MOTO_URL`` names one already running instead (scripts/mutation's runs share one, so
    each mutant does not pay moto's start-up). The tests make their resources in an AWS account of
    their own, or with unique names, so they share the server without resetting it."""
    url = os.environ.get("AMIBAKE_TEST_MOTO_URL", "")
    if url:
        yield url
        return
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """An AWS account of the test's own on the shared moto server (``Aws``), with boto3's cached
    clients dropped before and after, so none of another test's account is reused. Imported when used:
    the unit tests that need no AWS do not pay for boto3 at start-up."""
    from amibake.aws.session import CLIENTS
    from tests.unit.test_cleanup_mutants import Aws

    CLIENTS.clear()
    yield Aws(moto_url, monkeypatch)
    CLIENTS.clear()
