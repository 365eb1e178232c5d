"""What a Graph route handler is given: the request, the opened mailbox and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from graphpost.api.render import Renderer
from graphpost.asgi import Request
from graphpost.services.delta import DeltaService
from graphpost.services.directory import Mailbox
from graphpost.services.folders import FolderService
from graphpost.services.mailbox import MailboxSettingsService
from graphpost.services.messages import MessageService
from graphpost.services.sending import SendService
from graphpost.services.subscriptions import SubscriptionService
from graphpost.services.uploads import UploadService


@dataclass(frozen=True, slots=True)
class Services:
    messages: MessageService
    folders: FolderService
    sending: SendService
    render: Renderer
    uploads: UploadService | None = None
    subscriptions: SubscriptionService | None = None
    delta: DeltaService | None = None
    settings: MailboxSettingsService | None = None


TEXT_BODY = 'outlook.body-content-type="text"'
MAX_PAGE_SIZE = 1000
COUNT_TYPE = b"text/plain;charset=utf-8"
"""A ``$count`` segment's answer: the number alone, as text."""


@dataclass(slots=True)
class Call:
    request: Request
    mailbox: Mailbox
    services: Services
    preference_applied: list[str]
    # the client prefers message bodies as text (Prefer: outlook.body-content-type="text")
    text_body: bool = field(init=False)

    def __post_init__(self) -> None:
        prefer = self.request.headers.get("prefer", "").lower()
        self.text_body = TEXT_BODY.replace('"', "") in prefer.replace('"', "")

    @property
    def user_path(self) -> str:
        """``users('<object id>')``: contexts name the user by id even for /me."""
        return f"users('{self.mailbox.id}')"

    def max_page_size(self) -> int | None:
        """``Prefer: odata.maxpagesize=N`` (1 to 1000; larger is taken as 1000), or None when
        absent or not a whole number (a preference the server does not understand is
        ignored, RFC 7240)."""
        for part in self.request.headers.get("prefer", "").split(","):
            name, _, value = part.strip().partition("=")
            if name.strip().lower() == "odata.maxpagesize":
                value = value.strip().strip('"')
                if value.isascii() and value.isdigit():  # not '²', which int() refuses
                    digits = value.lstrip("0")
                    wanted = int(digits or "0") if len(digits) <= 7 else MAX_PAGE_SIZE
                    if wanted > 0:
                        return min(wanted, MAX_PAGE_SIZE)
        return None

    def page_size(self, top: int) -> int:
        """The page size of a collection: ``$top`` (``top``, its default when absent), or
        ``odata.maxpagesize`` when that is asked for and smaller, or when ``$top`` is absent;
        ``Preference-Applied`` says so."""
        wanted = self.max_page_size()
        if wanted is None:
            return top
        applied = f"odata.maxpagesize={wanted}"
        if applied not in self.preference_applied:
            self.preference_applied.append(applied)
        if "$top" not in self.request.query:
            return wanted
        return min(top, wanted)

    def next_link(self, skip: int, top: int | None = None) -> str:
        """The next page: the same query with ``$skip`` (and ``$top``, when the page size did
        not come from it) moved on."""
        params = dict(self.request.query)
        params["$skip"] = str(skip)
        if top is not None:
            params["$top"] = str(top)
        query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in params.items())
        return f"{self.services.render.base}{self.request.raw_path}?{query}"


_SAFE = "$(),/:'"
