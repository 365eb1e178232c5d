"""The blob port: attachment bytes, named by their SHA-256, and the upload sessions that bring
large ones in parts (Graph's ``createUploadSession``).

The store keeps the bytes where it is configured to (the database, a directory; an
S3-compatible store would be one more implementation of this port) and counts, in the same
transaction as the attachment rows, how many attachments use each blob.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from graphpost.domain.message import Attachment, Message


@dataclass(frozen=True, slots=True)
class StagedBlob:
    """Bytes written to storage but not yet referenced: a transaction of the store adopts
    them (``OutboxStore.submit``), or ``discard`` drops them."""

    key: str
    digest: str
    size: int


FINISHED = -1  # UploadSession.parts of a session whose attachment was made


@dataclass(frozen=True, slots=True)
class UploadSession:
    """One upload session: what it will attach to which message, and how far it got."""

    id: str
    mailbox_id: str
    message_id: str
    app_id: str
    name: str
    content_type: str
    size: int  # the declared size of the file
    is_inline: bool
    content_id: str | None
    received: int  # bytes taken so far: the next expected offset
    parts: int  # the store's count of staged parts; FINISHED once the attachment is made
    expires_at_ms: int

    @property
    def finished(self) -> bool:
        """The attachment was made; the session is kept (until its expiry) only to answer its
        last part sent again."""
        return self.parts == FINISHED


class BlobStore(Protocol):
    async def create_session(self, session: UploadSession, token_hash: str) -> None:
        """A new session (``received`` 0); ``token_hash``: the SHA-256 of its URL's token."""
        ...

    async def session(self, session_id: str) -> tuple[UploadSession, str] | None:
        """The session and its token hash, or None."""
        ...

    async def append(self, session: UploadSession, data: bytes) -> UploadSession | None:
        """Stage ``data`` at ``session.received``; the session moved on, or None when another
        request moved it first (nothing is kept then)."""
        ...

    async def finish(
        self, session: UploadSession, attachment: Attachment, update: Callable[[Message], Message]
    ) -> bool:
        """The staged bytes become ``attachment`` (its ``content`` is not read) of the session's
        message, whose document ``update`` changes; the session is kept, ``finished``, until
        its expiry. False: the message or the session is gone (the session ends)."""
        ...

    async def cancel(self, session_id: str) -> bool:
        """End a session and drop what it staged (a finished one staged nothing any more: its
        bytes are the attachment's); False if there was none."""
        ...

    async def expire(self) -> int:
        """End the sessions past their expiry; how many."""
        ...

    async def stage(self, chunks: AsyncIterator[bytes]) -> StagedBlob:
        """Write ``chunks`` (each at most 1 MiB is kept in memory) to storage and hash them."""
        ...

    async def discard(self, staged: StagedBlob) -> None:
        """Drop staged bytes that no transaction adopted."""
        ...

    def read(self, digest: str) -> AsyncIterator[bytes]:
        """A blob's bytes, 1 MiB at a time."""
        ...

    async def blob(self, digest: str) -> tuple[int, int] | None:
        """(size, references) of a blob, or None."""
        ...

    async def sweep(self, limit: int = 100) -> int:
        """Remove up to ``limit`` blobs that no attachment uses; how many."""
        ...
