"""Messages on either engine: the row of a message is derived here from its document."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec

from graphpost.domain import extended as ext
from graphpost.domain.extended import ExtendedProperty
from graphpost.domain.message import FILE, Attachment, Message, payload, restored
from graphpost.domain.query import MessageQuery, Node
from graphpost.domain.search import message_fields
from graphpost.domain.times import iso, now_ms, parse_iso
from graphpost.ports.changes import CREATED, DELETED, MESSAGE, UPDATED
from graphpost.ports.messages import NewMessage, StoredMessage, Where
from graphpost.store.blobs import (
    Content,
    DbContent,
    SqlBlobs,
    reference_bytes,
    reference_digest,
    release,
    release_where,
)
from graphpost.store.changes import INSERT_CHANGE, Pending, record
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.filters import compile_filter, compile_order
from graphpost.store.search import (
    IndexEntry,
    compile_search,
    insert_index,
    pg_index_text,
    reindex_attachments,
    replace_index,
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode

_COLUMNS = (
    "created_at, modified_at, received_at, sent_at, is_read, is_draft, has_attachments, "
    "importance, inference, flag_status, subject, body_preview, from_name, from_address, "
    "sender_name, sender_address, internet_message_id, conversation_id, change_key, doc, "
    "folder_id"
)
INSERT_MSG = (
    f"INSERT INTO messages (id, mailbox_id, headers, {_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_MSG = (
    "UPDATE messages SET "
    + ", ".join(f"{c.strip()} = ?" for c in _COLUMNS.split(","))
    + " WHERE seq = ?"
)
_STORED_COLS = "m.id, m.mailbox_id, m.folder_id, m.change_key, m.is_draft, m.doc, m.headers, m.seq"


IN_DATABASE: Content = DbContent()


class _Vanished(Exception):
    """An attachment deleted by a concurrent request: the transaction is rolled back."""


_INSERT_ATTACHMENT = (
    "INSERT INTO attachments (id, message_seq, position, name, content_type, size, "
    "is_inline, content_id, modified_at, blob_digest, kind) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_last_seconds: dict[str, int] = {}


def _seconds(text: str) -> int:
    """A document's timestamp as the column's epoch second (the four of a new message are
    usually one text: remembered)."""
    found = _last_seconds.get(text)
    if found is None:
        try:
            found = parse_iso(text)
        except (ValueError, OverflowError):
            found = 0
        if len(_last_seconds) > 64:
            _last_seconds.clear()
        _last_seconds[text] = found
    return found


class Columns:
    """The indexed columns of a message, read off its document (and the encoded document)."""

    __slots__ = ("categories", "doc", "folder_id", "is_read", "recipients", "values")

    def __init__(self, msg: Message) -> None:
        frm = msg.from_.email_address if msg.from_ else None
        snd = msg.sender.email_address if msg.sender else None
        self.doc = _encode(msg)
        self.folder_id = msg.parent_folder_id
        self.is_read = msg.is_read
        self.values: list[Any] = [
            _seconds(msg.created_date_time), _seconds(msg.last_modified_date_time),
            _seconds(msg.received_date_time), _seconds(msg.sent_date_time), msg.is_read,
            msg.is_draft, msg.has_attachments, msg.importance, msg.inference_classification,
            msg.flag.flag_status, msg.subject, msg.body_preview,
            frm.name if frm else None, frm.address if frm else None,
            snd.name if snd else None, snd.address if snd else None,
            msg.internet_message_id, msg.conversation_id, msg.change_key, self.doc,
            msg.parent_folder_id,
        ]  # fmt: skip
        # (kind, name, address) with kind in to, cc, bcc, rt
        self.recipients: list[tuple[str, str | None, str | None]] = []
        for kind, group in (
            ("to", msg.to_recipients),
            ("cc", msg.cc_recipients),
            ("bcc", msg.bcc_recipients),
            ("rt", msg.reply_to),
        ):
            self.recipients.extend(
                (kind, r.email_address.name, r.email_address.address) for r in group
            )
        self.categories = list(msg.categories)


def stored(row: Row) -> StoredMessage:
    return StoredMessage(
        id=row[0],
        mailbox_id=row[1],
        folder_id=row[2],
        change_key=row[3],
        is_draft=bool(row[4]),
        document=bytes(row[5]),
        headers_document=bytes(row[6]) if row[6] is not None else None,
        seq=row[7],
    )


async def _bump_counts(tx: Tx, folder_id: str, total: int, unread: int) -> None:
    if total or unread:
        await tx.execute(
            "UPDATE folders SET total_count = total_count + ?, unread_count = unread_count + ? "
            "WHERE id = ?",
            (total, unread, folder_id),
        )


async def _write_children(tx: Tx, seq: int, cols: Columns) -> None:
    await tx.executemany(
        "INSERT INTO message_recipients (message_seq, kind, name, address) VALUES (?, ?, ?, ?)",
        [(seq, kind, name, address) for kind, name, address in cols.recipients],
    )
    await tx.executemany(
        "INSERT INTO message_categories (message_seq, name) VALUES (?, ?)",
        [(seq, name) for name in cols.categories],
    )


# PostgreSQL: the message, its recipients and categories and the folder counts in one
# statement (one round trip instead of four).
_PG_INSERT = (
    "WITH m AS (" + INSERT_MSG + " RETURNING seq), "
    "r AS (INSERT INTO message_recipients (message_seq, kind, name, address) "
    "SELECT m.seq, t.k, t.n, t.a FROM m, unnest(?::text[], ?::text[], ?::text[]) AS t(k, n, a)), "
    "c AS (INSERT INTO message_categories (message_seq, name) "
    "SELECT m.seq, x FROM m, unnest(?::text[]) AS x), "
    "f AS (UPDATE folders SET total_count = total_count + 1, "
    "unread_count = unread_count + ? WHERE id = ?), "
    "ix AS (INSERT INTO message_search (message_seq, digest, doc) "
    "SELECT m.seq, ?, ?::text::tsvector FROM m) "
    "SELECT seq FROM m"
)
# the same with its change recorded (store/changes.py: record). The counter is bumped from the
# folder update's rows, so that the folder row is locked before the counter, as everywhere.
_PG_INSERT_LOGGED = (
    _PG_INSERT.replace("WHERE id = ?)", "WHERE id = ? RETURNING id)").removesuffix(
        " SELECT seq FROM m"
    )
    + ", s AS (INSERT INTO change_counters (mailbox_id, last_seq, horizon) "
    "SELECT ?::text, 1, 0 FROM f ON CONFLICT (mailbox_id) DO UPDATE SET "
    "last_seq = change_counters.last_seq + 1 RETURNING last_seq), "
    "l AS ("
    + INSERT_CHANGE.split(" VALUES ")[0]
    + " SELECT ?::text, s.last_seq, ?::text, ?::text, ?::text, NULL, ?::text, ?::bigint "
    "FROM s) SELECT seq FROM m"
)


async def _log(tx: Tx, mailbox_id: str, change: Pending, log: list[Pending] | None) -> None:
    """``change`` recorded now, or handed to the caller that records a transaction's changes
    at its end (``log``)."""
    if log is None:
        await record(tx, mailbox_id, [change])
    else:
        log.append(change)


async def insert_attachment_rows(
    tx: Tx, seq: int, attachments: list[tuple[Attachment, str]], *, reindex: bool = True
) -> None:
    """The rows of ``attachments`` (each with the digest of its blob, already referenced) after
    the message's others (and their names in the search index, unless the caller wrote them)."""
    row = await tx.fetchone(
        "SELECT COALESCE(MAX(position) + 1, 0) FROM attachments WHERE message_seq = ?", (seq,)
    )
    first = int(row[0]) if row is not None else 0
    await tx.executemany(
        _INSERT_ATTACHMENT,
        [
            (a.id, seq, first + n, a.name, a.content_type or "", a.size, a.is_inline,
             a.content_id, _seconds(a.last_modified_date_time), digest, a.kind)
            for n, (a, digest) in enumerate(attachments)
        ],
    )  # fmt: skip
    if reindex:
        await reindex_attachments(tx, seq)


