"""Delta queries: the messages of a folder, and a mailbox's folders, synchronised in rounds.

A round starts without a token (the initial sync: every item, paged by a keyset) or with the
token of the last round's ``@odata.deltaLink`` (the changes since). Tokens are opaque to the
client: URL-safe base64 of a small JSON value naming the mailbox, the folder, the change log
position (``ports.changes``) and, while an initial sync pages, the keyset position; and the
``$select``, ``$filter`` and ``changeType`` the round was started with. A token is checked
strictly (its shape, its mailbox and folder, its position against the log): anything else is
``410 SyncStateInvalid``, and a position older than what the log still holds (pruned) is
``410 SyncStateNotFound``, after which the client synchronises from the start. A token names
nothing the caller could not read anyway: changing one only changes what its own mailbox's
sync returns, so it is not signed.

An initial sync takes the log's last seq before its first page, so whatever commits while
it pages is in the next round. A round returns each item named by the changes after its
position once per page: as it is now when it is in the folder, else ``@removed`` (reason
``deleted``, which Graph also gives an item moved out of the folder).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

import msgspec

from graphpost.domain.folders import well_known_name
from graphpost.errors import InvalidOperationError, SyncStateError, SyncStateNotFoundError
from graphpost.ports.changes import FOLDER, MESSAGE, ChangeLog
from graphpost.ports.folders import Folder, FolderStore
from graphpost.ports.messages import MessageStore, StoredMessage
from graphpost.services.directory import Mailbox
from graphpost.services.folders import FolderService
from graphpost.types import Access

DEFAULT_PAGE = 10
MAX_PAGE = 1000
CHANGE_TYPES = ("created", "updated", "deleted")
# Graph: "Applying $filter in a delta query returns only up to 5,000 messages" (the initial
# sync's, newest first; the rounds after it return the changes as without the filter)
MAX_FILTERED = 5000
_LOG_BATCH = 2000
_MAX_TOKEN = 4096
_INT64 = 2**63  # a token's numbers go to 64-bit columns: anything wider is not one we wrote

EXPIRED = (
    "The sync state generation is not found. The delta token is expired and data must be "
    "synchronized again."
)
OTHER_FOLDER = "The sync state root folder is not found."
NO_SEARCH_DELTA = (
    "Delta queries are not supported on a search folder: synchronise its source folders."
)
INVALID = "The sync state is invalid: start the synchronization again without a token."


class Token(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What a delta link carries (short names: it travels in every URL)."""

    v: int  # format
    k: str  # "m": messages of a folder, "f": the folders of a mailbox
    m: str  # mailbox id
    f: str  # folder id ("" for folders)
    s: int  # change log position: changes after it are still to be returned
    i: bool = False  # an initial sync, paging
    p: tuple[int, int] | None = None  # initial: keyset position (received at, seq)
    q: str = ""  # initial folders: the last folder id returned
    sel: list[str] | None = None
    since: tuple[int, bool] | None = None
    ct: str | None = None
    n: int = 0  # initial with a $filter: the messages returned so far


_encode = msgspec.json.Encoder().encode
_decode_token = msgspec.json.Decoder(Token).decode


def encode_token(token: Token) -> str:
    return base64.urlsafe_b64encode(_encode(token)).rstrip(b"=").decode("ascii")


