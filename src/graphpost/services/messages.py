"""Messages: create a draft, read, list, update, move, copy, delete. Shared by every edge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from graphpost.auth.principal import DENIED
from graphpost.domain import extended, ids, message, mime
from graphpost.domain.extended import ExtendedProperty
from graphpost.domain.folders import ROOT
from graphpost.domain.message import (
    Attachment,
    DraftContext,
    EmailAddress,
    Message,
    MessageInput,
    Recipient,
)
from graphpost.domain.query import MessageQuery, check_access, check_order_rule
from graphpost.domain.search import SEARCH_RESULTS, without_full_read
from graphpost.domain.times import iso, now, parse_iso
from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BlobMissingError,
    ConflictError,
    ExtensionExistsError,
    InvalidInputError,
    InvalidOperationError,
    MalformedIdError,
    MimeUnreadableError,
    MoveCopyError,
    NotFoundError,
)
from graphpost.ports.folders import Folder
from graphpost.ports.messages import MessageStore, NewMessage, StoredMessage, Where
from graphpost.services.directory import DirectoryService, Mailbox
from graphpost.services.folders import NOT_FOUND, FolderService
from graphpost.services.ingest import Parse
from graphpost.services.parsing import ParseTimeoutError
from graphpost.types import Access

CONFLICT = (
    "The send or update operation could not be performed because the change key passed in the "
    "request does not match the current change key for the item."
)
COPY_BATCH = 100  # messages copied per transaction when a whole folder is copied
COPY_READS = 4  # messages of a step read at once (PostgreSQL: pooled connections, not all)
REWRITE_TRIES = 5  # a write that keeps meeting a concurrent one gives up with 409
NOT_A_MESSAGE = (
    "The MIME content is not an RFC 5322 message: it must begin with a header field "
    "(such as 'To: someone@example.com')."
)


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


def fresh_copies(attachments: list[Attachment], stamp: int) -> list[Attachment]:
    """Attachments carried into a new item (a copy, a forward): new ids, modified now."""
    return [
        msgspec.structs.replace(a, id=ids.attachment_id(), last_modified_date_time=iso(stamp))
        for a in attachments
    ]


def checked(a: Attachment) -> Attachment:
    """``a``, once its MIME could be written: an attached item whose addresses could not go
    out is refused when it is given, not when it is sent."""
    if a.kind == message.ITEM and a.item is not None:
        mime.item_mime(a.item)
    return a


def given_attachments(raw: list[dict[str, Any]] | None, stamp: int) -> list[Attachment]:
    """The attachments a client gives inside a message it creates or sends."""
    return [checked(message.attachment_input(a, stamp)) for a in raw or []]


@dataclass(slots=True)
class Created:
    message: StoredMessage
    extensions: list[dict[str, Any]] = field(default_factory=list)


class MessageService:
    def __init__(
        self,
        store: MessageStore,
        folders: FolderService,
        directory: DirectoryService,
        *,
        web_base: str,
        parse: Parse | None = None,
    ) -> None:
        self.store = store
        self.folders = folders
        self.directory = directory
        self.web_base = web_base
        self._parse = parse  # services.parsing.MimeParser: a client's MIME off the loop

    async def get(
        self, mailbox: Mailbox, message_id: str, *, access: Access = Access.READ
    ) -> StoredMessage:
        """The message, if the caller has ``access`` (read, or what the calling action needs)."""
        mailbox.principal.require(access)
        if not ids.is_well_formed(message_id):
            raise MalformedIdError("Id is malformed.")
        found = await self.store.get_message(mailbox.id, message_id)
        if found is None:
            raise NotFoundError(NOT_FOUND)
        return found

    async def exists(self, mailbox: Mailbox, message_id: str) -> bool:
        return await self.store.get_message(mailbox.id, message_id) is not None

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
            folder_id = (await self.folders.target(mailbox, folder_key)).id
        stamp = now()
        headers = (threading or []) + message.check_headers(inp.internet_message_headers or [])
        extensions = message.extensions(inp.extensions or [])
        props = extended.from_input(
            inp.single_value_extended_properties, inp.multi_value_extended_properties
        )
        attachments = list(copied or []) + given_attachments(inp.attachments or None, stamp)
        msg = await self.new_message(
            mailbox, inp, folder_id=folder_id, stamp=stamp, attachments=attachments,
            conversation_index=conversation_index,
        )  # fmt: skip
        stored = await self.store.insert_message(
            NewMessage(mailbox.id, msg, headers, attachments, extensions, props)
        )
        return Created(stored, extensions)

    # ------------------------------------------------------------ MIME in

    async def parse_mime(self, raw: bytes) -> mime.Parsed:
        """A client's MIME message (a create, sendMail, reply or forward in ``text/plain``),
        read like received mail: off the loop, timed; what is not a message is a 400."""
        if not mime.is_message(raw):
            raise MimeUnreadableError(NOT_A_MESSAGE)
        if self._parse is None:
            return mime.parse(raw)
        try:
            return await self._parse(raw)
        except (ParseTimeoutError, BrokenProcessPool) as exc:
            raise MimeUnreadableError(
                f"The MIME content could not be read: {exc or 'its parser failed'}."
            ) from None

    async def create_draft_from_mime(
        self, mailbox: Mailbox, raw: bytes, *, folder_key: str | None = None
    ) -> Created:
        """POST /messages with a base64 MIME body: a draft made of the MIME's headers, bodies
        and attachments (``sentDateTime`` is its Date, as Graph shows)."""
        mailbox.principal.require(Access.WRITE)
        if folder_key is None:
            folder_id = await self.folders.well_known_id(mailbox, "drafts")
        else:
            folder_id = (await self.folders.target(mailbox, folder_key)).id
        parsed = await self.parse_mime(raw)
        new = await self.draft_from_mime(mailbox, parsed, folder_id=folder_id, stamp=now())
        return Created(await self.store.insert_message(new))

    async def save(self, new: NewMessage) -> StoredMessage:
        """Insert a message a service made (a reply's draft from MIME)."""
        return await self.store.insert_message(new)

    async def draft_from_mime(
        self,
        mailbox: Mailbox,
        parsed: mime.Parsed,
        *,
        folder_id: str,
        stamp: int,
        threading: list[message.Header] | None = None,
        conversation_index: str | None = None,
        copied: list[Attachment] | None = None,
        fallback: MessageInput | None = None,
    ) -> NewMessage:
        """A new draft of ``mailbox`` from a parsed MIME message: its From (else the owner),
        Sender, To, Cc, Bcc, Reply-To, Subject, Date, Message-ID, importance, bodies (HTML
        when it has one), attachments (inline ones with their Content-ID) and headers.
        ``fallback`` (a reply's): the subject and recipients when the MIME has none.
        ``threading`` (a reply's or forward's) replaces the MIME's own In-Reply-To and
        References."""
        people = [parsed.from_, parsed.sender, *parsed.to, *parsed.cc, *parsed.bcc]
        people += parsed.reply_to
        unnamed = {a.address for a in people if a is not None and a.address and a.name == a.address}
        names = await self.directory.display_names(sorted(unnamed)) if unnamed else {}

        def one(a: EmailAddress) -> Recipient:
            if a.name == a.address and a.address:
                return Recipient(EmailAddress(names.get(a.address.lower(), a.address), a.address))
            return Recipient(EmailAddress(a.name, a.address))

        to = [one(a) for a in parsed.to]
        cc = [one(a) for a in parsed.cc]
        bcc = [one(a) for a in parsed.bcc]
        subject = parsed.subject
        if fallback is not None:
            if subject is None and isinstance(fallback.subject, str):
                subject = fallback.subject
            if not (to or cc or bcc):
                fallback_names = await self.directory.display_names(message.addresses_of(fallback))
                for group, given, prop in (
                    (to, fallback.to_recipients, "toRecipients"),
                    (cc, fallback.cc_recipients, "ccRecipients"),
                ):
                    if isinstance(given, list):
                        group += message.recipients(given, fallback_names, prop)
        owner = Recipient(EmailAddress(mailbox.user.display_name, mailbox.user.mail))
        from_ = one(parsed.from_) if parsed.from_ is not None else owner
        sender = one(parsed.sender) if parsed.sender is not None else from_
        attachments = list(copied or []) + mime.attachments_of(parsed, stamp)
        headers = list(parsed.headers)
        if threading is not None:
            mine = {h.name.lower() for h in threading}
            headers = threading + [h for h in headers if h.name.lower() not in mine]
        msg = message.item(
            message_id=ids.message_id(),
            folder_id=folder_id,
            now=stamp,
            web_base=self.web_base,
            conversation_index=conversation_index or parsed.thread_index
            or ids.conversation_index(stamp),
            attachments=attachments,
            internet_message_id=parsed.message_id
            or ids.internet_message_id(mailbox.user.mail.rsplit("@", 1)[-1]),
            subject=subject,
            body=message.ItemBody(content_type=parsed.body_type, content=parsed.body),
            sender=sender,
            from_=from_,
            to=to,
            cc=cc,
            bcc=bcc,
            reply_to=[one(a) for a in parsed.reply_to],
            is_read=True,
            is_draft=True,
            importance=parsed.importance,
            delivery_receipt=None,  # as Graph shows a MIME draft
            read_receipt=mime.asks_read_receipt(parsed),
            sent_at=parsed.date,
        )  # fmt: skip
        return NewMessage(mailbox.id, msg, headers, attachments)

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
        names = await self.directory.display_names(message.addresses_of(inp))
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
        return message.new_draft(inp, ctx, names, attachments)

    async def list_messages(
        self, mailbox: Mailbox, query: MessageQuery, *, folder_key: str | None = None
    ) -> tuple[list[StoredMessage], int | None, bool]:
        mailbox.principal.require(Access.READ)
        check_order_rule(query)
        if query.search is not None:
            return await self._search(mailbox, query, folder_key)
        where = await self._where(mailbox, folder_key)
        return await self.store.list_messages(mailbox.id, where, query)

    async def newest_page(
        self,
        mailbox: Mailbox,
        folder_key: str,
        *,
        after: tuple[int, int] | None,
        limit: int,
    ) -> tuple[Folder, list[tuple[int, StoredMessage]]]:
        """A page of a folder's messages, newest received first, after the keyset position
        ``after`` (received time, seq): the folder's index, never an OFFSET (the mailbox page
        at a million messages). A search folder has no such index: empty, use
        ``list_messages``."""
        mailbox.principal.require(Access.READ)
        folder = await self.folders.resolve(mailbox, folder_key)
        if folder.search is not None:
            return folder, []
        found = await self.store.delta_page(
            mailbox.id, folder.id, after=after, since=None, limit=limit
        )
        return folder, found

    async def _where(self, mailbox: Mailbox, folder_key: str | None) -> Where:
        """The messages of a folder (a search folder's: its saved filter over its sources,
        which a Mail.ReadBasic caller may not have read through), or of the mailbox."""
        if folder_key is None:
            return None
        folder = await self.folders.resolve(mailbox, folder_key)
        if folder.search is None:
            return folder.id
        scope = self.folders.scope(folder)
        check_access(MessageQuery(filter=scope.saved), basic_only=mailbox.principal.basic_only)
        return scope

    async def count(
        self, mailbox: Mailbox, query: MessageQuery, *, folder_key: str | None = None
    ) -> int:
        """``GET …/messages/$count``: how many messages match the query's $filter (or its
        $search: as many as a search lists, at most SEARCH_RESULTS)."""
        mailbox.principal.require(Access.READ)
        if query.search is not None:
            whole = replace(query, top=SEARCH_RESULTS, skip=0)
            found, _, _ = await self._search(mailbox, whole, folder_key)
            return len(found)
        where = await self._where(mailbox, folder_key)
        total, _ = await self.store.count_messages(mailbox.id, where, query.filter)
        return total

    async def _search(
        self, mailbox: Mailbox, query: MessageQuery, folder_key: str | None
    ) -> tuple[list[StoredMessage], int | None, bool]:
        """``$search``: Graph's rules. At most SEARCH_RESULTS results in all (pages past them
        are empty), newest first, no count; a caller without body access searches no body or
        attachment name (a restriction naming them was refused by ``check_access``)."""
        if query.skip >= SEARCH_RESULTS:
            return [], None, False
        narrowed = replace(
            query,
            top=min(query.top, SEARCH_RESULTS - query.skip),
            count=False,
            search=without_full_read(query.search)
            if query.search is not None and mailbox.principal.basic_only
            else query.search,
        )
        where = await self._where(mailbox, folder_key)
        found, _, more = await self.store.list_messages(mailbox.id, where, narrowed)
        return found, None, more and query.skip + narrowed.top < SEARCH_RESULTS

    async def _rewrite(
        self,
        mailbox: Mailbox,
        message_id: str,
        change: Callable[[Message, int], Message],
        *,
        if_match: str | None,
        extended: list[ExtendedProperty] | None = None,
    ) -> StoredMessage:
        """Apply ``change`` to the stored document and write it back if nobody wrote it
        meanwhile (else read it again and retry). With ``If-Match``, a mismatch is a 412."""
        for _ in range(REWRITE_TRIES):
            stored = await self.get(mailbox, message_id, access=Access.WRITE)
            if not etag_matches(if_match, stored.change_key):
                raise ConflictError(CONFLICT)
            new = change(stored.message(), now())
            written = await self.store.replace_message(
                mailbox.id, new, expected_change_key=stored.change_key, extended=extended or ()
            )
            if written is not None:
                return written
        raise ConflictError(CONFLICT)

    async def update(
        self, mailbox: Mailbox, message_id: str, inp: MessageInput, *, if_match: str | None
    ) -> StoredMessage:
        """PATCH: last writer wins unless the client sent If-Match (then 412 on a mismatch)."""
        mailbox.principal.require(Access.WRITE)
        names = await self.directory.display_names(message.addresses_of(inp))
        props = extended.from_input(
            inp.single_value_extended_properties, inp.multi_value_extended_properties
        )
        return await self._rewrite(
            mailbox,
            message_id,
            lambda msg, stamp: message.apply_patch(msg, inp, names, stamp),
            if_match=if_match,
            extended=props,
        )

    async def move(
        self, mailbox: Mailbox, message_id: str, destination: str, *, if_match: str | None = None
    ) -> StoredMessage:
        """Move to another folder (by id or well-known name). The id stays the same (Graph's
        ids change: ours don't)."""
        mailbox.principal.require(Access.WRITE)
        folder_id = (await self.folders.target(mailbox, destination)).id
        return await self._move_to(mailbox, message_id, folder_id, if_match=if_match)

    async def _move_to(
        self, mailbox: Mailbox, message_id: str, folder_id: str, *, if_match: str | None
    ) -> StoredMessage:
        return await self._rewrite(
            mailbox,
            message_id,
            lambda msg, stamp: msgspec.structs.replace(
                msg,
                parent_folder_id=folder_id,
                change_key=ids.change_key(),
                last_modified_date_time=iso(stamp),
            ),
            if_match=if_match,
        )

    async def copy(self, mailbox: Mailbox, message_id: str, destination: str) -> StoredMessage:
        """A new item (new id) in ``destination``, with the original's attachments, open
        extensions and extended properties."""
        mailbox.principal.require(Access.WRITE)
        folder = await self.folders.target(mailbox, destination)
        original = await self.get(mailbox, message_id, access=Access.WRITE)
        return await self.store.insert_message(await self._copy_of(original, folder.id, now()))

    async def _copy_of(self, original: StoredMessage, folder_id: str, stamp: int) -> NewMessage:
        """A new item (new id, created now) in ``folder_id`` with the original's document,
        headers, attachments (their blobs referred to, not copied), open extensions and
        extended properties."""
        new_id = ids.message_id()
        msg = msgspec.structs.replace(
            original.message(),
            id=new_id,
            parent_folder_id=folder_id,
            change_key=ids.change_key(),
            created_date_time=iso(stamp),
            last_modified_date_time=iso(stamp),
            web_link=message.web_link(self.web_base, new_id),
        )
        attachments = fresh_copies(await self.store.attachment_refs(original), stamp)
        return NewMessage(
            original.mailbox_id, msg, original.headers(), attachments,
            await self.store.extensions(original),
            await self.store.extended_properties(original),
        )  # fmt: skip

    async def copy_folder(self, mailbox: Mailbox, key: str, destination: str) -> Folder:
        """POST /mailFolders/{id}/copy: a new folder (new id) under ``destination`` with a copy
        of every message and subfolder, made in steps: the folders first (parents before
        children), then ``COPY_BATCH`` messages per transaction, so that a large folder
        never holds SQLite's one writer for long. A copy that fails midway is removed
        again (best effort) and the error answered."""
        mailbox.principal.require(Access.WRITE)
        source = await self.folders.resolve(mailbox, key)
        if source.well_known == ROOT:
            raise MoveCopyError("The move or copy operation failed: the root cannot be copied.")
        parent = await self.folders.target(mailbox, destination)
        if await self.folders.is_within(mailbox, parent.id, source.id):
            raise MoveCopyError(
                "The move or copy operation failed: a folder cannot be copied into itself or "
                "one of its subfolders."
            )
        tree = await self.folders.store.subtree(mailbox.id, source.id)
        made: dict[str, str] = {}  # source folder id → its copy's id
        try:
            for f in tree:
                new_parent = parent.id if f.id == source.id else made[f.parent_id or ""]
                copy = Folder(
                    ids.folder_id(), mailbox.id, new_parent, f.display_name, None, f.is_hidden,
                    search=f.search,
                )  # fmt: skip
                try:
                    await self.folders.store.create_folder(copy)
                except AlreadyExistsError:
                    raise AlreadyExistsError(
                        "A folder with the specified name already exists.", target="displayName"
                    ) from None
                made[f.id] = copy.id
            for f in tree:
                if f.search is None:
                    await self._copy_messages(mailbox, f.id, made[f.id])
        except BaseException:
            if source.id in made:  # the partial copy goes; the error is the answer
                with contextlib.suppress(Exception):
                    copied = await self.folders.store.get_folder(mailbox.id, made[source.id])
                    if copied is not None:
                        await self.folders.purge(mailbox, copied)
            raise
        return await self.folders.get(mailbox, made[source.id])

    async def _copy_messages(self, mailbox: Mailbox, source_id: str, target_id: str) -> None:
        gate = asyncio.Semaphore(COPY_READS)
        after = 0
        while True:
            batch = await self.store.messages_after(mailbox.id, source_id, after, COPY_BATCH)
            if not batch:
                return
            stamp = now()

            async def read(m: StoredMessage, stamp: int = stamp) -> NewMessage:
                async with gate:
                    return await self._copy_of(m, target_id, stamp)

            copies = list(await asyncio.gather(*(read(m) for m in batch)))
            # a message deleted while it was read may have lost its attachments before they
            # were read: only those still there now (so they were whole when read) are copied
            again = await self.store.messages_after(mailbox.id, source_id, after, COPY_BATCH)
            present = {m.seq for m in again}
            copies = [c for m, c in zip(batch, copies, strict=True) if m.seq in present]
            try:
                await self.store.insert_messages(copies)
            except BlobMissingError:
                # a message deleted while it was read lost its attachments' blobs: the batch
                # again, one by one, without the messages that are gone
                for one in copies:
                    with contextlib.suppress(BlobMissingError):
                        await self.store.insert_message(one)
            after = batch[-1].seq

    async def delete(self, mailbox: Mailbox, message_id: str, *, if_match: str | None) -> None:
        """DELETE: into Deleted Items; an item already there (or below) is gone for good."""
        mailbox.principal.require(Access.WRITE)
        stored = await self.get(mailbox, message_id, access=Access.WRITE)
        if not etag_matches(if_match, stored.change_key):
            raise ConflictError(CONFLICT)
        trash = await self.folders.well_known_id(mailbox, "deleteditems")
        if await self.folders.is_within(mailbox, stored.folder_id, trash):
            await self.store.delete_message(mailbox.id, message_id)
        else:
            await self._move_to(mailbox, message_id, trash, if_match=if_match)

    async def permanent_delete(self, mailbox: Mailbox, message_id: str) -> None:
        await self.get(mailbox, message_id, access=Access.WRITE)
        if not await self.store.delete_message(mailbox.id, message_id):
            raise NotFoundError(NOT_FOUND)

    async def mime(self, mailbox: Mailbox, message_id: str) -> bytes:
        """The message as RFC 5322 text (``GET …/$value``), written from what the mailbox
        holds by the same writer as outgoing mail: its headers, bodies and attachments (Bcc,
        as on the wire, is not written). Reading a body takes more than Mail.ReadBasic."""
        stored = await self.get(mailbox, message_id)
        if mailbox.principal.basic_only:
            raise AccessDeniedError(DENIED)
        doc = stored.message()
        date = now()
        # a stored date no reader takes (a year past 9999, kept before received dates were
        # checked) is skipped for the next one
        for when in (doc.sent_date_time, doc.received_date_time, doc.created_date_time):
            try:
                date = parse_iso(when)
                break
            except ValueError:
                continue
        return mime.build(
            doc, headers=stored.headers(), attachments=await self.attachments(stored), date=date
        )

    async def add_attachment(
        self, mailbox: Mailbox, message_id: str, raw: object
    ) -> tuple[StoredMessage, Attachment]:
        """POST …/attachments: to any message of the mailbox (Graph allows it on sent and
        received ones too); its changeKey and lastModifiedDateTime change, hasAttachments
        follows."""
        mailbox.principal.require(Access.WRITE)
        await self.get(mailbox, message_id, access=Access.WRITE)  # 404 before a bad body's 400
        new = checked(message.attachment_input(raw, now()))
        for _ in range(REWRITE_TRIES):
            stored = await self.get(mailbox, message_id, access=Access.WRITE)
            stamp = now()
            doc = msgspec.structs.replace(
                stored.message(),
                has_attachments=stored.message().has_attachments or not new.is_inline,
                change_key=ids.change_key(),
                last_modified_date_time=iso(stamp),
            )
            written = await self.store.add_attachment(
                mailbox.id, doc, new, expected_change_key=stored.change_key
            )
            if written is not None:
                return written, new
        raise ConflictError(CONFLICT)

    async def delete_attachment(
        self, mailbox: Mailbox, message_id: str, attachment_id: str
    ) -> None:
        """DELETE …/attachments/{id}; hasAttachments follows what is left."""
        mailbox.principal.require(Access.WRITE)
        for _ in range(REWRITE_TRIES):
            stored = await self.get(mailbox, message_id, access=Access.WRITE)
            present = await self.store.attachments(stored)
            if not any(a.id == attachment_id for a in present):
                raise NotFoundError(NOT_FOUND)
            left = [a for a in present if a.id != attachment_id]
            doc = msgspec.structs.replace(
                stored.message(),
                has_attachments=message.has_attachments(left),
                change_key=ids.change_key(),
                last_modified_date_time=iso(now()),
            )
            written = await self.store.delete_attachment(
                mailbox.id, doc, attachment_id, expected_change_key=stored.change_key
            )
            if written is not None:
                return
        raise ConflictError(CONFLICT)

    async def attachment_mime(self, item: message.Item) -> bytes:
        return mime.item_mime(item)

    async def attachments(self, stored: StoredMessage) -> list[Attachment]:
        return await self.store.attachments(stored)

    async def blob(self, digest: str) -> tuple[int, Callable[[], AsyncIterator[bytes]]] | None:
        """A file attachment's bytes as a stream (its size, and a function that reads it)."""
        return await self.store.blob(digest)

    async def attachment_refs(self, stored: StoredMessage) -> list[Attachment]:
        """The attachments without their bytes, each naming its blob (copies refer to it)."""
        return await self.store.attachment_refs(stored)

    async def extensions(self, stored: StoredMessage) -> list[dict[str, Any]]:
        return await self.store.extensions(stored)

    async def extended_properties(
        self, stored: StoredMessage, ids: list[str] | None = None
    ) -> list[ExtendedProperty]:
        return await self.store.extended_properties(stored, ids)

    # ------------------------------------------------------------ open extensions

    async def _extension(
        self, mailbox: Mailbox, message_id: str, name: str
    ) -> tuple[StoredMessage, dict[str, Any]]:
        """The message (for a write) and its extension named ``name`` (name or id, any case)."""
        stored = await self.get(mailbox, message_id, access=Access.WRITE)
        key = message.extension_key(name)
        for doc in await self.store.extensions(stored):
            if message.extension_key(str(doc.get("extensionName", ""))) == key:
                return stored, doc
        raise NotFoundError(NOT_FOUND)

    async def add_extension(
        self, mailbox: Mailbox, message_id: str, raw: dict[str, Any]
    ) -> tuple[StoredMessage, dict[str, Any]]:
        """POST …/extensions: a new open extension (409 if the message has one of its name)."""
        mailbox.principal.require(Access.WRITE)
        stored = await self.get(mailbox, message_id, access=Access.WRITE)
        doc = message.extension(raw)
        existing = await self.store.extensions(stored)
        key = message.extension_key(doc["extensionName"])
        taken = ExtensionExistsError(
            f"The message already has an open extension named '{doc['extensionName']}'; "
            "change it with PATCH."
        )
        if any(message.extension_key(str(e.get("extensionName", ""))) == key for e in existing):
            raise taken
        if len(existing) >= message.MAX_EXTENSIONS:
            raise InvalidInputError(
                f"A message can hold at most {message.MAX_EXTENSIONS} open extensions.",
                target="extensions",
            )
        try:
            await self.store.add_extension(stored, doc)
        except AlreadyExistsError:
            raise taken from None
        return stored, doc

    async def update_extension(
        self, mailbox: Mailbox, message_id: str, name: str, raw: dict[str, Any]
    ) -> tuple[StoredMessage, dict[str, Any]]:
        """PATCH …/extensions/{name}: the extension's custom data become the body's (a given
        property is written, a new one added, one left out removed, as the current Graph page
        describes); last writer wins."""
        mailbox.principal.require(Access.WRITE)
        stored, found = await self._extension(mailbox, message_id, name)
        current = str(found["extensionName"])
        given = raw.get("extensionName") or current
        if not isinstance(given, str) or message.extension_key(given) != message.extension_key(
            current
        ):
            raise InvalidOperationError(
                "The extensionName of an open extension cannot be changed.",
                target="extensionName",
            )
        doc = message.extension({**raw, "extensionName": current})
        doc["id"] = found.get("id", doc["id"])
        if not await self.store.replace_extension(stored, doc):
            raise NotFoundError(NOT_FOUND)
        return stored, doc

    async def delete_extension(self, mailbox: Mailbox, message_id: str, name: str) -> None:
        mailbox.principal.require(Access.WRITE)
        stored, found = await self._extension(mailbox, message_id, name)
        if not await self.store.delete_extension(stored, str(found["extensionName"])):
            raise NotFoundError(NOT_FOUND)