async def _reference(tx: Tx, content: Content, a: Attachment) -> str:
    """The digest of ``a``'s blob, referenced once more: the blob it names (a large file
    carried by digest), or the blob of its bytes."""
    if a.blob is not None:
        await reference_digest(tx, a.blob)
        return a.blob
    return await reference_bytes(tx, content, payload(a))


async def _references(tx: Tx, content: Content, attachments: list[Attachment]) -> list[str]:
    """``_reference`` for each, taken in the order of their digests (two transactions that
    reference the same blobs lock their rows in one order: no deadlock on PostgreSQL)."""
    keys = [a.blob or hashlib.sha256(payload(a)).hexdigest() for a in attachments]
    found: dict[int, str] = {}
    for i in sorted(range(len(attachments)), key=keys.__getitem__):
        a = attachments[i]
        found[i] = (
            await _reference(tx, content, a)
            if a.blob
            else await reference_bytes(tx, content, payload(a), digest=keys[i])
        )
    return [found[i] for i in range(len(attachments))]


async def insert_message_op(
    tx: Tx, new: NewMessage, content: Content = IN_DATABASE, *, log: list[Pending] | None = None
) -> StoredMessage:
    """Write ``new`` inside the caller's transaction (shared with the outbox); attachment
    bytes go to ``content`` (or are counted once more where they already are). Its change is
    recorded (``log`` None) or added to ``log`` for the caller to record."""
    msg = new.message
    cols = Columns(msg)
    headers = _encode(new.headers) if new.headers else None
    params = [msg.id, new.mailbox_id, headers, *cols.values]
    index = IndexEntry(message_fields(msg))
    names = [a.name or "" for a in new.attachments]
    change = Pending(MESSAGE, msg.id, cols.folder_id, None, CREATED)
    # with attachments or extensions the change is recorded after them (the counter last)
    logged = log is None and not new.attachments and not new.extensions and not new.extended
    if tx.dialect == "postgresql":
        found = await tx.fetchone(
            _PG_INSERT_LOGGED if logged else _PG_INSERT,
            (
                *params,
                [k for k, _, _ in cols.recipients],
                [n for _, n, _ in cols.recipients],
                [a for _, _, a in cols.recipients],
                cols.categories,
                0 if cols.is_read else 1,
                cols.folder_id,
                index.digest,
                pg_index_text(index, names),
                *(
                    (
                        new.mailbox_id,
                        new.mailbox_id,
                        MESSAGE,
                        msg.id,
                        cols.folder_id,
                        CREATED,
                        now_ms(),
                    )
                    if logged
                    else ()
                ),
            ),
        )
        assert found is not None
        seq = int(found[0])
    else:
        seq = await tx.insert_returning(INSERT_MSG, params)
        await _write_children(tx, seq, cols)
        await insert_index(tx, seq, index, names)
    if new.attachments:
        await insert_attachment_rows(
            tx,
            seq,
            list(
                zip(new.attachments, await _references(tx, content, new.attachments), strict=True)
            ),
            reindex=False,
        )
    await tx.executemany(
        "INSERT INTO message_extensions (message_seq, name, doc) VALUES (?, ?, ?)",
        [(seq, e["extensionName"], _encode(e)) for e in new.extensions],
    )
    await _write_extended(tx, seq, new.extended, replacing=False)
    if tx.dialect != "postgresql":
        await _bump_counts(tx, cols.folder_id, 1, 0 if cols.is_read else 1)
    if not (logged and tx.dialect == "postgresql"):
        await _log(tx, new.mailbox_id, change, log)
    return StoredMessage(
        msg.id, new.mailbox_id, msg.parent_folder_id, msg.change_key, msg.is_draft, cols.doc,
        headers, seq,
    )  # fmt: skip


