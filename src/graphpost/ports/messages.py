"""The messages port: a mailbox's items, their attachments, open extensions and extended
properties.

Services hand the store domain values (a ``Message`` document, its headers, attachments and
extensions) and get back ``StoredMessage``: the document as stored, with what the store knows
beside it. The store derives its indexed columns from the document itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from graphpost.domain.extended import ExtendedProperty
from graphpost.domain.message import Attachment, Header, Message
from graphpost.domain.query import MessageQuery, Node

_decode_message = msgspec.json.Decoder(Message).decode
_decode_headers = msgspec.json.Decoder(list[Header]).decode


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to write into ``mailbox_id`` (a draft, a received copy, a report)."""

    mailbox_id: str
    message: Message
    headers: list[Header] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    extensions: list[dict[str, Any]] = field(default_factory=list)  # open type extensions
    extended: list[ExtendedProperty] = field(default_factory=list)  # MAPI extended properties


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as the mailbox holds it. ``document`` is its Graph JSON (default properties),
    encoded once when written: answers splice it without decoding it."""

    id: str
    mailbox_id: str
    folder_id: str
    change_key: str
    is_draft: bool
    document: bytes
    headers_document: bytes | None  # the internetMessageHeaders, as JSON
    seq: int  # the store's handle of this message, for its attachments and extensions

    def message(self) -> Message:
        return _decode_message(self.document)

    def headers(self) -> list[Header]:
        return _decode_headers(self.headers_document) if self.headers_document else []


@dataclass(frozen=True, slots=True)
class SearchScope:
    """The messages a search folder shows, evaluated live: those in ``folder_ids`` (and every
    folder below them when ``nested``) that match the saved filter ``saved``."""

    folder_ids: tuple[str, ...]
    nested: bool
    saved: Node


Where = str | SearchScope | None
"""Which messages: of one folder (its id), of a search folder, or of the whole mailbox."""


class MessageStore(Protocol):
    async def insert_message(self, new: NewMessage) -> StoredMessage:
        """The message with its attachments and extensions (folder counts follow)."""
        ...

    async def insert_messages(self, messages: list[NewMessage]) -> None:
        """Several messages in one transaction (one inbound mail to several mailboxes)."""
        ...

    async def get_message(self, mailbox_id: str, message_id: str) -> StoredMessage | None: ...
    async def list_messages(
        self, mailbox_id: str, folder_id: Where, query: MessageQuery
    ) -> tuple[list[StoredMessage], int | None, bool]:
        """One page (of the folder, a search folder, or the whole mailbox), the count if
        asked, and whether there are more."""
        ...

    async def count_messages(
        self, mailbox_id: str, folder_id: Where, filter: Node | None
    ) -> tuple[int, int]:
        """How many messages match, and how many of them are unread."""
        ...

    async def messages_after(
        self, mailbox_id: str, folder_id: str, after_seq: int, limit: int
    ) -> list[StoredMessage]:
        """At most ``limit`` messages of the folder past ``after_seq``, in seq order (a walk
        that messages arriving meanwhile cannot make skip or repeat one)."""
        ...

    async def delta_page(
        self,
        mailbox_id: str,
        folder_id: str,
        *,
        after: tuple[int, int] | None,
        since: tuple[int, bool] | None,
        limit: int,
    ) -> list[tuple[int, StoredMessage]]:
        """Up to ``limit`` messages of a folder, newest received first (ties: the later stored
        first), each with its received time (epoch seconds): after the keyset position
        ``after`` (received time, seq) when given, and received at or after (``since[1]``
        True) or after ``since[0]``."""
        ...

    async def messages_by_id(
        self, mailbox_id: str, message_ids: Sequence[str]
    ) -> list[tuple[int, StoredMessage]]:
        """Those of ``message_ids`` the mailbox has, with their received times (any order)."""
        ...

    async def replace_message(
        self,
        mailbox_id: str,
        message: Message,
        *,
        expected_change_key: str,
        extended: Sequence[ExtendedProperty] = (),
    ) -> StoredMessage | None:
        """Store a changed document (its folder is ``message.parent_folder_id``: a move) if the
        stored change key still is ``expected_change_key``; None if it is not (or gone).
        ``extended``: properties added, or replacing those of the same id, in the same
        transaction (``ExtendedPropertyError`` past the cap of a message)."""
        ...

    async def delete_message(self, mailbox_id: str, message_id: str) -> bool: ...
    async def find_by_internet_message_id(
        self, mailbox_id: str, internet_message_id: str
    ) -> StoredMessage | None: ...
    async def attachments(self, message: StoredMessage) -> list[Attachment]:
        """The attachments with their bytes."""
        ...

    async def attachment_refs(self, message: StoredMessage) -> list[Attachment]:
        """The attachments without their bytes: each names its blob (``blob``), which a new
        item may refer to, and which can be streamed (``BlobStore.read``)."""
        ...

    async def blob(self, digest: str) -> tuple[int, Callable[[], AsyncIterator[bytes]]] | None:
        """A blob's size and a function that streams its bytes (1 MiB at a time), or None."""
        ...

    async def add_attachment(
        self, mailbox_id: str, message: Message, attachment: Attachment, *,
        expected_change_key: str,
    ) -> StoredMessage | None:  # fmt: skip
        """Store the changed document (changeKey, hasAttachments) and the attachment after the
        others, in one transaction, if the change key still is ``expected_change_key``."""
        ...

    async def delete_attachment(
        self, mailbox_id: str, message: Message, attachment_id: str, *, expected_change_key: str
    ) -> StoredMessage | None:
        """Store the changed document and remove the attachment, in one transaction; None
        (nothing written) if the key changed meanwhile or the attachment is gone."""
        ...

    async def extensions(self, message: StoredMessage) -> list[dict[str, Any]]: ...
    async def add_extension(self, message: StoredMessage, doc: dict[str, Any]) -> None:
        """A new open extension (``AlreadyExistsError`` if its name is taken)."""
        ...

    async def replace_extension(self, message: StoredMessage, doc: dict[str, Any]) -> bool:
        """The extension of ``doc``'s exact name replaced by ``doc``; False if none."""
        ...

    async def delete_extension(self, message: StoredMessage, name: str) -> bool: ...
    async def extended_properties(
        self, message: StoredMessage, ids: Sequence[str] | None = None
    ) -> list[ExtendedProperty]:
        """The message's extended properties of the canonical ``ids`` (all when None)."""
        ...
