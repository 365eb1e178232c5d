"""The mailbox settings port: a mailbox's settings document (``mailboxSettings``) with its
automatic-reply period, its master list of categories and its Focused Inbox overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from graphpost.domain.settings import Category, Override


@dataclass(frozen=True, slots=True)
class StoredSettings:
    """The settings as stored (None: never changed, the defaults apply), and the period of
    automatic replies (bumped by each change of them)."""

    document: bytes | None
    reply_epoch: int


# a PATCH: the stored document (None: never changed) → the new one, and whether the automatic
# replies changed (a new period: every sender is answered once again)
Change = Callable[[bytes | None], tuple[bytes, bool]]


class MailboxSettingsStore(Protocol):
    async def settings(self, mailbox_id: str) -> StoredSettings: ...
    async def update_settings(
        self, mailbox_id: str, change: Change, *, now_ms: int
    ) -> StoredSettings:
        """``change`` applied to the stored document in one transaction (the row locked: two
        PATCHes never lose one another's properties)."""
        ...

    async def categories(self, mailbox_id: str) -> list[Category]:
        """The master list, oldest first."""
        ...

    async def category(self, mailbox_id: str, category_id: str) -> Category | None: ...
    async def add_category(
        self, mailbox_id: str, category: Category, *, limit: int, now_ms: int
    ) -> bool:
        """Add it (AlreadyExistsError for a name the list has in any case); False when the
        list already holds ``limit`` categories."""
        ...

    async def set_color(self, mailbox_id: str, category_id: str, color: str) -> bool: ...
    async def remove_category(self, mailbox_id: str, category_id: str) -> bool: ...

    async def overrides(self, mailbox_id: str) -> list[Override]:
        """Every override, oldest first."""
        ...

    async def override(self, mailbox_id: str, override_id: str) -> Override | None: ...
    async def put_override(
        self, mailbox_id: str, override: Override, *, limit: int, now_ms: int
    ) -> Override | None:
        """Insert it, or update the name and classification of the override of the same
        address (which keeps its id); the override as stored. None when a new one would make
        more than ``limit``."""
        ...

    async def set_classification(
        self, mailbox_id: str, override_id: str, classify_as: str
    ) -> bool: ...
    async def remove_override(self, mailbox_id: str, override_id: str) -> bool: ...
    async def classification_of(self, mailbox_id: str, address: str) -> str | None:
        """The override's classification for a sender address (lower case), if any."""
        ...