_UPSERT_EXTENDED = (
    "INSERT INTO message_extended_props (message_seq, prop_id, multi, value) VALUES (?, ?, ?, ?)"
)


async def _write_extended(
    tx: Tx, seq: int, props: Sequence[ExtendedProperty], *, replacing: bool
) -> None:
    """Add ``props`` to message ``seq`` (replacing those of the same id), then hold the cap."""
    if not props:
        return
    sql = _UPSERT_EXTENDED
    if replacing:
        sql += (
            " ON CONFLICT (message_seq, prop_id) DO UPDATE SET multi = excluded.multi, "
            "value = excluded.value"
        )
    await tx.executemany(
        sql,
        [(seq, p.id, p.multi, p.value if isinstance(p.value, str) else _encode(p.value).decode())
         for p in props],
    )  # fmt: skip
    if replacing or len(props) > ext.MAX_PROPERTIES:
        got = await tx.fetchone(
            "SELECT count(*) FROM message_extended_props WHERE message_seq = ?", (seq,)
        )
        if got is not None and int(got[0]) > ext.MAX_PROPERTIES:
            raise ext.too_many()


async def replace_message_op(
    tx: Tx,
    mailbox_id: str,
    msg: Message,
    expected_change_key: str,
    *,
    drafts_only: bool = False,
    extended: Sequence[ExtendedProperty] = (),
    log: list[Pending] | None = None,
) -> StoredMessage | None:
    """Write a changed document (and its folder) if the key still matches."""
    old = await tx.fetchone(
        f"SELECT is_read, folder_id, seq, headers, is_draft FROM messages WHERE id = ? "
        f"AND mailbox_id = ? AND change_key = ?{tx.for_update}",
        (msg.id, mailbox_id, expected_change_key),
    )
    if old is None or (drafts_only and not old[4]):
        return None
    seq = old[2]
    cols = Columns(msg)
    await tx.execute(UPDATE_MSG, (*cols.values, seq))
    await tx.execute("DELETE FROM message_recipients WHERE message_seq = ?", (seq,))
    await tx.execute("DELETE FROM message_categories WHERE message_seq = ?", (seq,))
    await _write_children(tx, seq, cols)
    await replace_index(tx, seq, IndexEntry(message_fields(msg)))
    await _write_extended(tx, seq, extended, replacing=True)
    was_unread = 0 if old[0] else 1
    now_unread = 0 if cols.is_read else 1
    if cols.folder_id == old[1]:
        await _bump_counts(tx, cols.folder_id, 0, now_unread - was_unread)
    else:  # the two folder rows locked in one order (two opposite moves cannot deadlock)
        bumps = sorted([(str(old[1]), -1, -was_unread), (cols.folder_id, 1, now_unread)])
        for folder, total, unread in bumps:
            await _bump_counts(tx, folder, total, unread)
    moved_from = None if cols.folder_id == old[1] else str(old[1])
    await _log(tx, mailbox_id, Pending(MESSAGE, msg.id, cols.folder_id, moved_from, UPDATED), log)
    headers = bytes(old[3]) if old[3] is not None else None
    return StoredMessage(
        msg.id, mailbox_id, cols.folder_id, msg.change_key, msg.is_draft, cols.doc, headers, seq
    )


