"""The transactional outbox: submissions, per-recipient deliveries with leases, attempts."""

from __future__ import annotations

from graphpost.errors import ConflictError
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.message_ops import delete_message_op, insert_message_op, replace_message_op
from graphpost.store.records import (
    AttemptRow,
    DeliveryRow,
    MessageRow,
    NewMessage,
    Outcome,
    SubmissionRow,
)

_SUB_COLS = (
    "id, mailbox_id, message_id, internet_message_id, subject, envelope_from, sender_name, "
    "mime, saved, created_ms, expires_ms, idempotency_key"
)
_DEL_COLS = (
    "d.seq, d.submission_id, d.recipient, d.transport, d.local_mailbox_id, d.state, d.attempts, "
    "d.next_attempt_ms, d.last_code, d.last_enhanced, d.last_response, d.created_ms, "
    "d.updated_ms, d.done_ms"
)
FINAL = ("delivered", "failed")


def _submission(r: Row) -> SubmissionRow:
    return SubmissionRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), bool(r[8]),
                         r[9], r[10], r[11])  # fmt: skip


def _delivery(r: Row) -> DeliveryRow:
    return DeliveryRow(*r)


async def _insert_message(tx: Tx, new: NewMessage) -> None:
    await insert_message_op(tx, new.row, new.attachments, [])


class OutboxMixin:
    engine: Engine

    async def submit(
        self,
        submission: SubmissionRow,
        deliveries: list[DeliveryRow],
        *,
        replace: tuple[MessageRow, str] | None = None,
        insert: NewMessage | None = None,
        delete_id: str | None = None,
    ) -> SubmissionRow:
        """Record a send in one transaction: the Sent Items copy (a draft moved there, a new
        item, or nothing), the submission and one delivery per recipient.

        With an idempotency key already used by this mailbox, nothing is written and the
        earlier submission is returned. A draft that changed or was sent meanwhile raises
        ConflictError.
        """

        async def op(tx: Tx) -> SubmissionRow:
            if submission.idempotency_key is not None:
                found = await tx.fetchone(
                    f"SELECT {_SUB_COLS} FROM submissions WHERE mailbox_id = ? "
                    "AND idempotency_key = ?",
                    (submission.mailbox_id, submission.idempotency_key),
                )
                if found is not None:
                    return _submission(found)
            if replace is not None:
                await _move_draft(tx, *replace)
            if delete_id is not None:
                await _delete_draft(tx, submission.mailbox_id, delete_id)
            if insert is not None:
                await _insert_message(tx, insert)
            s = submission
            await tx.execute(
                f"INSERT INTO submissions ({_SUB_COLS}, size) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.id, s.mailbox_id, s.message_id, s.internet_message_id, s.subject,
                 s.envelope_from, s.sender_name, s.mime, s.saved, s.created_ms, s.expires_ms,
                 s.idempotency_key, len(s.mime)),
            )  # fmt: skip
            await tx.executemany(
                "INSERT INTO deliveries (submission_id, recipient, transport, local_mailbox_id, "
                "state, attempts, next_attempt_ms, created_ms, updated_ms, last_response) "
                "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [(s.id, d.recipient, d.transport, d.local_mailbox_id, d.state, d.next_attempt_ms,
                  s.created_ms, s.created_ms, d.last_response) for d in deliveries],
            )  # fmt: skip
            return s

        return await self.engine.write(op)

    async def find_submission(self, mailbox_id: str, message_id: str) -> SubmissionRow | None:
        async def op(tx: Tx) -> SubmissionRow | None:
            row = await tx.fetchone(
                f"SELECT {_SUB_COLS} FROM submissions WHERE mailbox_id = ? AND message_id = ? "
                "ORDER BY created_ms DESC",
                (mailbox_id, message_id),
            )
            return _submission(row) if row else None

        return await self.engine.read(op)

    async def get_submission(self, submission_id: str) -> SubmissionRow | None:
        async def op(tx: Tx) -> SubmissionRow | None:
            row = await tx.fetchone(
                f"SELECT {_SUB_COLS} FROM submissions WHERE id = ?", (submission_id,)
            )
            return _submission(row) if row else None

        return await self.engine.read(op)

    async def claim_deliveries(
        self, *, owner: str, now_ms: int, lease_ms: int, limit: int, remote: bool
    ) -> list[DeliveryRow]:
        """Lease up to ``limit`` due deliveries (local always; SMTP ones when ``remote``)."""
        transports = "('local', 'smtp')" if remote else "('local')"

        async def op(tx: Tx) -> list[DeliveryRow]:
            skip = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
            rows = await tx.fetchall(
                f"SELECT d.seq FROM deliveries d WHERE d.state IN ('queued', 'deferred') "
                f"AND d.transport IN {transports} AND d.next_attempt_ms <= ? "
                f"AND (d.lease_until_ms IS NULL OR d.lease_until_ms < ?) "
                f"ORDER BY d.next_attempt_ms LIMIT ?{skip}",
                (now_ms, now_ms, limit),
            )
            if not rows:
                return []
            seqs = [r[0] for r in rows]
            marks = ", ".join("?" for _ in seqs)
            await tx.execute(
                f"UPDATE deliveries SET lease_owner = ?, lease_until_ms = ? WHERE seq IN ({marks})",
                (owner, now_ms + lease_ms, *seqs),
            )
            got = await tx.fetchall(
                f"SELECT {_DEL_COLS} FROM deliveries d WHERE d.seq IN ({marks}) ORDER BY d.seq",
                seqs,
            )
            return [_delivery(r) for r in got]

        return await self.engine.write(op)

    async def deliver_local(
        self, delivery: DeliveryRow, *, owner: str, message: NewMessage, now_ms: int
    ) -> bool:
        """Put the copy in the recipient's mailbox and mark the delivery done, in one
        transaction, if this worker still holds the lease: a local delivery happens once."""

        async def op(tx: Tx) -> bool:
            held = await tx.fetchone(
                f"SELECT state FROM deliveries WHERE seq = ? AND lease_owner = ?{tx.for_update}",
                (delivery.seq, owner),
            )
            if held is None or held[0] in FINAL:
                return False
            await _insert_message(tx, message)
            await _set_outcome(
                tx,
                Outcome(delivery.seq, "delivered", 250, "2.0.0", "delivered to the mailbox"),
                owner,
                now_ms,
            )
            return True

        return await self.engine.write(op)

    async def record_outcomes(
        self, outcomes: list[Outcome], *, owner: str, now_ms: int, bounce: NewMessage | None
    ) -> int:
        """Record attempts (and a non-delivery report, in the same transaction)."""

        async def op(tx: Tx) -> int:
            done = 0
            for outcome in outcomes:
                done += await _set_outcome(tx, outcome, owner, now_ms)
            if bounce is not None and done:
                await _insert_message(tx, bounce)
            return done

        return await self.engine.write(op)

    async def renew_leases(self, seqs: list[int], *, owner: str, until_ms: int) -> int:
        """Extend this worker's leases on deliveries it is still working on."""
        if not seqs:
            return 0

        async def op(tx: Tx) -> int:
            marks = ", ".join("?" for _ in seqs)
            return await tx.execute(
                f"UPDATE deliveries SET lease_until_ms = ? WHERE lease_owner = ? "
                f"AND seq IN ({marks})",
                (until_ms, owner, *seqs),
            )

        return await self.engine.write(op, one_statement=True)

    async def take_over_leases(self, owner: str) -> int:
        """Free every lease not held by ``owner``: for the one worker of a SQLite database,
        which knows that whoever held them is gone (a crashed process), so its work is
        claimed at once instead of when the leases run out."""

        async def op(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until_ms = NULL "
                "WHERE lease_owner IS NOT NULL AND lease_owner <> ? "
                "AND state NOT IN ('delivered', 'failed')",
                (owner,),
            )

        return await self.engine.write(op)

    async def deliveries_of(self, submission_id: str) -> tuple[list[DeliveryRow], list[AttemptRow]]:
        async def op(tx: Tx) -> tuple[list[DeliveryRow], list[AttemptRow]]:
            rows = await tx.fetchall(
                f"SELECT {_DEL_COLS} FROM deliveries d WHERE d.submission_id = ? ORDER BY d.seq",
                (submission_id,),
            )
            attempts = await tx.fetchall(
                "SELECT a.delivery_seq, a.at_ms, a.outcome, a.code, a.enhanced, a.response "
                "FROM delivery_attempts a JOIN deliveries d ON d.seq = a.delivery_seq "
                "WHERE d.submission_id = ? ORDER BY a.seq",
                (submission_id,),
            )
            return [_delivery(r) for r in rows], [AttemptRow(*a) for a in attempts]

        return await self.engine.read(op)


