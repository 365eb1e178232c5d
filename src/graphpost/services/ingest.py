"""Mail arriving in a mailbox: from inbound SMTP, from local delivery, and bounces.

Every path goes through here, so a message that arrives by SMTP and one delivered from a
local send are the same thing in the store.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

import msgspec

from graphpost.domain import body as bodies
from graphpost.domain import ids, mime
from graphpost.domain.message import (
    Attachment,
    EmailAddress,
    FollowupFlag,
    ItemBody,
    Message,
    Recipient,
    web_link,
)
from graphpost.domain.times import iso, now
from graphpost.services.messages import attachment_row, to_row
from graphpost.store.ports import MailStore
from graphpost.store.records import NewMessage, UserRecord

_encode = msgspec.json.Encoder().encode


class Parse(Protocol):
    """Reads received MIME (``services.parsing.MimeParser.parse``: off the loop, timed)."""

    def __call__(self, raw: bytes, *, trusted: bool = False) -> Awaitable[mime.Parsed]: ...


def _r(address: EmailAddress | None) -> Recipient | None:
    return Recipient(address) if address is not None else None


class IngestService:
    def __init__(
        self,
        store: MailStore,
        *,
        web_base: str,
        parse: Parse | None = None,
    ) -> None:
        self.store = store
        self.web_base = web_base
        self._parse = parse  # e.g. services.parsing.MimeParser: large mail off the loop
        self._inbox: dict[str, str] = {}

    async def inbox_id(self, user: UserRecord) -> str:
        found = self._inbox.get(user.id)
        if found is None:
            folder = await self.store.well_known_folder(user.id, "inbox")
            if folder is None:
                raise LookupError(f"mailbox {user.id} has no Inbox")
            found = self._inbox[user.id] = folder.id
        return found

    async def message_from_mime(
        self, raw: bytes, user: UserRecord, *, folder_id: str | None = None, trusted: bool = False
    ) -> NewMessage:
        """A received message for ``user``'s Inbox (or ``folder_id``), read from its MIME.
        ``trusted``: MIME this server wrote (a local copy of a send, a report)."""
        if self._parse is None:
            parsed = mime.parse(raw)
        else:
            parsed = await self._parse(raw, trusted=trusted)
        folder = folder_id or await self.inbox_id(user)
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
                parent_doc = msgspec.json.decode(parent.doc)
                index = ids.child_conversation_index(parent_doc["conversationIndex"], stamp)
            else:
                index = ids.conversation_index(stamp)
        content = parsed.body
        message_id = ids.message_id()
        attachments = [
            Attachment(
                id=ids.attachment_id(),
                name=name,
                content_type=ctype,
                size=len(data),
                is_inline=inline,
                content_id=cid,
                last_modified_date_time=iso(stamp),
                content=data,
            )
            for name, ctype, data, inline, cid in parsed.attachments
        ]
        msg = Message(
            id=message_id,
            created_date_time=iso(stamp),
            last_modified_date_time=iso(stamp),
            change_key=ids.change_key(),
            categories=[],
            received_date_time=iso(stamp),
            sent_date_time=iso(parsed.date or stamp),
            has_attachments=any(not a.is_inline for a in attachments),
            internet_message_id=parsed.message_id or ids.internet_message_id("graphpost.localhost"),
            subject=parsed.subject,
            body_preview=bodies.preview(parsed.body_type, content),
            importance=parsed.importance,
            parent_folder_id=folder,
            conversation_id=ids.conversation_id_for(index),
            conversation_index=index,
            is_delivery_receipt_requested=False,
            is_read_receipt_requested=any(
                h.name.lower() == "disposition-notification-to" for h in parsed.headers
            ),
            is_read=False,
            is_draft=False,
            web_link=web_link(self.web_base, message_id),
            inference_classification="focused",
            body=ItemBody(content_type=parsed.body_type, content=content),
            sender=_r(parsed.sender),
            from_=_r(parsed.from_),
            to_recipients=[Recipient(a) for a in parsed.to],
            cc_recipients=[Recipient(a) for a in parsed.cc],
            bcc_recipients=[],
            reply_to=[Recipient(a) for a in parsed.reply_to],
            flag=FollowupFlag("notFlagged"),
        )
        row = to_row(
            msg,
            mailbox_id=user.id,
            created_at=stamp,
            received_at=stamp,
            sent_at=parsed.date or stamp,
            modified_at=stamp,
            headers=_encode(parsed.headers) if parsed.headers else None,
        )
        return NewMessage(row, [attachment_row(a, stamp) for a in attachments])

    async def deliver(self, raw: bytes, users: list[UserRecord]) -> list[NewMessage]:
        """One received message into several mailboxes, in one transaction."""
        copies = [await self.message_from_mime(raw, user) for user in users]
        await self.store.insert_messages(copies)
        return copies
