"""The test controls' HTTP edge, under ``/_graphpost/``, in front of the other apps (emulator
mode only; with it off, ``Absent`` answers every such path 404 and no control exists).

    GET    /_graphpost                 what the controls are
    POST   /_graphpost/reset           {"tenant"?}: empty the mailboxes (all, or a tenant's)
    POST   /_graphpost/seed            {"users": […], "messages": […]}
    GET    /_graphpost/messages        ?to=&from=&subject=&state=&wait=SECONDS
    GET    /_graphpost/faults          the fault rules
    POST   /_graphpost/faults          a rule ({"layer": "graph"|"smtp", …})
    DELETE /_graphpost/faults[/{id}]   every rule, or one
    GET    /_graphpost/clock           the clock and how far it was moved
    POST   /_graphpost/clock           {"advanceSeconds": N}: forward only
    POST   /_graphpost/token           {"user", "scopes"?} or {"app", "roles"?, "tenant"?}

Only clients in ``GRAPHPOST_EMULATOR_CONTROLS_FROM`` (loopback by default) that name the
server by an IP address, ``localhost``, a one-label name or ``GRAPHPOST_PUBLIC_URL``'s host
are answered (``asgi.local_client``: a hostile page's name rebound to loopback is not);
others get 403. The errors are Graph's envelope (``api.errors``)."""

from __future__ import annotations

import ipaddress
import logging
import random
from typing import Any, ClassVar, Literal

import msgspec

from graphpost.api.errors import envelope, status_and_code
from graphpost.asgi import (
    ASGIApp,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    local_client,
    printable_header,
    read_body,
)
from graphpost.auth.tokens import TokenService
from graphpost.domain import times
from graphpost.domain.message import MessageInput
from graphpost.errors import (
    AccessDeniedError,
    GraphpostError,
    InvalidInputError,
    MethodNotAllowedError,
    NotFoundError,
    UnknownUserError,
)
from graphpost.ports.emulator import Delivered
from graphpost.services.directory import DEMO_DOMAIN, DirectoryService
from graphpost.services.emulator import (
    MAX_WAIT_SECONDS,
    DeliveredQuery,
    EmulatorService,
    SeedMessage,
    SeedUser,
)

log = logging.getLogger("graphpost.emulator")
PREFIX = "_graphpost"
MAX_BODY = 4 * 1024 * 1024
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_STATES = frozenset({"delivered", "deferred", "failed"})
_encode = msgspec.json.Encoder().encode


