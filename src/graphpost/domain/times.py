"""Timestamps: whole UTC seconds since the epoch, rendered as Graph does (no fraction, Z).

The one clock: every expiry, schedule and stamp reads ``now``, ``now_ms`` or ``wall``. In
emulator mode the test controls move it forward (``advance``), per process, never backwards."""

from __future__ import annotations

import time
from datetime import UTC, datetime

LATEST = 253_086_768_000
"""9990-01-01T00:00:00Z: the clock is never moved past it (a date after year 9999 cannot be
written by Python or read as Graph's DateTimeOffset; the years between leave room for every
schedule, expiry and "this year" reckoned from the clock)."""

_last: list[object] = [-1, ""]
_offset: list[float] = [0.0]  # seconds the clock is ahead of the system's (emulator mode)


def wall() -> float:
    """The current time in seconds since the epoch, with a fraction."""
    return time.time() + _offset[0]


def now() -> int:
    """The current time in whole seconds since the epoch."""
    return int(time.time() + _offset[0])


def offset() -> float:
    """How far the clock has been moved ahead of the system's, in seconds."""
    return _offset[0]


def advance(seconds: float) -> float:
    """Move the clock ``seconds`` forward (never backwards: a negative, infinite or NaN value
    is a ValueError, and so is a move past LATEST); the new offset."""
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError("the clock only moves forward, by a finite number of seconds")
    room = LATEST - wall()
    if seconds > room:
        raise ValueError(
            f"the clock moves at most to 9990-01-01T00:00:00Z, {max(int(room), 0)} seconds from now"
        )
    _offset[0] += seconds
    return _offset[0]


def restore(offset: float) -> None:
    """Put the clock back to ``offset`` (seconds ahead of the system's): only for
    ``graphpost.testing``, once no server of this process runs, as a restart would."""
    _offset[0] = offset


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
    return int((time.time() + _offset[0]) * 1000)
