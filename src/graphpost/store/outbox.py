"""The transactional outbox: submissions, per-recipient deliveries with leases, attempts."""

from __future__ import annotations

from collections.abc import Sequence

from graphpost.domain.message import Message
from graphpost.errors import ConflictError
from graphpost.ports.blobs import StagedBlob
from graphpost.ports.messages import NewMessage
from graphpost.ports.outbox import (
    Attempt,
    Delivery,
    DeliveryState,
    Outcome,
    QueueAction,
    QueueEntry,
    QueuePage,
    QueueQuery,
    Route,
    Submission,
)
from graphpost.store.blobs import Content, adopt_staged, reference_digest, release
from graphpost.store.changes import Pending, record
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.messages import (
    IN_DATABASE,
    delete_message_op,
    insert_message_op,
    replace_message_op,
)

_SUB_COLS = (
    "id, mailbox_id, message_id, internet_message_id, subject, envelope_from, sender_name, "
    "mime, saved, created_ms, expires_ms, idempotency_key, mime_digest"
)
_DEL_COLS = (
    "d.seq, d.submission_id, d.recipient, d.transport, d.local_mailbox_id, d.state, d.attempts, "
    "d.next_attempt_ms, d.last_code, d.last_enhanced, d.last_response, d.created_ms, "
    "d.updated_ms, d.done_ms"
)
# the queue view's columns: a delivery, its submission's sender and subject, the tenant
_QUEUE_COLS = (
    f"{_DEL_COLS}, u.tenant_id, s.mailbox_id, s.message_id, s.internet_message_id, "
    "s.envelope_from, s.sender_name, s.subject, d.lease_owner, d.lease_until_ms"
)
_QUEUE_FROM = (
    "deliveries d JOIN submissions s ON s.id = d.submission_id JOIN users u ON u.id = s.mailbox_id"
)
CHANGED = "The draft changed or was sent while it was being sent."


def _submission(r: Row) -> Submission:
    return Submission(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bytes(r[7]), bool(r[8]),
                         r[9], r[10], r[11], r[12])  # fmt: skip


def _delivery(r: Row) -> Delivery:
    return Delivery(r[0], r[1], r[2], Route(r[3]), r[4], DeliveryState(r[5]), *r[6:])


def _held(owner: str | None, until_ms: int | None, now_ms: int) -> bool:
    """Whether a worker holds the lease: an attempt is under way."""
    return owner is not None and until_ms is not None and until_ms >= now_ms


def _attempt(a: Row) -> Attempt:
    return Attempt(a[0], a[1], DeliveryState(a[2]), a[3], a[4], a[5])


async def _queue_entries(tx: Tx, rows: list[Row], now_ms: int) -> list[QueueEntry]:
    """The rows (``_QUEUE_COLS``) as entries, with their attempts (one query for all)."""
    if not rows:
        return []
    seqs = [r[0] for r in rows]
    marks = ", ".join("?" for _ in seqs)
    by_seq: dict[int, list[Attempt]] = {seq: [] for seq in seqs}
    for a in await tx.fetchall(
        "SELECT delivery_seq, at_ms, outcome, code, enhanced, response FROM delivery_attempts "
        f"WHERE delivery_seq IN ({marks}) ORDER BY seq",
        seqs,
    ):
        by_seq[a[0]].append(_attempt(a))
    n = 14  # the delivery's columns
    return [
        QueueEntry(
            _delivery(r[:n]),
            r[n],
            r[n + 1],
            r[n + 2],
            r[n + 3],
            r[n + 4],
            r[n + 5],
            r[n + 6],
            tuple(by_seq[r[0]]),
            _held(r[n + 7], r[n + 8], now_ms),
        )
        for r in rows
    ]


