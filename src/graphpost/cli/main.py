"""``graphpost``: one sub-command group per module; each module adds its own parsers."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from graphpost.cli import apps, db, keys, mailbox, queue, serve, smtp, token, users, worker
from graphpost.errors import GraphpostError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphpost", description="A mail server whose API is the Microsoft Graph mail API."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (serve, db, users, mailbox, apps, token, keys, worker, smtp, queue):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        result: int = args.handler(args)
    except GraphpostError as exc:
        print(f"graphpost: {exc.message}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    raise SystemExit(main())
