"""The throttling port: request counters per app and mailbox, in memory for one process or
in the database when several API processes share the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Admission:
    """``admitted``: counted and in flight (``inflight`` includes it). Else refused for the
    rate, not counted; ``buckets`` are the window's (bucket, count), oldest first."""

    admitted: bool
    inflight: int = 0
    buckets: list[tuple[int, int]] = field(default_factory=list)


class ThrottleCounters(Protocol):
    async def begin(
        self, key: str, *, bucket: int, oldest: int, limit: int, token: str, expires_ms: int,
        now_ms: int,
    ) -> Admission:  # fmt: skip
        """If fewer than ``limit`` requests are counted in buckets ≥ ``oldest``: count this one
        in ``bucket``, register ``token`` as in flight and admit it. Else refuse it with the
        window's counts. Atomic per key."""
        ...

    async def leave(self, key: str, token: str) -> None: ...