async def delete_message_op(
    tx: Tx,
    mailbox_id: str,
    message_id: str,
    *,
    drafts_only: bool = False,
    log: list[Pending] | None = None,
) -> bool:
    old = await tx.fetchone(
        f"SELECT folder_id, is_read, is_draft FROM messages WHERE id = ? AND mailbox_id = ?"
        f"{tx.for_update}",
        (message_id, mailbox_id),
    )
    if old is None or (drafts_only and not old[2]):
        return False
    await release_where(tx, "m.id = ? AND m.mailbox_id = ?", (message_id, mailbox_id))
    await tx.execute(
        "DELETE FROM messages WHERE id = ? AND mailbox_id = ?", (message_id, mailbox_id)
    )
    await _bump_counts(tx, old[0], -1, 0 if old[1] else -1)
    await _log(tx, mailbox_id, Pending(MESSAGE, message_id, str(old[0]), None, DELETED), log)
    return True


def _where(mailbox_id: str, folder: Where, params: list[Any]) -> str:
    """SQL over ``messages m`` for the messages of a folder, a search folder (its source
    folders, with everything below them when nested, and its saved filter) or the mailbox."""
    if folder is None:
        params.append(mailbox_id)
        return "m.mailbox_id = ?"
    if isinstance(folder, str):
        params.append(folder)
        return "m.folder_id = ?"
    if not folder.folder_ids:
        return "1 = 0"
    marks = ", ".join("?" for _ in folder.folder_ids)
    params += [mailbox_id, mailbox_id, *folder.folder_ids]
    if folder.nested:
        sources = (
            "WITH RECURSIVE t(id) AS (SELECT id FROM folders WHERE mailbox_id = ? "
            f"AND id IN ({marks}) UNION SELECT f.id FROM folders f JOIN t ON f.parent_id = t.id) "
            "SELECT id FROM t"
        )
    else:
        sources = f"SELECT id FROM folders WHERE mailbox_id = ? AND id IN ({marks})"
    where = f"m.mailbox_id = ? AND m.folder_id IN ({sources})"
    return f"{where} AND {compile_filter(folder.saved, params)}"


