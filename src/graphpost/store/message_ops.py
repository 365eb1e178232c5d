"""Message writes shared by the mail store and the outbox (used inside their transactions)."""

from __future__ import annotations

from typing import Any

from graphpost.store.engine import Tx
from graphpost.store.records import AttachmentRow, MessageRow

INSERT_MSG = (
    "INSERT INTO messages (id, mailbox_id, folder_id, created_at, modified_at, received_at, "
    "sent_at, is_read, is_draft, has_attachments, importance, inference, flag_status, subject, "
    "body_preview, from_name, from_address, sender_name, sender_address, internet_message_id, "
    "conversation_id, change_key, doc, headers) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _msg_params(r: MessageRow) -> list[Any]:
    return [
        r.id, r.mailbox_id, r.folder_id, r.created_at, r.modified_at, r.received_at, r.sent_at,
        r.is_read, r.is_draft, r.has_attachments, r.importance, r.inference, r.flag_status,
        r.subject, r.body_preview, r.from_name, r.from_address, r.sender_name, r.sender_address,
        r.internet_message_id, r.conversation_id, r.change_key, r.doc, r.headers,
    ]  # fmt: skip


async def _bump_counts(tx: Tx, folder_id: str, total: int, unread: int) -> None:
    if total or unread:
        await tx.execute(
            "UPDATE folders SET total_count = total_count + ?, unread_count = unread_count + ? "
            "WHERE id = ?",
            (total, unread, folder_id),
        )


async def _write_children(tx: Tx, seq: int, row: MessageRow) -> None:
    await tx.executemany(
        "INSERT INTO message_recipients (message_seq, kind, name, address) VALUES (?, ?, ?, ?)",
        [(seq, kind, name, address) for kind, name, address in row.recipients],
    )
    await tx.executemany(
        "INSERT INTO message_categories (message_seq, name) VALUES (?, ?)",
        [(seq, name) for name in row.categories],
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
    "unread_count = unread_count + ? WHERE id = ?) "
    "SELECT seq FROM m"
)


async def insert_message_op(
    tx: Tx, row: MessageRow, attachments: list[AttachmentRow], extensions: list[tuple[str, bytes]]
) -> int:
    if tx.dialect == "postgresql":
        found = await tx.fetchone(
            _PG_INSERT,
            (
                *_msg_params(row),
                [k for k, _, _ in row.recipients],
                [n for _, n, _ in row.recipients],
                [a for _, _, a in row.recipients],
                list(row.categories),
                0 if row.is_read else 1,
                row.folder_id,
            ),
        )
        assert found is not None
        seq = int(found[0])
    else:
        seq = await tx.insert_returning(INSERT_MSG, _msg_params(row))
        await _write_children(tx, seq, row)
    await tx.executemany(
        "INSERT INTO attachments (id, message_seq, position, name, content_type, size, "
        "is_inline, content_id, modified_at, content) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (a.id, seq, n, a.name, a.content_type, a.size, a.is_inline, a.content_id,
             a.modified_at, a.content)
            for n, a in enumerate(attachments)
        ],
    )  # fmt: skip
    await tx.executemany(
        "INSERT INTO message_extensions (message_seq, name, doc) VALUES (?, ?, ?)",
        [(seq, name, doc) for name, doc in extensions],
    )
    if tx.dialect != "postgresql":
        await _bump_counts(tx, row.folder_id, 1, 0 if row.is_read else 1)
    row.seq = seq
    return seq


async def replace_message_op(
    tx: Tx, row: MessageRow, expected_change_key: str, *, move: bool = False
) -> bool:
    """Write a changed message (and, with ``move``, its new folder) if the key still matches."""
    old = await tx.fetchone(
        f"SELECT is_read, folder_id, seq FROM messages WHERE id = ? AND mailbox_id = ? "
        f"AND change_key = ?{tx.for_update}",
        (row.id, row.mailbox_id, expected_change_key),
    )
    if old is None:
        return False
    folder = row.folder_id if move else old[1]
    params = _msg_params(row)[3:]  # everything after id, mailbox_id, folder_id
    await tx.execute(
        "UPDATE messages SET created_at = ?, modified_at = ?, received_at = ?, "
        "sent_at = ?, is_read = ?, is_draft = ?, has_attachments = ?, importance = ?, "
        "inference = ?, flag_status = ?, subject = ?, body_preview = ?, from_name = ?, "
        "from_address = ?, sender_name = ?, sender_address = ?, "
        "internet_message_id = ?, conversation_id = ?, change_key = ?, doc = ?, "
        "headers = ?, folder_id = ? WHERE seq = ?",
        (*params, folder, old[2]),
    )
    await tx.execute("DELETE FROM message_recipients WHERE message_seq = ?", (old[2],))
    await tx.execute("DELETE FROM message_categories WHERE message_seq = ?", (old[2],))
    await _write_children(tx, old[2], row)
    was_unread = 0 if old[0] else 1
    now_unread = 0 if row.is_read else 1
    if folder == old[1]:
        await _bump_counts(tx, folder, 0, now_unread - was_unread)
    else:
        await _bump_counts(tx, old[1], -1, -was_unread)
        await _bump_counts(tx, folder, 1, now_unread)
    row.seq = old[2]
    row.folder_id = folder
    return True


async def delete_message_op(
    tx: Tx, mailbox_id: str, message_id: str, *, drafts_only: bool = False
) -> bool:
    old = await tx.fetchone(
        f"SELECT folder_id, is_read, is_draft FROM messages WHERE id = ? AND mailbox_id = ?"
        f"{tx.for_update}",
        (message_id, mailbox_id),
    )
    if old is None or (drafts_only and not old[2]):
        return False
    await tx.execute(
        "DELETE FROM messages WHERE id = ? AND mailbox_id = ?", (message_id, mailbox_id)
    )
    await _bump_counts(tx, old[0], -1, 0 if old[1] else -1)
    return True
