"""Messages: create a draft, read, list, update, delete. Shared by every edge."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec

from graphpost.domain import ids, message
from graphpost.domain.message import Attachment, DraftContext, Message, MessageInput
from graphpost.domain.query import MessageQuery, check_order_rule
from graphpost.domain.times import iso, now
from graphpost.errors import ConflictError, MalformedIdError, NotFoundError
from graphpost.services.directory import Mailbox
from graphpost.services.folders import NOT_FOUND, FolderService
from graphpost.store.ports import MailStore
from graphpost.store.records import AttachmentRow, MessageRow
from graphpost.types import Access

NAMES_SECONDS = 5.0
CONFLICT = (
    "The send or update operation could not be performed because the change key passed in the "
    "request does not match the current change key for the item."
)
_encode = msgspec.json.Encoder().encode
_decode_message = msgspec.json.Decoder(Message).decode
_headers_codec = msgspec.json.Decoder(list[message.Header])


def etag_matches(if_match: str | None, change_key: str) -> bool:
    """``If-Match`` as Graph reads it: ``*``, ``W/"key"``, ``"key"`` or the bare key."""
    if if_match is None:
        return True
    for part in if_match.split(","):
        tag = part.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/").strip('"')
        if tag == change_key:
            return True
    return False


def to_row(msg: Message, *, mailbox_id: str, created_at: int, received_at: int, sent_at: int,
           modified_at: int, headers: bytes | None) -> MessageRow:  # fmt: skip
    """The stored row of a message document: indexed columns plus the encoded document."""
    rows: list[tuple[str, str | None, str | None]] = []
    for kind, group in (
        ("to", msg.to_recipients),
        ("cc", msg.cc_recipients),
        ("bcc", msg.bcc_recipients),
        ("rt", msg.reply_to),
    ):
        rows.extend((kind, r.email_address.name, r.email_address.address) for r in group)
    frm = msg.from_.email_address if msg.from_ else None
    snd = msg.sender.email_address if msg.sender else None
    return MessageRow(
        id=msg.id,
        mailbox_id=mailbox_id,
        folder_id=msg.parent_folder_id,
        created_at=created_at,
        modified_at=modified_at,
        received_at=received_at,
        sent_at=sent_at,
        is_read=msg.is_read,
        is_draft=msg.is_draft,
        has_attachments=msg.has_attachments,
        importance=msg.importance,
        inference=msg.inference_classification,
        flag_status=msg.flag.flag_status,
        subject=msg.subject,
        body_preview=msg.body_preview,
        from_name=frm.name if frm else None,
        from_address=frm.address if frm else None,
        sender_name=snd.name if snd else None,
        sender_address=snd.address if snd else None,
        internet_message_id=msg.internet_message_id,
        conversation_id=msg.conversation_id,
        change_key=msg.change_key,
        doc=_encode(msg),
        headers=headers,
        recipients=rows,
        categories=list(msg.categories),
    )


def new_row(
    msg: Message, *, mailbox_id: str, stamp: int, headers: list[message.Header]
) -> MessageRow:
    """The row of a message made now (created, received, sent and modified at ``stamp``)."""
    return to_row(
        msg,
        mailbox_id=mailbox_id,
        created_at=stamp,
        received_at=stamp,
        sent_at=stamp,
        modified_at=stamp,
        headers=_encode(headers) if headers else None,
    )


def decode(row: MessageRow) -> Message:
    return _decode_message(row.doc)


def headers_of(row: MessageRow) -> list[message.Header]:
    return _headers_codec.decode(row.headers) if row.headers else []


@dataclass(slots=True)
class Created:
    row: MessageRow
    extensions: list[bytes] = field(default_factory=list)


def attachment_row(a: Attachment, at: int) -> AttachmentRow:
    return AttachmentRow(a.id, a.name, a.content_type, a.size, a.is_inline, a.content_id, at,
                         a.content)  # fmt: skip


class MessageService:
    def __init__(self, store: MailStore, folders: FolderService, *, web_base: str) -> None:
        self.store = store
        self.folders = folders
        self.web_base = web_base
        # address (lower case) → (expiry, display name or None): directory names change rarely
        self._names: dict[str, tuple[float, str | None]] = {}

    async def display_names(self, addresses: list[str]) -> dict[str, str]:
        """Directory display names for addresses (cached for a few seconds)."""
        now_ = time.monotonic()
        out: dict[str, str] = {}
        missing: list[str] = []
        for address in addresses:
            key = address.lower()
            hit = self._names.get(key)
            if hit is None or hit[0] < now_:
                missing.append(key)
            elif hit[1] is not None:
                out[key] = hit[1]
        if missing:
            found = await self.store.display_names(missing)
            if len(self._names) > 50_000:
                self._names.clear()
            for key in missing:
                name = found.get(key)
                self._names[key] = (now_ + NAMES_SECONDS, name)
                if name is not None:
                    out[key] = name
        return out

    async def _find(self, mailbox: Mailbox, message_id: str) -> MessageRow:
        if not ids.is_well_formed(message_id):
            raise MalformedIdError("Id is malformed.")
        row = await self.store.get_message(mailbox.id, message_id)
        if row is None:
            raise NotFoundError(NOT_FOUND)
        return row

    async def create_draft(
        self,
        mailbox: Mailbox,
        inp: MessageInput,
        *,
        folder_key: str | None = None,
        threading: list[message.Header] | None = None,
        conversation_index: str | None = None,
        copied: list[Attachment] | None = None,
    ) -> Created:
        """POST /messages: a draft in Drafts (or the given folder), everything server-set.

        Replies and forwards add their threading headers, conversation and copied attachments.
        """
        mailbox.principal.require(Access.WRITE)
        if folder_key is None:
            folder_id = await self.folders.well_known_id(mailbox, "drafts")
        else:
            folder_id = (await self.folders.resolve(mailbox, folder_key)).id
        stamp = now()
        headers = (threading or []) + message.check_headers(inp.internet_message_headers or [])
        extensions = [message.extension(e) for e in inp.extensions or []]
        attachments = list(copied or []) + [
            message.file_attachment(a, stamp) for a in inp.attachments or []
        ]
        msg = await self.new_message(
            mailbox, inp, folder_id=folder_id, stamp=stamp, attachments=attachments,
            conversation_index=conversation_index,
        )  # fmt: skip
        row = new_row(msg, mailbox_id=mailbox.id, stamp=stamp, headers=headers)
        ext_docs = [(e["extensionName"], _encode(e)) for e in extensions]
        await self.store.insert_message(
            row,
            attachments=[attachment_row(a, stamp) for a in attachments],
            extensions=ext_docs,
        )
        return Created(row, [doc for _, doc in ext_docs])

    async def new_message(
        self,
        mailbox: Mailbox,
        inp: MessageInput,
        *,
        folder_id: str,
        stamp: int,
        attachments: list[Attachment],
        conversation_index: str | None = None,
    ) -> Message:
        """A new message of ``mailbox`` made from ``inp``: directory names, every server-set
        property (as a draft; a send turns it into a sent item)."""
        names = await self.display_names(message.addresses_of(inp))
        owner = message.EmailAddress(name=mailbox.user.display_name, address=mailbox.user.mail)
        ctx = DraftContext(
            message_id=ids.message_id(),
            folder_id=folder_id,
            owner=owner,
            now=stamp,
            web_base=self.web_base,
            domain=mailbox.user.mail.rsplit("@", 1)[-1],
            conversation_index=conversation_index,
        )
        msg = message.new_draft(inp, ctx, names)
        msg.has_attachments = any(not a.is_inline for a in attachments)
        return msg

    async def get(self, mailbox: Mailbox, message_id: str) -> MessageRow:
        mailbox.principal.require(Access.READ)
        return await self._find(mailbox, message_id)

    async def get_for(self, mailbox: Mailbox, message_id: str) -> MessageRow:
        """The message, for a caller whose own permission check has been done."""
        return await self._find(mailbox, message_id)

    async def list_messages(
        self, mailbox: Mailbox, query: MessageQuery, *, folder_key: str | None = None
    ) -> tuple[list[MessageRow], int | None, bool]:
        mailbox.principal.require(Access.READ)
        check_order_rule(query)
        folder_id = None
        if folder_key is not None:
            folder_id = (await self.folders.resolve(mailbox, folder_key)).id
        return await self.store.list_messages(mailbox.id, folder_id, query)

    async def update(
        self, mailbox: Mailbox, message_id: str, inp: MessageInput, *, if_match: str | None
    ) -> MessageRow:
        """PATCH: last writer wins unless the client sent If-Match (then 412 on a mismatch)."""
        mailbox.principal.require(Access.WRITE)
        names = await self.display_names(message.addresses_of(inp))
        for _ in range(5):
            row = await self._find(mailbox, message_id)
            if not etag_matches(if_match, row.change_key):
                raise ConflictError(CONFLICT)
            stamp = now()
            msg = message.apply_patch(decode(row), inp, names, stamp)
            new = to_row(
                msg,
                mailbox_id=mailbox.id,
                created_at=row.created_at,
                received_at=row.received_at,
                sent_at=row.sent_at,
                modified_at=stamp,
                headers=row.headers,
            )
            if await self.store.replace_message(new, expected_change_key=row.change_key):
                return new
        raise ConflictError(CONFLICT)

    async def move(
        self, mailbox: Mailbox, message_id: str, folder_id: str, *, if_match: str | None = None
    ) -> MessageRow:
        """Move to another folder. The id stays the same (Graph's ids change: ours don't)."""
        for _ in range(5):
            row = await self._find(mailbox, message_id)
            if not etag_matches(if_match, row.change_key):
                raise ConflictError(CONFLICT)
            stamp = now()
            msg = msgspec.structs.replace(
                decode(row),
                parent_folder_id=folder_id,
                change_key=ids.change_key(),
                last_modified_date_time=iso(stamp),
            )
            new = to_row(
                msg,
                mailbox_id=mailbox.id,
                created_at=row.created_at,
                received_at=row.received_at,
                sent_at=row.sent_at,
                modified_at=stamp,
                headers=row.headers,
            )
            if await self.store.move_message(new, folder_id, expected_change_key=row.change_key):
                return new
        raise ConflictError(CONFLICT)

    async def delete(self, mailbox: Mailbox, message_id: str, *, if_match: str | None) -> None:
        """DELETE: into Deleted Items; an item already there (or below) is gone for good."""
        mailbox.principal.require(Access.WRITE)
        row = await self._find(mailbox, message_id)
        if not etag_matches(if_match, row.change_key):
            raise ConflictError(CONFLICT)
        trash = await self.folders.well_known_id(mailbox, "deleteditems")
        if await self.store.is_within(mailbox.id, row.folder_id, trash):
            await self.store.delete_message(mailbox.id, message_id)
        else:
            await self.move(mailbox, message_id, trash, if_match=if_match)

    async def permanent_delete(self, mailbox: Mailbox, message_id: str) -> None:
        mailbox.principal.require(Access.WRITE)
        await self._find(mailbox, message_id)
        if not await self.store.delete_message(mailbox.id, message_id):
            raise NotFoundError(NOT_FOUND)

    async def attachment_items(self, row: MessageRow) -> list[Attachment]:
        """The message's attachments as domain values (for MIME and copies)."""
        return [
            Attachment(
                id=a.id,
                name=a.name,
                content_type=a.content_type,
                size=a.size,
                is_inline=a.is_inline,
                content_id=a.content_id,
                last_modified_date_time=iso(a.modified_at),
                content=a.content,
            )
            for a in await self.store.list_attachments(row.seq)
        ]

    async def attachments(self, row: MessageRow) -> list[AttachmentRow]:
        return await self.store.list_attachments(row.seq)

    async def extensions(self, row: MessageRow) -> list[bytes]:
        return await self.store.list_extensions(row.seq)
