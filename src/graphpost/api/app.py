"""The HTTP edge: one ASGI callable that authenticates, routes Graph paths and maps errors."""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

from graphpost.api import actions, mail_folders, messages
from graphpost.api.context import Call, Services
from graphpost.api.errors import envelope, status_and_code
from graphpost.asgi import Receive, Request, Response, Scope, Send, printable_header, read_body
from graphpost.auth.principal import Principal
from graphpost.auth.tokens import TokenService
from graphpost.errors import (
    AuthenticationError,
    GraphpostError,
    MethodNotAllowedError,
    ThrottledError,
    UnknownSegmentError,
)
from graphpost.services.directory import DirectoryService
from graphpost.services.throttling import Throttle

log = logging.getLogger("graphpost.api")
_KEYED = re.compile(r"^([A-Za-z.]+)\((?:'((?:[^']|'')*)'|([^)]*))\)$")
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})

Handler = Callable[[Call], Awaitable[Response]]


class Extra(Protocol):
    """A route outside /v1.0 (identity's keys and discovery, the web viewer): its answer, or
    None to let the next one try."""

    async def __call__(self, request: Request, /) -> Response | None: ...


def _request_id() -> str:
    """A random GUID for the request-id header (not a secret: cheaper than uuid4)."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _split_keys(segments: list[str]) -> list[str]:
    """``mailFolders('inbox')`` → ``mailFolders``, ``inbox`` (and the same for any segment)."""
    out: list[str] = []
    for seg in segments:
        m = _KEYED.match(seg)
        if m:
            out.append(m.group(1))
            out.append(m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3))
        else:
            out.append(seg)
    return out


def _not_found(segment: str) -> UnknownSegmentError:
    return UnknownSegmentError(f"Resource not found for the segment '{segment}'.")


def _methods(call: Call, table: dict[str, Handler]) -> Awaitable[Response]:
    handler = table.get(call.request.method)
    if handler is None:
        raise MethodNotAllowedError(
            f"The HTTP method '{call.request.method}' is not allowed on this resource; "
            f"allowed: {', '.join(sorted(table))}."
        )
    return handler(call)


def route(call: Call, rest: list[str]) -> Awaitable[Response]:
    """Dispatch the part of a Graph path after ``/me`` or ``/users/{id}``."""
    if not rest:
        raise _not_found("")
    head = rest[0].lower()
    # /mailFolders/{a}/childFolders/{b}/... is /mailFolders/{b}/...
    while head == "mailfolders" and len(rest) > 3 and rest[2].lower() == "childfolders":
        rest = ["mailFolders", *rest[3:]]
    if head == "messages":
        return _message_routes(call, rest[1:], None)
    if head == "sendmail" and len(rest) == 1:
        return _methods(call, {"POST": actions.send_mail})
    if head == "mailfolders":
        if len(rest) == 1:
            return _methods(
                call, {"GET": lambda c: mail_folders.list_(c, None),
                       "POST": lambda c: mail_folders.create(c, None)}
            )  # fmt: skip
        key = rest[1]
        if len(rest) == 2:
            return _methods(
                call,
                {
                    "GET": lambda c: mail_folders.get(c, key),
                    "PATCH": lambda c: mail_folders.update(c, key),
                    "DELETE": lambda c: mail_folders.delete(c, key),
                },
            )
        sub = rest[2].lower()
        if sub == "childfolders" and len(rest) == 3:
            return _methods(
                call, {"GET": lambda c: mail_folders.list_(c, key),
                       "POST": lambda c: mail_folders.create(c, key)}
            )  # fmt: skip
        if sub == "messages":
            return _message_routes(call, rest[3:], key)
        raise _not_found(rest[2])
    raise _not_found(rest[0])


_ACTIONS: dict[str, Callable[[Call, str], Awaitable[Response]]] = {
    "permanentdelete": messages.permanent_delete,
    "send": actions.send,
    "move": actions.move,
    "copy": actions.copy,
}
_RESPONSES = {
    "createreply": ("reply", True),
    "createreplyall": ("replyall", True),
    "createforward": ("forward", True),
    "reply": ("reply", False),
    "replyall": ("replyall", False),
    "forward": ("forward", False),
}


def _message_routes(call: Call, rest: list[str], folder: str | None) -> Awaitable[Response]:
    if not rest:
        return _methods(
            call, {"GET": lambda c: messages.list_(c, folder),
                   "POST": lambda c: messages.create(c, folder)}
        )  # fmt: skip
    mid = rest[0]
    if len(rest) == 1:
        return _methods(
            call,
            {
                "GET": lambda c: messages.get(c, mid),
                "PATCH": lambda c: messages.update(c, mid),
                "DELETE": lambda c: messages.delete(c, mid),
            },
        )
    action = rest[1].lower()
    if len(rest) == 2:
        simple = _ACTIONS.get(action)
        if simple is not None:
            return _methods(call, {"POST": lambda c: simple(c, mid)})
        if action in _RESPONSES:
            kind, create = _RESPONSES[action]
            if create:
                return _methods(call, {"POST": lambda c: actions.create_response(c, mid, kind)})
            return _methods(call, {"POST": lambda c: actions.respond(c, mid, kind)})
        if action == "deliverystatus":
            return _methods(call, {"GET": lambda c: actions.delivery_status(c, mid)})
    if action == "attachments" and len(rest) <= 3:
        if len(rest) == 2:
            return _methods(call, {"GET": lambda c: messages.list_attachments(c, mid)})
        aid = rest[2]
        return _methods(call, {"GET": lambda c: messages.get_attachment(c, mid, aid)})
    if action == "extensions" and len(rest) <= 3:
        name = rest[2] if len(rest) == 3 else None
        return _methods(call, {"GET": lambda c: messages.list_extensions(c, mid, name)})
    raise _not_found(rest[1])


class GraphApp:
    """ASGI application: /v1.0 (Graph), plus extra routes (keys, web page) tried in order."""

    def __init__(
        self,
        *,
        services: Services,
        directory: DirectoryService,
        tokens: TokenService,
        max_request_bytes: int,
        extras: list[Extra] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.services = services
        self.directory = directory
        self.tokens = tokens
        self.max_request_bytes = max_request_bytes
        self.extras = extras or []
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request.from_scope(scope)
        request_id = _request_id()
        client_request_id = request.headers.get("client-request-id") or request_id
        if not printable_header(client_request_id):
            client_request_id = request_id  # never echo a control character (400 below)
        extra_headers: list[tuple[bytes, bytes]] = []
        try:
            request.check()
            if request.method not in _BODYLESS or "content-length" in request.headers:
                request.body = await read_body(
                    receive, self.max_request_bytes, request.headers.get("content-length")
                )
            response = await self._dispatch(request, extra_headers)
        except GraphpostError as exc:
            status, code = status_and_code(exc)
            if status == 500:
                log.error("request %s failed: %r", request_id, exc)
            if isinstance(exc, ThrottledError):
                extra_headers += [
                    (b"retry-after", str(exc.retry_after).encode()),
                    (b"ratelimit-limit", str(exc.limit).encode()),
                    (b"ratelimit-remaining", b"0"),
                    (b"ratelimit-reset", str(exc.retry_after).encode()),
                ]
            if status == 401:
                detail = exc.message.replace('"', "'")
                extra_headers.append(
                    (
                        b"www-authenticate",
                        f'Bearer error="invalid_token", error_description="{detail}"'.encode(),
                    )
                )
            response = Response(
                status,
                envelope(
                    code,
                    exc.message,
                    request_id=request_id,
                    client_request_id=client_request_id,
                    target=exc.target,
                    status=status,
                ),
            )
        except Exception:
            log.exception("request %s failed", request_id)
            response = Response(
                500,
                envelope(
                    "InternalServerError",
                    "The server hit an unexpected error; the request-id is in the log.",
                    request_id=request_id,
                    client_request_id=client_request_id,
                ),
            )
        headers = [
            (b"request-id", request_id.encode()),
            (b"client-request-id", client_request_id.encode("latin-1")),
            (b"cache-control", b"private"),
            (b"content-length", str(len(response.body)).encode()),
            *extra_headers,
            *response.headers,
        ]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _dispatch(self, request: Request, extra: list[tuple[bytes, bytes]]) -> Response:
        segments = _split_keys(request.segments())
        if not segments or segments[0].lower() != "v1.0":
            for handler in self.extras:
                found = await handler(request)
                if found is not None:
                    return found
            raise _not_found(segments[0] if segments else "")
        principal = self._authenticate(request)
        rest = segments[1:]
        if not rest:
            raise _not_found("v1.0")
        head = rest[0].lower()
        if head == "me":
            key, rest = None, rest[1:]
        elif head == "users" and len(rest) >= 2:
            key, rest = rest[1], rest[2:]
        else:
            raise _not_found(rest[0])
        mailbox = await self.directory.open_mailbox(principal, key)
        applied: list[str] = []
        prefer = request.headers.get("prefer", "").lower()
        if "idtype" in prefer and "immutableid" in prefer:
            applied.append('IdType="ImmutableId"')  # our ids never change anyway
        call = Call(request, mailbox, self.services, applied)
        if self.throttle is None:
            response = await route(call, rest)
        else:
            async with self.throttle.slot(principal.app_id, mailbox.id):
                response = await route(call, rest)
        if applied:
            extra.append((b"preference-applied", ", ".join(applied).encode()))
        return response

    def _authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Access token is empty.")
        return self.tokens.verify(token.strip())
