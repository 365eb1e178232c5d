"""Timestamps: whole UTC seconds since the epoch, rendered as Graph does (no fraction, Z)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

_last: list[object] = [-1, ""]


def now() -> int:
    """The current time in whole seconds since the epoch."""
    return int(time.time())


def iso(seconds: int) -> str:
    """``2017-07-22T01:53:56Z`` for an epoch second (memoised for the latest second)."""
    if _last[0] == seconds:
        return str(_last[1])
    t = time.gmtime(seconds)
    text = (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"
    )
    _last[0], _last[1] = seconds, text
    return text


def parse_iso(text: str) -> int:
    """Parse an OData date or DateTimeOffset literal (``2017-04-01``, ``…T10:00:00Z``, offsets).

    Raises ValueError on anything else.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def now_ms() -> int:
    """The current time in milliseconds since the epoch (the delivery queue's clock)."""
    return int(time.time() * 1000)
