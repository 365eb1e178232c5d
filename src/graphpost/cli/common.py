"""Options every command shares (data directory, database) and how they become Settings."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphpost.runtime import Runtime, prepare
from graphpost.settings import Settings

T = TypeVar("T")


def add_storage_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", help="data directory (GRAPHPOST_DATA_DIR, default ./var)")
    parser.add_argument(
        "--database-url", help="postgresql://… (GRAPHPOST_DATABASE_URL; default: SQLite file)"
    )


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    given: dict[str, Any] = {}
    for name in ("data_dir", "database_url", "host", "port", "public_url"):
        value = getattr(args, name, None)
        if value is not None:
            given[name] = value
    given.update(extra)
    return Settings(**given)


def with_runtime(settings: Settings, work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Migrate, open the runtime, run ``work`` and close, in a fresh event loop."""
    prepare(settings)

    async def run() -> T:
        runtime = await Runtime.open(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    return asyncio.run(run())


async def until_signalled() -> None:
    """Wait for SIGINT or SIGTERM (a command that runs until it is stopped)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
