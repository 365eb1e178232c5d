"""The mailbox web page's HTTP edge, in front of the Graph app: ``/`` (the page), ``/web/…``
(its script and style, its JSON endpoints, message bodies, attachments, raw MIME, server-sent
events, sign-in). Every other request goes on untouched.

    GET  /                                          the page (static HTML)
    GET  /web/static/{app.js,app.css}               its script and style
    GET  /web/signin, POST /web/signin              the sign-in form (not in open mode)
    POST /web/signout                               ends the session (CSRF form field)
    GET  /web/api/session                           who is looking, the CSRF token
    GET  /web/api/mailboxes                         tenants and the mailboxes the viewer sees
    GET  /web/api/mailboxes/{user}/folders          the folder tree with counts
    GET  /web/api/mailboxes/{user}/folders/{folder}/messages?limit=&cursor=
                                                    a page of the folder, newest first (keyset)
    GET  /web/api/mailboxes/{user}/search?q=&limit=&skip=   $search across the mailbox
    GET  /web/api/mailboxes/{user}/messages/{id}    headers, recipients, attachments, delivery
    GET  /web/api/mailboxes/{user}/messages/{id}/body[?remote=1]   the body (sandboxed CSP)
    GET  /web/api/mailboxes/{user}/messages/{id}/raw[?download=1]  the MIME ($value)
    GET  /web/api/mailboxes/{user}/messages/{id}/attachments/{a}   a download
    GET  /web/api/mailboxes/{user}/messages/{id}/cid/{cid}?t=      an inline image of the body
    GET  /web/api/mailboxes/{user}/events           server-sent events: the mailbox changed

Access: in emulator mode, clients in GRAPHPOST_EMULATOR_CONTROLS_FROM see every mailbox
without signing in; everyone else signs in with their graphpost password (the identity
service's sign-in, with its lock-out). A signed-in user sees their own mailbox, one named in
GRAPHPOST_WEB_ADMINS every mailbox. A mailbox, folder, message or attachment the viewer may not
see is 404, as one that does not exist. Every POST needs the session's CSRF token and an
Origin of this server."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import msgspec

from graphpost.asgi import (
    ASGIApp,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    local_client,
    read_body,
)
from graphpost.domain import times
from graphpost.domain.message import FILE, Recipient
from graphpost.domain.query import MessageQuery
from graphpost.domain.search import parse_search
from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    AuthenticationError,
    ConflictError,
    GraphpostError,
    InjectedFaultError,
    InjectedTimeoutError,
    InvalidInputError,
    MalformedIdError,
    MethodNotAllowedError,
    NotFoundError,
    RequestTimeoutError,
    RequestTooLargeError,
    SignInError,
    StoreError,
    ThrottledError,
)
from graphpost.ports.changes import ChangeLog
from graphpost.ports.directory import User
from graphpost.ports.folders import Folder
from graphpost.ports.messages import StoredMessage
from graphpost.ports.outbox import Attempt, Delivery, DeliveryState, QueueEntry
from graphpost.services.directory import DirectoryService, Mailbox
from graphpost.services.folders import FolderService
from graphpost.services.identity import IdentityService
from graphpost.services.messages import MessageService
from graphpost.services.queue import QUEUE_STATES, QueueService
from graphpost.services.sending import SendService
from graphpost.web.session import COOKIE, Session, Signer

log = logging.getLogger("graphpost.web")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HTML = b"text/html; charset=utf-8"
JSON = b"application/json; charset=utf-8"
PAGE_SIZE = 50
MAX_PAGE = 200
MAX_FOLDERS = 1000
# open event streams: per session (a browser), per client address (a proxy's clients share
# one), per process (each polls the change log once a second)
STREAM_CAPS = {"session": 8, "addr": 32, "all": 256}
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
STREAM_SECONDS = 3600.0  # a stream ends after this; the browser's EventSource reconnects
MAX_FORM = 16 * 1024
MAX_INT = 2**63 - 1  # the stores' integers: a larger sequence number is no row's
_encode = msgspec.json.Encoder().encode
_CURSOR = re.compile(r"(-?\d{1,12})\.(\d{1,19})", re.ASCII)
_SKIP = re.compile(r"s(\d{1,7})", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")
PAGE_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    b"frame-ancestors 'none'"
)
# what nothing of ours needs to run: downloads, raw MIME, images
INERT_CSP = b"default-src 'none'; sandbox; frame-ancestors 'none'"
# images a body may show without "load remote content": those it carries (data:, cid:)
_SAFE_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")
_FOLDER_ORDER = {name: i for i, name in enumerate(
    ("inbox", "drafts", "sentitems", "outbox", "deleteditems", "junkemail", "archive")
)}  # fmt: skip
_UNSHOWN = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_FILENAME_BAD = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')
_CID = re.compile(r"""(["'(\s=])cid:([^"'()\s<>]+)""", re.IGNORECASE)


def is_web_path(path: str) -> bool:
    return path in ("/", "", "/web", "/owa", "/owa/") or path.startswith("/web/")


def _static(name: str) -> bytes:
    return (resources.files("graphpost.web") / "static" / name).read_bytes()


def _json(value: Any, status: int = 200) -> Response:
    return Response(status, _encode(value), content_type=JSON)


def _who(r: Recipient | None) -> dict[str, str] | None:
    if r is None:
        return None
    return {"name": r.email_address.name or "", "address": r.email_address.address or ""}


def _people(rs: list[Recipient]) -> list[dict[str, str]]:
    return [w for w in (_who(r) for r in rs) if w is not None]


def safe_filename(name: str, fallback: str) -> str:
    """A file name a browser saves safely: no path, no control or quoting characters, no
    leading dot, at most 150 characters."""
    # nor an invisible one that changes what the name shows (U+202E turns "gpj.exe" around),
    # a line or paragraph separator, or a lone surrogate (no UTF-8 for the header)
    shown = "".join("\x00" if unicodedata.category(c) in _UNSHOWN else c for c in name)
    clean = _FILENAME_BAD.sub("_", shown).strip(" ._")[:150]
    return clean or fallback


def disposition(name: str) -> bytes:
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}".encode()


def _cursor(value: str | None) -> tuple[int, int] | int | None:
    """A list cursor: ``{received}.{seq}`` (a keyset position) or ``s{skip}`` (a search
    folder's page); None for the first page."""
    if not value:
        return None
    m = _CURSOR.fullmatch(value)
    if m and int(m.group(2)) <= MAX_INT:
        return int(m.group(1)), int(m.group(2))
    s = _SKIP.fullmatch(value)
    if s:
        return int(s.group(1))
    raise InvalidInputError("The cursor is not one this page gave out.", target="cursor")


def _digits(text: str, most: int) -> bool:
    """Whether ``text`` is 1 to ``most`` ASCII digits (``str.isdigit`` also takes ``²`` and
    other digits ``int`` refuses)."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def _limit(query: dict[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return PAGE_SIZE
    if not _digits(text, 4) or not 1 <= int(text) <= MAX_PAGE:
        raise InvalidInputError(f"limit must be a number from 1 to {MAX_PAGE}.", target="limit")
    return int(text)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a signed-in ``user`` (None: the emulator's open page) and whether they
    see every mailbox."""

    user: User | None
    admin: bool
    session: Session


class _NotSignedIn(Exception):
    pass


class Listed(msgspec.Struct, rename="camel"):
    """What a list row shows of a message's document: decoding only these skips the body
    (msgspec passes over fields a Struct does not name without building them)."""

    received_date_time: str
    subject: str | None
    body_preview: str
    is_read: bool
    is_draft: bool
    has_attachments: bool
    importance: str
    sender: Recipient | None
    from_: Recipient | None = msgspec.field(name="from", default=None)
    to_recipients: list[Recipient] = msgspec.field(default_factory=list)


_decode_listed = msgspec.json.Decoder(Listed).decode


def _listed(stored: StoredMessage) -> Listed:
    return _decode_listed(stored.document)


def _summary(stored: StoredMessage, doc: Listed, received: int | None) -> dict[str, Any]:
    return {
        "id": stored.id,
        "folderId": stored.folder_id,
        "from": _who(doc.from_ or doc.sender),
        "to": _people(doc.to_recipients)[:3],
        "subject": doc.subject or "",
        "preview": doc.body_preview,
        "receivedDateTime": doc.received_date_time,
        "isRead": doc.is_read,
        "isDraft": doc.is_draft,
        "hasAttachments": doc.has_attachments,
        "importance": doc.importance,
        "cursor": None if received is None else f"{received}.{stored.seq}",
    }


def _delivery(d: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "id": str(d.seq),
        "recipient": d.recipient,
        "route": d.route.value,
        "state": d.state.value,
        "attempts": d.attempts,
        "lastCode": d.last_code,
        "lastEnhancedCode": d.last_enhanced,
        "lastResponse": d.last_response,
        "nextAttemptDateTime": None if d.state.final else times.iso(d.next_attempt_ms // 1000),
        "history": [
            {
                "at": times.iso(a.at_ms // 1000),
                "outcome": a.outcome.value,
                "code": a.code,
                "enhancedCode": a.enhanced,
                "response": a.response,
            }
            for a in attempts
            if a.delivery_seq == d.seq
        ],
    }


def _states(text: str | None) -> tuple[DeliveryState, ...]:
    if not text:
        return QUEUE_STATES
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = {s.value: s for s in (*QUEUE_STATES, DeliveryState.DELIVERED)}
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise InvalidInputError(
            "state must be queued, deferred, failed or delivered (comma-separated).",
            target="state",
        )
    return tuple(known[n] for n in names)


def _queued(e: QueueEntry) -> dict[str, Any]:
    out = _delivery(e.delivery, list(e.attempts))
    out.update(
        subject=e.subject or "",
        fromName=e.sender_name,
        senderMailboxId=e.sender_mailbox_id,
        messageId=e.message_id,
        internetMessageId=e.internet_message_id,
        inProgress=e.in_progress,
        queuedDateTime=times.iso(e.delivery.created_ms // 1000),
    )
    out["from"] = e.envelope_from
    return out


def _state_of(deliveries: list[Delivery] | list[DeliveryState]) -> str:
    """One mark for a sent message: failed if any recipient failed, then pending (queued or
    deferred), else delivered."""
    states = {d.value if isinstance(d, DeliveryState) else d.state.value for d in deliveries}
    if "failed" in states:
        return "failed"
    if "deferred" in states:
        return "deferred"
    if "queued" in states:
        return "queued"
    return "delivered"


class WebEdge:
    def __init__(
        self,
        inner: ASGIApp,
        *,
        directory: DirectoryService,
        folders: FolderService,
        messages: MessageService,
        sending: SendService,
        queue: QueueService,
        identity: IdentityService,
        changes: ChangeLog,
        signer: Signer,
        open_networks: list[Network] | None,
        admins: frozenset[str],
        session_seconds: float,
        open_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.inner = inner
        self.directory = directory
        self.folders = folders
        self.messages = messages
        self.sending = sending
        self.queue = queue
        self.identity = identity
        self.changes = changes
        self.signer = signer
        self.open_networks = open_networks  # emulator mode: who sees the page unsigned
        self.open_hosts = frozenset(h.lower() for h in open_hosts)  # and by which names
        self.admins = admins
        self.session_seconds = session_seconds
        self.closing = False  # the server is stopping: event streams end
        self._streams: dict[str, int] = {}

    def close(self) -> None:
        """End every event stream at its next poll (the server is shutting down)."""
        self.closing = True

    # ------------------------------------------------------------------ plumbing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope.get("path", "")):
            await self.inner(scope, receive, send)
            return
        request = Request.from_scope(scope)
        try:
            request.check()
            if request.method == "POST":
                request.body = await read_body(
                    receive, MAX_FORM, request.headers.get("content-length")
                )
            response = await self.answer(request, scope, receive, send)
        except _NotSignedIn:
            if request.segments()[:2] == ["web", "api"]:
                response = _json(
                    {"error": {"code": "NotSignedIn", "message": "Sign in at /web/signin."}}, 401
                )
            else:
                response = Response(303, b"", content_type=None,
                                    headers=[(b"location", b"/web/signin")])  # fmt: skip
        except GraphpostError as exc:
            status, code = _status(exc)
            message = exc.message
            if status >= 500:  # the store's own words stay in the log
                log.warning("web page request %s failed: %r", request.raw_path[:200], exc)
                message = (
                    "See the server log." if status == 500
                    else "The mail store is unavailable for the moment; try again."
                )  # fmt: skip
            response = _json({"error": {"code": code, "message": message}}, status)
        except Exception:
            log.exception("web page request %s failed", request.raw_path[:200])
            response = _json(
                {"error": {"code": "InternalServerError", "message": "See the server log."}}, 500
            )
        if response is None:  # streamed already (server-sent events)
            return
        await _send(send, response)

    def _admitted(self, scope: Scope) -> bool:
        if self.open_networks is None:
            return False
        return local_client(scope, self.open_networks, self.open_hosts)

    def _secure(self, scope: Scope) -> bool:
        return scope.get("scheme") == "https"

    def _cookie(self, value: str, scope: Scope, max_age: int) -> tuple[bytes, bytes]:
        secure = "; Secure" if self._secure(scope) else ""
        return (
            b"set-cookie",
            f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}"
            f"{secure}".encode(),
        )

    def _session_of(self, request: Request) -> Session | None:
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                found = self.signer.session(value)
                if found is not None:
                    return found
        return None

    async def _viewer(self, request: Request, scope: Scope) -> tuple[Viewer, bytes | None]:
        """Who is looking, and a new session cookie to set (the open page's first visit)."""
        session = self._session_of(request)
        if session is not None and session.user_id:
            user = await self.directory.user(session.user_id)
            if user is not None and user.id == session.user_id:
                admin = user.upn.lower() in self.admins or user.mail.lower() in self.admins
                return Viewer(user, admin, session), None
        if self._admitted(scope):
            if session is not None and not session.user_id:
                return Viewer(None, True, session), None
            session, value = self.signer.new_session("", self.session_seconds)
            cookie = self._cookie(value, scope, int(self.session_seconds))
            return Viewer(None, True, session), cookie[1]
        raise _NotSignedIn

    def _check_post(self, request: Request, scope: Scope, token: str | None, csrf: str) -> None:
        """A state-changing request: from a page of this server, carrying the session's CSRF
        token. "From this server": an ``Origin`` of this scheme and host; or, as a browser
        sends a form's POST from a page with ``Referrer-Policy: no-referrer`` (``Origin:
        null``, or none), ``Sec-Fetch-Site: same-origin``, a header no page can set."""
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        scheme = "https" if self._secure(scope) else "http"
        site = request.headers.get("sec-fetch-site")
        ours = origin == f"{scheme}://{host}"
        if not ours and not (origin in (None, "null") and site == "same-origin"):
            raise AccessDeniedError(
                "This request did not come from the mailbox page of this server (Origin)."
            )
        if site is not None and site not in ("same-origin", "none"):
            raise AccessDeniedError("This request did not come from the mailbox page.")
        if not token or not csrf or not hmac.compare_digest(token.encode(), csrf.encode()):
            raise AccessDeniedError("The request's CSRF token is missing or wrong; reload.")

    async def _mailbox(self, viewer: Viewer, key: str) -> Mailbox:
        """The mailbox ``key`` names, opened for reading, if the viewer may see it; 404 for
        one they may not, as for one that does not exist."""
        user = await self.directory.user(key) if 0 < len(key) <= 320 else None
        if user is None or (
            not viewer.admin and (viewer.user is None or viewer.user.id != user.id)
        ):
            raise NotFoundError("No such mailbox.")
        return Mailbox.reader(user)

    # ------------------------------------------------------------------ routing

    async def answer(
        self, request: Request, scope: Scope, receive: Receive, send: Send
    ) -> Response | None:
        parts = request.segments()
        method = request.method
        if not parts or parts == ["web"]:
            _only(method, "GET", "HEAD")
            try:
                viewer, cookie = await self._viewer(request, scope)
            except _NotSignedIn:
                return Response(303, b"", content_type=None,
                                headers=[(b"location", b"/web/signin")])  # fmt: skip
            del viewer
            page = Response(200, _static("index.html"), content_type=HTML)
            if cookie is not None:
                page.headers.append((b"set-cookie", cookie))
            return page
        if parts == ["owa"]:  # a message's webLink
            _only(method, "GET", "HEAD")
            try:
                viewer, _ = await self._viewer(request, scope)
            except _NotSignedIn:
                return Response(303, b"", content_type=None,
                                headers=[(b"location", b"/web/signin")])  # fmt: skip
            return await self._web_link(viewer, request.query.get("ItemID", ""))
        if parts[1] == "static" and len(parts) == 3:
            _only(method, "GET", "HEAD")
            kind = {"app.js": b"text/javascript; charset=utf-8",
                    "app.css": b"text/css; charset=utf-8"}.get(parts[2])  # fmt: skip
            if kind is None:
                raise NotFoundError("No such file.")
            return Response(200, _static(parts[2]), content_type=kind)
        if parts[1] == "signin" and len(parts) == 2:
            return await self._signin(request, scope)
        if parts[1] == "signout" and len(parts) == 2:
            _only(method, "POST")
            viewer, _ = await self._viewer(request, scope)
            form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
            token = form.get("csrf") or request.headers.get("x-csrf-token")
            self._check_post(request, scope, token, viewer.session.csrf)
            return Response(303, b"", content_type=None, headers=[
                (b"location", b"/web/signin"), self._cookie("", scope, 0)])  # fmt: skip
        if parts[1] != "api" or len(parts) < 3:
            raise NotFoundError("No such page.")
        image = await self.inline_image(request)
        if image is not None:
            return image
        viewer, cookie = await self._viewer(request, scope)
        answer = await self._api(request, scope, receive, send, viewer, parts[2:])
        if answer is not None and cookie is not None:
            answer.headers.append((b"set-cookie", cookie))
        return answer

    async def _api(
        self,
        request: Request,
        scope: Scope,
        receive: Receive,
        send: Send,
        viewer: Viewer,
        parts: list[str],
    ) -> Response | None:
        method = request.method
        head = parts[0]
        if head == "session" and len(parts) == 1:
            _only(method, "GET")
            user = viewer.user
            return _json({
                "user": None if user is None else {
                    "id": user.id, "displayName": user.display_name, "mail": user.mail},
                "admin": viewer.admin,
                "open": user is None,
                "csrf": viewer.session.csrf,
                "expiresDateTime": times.iso(viewer.session.expires),
            })  # fmt: skip
        if head == "queue":
            return await self._queue(request, scope, viewer, parts[1:])
        if head != "mailboxes":
            raise NotFoundError("No such endpoint.")
        if len(parts) == 1:
            _only(method, "GET")
            return await self._mailboxes(viewer)
        mailbox = await self._mailbox(viewer, parts[1])
        rest = parts[2:]
        if rest == ["folders"]:
            _only(method, "GET")
            return _json({"value": await self._folders(mailbox)})
        if len(rest) == 3 and rest[0] == "folders" and rest[2] == "messages":
            _only(method, "GET")
            return await self._list(mailbox, rest[1], request.query)
        if rest == ["search"]:
            _only(method, "GET")
            return await self._search(mailbox, request.query)
        if rest == ["events"]:
            _only(method, "GET")
            await self._events(mailbox, scope, receive, send, viewer)
            return None
        if len(rest) >= 2 and rest[0] == "messages":
            return await self._message(request, scope, mailbox, rest[1], rest[2:])
        raise NotFoundError("No such endpoint.")

    async def _web_link(self, viewer: Viewer, message_id: str) -> Response:
        """``/owa/?ItemID=…`` (a message's ``webLink``): the page with that message open, in
        the first mailbox the viewer sees that holds it."""
        if not 0 < len(message_id) <= 512:
            raise NotFoundError("No such message.")
        users = [viewer.user] if not viewer.admin and viewer.user else []
        if viewer.admin:
            users = await self.directory.users()
        for user in users:
            mailbox = Mailbox.reader(user)
            try:
                if await self.messages.exists(mailbox, message_id):
                    target = f"/#/{quote(user.id, safe='')}/{quote(message_id, safe='')}"
                    return Response(303, b"", content_type=None,
                                    headers=[(b"location", target.encode())])  # fmt: skip
            except (NotFoundError, MalformedIdError):
                break
        raise NotFoundError("No such message.")

    # ------------------------------------------------------------------ the outbound queue

    async def _queue(
        self, request: Request, scope: Scope, viewer: Viewer, parts: list[str]
    ) -> Response:
        """The queue: an admin (and the emulator's open page) sees every sender's deliveries,
        a user their own mailbox's; "retry now" and "delete" likewise."""
        own = None if viewer.admin else (viewer.user.id if viewer.user else "")
        if not parts:
            _only(request.method, "GET")
            states = _states(request.query.get("state"))
            cursor = request.query.get("cursor")
            if cursor is not None and not (_digits(cursor, 19) and int(cursor) <= MAX_INT):
                raise InvalidInputError("The cursor is not one this page gave out.")
            page = await self.queue.page(
                states, mailbox_id=own, before=int(cursor) if cursor else None,
                limit=_limit(request.query),
            )  # fmt: skip
            counts = await self.queue.counts() if own is None else None
            return _json({
                "value": [_queued(e) for e in page.entries],
                "nextCursor": None if page.next_before is None else str(page.next_before),
                "counts": None if counts is None else {k.value: v for k, v in counts.items()},
            })  # fmt: skip
        if len(parts) != 2 or parts[1] not in ("retry", "delete"):
            raise NotFoundError("No such endpoint.")
        _only(request.method, "POST")
        self._check_post(request, scope, request.headers.get("x-csrf-token"), viewer.session.csrf)
        if not _digits(parts[0], 19) or int(parts[0]) > MAX_INT:
            raise NotFoundError("No such delivery in the queue.")
        seq = int(parts[0])
        entry = await self.queue.get(seq)
        if own is not None and entry.sender_mailbox_id != own:
            raise NotFoundError(f"There is no delivery {seq} in the queue.")
        done = await (self.queue.retry(seq) if parts[1] == "retry" else self.queue.delete(seq))
        return _json(_queued(done))

    # ------------------------------------------------------------------ sign-in

    async def _signin(self, request: Request, scope: Scope) -> Response:
        if request.method == "GET":
            try:
                viewer, _ = await self._viewer(request, scope)
                if viewer.user is not None or self._admitted(scope):
                    return Response(303, b"", content_type=None, headers=[(b"location", b"/")])
            except _NotSignedIn:
                pass
            return self._signin_page(scope, None)
        _only(request.method, "GET", "POST")
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        pre = self._session_of(request)
        # login CSRF: the form's token is the pre-session's (the cookie the form page set)
        self._check_post(request, scope, form.get("csrf"), pre.csrf if pre else "")
        username = form.get("username", "").strip()
        if "\x00" in username or "\x00" in form.get("password", ""):  # no store keeps U+0000
            return self._signin_page(
                scope, "The user name or password contains a NUL character.", status=400
            )
        try:
            user = await self.identity.sign_in_page(username, form.get("password", ""))
        except SignInError as exc:
            return self._signin_page(scope, exc.message, status=400 if exc.status < 500 else 503)
        _, value = self.signer.new_session(user.id, self.session_seconds)
        cookie = self._cookie(value, scope, int(self.session_seconds))
        return Response(303, b"", content_type=None, headers=[(b"location", b"/"), cookie])

    def _signin_page(self, scope: Scope, error: str | None, status: int = 200) -> Response:
        from html import escape

        pre, value = self.signer.new_session("", 1800)
        note = f'<p class="error" id="signin-error">{escape(error)}</p>' if error else ""
        html = (
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign in — graphpost"
            '</title><meta name=viewport content="width=device-width, initial-scale=1">'
            '<link rel=icon href="data:,"><link rel=stylesheet href="/web/static/app.css"></head>'
            '<body class="signin">'
            '<main class="signin-box"><h1>graphpost mailboxes</h1>'
            f'{note}<form method=post action="/web/signin" id="signin-form">'
            f'<input type=hidden name=csrf value="{escape(pre.csrf)}">'
            "<label for=username>User name</label>"
            "<input id=username name=username type=text autocomplete=username required>"
            "<label for=password>Password</label>"
            "<input id=password name=password type=password autocomplete=current-password "
            "required><button type=submit id=signin-submit>Sign in</button></form>"
            "</main></body></html>"
        )
        return Response(status, html.encode(), content_type=HTML,
                        headers=[self._cookie(value, scope, 1800)])  # fmt: skip

    # ------------------------------------------------------------------ reading

    async def _mailboxes(self, viewer: Viewer) -> Response:
        tenants = []
        if viewer.admin:
            for tenant in await self.directory.tenants():
                users = await self.directory.users(tenant.id)
                tenants.append((tenant, users))
        elif viewer.user is not None:
            own = await self.directory.tenant(viewer.user.tenant_id)
            if own is not None:
                tenants.append((own, [viewer.user]))
        return _json({
            "value": [
                {"id": t.id, "domain": t.domain, "users": [
                    {"id": u.id, "displayName": u.display_name, "mail": u.mail,
                     "userPrincipalName": u.upn} for u in users]}
                for t, users in tenants
            ]
        })  # fmt: skip

    async def _folders(self, mailbox: Mailbox) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        async def walk(parent: str | None, depth: int) -> None:
            if depth > 12 or len(out) >= MAX_FOLDERS:
                return
            found, _ = await self.folders.children(
                mailbox, parent, include_hidden=False, top=MAX_FOLDERS, skip=0
            )
            # Outlook's order: the well-known folders people look at first, then by name
            found.sort(key=lambda f: (_FOLDER_ORDER.get(f.well_known or "", 99),
                                      f.display_name.lower()))  # fmt: skip
            for f in found:
                if len(out) >= MAX_FOLDERS:
                    return
                out.append(_folder(f, depth))
                if f.child_count:
                    await walk(f.id, depth + 1)

        await walk(None, 0)
        return out

    async def _list(self, mailbox: Mailbox, folder_key: str, query: dict[str, str]) -> Response:
        limit = _limit(query)
        cursor = _cursor(query.get("cursor"))
        after = cursor if isinstance(cursor, tuple) else None
        folder, found = await self.messages.newest_page(
            mailbox, folder_key, after=after, limit=limit + 1
        )
        items: list[dict[str, Any]]
        if folder.search is not None:  # a search folder: evaluated live, paged by offset
            skip = cursor if isinstance(cursor, int) else 0
            page, _, more = await self.messages.list_messages(
                mailbox, MessageQuery(top=limit, skip=skip), folder_key=folder.id
            )
            items = [_summary(m, _listed(m), None) for m in page]
            following = f"s{skip + limit}" if more else None
        else:
            more = len(found) > limit
            found = found[:limit]
            items = [_summary(m, _listed(m), received) for received, m in found]
            following = items[-1]["cursor"] if more and items else None
        if folder.well_known in ("sentitems", "outbox"):
            marks = await self.sending.delivery_marks(mailbox, [i["id"] for i in items])
            for item in items:
                states = marks.get(item["id"])
                item["delivery"] = _state_of(states) if states else None
        return _json({"folder": _folder(folder, 0), "value": items, "nextCursor": following})

    async def _search(self, mailbox: Mailbox, query: dict[str, str]) -> Response:
        text = query.get("q", "").strip()
        if not text:
            raise InvalidInputError("Type something to search for.", target="q")
        if len(text) > 1000:
            raise InvalidInputError("The search is too long (1000 characters).", target="q")
        limit = _limit(query)
        skip_text = query.get("skip", "0")
        if not _digits(skip_text, 5) or int(skip_text) > 10_000:
            raise InvalidInputError("skip must be a number up to 10000.", target="skip")
        skip = int(skip_text)
        q = MessageQuery(top=limit, skip=skip, search=parse_search(text, now=times.now()))
        found, _, more = await self.messages.list_messages(mailbox, q)
        return _json({
            "value": [_summary(m, _listed(m), None) for m in found],
            "nextSkip": skip + limit if more else None,
        })  # fmt: skip

    async def _message(
        self, request: Request, scope: Scope, mailbox: Mailbox, message_id: str, rest: list[str]
    ) -> Response:
        _only(request.method, "GET", "HEAD")
        try:
            stored = await self.messages.get(mailbox, message_id)
        except MalformedIdError:
            raise NotFoundError("No such message.") from None
        if not rest:
            return await self._details(mailbox, stored)
        if rest == ["body"]:
            return await self._body(request, mailbox, stored, self._secure(scope))
        if rest == ["raw"]:
            raw = await self.messages.mime(mailbox, stored.id)
            headers = [(b"content-security-policy", INERT_CSP)]
            if request.query.get("download") == "1":
                name = safe_filename(stored.message().subject or "", "message") + ".eml"
                headers.append((b"content-disposition", disposition(name)))
                return Response(200, raw, content_type=b"message/rfc822", headers=headers)
            return Response(200, raw, content_type=b"text/plain; charset=utf-8", headers=headers)
        if len(rest) == 2 and rest[0] == "attachments":
            return await self._attachment(mailbox, stored, rest[1])
        raise NotFoundError("No such endpoint.")

    async def _details(self, mailbox: Mailbox, stored: StoredMessage) -> Response:
        doc = stored.message()
        refs = await self.messages.attachment_refs(stored)
        base = (
            f"/web/api/mailboxes/{quote(mailbox.id, safe='')}/messages/{quote(stored.id, safe='')}"
        )
        delivery: dict[str, Any] | None = None
        try:
            submission, deliveries, attempts = await self.sending.delivery_status(
                mailbox, stored.id
            )
            delivery = {
                "submittedDateTime": times.iso(submission.created_ms // 1000),
                "from": submission.envelope_from,
                "state": _state_of(deliveries) if deliveries else None,
                "recipients": [_delivery(d, attempts) for d in deliveries],
            }
        except NotFoundError:
            pass
        return _json({
            "id": stored.id,
            "folderId": stored.folder_id,
            "subject": doc.subject or "",
            "from": _who(doc.from_),
            "sender": _who(doc.sender),
            "toRecipients": _people(doc.to_recipients),
            "ccRecipients": _people(doc.cc_recipients),
            "bccRecipients": _people(doc.bcc_recipients),
            "replyTo": _people(doc.reply_to),
            "receivedDateTime": doc.received_date_time,
            "sentDateTime": doc.sent_date_time,
            "internetMessageId": doc.internet_message_id,
            "isDraft": doc.is_draft,
            "isRead": doc.is_read,
            "importance": doc.importance,
            "bodyType": doc.body.content_type,
            "headers": [{"name": h.name, "value": h.value} for h in stored.headers()],
            "attachments": [
                {"id": a.id, "name": a.name, "contentType": a.content_type, "size": a.size,
                 "isInline": a.is_inline, "contentId": a.content_id, "kind": a.kind,
                 "url": None if a.kind == "reference"
                 else f"{base}/attachments/{quote(a.id, safe='')}"}
                for a in refs
            ],
            "bodyUrl": f"{base}/body",
            "rawUrl": f"{base}/raw",
            "delivery": delivery,
        })  # fmt: skip

    async def _body(
        self, request: Request, mailbox: Mailbox, stored: StoredMessage, secure: bool
    ) -> Response:
        """The body as its own document: no script ever (CSP ``script-src 'none'`` and
        ``sandbox``), images only those the message carries (inline ones through a signed
        link) unless ``remote=1``; framed only by the page."""
        from html import escape

        doc = stored.message()
        remote = request.query.get("remote") == "1"
        host = request.headers.get("host", "")
        scheme = "https" if secure else "http"
        cid_base = (
            f"/web/api/mailboxes/{quote(mailbox.id, safe='')}/messages/"
            f"{quote(stored.id, safe='')}/cid/"
        )
        if doc.body.content_type == "html":
            token = self.signer.link_token(f"{mailbox.id}|{stored.id}")

            def inline(m: re.Match[str]) -> str:
                # a cid: URL is URL-encoded (RFC 2392): the Content-ID is its decoded form
                cid = quote(unquote(m.group(2)), safe="@.-_")
                return f"{m.group(1)}{cid_base}{cid}?t={token}"

            html = _CID.sub(inline, doc.body.content)
        else:
            html = (
                "<!doctype html><meta charset=utf-8><pre style='white-space:pre-wrap;"
                f"font-family:inherit'>{escape(doc.body.content)}</pre>"
            )
        # the Host header goes into the policy: only a plain host[:port] (no ; or space)
        images = "data:" + (f" {scheme}://{host}{cid_base}" if _HOST.fullmatch(host) else "")
        extra = " https: http:" if remote else ""
        csp = (
            f"default-src 'none'; script-src 'none'; object-src 'none'; "
            f"style-src 'unsafe-inline'{extra}; img-src {images}{extra}; font-src data:{extra}; "
            "media-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; "
            "sandbox"
        )
        return Response(200, html.encode("utf-8"), content_type=HTML, headers=[
            (b"content-security-policy", csp.encode("latin-1", "replace")),
            (b"x-frame-options", b"SAMEORIGIN"),
            (b"x-dns-prefetch-control", b"off"),  # <link rel=dns-prefetch> is not CSP's
        ])  # fmt: skip

    async def _attachment(
        self, mailbox: Mailbox, stored: StoredMessage, attachment_id: str
    ) -> Response:
        refs = await self.messages.attachment_refs(stored)
        a = next((r for r in refs if r.id == attachment_id), None)
        if a is None or a.kind == "reference":
            raise NotFoundError("No such attachment.")
        headers = [(b"content-security-policy", INERT_CSP)]
        if a.kind != FILE:
            item = next(x for x in await self.messages.attachments(stored) if x.id == a.id)
            if item.item is None:
                raise NotFoundError("No such attachment.")
            raw = await self.messages.attachment_mime(item.item)
            name = safe_filename(a.name, "message") + ".eml"
            headers.append((b"content-disposition", disposition(name)))
            return Response(200, raw, content_type=b"message/rfc822", headers=headers)
        found = await self.messages.blob(a.blob) if a.blob is not None else None
        if found is None:
            raise NotFoundError("No such attachment.")
        size, stream = found
        headers.append((b"content-disposition", disposition(safe_filename(a.name, "attachment"))))
        return Response(200, content_type=b"application/octet-stream", headers=headers,
                        stream=stream, length=size)  # fmt: skip

    async def inline_image(self, request: Request) -> Response | None:
        """``…/cid/{content id}?t=``: an inline image of a body, for the sandboxed body
        document (which sends no cookie): the signed link is the access."""
        parts = request.segments()
        if not (len(parts) == 8 and parts[:3] == ["web", "api", "mailboxes"]
                and parts[4] == "messages" and parts[6] == "cid"):  # fmt: skip
            return None
        _only(request.method, "GET", "HEAD")
        user_id, message_id, cid = parts[3], parts[5], parts[7]
        if not self.signer.check_link(f"{user_id}|{message_id}", request.query.get("t")):
            raise NotFoundError("No such image.")
        user = await self.directory.user(user_id)
        if user is None or user.id != user_id:
            raise NotFoundError("No such image.")
        mailbox = Mailbox.reader(user)
        try:
            stored = await self.messages.get(mailbox, message_id)
        except MalformedIdError:
            raise NotFoundError("No such image.") from None
        refs = await self.messages.attachment_refs(stored)
        wanted = cid.strip("<>").lower()
        a = next(
            (r for r in refs if r.kind == FILE and (r.content_id or "").strip("<>").lower()
             == wanted), None,
        )  # fmt: skip
        ctype = (a.content_type or "").split(";")[0].strip().lower() if a else ""
        if a is None or a.blob is None or ctype not in _SAFE_IMAGES:
            raise NotFoundError("No such image.")
        found = await self.messages.blob(a.blob)
        if found is None:
            raise NotFoundError("No such image.")
        size, stream = found
        return Response(200, content_type=ctype.encode(), stream=stream, length=size,
                        headers=[(b"content-security-policy", INERT_CSP)])  # fmt: skip

    # ------------------------------------------------------------------ live updates

    async def _events(
        self, mailbox: Mailbox, scope: Scope, receive: Receive, send: Send, viewer: Viewer
    ) -> None:
        """Server-sent events: ``change`` (``{"seq"}``) when the mailbox's change log moves
        (polled every second: it sees every process's writes on both engines), a comment as
        heartbeat; the stream ends at the session's expiry, after an hour, or when the server
        stops."""
        client = scope.get("client")
        keys = [f"addr:{client[0] if client else '-'}", f"session:{viewer.session.csrf}", "all"]
        for k in keys:
            cap = STREAM_CAPS[k.split(":")[0]]
            if self._streams.get(k, 0) >= cap:
                whose = {"addr": "client address", "session": "session"}.get(k.split(":")[0])
                raise ThrottledError(
                    f"Too many open event streams (at most {cap} per "
                    f"{whose or 'server process'}); close a page of this mailbox.",
                    retry_after=5, limit=cap,
                )  # fmt: skip
        for k in keys:
            self._streams[k] = self._streams.get(k, 0) + 1
        gone = asyncio.Event()

        async def watch() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            seq = await self.changes.last_seq(mailbox.id)
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-store"), (b"x-accel-buffering", b"no"),
                *_security(PAGE_CSP)]})  # fmt: skip
            first = b"retry: 2000\nevent: ready\ndata: " + _encode({"seq": seq}) + b"\n\n"
            await send({"type": "http.response.body", "body": first, "more_body": True})
            loop = asyncio.get_running_loop()
            started = beat = loop.time()
            while not self.closing and not gone.is_set():
                with _suppress_timeout():
                    await asyncio.wait_for(gone.wait(), POLL_SECONDS)
                if gone.is_set() or self.closing:
                    break
                now = loop.time()
                if now - started > STREAM_SECONDS or viewer.session.expires <= times.wall():
                    break
                latest = await self.changes.last_seq(mailbox.id)
                if latest != seq:
                    seq = latest
                    body = b"event: change\ndata: " + _encode({"seq": seq}) + b"\n\n"
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    beat = now
                elif now - beat >= HEARTBEAT_SECONDS:
                    await send({"type": "http.response.body", "body": b": ping\n\n",
                                "more_body": True})  # fmt: skip
                    beat = now
            if not gone.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass  # the client went away mid-write
        finally:
            watcher.cancel()
            for k in keys:
                left = self._streams.get(k, 1) - 1
                if left:
                    self._streams[k] = left
                else:
                    self._streams.pop(k, None)


class _suppress_timeout:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: object, tb: object) -> bool:
        return kind is TimeoutError


def _folder(f: Folder, depth: int) -> dict[str, Any]:
    return {
        "id": f.id,
        "parentId": f.parent_id,
        "displayName": f.display_name,
        "wellKnownName": f.well_known,
        "depth": depth,
        "totalCount": f.total_count,
        "unreadCount": f.unread_count,
        "isSearchFolder": f.search is not None,
    }


def _only(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise MethodNotAllowedError(
            f"The HTTP method '{method}' is not allowed here; allowed: {', '.join(allowed)}.",
            allowed=allowed,
        )


def _status(exc: GraphpostError) -> tuple[int, str]:
    if isinstance(exc, (NotFoundError, MalformedIdError)):  # an id that is not one: no such
        return 404, "NotFound"
    if isinstance(exc, MethodNotAllowedError):
        return 405, "MethodNotAllowed"
    if isinstance(exc, RequestTooLargeError):
        return 413, "RequestTooLarge"
    if isinstance(exc, RequestTimeoutError):
        return 408, "RequestTimeout"
    if isinstance(exc, ThrottledError):
        return 429, "TooManyRequests"
    if isinstance(exc, AuthenticationError):
        return 401, "NotSignedIn"
    if isinstance(exc, AccessDeniedError):
        return 403, "Forbidden"
    if isinstance(exc, InvalidInputError):
        return 400, "BadRequest"
    if isinstance(exc, (AlreadyExistsError, ConflictError)):
        return 409, "Conflict"
    if isinstance(exc, InjectedTimeoutError):
        return 504, "GatewayTimeout"
    if isinstance(exc, (StoreError, InjectedFaultError)):  # the database is away: try again
        return 503, "ServiceUnavailable"
    return 500, "InternalServerError"


def _security(csp: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", csp),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]


async def _send(send: Send, response: Response) -> None:
    """The response with the security headers every answer of the page carries (a response
    that sets its own CSP or X-Frame-Options keeps it)."""
    own = {name for name, _ in response.headers}
    headers = [h for h in _security(PAGE_CSP) if h[0] not in own]
    headers += response.headers
    if b"cache-control" not in own:
        headers.append((b"cache-control", b"no-store"))
    if response.content_type is not None:
        headers.append((b"content-type", response.content_type))
    length = response.length if response.stream is not None else len(response.body)
    headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if response.stream is None:
        await send({"type": "http.response.body", "body": response.body})
        return
    async for chunk in response.stream():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
