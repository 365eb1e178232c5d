"""The folders port: a mailbox's folder tree, with its item counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from graphpost.domain.query import Node, OrderBy


@dataclass(frozen=True, slots=True)
class SearchSpec:
    """What makes a folder a mailSearchFolder: a saved ``$filter`` over messages
    (``filter_query``, as the client gave it) evaluated live over ``source_ids`` (and every
    folder below them when ``include_nested``)."""

    filter_query: str
    source_ids: tuple[str, ...]
    include_nested: bool


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
    search: SearchSpec | None = None  # a mailSearchFolder's definition


@dataclass(slots=True)
class FolderQuery:
    """A page of a folder's children: ``$filter`` and ``$orderby`` over the folder
    properties, paging, ``$count``."""

    include_hidden: bool = False
    filter: Node | None = None
    orderby: list[OrderBy] = field(default_factory=list)
    top: int = 10
    skip: int = 0
    count: bool = False


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
        """AlreadyExistsError when the parent has a child of that name (any case); a folder
        with ``search`` is a search folder."""
        ...

    async def rename_folder(self, mailbox_id: str, folder_id: str, name: str) -> None: ...
    async def move_folder(
        self, mailbox_id: str, folder_id: str, parent_id: str, name: str
    ) -> None: ...
    async def delete_folder(self, mailbox_id: str, folder_id: str) -> None:
        """The folder, its subfolders and every message in them."""
        ...

    async def is_within(self, mailbox_id: str, folder_id: str, ancestor_id: str) -> bool: ...

    async def query_folders(
        self, mailbox_id: str, parent_id: str, query: FolderQuery
    ) -> tuple[list[Folder], int | None, bool]:
        """One page of the children of ``parent_id`` matching ``query``, the count of all that
        match if asked, and whether there are more."""
        ...

    async def subtree(self, mailbox_id: str, folder_id: str) -> list[Folder]:
        """The folder and every folder below it, parents before their children."""
        ...

    async def update_search_folder(
        self, mailbox_id: str, folder_id: str, name: str, search: SearchSpec
    ) -> None: ...

    async def purge_messages(self, mailbox_id: str, folder_id: str, limit: int) -> int:
        """Delete at most ``limit`` messages of ``folder_id`` for good (their blobs released),
        in one transaction; how many went."""
        ...
