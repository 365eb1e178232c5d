"""Emulator mode's test controls, as use cases: reset, seed, what was delivered (with a
bounded wait woken by the delivery worker), fault rules for the Graph and SMTP layers, and the
clock. Everything here is per process and exists only when ``GRAPHPOST_EMULATOR`` is on."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from graphpost.auth.principal import Principal
from graphpost.domain import times
from graphpost.domain.message import MessageInput
from graphpost.errors import AlreadyExistsError, InvalidInputError, UnknownUserError
from graphpost.ports.directory import Tenant, User
from graphpost.ports.emulator import Delivered, EmulatorStore, ResetCount
from graphpost.ports.messages import StoredMessage
from graphpost.services.directory import DirectoryService, Mailbox
from graphpost.services.identity import IdentityService
from graphpost.services.messages import MessageService

EMULATOR_APP = "00000000-0000-0000-0000-00000000e4a1"  # the app seeded messages are made by
MAX_WAIT_SECONDS = 60.0
MAX_LISTED = 5000  # the latest outcomes a listing looks at
MAX_RULES = 1000
GRAPH_STATUSES = (429, 503, 504)
_GLOB = frozenset("*?[")


# ------------------------------------------------------------------------------ fault rules


def _path_matcher(pattern: str) -> Callable[[str], bool]:
    """A glob (``*``, ``?``, ``[…]``) over the whole path, else a prefix ending at a segment
    boundary; both case-insensitive, on the decoded path (``/v1.0/me/sendMail``)."""
    pattern = pattern.strip().lower()
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    if _GLOB & set(pattern):
        return lambda path: fnmatch.fnmatchcase(path, pattern)
    prefix = pattern.rstrip("/")
    return lambda path: path == prefix or path.startswith(prefix + "/") or not prefix


def _address_matcher(pattern: str) -> Callable[[str], bool]:
    pattern = pattern.strip().lower()
    if _GLOB & set(pattern):
        return lambda address: fnmatch.fnmatchcase(address.lower(), pattern)
    return lambda address: address.lower() == pattern


def _check_text(value: str | None, what: str, limit: int = 2000) -> None:
    if value is not None and (len(value) > limit or any(ord(c) < 32 or c == "\x7f" for c in value)):
        raise InvalidInputError(
            f"'{what}' must be at most {limit} characters, without control characters.",
            target=what,
        )


@dataclass(slots=True)
class Limit:
    """When a rule fires: ``count`` more times (None: no count), each with ``probability``."""

    count: int | None
    probability: float | None
    hits: int = 0

    @classmethod
    def of(cls, count: int | None, probability: float | None) -> Limit:
        if count is not None and not 1 <= count <= 1_000_000:
            raise InvalidInputError("'count' is a whole number from 1 to 1000000.", target="count")
        if probability is not None and not 0.0 < probability <= 1.0:
            raise InvalidInputError(
                "'probability' is a share of requests above 0 and at most 1.", target="probability"
            )
        if count is None and probability is None:
            count = 1
        return cls(count, probability)

    def fire(self, draw: Callable[[], float]) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        if self.probability is not None and draw() >= self.probability:
            return False
        if self.count is not None:
            self.count -= 1
        self.hits += 1
        return True

    @property
    def spent(self) -> bool:
        return self.count is not None and self.count <= 0


@dataclass(slots=True)
class GraphFault:
    """Requests to the Graph API answered 429 (with Retry-After), 503, or 504 after the work
    was done, instead of their own answer."""

    id: str
    status: int
    path: str | None
    method: str | None
    user: str | None  # as given (id, userPrincipalName or mail)
    user_id: str | None  # the user's object id
    retry_after: int | None
    limit: Limit
    matches_path: Callable[[str], bool] = field(repr=False)

    def matches(self, method: str, path: str, user_id: str | None) -> bool:
        return (
            (self.method is None or self.method == method)
            and self.matches_path(path)
            and (self.user_id is None or self.user_id == user_id)
        )

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id, "layer": "graph", "status": self.status, "path": self.path,
            "method": self.method, "user": self.user, "retryAfter": self.retry_after,
            "count": self.limit.count, "probability": self.limit.probability,
            "hits": self.limit.hits,
        }  # fmt: skip


@dataclass(slots=True)
class SmtpFault:
    """A relay delivery to matching recipients answered ``code`` (4xx or 5xx) without asking
    the relay, or the whole SMTP session dropped (``drop``: no answer for anyone in it)."""

    id: str
    recipient: str
    code: int | None
    enhanced: str | None
    text: str
    drop: bool
    limit: Limit
    matches: Callable[[str], bool] = field(repr=False)

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id, "layer": "smtp", "recipient": self.recipient, "code": self.code,
            "enhancedCode": self.enhanced, "message": self.text, "drop": self.drop,
            "count": self.limit.count, "probability": self.limit.probability,
            "hits": self.limit.hits,
        }  # fmt: skip


class Faults:
    """The fault rules of this process; the first matching rule that fires answers."""

    def __init__(self, draw: Callable[[], float] = random.random) -> None:
        self.graph: list[GraphFault] = []
        self.smtp: list[SmtpFault] = []
        self._draw = draw

    @property
    def needs_user(self) -> bool:
        return any(r.user_id is not None for r in self.graph)

    def _room(self) -> None:
        if len(self.graph) + len(self.smtp) >= MAX_RULES:
            raise InvalidInputError(f"At most {MAX_RULES} fault rules at once; DELETE some.")

    def add_graph(
        self, *, status: int, path: str | None, method: str | None, user: User | None,
        user_key: str | None, retry_after: int | None, count: int | None,
        probability: float | None,
    ) -> GraphFault:  # fmt: skip
        if status not in GRAPH_STATUSES:
            raise InvalidInputError("'status' is 429, 503 or 504.", target="status")
        _check_text(path, "path")
        if method is not None and method.upper() not in (
            "GET", "POST", "PATCH", "PUT", "DELETE"
        ):  # fmt: skip
            raise InvalidInputError("'method' is GET, POST, PATCH, PUT or DELETE.", target="method")
        if retry_after is not None and not 0 <= retry_after <= 3600:
            raise InvalidInputError("'retryAfter' is 0 to 3600 seconds.", target="retryAfter")
        if status == 429 and retry_after is None:
            retry_after = 1
        limit = Limit.of(count, probability)
        self._room()
        rule = GraphFault(
            uuid.uuid4().hex, status, path, method.upper() if method else None, user_key,
            user.id if user else None, retry_after, limit, _path_matcher(path or "/"),
        )  # fmt: skip
        self.graph.append(rule)
        return rule

    def add_smtp(
        self, *, recipient: str, code: int | None, enhanced: str | None, text: str | None,
        drop: bool, count: int | None, probability: float | None,
    ) -> SmtpFault:  # fmt: skip
        _check_text(recipient, "recipient", 320)
        if not recipient.strip():
            raise InvalidInputError("'recipient' is an address or a glob.", target="recipient")
        if drop == (code is not None):
            raise InvalidInputError(
                "An SMTP fault has either 'code' (400 to 599) or 'drop': true.", target="code"
            )
        if code is not None and not 400 <= code <= 599:
            raise InvalidInputError("'code' is an SMTP reply code from 400 to 599.", target="code")
        _check_text(enhanced, "enhancedCode", 16)
        _check_text(text, "message", 500)
        if enhanced is not None and (
            not enhanced[:1].isdigit() or code is None or enhanced[0] != str(code)[0]
        ):
            raise InvalidInputError(
                "'enhancedCode' is like 4.7.1, of the same class as 'code'.", target="enhancedCode"
            )
        limit = Limit.of(count, probability)
        self._room()
        rule = SmtpFault(
            uuid.uuid4().hex, recipient.strip(), code, enhanced,
            text or ("connection dropped (emulated)" if drop else "refused (emulated)"),
            drop, limit, _address_matcher(recipient),
        )  # fmt: skip
        self.smtp.append(rule)
        return rule

    def pick_graph(self, method: str, path: str, user_id: str | None) -> GraphFault | None:
        path = path.lower()
        for rule in self.graph:
            if rule.matches(method, path, user_id) and rule.limit.fire(self._draw):
                if rule.limit.spent:
                    self.graph.remove(rule)
                return rule
        return None

    def pick_smtp(self, recipient: str) -> SmtpFault | None:
        for rule in self.smtp:
            if rule.matches(recipient) and rule.limit.fire(self._draw):
                if rule.limit.spent:
                    self.smtp.remove(rule)
                return rule
        return None

    def remove(self, rule_id: str) -> bool:
        before = len(self.graph) + len(self.smtp)
        self.graph = [r for r in self.graph if r.id != rule_id]
        self.smtp = [r for r in self.smtp if r.id != rule_id]
        return len(self.graph) + len(self.smtp) < before

    def clear(self) -> None:
        self.graph.clear()
        self.smtp.clear()

    def describe(self) -> list[dict[str, object]]:
        return [r.describe() for r in self.graph] + [r.describe() for r in self.smtp]


# ------------------------------------------------------------------------------ deliveries


class Signal:
    """Wakes the waiters of a long poll when the delivery worker of this process records an
    outcome (``notify`` is called on the loop)."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def future(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def forget(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)


