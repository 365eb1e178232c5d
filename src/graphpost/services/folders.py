"""Mail folders: resolve by id or well-known name, list and query, create, rename, move,
delete (into Deleted Items or for good); search folders (a saved filter, evaluated live)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from graphpost.domain import ids
from graphpost.domain.folders import ROOT, well_known_name
from graphpost.domain.query import MessageQuery, Node, check_access
from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    CannotDeleteError,
    CannotMoveError,
    InvalidInputError,
    InvalidOperationError,
    MalformedIdError,
    MoveCopyError,
    NotFoundError,
)
from graphpost.ports.folders import Folder, FolderQuery, FolderStore, SearchSpec
from graphpost.ports.messages import MessageStore, SearchScope
from graphpost.services.directory import Mailbox
from graphpost.types import Access

NOT_FOUND = "The specified object was not found in the store."
MAX_NAME = 255
MAX_SOURCES = 100
"""Most source folders one search folder may name."""
PURGE_BATCH = 300
"""Messages deleted per transaction when a folder goes for good (SQLite has one writer: a
folder of 100,000 messages must not hold it for one long transaction)."""
NO_ITEMS_HERE = (
    "A search folder shows the messages of its source folders; messages cannot be created "
    "in it or moved or copied into it, nor can folders."
)


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


def _source_ids(value: object) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(
            "'sourceFolderIds' must be a non-empty list of folder ids or well-known names.",
            target="sourceFolderIds",
        )
    if len(value) > MAX_SOURCES:
        raise InvalidInputError(
            f"A search folder may name at most {MAX_SOURCES} source folders.",
            target="sourceFolderIds",
        )
    return list(value)


class FolderService:
    def __init__(
        self,
        store: FolderStore,
        messages: MessageStore | None = None,
        *,
        parse_filter: Callable[[str], Node] | None = None,
    ) -> None:
        self.store = store
        self.messages = messages  # counts of search folders, purges
        self._parse_filter = parse_filter  # the edge's $filter parser, for filterQuery
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
        return await self.live(mailbox, await self.resolve(mailbox, key))

    async def target(self, mailbox: Mailbox, key: str) -> Folder:
        """A folder messages or folders may be put in: not a search folder."""
        folder = await self.resolve(mailbox, key)
        if folder.search is not None:
            raise InvalidOperationError(NO_ITEMS_HERE)
        return folder

    # ------------------------------------------------------------ search folders

    def saved_filter(self, folder: Folder) -> Node:
        """A search folder's filterQuery as a $filter tree (checked when it was saved)."""
        if folder.search is None or self._parse_filter is None:
            raise InvalidOperationError("This folder is not a search folder.")
        return self._parse_filter(folder.search.filter_query)

    def scope(self, folder: Folder) -> SearchScope:
        """The messages a search folder shows."""
        assert folder.search is not None
        return SearchScope(
            folder.search.source_ids, folder.search.include_nested, self.saved_filter(folder)
        )

    async def live(self, mailbox: Mailbox, folder: Folder) -> Folder:
        """A search folder's item counts are its messages' now (a plain folder's are kept)."""
        if folder.search is None or self.messages is None:
            return folder
        scope = self.scope(folder)
        try:  # a Mail.ReadBasic caller may not count by what it may not read (a body filter)
            check_access(MessageQuery(filter=scope.saved), basic_only=mailbox.principal.basic_only)
        except AccessDeniedError:
            return folder
        total, unread = await self.messages.count_messages(mailbox.id, scope, None)
        return dataclasses.replace(folder, total_count=total, unread_count=unread)

    async def _search_spec(
        self,
        mailbox: Mailbox,
        *,
        filter_query: object,
        sources: object,
        nested: object,
        kept: tuple[str, ...] | None = None,
    ) -> SearchSpec:
        """A search definition from a client's values, checked: the filter parses and compiles
        (a query over the source folders runs once), every source folder given exists
        (``kept``: the ones already saved, left as they are, even one deleted since)."""
        if self._parse_filter is None or self.messages is None:
            raise InvalidOperationError("Search folders are not available on this server.")
        if not isinstance(filter_query, str) or not filter_query.strip():
            raise InvalidInputError(
                "A search folder needs a 'filterQuery': an OData $filter over messages, "
                "such as \"contains(subject, 'weekly digest')\".",
                target="filterQuery",
            )
        if nested is not None and not isinstance(nested, bool):
            raise InvalidInputError(
                "'includeNestedFolders' must be true or false.", target="includeNestedFolders"
            )
        resolved: list[str] = []
        for key in _source_ids(sources) if kept is None else []:
            found = await self.resolve(mailbox, key)
            if found.search is not None:
                raise InvalidInputError(
                    "A search folder cannot be the source of another search folder.",
                    target="sourceFolderIds",
                )
            if found.id not in resolved:
                resolved.append(found.id)
        saved = self._parse_filter(filter_query)
        check_access(MessageQuery(filter=saved), basic_only=mailbox.principal.basic_only)
        spec = SearchSpec(filter_query, tuple(resolved) if kept is None else kept, bool(nested))
        # compiling it over the store's columns is the last check: an unknown property is a 400
        await self.messages.count_messages(
            mailbox.id, SearchScope(spec.source_ids, spec.include_nested, saved), None
        )
        return spec

    async def create_search(
        self,
        mailbox: Mailbox,
        parent_key: str | None,
        *,
        name: object,
        filter_query: object,
        sources: object,
        nested: object,
    ) -> Folder:
        """POST …/childFolders with @odata.type microsoft.graph.mailSearchFolder."""
        mailbox.principal.require(Access.WRITE)
        display_name = check_name(name)
        parent = await self.target(mailbox, parent_key or ROOT)
        spec = await self._search_spec(
            mailbox, filter_query=filter_query, sources=sources, nested=nested
        )
        folder = Folder(
            ids.folder_id(), mailbox.id, parent.id, display_name, None, False, search=spec
        )
        try:
            created = await self.store.create_folder(folder)
        except AlreadyExistsError:
            raise AlreadyExistsError(
                "A folder with the specified name already exists.", target="displayName"
            ) from None
        return await self.live(mailbox, created)

    async def update_search(
        self,
        mailbox: Mailbox,
        key: str,
        *,
        name: object,
        filter_query: object,
        sources: object,
        nested: object,
    ) -> Folder:
        """PATCH of a search folder: any of displayName, filterQuery, sourceFolderIds,
        includeNestedFolders (the others keep their values)."""
        mailbox.principal.require(Access.WRITE)
        folder = await self.resolve(mailbox, key)
        assert folder.search is not None
        display_name = folder.display_name if name is None else check_name(name)
        current = folder.search
        spec = await self._search_spec(
            mailbox,
            filter_query=current.filter_query if filter_query is None else filter_query,
            sources=sources,
            nested=current.include_nested if nested is None else nested,
            kept=current.source_ids if sources is None else None,
        )
        try:
            await self.store.update_search_folder(mailbox.id, folder.id, display_name, spec)
        except AlreadyExistsError:
            raise AlreadyExistsError(
                "A folder with the specified name already exists.", target="displayName"
            ) from None
        return await self.live(mailbox, await self.resolve(mailbox, folder.id))

    # ------------------------------------------------------------ queries

    async def query(
        self, mailbox: Mailbox, parent_key: str | None, query: FolderQuery
    ) -> tuple[list[Folder], int | None, bool]:
        """A page of the folders under ``parent_key`` (None: the top level) matching
        ``query``, the count if asked, and whether there are more."""
        mailbox.principal.require(Access.READ)
        parent = await self.resolve(mailbox, parent_key or ROOT)
        found, count, more = await self.store.query_folders(mailbox.id, parent.id, query)
        return [await self.live(mailbox, f) for f in found], count, more

    async def children_of(
        self, mailbox: Mailbox, parent: Folder, query: FolderQuery
    ) -> list[Folder]:
        """The children of a folder already read (``$expand=childFolders``)."""
        found, _, _ = await self.store.query_folders(mailbox.id, parent.id, query)
        return [await self.live(mailbox, f) for f in found]

    # ------------------------------------------------------------ move, delete for good

    async def move(self, mailbox: Mailbox, key: str, destination: str) -> Folder:
        """POST …/move: the folder, with everything in it, under ``destination`` (its id
        stays). A well-known folder stays where it is; a folder cannot go below itself."""
        mailbox.principal.require(Access.WRITE)
        folder = await self.resolve(mailbox, key)
        if folder.well_known is not None:
            raise CannotMoveError("Distinguished folders cannot be moved.")
        parent = await self.target(mailbox, destination)
        if await self.store.is_within(mailbox.id, parent.id, folder.id):
            raise MoveCopyError(
                "The move or copy operation failed: a folder cannot be moved into itself or "
                "one of its subfolders."
            )
        if parent.id != folder.parent_id:
            try:
                await self.store.move_folder(mailbox.id, folder.id, parent.id, folder.display_name)
            except AlreadyExistsError:
                raise AlreadyExistsError(
                    "A folder with the specified name already exists.", target="displayName"
                ) from None
        return await self.live(mailbox, await self.resolve(mailbox, folder.id))

    async def permanent_delete(self, mailbox: Mailbox, key: str) -> None:
        """POST …/permanentDelete: the folder, its subfolders and every message in them, for
        good (not into Deleted Items)."""
        mailbox.principal.require(Access.WRITE)
        folder = await self.resolve(mailbox, key)
        if folder.well_known is not None:
            raise CannotDeleteError("Distinguished folders cannot be deleted.")
        await self.purge(mailbox, folder)

    async def purge(self, mailbox: Mailbox, folder: Folder) -> None:
        """Delete a folder's messages, deepest folders first, ``PURGE_BATCH`` per transaction,
        then the folders in one. Interrupted, it leaves fewer messages and every folder, and
        running it again finishes it."""
        tree = await self.store.subtree(mailbox.id, folder.id)
        for f in reversed(tree):
            if f.search is not None:
                continue  # a search folder holds no messages of its own
            while await self.store.purge_messages(mailbox.id, f.id, PURGE_BATCH) == PURGE_BATCH:
                pass
        await self.store.delete_folder(mailbox.id, folder.id)

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
        parent = await self.target(mailbox, parent_key or ROOT)
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
            await self.purge(mailbox, folder)
            return
        name = folder.display_name
        for n in range(1, 1000):
            try:
                await self.store.move_folder(mailbox.id, folder.id, trash, name)
                return
            except AlreadyExistsError:
                name = f"{folder.display_name} ({n})"
        await self.purge(mailbox, folder)