class SqlOutbox:
    """The outbox port on either engine."""

    def __init__(self, engine: Engine, content: Content = IN_DATABASE) -> None:
        self.engine = engine
        self.content = content  # where attachment bytes go (local copies, reports)

    async def submit(
        self,
        submission: Submission,
        deliveries: list[Delivery],
        *,
        replace: tuple[Message, str] | None = None,
        insert: NewMessage | None = None,
        delete_id: str | None = None,
        mime_blob: StagedBlob | None = None,
        hold: list[str] | None = None,
    ) -> Submission:
        held = sorted(hold or [])

        async def op(tx: Tx) -> Submission:
            if submission.idempotency_key is not None:
                found = await tx.fetchone(
                    f"SELECT {_SUB_COLS} FROM submissions WHERE mailbox_id = ? "
                    "AND idempotency_key = ?",
                    (submission.mailbox_id, submission.idempotency_key),
                )
                if found is not None:
                    if mime_blob is not None:  # sent before: this copy of its MIME goes
                        await tx.execute(
                            "DELETE FROM blob_chunks WHERE location = ?", (f"u:{mime_blob.key}",)
                        )
                    return _submission(found)
            for digest in held:  # before the draft (and its references) may go
                await reference_digest(tx, digest)
            if mime_blob is not None:
                await adopt_staged(tx, self.content, mime_blob)
            log: list[Pending] = []  # recorded last (store/changes.py)
            if replace is not None:
                sent, key = replace
                if not await replace_message_op(
                    tx, submission.mailbox_id, sent, key, drafts_only=True, log=log
                ):
                    raise ConflictError(CHANGED)
            if delete_id is not None and not await delete_message_op(
                tx, submission.mailbox_id, delete_id, drafts_only=True, log=log
            ):
                raise ConflictError(CHANGED)
            if insert is not None:
                await insert_message_op(tx, insert, self.content, log=log)
            s = submission
            await tx.execute(
                f"INSERT INTO submissions ({_SUB_COLS}, size, blobs_held) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.id, s.mailbox_id, s.message_id, s.internet_message_id, s.subject,
                 s.envelope_from, s.sender_name, s.mime, s.saved, s.created_ms, s.expires_ms,
                 s.idempotency_key, mime_blob.digest if mime_blob else None,
                 mime_blob.size if mime_blob else len(s.mime),
                 " ".join(held) if held else None),
            )  # fmt: skip
            await tx.executemany(
                "INSERT INTO deliveries (submission_id, recipient, transport, local_mailbox_id, "
                "state, attempts, next_attempt_ms, created_ms, updated_ms, last_response) "
                "VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)",
                [(s.id, d.recipient, d.route.value, d.local_mailbox_id, d.state.value,
                  d.next_attempt_ms, s.created_ms, s.created_ms, d.last_response)
                 for d in deliveries],
            )  # fmt: skip
            await record(tx, submission.mailbox_id, log)
            return replace_submission(s, mime_blob)

        try:
            return await self.engine.write(op)
        finally:
            if mime_blob is not None:
                self.content.settle_key(mime_blob.key)

    async def find_submission(self, mailbox_id: str, message_id: str) -> Submission | None:
        async def op(tx: Tx) -> Submission | None:
            row = await tx.fetchone(
                f"SELECT {_SUB_COLS} FROM submissions WHERE mailbox_id = ? AND message_id = ? "
                "ORDER BY created_ms DESC",
                (mailbox_id, message_id),
            )
            return _submission(row) if row else None

        return await self.engine.read(op)

    async def get_submission(self, submission_id: str) -> Submission | None:
        async def op(tx: Tx) -> Submission | None:
            row = await tx.fetchone(
                f"SELECT {_SUB_COLS} FROM submissions WHERE id = ?", (submission_id,)
            )
            return _submission(row) if row else None

        return await self.engine.read(op)

    async def claim_deliveries(
        self, *, owner: str, now_ms: int, lease_ms: int, limit: int, remote: bool
    ) -> list[Delivery]:
        transports = "('local', 'smtp')" if remote else "('local')"

        async def op(tx: Tx) -> list[Delivery]:
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
        self, delivery: Delivery, *, owner: str, message: NewMessage, now_ms: int
    ) -> bool:
        async def op(tx: Tx) -> bool:
            held = await tx.fetchone(
                f"SELECT state FROM deliveries WHERE seq = ? AND lease_owner = ?{tx.for_update}",
                (delivery.seq, owner),
            )
            if held is None or DeliveryState(held[0]).final:
                return False
            await insert_message_op(tx, message, self.content)
            await _set_outcome_and_release(
                tx,
                Outcome(
                    delivery.seq, DeliveryState.DELIVERED, 250, "2.0.0", "delivered to the mailbox"
                ),
                owner,
                now_ms,
            )
            return True

        return await self.engine.write(op)

    async def record_outcomes(
        self, outcomes: list[Outcome], *, owner: str, now_ms: int, bounce: NewMessage | None
    ) -> int:
        async def op(tx: Tx) -> int:
            done = 0
            for outcome in outcomes:
                done += await _set_outcome_and_release(tx, outcome, owner, now_ms)
            if bounce is not None and done:
                await insert_message_op(tx, bounce, self.content)
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

    async def deliveries_of(self, submission_id: str) -> tuple[list[Delivery], list[Attempt]]:
        async def op(tx: Tx) -> tuple[list[Delivery], list[Attempt]]:
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
            return [_delivery(r) for r in rows], [_attempt(a) for a in attempts]

        return await self.engine.read(op)

    async def delivery_states(
        self, mailbox_id: str, message_ids: Sequence[str]
    ) -> dict[str, list[DeliveryState]]:
        ids = list(dict.fromkeys(message_ids))[:500]
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        # ix_submissions_message (mailbox_id, message_id), then ix_deliveries_submission
        sql = (
            "SELECT s.message_id, s.created_ms, s.id, d.state FROM submissions s "
            "JOIN deliveries d ON d.submission_id = s.id "
            f"WHERE s.mailbox_id = ? AND s.message_id IN ({marks})"
        )

        async def op(tx: Tx) -> list[Row]:
            return await tx.fetchall(sql, (mailbox_id, *ids))

        latest: dict[str, tuple[int, str]] = {}
        states: dict[str, list[DeliveryState]] = {}
        for message_id, created_ms, submission_id, state in await self.engine.read(op):
            key = (int(created_ms), str(submission_id))
            seen = latest.get(message_id)
            if seen is None or key > seen:  # a later submission of the same message wins
                latest[message_id] = key
                states[message_id] = []
            if latest[message_id] == key:
                states[message_id].append(DeliveryState(state))
        return states

    # ------------------------------------------------------------ the queue view's operations

    async def queue(self, query: QueueQuery, *, now_ms: int) -> QueuePage:
        """One query per state, each walking ``ix_deliveries_state_seq`` backwards from the
        cursor (so a page costs its size, not the queue's), merged newest first."""
        where, args = "", list[str | int]()
        if query.tenant_id is not None:
            where += " AND u.tenant_id = ?"
            args.append(query.tenant_id)
        if query.mailbox_id is not None:
            where += " AND s.mailbox_id = ?"
            args.append(query.mailbox_id)
        if query.before is not None:
            where += " AND d.seq < ?"
            args.append(query.before)
        limit = max(1, query.limit)

        async def op(tx: Tx) -> QueuePage:
            rows: list[Row] = []
            for state in dict.fromkeys(query.states):
                rows += await tx.fetchall(
                    f"SELECT {_QUEUE_COLS} FROM {_QUEUE_FROM} WHERE d.state = ?{where} "
                    "ORDER BY d.seq DESC LIMIT ?",
                    (state.value, *args, limit + 1),
                )
            rows.sort(key=lambda r: r[0], reverse=True)
            more = len(rows) > limit
            rows = rows[:limit]
            entries = await _queue_entries(tx, rows, now_ms)
            return QueuePage(entries, rows[-1][0] if more else None)

        return await self.engine.read(op)

    async def queue_entry(self, seq: int, *, now_ms: int) -> QueueEntry | None:
        async def op(tx: Tx) -> QueueEntry | None:
            rows = await tx.fetchall(
                f"SELECT {_QUEUE_COLS} FROM {_QUEUE_FROM} WHERE d.seq = ?", (seq,)
            )
            found = await _queue_entries(tx, rows, now_ms)
            return found[0] if found else None

        return await self.engine.read(op)

    async def queue_counts(
        self, states: tuple[DeliveryState, ...], *, tenant_id: str | None = None
    ) -> dict[DeliveryState, int]:
        async def op(tx: Tx) -> dict[DeliveryState, int]:
            counts: dict[DeliveryState, int] = {}
            for state in dict.fromkeys(states):
                if tenant_id is None:
                    row = await tx.fetchone(
                        "SELECT COUNT(*) FROM deliveries WHERE state = ?", (state.value,)
                    )
                else:
                    row = await tx.fetchone(
                        f"SELECT COUNT(*) FROM {_QUEUE_FROM} WHERE d.state = ? AND u.tenant_id = ?",
                        (state.value, tenant_id),
                    )
                counts[state] = int(row[0]) if row else 0
            return counts

        return await self.engine.read(op)

    async def retry_now(self, seq: int, *, now_ms: int) -> QueueAction:
        async def op(tx: Tx) -> QueueAction:
            row = await tx.fetchone(
                f"SELECT state FROM deliveries WHERE seq = ?{tx.for_update}", (seq,)
            )
            if row is None:
                return QueueAction.MISSING
            if DeliveryState(row[0]).final:
                return QueueAction.FINAL
            # the lease is left alone: a worker attempting it now keeps it (and records its
            # outcome, with its own next attempt); no other worker can claim it meanwhile
            await tx.execute(
                "UPDATE deliveries SET next_attempt_ms = ?, updated_ms = ? WHERE seq = ? "
                "AND state IN ('queued', 'deferred')",
                (now_ms, now_ms, seq),
            )
            return QueueAction.DONE

        return await self.engine.write(op)

    async def cancel(self, seq: int, *, now_ms: int, note: str) -> QueueAction:
        async def op(tx: Tx) -> QueueAction:
            row = await tx.fetchone(
                "SELECT state, lease_owner, lease_until_ms FROM deliveries "
                f"WHERE seq = ?{tx.for_update}",
                (seq,),
            )
            if row is None:
                return QueueAction.MISSING
            if DeliveryState(row[0]).final:
                return QueueAction.FINAL
            if _held(row[1], row[2], now_ms):
                return QueueAction.IN_PROGRESS
            await tx.execute(
                "UPDATE deliveries SET state = 'failed', last_code = NULL, "
                "last_enhanced = NULL, last_response = ?, updated_ms = ?, done_ms = ?, "
                "lease_owner = NULL, lease_until_ms = NULL WHERE seq = ?",
                (note, now_ms, now_ms, seq),
            )
            await tx.execute(
                "INSERT INTO delivery_attempts (delivery_seq, at_ms, outcome, code, enhanced, "
                "response) VALUES (?, ?, 'failed', NULL, NULL, ?)",
                (seq, now_ms, note),
            )
            await _release_if_done(tx, seq)
            return QueueAction.DONE

        return await self.engine.write(op)