@dataclass(frozen=True, slots=True)
class DeliveredQuery:
    to: str | None = None
    sender: str | None = None
    subject: str | None = None
    states: frozenset[str] | None = None

    def matches(self, d: Delivered) -> bool:
        def has(part: str | None, value: str | None) -> bool:
            return part is None or part.casefold() in (value or "").casefold()

        return (
            has(self.to, d.recipient)
            and has(self.sender, d.envelope_from)
            and has(self.subject, d.subject)
            and (self.states is None or d.state.value in self.states)
        )


@dataclass(frozen=True, slots=True)
class SeedUser:
    upn: str | None
    mail: str | None
    display_name: str | None
    password: str | None


@dataclass(frozen=True, slots=True)
class SeedMessage:
    user: str
    folder: str
    message: MessageInput


class EmulatorService:
    def __init__(
        self,
        store: EmulatorStore,
        directory: DirectoryService,
        messages: MessageService,
        identity: IdentityService,
        *,
        wake_worker: Callable[[], None] | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.messages = messages
        self.identity = identity
        self.faults = Faults()
        self.signal = Signal()
        self.wake_worker = wake_worker
        # forgets what this process cached of the mailboxes' settings (runtime wires it)
        self.on_reset: Callable[[], None] | None = None
        # with delivery workers in other processes (PostgreSQL), nothing here wakes a wait:
        # it looks again this often
        self.poll_seconds = poll_seconds
        # the read of the outcomes in flight, and when it began: the waits share it
        self._read: asyncio.Future[list[Delivered]] | None = None
        self._read_began = 0.0

    # ---- reset and seed

    async def reset(self, tenant_key: str | None) -> tuple[list[Tenant], ResetCount]:
        """Empty the mailboxes of one tenant or of all, one transaction per tenant; the fault
        rules go too (the clock never goes back)."""
        if tenant_key is None:
            tenants = await self.directory.tenants()
        else:
            tenant = await self.directory.tenant(tenant_key)
            if tenant is None:
                raise InvalidInputError(f"No tenant '{tenant_key[:100]}'.", target="tenant")
            tenants = [tenant]
        total = ResetCount(0, 0, 0)
        for tenant in tenants:
            done = await self.store.reset_tenant(tenant.id)
            total = ResetCount(
                total.mailboxes + done.mailboxes,
                total.messages + done.messages,
                total.submissions + done.submissions,
            )
        if tenant_key is None:
            self.faults.clear()
        if self.on_reset is not None:
            self.on_reset()
        return tenants, total

    async def seed(
        self, users: list[SeedUser], messages: list[SeedMessage]
    ) -> tuple[list[User], list[StoredMessage]]:
        """Users through the directory (one that exists already is kept as it is, its password
        set if given), then messages made as POST …/mailFolders/{folder}/messages makes them.
        Every message's user and folder is checked before the first message is written, so
        a seed naming one that does not exist writes none of its messages."""
        seeded = {k.lower() for u in users for k in (u.upn, u.mail) if k}
        for m in messages:
            if m.user.lower() not in seeded and await self.directory.user(m.user) is None:
                raise UnknownUserError(f"No user '{m.user[:100]}' to seed a message for.")
        made: list[User] = []
        for u in users:
            key = u.upn or u.mail
            if key is None:
                raise InvalidInputError("A seeded user needs 'userPrincipalName' or 'mail'.")
            user = await self.directory.user(key)
            if user is None:
                name = u.display_name or key.split("@", 1)[0]
                try:
                    user = await self.directory.add_user(
                        display_name=name, mail=u.mail or key, upn=u.upn
                    )
                except AlreadyExistsError:  # made meanwhile
                    user = await self.directory.user(key)
                    if user is None:
                        raise
            if u.password is not None:
                await self.identity.set_password(user.id, u.password)
            made.append(user)
        mailboxes: list[Mailbox] = []
        for m in messages:
            owner = await self.directory.user(m.user)
            if owner is None:
                raise UnknownUserError(f"No user '{m.user[:100]}' to seed a message for.")
            principal = Principal(
                tenant_id=owner.tenant_id, app_id=EMULATOR_APP, user_id=owner.id,
                permissions=frozenset({"Mail.ReadWrite"}), expires=0,
            )  # fmt: skip
            mailbox = Mailbox(owner, principal)
            await self.messages.folders.resolve(mailbox, m.folder)  # 400/404 before any write
            mailboxes.append(mailbox)
        stored: list[StoredMessage] = []
        for mailbox, m in zip(mailboxes, messages, strict=True):
            created = await self.messages.create_draft(mailbox, m.message, folder_key=m.folder)
            stored.append(created.message)
        return made, stored

    # ---- what was delivered

    async def _outcomes(self, since: float) -> list[Delivered]:
        """The latest outcomes, read at ``since`` (loop time) or later: a read in flight that
        began then is shared, else one is begun once that one ends. However many waits an
        outcome wakes, they read the outcomes once or twice between them, not once each."""
        while True:
            read = self._read
            if read is not None and self._read_began >= since:
                return await asyncio.shield(read)
            if read is not None and not read.done():
                await asyncio.wait([read])  # too old for us: the next one is ours
                continue
            self._read_began = asyncio.get_running_loop().time()
            self._read = asyncio.ensure_future(self.store.delivered(MAX_LISTED))
            # a failed read is reported to its waits and not kept for later ones
            self._read.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def delivered(self, query: DeliveredQuery, wait: float = 0.0) -> list[Delivered]:
        """The deliveries with an outcome that match, newest first; with ``wait``, until the
        first one matches or ``wait`` seconds have passed (woken by the worker here)."""
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise InvalidInputError(f"'wait' is 0 to {MAX_WAIT_SECONDS:g} seconds.", target="wait")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            waiter = self.signal.future()  # before looking: an outcome between is not missed
            try:
                latest = await self._outcomes(loop.time())
                found = [d for d in latest if query.matches(d)]
                left = deadline - loop.time()
                if found or left <= 0:
                    return found
                if self.poll_seconds is not None:
                    left = min(left, self.poll_seconds)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, left)
            finally:
                self.signal.forget(waiter)

    # ---- the clock

    def advance_clock(self, seconds: float) -> float:
        try:
            offset = times.advance(seconds)
        except ValueError as exc:
            raise InvalidInputError(str(exc).capitalize() + ".", target="advanceSeconds") from None
        if self.wake_worker is not None:
            self.wake_worker()  # retries now due go at once
        return offset
