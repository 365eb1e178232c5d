"""``graphpost users add|list|remove`` and ``graphpost demo``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.runtime import Runtime
from graphpost.services.directory import DEMO_DOMAIN


def register(sub: Any) -> None:
    users = sub.add_parser("users", help="users and their mailboxes")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user with a new mailbox")
    add.add_argument("--name", required=True, help="display name, e.g. 'Adele Vance'")
    add.add_argument("--mail", required=True, help="mail address (its domain is the tenant)")
    add.add_argument("--upn", help="userPrincipalName (default: the mail address)")
    add.set_defaults(handler=add_user)
    lst = actions.add_parser("list", help="list users")
    lst.set_defaults(handler=list_users)
    rm = actions.add_parser("remove", help="remove a user and the mailbox")
    rm.add_argument("user", help="object id, userPrincipalName or mail")
    rm.set_defaults(handler=remove_user)
    passwd = actions.add_parser("passwd", help="set a user's password (sign-in, password grant)")
    passwd.add_argument("user", help="object id, userPrincipalName or mail")
    passwd.add_argument("--password-stdin", action="store_true", required=True,
                        help="read the password from the first line of stdin")  # fmt: skip
    passwd.set_defaults(handler=set_password)
    demo = sub.add_parser("demo", help=f"seed the demo tenant {DEMO_DOMAIN}")
    demo.set_defaults(handler=seed_demo)
    for p in (add, lst, rm, passwd, demo):
        add_storage_options(p)


def add_user(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        user = await rt.directory.add_user(display_name=args.name, mail=args.mail, upn=args.upn)
        print(f"{user.id}\t{user.upn}\t{user.display_name}")

    with_runtime(settings_from(args), work)
    return 0


def list_users(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        for user in await rt.directory.users():
            print(f"{user.id}\t{user.upn}\t{user.mail}\t{user.display_name}")

    with_runtime(settings_from(args), work)
    return 0


def remove_user(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        user = await rt.directory.remove_user(args.user)
        print(f"removed {user.upn}")

    with_runtime(settings_from(args), work)
    return 0


def set_password(args: argparse.Namespace) -> int:
    line = sys.stdin.readline()
    password = line[:-1] if line.endswith("\n") else line
    password = password[:-1] if password.endswith("\r") else password

    async def work(rt: Runtime) -> None:
        user = await rt.identity.set_password(args.user, password)
        print(f"password set for {user.upn}")

    with_runtime(settings_from(args), work)
    return 0


def seed_demo(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> None:
        tenant = await rt.directory.seed_demo()
        await rt.identity.seed_demo(tenant)
        users = await rt.directory.users(tenant.id)
        print(f"demo tenant {tenant.domain} ({tenant.id}) with {len(users)} users")

    with_runtime(settings_from(args), work)
    return 0
