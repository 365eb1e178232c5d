"""message search: the $search index (SQLite FTS5, PostgreSQL tsvector + GIN), filled for
the messages already stored

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:40:00

store/schema.py cannot describe an FTS5 virtual table (nor, for one engine only, the
PostgreSQL table): these objects live here and in store/search.py only, and
tests/store/test_schema.py leaves them out of its comparison by name.
"""

from __future__ import annotations

import msgspec
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_SQLITE = (
    "CREATE VIRTUAL TABLE message_search USING fts5(subject, body, sender, torecip, ccrecip, "
    "bccrecip, attachment, tokenize = 'unicode61 remove_diacritics 2', columnsize = 0)",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON messages "
    "BEGIN DELETE FROM message_search WHERE rowid = old.seq; END",
)
_POSTGRESQL = (
    "CREATE TABLE message_search (message_seq BIGINT PRIMARY KEY "
    "REFERENCES messages (seq) ON DELETE CASCADE, digest TEXT NOT NULL, doc TSVECTOR NOT NULL)",
    "CREATE INDEX ix_message_search_doc ON message_search USING gin (doc)",
)
_BATCH = 500


def _require_fts5(conn: sa.Connection) -> None:
    try:
        conn.exec_driver_sql("CREATE VIRTUAL TABLE temp.fts5_probe USING fts5(x)")
        conn.exec_driver_sql("DROP TABLE temp.fts5_probe")
    except sa.exc.OperationalError as exc:
        raise RuntimeError(
            "This SQLite build has no FTS5, which $search needs: use a Python whose sqlite3 "
            f"module is built with FTS5 (the standard builds are), or PostgreSQL ({exc})."
        ) from exc


def _backfill(conn: sa.Connection, dialect: str) -> None:
    # the index is built by the code that writes it for new messages, so the two agree
    from graphpost.domain.message import Message
    from graphpost.domain.search import (
        IndexFields,
        attachment_words,
        index_fields,
        message_fields,
    )
    from graphpost.store.search import SQLITE_COLUMNS, IndexEntry, _column_text, tsvector_text

    last = 0
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT seq, doc, subject, from_name, from_address FROM messages "
                "WHERE seq > :last ORDER BY seq LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        last = int(rows[-1][0])
        seqs = [int(r[0]) for r in rows]
        names: dict[int, list[str]] = {s: [] for s in seqs}
        for seq, name in conn.execute(
            sa.text(
                "SELECT message_seq, name FROM attachments WHERE message_seq >= :lo "
                "AND message_seq <= :hi ORDER BY message_seq, position"
            ),
            {"lo": seqs[0], "hi": last},
        ):
            if int(seq) in names:
                names[int(seq)].append(str(name or ""))
        for seq, doc, subject, from_name, from_address in rows:
            fields: IndexFields
            try:
                fields = message_fields(msgspec.json.decode(bytes(doc), type=Message))
            except (msgspec.DecodeError, msgspec.ValidationError):
                # a document this version cannot read: what its columns say is found
                fields = index_fields(
                    subject=subject, body_text="", sender=(from_name, from_address), to=[],
                    cc=[], bcc=[], attachment_names=[],
                )  # fmt: skip
            row = IndexEntry(fields)
            attached = attachment_words(names[int(seq)])
            if dialect == "postgresql":
                text = row.pg
                if attached:
                    text += " " + tsvector_text({"attachment": attached})
                conn.execute(
                    sa.text(
                        "INSERT INTO message_search (message_seq, digest, doc) "
                        "VALUES (:seq, :digest, CAST(CAST(:doc AS TEXT) AS tsvector))"
                    ),
                    {"seq": int(seq), "digest": row.digest, "doc": text},
                )
            else:
                conn.exec_driver_sql(
                    f"INSERT INTO message_search (rowid, {SQLITE_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (int(seq), *row.sqlite, _column_text(attached)),
                )


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    if dialect == "sqlite":
        _require_fts5(conn)
    for statement in _SQLITE if dialect == "sqlite" else _POSTGRESQL:
        conn.exec_driver_sql(statement)
    _backfill(conn, dialect)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS message_search_delete")
    conn.exec_driver_sql("DROP TABLE IF EXISTS message_search")
