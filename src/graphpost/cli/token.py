"""``graphpost token``: print an access token (alone on stdout, for ``TOKEN=$(…)``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.errors import InvalidInputError, UnknownUserError
from graphpost.runtime import Runtime
from graphpost.services.directory import DEMO_DOMAIN
from graphpost.settings import Settings

BASE_URL_FILE = "base-url"  # the URL `graphpost serve` last served at: the tokens' issuer


def record_base_url(settings: Settings) -> None:
    """Remember where this data directory is served, so that `graphpost token` (run without
    --public-url) signs tokens whose issuer is the server's."""
    path = settings.data_dir / BASE_URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(settings.base_url + "\n")
    tmp.replace(path)


def issuing_settings(args: argparse.Namespace) -> Settings:
    """The settings for issuing: the public URL the server recorded, unless one is given."""
    settings = settings_from(args)
    if settings.public_url is None:
        recorded = Path(settings.data_dir / BASE_URL_FILE)
        if recorded.is_file():
            base = recorded.read_text().strip()
            if base:
                return settings_from(args, public_url=base)
    return settings


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
    if lifetime > rt.settings.token_max_lifetime:
        print(
            f"graphpost: the lifetime is capped at GRAPHPOST_TOKEN_MAX_LIFETIME "
            f"({rt.settings.token_max_lifetime} s)",
            file=sys.stderr,
        )
        lifetime = rt.settings.token_max_lifetime
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

    print(with_runtime(issuing_settings(args), work))
    return 0
