"""The folders port's queries, subtrees, purges and search folders, and the messages port's
counts and search scopes: one contract, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

import pytest

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, attachment, item
from graphpost.domain.query import And, BoolProp, Compare, FunctionCall, Lit, Not, OrderBy, Prop
from graphpost.errors import MoveCopyError, QueryError, UnknownPropertyError
from graphpost.ports.changes import DELETED, FOLDER, MESSAGE, UPDATED
from graphpost.ports.directory import User
from graphpost.ports.folders import Folder, FolderQuery, SearchSpec
from graphpost.ports.messages import NewMessage, SearchScope
from graphpost.services.directory import mailbox_folders
from graphpost.store.changes import SqlChangeLog
from graphpost.store.engine import Tx
from tests.store.conftest import Stores

pytestmark = pytest.mark.anyio


async def a_user(store: Stores, mail: str = "a@example.com") -> User:
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, "A Person", mail, mail)
    await store.directory.add_user(user, mailbox_folders(user.id))
    return user


def a_message(user: User, folder: str, *, subject: str = "s", read: bool = True) -> NewMessage:
    me = Recipient(EmailAddress("A", user.mail))
    msg = item(
        message_id=ids.message_id(), folder_id=folder, now=1_700_000_000, web_base="http://x",
        conversation_index=ids.conversation_index(), attachments=[],
        internet_message_id=f"<{ids.guid()}@example.com>", subject=subject,
        body=ItemBody("text", subject), sender=me, from_=me, to=[me], cc=[], bcc=[],
        reply_to=[], is_read=read, is_draft=True,
    )  # fmt: skip
    return NewMessage(user.id, msg)


async def _tree(store: Stores, user: User) -> tuple[Folder, Folder, Folder, Folder]:
    """inbox/P with children 'alpha' (one child of its own) and 'Beta' (hidden)."""
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    p = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, inbox.id, "P", None, False)
    )
    a = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, p.id, "alpha", None, False)
    )
    b = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, p.id, "Beta", None, True)
    )
    deep = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, a.id, "deep", None, False)
    )
    return p, a, b, deep


def _names(found: list[Folder]) -> list[str]:
    return [f.display_name for f in found]


async def test_query_folders(store: Stores) -> None:
    user = await a_user(store)
    p, a, b, _ = await _tree(store, user)
    await store.messages.insert_message(a_message(user, b.id, read=False))

    async def q(**kw: object) -> tuple[list[str], int | None, bool]:
        found, count, more = await store.folders.query_folders(user.id, p.id, FolderQuery(**kw))  # type: ignore[arg-type]
        return _names(found), count, more

    assert await q() == (["alpha"], None, False)
    assert await q(include_hidden=True, count=True) == (["alpha", "Beta"], 2, False)
    name = Prop(("displayname",))
    assert (
        await q(include_hidden=True, filter=FunctionCall("startswith", name, Lit("B", "string")))
    )[0] == ["Beta"]
    assert (await q(include_hidden=True, filter=Compare("eq", name, Lit("ALPHA", "string"))))[
        0
    ] == ["alpha"]
    total = Prop(("totalitemcount",))
    assert (await q(include_hidden=True, filter=Compare("ge", total, Lit(1, "number"))))[0] == [
        "Beta"
    ]
    hidden = BoolProp(Prop(("ishidden",)))
    assert (await q(include_hidden=True, filter=Not(hidden)))[0] == ["alpha"]
    both = And(Compare("eq", Prop(("parentfolderid",)), Lit(p.id, "string")), hidden)
    assert (await q(include_hidden=True, filter=both))[0] == ["Beta"]
    assert (await q(include_hidden=True, orderby=[OrderBy(name, True)]))[0] == ["Beta", "alpha"]
    assert await q(include_hidden=True, top=1, count=True) == (["alpha"], 2, True)
    assert await q(include_hidden=True, top=1, skip=1) == (["Beta"], None, False)
    for bad, error in (
        (Compare("eq", Prop(("subject",)), Lit("x", "string")), UnknownPropertyError),
        (Compare("eq", total, Lit("many", "string")), QueryError),
        (FunctionCall("contains", total, Lit("1", "string")), QueryError),
        (BoolProp(name), QueryError),
    ):
        with pytest.raises(error):
            await q(filter=bad)
    with pytest.raises(UnknownPropertyError):
        await q(orderby=[OrderBy(Prop(("receiveddatetime",)), False)])
    assert a.child_count == 0  # the value as made; the store's is 1


async def test_subtree_purge_and_delete(store: Stores) -> None:
    user = await a_user(store)
    p, _, b, deep = await _tree(store, user)
    assert _names(await store.folders.subtree(user.id, p.id)) == ["P", "alpha", "Beta", "deep"]
    for n in range(5):
        new = a_message(user, deep.id, read=n % 2 == 0)
        blob = attachment("f.bin", "application/octet-stream", b"abc", is_inline=False,
                          content_id=None, now=1_700_000_000)  # fmt: skip
        await store.messages.insert_message(NewMessage(user.id, new.message, attachments=[blob]))
    assert await store.folders.purge_messages(user.id, deep.id, 2) == 2
    left = await store.folders.get_folder(user.id, deep.id)
    assert left is not None and left.total_count == 3 and left.unread_count == 1

    async def refs(tx: Tx) -> int:
        row = await tx.fetchone("SELECT refs FROM blobs", ())
        return int(row[0]) if row else -1

    assert await store.engine.read(refs) == 3
    assert await store.folders.purge_messages(user.id, deep.id, 10) == 3
    assert await store.folders.purge_messages(user.id, deep.id, 10) == 0
    assert await store.engine.read(refs) == 0
    await store.folders.delete_folder(user.id, p.id)
    assert await store.folders.get_folder(user.id, b.id) is None


async def test_move_refuses_a_loop_even_when_racing(store: Stores) -> None:
    user = await a_user(store)
    _, a, _, deep = await _tree(store, user)
    with pytest.raises(MoveCopyError):
        await store.folders.move_folder(user.id, a.id, deep.id, "alpha")
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    x = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, inbox.id, "x", None, False)
    )
    y = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, inbox.id, "y", None, False)
    )
    # x under y and y under x at once: one wins, the other is refused
    results = await asyncio.gather(
        store.folders.move_folder(user.id, x.id, y.id, "x"),
        store.folders.move_folder(user.id, y.id, x.id, "y"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, MoveCopyError) for r in results) == 1, results
    assert await store.folders.is_within(user.id, x.id, inbox.id)
    assert await store.folders.is_within(user.id, y.id, inbox.id)


async def test_search_folder_and_scoped_counts(store: Stores) -> None:
    user = await a_user(store)
    p, a, b, deep = await _tree(store, user)
    for folder, subject, read in ((p.id, "digest 1", False), (deep.id, "digest 2", True),
                                  (a.id, "other", False), (b.id, "digest 3", False)):  # fmt: skip
        await store.messages.insert_message(a_message(user, folder, subject=subject, read=read))
    spec = SearchSpec("contains(subject, 'digest')", (p.id,), True)
    sf = Folder(ids.folder_id(), user.id, p.id, "Digests", None, False, search=spec)
    await store.folders.create_folder(sf)
    got = await store.folders.get_folder(user.id, sf.id)
    assert got is not None and got.search == spec
    listed, _, _ = await store.folders.query_folders(user.id, p.id, FolderQuery())
    assert [f.search for f in listed if f.id == sf.id] == [spec]
    saved = FunctionCall("contains", Prop(("subject",)), Lit("digest", "string"))
    assert await store.messages.count_messages(
        user.id, SearchScope((p.id,), True, saved), None
    ) == (3, 2)
    assert await store.messages.count_messages(
        user.id, SearchScope((p.id,), False, saved), None
    ) == (1, 1)
    assert await store.messages.count_messages(
        user.id, SearchScope((a.id, deep.id), True, saved), None
    ) == (1, 0)
    assert await store.messages.count_messages(user.id, SearchScope((), True, saved), None) == (
        0,
        0,
    )
    unread = Compare("eq", Prop(("isread",)), Lit(False, "bool"))
    assert await store.messages.count_messages(
        user.id, SearchScope((p.id,), True, saved), unread
    ) == (2, 2)
    other = await a_user(store, "z@example.com")
    assert await store.messages.count_messages(
        other.id, SearchScope((p.id,), True, saved), None
    ) == (0, 0)
    changed = SearchSpec("subject eq 'other'", (a.id,), False)
    await store.folders.update_search_folder(user.id, sf.id, "Others", changed)
    got = await store.folders.get_folder(user.id, sf.id)
    assert got is not None and got.search == changed and got.display_name == "Others"
    # messages_after walks by seq
    first = await store.messages.messages_after(user.id, p.id, 0, 10)
    assert [m.folder_id for m in first] == [p.id]
    assert await store.messages.messages_after(user.id, p.id, first[-1].seq, 10) == []
    await store.folders.delete_folder(user.id, sf.id)
    assert await store.folders.get_folder(user.id, sf.id) is None


async def test_new_folder_writes_are_in_the_change_log(store: Stores) -> None:
    """A purge records each message deleted; a search folder's change, the folder updated;
    made in the transaction that writes them."""
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    p, a, _, _ = await _tree(store, user)
    made = [await store.messages.insert_message(a_message(user, a.id)) for _ in range(3)]
    before = await log.last_seq(user.id)
    assert await store.folders.purge_messages(user.id, a.id, 2) == 2
    got = await log.changes_after(user.id, before, 10)
    assert [(c.kind, c.item_id, c.folder_id, c.change_type) for c in got] == [
        (MESSAGE, m.id, a.id, DELETED) for m in made[:2]
    ]
    spec = SearchSpec("isRead eq false", (a.id,), False)
    sf = await store.folders.create_folder(
        Folder(ids.folder_id(), user.id, p.id, "S", None, False, search=spec)
    )
    before = await log.last_seq(user.id)
    await store.folders.update_search_folder(user.id, sf.id, "S2", spec)
    got = await log.changes_after(user.id, before, 10)
    assert [(c.kind, c.item_id, c.folder_id, c.change_type) for c in got] == [
        (FOLDER, sf.id, p.id, UPDATED)
    ]
    # a folder that is not there: nothing written, nothing recorded
    await store.folders.update_search_folder(user.id, ids.folder_id(), "x", spec)
    assert await log.last_seq(user.id) == got[-1].seq
