"""uvicorn's httptools protocol with the limits it lacks: a deadline for the request head, for
the body, for a client that stops reading, and a cap on open connections.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``) but a connection that
has sent half a request line, or headers one byte at a time, or a body that stalls, is held
forever. Here every phase of a request has a deadline:

* head: the request line and headers must be complete ``header_timeout`` seconds after the
  connection opens (or after the first byte of a following keep-alive request); else ``408``
  (when part of a request arrived) and the connection is closed;
* body: the application answers ``408 RequestTimeout`` itself when the body has not arrived
  ``body_timeout`` seconds after it began reading (``asgi.body_deadline``); the connection is
  closed a moment later if the body is still incomplete (the client gets the 408 first);
* writing: a client that stops reading the response for ``idle_timeout`` seconds is closed;
* a request head (line and headers) over ``MAX_HEAD_BYTES`` is answered ``431`` and closed:
  the parser would otherwise keep every header in memory until the deadline;
* a connection beyond ``max_connections`` is answered ``503`` and closed at once, so that
  held-open sockets can never exhaust the process's file descriptors.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

# the application answers 408 for a stalled body; the connection closes this much later
BODY_GRACE_SECONDS = 1.0
MAX_HEAD_BYTES = 64 * 1024  # request line and headers (IIS, in front of Graph: 16 KB a header)


def _canned(status: str, code: str, message: str, *extra: str) -> bytes:
    """A whole HTTP/1.1 answer with a Graph error body, written before the app sees a request
    (the connection closes after it)."""
    body = f'{{"error":{{"code":"{code}","message":"{message}"}}}}'.encode()
    head = [f"HTTP/1.1 {status}", "content-type: application/json", *extra,
            f"content-length: {len(body)}", "connection: close"]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


REQUEST_TIMEOUT = _canned(
    "408 Request Timeout", "RequestTimeout", "The request was not received in time."
)
HEAD_TOO_LARGE = _canned(
    "431 Request Header Fields Too Large",
    "RequestHeaderFieldsTooLarge",
    "The request line and headers are over 64 KB.",
)
TOO_MANY_CONNECTIONS = _canned(
    "503 Service Unavailable",
    "ServiceUnavailable",
    "Too many open connections; retry.",
    "retry-after: 1",
)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 15.0
    max_connections: int = 1000


class GraphpostConfig(uvicorn.Config):
    """uvicorn's Config with our protocol and its limits (picklable for ``--workers N``)."""

    def __init__(self, app: Any, *, limits: HttpLimits, **options: Any) -> None:
        super().__init__(
            app,
            http=GuardedHttpToolsProtocol,
            timeout_keep_alive=max(1, math.ceil(limits.idle_timeout)),
            **options,
        )
        self.limits = limits


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = config.limits if isinstance(config, GraphpostConfig) else HttpLimits()
        self._deadline: asyncio.TimerHandle | None = None
        self._write_deadline: asyncio.TimerHandle | None = None
        self._begun = False  # part of a request head has arrived
        self._head_bytes: int | None = 0  # bytes received while a head is incomplete

    # -- deadlines

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._begun:  # a head that never completed: say why before closing
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()

    # -- uvicorn's protocol, with the deadlines added

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(TOO_MANY_CONNECTIONS)
            transport.close()
            return
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_bytes is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._head_bytes is not None
            and self._head_bytes > MAX_HEAD_BYTES
            and not self.transport.is_closing()
        ):
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self._deadline is None:  # a keep-alive request: its head's time starts now
            self._arm(self.limits.header_timeout)

    def on_headers_complete(self) -> None:
        self._begun = False
        self._head_bytes = None
        self._arm(self.limits.body_timeout + BODY_GRACE_SECONDS)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._head_bytes = 0
        super().on_message_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_deadline is None:
            # abort, not close: close would wait to flush what the client does not read
            self._write_deadline = self.loop.call_later(
                self.limits.idle_timeout, self.transport.abort
            )

    def resume_writing(self) -> None:
        if self._write_deadline is not None:
            self._write_deadline.cancel()
            self._write_deadline = None
        super().resume_writing()
