"""The one reading of a PostgreSQL URL, for asyncpg and for SQLAlchemy alike."""

from __future__ import annotations

from typing import Literal

# the schemes a GRAPHPOST_DATABASE_URL for PostgreSQL may start with
PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+asyncpg://")


def is_pg_url(url: str) -> bool:
    return url.startswith(PG_SCHEMES)


def pg_url(url: str, *, driver: Literal["asyncpg", "sqlalchemy"] = "asyncpg") -> str:
    """``url`` as ``driver`` takes it: ``postgresql://…`` for asyncpg itself,
    ``postgresql+asyncpg://…`` for SQLAlchemy (which then uses asyncpg). ValueError if it is
    not a PostgreSQL URL."""
    for scheme in PG_SCHEMES:
        if url.startswith(scheme):
            head = "postgresql://" if driver == "asyncpg" else "postgresql+asyncpg://"
            return head + url[len(scheme) :]
    raise ValueError(f"not a PostgreSQL URL: {url}")
