"""Upload sessions: large file attachments (3 MB up to the configured maximum) in parts.

``createUploadSession`` answers an ``uploadUrl`` that works without the Authorization header:
it carries a random 256-bit token, of which only the SHA-256 is stored, in the session's row
beside the mailbox, the message and the expiry (fixed at creation). The URL names the mailbox,
the message and the session; a token is accepted only on the URL it was issued with, until the
expiry. The state lives in the database, so any API process sharing it takes any part.

Parts are ``PUT`` in order with ``Content-Range: bytes a-b/total``; a part is kept only when it
arrived whole (its declared length, all of it) and starts where the session stands. The last
part makes the attachment: the staged bytes become a blob, the attachment row and the
message's ``hasAttachments`` and change key are written in one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import msgspec

from graphpost.domain import ids, message
from graphpost.domain.message import Attachment, Message
from graphpost.domain.times import iso, now, now_ms
from graphpost.errors import (
    AttachmentTooSmallError,
    AuthenticationError,
    InvalidInputError,
    MessageTooLargeError,
    NotFoundError,
    PropertyValueError,
    RangeNotSatisfiableError,
)
from graphpost.ports.blobs import BlobStore, UploadSession
from graphpost.services.directory import Mailbox
from graphpost.services.messages import MessageService
from graphpost.types import Access

MIN_BYTES = 3 * 1024 * 1024  # Graph: below this, POST …/attachments
SESSION_SECONDS = 6 * 3600
_RANGE = re.compile(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})")
GONE = "The upload session does not exist, has expired or was cancelled."


@dataclass(frozen=True, slots=True)
class Created:
    session: UploadSession
    url: str


@dataclass(frozen=True, slots=True)
class Progress:
    """After a part: the session (more to come), or the attachment made of it."""

    session: UploadSession | None
    attachment_id: str | None = None


def session_json(session: UploadSession, *, url: str | None = None) -> dict[str, Any]:
    """The uploadSession resource. Made (``url`` given): ``["0-"]``, as Graph answers. After a
    part: the doc example's PascalCase pair with the single offset (``["2097152"]``), then the
    camelCase pair with the uploadSession resource's ``start-end`` form (``["2097152-{last}"]``),
    which Graph's SDKs parse (msgraph-core's Python task reads the end; the .NET task reads the
    last of the two spellings, so camelCase comes last)."""
    expires = iso(session.expires_at_ms // 1000)
    if url is not None:
        return {
            "uploadUrl": url,
            "expirationDateTime": expires,
            "nextExpectedRanges": ["0-"],
            "ExpirationDateTime": expires,
            "NextExpectedRanges": ["0-"],
        }
    return {
        "ExpirationDateTime": expires,
        "NextExpectedRanges": [str(session.received)],
        "expirationDateTime": expires,
        "nextExpectedRanges": [f"{session.received}-{session.size - 1}"],
    }


def attachment_id_of(session: UploadSession) -> str:
    """The id of the attachment a session makes: derived from the session's (secret, random)
    id, so a finished session answers its last part sent again with the same Location, and
    the id does not reveal the session's."""
    return ids.attachment_id_for(f"upload session {session.id}")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _item(body: dict[str, Any]) -> dict[str, Any]:
    items = [v for k, v in body.items() if k.lower() == "attachmentitem"]
    for key in body:
        if key.lower() != "attachmentitem" and not key.startswith("@"):
            raise PropertyValueError(
                f"The parameter '{key}' in the request payload is not a valid parameter for the "
                "operation 'createUploadSession'. Its parameters are: AttachmentItem.",
                target=key,
            )
    if not items or not isinstance(items[0], dict):
        raise PropertyValueError(
            "The 'AttachmentItem' parameter is required: an object with attachmentType, name "
            "and size.",
            target="AttachmentItem",
        )
    item: dict[str, Any] = items[0]
    known = {"attachmenttype", "name", "size", "isinline", "contentid", "contenttype"}
    for key in item:
        if key.lower() not in known and not key.startswith("@"):
            raise PropertyValueError(
                f"The property '{key}' does not exist on type 'microsoft.graph.attachmentItem'.",
                target=f"AttachmentItem.{key}",
            )
    return {k.lower(): v for k, v in item.items() if not k.startswith("@")}


