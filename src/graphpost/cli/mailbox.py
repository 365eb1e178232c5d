"""``graphpost mailbox grant|revoke|grants`` (delegation: the .Shared scopes) and
``graphpost mailbox restrict-app|unrestrict-app|app-policies`` (application access policies)."""

from __future__ import annotations

import argparse
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.runtime import Runtime
from graphpost.services.access import rights_from
from graphpost.types import Right


def register(sub: Any) -> None:
    mailbox = sub.add_parser("mailbox", help="mailbox delegation and application access policies")
    actions = mailbox.add_subparsers(dest="action", required=True)

    grant = actions.add_parser(
        "grant", help="let DELEGATE use OWNER's mailbox (delegated tokens with .Shared scopes)"
    )
    grant.add_argument("owner", help="the mailbox's owner: userPrincipalName, mail or id")
    grant.add_argument("delegate", help="who may use it: userPrincipalName, mail or id")
    grant.add_argument(
        "--rights", required=True, choices=("read", "readwrite"),
        help="read (Mail.Read.Shared) or read and change (Mail.ReadWrite.Shared)",
    )  # fmt: skip
    grant.add_argument(
        "--send-on-behalf", action="store_true",
        help="may send from the owner: From the owner, Sender the delegate",
    )  # fmt: skip
    grant.add_argument(
        "--send-as", action="store_true",
        help="may send as the owner: From and Sender the owner",
    )  # fmt: skip
    grant.set_defaults(handler=grant_access)

    revoke = actions.add_parser("revoke", help="take back what OWNER granted DELEGATE")
    revoke.add_argument("owner")
    revoke.add_argument("delegate")
    revoke.set_defaults(handler=revoke_access)

    grants = actions.add_parser("grants", help="list who may use OWNER's mailbox")
    grants.add_argument("owner")
    grants.set_defaults(handler=list_grants)

    restrict = actions.add_parser(
        "restrict-app", help="an application may open only these mailboxes (replaces its policy)"
    )
    restrict.add_argument("app", help="the application's client id (or its name)")
    restrict.add_argument("mailboxes", nargs="+", metavar="UPN", help="mailboxes it may open")
    restrict.set_defaults(handler=restrict_app)

    unrestrict = actions.add_parser(
        "unrestrict-app", help="remove an application's policy (every mailbox of its tenant)"
    )
    unrestrict.add_argument("app", help="the application's client id (or its name)")
    unrestrict.set_defaults(handler=unrestrict_app)

    policies = actions.add_parser("app-policies", help="list application access policies")
    policies.set_defaults(handler=list_policies)
    for p in (grant, revoke, grants, restrict, unrestrict, policies):
        add_storage_options(p)


def _shown(rights: frozenset[Right]) -> str:
    return ",".join(r.value for r in Right if r in rights)


def grant_access(args: argparse.Namespace) -> int:
    rights = rights_from(args.rights, send_on_behalf=args.send_on_behalf, send_as=args.send_as)

    async def work(rt: Runtime) -> None:
        grant = await rt.access.grant(args.owner, args.delegate, rights)
        print(f"{args.owner}\t{args.delegate}\t{_shown(grant.rights)}")

    with_runtime(settings_from(args), work)
    return 0


def revoke_access(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> bool:
        return await rt.access.revoke(args.owner, args.delegate)

    if with_runtime(settings_from(args), work):
        print(f"revoked {args.delegate} from {args.owner}")
        return 0
    print(f"{args.delegate} had no access to {args.owner}")
    return 0


def list_grants(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        for item in await rt.access.grants(args.owner):
            print(f"{item.delegate.id}\t{item.delegate.upn}\t{_shown(item.grant.rights)}")

    with_runtime(settings_from(args), work)
    return 0


def restrict_app(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        app, users = await rt.access.restrict_app(args.app, args.mailboxes)
        names = ", ".join(u.upn for u in users)
        print(f"{app.id} ({app.name}) may open only: {names}")

    with_runtime(settings_from(args), work)
    return 0


def unrestrict_app(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        app, removed = await rt.access.unrestrict_app(args.app)
        if removed:
            print(f"{app.id} ({app.name}) may open every mailbox of its tenant again")
        else:
            print(f"{app.id} ({app.name}) had no policy")

    with_runtime(settings_from(args), work)
    return 0


def list_policies(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        for entry in await rt.access.app_policies():
            shown = entry.mailbox.upn if entry.mailbox is not None else "(no mailbox)"
            print(f"{entry.app.id}\t{entry.app.name}\t{shown}")

    with_runtime(settings_from(args), work)
    return 0
