"""The schema in store/schema.py and the one the Alembic migrations build are the same, on
both engines: a database upgraded to head holds nothing autogenerate would change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Connection, Integer, MetaData, Table, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from graphpost.store.migrate import migrate
from graphpost.store.schema import metadata
from graphpost.store.urls import pg_url
from tests.conftest import drop_pg_database, make_pg_database

# The $search index is left out on purpose: schema.py cannot describe SQLite's FTS5 virtual
# table (nor the shadow tables FTS5 makes beside it: message_search_data, _idx, _content,
# _config), and PostgreSQL's message_search (a tsvector under a GIN index) exists on that
# engine only. Migration 0011 and store/search.py own them; tests/store/test_search.py
# checks them on both engines.
SEARCH_INDEX = "message_search"


def _not_search_index(obj: Any, name: str | None, kind: str, *_: Any) -> bool:
    table = obj if kind == "table" else getattr(obj, "table", None)
    table_name = name if kind == "table" else getattr(table, "name", "")
    return not (table_name or "").startswith(SEARCH_INDEX)


def differences(conn: Connection, target: MetaData) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_object": _not_search_index,
        },
    )
    return list(compare_metadata(context, target))


def with_canary() -> MetaData:
    """The schema plus one table no migration makes: the comparison must see it."""
    copy = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(copy)
    Table("canary", copy, Column("id", Integer, primary_key=True))
    return copy


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database upgraded to head: its SQLAlchemy URL."""
    if request.param == "sqlite":
        path = tmp_path / "schema.sqlite3"
        migrate(database_url=None, sqlite_path=path)
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("pg_admin_url")
    name, url = make_pg_database(admin)
    try:
        migrate(database_url=url, sqlite_path=tmp_path / "unused")
        yield pg_url(url, driver="sqlalchemy")
    finally:
        drop_pg_database(admin, name)


def compare(url: str, target: MetaData) -> list[Any]:
    if url.startswith("sqlite"):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                return differences(conn, target)
        finally:
            engine.dispose()

    async def run() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(differences, target)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrations_build_the_schema(migrated: str) -> None:
    assert compare(migrated, metadata) == []
    found = compare(migrated, with_canary())
    assert [(kind, table.name) for kind, table in found] == [("add_table", "canary")]
