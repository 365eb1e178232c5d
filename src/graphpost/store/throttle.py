"""Throttling counters in PostgreSQL, shared by every API process of a deployment."""

from __future__ import annotations

from graphpost.store.engine import Engine, Tx


class PgThrottleCounters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._swept = 0

    async def begin(
        self, key: str, *, bucket: int, oldest: int, token: str, expires_ms: int, now_ms: int
    ) -> tuple[int, int]:
        sweep = bucket != self._swept
        self._swept = bucket

        async def op(tx: Tx) -> tuple[int, int]:
            await tx.execute(
                "INSERT INTO throttle_counts (key, bucket, count) VALUES (?, ?, 1) "
                "ON CONFLICT (key, bucket) DO UPDATE SET count = throttle_counts.count + 1",
                (key, bucket),
            )
            await tx.execute(
                "INSERT INTO throttle_inflight (key, token, expires_ms) VALUES (?, ?, ?)",
                (key, token, expires_ms),
            )
            row = await tx.fetchone(
                "SELECT (SELECT coalesce(sum(count), 0) FROM throttle_counts "
                "WHERE key = ? AND bucket >= ?), "
                "(SELECT count(*) FROM throttle_inflight WHERE key = ? AND expires_ms > ?)",
                (key, oldest, key, now_ms),
            )
            if sweep:  # once a minute per process: forget old buckets and lost tokens
                await tx.execute("DELETE FROM throttle_counts WHERE bucket < ?", (oldest,))
                await tx.execute("DELETE FROM throttle_inflight WHERE expires_ms < ?", (now_ms,))
            assert row is not None
            return int(row[0]), int(row[1])

        return await self.engine.write(op)

    async def leave(self, key: str, token: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                "DELETE FROM throttle_inflight WHERE key = ? AND token = ?", (key, token)
            )

        await self.engine.write(op)
