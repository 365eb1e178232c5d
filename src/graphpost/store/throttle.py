"""Throttling counters in PostgreSQL, shared by every API process of a deployment."""

from __future__ import annotations

from graphpost.ports.throttling import Admission
from graphpost.store.engine import Engine, Tx


class PgThrottleCounters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._swept = 0

    async def begin(
        self, key: str, *, bucket: int, oldest: int, limit: int, token: str, expires_ms: int,
        now_ms: int,
    ) -> Admission:  # fmt: skip
        sweep = bucket != self._swept
        self._swept = bucket

        async def op(tx: Tx) -> Admission:
            # count first: the upsert locks this key's current bucket row until COMMIT, so the
            # processes sharing the key check the window one at a time (exactly `limit` pass)
            await tx.execute(
                "INSERT INTO throttle_counts (key, bucket, count) VALUES (?, ?, 1) "
                "ON CONFLICT (key, bucket) DO UPDATE SET count = throttle_counts.count + 1",
                (key, bucket),
            )
            rows = await tx.fetchall(
                "SELECT bucket, count FROM throttle_counts WHERE key = ? AND bucket >= ? "
                "ORDER BY bucket",
                (key, oldest),
            )
            if sum(int(r[1]) for r in rows) > limit:  # refused: not counted after all
                await tx.execute(
                    "UPDATE throttle_counts SET count = count - 1 WHERE key = ? AND bucket = ?",
                    (key, bucket),
                )
                window = [(int(b), int(c) - (1 if int(b) == bucket else 0)) for b, c in rows]
                return Admission(False, 0, [(b, c) for b, c in window if c > 0])
            await tx.execute(
                "INSERT INTO throttle_inflight (key, token, expires_ms) VALUES (?, ?, ?)",
                (key, token, expires_ms),
            )
            row = await tx.fetchone(
                "SELECT count(*) FROM throttle_inflight WHERE key = ? AND expires_ms > ?",
                (key, now_ms),
            )
            if sweep:  # once a bucket per process: forget old buckets and lost tokens
                await tx.execute("DELETE FROM throttle_counts WHERE bucket < ?", (oldest,))
                await tx.execute("DELETE FROM throttle_inflight WHERE expires_ms < ?", (now_ms,))
            assert row is not None
            return Admission(True, int(row[0]))

        return await self.engine.write(op)

    async def leave(self, key: str, token: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                "DELETE FROM throttle_inflight WHERE key = ? AND token = ?", (key, token)
            )

        await self.engine.write(op, one_statement=True)
