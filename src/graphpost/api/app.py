"""The HTTP edge: one ASGI callable that authenticates, routes Graph paths and maps errors."""

from __future__ import annotations

import contextlib
import logging
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from graphpost.api import (
    actions,
    batch,
    delta,
    mail_folders,
    messages,
    settings,
    subscriptions,
    uploads,
    users,
)
from graphpost.api.context import TEXT_BODY, Call, Services
from graphpost.api.errors import envelope, status_and_code
from graphpost.asgi import Receive, Request, Response, Scope, Send, printable_header, read_body
from graphpost.auth.principal import Principal
from graphpost.auth.tokens import TokenService
from graphpost.errors import (
    AuthenticationError,
    GraphpostError,
    InjectedFaultError,
    InjectedTimeoutError,
    InjectedUnavailableError,
    MethodNotAllowedError,
    RequestTooLargeError,
    ThrottledError,
    UnknownSegmentError,
)
from graphpost.services.directory import DirectoryService
from graphpost.services.emulator import Faults, GraphFault
from graphpost.services.throttling import Throttle

log = logging.getLogger("graphpost.api")
_KEYED = re.compile(r"^([A-Za-z.]+)\((?:'((?:[^']|'')*)'|([^)]*))\)$")
_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


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
        if m and m.group(2) is None and not m.group(3):  # a function called: delta()
            out.append(_function(m.group(1)))
        elif m:
            out.append(m.group(1))
            out.append(m.group(2).replace("''", "'") if m.group(2) is not None else m.group(3))
        else:
            out.append(_function(seg))
    return out


def _function(segment: str) -> str:
    """A bound function by its short name: ``microsoft.graph.delta`` is ``delta``."""
    lowered = segment.lower()
    return segment[len("microsoft.graph.") :] if lowered == "microsoft.graph.delta" else segment


def _not_allowed(method: str, allowed: tuple[str, ...]) -> MethodNotAllowedError:
    return MethodNotAllowedError(
        f"The HTTP method '{method}' is not allowed on this resource; "
        f"allowed: {', '.join(allowed)}.",
        allowed=allowed,
    )


def _not_found(segment: str) -> UnknownSegmentError:
    return UnknownSegmentError(f"Resource not found for the segment '{segment}'.")


def _injected(fault: GraphFault) -> GraphpostError:
    """The error an emulator fault rule answers with."""
    why = f"(injected by the emulator's fault rule {fault.id})"
    if fault.status == 429:
        retry = fault.retry_after if fault.retry_after is not None else 1
        return ThrottledError(
            f"Application is over its MailboxConcurrency limit. {why}", retry_after=retry, limit=0
        )
    if fault.status == 503:
        return InjectedUnavailableError(
            f"The service is temporarily unavailable. {why}", retry_after=fault.retry_after
        )
    return InjectedTimeoutError(
        f"The request timed out; it may have been carried out. {why}",
        retry_after=fault.retry_after,
    )


# ------------------------------------------------------------------------------ the routes


@dataclass(frozen=True, slots=True)
class Route:
    """One Graph endpoint below ``/me`` or ``/users/{id}``.

    ``pattern``'s segments are literals, matched case-insensitively, or ``{name}``, which
    takes any one segment; the handler is called with the call and the taken segments, in
    order. ``text_body``: the endpoint honours ``Prefer: outlook.body-content-type="text"``.
    """

    method: str
    pattern: str
    handler: Callable[..., Awaitable[Response]]
    text_body: bool = False
    # per segment: the literal in lower case, or None for a {name}
    parts: tuple[str | None, ...] = field(init=False, repr=False, compare=False)
    # (position, lower-case literal) of each literal segment; the positions of the {name}s
    literals: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)
    names: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = tuple(None if p.startswith("{") else p.lower() for p in self.pattern.split("/"))
        object.__setattr__(self, "parts", parts)
        literals = tuple((i, p) for i, p in enumerate(parts) if p is not None)
        object.__setattr__(self, "literals", literals)
        object.__setattr__(self, "names", tuple(i for i, p in enumerate(parts) if p is None))


def _create_response(kind: str) -> Callable[[Call, str], Awaitable[Response]]:
    return lambda call, message_id: actions.create_response(call, message_id, kind)


