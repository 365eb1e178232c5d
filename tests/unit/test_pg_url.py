"""One reading of a PostgreSQL URL: asyncpg's form, SQLAlchemy's form, or not PostgreSQL."""

from __future__ import annotations

import pytest

from graphpost.store.urls import is_pg_url, pg_url

URLS = ["postgresql://u@h:5432/db", "postgres://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"]


@pytest.mark.parametrize("url", URLS)
def test_every_scheme_reads_alike(url: str) -> None:
    assert is_pg_url(url)
    assert pg_url(url) == "postgresql://u@h:5432/db"
    assert pg_url(url, driver="sqlalchemy") == "postgresql+asyncpg://u@h:5432/db"


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u@h/db", "postgresql:/nohost", ""])
def test_other_urls_are_not_postgresql(url: str) -> None:
    assert not is_pg_url(url)
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        pg_url(url)
