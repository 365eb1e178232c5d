"""Composition root: builds the engine, store, services, token service and the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit

from graphpost.api.app import Extra, GraphApp
from graphpost.api.context import Services
from graphpost.api.cors import Cors, parse_origins
from graphpost.api.odata import parse_filter
from graphpost.api.render import Renderer
from graphpost.asgi import ASGIApp, Receive, Scope, Send, body_deadline
from graphpost.auth.external import ExternalIssuers
from graphpost.auth.keys import KeySet
from graphpost.auth.tokens import TokenService
from graphpost.delivery.faults import FaultyTransport
from graphpost.delivery.notifier import Notifier
from graphpost.delivery.transport import DeliveryTransport, RelayConfig, SmtpTransport
from graphpost.delivery.webhook import WebhookClient
from graphpost.delivery.worker import DeliveryWorker
from graphpost.domain.times import now_ms
from graphpost.emulator.edge import Absent, Controls
from graphpost.identity.edge import IdentityEdge
from graphpost.ports.throttling import ThrottleCounters
from graphpost.services.access import AccessService
from graphpost.services.autoreply import AutomaticReplies
from graphpost.services.delta import DeltaService
from graphpost.services.directory import DirectoryService
from graphpost.services.emulator import EmulatorService
from graphpost.services.folders import FolderService
from graphpost.services.identity import IdentityService
from graphpost.services.ingest import IngestService
from graphpost.services.mailbox import MailboxSettingsService
from graphpost.services.messages import MessageService
from graphpost.services.parsing import MimeParser
from graphpost.services.queue import QueueService
from graphpost.services.sending import Limits, SendService
from graphpost.services.subscriptions import SubscriptionService
from graphpost.services.throttling import MemoryCounters, Throttle, ThrottleLimits
from graphpost.services.uploads import UploadService
from graphpost.settings import Settings
from graphpost.smtp.server import InboundHandler, InboundServer
from graphpost.store.access import SqlAccess
from graphpost.store.blobs import SqlBlobs, content_store
from graphpost.store.changes import SqlChangeLog
from graphpost.store.directory import SqlDirectory
from graphpost.store.emulator import SqlEmulator
from graphpost.store.engine import Engine, make_private, open_engine
from graphpost.store.folders import SqlFolders
from graphpost.store.identity import SqlIdentity
from graphpost.store.mailbox import SqlMailboxSettings
from graphpost.store.messages import SqlMessages
from graphpost.store.migrate import migrate
from graphpost.store.outbox import SqlOutbox
from graphpost.store.subscriptions import SqlSubscriptions
from graphpost.store.throttle import PgThrottleCounters
from graphpost.web.edge import WebEdge
from graphpost.web.session import Signer

log = logging.getLogger("graphpost.runtime")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    message_store: SqlMessages
    outbox: SqlOutbox
    directory: DirectoryService
    access: AccessService
    folders: FolderService
    messages: MessageService
    keys: KeySet
    tokens: TokenService
    identity: IdentityService
    ingest: IngestService
    sending: SendService
    worker: DeliveryWorker
    parser: MimeParser
    blobs: SqlBlobs
    uploads: UploadService
    subscriptions: SubscriptionService
    notifier: Notifier
    change_log: SqlChangeLog
    mailbox_settings: MailboxSettingsService
    queue: QueueService  # the outbound queue for operators (web page, `graphpost queue`)
    emulator: EmulatorService | None = None  # emulator mode's test controls
    web: WebEdge | None = None  # the mailbox page, once ``app`` built it

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        engine = await open_engine(
            database_url=settings.database_url,
            sqlite_path=settings.sqlite_path,
            synchronous=settings.sqlite_synchronous,
            pool_size=settings.pg_pool_size,
            sqlite_readers=settings.sqlite_readers,
            sqlite_reader_mmap_bytes=settings.sqlite_reader_mmap_mb * 1024 * 1024,
        )
        content = content_store(settings.blob_dir)
        message_store = SqlMessages(engine, content)
        outbox = SqlOutbox(engine, content)
        # search folders' filterQuery is read by the edge's one $filter parser
        folders = FolderService(SqlFolders(engine), message_store, parse_filter=parse_filter)
        directory_store = SqlDirectory(engine, content)
        access = AccessService(SqlAccess(engine), directory_store)
        directory = DirectoryService(directory_store, gate=access)
        parser = MimeParser(
            offload_bytes=settings.mime_offload_bytes,
            timeout=settings.mime_parse_timeout_seconds,
        )
        messages = MessageService(
            message_store, folders, directory, web_base=settings.base_url, parse=parser.parse
        )
        blobs = SqlBlobs(engine, content)
        uploads = UploadService(
            blobs, messages, max_bytes=settings.max_upload_bytes, base_url=settings.base_url,
            lifetime_seconds=settings.upload_session_seconds,
        )  # fmt: skip
        mailbox_settings = MailboxSettingsService(SqlMailboxSettings(engine), folders)
        ingest = IngestService(
            message_store, folders, web_base=settings.base_url, parse=parser.parse,
            classify=mailbox_settings.classification_of,
        )  # fmt: skip
        keys = KeySet(settings.data_dir, max_lifetime=settings.token_max_lifetime)
        tokens = TokenService(
            keys, base_url=settings.base_url, external=external_issuers(settings, directory)
        )
        identity = IdentityService(
            SqlIdentity(engine), directory, tokens, access_lifetime=settings.token_lifetime
        )
        emulator = None
        if settings.emulator:
            emulator = EmulatorService(
                SqlEmulator(engine, content), directory, messages, identity,
                # on PostgreSQL, workers of other processes deliver too: nothing here
                # hears of their outcomes, so a wait looks again each second
                poll_seconds=1.0 if engine.dialect == "postgresql" else None,
            )  # fmt: skip
        transport: DeliveryTransport | None = None
        if settings.smtp_relay:
            transport = SmtpTransport(
                RelayConfig.parse(settings.smtp_relay),
                helo=settings.hostname,
                timeout=settings.smtp_timeout_seconds,
            )
            if emulator is not None:  # the SMTP fault rules answer before the relay
                transport = FaultyTransport(transport, emulator.faults)
        worker = DeliveryWorker(
            outbox,
            directory,
            ingest,
            transport,
            retry_base=settings.retry_base_seconds,
            retry_max=settings.retry_max_seconds,
            lease_seconds=settings.lease_seconds,
            poll_seconds=settings.poll_seconds,
            sole=engine.dialect == "sqlite",
            blobs=blobs,
            on_outcome=emulator.signal.notify if emulator is not None else None,
        )
        if emulator is not None:
            emulator.wake_worker = worker.wake
            emulator.on_reset = mailbox_settings.forget
        limits = Limits(
            max_recipients=settings.max_recipients,
            max_message_bytes=settings.max_message_bytes,
            retry_window_seconds=settings.retry_window_seconds,
            relay_configured=transport is not None,
        )
        sending = SendService(
            outbox, directory, folders, messages, limits=limits, web_base=settings.base_url,
            wake=worker.wake, access=access, blobs=blobs,
        )  # fmt: skip
        ingest.responder = AutomaticReplies(
            mailbox_settings, directory, sending, per_minute=settings.automatic_replies_per_minute
        ).consider
        webhooks = WebhookClient(
            plain_http_anywhere=settings.emulator, ca_file=settings.webhook_ca_file,
            internal_allowed=settings.emulator, allow=settings.webhook_allow_hosts,
        )  # fmt: skip
        subscription_store = SqlSubscriptions(engine)
        change_log = SqlChangeLog(engine)
        subscriptions = SubscriptionService(
            subscription_store, directory, folders, webhooks, changes=change_log
        )
        notifier = Notifier(
            subscription_store, webhooks, change_log, sole=engine.dialect == "sqlite",
            lease_seconds=settings.lease_seconds, post_seconds=settings.webhook_timeout_seconds,
            allowed=subscriptions.still_allowed,
        )  # fmt: skip
        return cls(
            settings=settings,
            engine=engine,
            message_store=message_store,
            outbox=outbox,
            directory=directory,
            access=access,
            folders=folders,
            messages=messages,
            keys=keys,
            tokens=tokens,
            identity=identity,
            ingest=ingest,
            sending=sending,
            worker=worker,
            parser=parser,
            blobs=blobs,
            uploads=uploads,
            subscriptions=subscriptions,
            notifier=notifier,
            change_log=change_log,
            mailbox_settings=mailbox_settings,
            queue=QueueService(outbox, directory, wake=worker.wake),
            emulator=emulator,
        )

    def inbound(self, *, port: int | None = None) -> InboundServer:
        s = self.settings
        handler = InboundHandler(
            self.directory, self.ingest, trusted_networks=s.trusted_networks,
            max_recipients=s.max_recipients,
        )  # fmt: skip
        return InboundServer(
            handler,
            host=s.smtp_host,
            port=s.smtp_port if port is None else port,
            hostname=s.hostname,
            max_bytes=s.max_message_bytes,
            idle_timeout=s.smtp_idle_timeout_seconds,
            max_sessions=s.smtp_max_sessions,
        )

    async def close(self) -> None:
        self.parser.close()
        await self.engine.close()

    def app(self) -> ASGIApp:
        """The emulator's test controls (or, with emulator mode off, their 404) and the
        identity platform's endpoints in front of the Graph app."""
        inner: ASGIApp = self.graph_app()
        if self.settings.web_ui:
            self.web = self.web_edge(inner)
            inner = self.web
        identity = IdentityEdge(
            inner,
            keys=self.keys,
            tokens=self.tokens,
            directory=self.directory,
            identity=self.identity,
            base_url=self.settings.base_url,
        )
        if self.emulator is None:
            return Absent(identity)
        return Controls(
            identity,
            emulator=self.emulator,
            directory=self.directory,
            tokens=self.tokens,
            allowed=self.settings.control_networks,
            token_lifetime=self.settings.token_lifetime,
            named_hosts=frozenset(filter(None, [urlsplit(self.settings.base_url).hostname])),
        )

    def web_edge(self, inner: ASGIApp) -> WebEdge:
        """The mailbox page in front of ``inner``; its sessions are signed with a secret drawn
        from the token signing key (shared by every process of the data directory)."""
        s = self.settings
        secret = str(self.keys.current.private.private_numbers().d).encode()
        return WebEdge(
            inner, directory=self.directory, folders=self.folders, messages=self.messages,
            sending=self.sending, queue=self.queue, identity=self.identity, changes=self.change_log,
            signer=Signer(secret), open_networks=s.control_networks if s.emulator else None,
            admins=s.web_admin_names, session_seconds=s.web_session_hours * 3600,
            open_hosts=frozenset(filter(None, [urlsplit(s.base_url).hostname])),
        )  # fmt: skip

    def graph_app(self) -> GraphApp:
        extras: list[Extra] = []
        services = Services(
            self.messages,
            self.folders,
            self.sending,
            Renderer(self.settings.base_url),
            self.uploads,
            subscriptions=self.subscriptions,
            settings=self.mailbox_settings,
            delta=DeltaService(
                self.message_store, self.folders, SqlFolders(self.engine), self.change_log
            ),
        )
        return GraphApp(
            services=services,
            directory=self.directory,
            tokens=self.tokens,
            max_request_bytes=self.settings.max_request_bytes,
            extras=extras,
            throttle=self.throttle(),
            faults=self.emulator.faults if self.emulator is not None else None,
        )

    def http_app(self) -> ASGIApp:
        """The ASGI app served: the identity edge and the Graph app, behind CORS when origins
        are configured."""
        origins = parse_origins(self.settings.cors_origins)
        app: ASGIApp = self.app()
        return Cors(app, origins) if origins else app

    def throttle(self) -> Throttle | None:
        s = self.settings
        if not s.throttling:
            return None
        limits = ThrottleLimits(
            s.throttle_requests, s.throttle_window_seconds, s.throttle_concurrency
        )
        counters: ThrottleCounters = (
            PgThrottleCounters(self.engine) if self.engine.dialect == "postgresql"
            else MemoryCounters()
        )  # fmt: skip
        return Throttle(counters, limits)