async def _set_outcome(tx: Tx, o: Outcome, owner: str, now_ms: int) -> int:
    final = o.state in FINAL
    changed = await tx.execute(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_ms = ?, "
        "last_code = ?, last_enhanced = ?, last_response = ?, updated_ms = ?, done_ms = ?, "
        "lease_owner = NULL, lease_until_ms = NULL "
        "WHERE seq = ? AND lease_owner = ? AND state NOT IN ('delivered', 'failed')",
        (o.state, o.next_attempt_ms or now_ms, o.code, o.enhanced, o.response[:2000], now_ms,
         now_ms if final else None, o.delivery_seq, owner),
    )  # fmt: skip
    if changed:
        await tx.execute(
            "INSERT INTO delivery_attempts (delivery_seq, at_ms, outcome, code, enhanced, "
            "response) VALUES (?, ?, ?, ?, ?, ?)",
            (o.delivery_seq, now_ms, o.state, o.code, o.enhanced, o.response[:2000]),
        )
    return 1 if changed else 0


async def _move_draft(tx: Tx, row: MessageRow, expected_change_key: str) -> None:
    old = await tx.fetchone(
        f"SELECT is_draft, folder_id FROM messages WHERE id = ? AND mailbox_id = ? "
        f"AND change_key = ?{tx.for_update}",
        (row.id, row.mailbox_id, expected_change_key),
    )
    if old is None or not old[0]:
        raise ConflictError("The draft changed or was sent while it was being sent.")
    if not await replace_message_op(tx, row, expected_change_key, move=True):
        raise ConflictError("The draft changed or was sent while it was being sent.")


async def _delete_draft(tx: Tx, mailbox_id: str, message_id: str) -> None:
    if not await delete_message_op(tx, mailbox_id, message_id, drafts_only=True):
        raise ConflictError("The draft changed or was sent while it was being sent.")
