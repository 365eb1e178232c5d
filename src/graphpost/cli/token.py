"""``graphpost token``: print an access token (alone on stdout, for ``TOKEN=$(…)``)."""

from __future__ import annotations

import argparse
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.errors import InvalidInputError, UnknownUserError
from graphpost.runtime import Runtime
from graphpost.services.directory import DEMO_DOMAIN


def register(sub: Any) -> None:
    parser = sub.add_parser("token", help="print an access token for a user or an app")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="userPrincipalName, mail or object id (delegated token)")
    who.add_argument("--app", help="application name (application token)")
    parser.add_argument(
        "--scopes", default="User.Read Mail.ReadWrite Mail.Send", help="delegated scopes"
    )
    parser.add_argument("--roles", default="Mail.ReadWrite Mail.Send", help="application roles")
    parser.add_argument("--tenant", default=DEMO_DOMAIN, help="tenant of an app (domain or id)")
    parser.add_argument("--lifetime", type=int, help="seconds (default GRAPHPOST_TOKEN_LIFETIME)")
    add_storage_options(parser)
    parser.set_defaults(handler=run)


async def make_token(rt: Runtime, args: argparse.Namespace) -> str:
    lifetime = args.lifetime or rt.settings.token_lifetime
    if args.user:
        user = await rt.directory.user(args.user)
        if user is None:
            raise UnknownUserError(f"No user '{args.user}'; see `graphpost users list`.")
        return rt.tokens.issue_delegated(
            tenant_id=user.tenant_id,
            user_id=user.id,
            upn=user.upn,
            name=user.display_name,
            scopes=args.scopes.split(),
            lifetime=lifetime,
        )
    tenant = await rt.directory.tenant(args.tenant)
    if tenant is None:
        raise InvalidInputError(f"No tenant '{args.tenant}'.")
    app = await rt.directory.ensure_app(tenant, args.app)
    return rt.tokens.issue_application(
        tenant_id=tenant.id, app_id=app.id, roles=args.roles.split(), lifetime=lifetime
    )


def run(args: argparse.Namespace) -> int:
    async def work(rt: Runtime) -> str:
        return await make_token(rt, args)

    print(with_runtime(settings_from(args), work))
    return 0