class DirectoryAccounts:
    """The directory as external token verification needs it (``auth.external.Accounts``)."""

    def __init__(self, directory: DirectoryService) -> None:
        self.directory = directory

    async def user_of(self, key: str) -> tuple[str, str] | None:
        user = await self.directory.user(key)
        # by userPrincipalName or mail only: a claim's value is never taken for an object id
        if user is None or key.lower() not in (user.upn.lower(), user.mail.lower()):
            return None
        return user.id, user.tenant_id

    async def tenant_of(self, key: str | None) -> str | None:
        if key is not None:
            tenant = await self.directory.tenant(key)
            return tenant.id if tenant is not None else None
        tenants = await self.directory.tenants()
        return tenants[0].id if len(tenants) == 1 else None

    async def tenant_count(self) -> int:
        return len(await self.directory.tenants())


def external_issuers(settings: Settings, directory: DirectoryService) -> ExternalIssuers | None:
    issuers = settings.issuers
    return ExternalIssuers(issuers, DirectoryAccounts(directory)) if issuers else None


def private_directory(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def prepare(settings: Settings, *, action: str = "upgrade", revision: str = "head") -> None:
    """Create the data directory (private: 0700, its files 0600) and bring the schema up to
    date, or to ``revision`` (before any event loop)."""
    private_directory(settings.data_dir)
    if not settings.database_url:
        make_private(settings.sqlite_path)
    migrate(
        database_url=settings.database_url,
        sqlite_path=settings.sqlite_path,
        action=action,
        revision=revision,
    )


def sole_worker_lock(settings: Settings) -> IO[bytes]:
    """Hold the SQLite database's worker lock for the life of the process (the kernel frees it
    when the process dies, even by kill -9). Holding it is what lets the worker take over
    every lease at start: no other process can be delivering from this database."""
    path = settings.sqlite_path.with_name("graphpost.worker.lock")
    handle = open(path, "ab")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RuntimeError(
            f"another graphpost process is delivering mail from {settings.sqlite_path}; "
            "one SQLite database has one serve process"
        ) from None
    return handle


class Server:
    """The ASGI app uvicorn runs: opens the runtime at start-up, closes it at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self._app: ASGIApp | None = None
        self._worker: asyncio.Task[None] | None = None
        self._notifier: asyncio.Task[None] | None = None
        self._housekeeping: asyncio.Task[None] | None = None
        self._inbound: InboundServer | None = None
        self._worker_lock: IO[bytes] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self._app is not None, "lifespan start-up has not run"
        await self._app(
            scope, body_deadline(receive, self.settings.http_body_timeout_seconds), send
        )

    def stop_streams(self) -> None:
        """End the web page's event streams (the server is stopping): uvicorn waits for open
        responses before it shuts down, and a stream would otherwise hold it."""
        if self.runtime is not None and self.runtime.web is not None:
            self.runtime.web.close()

    def _end_streams_on_signal(self) -> None:
        """Run ``stop_streams`` on SIGINT/SIGTERM before uvicorn's own handler (which it
        installs, with ``signal.signal``, in the main thread before start-up)."""
        if threading.current_thread() is not threading.main_thread():
            return  # graphpost.testing's server: its stop() calls stop_streams
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                self.stop_streams()
                previous(signum, frame)

            signal.signal(sig, handler)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.runtime = await Runtime.open(self.settings)
                    if self.runtime.tokens.external is not None:  # an issuer without a tenant
                        await self.runtime.tokens.external.check_tenants()
                    self._app = self.runtime.http_app()
                    self._end_streams_on_signal()
                    # everything built so far lives as long as the process: keep the cyclic
                    # collector off it, and collect young objects less often (fewer pauses)
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(20_000, 20, 20)
                    if self.settings.worker:
                        if self.runtime.worker.sole:
                            self._worker_lock = sole_worker_lock(self.settings)
                        self._worker = asyncio.create_task(self.runtime.worker.run())
                        self._notifier = asyncio.create_task(self.runtime.notifier.run())
                    self._housekeeping = asyncio.create_task(
                        housekeeping(
                            self.runtime.blobs,
                            self.runtime.change_log,
                            retention_ms=int(self.settings.change_retention_days * 86_400_000),
                        )
                    )
                    if self.settings.smtp_enabled:
                        self._inbound = self.runtime.inbound()
                        await self._inbound.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._inbound is not None:
                    await self._inbound.stop()
                if self._housekeeping is not None:
                    self._housekeeping.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._housekeeping
                if self.runtime is not None:
                    self.runtime.worker.stop()
                    self.runtime.notifier.stop()
                    if self._worker is not None:
                        await self._worker
                    if self._notifier is not None:
                        await self._notifier
                    await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


HOUSEKEEPING_SECONDS = 60.0


async def housekeeping(
    blobs: SqlBlobs,
    change_log: SqlChangeLog | None = None,
    *,
    retention_ms: int = 30 * 86_400_000,
    every: float = HOUSEKEEPING_SECONDS,
) -> None:
    """Once a minute: end expired upload sessions (their staged bytes with them) and remove
    blobs nothing uses any more (a message's delete sweeps at once; a folder's or a user's,
    and a finished submission's, leave it to this); prune the change log of what is older
    than ``retention_ms``. Errors are logged, never fatal."""
    while True:
        if change_log is not None:
            try:
                await change_log.prune(now_ms() - retention_ms)
            except Exception:
                log.exception("change log pruning failed")
        try:
            await blobs.expire()
            for _ in range(1000):  # 100 blobs a round, at most 100,000 a minute
                if not await blobs.sweep():
                    break
        except Exception:
            log.exception("blob housekeeping failed")
        await asyncio.sleep(every)


def server_from_env() -> Server:
    """uvicorn's factory for `graphpost serve --workers N`: each process reads GRAPHPOST_*."""
    return Server(Settings())
