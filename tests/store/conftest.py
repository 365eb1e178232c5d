"""The store suite runs on a temporary SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from graphpost.store.directory import SqlDirectory
from graphpost.store.engine import Engine, Tx, open_engine
from graphpost.store.folders import SqlFolders
from graphpost.store.messages import SqlMessages
from graphpost.store.migrate import migrate
from graphpost.store.outbox import SqlOutbox
from graphpost.store.schema import metadata
from tests.conftest import drop_pg_database, in_thread, make_pg_database

# every table of the schema, so that a table added later is wiped too
TABLES = ", ".join(table.name for table in metadata.sorted_tables)


class Stores:
    """Every store port on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.directory = SqlDirectory(engine)
        self.folders = SqlFolders(engine)
        self.messages = SqlMessages(engine)
        self.outbox = SqlOutbox(engine)


@pytest.fixture(scope="session")
def store_pg_url(pg_admin_url: str) -> Iterator[str]:
    name, url = make_pg_database(pg_admin_url)
    in_thread(lambda: migrate(database_url=url, sqlite_path=Path("unused")))
    yield url
    drop_pg_database(pg_admin_url, name)


async def wipe(tx: Tx) -> None:
    await tx.execute(f"TRUNCATE {TABLES} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Engine]:
    """A migrated, empty database: a new SQLite file, or the PostgreSQL one with every table
    emptied before and after the test."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"
        migrate(database_url=None, sqlite_path=path)
        engine = await open_engine(database_url=None, sqlite_path=path)
        yield engine
        await engine.close()
        return
    url = request.getfixturevalue("store_pg_url")
    engine = await open_engine(database_url=url, sqlite_path=tmp_path / "unused")
    await engine.write(wipe)
    try:
        yield engine
        await engine.write(wipe)
    finally:
        await engine.close()


@pytest.fixture
def store(engine: Engine) -> Stores:
    return Stores(engine)
