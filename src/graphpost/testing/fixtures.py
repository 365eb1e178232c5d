"""pytest fixtures for an app's tests (pytest is imported here only, never by graphpost):

    from graphpost.testing import graphpost, graphpost_server  # in conftest.py

``graphpost_server`` (session): a GraphpostClient of graphpost in-process (a free port, a
temporary data directory, SQLite, emulator mode), or of the running one at
``GRAPHPOST_TEST_URL`` (which must be in emulator mode). ``graphpost`` (per test): the same
client after a reset (every mailbox emptied, fault rules removed)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from graphpost.testing.client import GraphpostClient
from graphpost.testing.server import InProcessServer

TEST_URL = "GRAPHPOST_TEST_URL"


@pytest.fixture(scope="session")
def graphpost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphpostClient]:
    url = os.environ.get(TEST_URL)
    if url:
        yield GraphpostClient(url)
        return
    server = InProcessServer(tmp_path_factory.mktemp("graphpost"))
    base = server.start()
    try:
        yield GraphpostClient(base)
    finally:
        server.stop()


@pytest.fixture
def graphpost(graphpost_server: GraphpostClient) -> Iterator[GraphpostClient]:
    graphpost_server.reset()
    yield graphpost_server
    graphpost_server.clear_faults()
