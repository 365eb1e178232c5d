"""Graph's Outlook throttling: per app per mailbox, 10,000 requests in 10 minutes and 4
requests at once. Over the limit: 429 with Retry-After, as Graph answers.

Counters live behind a port: in memory for the single SQLite process, in PostgreSQL tables when
several API processes share the limits.

The rate window is counted in ten buckets (a minute each for Graph's ten minutes). A request
refused for the rate is not counted, and its ``Retry-After`` is the time until enough counted
requests have left the window for one more to fit: a client that waits that long (and not a
second more) is served. A request holds its slot across at least one turn of the event loop,
so that requests that arrive together can see each other; on SQLite, where a read never has
to wait, reads are still mostly served one after another and seldom meet the limit (writes,
which wait on the group commit, do).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from graphpost.errors import ConcurrencyThrottledError, RateThrottledError
from graphpost.ports.throttling import Admission, ThrottleCounters

BUCKETS = 10  # the rate window is counted in tenths
LEASE_MS = 120_000  # a slot whose request never left (a crashed process) expires


@dataclass(frozen=True, slots=True)
class ThrottleLimits:
    requests: int = 10_000
    window_seconds: int = 600
    concurrency: int = 4

    @property
    def bucket_seconds(self) -> float:
        return self.window_seconds / BUCKETS


class MemoryCounters:
    """For one process (SQLite): plain dictionaries on the event loop."""

    def __init__(self) -> None:
        self._buckets: dict[str, dict[int, int]] = defaultdict(dict)
        self._inflight: dict[str, set[str]] = defaultdict(set)

    async def begin(
        self, key: str, *, bucket: int, oldest: int, limit: int, token: str, expires_ms: int,
        now_ms: int,
    ) -> Admission:  # fmt: skip
        buckets = self._buckets[key]
        for old in [b for b in buckets if b < oldest]:
            del buckets[old]
        if sum(buckets.values()) >= limit:
            return Admission(False, 0, sorted(buckets.items()))
        buckets[bucket] = buckets.get(bucket, 0) + 1
        inflight = self._inflight[key]
        inflight.add(token)
        return Admission(True, len(inflight))

    async def leave(self, key: str, token: str) -> None:
        inflight = self._inflight.get(key)
        if inflight is not None:
            inflight.discard(token)
            if not inflight:
                del self._inflight[key]


def retry_after(
    buckets: list[tuple[int, int]], *, limit: int, window: int, bucket_seconds: float, now: float
) -> int:
    """Seconds until the oldest counted requests have left the window and one more fits."""
    total = sum(count for _, count in buckets)
    for bucket, count in buckets:
        total -= count
        if total < limit:
            # ``bucket`` leaves the window when bucket + window becomes the current one
            return max(1, math.ceil((bucket + window) * bucket_seconds - now))
    return max(1, math.ceil(window * bucket_seconds))  # not reached: buckets hold ≥ limit


class Throttle:
    def __init__(self, counters: ThrottleCounters, limits: ThrottleLimits) -> None:
        self.counters = counters
        self.limits = limits

    @asynccontextmanager
    async def slot(self, app_id: str, mailbox_id: str) -> AsyncIterator[None]:
        """Hold one of the mailbox's request slots for this app, or raise ThrottledError."""
        key = f"{app_id}:{mailbox_id}"
        limits = self.limits
        now = time.time()
        bucket = int(now // limits.bucket_seconds)
        oldest = bucket - BUCKETS + 1
        token = uuid.uuid4().hex
        now_ms = int(now * 1000)
        admission = await self.counters.begin(
            key, bucket=bucket, oldest=oldest, limit=limits.requests, token=token,
            expires_ms=now_ms + LEASE_MS, now_ms=now_ms,
        )  # fmt: skip
        if not admission.admitted:
            wait = retry_after(
                admission.buckets, limit=limits.requests, window=BUCKETS,
                bucket_seconds=limits.bucket_seconds, now=now,
            )  # fmt: skip
            raise RateThrottledError(
                "Please retry again later.", retry_after=wait, limit=limits.requests
            )
        try:
            if admission.inflight > limits.concurrency:
                raise ConcurrencyThrottledError(
                    "Application is over its MailboxConcurrency limit.",
                    retry_after=1,
                    limit=limits.concurrency,
                )
            # hold the slot across a turn of the loop: requests that arrived together are in
            # flight together, on SQLite (where a read never waits) as on PostgreSQL
            await asyncio.sleep(0)
            yield
        finally:
            await self.counters.leave(key, token)
