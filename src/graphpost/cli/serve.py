"""``graphpost serve``: migrate, seed the demo tenant on first start, serve HTTP."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from graphpost.cli.common import add_storage_options, settings_from, with_runtime
from graphpost.cli.http import GraphpostConfig, HttpLimits
from graphpost.cli.tls import tls_files
from graphpost.cli.token import record_base_url
from graphpost.runtime import Runtime, Server
from graphpost.services.directory import DEMO_DOMAIN
from graphpost.services.identity import DEMO_CLIENT_ID, DEMO_PASSWORD
from graphpost.settings import Settings

DEMO_USER = f"AdeleV@{DEMO_DOMAIN}"
EXAMPLE = (
    '{"subject":"Did you see last night\'s game?","importance":"Low",'
    '"body":{"contentType":"HTML","content":"They were <b>awesome</b>!"},'
    '"toRecipients":[{"emailAddress":{"address":"AdeleV@contoso.onmicrosoft.com"}}]}'
)


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as GRAPHPOST_* variables, for processes that build their own."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is not None:
            out[f"GRAPHPOST_{name.upper()}"] = str(value)
    return out


async def first_start(rt: Runtime) -> str | None:
    """Seed the demo tenant (when on and the directory is empty); a token for its first user."""
    settings = rt.settings
    if settings.demo:
        if not await rt.directory.tenants():
            await rt.directory.seed_demo()
        demo = await rt.directory.tenant(DEMO_DOMAIN)
        if demo is not None:  # its documented password and demo client
            await rt.identity.seed_demo(demo)
    user = await rt.directory.user(DEMO_USER)
    if user is None:
        return None
    return rt.tokens.issue_delegated(
        tenant_id=user.tenant_id,
        user_id=user.id,
        upn=user.upn,
        name=user.display_name,
        scopes=["User.Read", "Mail.ReadWrite", "Mail.Send"],
        lifetime=settings.token_max_lifetime,
    )


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="run the Graph API server")
    parser.add_argument("--host", help="listen address (GRAPHPOST_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (GRAPHPOST_PORT, default 8765)")
    parser.add_argument("--public-url", help="base URL clients use (GRAPHPOST_PUBLIC_URL)")
    parser.add_argument("--no-demo", action="store_true", help="do not seed the demo tenant")
    parser.add_argument("--smtp-port", type=int, help="inbound SMTP port (GRAPHPOST_SMTP_PORT)")
    parser.add_argument("--smtp-relay", help="outbound relay URL (GRAPHPOST_SMTP_RELAY)")
    parser.add_argument("--no-smtp", action="store_true", help="do not listen for SMTP")
    parser.add_argument("--no-worker", action="store_true", help="run no delivery worker")
    parser.add_argument(
        "--workers", type=int, default=1, help="API processes (PostgreSQL only; default 1)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS (GRAPHPOST_TLS; see --tls-cert)"
    )
    parser.add_argument("--tls-cert", help="PEM certificate (default: made in DATA_DIR/tls/)")
    parser.add_argument("--tls-key", help="PEM key of --tls-cert")
    parser.add_argument("--quiet", action="store_true", help="print no welcome text")
    add_storage_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    extra: dict[str, object] = {}
    if args.no_demo:
        extra["demo"] = False
    if args.no_smtp:
        extra["smtp_enabled"] = False
    if args.no_worker:
        extra["worker"] = False
    if args.smtp_port is not None:
        extra["smtp_port"] = args.smtp_port
    if args.smtp_relay:
        extra["smtp_relay"] = args.smtp_relay
    if args.tls:
        extra["tls"] = True
    if args.tls_cert or args.tls_key:
        extra.update(tls=True, tls_cert=args.tls_cert, tls_key=args.tls_key)
    settings = settings_from(args, **extra)
    if args.workers > 1 and not settings.database_url:
        print(
            "graphpost: --workers needs PostgreSQL (GRAPHPOST_DATABASE_URL): one process owns "
            "a SQLite file.",
            file=sys.stderr,
        )
        return 2
    token = with_runtime(settings, first_start)
    record_base_url(settings)
    tls = tls_files(settings) if settings.tls else None
    base = settings.base_url
    if not args.quiet:
        if not settings.web_ui:
            page = ""
        elif settings.emulator:
            page = f" (mailbox page: {base}/, open to {settings.emulator_controls_from})"
        else:
            page = f" (mailbox page: {base}/, sign-in required)"
        print(f"graphpost serving {base}/v1.0{page}")
        if settings.smtp_enabled:
            print(f"inbound SMTP on {settings.smtp_host}:{settings.smtp_port}")
        relay = settings.smtp_relay or "none: external mail waits in the queue"
        print(f"outbound relay: {relay.split('@')[-1]}")
        print(f"identity (authority): {base}")
        if settings.emulator:
            print(
                f"emulator mode: test controls at {base}/_graphpost "
                f"(clients in {settings.emulator_controls_from})"
            )
        if settings.demo and token:
            print(
                f"demo sign-in: every {DEMO_DOMAIN} user's password is {DEMO_PASSWORD}; "
                f"public client id {DEMO_CLIENT_ID}"
            )
        if tls is not None and tls.generated:
            print(
                f"HTTPS with a self-signed certificate; trust {tls.cert}\n"
                f"  (SSL_CERT_FILE / REQUESTS_CA_BUNDLE for Python, NODE_EXTRA_CA_CERTS for Node)"
            )
        cacert = f"--cacert {shlex.quote(str(tls.cert))} " if tls and tls.generated else ""
        if token:
            hours = settings.token_max_lifetime / 3600
            print(f"\nA token for {DEMO_USER} ({hours:g} h):\n\nTOKEN={token}\n")
            print("Create a draft:\n")
            print(
                f"curl -s {cacert}-X POST {base}/v1.0/me/messages "
                '-H "Authorization: Bearer $TOKEN" '
                f"-H 'Content-Type: application/json' -d {shlex.quote(EXAMPLE)}\n",
                flush=True,
            )
    limits = HttpLimits(
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
        idle_timeout=settings.http_idle_timeout_seconds,
        max_connections=settings.http_max_connections,
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 5,
    }
    if tls is not None:
        options.update(ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key))
    if args.workers > 1:
        # each API process builds its own runtime from the environment
        os.environ.update(settings_env(settings))
        # what uvicorn.run does for workers, with our Config (it carries the protocol limits)
        config = GraphpostConfig(
            "graphpost.runtime:server_from_env", factory=True, workers=args.workers,
            limits=limits, **options,
        )  # fmt: skip
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return 0
    config = GraphpostConfig(Server(settings), limits=limits, **options)
    uvicorn.Server(config).run()
    return 0
