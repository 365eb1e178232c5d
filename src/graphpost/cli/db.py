"""``graphpost db upgrade|downgrade``: schema migrations."""

from __future__ import annotations

import argparse
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from
from graphpost.runtime import private_directory
from graphpost.store.engine import make_private
from graphpost.store.migrate import migrate


def register(sub: Any) -> None:
    parser = sub.add_parser("db", help="database schema migrations")
    actions = parser.add_subparsers(dest="action", required=True)
    up = actions.add_parser("upgrade", help="migrate to the newest schema (or REVISION)")
    up.add_argument("revision", nargs="?", default="head")
    down = actions.add_parser("downgrade", help="migrate back to REVISION")
    down.add_argument("revision")
    for p in (up, down):
        add_storage_options(p)
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    private_directory(settings.data_dir)
    if not settings.database_url:
        make_private(settings.sqlite_path)
    migrate(
        database_url=settings.database_url,
        sqlite_path=settings.sqlite_path,
        action=args.action,
        revision=args.revision,
    )
    print(f"database at {args.revision} ({args.action})")
    return 0
