"""Schema migrations with Alembic, on SQLite (stdlib driver) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from graphpost.store.urls import pg_url

MIGRATIONS = Path(__file__).parent / "migrations"
# One key for pg_advisory_xact_lock, so that processes starting together migrate one at a time.
_LOCK_KEY = 0x67726170_68706F  # "graphpo"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _run(connection: Connection, action: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    if action == "upgrade":
        command.upgrade(cfg, revision)
    else:
        command.downgrade(cfg, revision)


def migrate_sqlite(path: Path, action: str = "upgrade", revision: str = "head") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            _run(conn, action, revision)
    finally:
        engine.dispose()


async def migrate_postgres_async(url: str, action: str = "upgrade", revision: str = "head") -> None:
    engine = create_async_engine(pg_url(url, driver="sqlalchemy"))
    try:
        async with engine.begin() as conn:

            def run(sync_conn: Connection) -> Any:
                _run(sync_conn, action, revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


def migrate(
    *, database_url: str | None, sqlite_path: Path, action: str = "upgrade", revision: str = "head"
) -> None:
    """Bring the database to ``revision`` (default: the newest)."""
    if database_url:
        asyncio.run(migrate_postgres_async(database_url, action, revision))
    else:
        migrate_sqlite(sqlite_path, action, revision)
