"""Mail arriving in a mailbox: from inbound SMTP, from local delivery, and bounces.

Every path goes through here, so a message that arrives by SMTP and one delivered from a
local send are the same thing in the store.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

import msgspec

from graphpost.domain import extended, ids, mime
from graphpost.domain.times import now
from graphpost.ports.directory import User
from graphpost.ports.messages import MessageStore, NewMessage
from graphpost.services.folders import FolderService


class Parse(Protocol):
    """Reads received MIME (``services.parsing.MimeParser.parse``: off the loop, timed)."""

    def __call__(self, raw: bytes, *, trusted: bool = False) -> Awaitable[mime.Parsed]: ...


class IngestService:
    def __init__(
        self,
        store: MessageStore,
        folders: FolderService,
        *,
        web_base: str,
        parse: Parse | None = None,
    ) -> None:
        self.store = store
        self.folders = folders
        self.web_base = web_base
        self._parse = parse  # e.g. services.parsing.MimeParser: large mail off the loop

    async def message_from_mime(
        self, raw: bytes, user: User, *, folder_id: str | None = None, trusted: bool = False
    ) -> NewMessage:
        """A received message for ``user``'s Inbox (or ``folder_id``), read from its MIME.
        ``trusted``: MIME this server wrote (a local copy of a send, a report)."""
        if self._parse is None:
            parsed = mime.parse(raw)
        else:
            parsed = await self._parse(raw, trusted=trusted)
        folder = folder_id or await self.folders.well_known_of(user.id, "inbox")
        stamp = now()
        index = parsed.thread_index
        if index is None:
            replied = next(
                (h.value.strip() for h in parsed.headers if h.name.lower() == "in-reply-to"), None
            )
            parent = (
                await self.store.find_by_internet_message_id(user.id, replied) if replied else None
            )
            if parent is not None:
                index = ids.child_conversation_index(parent.message().conversation_index, stamp)
            else:
                index = ids.conversation_index(stamp)
        attachments = mime.attachments_of(parsed, stamp)
        if trusted:  # our own skeleton: a large file refers to the blob the sender's copy has
            attachments = [
                msgspec.structs.replace(a, blob=ref[0], size=ref[1]) if ref else a
                for a, ref in zip(attachments, parsed.blobs, strict=False)
            ]
        msg = mime.document(
            parsed,
            message_id=ids.message_id(),
            folder_id=folder,
            now=stamp,
            web_base=self.web_base,
            conversation_index=index,
            attachments=attachments,
            is_read=False,
            with_bcc=False,
        )
        headers = list(parsed.headers)
        props = extended.from_headers((h.name, h.value) for h in headers)
        return NewMessage(user.id, msg, headers, attachments, extended=props)

    async def deliver(self, raw: bytes, users: list[User]) -> list[NewMessage]:
        """One received message into several mailboxes, in one transaction."""
        copies = [await self.message_from_mime(raw, user) for user in users]
        await self.store.insert_messages(copies)
        return copies
