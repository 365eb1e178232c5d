"""Graph's Outlook throttling (§11): per app per mailbox, 10,000 requests in 10 minutes and 4
requests at once. Over the limit: 429 with Retry-After, as Graph answers.

Counters live behind a port: in memory for the single SQLite process, in PostgreSQL tables when
several API processes share the limits.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from graphpost.errors import ConcurrencyThrottledError, RateThrottledError

BUCKET_SECONDS = 60  # the rate window is counted in one-minute buckets


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    requests: int = 10_000
    window_seconds: int = 600
    concurrency: int = 4


class ThrottleCounters(Protocol):
    async def begin(
        self, key: str, *, bucket: int, oldest: int, token: str, expires_ms: int, now_ms: int
    ) -> tuple[int, int]:
        """Count one request in ``bucket`` and register it as in flight. Returns the requests in
        buckets ≥ ``oldest`` and the requests in flight, this one included in both."""
        ...

    async def leave(self, key: str, token: str) -> None: ...


class MemoryCounters:
    """For one process (SQLite): plain dictionaries on the event loop."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[int, int]] = defaultdict(dict)
        self._inflight: dict[str, set[str]] = defaultdict(set)

    async def begin(
        self, key: str, *, bucket: int, oldest: int, token: str, expires_ms: int, now_ms: int
    ) -> tuple[int, int]:
        buckets = self._buckets[key]
        buckets[bucket] = buckets.get(bucket, 0) + 1
        for old in [b for b in buckets if b < oldest]:
            del buckets[old]
        inflight = self._inflight[key]
        inflight.add(token)
        return sum(buckets.values()), len(inflight)

    async def leave(self, key: str, token: str) -> None:
        inflight = self._inflight.get(key)
        if inflight is not None:
            inflight.discard(token)
            if not inflight:
                del self._inflight[key]


class Throttle:
    def __init__(self, counters: ThrottleCounters, limits: ThrottleLimits) -> None:
        self.counters = counters
        self.limits = limits

    @asynccontextmanager
    async def slot(self, app_id: str, mailbox_id: str) -> AsyncIterator[None]:
        """Hold one of the mailbox's request slots for this app, or raise ThrottledError."""
        key = f"{app_id}:{mailbox_id}"
        now = time.time()
        bucket = int(now // BUCKET_SECONDS)
        buckets = max(1, self.limits.window_seconds // BUCKET_SECONDS)
        oldest = bucket - buckets + 1
        token = uuid.uuid4().hex
        now_ms = int(now * 1000)
        total, inside = await self.counters.begin(
            key, bucket=bucket, oldest=oldest, token=token, expires_ms=now_ms + 120_000,
            now_ms=now_ms,
        )  # fmt: skip
        try:
            if total > self.limits.requests:
                # the oldest counted bucket leaves the window at its end
                retry = (oldest + buckets) * BUCKET_SECONDS - now
                raise RateThrottledError(
                    "Please retry again later.",
                    retry_after=max(1, math.ceil(retry)),
                    limit=self.limits.requests,
                )
            if inside > self.limits.concurrency:
                raise ConcurrencyThrottledError(
                    "Application is over its MailboxConcurrency limit.",
                    retry_after=1,
                    limit=self.limits.concurrency,
                )
            yield
        finally:
            await self.counters.leave(key, token)
