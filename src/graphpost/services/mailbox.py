"""A mailbox's settings (``mailboxSettings``), master categories and Focused Inbox overrides:
the API's use cases, and what a delivery reads from them (automatic replies, classification).

What a delivery reads is cached per process for ``CACHE_SECONDS`` (a change made through this
process's API is seen at once; one made through another process, within that time)."""

from __future__ import annotations

import uuid
from typing import Any

from graphpost.auth.principal import DENIED
from graphpost.domain import settings
from graphpost.domain.settings import (
    Category,
    CategoryInput,
    MailboxSettingsInput,
    Override,
    OverrideInput,
    ReplyPlan,
)
from graphpost.domain.times import now, now_ms
from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    CategoryExistsError,
    InvalidInputError,
    NotFoundError,
    UnknownSegmentError,
)
from graphpost.ports.mailbox import MailboxSettingsStore
from graphpost.services.cache import ExpiringCache
from graphpost.services.directory import Mailbox
from graphpost.services.folders import FolderService
from graphpost.types import Access

CACHE_SECONDS = 5.0
PARTS = {
    p.lower(): p
    for p in (
        "automaticRepliesSetting", "dateFormat", "delegateMeetingMessageDeliveryOptions",
        "language", "timeFormat", "timeZone", "workingHours", "userPurpose", "archiveFolder",
    )
}  # fmt: skip
NO_CATEGORY = "The specified category was not found in the master list."
NO_OVERRIDE = "The specified override was not found."


def _own(mailbox: Mailbox) -> None:
    """Settings are the owner's: a delegate in a shared mailbox is refused (Graph gives no
    delegated access to another user's settings)."""
    if mailbox.rights is not None:
        raise AccessDeniedError(DENIED)