def _respond(kind: str) -> Callable[[Call, str], Awaitable[Response]]:
    return lambda call, message_id: actions.respond(call, message_id, kind)


# Every Graph endpoint. A message below a folder (mailFolders/{folder}/messages/{id}/...) is
# the message itself, and a folder below another (mailFolders/{a}/childFolders/{b}/...) is
# that folder itself: _canonical rewrites those paths before they meet this table.
ROUTES: tuple[Route, ...] = (
    Route("POST", "sendMail", actions.send_mail),
    Route("GET", "mailFolders/{folder}/messages/delta", delta.messages, text_body=True),
    Route("GET", "mailFolders", lambda call: mail_folders.list_(call, None)),
    Route("POST", "mailFolders", lambda call: mail_folders.create(call, None)),
    Route("GET", "$count/mailFolders", lambda call: mail_folders.count(call, None)),
    Route("GET", "mailFolders/{folder}", mail_folders.get),  # also mailFolders/delta
    Route("PATCH", "mailFolders/{folder}", mail_folders.update),
    Route("DELETE", "mailFolders/{folder}", mail_folders.delete),
    Route("POST", "mailFolders/{folder}/move", mail_folders.move),
    Route("POST", "mailFolders/{folder}/copy", mail_folders.copy),
    Route("POST", "mailFolders/{folder}/permanentDelete", mail_folders.permanent_delete),
    Route("GET", "mailFolders/{folder}/childFolders/delta", delta.child_folders),
    Route("GET", "mailFolders/{folder}/childFolders", mail_folders.list_),
    Route("POST", "mailFolders/{folder}/childFolders", mail_folders.create),
    Route("GET", "$count/mailFolders/{folder}/childFolders", mail_folders.count),
    Route("GET", "mailFolders/{folder}/messages", messages.list_, text_body=True),
    Route("POST", "mailFolders/{folder}/messages", messages.create),
    Route("GET", "$count/mailFolders/{folder}/messages", messages.count),
    Route("GET", "messages", lambda call: messages.list_(call, None), text_body=True),
    Route("POST", "messages", lambda call: messages.create(call, None)),
    Route("GET", "$count/messages", lambda call: messages.count(call, None)),
    Route("GET", "messages/{id}", messages.get, text_body=True),
    Route("PATCH", "messages/{id}", messages.update),
    Route("DELETE", "messages/{id}", messages.delete),
    Route("POST", "messages/{id}/permanentDelete", messages.permanent_delete),
    Route("POST", "messages/{id}/send", actions.send),
    Route("POST", "messages/{id}/move", actions.move),
    Route("POST", "messages/{id}/copy", actions.copy),
    Route("POST", "messages/{id}/createReply", _create_response("reply")),
    Route("POST", "messages/{id}/createReplyAll", _create_response("replyall")),
    Route("POST", "messages/{id}/createForward", _create_response("forward")),
    Route("POST", "messages/{id}/reply", _respond("reply")),
    Route("POST", "messages/{id}/replyAll", _respond("replyall")),
    Route("POST", "messages/{id}/forward", _respond("forward")),
    Route("GET", "messages/{id}/deliveryStatus", actions.delivery_status),
    Route("GET", "messages/{id}/attachments", messages.list_attachments),
    Route("POST", "messages/{id}/attachments", messages.add_attachment),
    Route("GET", "messages/{id}/attachments/{attachment}", messages.get_attachment),
    Route("POST", "messages/{id}/attachments/createUploadSession", uploads.create_session),
    Route("DELETE", "messages/{id}/attachments/{attachment}", messages.delete_attachment),
    Route("GET", "messages/{id}/attachments/{attachment}/$value", messages.get_attachment_value),
    Route("GET", "messages/{id}/$value", messages.get_mime),
    Route("GET", "messages/{id}/extensions", lambda c, m: messages.list_extensions(c, m, None)),
    Route("GET", "messages/{id}/extensions/{name}", messages.list_extensions),
    Route("POST", "messages/{id}/extensions", messages.create_extension),
    Route("PATCH", "messages/{id}/extensions/{name}", messages.update_extension),
    Route("DELETE", "messages/{id}/extensions/{name}", messages.delete_extension),
    Route("GET", "mailboxSettings", settings.get_settings),
    Route("PATCH", "mailboxSettings", settings.update_settings),
    Route("GET", "mailboxSettings/{part}", settings.get_setting),
    Route("GET", "outlook/masterCategories", settings.list_categories),
    Route("POST", "outlook/masterCategories", settings.create_category),
    Route("GET", "outlook/masterCategories/{id}", settings.get_category),
    Route("PATCH", "outlook/masterCategories/{id}", settings.update_category),
    Route("DELETE", "outlook/masterCategories/{id}", settings.delete_category),
    Route("GET", "inferenceClassification/overrides", settings.list_overrides),
    Route("POST", "inferenceClassification/overrides", settings.create_override),
    Route("GET", "inferenceClassification/overrides/{id}", settings.get_override),
    Route("PATCH", "inferenceClassification/overrides/{id}", settings.update_override),
    Route("DELETE", "inferenceClassification/overrides/{id}", settings.delete_override),
)


