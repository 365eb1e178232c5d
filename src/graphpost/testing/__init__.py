"""Testing an app against graphpost: ``GraphpostClient`` (the emulator's test controls),
``InProcessServer`` (graphpost in a thread of the test process), and the pytest fixtures
``graphpost_server`` and ``graphpost`` (imported from here lazily: pytest is not a dependency
of graphpost)."""

from __future__ import annotations

from typing import Any

from graphpost.testing.client import ControlError, GraphpostClient
from graphpost.testing.server import InProcessServer

__all__ = ["ControlError", "GraphpostClient", "InProcessServer", "graphpost", "graphpost_server"]


def __getattr__(name: str) -> Any:
    if name in ("graphpost", "graphpost_server"):
        from graphpost.testing import fixtures

        return getattr(fixtures, name)
    raise AttributeError(name)
