"""Fixtures of the unit tests that talk to a moto server on loopback (the ``*_mutants`` modules)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.stackkit import MotoServer


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
