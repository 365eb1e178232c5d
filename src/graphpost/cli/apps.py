"""``graphpost apps add|list|remove``: applications and their client credentials."""

from __future__ import annotations

import argparse
import json
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.runtime import Runtime


def register(sub: Any) -> None:
    apps = sub.add_parser("apps", help="applications (client ids, secrets, roles)")
    actions = apps.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="register an app; prints its client id and secret")
    add.add_argument("name", help="the app's name (unique in its tenant)")
    add.add_argument(
        "--roles", default="", help='application roles, e.g. "Mail.ReadWrite Mail.Send"'
    )
    add.add_argument("--tenant", help="tenant domain or id (required when there are several)")
    add.add_argument("--redirect-uri", action="append", default=[], dest="redirect_uris",
                     help="a redirect URI for sign-in (repeatable)")  # fmt: skip
    add.add_argument("--public", action="store_true", help="a public client (no secret)")
    add.add_argument("--json", action="store_true", help="print one JSON object")
    add.set_defaults(handler=add_app)
    lst = actions.add_parser("list", help="list apps")
    lst.set_defaults(handler=list_apps)
    rm = actions.add_parser("remove", help="remove an app (its refresh tokens end with it)")
    rm.add_argument("app", help="name or client id")
    rm.set_defaults(handler=remove_app)
    for p in (add, lst, rm):
        add_storage_options(p)


def add_app(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        app, secret = await rt.identity.register_app(
            args.name, roles=args.roles.split(), tenant_key=args.tenant,
            redirect_uris=args.redirect_uris, public=args.public,
        )  # fmt: skip
        if args.json:
            print(json.dumps(
                {"client_id": app.id, "client_secret": secret, "tenant_id": app.tenant_id}
            ))  # fmt: skip
            return
        print(f"client_id: {app.id}")
        if secret is not None:
            print(f"client_secret: {secret}")
        print(f"tenant_id: {app.tenant_id}")

    with_runtime(settings_from(args), work)
    return 0


def list_apps(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        for app in await rt.identity.apps():
            kind = "public" if app.public_client else "confidential"
            print(
                f"{app.id}\t{app.name}\t{kind}\troles: {' '.join(app.roles) or '-'}\t"
                f"redirect: {' '.join(app.redirect_uris) or '-'}"
            )

    with_runtime(settings_from(args), work)
    return 0


def remove_app(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        app = await rt.identity.remove_app(args.app)
        print(f"removed {app.name} ({app.id})")

    with_runtime(settings_from(args), work)
    return 0
