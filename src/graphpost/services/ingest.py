"""Mail arriving in a mailbox: from inbound SMTP, from local delivery, and bounces.

Every path goes through here, so a message that arrives by SMTP and one delivered from a
local send are the same thing in the store, and the mailbox acts on both alike, in this order
(README, "What a mailbox does with a message it receives"):

1. inbox rules: not yet (issue 13, scope 3); they will run in ``message_from_mime`` on the
   copy before it is written, so that their moves and flags commit with the delivery;
2. Focused Inbox: ``inferenceClassification`` from the sender's override, else the default
   (``domain.arrival.classify``), set on the copy before it is written;
3. automatic replies: after the copy commits (``arrived``), through the outbox. As in
   Exchange, where they are server-side rules evaluated even after a rule that stops
   processing (MS-OXORULE, ``ST_ONLY_WHEN_OOF``), inbox rules will not stop them.

A non-delivery report (``arriving=False``) is neither classified nor answered.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

import msgspec

from graphpost.domain import arrival, extended, ids, mime
from graphpost.domain.times import now
from graphpost.ports.directory import User
from graphpost.ports.messages import MessageStore, NewMessage
from graphpost.services.folders import FolderService


class Parse(Protocol):
    """Reads received MIME (``services.parsing.MimeParser.parse``: off the loop, timed)."""

    def __call__(self, raw: bytes, *, trusted: bool = False) -> Awaitable[mime.Parsed]: ...


class Classifier(Protocol):
    """A sender's Focused Inbox override in a mailbox (``MailboxSettingsService``)."""

    def __call__(self, mailbox_id: str, address: str | None) -> Awaitable[str | None]: ...


class Responder(Protocol):
    """What runs once a delivered copy has committed (``AutomaticReplies.consider``)."""

    def __call__(self, user: User, copy: NewMessage, sender: str | None) -> Awaitable[bool]: ...


class IngestService:
    def __init__(
        self,
        store: MessageStore,
        folders: FolderService,
        *,
        web_base: str,
        parse: Parse | None = None,
        classify: Classifier | None = None,
    ) -> None:
        self.store = store
        self.folders = folders
        self.web_base = web_base
        self._parse = parse  # e.g. services.parsing.MimeParser: large mail off the loop
        self._classify = classify
        # set by runtime once the send service exists (automatic replies send through it)
        self.responder: Responder | None = None

    async def message_from_mime(
        self,
        raw: bytes,
        user: User,
        *,
        folder_id: str | None = None,
        trusted: bool = False,
        arriving: bool = False,
    ) -> NewMessage:
        """A received message for ``user``'s Inbox (or ``folder_id``), read from its MIME.
        ``trusted``: MIME this server wrote (a local copy of a send, a report). ``arriving``:
        a delivery to the mailbox (not a report of ours), which its Focused Inbox classifies."""
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
        if arriving:
            # 1. inbox rules will run here (not yet); 2. Focused Inbox:
            sender = msg.from_.email_address.address if msg.from_ is not None else None
            found = await self._classify(user.id, sender) if self._classify else None
            kind = arrival.classify(headers, found)
            if kind != msg.inference_classification:
                msg = msgspec.structs.replace(msg, inference_classification=kind)
        return NewMessage(user.id, msg, headers, attachments, extended=props)

    async def arrived(self, user: User, copy: NewMessage, sender: str | None) -> None:
        """After a delivered copy committed: 3. its automatic reply, if one is due (to
        ``sender``, the envelope's reverse path)."""
        if self.responder is not None:
            await self.responder(user, copy, sender)

    async def deliver(
        self, raw: bytes, users: list[User], *, sender: str | None = None
    ) -> list[NewMessage]:
        """One received message into several mailboxes, in one transaction; then what each
        mailbox does once it has it (its automatic reply to ``sender``)."""
        copies = [await self.message_from_mime(raw, user, arriving=True) for user in users]
        await self.store.insert_messages(copies)
        for user, copy in zip(users, copies, strict=True):
            await self.arrived(user, copy, sender)
        return copies
