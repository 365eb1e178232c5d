"""Mail folders: resolve by id or well-known name, list, create, rename, delete."""

from __future__ import annotations

from graphpost.domain import ids
from graphpost.domain.folders import ROOT, well_known_name
from graphpost.errors import (
    AlreadyExistsError,
    CannotDeleteError,
    InvalidInputError,
    MalformedIdError,
    NotFoundError,
)
from graphpost.ports.folders import Folder, FolderStore
from graphpost.services.directory import Mailbox
from graphpost.types import Access

NOT_FOUND = "The specified object was not found in the store."
MAX_NAME = 255


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("A folder needs a non-empty 'displayName'.", target="displayName")
    name = name.strip()
    if len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise InvalidInputError(
            f"'displayName' must be at most {MAX_NAME} printable characters.",
            target="displayName",
        )
    return name


class FolderService:
    def __init__(self, store: FolderStore) -> None:
        self.store = store
        # (mailbox, well-known name) → folder id: folder ids never change
        self._well_known: dict[tuple[str, str], str] = {}

    async def resolve(self, mailbox: Mailbox, key: str) -> Folder:
        """A folder by id or well-known name (any case)."""
        name = well_known_name(key)
        if name is not None:
            folder = await self.store.well_known_folder(mailbox.id, name)
            if folder is None:
                raise NotFoundError(NOT_FOUND)
            return folder
        if not ids.is_well_formed(key):
            raise MalformedIdError("Id is malformed.")
        folder = await self.store.get_folder(mailbox.id, key)
        if folder is None:
            raise NotFoundError(NOT_FOUND)
        return folder

    async def well_known_id(self, mailbox: Mailbox, name: str) -> str:
        return await self.well_known_of(mailbox.id, name)

    async def well_known_of(self, mailbox_id: str, name: str) -> str:
        """The id of a well-known folder of a mailbox (remembered: folder ids never change)."""
        cached = self._well_known.get((mailbox_id, name))
        if cached is not None:
            return cached
        folder = await self.store.well_known_folder(mailbox_id, name)
        if folder is None:
            raise NotFoundError(NOT_FOUND)
        if len(self._well_known) > 100_000:
            self._well_known.clear()
        self._well_known[(mailbox_id, name)] = folder.id
        return folder.id

    async def is_within(self, mailbox: Mailbox, folder_id: str, ancestor_id: str) -> bool:
        return await self.store.is_within(mailbox.id, folder_id, ancestor_id)

    async def get(self, mailbox: Mailbox, key: str) -> Folder:
        mailbox.principal.require(Access.READ)
        return await self.resolve(mailbox, key)

    async def children(
        self,
        mailbox: Mailbox,
        parent_key: str | None,
        *,
        include_hidden: bool,
        top: int,
        skip: int,
    ) -> tuple[list[Folder], int]:
        """Folders under ``parent_key`` (None: the top level, under msgfolderroot)."""
        mailbox.principal.require(Access.READ)
        parent = await self.resolve(mailbox, parent_key or ROOT)
        return await self.store.list_folders(
            mailbox.id, parent.id, include_hidden=include_hidden, top=top, skip=skip
        )

    async def create(
        self, mailbox: Mailbox, parent_key: str | None, *, name: object, hidden: object
    ) -> Folder:
        mailbox.principal.require(Access.WRITE)
        display_name = check_name(name)
        if hidden is not None and not isinstance(hidden, bool):
            raise InvalidInputError("'isHidden' must be true or false.", target="isHidden")
        parent = await self.resolve(mailbox, parent_key or ROOT)
        folder = Folder(ids.folder_id(), mailbox.id, parent.id, display_name, None, bool(hidden))
        try:
            return await self.store.create_folder(folder)
        except AlreadyExistsError:
            raise AlreadyExistsError(
                "A folder with the specified name already exists.", target="displayName"
            ) from None

    async def rename(self, mailbox: Mailbox, key: str, *, name: object) -> Folder:
        mailbox.principal.require(Access.WRITE)
        display_name = check_name(name)
        folder = await self.resolve(mailbox, key)
        if folder.well_known is not None:
            raise CannotDeleteError("Distinguished folders cannot be renamed.")
        try:
            await self.store.rename_folder(mailbox.id, folder.id, display_name)
        except AlreadyExistsError:
            raise AlreadyExistsError(
                "A folder with the specified name already exists.", target="displayName"
            ) from None
        return await self.resolve(mailbox, folder.id)

    async def delete(self, mailbox: Mailbox, key: str) -> None:
        """Into Deleted Items; a folder already there (or below it) is deleted for good."""
        mailbox.principal.require(Access.WRITE)
        folder = await self.resolve(mailbox, key)
        if folder.well_known is not None:
            raise CannotDeleteError("Distinguished folders cannot be deleted.")
        trash = await self.well_known_id(mailbox, "deleteditems")
        if await self.store.is_within(mailbox.id, folder.id, trash):
            await self.store.delete_folder(mailbox.id, folder.id)
            return
        name = folder.display_name
        for n in range(1, 1000):
            try:
                await self.store.move_folder(mailbox.id, folder.id, trash, name)
                return
            except AlreadyExistsError:
                name = f"{folder.display_name} ({n})"
        await self.store.delete_folder(mailbox.id, folder.id)
