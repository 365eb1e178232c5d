"""The fixtures of graphpost.testing: `graphpost_server` starts graphpost in-process (or uses
the one at GRAPHPOST_TEST_URL), `graphpost` resets it before each test."""

from graphpost.testing import graphpost, graphpost_server

__all__ = ["graphpost", "graphpost_server"]
