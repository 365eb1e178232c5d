"""Fixtures of the unit tests that run the real services: see ``tests.unit.wiring``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graphpost.runtime import Runtime
from tests.fakes import FakeTransport
from tests.unit.wiring import Clock, Template, install_clock, make_template, open_runtime


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A migrated data directory with a signing key, copied for each runtime."""
    return make_template(tmp_path_factory.mktemp("migrated") / "data")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch)


@pytest.fixture
def fake() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
async def runtime(
    tmp_path: Path, migrated: Template, fake: FakeTransport, clock: Clock
) -> AsyncIterator[Runtime]:
    """The real runtime on a SQLite file of its own, ``fake`` as the relay, ``clock`` as the
    worker's time."""
    async with open_runtime(tmp_path / "data", fake, template=migrated) as rt:
        yield rt