def decode_token(text: str) -> Token:
    """A token as this server wrote it, or ``SyncStateError``."""
    if not text or len(text) > _MAX_TOKEN or not text.isascii():
        raise SyncStateError(INVALID)
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        token = _decode_token(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise SyncStateError(INVALID) from None
    numbers = [token.s, token.n, *(token.p or ()), *(token.since[:1] if token.since else ())]
    valid = (
        token.v == 1
        and token.k in ("m", "f")
        and token.s >= 0
        and token.n >= 0
        and (token.n == 0 or (token.i and token.since is not None))
        and all(-_INT64 <= n < _INT64 for n in numbers)
        and (token.ct is None or token.ct in CHANGE_TYPES)
        and (token.p is None or token.i)
    )
    if not valid:
        raise SyncStateError(INVALID)
    return token


@dataclass(frozen=True, slots=True)
class DeltaQuery:
    """A delta request: its token, or the options a new round starts with."""

    token: str | None = None
    page_size: int = DEFAULT_PAGE
    select: list[str] | None = None
    since: tuple[int, bool] | None = None  # receivedDateTime ge (True) / gt (False) seconds
    change_type: str | None = None


@dataclass(slots=True)
class MessagePage:
    messages: list[StoredMessage] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # ids, in the order of ``order``
    order: list[tuple[bool, int]] = field(default_factory=list)  # (removed?, index)
    select: list[str] | None = None
    next_token: str | None = None  # a page follows (@odata.nextLink)
    delta_token: str | None = None  # the round is over (@odata.deltaLink)


@dataclass(slots=True)
class FolderPage:
    folders: list[Folder] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    order: list[tuple[bool, int]] = field(default_factory=list)
    select: list[str] | None = None
    next_token: str | None = None
    delta_token: str | None = None


class DeltaService:
    def __init__(
        self,
        messages: MessageStore,
        folders: FolderService,
        folder_store: FolderStore,
        changes: ChangeLog,
        *,
        filtered_cap: int = MAX_FILTERED,
    ) -> None:
        self.messages = messages
        self.folders = folders
        self.folder_store = folder_store
        self.changes = changes
        self.filtered_cap = filtered_cap

    async def _check(self, mailbox_id: str, seq: int) -> None:
        """A token's position must be one the log reached and still holds. Read after the
        changes: a prune that removed some of them shows here."""
        last, horizon = await self.changes.counters(mailbox_id)
        if seq > last:
            raise SyncStateError(INVALID)
        if horizon > seq:
            raise SyncStateNotFoundError(EXPIRED)

    def _token(self, mailbox: Mailbox, kind: str, key: str, query: DeltaQuery) -> Token | None:
        if query.token is None:
            return None
        token = decode_token(query.token)
        if token.k != kind or token.m != mailbox.id or token.f != key:
            raise SyncStateNotFoundError(OTHER_FOLDER)
        return token

    # ------------------------------------------------------------ messages of a folder

    async def messages_page(
        self, mailbox: Mailbox, folder_key: str, query: DeltaQuery
    ) -> MessagePage:
        mailbox.principal.require(Access.READ)
        known = well_known_name(folder_key)
        if known is not None:  # a well-known folder's id is remembered: no read
            folder_id = await self.folders.well_known_of(mailbox.id, known)
        else:
            folder = await self.folders.resolve(mailbox, folder_key)
            if folder.search is not None:
                # its messages are its sources' (their changes name those folders): a round
                # would be empty whatever the folder shows
                raise InvalidOperationError(NO_SEARCH_DELTA)
            folder_id = folder.id
        token = self._token(mailbox, "m", folder_id, query)
        if token is None:
            token = Token(
                v=1, k="m", m=mailbox.id, f=folder_id, s=await self.changes.last_seq(mailbox.id),
                i=True, sel=query.select, since=query.since, ct=query.change_type,
            )  # fmt: skip
        page = MessagePage(select=token.sel)
        size = query.page_size
        if token.i:
            if token.since is not None:  # Graph's cap of a filtered initial sync
                size = max(0, min(size, self.filtered_cap - token.n))
            rows = []
            if size:
                rows = await self.messages.delta_page(
                    mailbox.id, folder_id, after=token.p, since=token.since, limit=size + 1
                )
            shown = rows[:size]
            for n, (_, stored) in enumerate(shown):
                page.messages.append(stored)
                page.order.append((False, n))
            await self._check(mailbox.id, token.s)
            returned = token.n + len(shown) if token.since is not None else 0
            if len(rows) > size and (token.since is None or returned < self.filtered_cap):
                last_at, last = shown[-1]
                page.next_token = encode_token(
                    msgspec.structs.replace(token, p=(last_at, last.seq), n=returned)
                )
            else:
                page.delta_token = encode_token(
                    msgspec.structs.replace(token, i=False, p=None, n=0)
                )
            return page
        items, position, done = await self._changed(mailbox.id, token.s, size, folder_id)
        await self._check(mailbox.id, token.s)
        present = {
            stored.id: (at, stored)
            for at, stored in await self.messages.messages_by_id(mailbox.id, list(items))
            if stored.folder_id == folder_id
        }
        for item_id, entered in items.items():
            found = present.get(item_id)
            if found is None:
                if token.ct in (None, "deleted"):
                    page.order.append((True, len(page.removed)))
                    page.removed.append(item_id)
                continue
            at, stored = found
            if token.since is not None and not (
                at >= token.since[0] if token.since[1] else at > token.since[0]
            ):
                continue
            wanted = {None: True, "created": entered, "updated": not entered, "deleted": False}
            if wanted[token.ct]:
                page.order.append((False, len(page.messages)))
                page.messages.append(stored)
        following = encode_token(msgspec.structs.replace(token, s=position))
        if done:
            page.delta_token = following
        else:
            page.next_token = following
        return page

    async def _changed(
        self, mailbox_id: str, after: int, size: int, folder_id: str
    ) -> tuple[dict[str, bool], int, bool]:
        """The messages of up to ``size`` changes after ``after`` that touch the folder (in
        or out), each once with whether it entered the folder; the position reached, and
        whether the log ended there."""
        items: dict[str, bool] = {}
        position = after
        while True:
            batch = await self.changes.changes_after(mailbox_id, position, _LOG_BATCH)
            for c in batch:
                if c.kind == MESSAGE and folder_id in (c.folder_id, c.prior_folder_id):
                    if c.item_id not in items:
                        if len(items) >= size:
                            return items, position, False
                        items[c.item_id] = False
                    if c.folder_id == folder_id and (
                        c.change_type == "created"
                        or (c.prior_folder_id is not None and c.prior_folder_id != folder_id)
                    ):
                        items[c.item_id] = True
                position = c.seq
            if len(batch) < _LOG_BATCH:
                return items, position, True

    # ------------------------------------------------------------ the folders of a mailbox

    async def folders_page(
        self, mailbox: Mailbox, query: DeltaQuery, parent_key: str | None = None
    ) -> FolderPage:
        """The mailbox's folders (``mailFolders/delta``: the whole tree), or the child folders
        of one (``mailFolders/{id}/childFolders/delta``: its direct children; one moved out
        of it, or deleted, is ``@removed``)."""
        mailbox.principal.require(Access.READ)
        parent = ""
        if parent_key is not None:
            parent = (await self.folders.resolve(mailbox, parent_key)).id
        token = self._token(mailbox, "f", parent, query)
        if token is None:
            token = Token(
                v=1, k="f", m=mailbox.id, f=parent, s=await self.changes.last_seq(mailbox.id),
                i=True, sel=query.select,
            )  # fmt: skip
        page = FolderPage(select=token.sel)
        size = query.page_size
        folders = await self.folder_store.all_folders(mailbox.id)
        # the root is not one of them; ordered here, by code point, as the keyset compares
        # (a database's collation may order ids otherwise)
        every = sorted(
            (f for f in folders if f.parent_id and (not parent or f.parent_id == parent)),
            key=lambda f: f.id,
        )
        roots = {f.id for f in folders if not f.parent_id}
        left: set[str] = set()  # children of ``parent`` moved out or deleted in these changes
        if token.i:
            rest = [f for f in every if f.id > token.q]
            for n, f in enumerate(rest[:size]):
                page.folders.append(f)
                page.order.append((False, n))
            await self._check(mailbox.id, token.s)
            if len(rest) > size:
                page.next_token = encode_token(msgspec.structs.replace(token, q=rest[size - 1].id))
            else:
                page.delta_token = encode_token(msgspec.structs.replace(token, i=False, q=""))
            return page
        touched: dict[str, None] = {}
        position = token.s
        full = False
        while not full:
            batch = await self.changes.changes_after(mailbox.id, position, _LOG_BATCH)
            for c in batch:
                # a message's change changes its folders' item counts, a folder's its
                # parents' child counts
                named = [c.folder_id, c.prior_folder_id or ""]
                if c.kind == FOLDER:
                    named.insert(0, c.item_id)
                    if parent and parent in (c.folder_id, c.prior_folder_id):
                        left.add(c.item_id)
                fresh = [f for f in named if f and f not in touched and f not in roots]
                if len(touched) + len(fresh) > size and touched:
                    full = True
                    break
                touched.update(dict.fromkeys(fresh))
                position = c.seq
            else:
                if len(batch) < _LOG_BATCH:
                    break
                continue
        await self._check(mailbox.id, token.s)
        by_id = {f.id: f for f in every}
        for folder_id in touched:
            found = by_id.get(folder_id)
            if found is None and parent and folder_id not in left:
                continue  # never a child of ``parent`` in these changes: not this sync's
            if found is None:
                page.order.append((True, len(page.removed)))
                page.removed.append(folder_id)
            else:
                page.order.append((False, len(page.folders)))
                page.folders.append(found)
        following = encode_token(msgspec.structs.replace(token, s=position))
        if full:
            page.next_token = following
        else:
            page.delta_token = following
        return page
