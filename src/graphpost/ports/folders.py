"""The folders port: a mailbox's folder tree, with its item counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Folder:
    id: str
    mailbox_id: str
    parent_id: str | None
    display_name: str
    well_known: str | None
    is_hidden: bool
    total_count: int = 0
    unread_count: int = 0
    child_count: int = 0


class FolderStore(Protocol):
    async def list_folders(
        self, mailbox_id: str, parent_id: str, *, include_hidden: bool, top: int, skip: int
    ) -> tuple[list[Folder], int]:
        """One page of the children of ``parent_id``, and how many children there are."""
        ...

    async def all_folders(self, mailbox_id: str) -> list[Folder]:
        """Every folder of the mailbox (its root too), by id."""
        ...

    async def get_folder(self, mailbox_id: str, folder_id: str) -> Folder | None: ...
    async def well_known_folder(self, mailbox_id: str, name: str) -> Folder | None: ...
    async def create_folder(self, folder: Folder) -> Folder:
        """AlreadyExistsError when the parent has a child of that name (any case)."""
        ...

    async def rename_folder(self, mailbox_id: str, folder_id: str, name: str) -> None: ...
    async def move_folder(
        self, mailbox_id: str, folder_id: str, parent_id: str, name: str
    ) -> None: ...
    async def delete_folder(self, mailbox_id: str, folder_id: str) -> None:
        """The folder, its subfolders and every message in them."""
        ...

    async def is_within(self, mailbox_id: str, folder_id: str, ancestor_id: str) -> bool: ...