class UploadService:
    def __init__(
        self,
        blobs: BlobStore,
        messages: MessageService,
        *,
        max_bytes: int,
        base_url: str,
        lifetime_seconds: int = SESSION_SECONDS,
    ) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.blobs = blobs
        self.messages = messages
        self.max_bytes = max_bytes
        self.base_url = base_url.rstrip("/")

    def url(self, session: UploadSession, token: str) -> str:
        return (
            f"{self.base_url}/v1.0/users('{quote(session.mailbox_id, safe='')}')"
            f"/messages('{quote(session.message_id, safe='')}')"
            f"/attachmentSessions('{session.id}')?authtoken={token}"
        )

    async def create(
        self, mailbox: Mailbox, message_id: str, app_id: str, body: dict[str, Any]
    ) -> Created:
        """POST …/messages/{id}/attachments/createUploadSession."""
        stored = await self.messages.get(mailbox, message_id, access=Access.WRITE)
        item = _item(body)
        kind = item.get("attachmenttype")
        if not isinstance(kind, str) or kind.lower() != "file":
            raise PropertyValueError(
                "AttachmentItem.attachmentType must be 'file' (item and reference attachments "
                "are not uploaded in sessions here).",
                target="AttachmentItem.attachmentType",
            )
        size = item.get("size")
        if isinstance(size, str) and size.isdigit():  # Int64 may come as a string
            size = int(size)
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise PropertyValueError(
                "AttachmentItem.size must be the file's size in bytes.",
                target="AttachmentItem.size",
            )
        # name, content type, inline and content id: the one attachment check
        shape = message.file_attachment(
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": item.get("name"),
                "contentBytes": "",
                "contentType": item.get("contenttype"),
                "isInline": bool(item.get("isinline"))
                if item.get("isinline") is not None
                else False,
                "contentId": item.get("contentid"),
            },
            now(),
        )
        if size < MIN_BYTES:
            raise AttachmentTooSmallError(
                f"The attachment size {size} is less than the minimum size of {MIN_BYTES} bytes "
                "for an upload session; attach smaller files with POST …/attachments.",
                target="AttachmentItem.size",
            )
        if size > self.max_bytes:
            raise MessageTooLargeError(
                f"The attachment size {size} exceeds the maximum of {self.max_bytes} bytes.",
                target="AttachmentItem.size",
            )
        await self.blobs.expire()
        session = UploadSession(
            id=ids.guid().replace("-", ""),
            mailbox_id=mailbox.id,
            message_id=stored.id,
            app_id=app_id,
            name=shape.name,
            content_type=shape.content_type or "application/octet-stream",
            size=size,
            is_inline=shape.is_inline,
            content_id=shape.content_id,
            received=0,
            parts=0,
            expires_at_ms=now_ms() + self.lifetime_seconds * 1000,
        )
        token = secrets.token_urlsafe(32)
        await self.blobs.create_session(session, _token_hash(token))
        return Created(session, self.url(session, token))

    async def open(
        self, session_id: str, mailbox_key: str, message_id: str, token: str
    ) -> UploadSession:
        """The session a URL names, if its token and names are right and it has not expired."""
        found = await self.blobs.session(session_id)
        if found is None:
            raise NotFoundError(GONE)
        session, token_hash = found
        if not hmac.compare_digest(token_hash, _token_hash(token)):
            raise AuthenticationError("The upload URL's authtoken is not valid for this session.")
        if mailbox_key != session.mailbox_id or message_id != session.message_id:
            raise AuthenticationError("The upload URL's authtoken is not valid for this session.")
        if session.expires_at_ms <= now_ms():
            await self.blobs.cancel(session.id)
            raise NotFoundError(GONE)
        return session

    async def put(
        self, session: UploadSession, content_range: str | None, data: bytes, declared: int | None
    ) -> Progress:
        """One part. ``declared``: the request's Content-Length (a body that ended before it
        is refused, and nothing of it kept)."""
        if session.received == session.size and not session.finished:
            # every byte arrived but the attachment was not made (the last part's transaction
            # failed): any part sent again finishes it
            return Progress(None, await self._finish(session))
        if content_range is None:
            raise InvalidInputError(
                "A part needs a Content-Range header: bytes {first}-{last}/{total}.",
                target="Content-Range",
            )
        m = _RANGE.fullmatch(content_range.strip())
        if m is None:
            raise InvalidInputError(
                f"The Content-Range header '{content_range[:80]!r}' is not "
                "'bytes {first}-{last}/{total}'.",
                target="Content-Range",
            )
        first, last, total = (int(g) for g in m.groups())
        if total != session.size:
            raise InvalidInputError(
                f"The Content-Range total {total} is not the session's file size {session.size}.",
                target="Content-Range",
            )
        if last < first or last >= session.size:
            raise InvalidInputError(
                f"The range {first}-{last} is not within the file's {session.size} bytes.",
                target="Content-Range",
            )
        if (declared is not None and declared != len(data)) or last - first + 1 != len(data):
            raise InvalidInputError(
                f"The part holds {len(data)} bytes; its Content-Range {first}-{last} "
                f"names {last - first + 1}"
                + (f" and its Content-Length {declared}." if declared is not None else "."),
                target="Content-Range",
            )
        if session.finished:
            # PUT is idempotent: the last part sent again (its answer was lost, or the client
            # sends it twice, as msgraph-core's Python task does) answers the same 201
            if last != session.size - 1:
                raise NotFoundError(GONE)
            return Progress(None, attachment_id_of(session))
        if first != session.received:
            raise RangeNotSatisfiableError(
                f"The range {first}-{last} does not start at the next expected offset "
                f"{session.received}"
                + (" (it was received already)." if last < session.received else "."),
            )
        moved = await self.blobs.append(session, data)
        if moved is None:  # another request took this range first
            fresh = await self.blobs.session(session.id)
            expected = fresh[0].received if fresh is not None else session.received
            raise RangeNotSatisfiableError(
                f"The range {first}-{last} was received by another request; the next expected "
                f"offset is {expected}.",
            )
        if moved.received < moved.size:
            return Progress(moved)
        return Progress(None, await self._finish(moved))

    async def _finish(self, session: UploadSession) -> str:
        stamp = now()
        attachment = Attachment(
            id=attachment_id_of(session),
            name=session.name,
            content_type=session.content_type,
            size=session.size,
            is_inline=session.is_inline,
            content_id=session.content_id,
            last_modified_date_time=iso(stamp),
        )

        def update(msg: Message) -> Message:
            return msgspec.structs.replace(
                msg,
                has_attachments=msg.has_attachments or not session.is_inline,
                change_key=ids.change_key(),
                last_modified_date_time=iso(stamp),
            )

        if not await self.blobs.finish(session, attachment, update):
            fresh = await self.blobs.session(session.id)
            if fresh is not None and fresh[0].finished:  # another request made it first
                return attachment.id
            raise NotFoundError(
                GONE if fresh is None else "The message of this upload session no longer exists."
            )
        return attachment.id

    async def cancel(self, session: UploadSession) -> None:
        if session.finished:
            raise NotFoundError(GONE)
        await self.blobs.cancel(session.id)