def _index(routes: tuple[Route, ...]) -> dict[tuple[int, str | None], list[Route]]:
    """Routes by (segment count, first segment): a request compares a handful, not all."""
    index: dict[tuple[int, str | None], list[Route]] = {}
    for r in routes:
        index.setdefault((len(r.parts), r.parts[0]), []).append(r)
    return index


_BY_SHAPE = _index(ROUTES)


def _canonical(path: list[str]) -> list[str]:
    """mailFolders/{a}/childFolders/{b}/... is mailFolders/{b}/...; mailFolders/{a}/messages/
    {id}/... is messages/{id}/... (ids are the mailbox's, wherever the item is). A ``$count``
    segment counts the collection before it, and goes first (``$count/messages``), so that no
    count route shares a shape with an item's (``messages/{id}``)."""
    counted = len(path) > 1 and path[-1].lower() == "$count"
    if counted:
        path = path[:-1]
    while len(path) > 3 and path[0].lower() == "mailfolders":
        below = path[2].lower()
        if below == "childfolders":
            if len(path) == 4 and path[3].lower() == "delta":  # the folder's children's delta
                break
            path = ["mailFolders", *path[3:]]
        elif below == "messages":
            if len(path) == 4 and path[3].lower() == "delta":  # the folder's messages' delta
                break
            path = ["messages", *path[3:]]
        else:
            break
    return ["$count", *path] if counted else path


def _unknown_segment(path: list[str]) -> str:
    """The segment Graph's 'Resource not found for the segment' names for a path no route
    matches: where the routes part from it, or, past the end of every route that fits it so
    far, that route's last literal segment."""
    depth, reached = 0, list(ROUTES)
    for i, segment in enumerate(path):
        fitting = [
            r for r in reached
            if len(r.parts) > i and r.parts[i] in (None, segment.lower())
        ]  # fmt: skip
        if not fitting:
            break
        depth, reached = i + 1, fitting
    if depth == len(path):  # a beginning of routes, not one
        return path[-1] if path else ""
    if any(len(r.parts) > depth for r in reached):
        return path[depth]
    last = max(i for i, part in enumerate(reached[0].parts) if part is not None)
    return path[last]


def resolve(method: str, path: list[str]) -> tuple[Route, list[str]]:
    """The route for ``method`` on ``path`` (after ``/me`` or ``/users/{id}``) and what its
    ``{name}``s take; 400 for a path no route has, 405 for a method its routes do not have."""
    path = _canonical(path)
    lowered = [s.lower() for s in path]
    shape = (len(path), lowered[0] if path else None)
    allowed: list[str] = []
    for r in _BY_SHAPE.get(shape, []) + _BY_SHAPE.get((len(path), None), []):
        for i, literal in r.literals:
            if lowered[i] != literal:
                break
        else:
            if r.method == method:
                return r, [path[i] for i in r.names]
            allowed.append(r.method)
    if allowed:
        raise _not_allowed(method, tuple(sorted(allowed)))
    raise _not_found(_unknown_segment(path))


