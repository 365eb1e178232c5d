"""What a Graph route handler is given: the request, the opened mailbox and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from graphpost.api.render import Renderer
from graphpost.asgi import Request
from graphpost.services.delta import DeltaService
from graphpost.services.directory import Mailbox
from graphpost.services.folders import FolderService
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


TEXT_BODY = 'outlook.body-content-type="text"'


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

    def next_link(self, skip: int) -> str:
        params = dict(self.request.query)
        params["$skip"] = str(skip)
        query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in params.items())
        return f"{self.services.render.base}{self.request.raw_path}?{query}"


_SAFE = "$(),/:'"
