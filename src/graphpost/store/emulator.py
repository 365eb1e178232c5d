"""The emulator's port (``ports.emulator.EmulatorStore``) on either engine: a tenant's
mailboxes emptied in one transaction, and the deliveries that have an outcome."""

from __future__ import annotations

from graphpost.ports.blobs import UploadSession
from graphpost.ports.emulator import Delivered, ResetCount
from graphpost.ports.outbox import DeliveryState, Route
from graphpost.store.blobs import SESSION_COLS, Content, DbContent, release_where, session_of
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.outbox import release_submission

_OF_TENANT = "IN (SELECT id FROM users WHERE tenant_id = ?)"
_DELIVERED_COLS = (
    "d.seq, d.submission_id, s.message_id, s.internet_message_id, s.mailbox_id, "
    "s.envelope_from, s.subject, d.recipient, d.transport, d.local_mailbox_id, d.state, "
    "d.attempts, d.last_code, d.last_enhanced, d.last_response, d.created_ms, d.updated_ms, "
    "d.done_ms"
)


def _delivered(r: Row) -> Delivered:
    return Delivered(
        int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], Route(r[8]), r[9],
        DeliveryState(r[10]), int(r[11]), r[12], r[13], r[14], int(r[15]), int(r[16]),
        None if r[17] is None else int(r[17]),
    )  # fmt: skip


class SqlEmulator:
    def __init__(self, engine: Engine, content: Content | None = None) -> None:
        self.engine = engine
        self.content = content or DbContent()

    async def reset_tenant(self, tenant_id: str) -> ResetCount:
        sessions: list[UploadSession] = []
        arg = (tenant_id,)

        async def op(tx: Tx) -> ResetCount:
            row = await tx.fetchone("SELECT COUNT(*) FROM users WHERE tenant_id = ?", arg)
            mailboxes = int(row[0]) if row else 0
            row = await tx.fetchone(
                f"SELECT COUNT(*) FROM messages WHERE mailbox_id {_OF_TENANT}", arg
            )
            messages = int(row[0]) if row else 0
            # as a user's removal does (store/directory.py), keeping the user and the
            # well-known folders: the blobs of attachments first, then the rows
            await release_where(tx, f"m.mailbox_id {_OF_TENANT}", arg)
            sessions[:] = [
                s
                for r in await tx.fetchall(
                    f"SELECT {SESSION_COLS} FROM upload_sessions WHERE mailbox_id {_OF_TENANT}",
                    arg,
                )
                if not (s := session_of(r)).finished
            ]
            for session in sessions:
                await self.content.drop_staged(tx, session)
            await tx.execute(f"DELETE FROM upload_sessions WHERE mailbox_id {_OF_TENANT}", arg)
            for sub in await tx.fetchall(
                f"SELECT id, mime_digest, blobs_held FROM submissions WHERE mailbox_id "
                f"{_OF_TENANT} AND (mime_digest IS NOT NULL OR blobs_held IS NOT NULL)",
                arg,
            ):
                await release_submission(tx, sub[0], sub[1], sub[2])
            # their deliveries and attempts go by cascade
            submissions = await tx.execute(
                f"DELETE FROM submissions WHERE mailbox_id {_OF_TENANT}", arg
            )
            await tx.execute(f"DELETE FROM messages WHERE mailbox_id {_OF_TENANT}", arg)
            # the mailboxes' settings, master categories and Focused Inbox overrides
            for table in ("mailbox_settings", "master_categories", "inference_overrides"):
                await tx.execute(f"DELETE FROM {table} WHERE mailbox_id {_OF_TENANT}", arg)
            # folders the users made (their subfolders by cascade); the well-known stay
            await tx.execute(
                f"DELETE FROM folders WHERE mailbox_id {_OF_TENANT} AND well_known IS NULL", arg
            )
            await tx.execute(
                "UPDATE folders SET total_count = 0, unread_count = 0, child_count = "
                "(SELECT COUNT(*) FROM folders c WHERE c.parent_id = folders.id) "
                f"WHERE mailbox_id {_OF_TENANT}",
                arg,
            )
            return ResetCount(mailboxes, messages, submissions)

        done = await self.engine.write(op)
        for session in sessions:
            await self.content.drop_staged(None, session)  # a directory's part files
        return done

    async def delivered(self, limit: int) -> list[Delivered]:
        async def op(tx: Tx) -> list[Delivered]:
            rows = await tx.fetchall(
                f"SELECT {_DELIVERED_COLS} FROM deliveries d "
                "JOIN submissions s ON s.id = d.submission_id "
                "WHERE d.state IN ('delivered', 'deferred', 'failed') "
                "ORDER BY d.seq DESC LIMIT ?",
                (limit,),
            )
            return [_delivered(r) for r in rows]

        return await self.engine.read(op)