async def _route(call: Call, path: list[str]) -> Response:
    route, taken = resolve(call.request.method, path)
    if route.text_body and call.text_body:
        call.preference_applied.append(TEXT_BODY)
    return await route.handler(call, *taken)


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
        faults: Faults | None = None,
    ) -> None:
        self.services = services
        self.faults = faults  # the emulator's fault rules (emulator mode only)
        self.directory = directory
        self.tokens = tokens
        self.max_request_bytes = max_request_bytes
        self.extras = extras or []
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request.from_scope(scope), receive)
        length = len(response.body) if response.stream is None else response.length
        headers = [(b"content-length", str(length).encode()), *response.headers]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if response.stream is None:
            await send({"type": "http.response.body", "body": response.body})
            return
        # the status is sent: a failure now can only cut the connection (the client sees a
        # body shorter than its Content-Length), and is logged
        try:
            async for chunk in response.stream():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception:
            log.exception("streaming a response failed")
            raise
        await send({"type": "http.response.body", "body": b""})

    async def respond(self, request: Request, receive: Receive | None = None) -> Response:
        """The one internal entry point: the whole answer to one request (checks, body limit,
        authentication, routing, permissions, throttling, error mapping), with its headers
        (request-id, client-request-id, …) in ``headers``. ``receive``: read the body from
        ASGI; None: ``request.body`` is already the body (a member of a JSON batch)."""
        request_id = _request_id()
        client_request_id = request.headers.get("client-request-id") or request_id
        if not printable_header(client_request_id):
            client_request_id = request_id  # never echo a control character (400 below)
        extra_headers: list[tuple[bytes, bytes]] = []
        try:
            request.check()
            if receive is not None:
                if request.method not in _BODYLESS or "content-length" in request.headers:
                    request.body = await read_body(
                        receive, self.max_request_bytes, request.headers.get("content-length")
                    )
            elif len(request.body) > self.max_request_bytes:
                raise RequestTooLargeError(
                    f"Maximum request length exceeded: the limit is {self.max_request_bytes} bytes."
                )
            fault = await self._fault(request) if self.faults and self.faults.graph else None
            if fault is None:
                response = await self._dispatch(request, extra_headers)
            elif fault.status != 504:
                raise _injected(fault)
            else:  # the work is done, its answer dropped: the client must cope with a retry
                with contextlib.suppress(GraphpostError):
                    await self._dispatch(request, [])
                raise _injected(fault)
        except GraphpostError as exc:
            status, code = status_and_code(exc)
            if status == 500:
                log.error("request %s failed: %r", request_id, exc)
            if isinstance(exc, ThrottledError):
                extra_headers.append((b"retry-after", str(exc.retry_after).encode()))
                if exc.limit:
                    extra_headers += [
                        (b"ratelimit-limit", str(exc.limit).encode()),
                        (b"ratelimit-remaining", b"0"),
                        (b"ratelimit-reset", str(exc.retry_after).encode()),
                    ]
            if isinstance(exc, InjectedFaultError) and exc.retry_after is not None:
                extra_headers.append((b"retry-after", str(exc.retry_after).encode()))
            if isinstance(exc, MethodNotAllowedError) and exc.allowed:
                extra_headers.append((b"allow", ", ".join(exc.allowed).encode()))
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
        response.headers = [
            (b"request-id", request_id.encode()),
            (b"client-request-id", client_request_id.encode("latin-1")),
            (b"cache-control", b"private"),
            *extra_headers,
            *response.headers,
        ]
        return response

    async def _fault(self, request: Request) -> GraphFault | None:
        """The emulator's fault rule this request meets, if any (emulator mode only)."""
        assert self.faults is not None
        segments = request.segments()
        user_id = None
        rest = _split_keys(segments[1:])
        graph = bool(segments) and segments[0].lower() == "v1.0"
        if graph and not uploads.is_upload_path(_split_keys(segments)):
            # after authentication: a request Graph would refuse 401 gets its 401 (and does
            # not spend a rule's count)
            principal = await self._authenticate(request)
            if self.faults.needs_user and rest and rest[0].lower() == "me":
                user_id = principal.user_id
        if self.faults.needs_user and rest and graph:
            head = rest[0].lower()
            if head == "users" and len(rest) >= 2:
                user = await self.directory.user(rest[1])
                user_id = user.id if user is not None else None
        return self.faults.pick_graph(request.method, "/" + "/".join(segments), user_id)

    async def _dispatch(self, request: Request, extra: list[tuple[bytes, bytes]]) -> Response:
        segments = _split_keys(request.segments())
        if not segments or segments[0].lower() != "v1.0":
            for handler in self.extras:
                found = await handler(request)
                if found is not None:
                    return found
            raise _not_found(segments[0] if segments else "")
        if uploads.is_upload_path(segments):
            return await self._upload(request, segments)
        principal = await self._authenticate(request)
        rest = segments[1:]
        if not rest:
            raise _not_found("v1.0")
        head = rest[0].lower()
        if head == "$batch" and len(rest) == 1:
            if request.method != "POST":
                raise _not_allowed(request.method, ("POST",))
            return await batch.run(self, request)
        if (head == "me" and len(rest) == 1) or (head == "users" and len(rest) <= 2):
            return await self._directory(request, principal, rest)
        if head == "subscriptions" and len(rest) <= 3:
            return await self._subscriptions(request, principal, rest)
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
            response = await _route(call, rest)
        else:
            async with self.throttle.slot(principal.app_id, mailbox.id):
                response = await _route(call, rest)
        if applied:
            extra.append((b"preference-applied", ", ".join(applied).encode()))
        return response

    async def _directory(self, request: Request, principal: Principal, rest: list[str]) -> Response:
        """/me, /users, /users/$count, /users/{id|userPrincipalName}: read only."""
        if request.method != "GET":
            raise _not_allowed(request.method, ("GET",))
        base = self.services.render.base
        if rest[0].lower() == "me":
            answer = partial(users.get, self.directory, base, request, principal, None)
        elif len(rest) == 1:
            answer = partial(users.list_, self.directory, base, request, principal)
        elif rest[1].lower() == "$count":
            answer = partial(users.count, self.directory, base, request, principal)
        else:
            answer = partial(users.get, self.directory, base, request, principal, rest[1])
        if self.throttle is None:
            return await answer()
        # directory calls count per app per tenant (Graph's identity limits are per tenant)
        async with self.throttle.slot(principal.app_id, f"directory:{principal.tenant_id}"):
            return await answer()

    async def _subscriptions(
        self, request: Request, principal: Principal, rest: list[str]
    ) -> Response:
        """/subscriptions, /subscriptions/{id} and its reauthorize action: throttled per app
        per tenant."""
        service = self.services.subscriptions
        if service is None:
            raise _not_found(rest[0])
        render = self.services.render
        method = request.method
        if len(rest) == 3:
            if rest[2].lower() != "reauthorize":
                raise _not_found(rest[2])
            if method != "POST":
                raise _not_allowed(method, ("POST",))
            answer = partial(
                subscriptions.reauthorize, service, render, request, principal, rest[1]
            )
        elif len(rest) == 1:
            handlers = {"GET": subscriptions.list_, "POST": subscriptions.create}
            if method not in handlers:
                raise _not_allowed(method, ("GET", "POST"))
            answer = partial(handlers[method], service, render, request, principal)
        else:
            by_id = {
                "GET": subscriptions.get,
                "PATCH": subscriptions.update,
                "DELETE": subscriptions.delete,
            }
            if method not in by_id:
                raise _not_allowed(method, ("DELETE", "GET", "PATCH"))
            answer = partial(by_id[method], service, render, request, principal, rest[1])
        if self.throttle is None:
            return await answer()
        async with self.throttle.slot(principal.app_id, f"subscriptions:{principal.tenant_id}"):
            return await answer()

    async def _upload(self, request: Request, segments: list[str]) -> Response:
        """An upload session's URL: its token instead of a bearer token; throttled as a
        request of the app that made the session, in its mailbox."""
        service = self.services.uploads
        if service is None or request.method not in ("PUT", "GET", "DELETE"):
            if service is None:
                raise _not_found(segments[5])
            raise _not_allowed(request.method, ("DELETE", "GET", "PUT"))
        session = await uploads.open_session(service, request, segments)
        base = self.services.render.base
        if self.throttle is None:
            return await uploads.answer(service, base, request, session)
        async with self.throttle.slot(session.app_id, session.mailbox_id):
            return await uploads.answer(service, base, request, session)

    async def _authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("Access token is empty.")
        return await self.tokens.authenticate(token.strip())