class SqlMessages:
    """The messages port on SQLite or PostgreSQL (the difference lives in the Engine)."""

    def __init__(self, engine: Engine, content: Content = IN_DATABASE) -> None:
        self.engine = engine
        self.content = content
        self.blobs = SqlBlobs(engine, content)

    async def insert_message(self, new: NewMessage) -> StoredMessage:
        async def op(tx: Tx) -> StoredMessage:
            return await insert_message_op(tx, new, self.content)

        # on PostgreSQL a message without attachments or extensions is one statement
        alone = not new.attachments and not new.extensions and not new.extended
        return await self.engine.write(op, one_statement=alone)

    async def insert_messages(self, messages: list[NewMessage]) -> None:
        async def op(tx: Tx) -> None:
            logs: dict[str, list[Pending]] = {}
            for new in messages:
                await insert_message_op(
                    tx, new, self.content, log=logs.setdefault(new.mailbox_id, [])
                )
            for mailbox_id in sorted(logs):  # the counters last, in one order
                await record(tx, mailbox_id, logs[mailbox_id])

        await self.engine.write(op)

    async def get_message(self, mailbox_id: str, message_id: str) -> StoredMessage | None:
        async def op(tx: Tx) -> StoredMessage | None:
            row = await tx.fetchone(
                f"SELECT {_STORED_COLS} FROM messages m WHERE m.id = ? AND m.mailbox_id = ?",
                (message_id, mailbox_id),
            )
            return stored(row) if row else None

        return await self.engine.read(op)

    async def list_messages(
        self, mailbox_id: str, folder_id: Where, query: MessageQuery
    ) -> tuple[list[StoredMessage], int | None, bool]:
        searched = compile_search(query.search, self.engine.dialect) if query.search else None
        params: list[Any] = list(searched.hits_params) if searched else []
        where = _where(mailbox_id, folder_id, params)
        if searched and searched.text_first and self.engine.dialect == "sqlite":
            # when the search index finds the rows, the mailbox is checked on each (``+``:
            # its index not used), not walked in date order to test each message
            where = "+" + where
        if query.filter is not None:
            where += " AND " + compile_filter(query.filter, params)
        source = "messages m"
        if searched is not None:
            where += " AND " + searched.where
            params += searched.params
            if searched.hits:
                # PostgreSQL: the rows the text finds, then each one's message by its key
                # (OFFSET 0 keeps the planner from turning this into a join that hashes the
                # whole mailbox when its statistics are stale)
                source = (
                    "hits CROSS JOIN LATERAL (SELECT * FROM messages "
                    "WHERE seq = hits.message_seq OFFSET 0) m"
                )
        lead = f"WITH {searched.hits} " if searched and searched.hits else ""
        order = compile_order(query.orderby)
        sql = (
            f"{lead}SELECT {_STORED_COLS} FROM {source} WHERE {where} "
            f"ORDER BY {order} LIMIT ? OFFSET ?"
        )
        if searched is not None and searched.text_first:
            # the matches are sorted by their keys alone, and only the page's rows are read
            # whole (sorting every match with its document cost a quarter of a search). On
            # SQLite, when nothing but the mailbox is checked on each match, the keys come
            # from ix_messages_seq_cover rather than each match's row (-28 % of the SQL's CPU)
            if (
                self.engine.dialect == "sqlite"
                and folder_id is None
                and query.filter is None
                and not query.orderby
                and searched.text_only
            ):
                source = "messages m INDEXED BY ix_messages_seq_cover"
            sql = (
                f"{lead}SELECT {_STORED_COLS} FROM messages m WHERE m.seq IN (SELECT m.seq "
                f"FROM {source} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?) "
                f"ORDER BY {order}"
            )

        async def op(tx: Tx) -> tuple[list[StoredMessage], int | None, bool]:
            rows = await tx.fetchall(sql, (*params, query.top + 1, query.skip))
            more = len(rows) > query.top
            count = None
            if query.count:
                got = await tx.fetchone(
                    f"{lead}SELECT count(*) FROM {source} WHERE {where}", params
                )
                count = int(got[0]) if got else 0
            return [stored(r) for r in rows[: query.top]], count, more

        # a page of ten of a folder costs less on the loop than its hop to a thread does
        # (twice the CPU, measured); a search, a filter, a count or a long page goes
        heavy = searched is not None or query.filter is not None or query.count
        return await self.engine.read(op, parallel=heavy or query.top >= 100)

    async def count_messages(
        self, mailbox_id: str, folder_id: Where, filter: Node | None
    ) -> tuple[int, int]:
        params: list[Any] = []
        where = _where(mailbox_id, folder_id, params)
        if filter is not None:
            where += " AND " + compile_filter(filter, params)
        sql = (
            "SELECT count(*), COALESCE(sum(CASE WHEN m.is_read THEN 0 ELSE 1 END), 0) "
            f"FROM messages m WHERE {where}"
        )

        async def op(tx: Tx) -> tuple[int, int]:
            got = await tx.fetchone(sql, params)
            return (int(got[0]), int(got[1])) if got else (0, 0)

        return await self.engine.read(op, parallel=True)

    async def messages_after(
        self, mailbox_id: str, folder_id: str, after_seq: int, limit: int
    ) -> list[StoredMessage]:
        async def op(tx: Tx) -> list[StoredMessage]:
            rows = await tx.fetchall(
                f"SELECT {_STORED_COLS} FROM messages m WHERE m.folder_id = ? "
                "AND m.mailbox_id = ? AND m.seq > ? ORDER BY m.seq LIMIT ?",
                (folder_id, mailbox_id, after_seq, limit),
            )
            return [stored(r) for r in rows]

        return await self.engine.read(op)

    async def delta_page(
        self,
        mailbox_id: str,
        folder_id: str,
        *,
        after: tuple[int, int] | None,
        since: tuple[int, bool] | None,
        limit: int,
    ) -> list[tuple[int, StoredMessage]]:
        # the folder alone (its id is unique): PostgreSQL then walks the folder's index
        # backwards and stops after ``limit`` rows (the mailbox is checked below)
        where = "m.folder_id = ?"
        params: list[Any] = [folder_id]
        if after is not None:
            # a row value: both engines take it as one range of the (folder, received, seq) index
            where += " AND (m.received_at, m.seq) < (?, ?)"
            params += [after[0], after[1]]
        if since is not None:
            where += f" AND m.received_at {'>=' if since[1] else '>'} ?"
            params.append(since[0])
        sql = (
            f"SELECT {_STORED_COLS}, m.received_at FROM messages m WHERE {where} "
            "ORDER BY m.received_at DESC, m.seq DESC LIMIT ?"
        )

        async def op(tx: Tx) -> list[tuple[int, StoredMessage]]:
            rows = await tx.fetchall(sql, (*params, limit))
            return [(int(r[8]), stored(r)) for r in rows if r[1] == mailbox_id]

        return await self.engine.read(op, parallel=True)

    async def messages_by_id(
        self, mailbox_id: str, message_ids: Sequence[str]
    ) -> list[tuple[int, StoredMessage]]:
        found: list[tuple[int, StoredMessage]] = []
        ids = list(message_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            # by the unique id alone: with the mailbox in the WHERE, SQLite would pick the
            # mailbox's index and scan it (the mailbox is checked below)
            sql = f"SELECT {_STORED_COLS}, m.received_at FROM messages m WHERE m.id IN ({marks})"

            async def op(tx: Tx, sql: str = sql, chunk: list[str] = chunk) -> list[Row]:
                return await tx.fetchall(sql, chunk)

            found.extend(
                (int(r[8]), stored(r)) for r in await self.engine.read(op) if r[1] == mailbox_id
            )
        return found

    async def replace_message(
        self,
        mailbox_id: str,
        message: Message,
        *,
        expected_change_key: str,
        extended: Sequence[ExtendedProperty] = (),
    ) -> StoredMessage | None:
        async def op(tx: Tx) -> StoredMessage | None:
            return await replace_message_op(
                tx, mailbox_id, message, expected_change_key, extended=extended
            )

        return await self.engine.write(op)

    async def delete_message(self, mailbox_id: str, message_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            return await delete_message_op(tx, mailbox_id, message_id)

        deleted = await self.engine.write(op)
        if deleted:
            await self.blobs.sweep()
        return deleted

    async def find_by_internet_message_id(
        self, mailbox_id: str, internet_message_id: str
    ) -> StoredMessage | None:
        async def op(tx: Tx) -> StoredMessage | None:
            row = await tx.fetchone(
                f"SELECT {_STORED_COLS} FROM messages m WHERE m.mailbox_id = ? "
                "AND m.internet_message_id = ? ORDER BY m.seq LIMIT 1",
                (mailbox_id, internet_message_id),
            )
            return stored(row) if row else None

        return await self.engine.read(op)

    async def _attachment_rows(self, message: StoredMessage) -> list[Row]:
        async def op(tx: Tx) -> list[Row]:
            return await tx.fetchall(
                "SELECT a.id, a.name, a.content_type, a.size, a.is_inline, a.content_id, "
                "a.modified_at, a.blob_digest, b.location, a.kind "
                "FROM attachments a JOIN blobs b ON b.digest = a.blob_digest "
                "WHERE a.message_seq = ? ORDER BY a.position",
                (message.seq,),
            )

        return await self.engine.read(op)

    @staticmethod
    def _attachment(r: Row, blob: str | None) -> Attachment:
        return Attachment(
            id=r[0], name=r[1], content_type=r[2] or None, size=r[3], is_inline=bool(r[4]),
            content_id=r[5], last_modified_date_time=iso(r[6]), kind=r[9], blob=blob,
        )  # fmt: skip

    async def _payload(self, r: Row) -> bytes:
        return b"".join([block async for block in self.content.read(self.engine, r[7], r[8])])

    async def attachments(self, message: StoredMessage) -> list[Attachment]:
        return [
            restored(self._attachment(r, None), await self._payload(r))
            for r in await self._attachment_rows(message)
        ]

    async def attachment_refs(self, message: StoredMessage) -> list[Attachment]:
        """A file's bytes are not read; an item's or a link's JSON (small) is."""
        found: list[Attachment] = []
        for r in await self._attachment_rows(message):
            a = self._attachment(r, str(r[7]))
            found.append(a if a.kind == FILE else restored(a, await self._payload(r)))
        return found

    async def blob(self, digest: str) -> tuple[int, Callable[[], AsyncIterator[bytes]]] | None:
        found = await self.blobs.blob(digest)
        if found is None:
            return None
        return found[0], lambda: self.blobs.read(digest)

    async def add_attachment(
        self, mailbox_id: str, message: Message, attachment: Attachment, *,
        expected_change_key: str,
    ) -> StoredMessage | None:  # fmt: skip
        async def op(tx: Tx) -> StoredMessage | None:
            log: list[Pending] = []  # recorded last, after the blob rows are locked
            written = await replace_message_op(
                tx, mailbox_id, message, expected_change_key, log=log
            )
            if written is None:
                return None
            digest = await _reference(tx, self.content, attachment)
            await insert_attachment_rows(tx, written.seq, [(attachment, digest)])
            await record(tx, mailbox_id, log)
            return written

        return await self.engine.write(op)

    async def delete_attachment(
        self, mailbox_id: str, message: Message, attachment_id: str, *, expected_change_key: str
    ) -> StoredMessage | None:
        async def op(tx: Tx) -> StoredMessage | None:
            log: list[Pending] = []  # recorded last, after the blob rows are locked
            written = await replace_message_op(
                tx, mailbox_id, message, expected_change_key, log=log
            )
            if written is None:
                return None
            found = await tx.fetchone(
                "SELECT blob_digest FROM attachments WHERE id = ? AND message_seq = ?",
                (attachment_id, written.seq),
            )
            gone = await tx.execute(
                "DELETE FROM attachments WHERE id = ? AND message_seq = ?",
                (attachment_id, written.seq),
            )
            if not gone or found is None:  # removed meanwhile: undo the document's change too
                raise _Vanished
            await reindex_attachments(tx, written.seq)
            await release(tx, [str(found[0])])
            await record(tx, mailbox_id, log)
            return written

        try:
            written = await self.engine.write(op)
        except _Vanished:
            return None
        await self.blobs.sweep()
        return written

    async def extensions(self, message: StoredMessage) -> list[dict[str, Any]]:
        async def op(tx: Tx) -> list[bytes]:
            rows = await tx.fetchall(
                "SELECT doc FROM message_extensions WHERE message_seq = ? ORDER BY name",
                (message.seq,),
            )
            return [bytes(r[0]) for r in rows]

        return [_decode(doc) for doc in await self.engine.read(op)]

    async def add_extension(self, message: StoredMessage, doc: dict[str, Any]) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                "INSERT INTO message_extensions (message_seq, name, doc) VALUES (?, ?, ?)",
                (message.seq, doc["extensionName"], _encode(doc)),
            )

        await self.engine.write(op, one_statement=True)

    async def replace_extension(self, message: StoredMessage, doc: dict[str, Any]) -> bool:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE message_extensions SET doc = ? WHERE message_seq = ? AND name = ?",
                (_encode(doc), message.seq, doc["extensionName"]),
            )

        return await self.engine.write(op, one_statement=True) > 0

    async def delete_extension(self, message: StoredMessage, name: str) -> bool:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "DELETE FROM message_extensions WHERE message_seq = ? AND name = ?",
                (message.seq, name),
            )

        return await self.engine.write(op, one_statement=True) > 0

    async def extended_properties(
        self, message: StoredMessage, ids: Sequence[str] | None = None
    ) -> list[ExtendedProperty]:
        sql = "SELECT prop_id, multi, value FROM message_extended_props WHERE message_seq = ?"
        params: list[Any] = [message.seq]
        if ids is not None:
            if not ids:
                return []
            sql += f" AND prop_id IN ({', '.join('?' for _ in ids)})"
            params.extend(ids)

        async def op(tx: Tx) -> list[Row]:
            return await tx.fetchall(sql + " ORDER BY prop_id", params)

        return [
            ExtendedProperty(r[0], _decode(r[2], type=list[str]) if r[1] else r[2])
            for r in await self.engine.read(op)
        ]