def replace_submission(s: Submission, mime_blob: StagedBlob | None) -> Submission:
    if mime_blob is None:
        return s
    return Submission(s.id, s.mailbox_id, s.message_id, s.internet_message_id, s.subject,
                      s.envelope_from, s.sender_name, s.mime, s.saved, s.created_ms,
                      s.expires_ms, s.idempotency_key, mime_blob.digest)  # fmt: skip


async def _set_outcome_and_release(tx: Tx, o: Outcome, owner: str, now_ms: int) -> int:
    """The outcome; when it was the submission's last open delivery, the blobs the
    submission held (its MIME, its attachments) are released in the same transaction."""
    changed = await _set_outcome(tx, o, owner, now_ms)
    if changed and o.state.final:
        await _release_if_done(tx, o.delivery_seq)
    return changed


async def _release_if_done(tx: Tx, seq: int) -> None:
    """After delivery ``seq`` became final: when it was its submission's last open one, the
    blobs the submission held are released."""
    row = await tx.fetchone(
        "SELECT s.id, s.mime_digest, s.blobs_held FROM submissions s "
        "JOIN deliveries d ON d.submission_id = s.id WHERE d.seq = ?",
        (seq,),
    )
    if row is not None and (row[1] is not None or row[2] is not None):
        open_ = await tx.fetchone(
            "SELECT 1 FROM deliveries WHERE submission_id = ? "
            "AND state NOT IN ('delivered', 'failed') LIMIT 1",
            (row[0],),
        )
        if open_ is None:
            await release_submission(tx, row[0], row[1], row[2])


