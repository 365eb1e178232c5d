"""How a replayed example's answer is compared with the docs' one, shared by the replays."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any


def check_shape(
    got: Any,
    expected: Any,
    volatile: Collection[str],
    *,
    sample: re.Pattern[str] | None = None,
    every_item: bool = True,
    where: str = "$",
) -> None:
    """Every property the example shows is present, with an equal value unless its name is
    ``volatile`` (ids, times) or the value is a placeholder matched by ``sample``; a list has
    at least the example's items (with ``every_item``; else the items both have are compared)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict), where
        for key, value in expected.items():
            assert key in got, f"{where}.{key} missing"
            if key not in volatile:
                check_shape(
                    got[key],
                    value,
                    volatile,
                    sample=sample,
                    every_item=every_item,
                    where=f"{where}.{key}",
                )
    elif isinstance(expected, list):
        assert isinstance(got, list), where
        assert len(got) >= len(expected) or not every_item, f"{where}: too few items"
        for g, e in zip(got, expected, strict=False):
            check_shape(g, e, volatile, sample=sample, every_item=every_item, where=f"{where}[]")
    elif sample is not None and isinstance(expected, str) and sample.search(expected):
        return
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"