def is_control_path(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    return bool(parts) and parts[0].lower() == PREFIX


class _Input(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    graph_type: ClassVar[str] = "graphpost.emulator.control"


class ResetInput(_Input):
    tenant: str | None = None


class SeedUserInput(_Input):
    user_principal_name: str | None = None
    mail: str | None = None
    display_name: str | None = None
    password: str | None = None


class SeedMessageInput(_Input):
    user: str
    message: msgspec.Raw
    folder: str = "inbox"


class SeedInput(_Input):
    users: list[SeedUserInput] = []
    messages: list[SeedMessageInput] = []


class FaultInput(_Input):
    layer: Literal["graph", "smtp"] = "graph"
    # graph
    status: int | None = None
    path: str | None = None
    method: str | None = None
    user: str | None = None
    retry_after: int | None = None
    # smtp
    recipient: str | None = None
    code: int | None = None
    enhanced_code: str | None = None
    message: str | None = None
    drop: bool = False
    # both
    count: int | None = None
    probability: float | None = None


class ClockInput(_Input):
    advance_seconds: float


class TokenInput(_Input):
    user: str | None = None
    scopes: str = "User.Read Mail.ReadWrite Mail.Send"
    app: str | None = None
    roles: str = "Mail.ReadWrite Mail.Send"
    tenant: str = DEMO_DOMAIN
    lifetime: int | None = None


def _json(status: int, value: Any) -> Response:
    return Response(status, _encode(value))


def _delivered(d: Delivered) -> dict[str, Any]:
    return {
        "id": str(d.seq),
        "submissionId": d.submission_id,
        "messageId": d.message_id,
        "internetMessageId": d.internet_message_id,
        "senderMailboxId": d.sender_mailbox_id,
        "from": d.envelope_from,
        "to": d.recipient,
        "subject": d.subject,
        "route": "local" if d.route.value == "local" else "relay",
        "mailboxId": d.local_mailbox_id,
        "state": d.state.value,
        "attempts": d.attempts,
        "lastCode": d.last_code,
        "lastEnhancedCode": d.last_enhanced,
        "lastResponse": d.last_response,
        "queuedDateTime": times.iso(d.created_ms // 1000),
        "lastUpdatedDateTime": times.iso(d.updated_ms // 1000),
        "completedDateTime": None if d.done_ms is None else times.iso(d.done_ms // 1000),
    }


def _clock() -> dict[str, Any]:
    return {"now": times.iso(times.now()), "offsetSeconds": times.offset()}


def _not_found(path: str) -> NotFoundError:
    return NotFoundError(
        f"No test control at '{path[:200]}'; GET /_graphpost lists them (emulator mode only)."
    )


INDEX = {
    "controls": [
        {"method": "POST", "path": "/_graphpost/reset", "body": {"tenant": "optional"}},
        {"method": "POST", "path": "/_graphpost/seed", "body": {"users": [], "messages": []}},
        {"method": "GET", "path": "/_graphpost/messages",
         "query": ["to", "from", "subject", "state", "wait"]},
        {"method": "GET", "path": "/_graphpost/faults"},
        {"method": "POST", "path": "/_graphpost/faults", "body": {"layer": "graph|smtp"}},
        {"method": "DELETE", "path": "/_graphpost/faults"},
        {"method": "DELETE", "path": "/_graphpost/faults/{id}"},
        {"method": "GET", "path": "/_graphpost/clock"},
        {"method": "POST", "path": "/_graphpost/clock", "body": {"advanceSeconds": 0}},
        {"method": "POST", "path": "/_graphpost/token", "body": {"user": "or app"}},
    ]
}  # fmt: skip


class _Edge:
    """What both edges share: the answer of a /_graphpost/ path as Graph's envelope."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_control_path(scope.get("path", "")):
            await self.inner(scope, receive, send)
            return
        request = Request.from_scope(scope)
        request_id = f"{random.getrandbits(128):032x}"
        client_id = request.headers.get("client-request-id") or request_id
        if not printable_header(client_id) or len(client_id) > 200:
            client_id = request_id
        headers: list[tuple[bytes, bytes]] = []
        try:
            response = await self.answer(request, scope, receive)
        except GraphpostError as exc:
            status, code = status_and_code(exc)
            if isinstance(exc, MethodNotAllowedError) and exc.allowed:
                headers.append((b"allow", ", ".join(exc.allowed).encode()))
            if status >= 500:
                log.warning("test control %s failed: %r", request.raw_path, exc)
            response = Response(
                status,
                envelope(code, exc.message, request_id=request_id, client_request_id=client_id,
                         target=exc.target, status=status),
            )  # fmt: skip
        except Exception:
            log.exception("test control %s failed", request.raw_path)
            response = Response(
                500,
                envelope("InternalServerError", "The test control failed; see the log.",
                         request_id=request_id, client_request_id=client_id),
            )  # fmt: skip
        out = [
            (b"content-length", str(len(response.body)).encode()),
            (b"request-id", request_id.encode()),
            (b"client-request-id", client_id.encode("latin-1")),
            (b"cache-control", b"no-store"),
            *headers,
            *response.headers,
        ]
        if response.content_type is not None:
            out.append((b"content-type", response.content_type))
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": response.body})

    async def answer(self, request: Request, scope: Scope, receive: Receive) -> Response:
        raise NotImplementedError


class Absent(_Edge):
    """Emulator mode off: every /_graphpost/ path is 404, whoever asks; nothing else runs."""

    async def answer(self, request: Request, scope: Scope, receive: Receive) -> Response:
        raise NotFoundError(
            f"Resource not found: '{request.raw_path[:200]}'. The test controls exist only in "
            "emulator mode (GRAPHPOST_EMULATOR=true)."
        )


class Controls(_Edge):
    """Emulator mode on: the test controls, for the clients ``allowed``."""

    def __init__(
        self,
        inner: ASGIApp,
        *,
        emulator: EmulatorService,
        directory: DirectoryService,
        tokens: TokenService,
        allowed: list[Network],
        token_lifetime: int,
        named_hosts: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(inner)
        self.named_hosts = frozenset(h.lower() for h in named_hosts)
        self.emulator = emulator
        self.directory = directory
        self.tokens = tokens
        self.allowed = allowed
        self.token_lifetime = token_lifetime

    def _admitted(self, scope: Scope) -> bool:
        return local_client(scope, self.allowed, self.named_hosts)  # DNS rebinding too

    async def answer(self, request: Request, scope: Scope, receive: Receive) -> Response:
        if not self._admitted(scope):
            raise AccessDeniedError(
                "The test controls answer only clients in GRAPHPOST_EMULATOR_CONTROLS_FROM "
                "(loopback by default) that name this server by an IP address, localhost, a "
                "one-label name or GRAPHPOST_PUBLIC_URL's host."
            )
        request.check()
        segments = request.segments()[1:]
        method = request.method
        if method not in ("GET", "HEAD", "DELETE"):
            request.body = await read_body(receive, MAX_BODY, request.headers.get("content-length"))
        name = segments[0].lower() if segments else ""
        if len(segments) > (2 if name == "faults" else 1):
            raise _not_found(request.raw_path)
        allowed = {
            "": ("GET",), "reset": ("POST",), "seed": ("POST",), "messages": ("GET",),
            "faults": ("DELETE",) if len(segments) == 2 else ("DELETE", "GET", "POST"),
            "clock": ("GET", "POST"), "token": ("POST",),
        }.get(name)  # fmt: skip
        if allowed is None:
            raise _not_found(request.raw_path)
        if method not in allowed:
            raise MethodNotAllowedError(
                f"The HTTP method '{method}' is not allowed here; allowed: {', '.join(allowed)}.",
                allowed=allowed,
            )
        if name == "":
            return _json(200, INDEX)
        if name == "reset":
            return await self._reset(request)
        if name == "seed":
            return await self._seed(request)
        if name == "messages":
            return await self._messages(request)
        if name == "faults":
            return await self._faults(request, segments[1] if len(segments) == 2 else None)
        if name == "clock":
            return self._clock(request)
        return await self._token(request)

    async def _reset(self, request: Request) -> Response:
        inp = request.json(ResetInput, allow_empty=True)
        tenants, count = await self.emulator.reset(inp.tenant)
        return _json(
            200,
            {
                "tenants": [t.domain for t in tenants],
                "mailboxes": count.mailboxes,
                "messages": count.messages,
                "submissions": count.submissions,
            },
        )

    async def _seed(self, request: Request) -> Response:
        inp = request.json(SeedInput)
        if len(inp.users) > 1000 or len(inp.messages) > 1000:
            raise InvalidInputError("At most 1000 users and 1000 messages per seed.")
        users = [
            SeedUser(u.user_principal_name, u.mail, u.display_name, u.password) for u in inp.users
        ]
        messages = []
        for i, m in enumerate(inp.messages):
            try:
                message = Request("POST", "", {}, {}, bytes(m.message)).json(MessageInput)
            except GraphpostError as exc:
                raise InvalidInputError(
                    f"messages[{i}].message: {exc.message}", target=f"messages[{i}].message"
                ) from None
            messages.append(SeedMessage(m.user, m.folder, message))
        made, stored = await self.emulator.seed(users, messages)
        return _json(
            201,
            {
                "users": [
                    {"id": u.id, "userPrincipalName": u.upn, "mail": u.mail,
                     "displayName": u.display_name}
                    for u in made
                ],
                "messages": [
                    {"id": s.id, "mailboxId": s.mailbox_id, "parentFolderId": s.folder_id}
                    for s in stored
                ],
            },
        )  # fmt: skip

    async def _messages(self, request: Request) -> Response:
        q = request.query
        unknown = set(q) - {"to", "from", "subject", "state", "wait"}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidInputError(
                f"Unknown query option '{name[:50]}'; use to, from, subject, state, wait.",
                target=name[:50],
            )
        states = None
        if q.get("state"):
            states = frozenset(s.strip().lower() for s in q["state"].split(","))
            if not states <= _STATES:
                raise InvalidInputError(
                    "'state' is delivered, deferred or failed (comma-separated).", target="state"
                )
        wait = 0.0
        if "wait" in q:
            try:
                wait = float(q["wait"])
            except ValueError:
                wait = -1.0
            if not 0 <= wait <= MAX_WAIT_SECONDS:
                raise InvalidInputError(
                    f"'wait' is a number of seconds from 0 to {MAX_WAIT_SECONDS:g}.",
                    target="wait",
                )
        for key in ("to", "from", "subject"):
            if len(q.get(key) or "") > 1000:
                raise InvalidInputError(f"'{key}' is at most 1000 characters.", target=key)
        query = DeliveredQuery(
            to=q.get("to") or None,
            sender=q.get("from") or None,
            subject=q.get("subject") or None,
            states=states,
        )
        found = await self.emulator.delivered(query, wait)
        return _json(200, {"value": [_delivered(d) for d in found]})

    async def _faults(self, request: Request, rule_id: str | None) -> Response:
        faults = self.emulator.faults
        if request.method == "GET":
            return _json(200, {"value": faults.describe()})
        if request.method == "DELETE":
            if rule_id is None:
                faults.clear()
            elif not faults.remove(rule_id):
                raise NotFoundError(f"No fault rule '{rule_id[:100]}'.")
            return Response(204, b"", content_type=None)
        inp = request.json(FaultInput)
        if inp.layer == "graph":
            if inp.status is None:
                raise InvalidInputError("A Graph fault needs 'status': 429, 503 or 504.")
            user = None
            if inp.user is not None:
                user = await self.directory.user(inp.user)
                if user is None:
                    raise UnknownUserError(f"No user '{inp.user[:100]}'.")
            rule: Any = faults.add_graph(
                status=inp.status, path=inp.path, method=inp.method, user=user,
                user_key=inp.user, retry_after=inp.retry_after, count=inp.count,
                probability=inp.probability,
            )  # fmt: skip
        else:
            if inp.recipient is None:
                raise InvalidInputError("An SMTP fault needs 'recipient' (an address or glob).")
            rule = faults.add_smtp(
                recipient=inp.recipient, code=inp.code, enhanced=inp.enhanced_code,
                text=inp.message, drop=inp.drop, count=inp.count, probability=inp.probability,
            )  # fmt: skip
        return _json(201, rule.describe())

    def _clock(self, request: Request) -> Response:
        if request.method == "POST":
            inp = request.json(ClockInput)
            self.emulator.advance_clock(inp.advance_seconds)
        return _json(200, _clock())

    async def _token(self, request: Request) -> Response:
        inp = request.json(TokenInput)
        lifetime = inp.lifetime or self.token_lifetime
        if not 60 <= lifetime <= self.tokens.max_lifetime:
            raise InvalidInputError(
                f"'lifetime' is 60 to {self.tokens.max_lifetime} seconds.", target="lifetime"
            )
        if (inp.user is None) == (inp.app is None):
            raise InvalidInputError("Give 'user' (a delegated token) or 'app' (an app's).")
        if inp.user is not None:
            user = await self.directory.user(inp.user)
            if user is None:
                raise UnknownUserError(f"No user '{inp.user[:100]}'.")
            token = self.tokens.issue_delegated(
                tenant_id=user.tenant_id, user_id=user.id, upn=user.upn,
                name=user.display_name, scopes=inp.scopes.split(), lifetime=lifetime,
            )  # fmt: skip
        else:
            assert inp.app is not None
            tenant = await self.directory.tenant(inp.tenant)
            if tenant is None:
                raise InvalidInputError(f"No tenant '{inp.tenant[:100]}'.", target="tenant")
            if not inp.app.strip() or len(inp.app) > 200 or not inp.app.isprintable():
                raise InvalidInputError("'app' is a name of 1 to 200 printable characters.")
            app = await self.directory.ensure_app(tenant, inp.app)
            token = self.tokens.issue_application(
                tenant_id=tenant.id, app_id=app.id, roles=inp.roles.split(), lifetime=lifetime
            )
        return _json(200, {"token_type": "Bearer", "access_token": token, "expires_in": lifetime})
