"""The change log on either engine (see ``ports.changes`` for what is recorded).

Every write path calls ``record`` in its own transaction, last: it bumps the mailbox's counter
row (``change_counters``, one per mailbox) by the number of changes and inserts them with the
seqs it got. The counter row stays locked until COMMIT, so on PostgreSQL two writers to one
mailbox take their seqs in the order they commit (a global sequence would not: a reader could
see seq 12 committed before seq 11 and skip it). Taking it last, after the message and folder
rows a write locks, keeps the lock short and in one position, so it cannot deadlock with them.
On SQLite the one writer serialises everything already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from graphpost.domain.times import now_ms
from graphpost.ports.changes import Change
from graphpost.store.engine import Engine, Tx


class Pending(NamedTuple):
    """A change not yet numbered: what a write op hands to ``record``."""

    kind: str
    item_id: str
    folder_id: str
    prior_folder_id: str | None
    change_type: str


_BUMP = (
    "INSERT INTO change_counters (mailbox_id, last_seq, horizon) VALUES (?, ?, 0) "
    "ON CONFLICT (mailbox_id) DO UPDATE SET last_seq = change_counters.last_seq + "
    "excluded.last_seq RETURNING last_seq"
)
INSERT_CHANGE = (
    "INSERT INTO changes (mailbox_id, seq, kind, item_id, folder_id, prior_folder_id, "
    "change_type, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def record(tx: Tx, mailbox_id: str, changes: Sequence[Pending]) -> None:
    """Number ``changes`` and write them, in the caller's transaction (call it last)."""
    if not changes:
        return
    row = await tx.fetchone(_BUMP, (mailbox_id, len(changes)))
    assert row is not None
    first = int(row[0]) - len(changes) + 1
    at = now_ms()
    await tx.executemany(
        INSERT_CHANGE,
        [(mailbox_id, first + n, *c, at) for n, c in enumerate(changes)],
    )


async def forget_mailbox(tx: Tx, mailbox_id: str) -> None:
    """A removed mailbox's log and counter."""
    await tx.execute("DELETE FROM changes WHERE mailbox_id = ?", (mailbox_id,))
    await tx.execute("DELETE FROM change_counters WHERE mailbox_id = ?", (mailbox_id,))


_COLS = "seq, kind, item_id, folder_id, prior_folder_id, change_type, at_ms"


class SqlChangeLog:
    """The change log port, and its pruning."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def changes_after(self, mailbox_id: str, after_seq: int, limit: int) -> list[Change]:
        async def op(tx: Tx) -> list[Change]:
            rows = await tx.fetchall(
                f"SELECT {_COLS} FROM changes WHERE mailbox_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (mailbox_id, after_seq, limit),
            )
            return [Change(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]

        return await self.engine.read(op)

    async def _counter(self, mailbox_id: str, column: str) -> int:
        async def op(tx: Tx) -> int:
            row = await tx.fetchone(
                f"SELECT {column} FROM change_counters WHERE mailbox_id = ?", (mailbox_id,)
            )
            return int(row[0]) if row else 0

        return await self.engine.read(op)

    async def counters(self, mailbox_id: str) -> tuple[int, int]:
        async def op(tx: Tx) -> tuple[int, int]:
            row = await tx.fetchone(
                "SELECT last_seq, horizon FROM change_counters WHERE mailbox_id = ?",
                (mailbox_id,),
            )
            return (int(row[0]), int(row[1])) if row else (0, 0)

        return await self.engine.read(op)

    async def last_seq(self, mailbox_id: str) -> int:
        return await self._counter(mailbox_id, "last_seq")

    async def horizon(self, mailbox_id: str) -> int:
        return await self._counter(mailbox_id, "horizon")

    async def prune(self, before_ms: int, *, batch: int = 10_000) -> int:
        """Remove changes recorded before ``before_ms`` (at most ``batch`` per mailbox and
        call), raising each mailbox's horizon to the last seq removed. How many went."""

        async def mailboxes(tx: Tx) -> list[tuple[str, int]]:
            rows = await tx.fetchall(
                "SELECT mailbox_id, max(seq) FROM changes WHERE at_ms < ? GROUP BY mailbox_id",
                (before_ms,),
            )
            return [(str(r[0]), int(r[1])) for r in rows]

        removed = 0
        for mailbox_id, _ in await self.engine.read(mailboxes):

            async def op(tx: Tx, mailbox_id: str = mailbox_id) -> int:
                row = await tx.fetchone(
                    "SELECT max(seq) FROM (SELECT seq FROM changes WHERE mailbox_id = ? "
                    "AND at_ms < ? ORDER BY seq LIMIT ?) AS old",
                    (mailbox_id, before_ms, batch),
                )
                if row is None or row[0] is None:
                    return 0
                upto = int(row[0])
                # the horizon first: a reader that sees a change gone also sees it raised
                await tx.execute(
                    "UPDATE change_counters SET horizon = ? WHERE mailbox_id = ? AND horizon < ?",
                    (upto, mailbox_id, upto),
                )
                return await tx.execute(
                    "DELETE FROM changes WHERE mailbox_id = ? AND seq <= ?", (mailbox_id, upto)
                )

            removed += await self.engine.write(op)
        return removed
