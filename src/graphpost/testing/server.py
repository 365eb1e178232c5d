"""graphpost in-process, for an app's tests: a thread running uvicorn and the delivery worker
on a free port of 127.0.0.1, with its data (SQLite) in a directory of the caller's, in emulator
mode. As `graphpost serve` runs it: the same runtime, the demo tenant seeded."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn

from graphpost.cli.common import with_runtime
from graphpost.cli.http import GraphpostConfig, HttpLimits
from graphpost.cli.serve import first_start
from graphpost.domain import times
from graphpost.runtime import Server
from graphpost.settings import Settings

START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Uvicorn(uvicorn.Server):
    """uvicorn's server, saying when it is listening (or has given up)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


_running: list[InProcessServer] = []  # the in-process servers of this process
_clock_at_start: list[float] = [0.0]  # the clock's offset when the first of them started
_lock = threading.Lock()


class InProcessServer:
    """``start()`` returns the base URL; ``stop()`` shuts it down (the worker finishes what it
    holds, as at a SIGTERM). ``settings`` are Settings fields (``smtp_relay=…``, …).

    The clock the test controls move is this process's: when the last in-process server
    stops, it is put back where it was when the first started (as a restart of ``serve``
    forgets how far it was moved), so the next server starts with the real time."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        port = settings.pop("port", None) or free_port()
        given: dict[str, Any] = {
            "data_dir": data_dir, "host": "127.0.0.1", "port": port, "emulator": True,
            "smtp_enabled": False, "database_url": None,
        }  # fmt: skip
        given.update(settings)
        self.settings = Settings(**given)
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def start(self) -> str:
        if self._thread is not None:
            raise RuntimeError(f"graphpost is already running on {self.base_url}; stop() it first")
        s = self.settings
        # migrate and seed the demo tenant first, in a loop of its own
        with_runtime(s, first_start)
        limits = HttpLimits(
            header_timeout=s.http_header_timeout_seconds,
            body_timeout=s.http_body_timeout_seconds,
            idle_timeout=s.http_idle_timeout_seconds,
            max_connections=s.http_max_connections,
        )
        config = GraphpostConfig(
            Server(s), limits=limits, host=s.host, port=s.port, loop="asyncio", lifespan="on",
            access_log=False, log_level="warning", timeout_graceful_shutdown=5,
        )  # fmt: skip
        server = self._server = _Uvicorn(config)
        with _lock:
            if not _running:
                _clock_at_start[0] = times.offset()
            _running.append(self)
        self._thread = threading.Thread(target=self._run, name="graphpost", daemon=True)
        self._thread.start()
        if not server.ready.wait(START_SECONDS) or not server.started:
            self.stop()
            raise RuntimeError(f"graphpost did not start on {self.base_url}: {self._error!r}")
        return self.base_url

    def _run(self) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve())
        except BaseException as exc:
            self._error = exc
            self._server.ready.set()

    def stop(self) -> None:
        if self._server is not None:
            app = self._server.config.app
            if isinstance(app, Server):
                app.stop_streams()
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        with _lock:
            if self in _running:
                _running.remove(self)
                if not _running:
                    times.restore(_clock_at_start[0])

    def __enter__(self) -> InProcessServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
