"""``graphpost worker``: delivery on its own (PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, until_signalled, with_runtime
from graphpost.runtime import Runtime


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run a delivery worker (PostgreSQL: any number)")
    worker.add_argument("--smtp-relay", help="outbound relay URL (GRAPHPOST_SMTP_RELAY)")
    add_storage_options(worker)
    worker.set_defaults(handler=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    extra = {"smtp_relay": args.smtp_relay} if args.smtp_relay else {}
    settings = settings_from(args, **extra)
    if not settings.database_url:
        print(
            "graphpost worker needs PostgreSQL (GRAPHPOST_DATABASE_URL): on SQLite the "
            "`graphpost serve` process owns the database and runs the worker itself.",
            file=sys.stderr,
        )
        return 2

    async def work(rt: Runtime) -> None:
        task = asyncio.create_task(rt.worker.run())
        notifier = asyncio.create_task(rt.notifier.run())
        await until_signalled()
        rt.worker.stop()
        rt.notifier.stop()
        await task
        await notifier

    with_runtime(settings, work)
    return 0
