"""Composition root: builds the engine, store, services, token service and the ASGI app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphpost.api.app import GraphApp
from graphpost.api.context import Services
from graphpost.api.render import Renderer
from graphpost.auth.keys import SigningKey, load_or_create
from graphpost.auth.tokens import TokenService
from graphpost.identity.keys import KeysEndpoint
from graphpost.services.directory import DirectoryService
from graphpost.services.folders import FolderService
from graphpost.services.messages import MessageService
from graphpost.settings import Settings
from graphpost.store.engine import Engine, open_engine
from graphpost.store.migrate import migrate
from graphpost.store.sql import SqlMailStore
from graphpost.web.viewer import Viewer


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: SqlMailStore
    directory: DirectoryService
    folders: FolderService
    messages: MessageService
    key: SigningKey
    tokens: TokenService

    @classmethod
    async def open(cls, settings: Settings) -> Runtime:
        engine = await open_engine(
            database_url=settings.database_url,
            sqlite_path=settings.sqlite_path,
            synchronous=settings.sqlite_synchronous,
            pool_size=settings.pg_pool_size,
        )
        store = SqlMailStore(engine)
        folders = FolderService(store)
        key = load_or_create(settings.data_dir)
        return cls(
            settings=settings,
            engine=engine,
            store=store,
            directory=DirectoryService(store),
            folders=folders,
            messages=MessageService(store, folders, web_base=settings.base_url),
            key=key,
            tokens=TokenService(key),
        )

    async def close(self) -> None:
        await self.engine.close()

    def app(self) -> GraphApp:
        extras: list[Any] = [KeysEndpoint(self.key, self.settings.base_url)]
        if self.settings.web_ui:
            extras.append(Viewer(self.store))
        services = Services(self.messages, self.folders, Renderer(self.settings.base_url))
        return GraphApp(
            services=services,
            directory=self.directory,
            tokens=self.tokens,
            max_request_bytes=self.settings.max_request_bytes,
            extras=extras,
        )


def prepare(settings: Settings) -> None:
    """Create the data directory and bring the schema up to date (before any event loop)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(database_url=settings.database_url, sqlite_path=settings.sqlite_path)


class Server:
    """The ASGI app uvicorn runs: opens the runtime at start-up, closes it at shutdown."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self._app: GraphApp | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self._app is not None, "lifespan start-up has not run"
        await self._app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.runtime = await Runtime.open(self.settings)
                    self._app = self.runtime.app()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.runtime is not None:
                    await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
