"""``graphpost db upgrade|downgrade``: schema migrations."""

from __future__ import annotations

import argparse
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from
from graphpost.runtime import prepare


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
    prepare(settings_from(args), action=args.action, revision=args.revision)
    print(f"database at {args.revision} ({args.action})")
    return 0