async def release_submission(
    tx: Tx, submission_id: str, mime_digest: str | None, held: str | None
) -> None:
    digests = ([mime_digest] if mime_digest else []) + (held.split() if held else [])
    changed = await tx.execute(
        "UPDATE submissions SET mime_digest = NULL, blobs_held = NULL WHERE id = ? "
        "AND (mime_digest IS NOT NULL OR blobs_held IS NOT NULL)",
        (submission_id,),
    )
    if changed:
        await release(tx, digests)


async def _set_outcome(tx: Tx, o: Outcome, owner: str, now_ms: int) -> int:
    final = o.state.final
    changed = await tx.execute(
        "UPDATE deliveries SET state = ?, attempts = attempts + 1, next_attempt_ms = ?, "
        "last_code = ?, last_enhanced = ?, last_response = ?, updated_ms = ?, done_ms = ?, "
        "lease_owner = NULL, lease_until_ms = NULL "
        "WHERE seq = ? AND lease_owner = ? AND state NOT IN ('delivered', 'failed')",
        (o.state.value, o.next_attempt_ms or now_ms, o.code, o.enhanced, o.response[:2000], now_ms,
         now_ms if final else None, o.delivery_seq, owner),
    )  # fmt: skip
    if changed:
        await tx.execute(
            "INSERT INTO delivery_attempts (delivery_seq, at_ms, outcome, code, enhanced, "
            "response) VALUES (?, ?, ?, ?, ?, ?)",
            (o.delivery_seq, now_ms, o.state.value, o.code, o.enhanced, o.response[:2000]),
        )
    return 1 if changed else 0
