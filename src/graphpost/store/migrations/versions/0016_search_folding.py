"""search folding: the $search index rebuilt with the words of today's domain.search (ø, ł,
æ, đ … folded as Exchange folds them; a word is not split at a spacing combining mark, and
SQLite's tokenizer keeps marks in words too), so that a message indexed before is found by
the words a query folds to now

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 17:50:00
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_TOKENIZER = "unicode61 remove_diacritics 2 categories 'L* N* Co M*'"
_SQLITE = (
    "DROP TRIGGER IF EXISTS message_search_delete",
    "DROP TABLE IF EXISTS message_search",
    "CREATE VIRTUAL TABLE message_search USING fts5(subject, body, sender, torecip, ccrecip, "
    f'bccrecip, attachment, tokenize = "{_TOKENIZER}", columnsize = 0)',
    "CREATE TRIGGER message_search_delete AFTER DELETE ON messages "
    "BEGIN DELETE FROM message_search WHERE rowid = old.seq; END",
)


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE:
            conn.exec_driver_sql(statement)
    else:
        conn.exec_driver_sql("DELETE FROM message_search")
    # the index is written by the code that writes it for new messages (0011's backfill)
    search = importlib.import_module("graphpost.store.migrations.versions.0011_message_search")
    search._backfill(conn, dialect)


def downgrade() -> None:
    """The index stays as 0016 wrote it: 0011's reads the same tables."""
