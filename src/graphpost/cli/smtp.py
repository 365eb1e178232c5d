"""``graphpost smtp``: the inbound SMTP server alone."""

from __future__ import annotations

import argparse
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, until_signalled, with_runtime
from graphpost.runtime import Runtime


def register(sub: Any) -> None:
    smtp = sub.add_parser("smtp", help="run the inbound SMTP server alone")
    smtp.add_argument("--smtp-port", type=int, help="port (GRAPHPOST_SMTP_PORT, default 2525)")
    add_storage_options(smtp)
    smtp.set_defaults(handler=run_smtp)


def run_smtp(args: argparse.Namespace) -> int:
    extra = {"smtp_port": args.smtp_port} if args.smtp_port is not None else {}
    settings = settings_from(args, **extra)

    async def work(rt: Runtime) -> None:
        server = rt.inbound()
        await server.start()
        print(f"inbound SMTP on {settings.smtp_host}:{server.port}", flush=True)
        await until_signalled()
        await server.stop()

    with_runtime(settings, work)
    return 0
