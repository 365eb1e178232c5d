"""Sending: a draft, a new message (sendMail), replies and forwards, and the delivery status
of what was sent.

A send writes, in one transaction, the Sent Items copy (the draft itself, moved: its id
stays), the frozen MIME and one delivery per recipient (a transactional outbox). Delivery
workers take it from there.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from graphpost.domain import addresses, compose, extended, ids, message, mime
from graphpost.domain.extended import ExtendedProperty
from graphpost.domain.message import (
    Attachment,
    EmailAddress,
    Message,
    MessageInput,
    Recipient,
)
from graphpost.domain.times import iso, now, now_ms
from graphpost.errors import (
    ConflictError,
    InvalidHeaderError,
    InvalidOperationError,
    InvalidRecipientsError,
    MessageTooLargeError,
    NotFoundError,
    SendAsDeniedError,
)
from graphpost.ports.blobs import BlobStore, StagedBlob
from graphpost.ports.directory import User
from graphpost.ports.messages import NewMessage, StoredMessage
from graphpost.ports.outbox import (
    Attempt,
    Delivery,
    DeliveryState,
    OutboxStore,
    Route,
    Submission,
)
from graphpost.services.access import AccessService
from graphpost.services.directory import DirectoryService, Mailbox, Reach
from graphpost.services.folders import NOT_FOUND, FolderService
from graphpost.services.messages import MessageService, fresh_copies, given_attachments
from graphpost.types import Access, Right

NO_RECIPIENTS = (
    "At least one recipient isn't valid., A message can't be sent because it contains no "
    "recipients."
)
SEND_AS_DENIED = (
    "The user account which was used to submit this request does not have the right to send "
    "mail on behalf of the specified sending account. Cannot submit message."
)
NO_RELAY = "waiting for a relay: GRAPHPOST_SMTP_RELAY is not set"
# a draft whose attachments hold more is sent as a stream: its MIME written part by part from
# the attachments' blobs into a blob of its own, never whole in memory
STREAM_ABOVE = 4 * 1024 * 1024


def _lines(data: bytes) -> bytes:
    """``data`` (a multiple of 57 bytes, or the last piece) as base64 lines joined by CRLF."""
    raw = binascii.b2a_base64(data, newline=False)
    return b"\r\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))


def _names(user: User, address: str) -> bool:
    """Whether ``address`` (lower case) is the user's mail or userPrincipalName."""
    return address in (user.mail.lower(), user.upn.lower())


def _envelope_from(mailbox: Mailbox, sent: Message) -> str:
    """The SMTP reverse path: the sender (the delegate, for send-on-behalf), else the owner."""
    who = sent.sender or sent.from_
    address = who.email_address.address if who is not None else None
    return address or mailbox.user.mail


def _mime_headers(
    headers: list[message.Header], props: list[ExtendedProperty]
) -> list[message.Header]:
    """``headers`` and, as Exchange writes them, the String properties of the internet headers
    namespace that pass the rules of ``internetMessageHeaders`` (an ``x-`` name, one line, no
    control character) and are not already given; any other (a Subject, a From, a value with a
    line break) is kept on the item but never written into the MIME."""
    given = {h.name.lower() for h in headers}
    out = list(headers)
    for prop in props:
        found = extended.internet_header(prop)
        if found is None or found[0].lower() in given:
            continue
        try:
            out += message.check_headers([message.HeaderIn(name=found[0], value=found[1])])
        except InvalidHeaderError:
            continue
        given.add(found[0].lower())
    return out


@dataclass(frozen=True, slots=True)
class Limits:
    max_recipients: int
    max_message_bytes: int
    retry_window_seconds: float
    relay_configured: bool


@dataclass(frozen=True, slots=True)
class Sent:
    """What a send call answers with: where the Sent Items copy is, and its submission."""

    mailbox_id: str
    message_id: str
    saved: bool
    submission_id: str


