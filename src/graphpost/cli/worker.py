"""``graphpost worker`` (delivery on its own, PostgreSQL) and ``graphpost smtp`` (inbound only)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.runtime import Runtime


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run a delivery worker (PostgreSQL: any number)")
    worker.add_argument("--smtp-relay", help="outbound relay URL (GRAPHPOST_SMTP_RELAY)")
    add_storage_options(worker)
    worker.set_defaults(handler=run_worker)
    smtp = sub.add_parser("smtp", help="run the inbound SMTP server alone")
    smtp.add_argument("--smtp-port", type=int, help="port (GRAPHPOST_SMTP_PORT, default 2525)")
    add_storage_options(smtp)
    smtp.set_defaults(handler=run_smtp)


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


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
        await _until_signalled()
        rt.worker.stop()
        await task

    with_runtime(settings, work)
    return 0


def run_smtp(args: argparse.Namespace) -> int:
    extra = {"smtp_port": args.smtp_port} if args.smtp_port is not None else {}
    settings = settings_from(args, **extra)

    async def work(rt: Runtime) -> None:
        server = rt.inbound()
        await server.start()
        print(f"inbound SMTP on {settings.smtp_host}:{server.port}", flush=True)
        await _until_signalled()
        await server.stop()

    with_runtime(settings, work)
    return 0
