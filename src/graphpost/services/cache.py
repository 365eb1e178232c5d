"""A small cache of answers that may be a few seconds stale (directory lookups)."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

V = TypeVar("V")


class ExpiringCache(Generic[V]):
    """Keys to values for ``seconds``; emptied whole when it reaches ``size`` (cheaper than
    evicting one by one, and a directory that large is re-read in a few seconds anyway)."""

    def __init__(self, *, seconds: float, size: int) -> None:
        self.seconds = seconds
        self.size = size
        self._items: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> tuple[bool, V | None]:
        """(found, value): found is False for a key never stored or expired."""
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, value: V) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.seconds, value)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