class SendService:
    def __init__(
        self,
        store: OutboxStore,
        directory: DirectoryService,
        folders: FolderService,
        messages: MessageService,
        *,
        limits: Limits,
        web_base: str,
        wake: Callable[[], None] = lambda: None,
        access: AccessService | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.blobs = blobs
        self.store = store
        self.directory = directory
        self.folders = folders
        self.messages = messages
        self.limits = limits
        self.web_base = web_base
        self.wake = wake
        self.access = access

    # ------------------------------------------------------------ checks

    def _check_recipients(self, msg: Message) -> list[str]:
        everyone = msg.to_recipients + msg.cc_recipients + msg.bcc_recipients
        if not everyone:
            raise InvalidRecipientsError(NO_RECIPIENTS)
        if len(everyone) > self.limits.max_recipients:
            raise InvalidRecipientsError(
                f"A message can have at most {self.limits.max_recipients} recipients "
                f"(to, cc and bcc together); this one has {len(everyone)}."
            )
        seen: dict[str, str] = {}
        for r in everyone:
            address = (r.email_address.address or "").strip()
            why = addresses.problem(address)
            if why is not None:
                raise InvalidRecipientsError(
                    f"At least one recipient isn't valid: '{addresses.shown(address)}' is not "
                    f"an email address ({why})."
                )
            seen.setdefault(address.lower(), address)
        return list(seen.values())

    async def _sender(self, mailbox: Mailbox, msg: Message) -> Message:
        """`from` and `sender` of a message sent through ``mailbox``, as Exchange sets them.

        Unset or the owner: the owner, both. A delegate in the owner's mailbox (opened with
        the .Shared scopes), or a user whose draft is `from` another user who granted them send
        rights (Mail.Send.Shared): with send-as `sender` is `from`; with send-on-behalf it is
        the delegate; with neither, ErrorSendAsDenied."""
        owner = mailbox.user
        frm = msg.from_ or Recipient(EmailAddress(owner.display_name, owner.mail))
        address = (frm.email_address.address or "").lower()
        principal = mailbox.principal
        if mailbox.rights is not None:  # a delegate in the owner's mailbox
            if not _names(owner, address):
                raise SendAsDeniedError(SEND_AS_DENIED)
            rights, acting = mailbox.rights, principal.user_id
        elif _names(owner, address):
            if msg.sender is not None and not _names(
                owner, (msg.sender.email_address.address or "").lower()
            ):
                raise SendAsDeniedError(SEND_AS_DENIED)
            return msgspec.structs.replace(msg, from_=frm, sender=frm)
        else:  # from another user: the doc's "send mail from another user"
            other = await self.directory.user(address) if address else None
            if (
                other is None
                or self.access is None
                or not principal.may_send_from_others()
                or principal.user_id != owner.id
                or other.tenant_id != owner.tenant_id
            ):
                raise SendAsDeniedError(SEND_AS_DENIED)
            found = await self.access.rights(other.id, owner.id)
            rights, acting = found or frozenset(), owner.id
        if Right.SEND_AS in rights:
            sender = frm
        elif Right.SEND_ON_BEHALF in rights and acting is not None:
            actor = await self.directory.user(acting)
            if actor is None:
                raise SendAsDeniedError(SEND_AS_DENIED)
            sender = Recipient(EmailAddress(actor.display_name, actor.mail))
        else:
            raise SendAsDeniedError(SEND_AS_DENIED)
        given = msg.sender.email_address.address if msg.sender is not None else None
        if given is not None and given.lower() not in {
            address,
            (sender.email_address.address or "").lower(),
        }:
            raise SendAsDeniedError(SEND_AS_DENIED)
        return msgspec.structs.replace(msg, from_=frm, sender=sender)

    # ------------------------------------------------------------ submitting

    async def _deliveries(self, recipients: list[str], created_ms: int) -> list[Delivery]:
        out = []
        for address in recipients:
            where = await self.directory.locate(address)
            if where.reach is Reach.REMOTE:
                waiting = None if self.limits.relay_configured else NO_RELAY
                route, mailbox_id = Route.SMTP, None
            else:  # a mailbox here; or nobody by that name on our domain: bounced (no loop)
                waiting, route = None, Route.LOCAL
                mailbox_id = where.user.id if where.user is not None else None
            out.append(
                Delivery(
                    0,
                    "",
                    address,
                    route,
                    mailbox_id,
                    DeliveryState.QUEUED,
                    0,
                    created_ms,
                    last_response=waiting,
                )
            )
        return out

    async def _submit(
        self,
        mailbox: Mailbox,
        sent: Message,
        *,
        headers: list[message.Header],
        attachments: list[Attachment],
        save: bool,
        idempotency_key: str | None,
        replace_key: str | None,
        stamp: int,
        props: list[ExtendedProperty],
        extensions: list[dict[str, Any]] | None = None,
    ) -> Sent:
        recipients = self._check_recipients(sent)
        found = mime.segments(
            sent, headers=_mime_headers(headers, props), attachments=attachments, date=stamp
        )
        size = mime.size_of(found)
        if size > self.limits.max_message_bytes:
            raise MessageTooLargeError(
                f"The message exceeds the maximum supported size: {size} bytes against a "
                f"limit of {self.limits.max_message_bytes} bytes."
            )
        streamed = self.blobs is not None and any(a.blob is not None for a in attachments)
        staged: StagedBlob | None = None
        if streamed:
            assert self.blobs is not None
            staged = await self.blobs.stage(self._stream(found))
            raw = mime.skeleton(found)
        else:
            raw = b"".join(s if isinstance(s, bytes) else s.render() for s in found)
        try:
            return await self._record(
                mailbox, sent, headers=headers, attachments=attachments, save=save,
                idempotency_key=idempotency_key, replace_key=replace_key, raw=raw,
                staged=staged, recipients=recipients, props=props, extensions=extensions,
            )  # fmt: skip
        except BaseException:
            if staged is not None and self.blobs is not None:
                await self.blobs.discard(staged)
            raise

    async def _stream(self, found: list[mime.Segment]) -> AsyncIterator[bytes]:
        """The message ``found`` describes, its attachments read from their blobs 1 MiB at a
        time and base64-encoded as ``mime.build`` writes them (76-character lines)."""
        assert self.blobs is not None
        for segment in found:
            if isinstance(segment, bytes):
                yield segment
                continue
            a = segment.attachment
            if a.blob is None:
                yield segment.render()
                continue
            if not segment.base64:
                async for block in self.blobs.read(a.blob):
                    yield block
                continue
            carry, first = b"", True
            async for block in self.blobs.read(a.blob):
                data = carry + block
                cut = len(data) - len(data) % 57  # 57 bytes make one 76-character line
                carry = data[cut:]
                if cut:
                    yield (b"" if first else b"\r\n") + _lines(data[:cut])
                    first = False
            if carry:
                yield (b"" if first else b"\r\n") + _lines(carry)

    async def _record(
        self,
        mailbox: Mailbox,
        sent: Message,
        *,
        headers: list[message.Header],
        attachments: list[Attachment],
        save: bool,
        idempotency_key: str | None,
        replace_key: str | None,
        raw: bytes,
        staged: StagedBlob | None,
        recipients: list[str],
        props: list[ExtendedProperty],
        extensions: list[dict[str, Any]] | None,
    ) -> Sent:
        created_ms = now_ms()
        submission = Submission(
            id=uuid.uuid4().hex,
            mailbox_id=mailbox.id,
            message_id=sent.id,
            internet_message_id=sent.internet_message_id,
            subject=sent.subject,
            envelope_from=_envelope_from(mailbox, sent),
            sender_name=mailbox.user.display_name,
            mime=raw,
            saved=save,
            created_ms=created_ms,
            expires_ms=created_ms + int(self.limits.retry_window_seconds * 1000),
            idempotency_key=idempotency_key,
        )
        deliveries = await self._deliveries(recipients, created_ms)
        hold = sorted({a.blob for a in attachments if a.blob}) if staged is not None else None
        if replace_key is not None:
            done = await self.store.submit(
                submission,
                deliveries,
                replace=(sent, replace_key) if save else None,
                delete_id=None if save else sent.id,
                mime_blob=staged,
                hold=hold,
            )
        else:
            new = NewMessage(mailbox.id, sent, headers, attachments, list(extensions or []), props)
            done = await self.store.submit(
                submission, deliveries, insert=new if save else None, mime_blob=staged, hold=hold
            )
        self.wake()
        return Sent(mailbox.id, done.message_id, done.saved, done.id)

    async def _final(self, mailbox: Mailbox, draft: Message, stamp: int) -> Message:
        sent_items = await self.folders.well_known_id(mailbox, "sentitems")
        draft = await self._sender(mailbox, draft)
        return msgspec.structs.replace(
            draft,
            is_draft=False,
            is_read=True,
            sent_date_time=iso(stamp),
            received_date_time=iso(stamp),
            last_modified_date_time=iso(stamp),
            change_key=ids.change_key(),
            parent_folder_id=sent_items,
        )

    async def _attachments(self, draft: StoredMessage) -> list[Attachment]:
        """The draft's attachments: as references to their blobs when they are large (the
        message is then streamed), else with their bytes."""
        refs = await self.messages.attachment_refs(draft)
        if self.blobs is not None and sum(a.size for a in refs) > STREAM_ABOVE:
            return refs
        return await self.messages.attachments(draft) if refs else []

    async def send_draft(self, mailbox: Mailbox, message_id: str, *, save: bool = True) -> Sent:
        """POST /messages/{id}/send. Sending a message this server already sent is a no-op."""
        mailbox.principal.require(Access.SEND)
        draft = await self.messages.get(mailbox, message_id, access=Access.SEND)
        if not draft.is_draft:
            earlier = await self.store.find_submission(mailbox.id, message_id)
            if earlier is not None:
                return Sent(mailbox.id, message_id, earlier.saved, earlier.id)
            raise InvalidOperationError("Only draft messages can be sent.")
        stamp = now()
        sent = await self._final(mailbox, draft.message(), stamp)
        try:
            return await self._submit(
                mailbox,
                sent,
                headers=draft.headers(),
                attachments=await self._attachments(draft),
                save=save,
                idempotency_key=None,
                replace_key=draft.change_key,
                stamp=stamp,
                props=await self.messages.extended_properties(draft),
            )
        except ConflictError:
            # sent by a concurrent call meanwhile: the same no-op as a send after it
            # (SQLite serialises the two calls and answers so; PostgreSQL would see a conflict)
            earlier = await self.store.find_submission(mailbox.id, message_id)
            if earlier is None:
                raise
            return Sent(mailbox.id, message_id, earlier.saved, earlier.id)

    async def send_mail(
        self,
        mailbox: Mailbox,
        inp: MessageInput,
        *,
        save: bool = True,
        idempotency_key: str | None = None,
    ) -> Sent:
        """POST /sendMail: a new message, sent at once."""
        mailbox.principal.require(Access.SEND)
        stamp = now()
        headers = message.check_headers(inp.internet_message_headers or [])
        props = extended.from_input(
            inp.single_value_extended_properties, inp.multi_value_extended_properties
        )
        extensions = message.extensions(inp.extensions or [])
        attachments = given_attachments(inp.attachments or None, stamp)
        draft = await self.messages.new_message(
            mailbox, inp, folder_id="", stamp=stamp, attachments=attachments
        )
        sent = await self._final(mailbox, draft, stamp)
        return await self._submit(
            mailbox,
            sent,
            headers=headers,
            attachments=attachments,
            save=save,
            idempotency_key=idempotency_key,
            replace_key=None,
            stamp=stamp,
            props=props,
            extensions=extensions,
        )

    async def send_mail_mime(
        self, mailbox: Mailbox, raw: bytes, *, idempotency_key: str | None = None
    ) -> Sent:
        """POST /sendMail with a base64 MIME body: the message it describes, sent at once and
        saved in Sent Items (MIME has no saveToSentItems). What goes out is written anew
        from what was read (``mime.build``), never the client's bytes as they came."""
        mailbox.principal.require(Access.SEND)
        parsed = await self.messages.parse_mime(raw)
        stamp = now()
        new = await self.messages.draft_from_mime(mailbox, parsed, folder_id="", stamp=stamp)
        sent = await self._final(mailbox, new.message, stamp)
        return await self._submit(
            mailbox,
            sent,
            headers=new.headers,
            attachments=new.attachments,
            save=True,
            idempotency_key=idempotency_key,
            replace_key=None,
            stamp=stamp,
            props=[],
        )

    # ------------------------------------------------------------ replies and forwards

    async def create_response_mime(
        self, mailbox: Mailbox, message_id: str, kind: str, raw: bytes
    ) -> StoredMessage:
        """createReply / createReplyAll / createForward with a base64 MIME body: the MIME's
        message as a new draft in the original's conversation, with its threading headers;
        a reply without recipients of its own goes to whom a reply goes (the original's
        sender, and for reply-all its other recipients); a forward carries the original's
        attachments, as the JSON form does."""
        mailbox.principal.require(Access.WRITE)
        stored = await self.messages.get(mailbox, message_id, access=Access.WRITE)
        original = stored.message()
        parsed = await self.messages.parse_mime(raw)
        stamp = now()
        fallback = compose.response_input(
            original, compose.ReplyRequest(kind, None, None, None), owner=mailbox.user.mail
        )
        copied = []
        if kind == "forward":
            copied = fresh_copies(await self.messages.attachments(stored), stamp)
        new = await self.messages.draft_from_mime(
            mailbox,
            parsed,
            folder_id=await self.folders.well_known_id(mailbox, "drafts"),
            stamp=stamp,
            threading=compose.threading_headers(original, stored.headers()),
            conversation_index=ids.child_conversation_index(original.conversation_index),
            copied=copied,
            fallback=fallback,
        )
        return await self.messages.save(new)

    async def respond_mime(self, mailbox: Mailbox, message_id: str, kind: str, raw: bytes) -> Sent:
        """reply / replyAll / forward with a base64 MIME body: the draft above, sent at once."""
        mailbox.principal.require(Access.SEND)
        draft = await self.create_response_mime(mailbox, message_id, kind, raw)
        return await self.send_draft(mailbox, draft.id)

    async def create_response(
        self, mailbox: Mailbox, message_id: str, req: compose.ReplyRequest
    ) -> StoredMessage:
        """createReply / createReplyAll / createForward: a new draft in Drafts."""
        mailbox.principal.require(Access.WRITE)
        stored = await self.messages.get(mailbox, message_id, access=Access.WRITE)
        original = stored.message()
        inp = compose.response_input(original, req, owner=mailbox.user.mail)
        copied = []
        if req.kind == "forward":
            copied = fresh_copies(await self.messages.attachment_refs(stored), now())
        created = await self.messages.create_draft(
            mailbox,
            inp,
            threading=compose.threading_headers(original, stored.headers()),
            conversation_index=ids.child_conversation_index(original.conversation_index),
            copied=copied,
        )
        return created.message

    async def respond(self, mailbox: Mailbox, message_id: str, req: compose.ReplyRequest) -> Sent:
        """reply / replyAll / forward: the response draft, sent at once."""
        mailbox.principal.require(Access.SEND)
        draft = await self.create_response(mailbox, message_id, req)
        return await self.send_draft(mailbox, draft.id)

    # ------------------------------------------------------------ delivery status

    async def delivery_marks(
        self, mailbox: Mailbox, message_ids: list[str]
    ) -> dict[str, list[DeliveryState]]:
        """Each sent message's recipients' states (a page of Sent Items, in one read)."""
        mailbox.principal.require(Access.READ)
        return await self.store.delivery_states(mailbox.id, message_ids)

    async def delivery_status(
        self, mailbox: Mailbox, message_id: str
    ) -> tuple[Submission, list[Delivery], list[Attempt]]:
        mailbox.principal.require(Access.READ)
        submission = await self.store.find_submission(mailbox.id, message_id)
        if submission is None:
            raise NotFoundError(
                "This message has not been sent from this mailbox, so it has no delivery status."
                if await self.messages.exists(mailbox, message_id)
                else NOT_FOUND
            )
        deliveries, attempts = await self.store.deliveries_of(submission.id)
        return submission, deliveries, attempts