class MailboxSettingsService:
    def __init__(self, store: MailboxSettingsStore, folders: FolderService) -> None:
        self.store = store
        self.folders = folders
        self._plans: ExpiringCache[ReplyPlan | None] = ExpiringCache(
            seconds=CACHE_SECONDS, size=50_000
        )
        self._overrides: ExpiringCache[dict[str, str]] = ExpiringCache(
            seconds=CACHE_SECONDS, size=20_000
        )

    def forget(self) -> None:
        """Drop what this process cached (the emulator's reset emptied the settings)."""
        self._plans.clear()
        self._overrides.clear()

    # ------------------------------------------------------------ mailboxSettings

    async def _document(self, mailbox_id: str, raw: bytes | None) -> dict[str, Any]:
        document = settings.defaults(now())
        if raw is not None:
            document.update(settings.decode(raw))
        try:
            document["archiveFolder"] = await self.folders.well_known_of(mailbox_id, "archive")
        except NotFoundError:  # a mailbox made before the Archive folder was well known
            document["archiveFolder"] = None
        return document

    async def get(self, mailbox: Mailbox, part: str | None = None) -> tuple[str | None, Any]:
        """The settings, or one of their properties (its Graph name, and its value)."""
        _own(mailbox)
        mailbox.principal.require_settings(write=False)
        name = None
        if part is not None:
            name = PARTS.get(part.lower())
            if name is None:
                raise UnknownSegmentError(f"Resource not found for the segment '{part}'.")
        stored = await self.store.settings(mailbox.id)
        document = await self._document(mailbox.id, stored.document)
        return (name, document[name]) if name is not None else (None, document)

    async def update(
        self, mailbox: Mailbox, given: MailboxSettingsInput
    ) -> tuple[dict[str, Any], list[str]]:
        """PATCH: the whole settings after it, and the properties the request named."""
        _own(mailbox)
        mailbox.principal.require_settings(write=True)
        named: list[str] = []

        def change(raw: bytes | None) -> tuple[bytes, bool]:
            document = settings.defaults(now())
            if raw is not None:
                document.update(settings.decode(raw))
            document.pop("archiveFolder", None)
            merged, found = settings.merge(document, given)
            named[:] = found
            replies = merged["automaticRepliesSetting"] != document["automaticRepliesSetting"]
            return settings.encode(merged), replies

        stored = await self.store.update_settings(mailbox.id, change, now_ms=now_ms())
        self._plans.drop(mailbox.id)
        return await self._document(mailbox.id, stored.document), named

    async def reply_plan(self, mailbox_id: str) -> ReplyPlan | None:
        """The automatic replies of a mailbox as a delivery reads them (None: off)."""
        known, cached = self._plans.get(mailbox_id)
        if known:
            return cached
        stored = await self.store.settings(mailbox_id)
        raw = settings.decode(stored.document) if stored.document is not None else None
        plan = settings.reply_plan(raw, stored.reply_epoch)
        self._plans.put(mailbox_id, plan)
        return plan

    # ------------------------------------------------------------ masterCategories

    async def categories(self, mailbox: Mailbox) -> list[Category]:
        _own(mailbox)
        mailbox.principal.require_settings(write=False)
        return await self.store.categories(mailbox.id)

    async def category(self, mailbox: Mailbox, category_id: str) -> Category:
        _own(mailbox)
        mailbox.principal.require_settings(write=False)
        found = await self.store.category(mailbox.id, category_id)
        if found is None:
            raise NotFoundError(NO_CATEGORY)
        return found

    async def add_category(self, mailbox: Mailbox, given: CategoryInput) -> Category:
        _own(mailbox)
        mailbox.principal.require_settings(write=True)
        name, color = settings.category(given)
        new = Category(str(uuid.uuid4()), name, color)
        try:
            added = await self.store.add_category(
                mailbox.id, new, limit=settings.MAX_CATEGORIES, now_ms=now_ms()
            )
        except AlreadyExistsError:
            raise CategoryExistsError(
                f"A category named '{name}' is already in the master list.", target="displayName"
            ) from None
        if not added:
            raise InvalidInputError(
                f"The master list holds at most {settings.MAX_CATEGORIES} categories."
            )
        return new

    async def update_category(
        self, mailbox: Mailbox, category_id: str, given: CategoryInput
    ) -> Category:
        current = await self.category(mailbox, category_id)
        mailbox.principal.require_settings(write=True)
        color = settings.color_of(given, current)
        if not await self.store.set_color(mailbox.id, category_id, color):
            raise NotFoundError(NO_CATEGORY)
        return Category(current.id, current.display_name, color)

    async def remove_category(self, mailbox: Mailbox, category_id: str) -> None:
        _own(mailbox)
        mailbox.principal.require_settings(write=True)
        if not await self.store.remove_category(mailbox.id, category_id):
            raise NotFoundError(NO_CATEGORY)

    # ------------------------------------------------------------ Focused Inbox overrides

    async def overrides(self, mailbox: Mailbox) -> list[Override]:
        _own(mailbox)
        mailbox.principal.require(Access.READ)
        return await self.store.overrides(mailbox.id)

    async def override(self, mailbox: Mailbox, override_id: str) -> Override:
        _own(mailbox)
        mailbox.principal.require(Access.READ)
        found = await self.store.override(mailbox.id, override_id)
        if found is None:
            raise NotFoundError(NO_OVERRIDE)
        return found

    async def put_override(self, mailbox: Mailbox, given: OverrideInput) -> Override:
        """POST: a new override, or the one of the same sender with this name and class."""
        _own(mailbox)
        mailbox.principal.require(Access.WRITE)
        address, name, classify_as = settings.override(given)
        new = Override(str(uuid.uuid4()), address, name, classify_as)
        stored = await self.store.put_override(
            mailbox.id, new, limit=settings.MAX_OVERRIDES, now_ms=now_ms()
        )
        if stored is None:
            raise InvalidInputError(
                f"A mailbox has at most {settings.MAX_OVERRIDES} overrides (one per sender)."
            )
        self._overrides.drop(mailbox.id)
        return stored

    async def update_override(
        self, mailbox: Mailbox, override_id: str, given: OverrideInput
    ) -> Override:
        _own(mailbox)
        mailbox.principal.require(Access.WRITE)
        current = await self.override(mailbox, override_id)
        sender = given.sender_email_address
        if (
            isinstance(sender, settings.EmailAddressInput)
            and isinstance(sender.address, str)
            and sender.address.strip().lower() != current.address
        ):
            raise InvalidInputError(
                "An override's sender cannot be changed: delete it and create one for the "
                "new address.",
                target="senderEmailAddress",
            )
        classify_as = settings.classification(given, current.classify_as)
        if not await self.store.set_classification(mailbox.id, override_id, classify_as):
            raise NotFoundError(NO_OVERRIDE)
        self._overrides.drop(mailbox.id)
        return Override(current.id, current.address, current.name, classify_as)

    async def remove_override(self, mailbox: Mailbox, override_id: str) -> None:
        _own(mailbox)
        mailbox.principal.require(Access.WRITE)
        if not await self.store.remove_override(mailbox.id, override_id):
            raise NotFoundError(NO_OVERRIDE)
        self._overrides.drop(mailbox.id)

    async def classification_of(self, mailbox_id: str, address: str | None) -> str | None:
        """A sender's override in a mailbox (what a delivery reads; cached per mailbox)."""
        if not address:
            return None
        known, cached = self._overrides.get(mailbox_id)
        if not known or cached is None:
            found = await self.store.overrides(mailbox_id)
            cached = {o.address: o.classify_as for o in found}
            self._overrides.put(mailbox_id, cached)
        return cached.get(address.lower())
