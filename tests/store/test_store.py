"""One contract for the store ports, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import msgspec
import pytest
from msgspec.structs import replace as replace_struct

from graphpost.domain import extended, ids, message
from graphpost.domain.extended import ExtendedProperty
from graphpost.domain.message import attachment
from graphpost.domain.query import (
    And,
    Compare,
    Lambda,
    Lit,
    MessageQuery,
    OrderBy,
    Prop,
)
from graphpost.errors import AlreadyExistsError, ExtendedPropertyError
from graphpost.ports.directory import User
from graphpost.ports.folders import Folder
from graphpost.services.directory import mailbox_folders
from graphpost.store.engine import Tx
from tests.store.conftest import Stores
from tests.store.samples import a_message, a_user

pytestmark = pytest.mark.anyio


async def test_users_and_folders(store: Stores) -> None:
    user = await a_user(store)
    assert await store.directory.find_user("A@EXAMPLE.COM") == user
    assert await store.directory.find_user(user.id) == user
    assert await store.directory.display_names(["a@example.com", "x@y.z"]) == {
        "a@example.com": "A Person"
    }
    with pytest.raises(AlreadyExistsError):
        await a_user(store)
    drafts = await store.folders.well_known_folder(user.id, "drafts")
    root = await store.folders.well_known_folder(user.id, "msgfolderroot")
    assert drafts is not None and root is not None
    top, total = await store.folders.list_folders(
        user.id, root.id, include_hidden=False, top=50, skip=0
    )
    assert total == len(top) == 8
    child = Folder(ids.folder_id(), user.id, drafts.id, "Sub", None, False)
    await store.folders.create_folder(child)
    refreshed = await store.folders.get_folder(user.id, drafts.id)
    assert refreshed is not None and refreshed.child_count == 1
    with pytest.raises(AlreadyExistsError):
        await store.folders.create_folder(Folder(ids.folder_id(), user.id, drafts.id, "sub", None,
                                               False))  # fmt: skip
    assert await store.folders.is_within(user.id, child.id, root.id)
    assert await store.directory.remove_user(user.id)
    assert await store.directory.find_user(user.id) is None


async def a_person(store: Stores, upn: str, mail: str) -> User:
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, upn.split("@")[0], mail, upn)
    return await store.directory.add_user(user, mailbox_folders(user.id))


async def test_an_address_names_one_user_across_upn_and_mail(store: Stores) -> None:
    """A new user's upn and mail must each be free in BOTH columns: else find_user("carol@…")
    could mean two people (bob by mail, carol by upn)."""
    bob = await a_person(store, "bob@example.com", "carol@example.com")
    # a new upn that is someone's mail, in any case
    with pytest.raises(AlreadyExistsError, match=r"carol@example\.com"):
        await a_person(store, "Carol@Example.com", "carol2@example.com")
    # a new mail that is someone's upn
    with pytest.raises(AlreadyExistsError, match=r"bob@example\.com"):
        await a_person(store, "dave@example.com", "BOB@example.com")
    # the same address as one's own upn and mail stays fine
    dave = await a_person(store, "dave@example.com", "dave@example.com")
    assert await store.directory.find_user("carol@example.com") == bob
    assert await store.directory.find_user("dave@example.com") == dave
    assert [u.id for u in await store.directory.list_users()] == [bob.id, dave.id]


async def test_concurrent_adds_cannot_share_an_address(store: Stores) -> None:
    """Two adds at once whose upn and mail cross (x: upn a, mail b; y: upn b, mail c): one
    wins, the other is refused (PostgreSQL serializes the check and the insert)."""
    for round_ in range(5):
        a, b, c = (f"{n}{round_}@example.com" for n in "abc")
        results = await asyncio.gather(
            a_person(store, a, b), a_person(store, b, c), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(failed) == 1 and isinstance(failed[0], AlreadyExistsError), results


async def test_find_user_prefers_id_then_upn_then_mail(store: Stores) -> None:
    """Rows written before the check (one's mail is another's upn) resolve deterministically,
    whichever was inserted first."""
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    bob, carol = ids.guid(), ids.guid()

    async def insert(tx: Tx) -> None:
        for uid, upn, mail in ((bob, "bob@example.com", "carol@example.com"),
                               (carol, "carol@example.com", "carol2@example.com")):  # fmt: skip
            await tx.execute(
                "INSERT INTO users (id, tenant_id, display_name, mail, mail_lower, upn, "
                "upn_lower, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (uid, tenant.id, upn, mail, mail, upn, upn),
            )

    await store.engine.write(insert)
    for _ in range(3):
        found = await store.directory.find_user("CAROL@example.com")
        assert found is not None and found.id == carol
    found = await store.directory.find_user("carol2@example.com")
    assert found is not None and found.id == carol
    found = await store.directory.find_user(bob)
    assert found is not None and found.id == bob


async def test_messages_counts_and_children(store: Stores) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    att = attachment("a.txt", "text/plain", b"hi", is_inline=False, content_id=None, now=1)
    extension = {"extensionName": "X.Y", "a": 1}
    new = replace(a_message(user, inbox.id, read=False), attachments=[att], extensions=[extension])
    written = await store.messages.insert_message(new)
    msg = new.message
    got = await store.messages.get_message(user.id, msg.id)
    assert got == written and got is not None and got.message() == msg
    assert await store.messages.attachments(got) == [att]
    assert await store.messages.extensions(got) == [{"extensionName": "X.Y", "a": 1}]
    folder = await store.folders.get_folder(user.id, inbox.id)
    assert folder is not None and (folder.total_count, folder.unread_count) == (1, 1)
    old_key, new_key = msg.change_key, ids.change_key()
    read = msgspec.structs.replace(msg, is_read=True, change_key=new_key)
    assert await store.messages.replace_message(user.id, read, expected_change_key="stale") is None
    assert await store.messages.replace_message(user.id, read, expected_change_key=old_key)
    folder = await store.folders.get_folder(user.id, inbox.id)
    assert folder is not None and folder.unread_count == 0
    trash = await store.folders.well_known_folder(user.id, "deleteditems")
    assert trash is not None
    moved_doc = msgspec.structs.replace(
        read, parent_folder_id=trash.id, change_key=ids.change_key()
    )
    assert await store.messages.replace_message(user.id, moved_doc, expected_change_key=new_key)
    moved = await store.messages.get_message(user.id, msg.id)
    assert moved is not None and moved.folder_id == trash.id
    assert await store.messages.delete_message(user.id, msg.id)
    assert not await store.messages.delete_message(user.id, msg.id)
    for f in (inbox.id, trash.id):
        counts = await store.folders.get_folder(user.id, f)
        assert counts is not None and counts.total_count == 0


async def test_queries(store: Stores) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    for n in range(15):
        new = a_message(user, inbox.id, subject=f"s{n:02d}", read=n % 2 == 0,
                        at=1_700_000_000 + n, to=f"r{n}@example.com")  # fmt: skip
        await store.messages.insert_message(new)
    rows, count, more = await store.messages.list_messages(
        user.id, inbox.id, MessageQuery(top=5, count=True)
    )
    assert [r.message().subject for r in rows] == ["s14", "s13", "s12", "s11", "s10"]
    assert count == 15 and more
    unread = MessageQuery(filter=Compare("eq", Prop(("isread",)), Lit(False, "bool")), top=50)
    rows, _, more = await store.messages.list_messages(user.id, None, unread)
    assert len(rows) == 7 and not more
    lam = Lambda("any", "torecipients", "r",
                 Compare("eq", Prop(("r", "emailaddress", "address")), Lit("R3@EXAMPLE.COM",
                                                                           "string")))  # fmt: skip
    rows, _, _ = await store.messages.list_messages(user.id, None, MessageQuery(filter=lam))
    assert [r.message().subject for r in rows] == ["s03"]
    cats = Lambda("any", "categories", "c", Compare("eq", Prop(("c",)), Lit("red", "string")))
    rows, count, _ = await store.messages.list_messages(
        user.id, None, MessageQuery(filter=cats, count=True, top=1)
    )
    assert count == 8
    asc = MessageQuery(orderby=[OrderBy(Prop(("subject",)), False)], top=2, skip=3)
    rows, _, _ = await store.messages.list_messages(user.id, inbox.id, asc)
    assert [r.message().subject for r in rows] == ["s03", "s04"]
    since = Compare("ge", Prop(("receiveddatetime",)), Lit("2023-11-14T22:13:33Z", "datetime"))
    rows, _, _ = await store.messages.list_messages(
        user.id, None, MessageQuery(filter=since, top=50)
    )
    assert len(rows) == 15 - 13


async def test_a_failed_write_leaves_nothing_and_spares_its_neighbours(
    store: Stores,
) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    good = a_message(user, inbox.id, subject="good")
    dup = a_message(user, inbox.id, subject="dup")
    await store.messages.insert_message(dup)
    again = a_message(user, inbox.id, subject="again")
    # same id: the insert must fail as a whole
    again = replace(again, message=msgspec.structs.replace(again.message, id=dup.message.id))
    results = await asyncio.gather(
        store.messages.insert_message(good),
        store.messages.insert_message(again),
        return_exceptions=True,
    )
    assert isinstance(results[1], AlreadyExistsError)
    assert await store.messages.get_message(user.id, good.message.id) is not None
    folder = await store.folders.get_folder(user.id, inbox.id)
    assert folder is not None and folder.total_count == 2

    async def count(tx: Tx) -> int:
        row = await tx.fetchone("SELECT count(*) FROM message_recipients")
        return int(row[0]) if row else -1

    assert await store.engine.read(count) == 2


async def test_group_commit_many_writers(store: Stores) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    news = [a_message(user, inbox.id, subject=f"c{n}") for n in range(200)]
    await asyncio.gather(*(store.messages.insert_message(n) for n in news))
    folder = await store.folders.get_folder(user.id, inbox.id)
    assert folder is not None and folder.total_count == 200


async def test_attachments_of_every_kind_added_and_deleted(store: Stores) -> None:
    """The three kinds round-trip (an item with its own attachments, a link); adding and
    deleting write the document and the attachment together, guarded by the change key."""
    user = await a_user(store)
    drafts = await store.folders.well_known_folder(user.id, "drafts")
    assert drafts is not None
    written = await store.messages.insert_message(a_message(user, drafts.id))
    inner = attachment("in.txt", "text/plain", b"in", is_inline=False, content_id=None, now=1)
    embedded = message.embedded_message(message.MessageInput(subject="inner"), 1, [inner])
    item_att = message.sized(
        replace_struct(inner, id=ids.attachment_id(), kind=message.ITEM, content=b"",
                       content_type=None, item=message.Item(embedded, [], [inner]))
    )  # fmt: skip
    link = message.sized(
        replace_struct(inner, id=ids.attachment_id(), kind=message.REFERENCE, content=b"",
                       content_type=None, reference=message.Reference("https://x.example/f"))
    )  # fmt: skip
    doc = written.message()
    key = written.change_key
    for new in (inner, item_att, link):
        changed = replace_struct(doc, change_key=ids.change_key(), has_attachments=True)
        stale = await store.messages.add_attachment(
            user.id, changed, new, expected_change_key="stale"
        )
        assert stale is None
        done = await store.messages.add_attachment(user.id, changed, new, expected_change_key=key)
        assert done is not None and done.change_key == changed.change_key
        doc, key = changed, changed.change_key
    got = await store.messages.get_message(user.id, written.id)
    assert got is not None and got.message().has_attachments
    assert await store.messages.attachments(got) == [inner, item_att, link]
    changed = replace_struct(doc, change_key=ids.change_key())
    missing = await store.messages.delete_attachment(
        user.id, changed, "no-such-attachment", expected_change_key=key
    )
    assert missing is None  # nothing written: the document keeps its key
    got = await store.messages.get_message(user.id, written.id)
    assert got is not None and got.change_key == key
    done = await store.messages.delete_attachment(
        user.id, changed, item_att.id, expected_change_key=key
    )
    assert done is not None
    got = await store.messages.get_message(user.id, written.id)
    assert got is not None and got.change_key == changed.change_key
    assert await store.messages.attachments(got) == [inner, link]


# ---------------------------------------------------------------- extensions, extended properties

NAMED = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color"
TAGS = "StringArray {66f5a359-4659-4830-9070-00047ec6ac6e} Name Tags"


def any_prop(prop_id: str, value: str) -> Lambda:
    body = And(Compare("eq", Prop(("ep", "id")), Lit(prop_id, "string")),
               Compare("eq", Prop(("ep", "value")), Lit(value, "string")))  # fmt: skip
    return Lambda("any", "singlevalueextendedproperties", "ep", body)


async def test_extended_properties_are_written_replaced_and_found(store: Stores) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    props = [ExtendedProperty(NAMED, "Green"), ExtendedProperty(TAGS, ["a", "b"])]
    new = replace(a_message(user, inbox.id), extended=props)
    got = await store.messages.insert_message(new)
    assert await store.messages.extended_properties(got) == sorted(props, key=lambda p: p.id)
    assert await store.messages.extended_properties(got, [TAGS]) == [props[1]]
    assert await store.messages.extended_properties(got, []) == []
    other = await store.messages.insert_message(a_message(user, inbox.id))

    query = MessageQuery(filter=any_prop(NAMED, "GREEN"))  # values compare without case
    found, _, _ = await store.messages.list_messages(user.id, None, query)
    assert [m.id for m in found] == [got.id]
    query = MessageQuery(filter=any_prop(NAMED.replace("Color", "color"), "Green"))
    assert (await store.messages.list_messages(user.id, None, query))[0] == []  # names do not

    # a replace adds new ids and overwrites known ones, in the same transaction
    msg = msgspec.structs.replace(new.message, change_key=ids.change_key())
    more = [ExtendedProperty(NAMED, "Blue"), ExtendedProperty(NAMED + "2", "x")]
    assert await store.messages.replace_message(
        user.id, msg, expected_change_key=new.message.change_key, extended=more
    )
    values = {p.id: p.value for p in await store.messages.extended_properties(got)}
    assert values == {NAMED: "Blue", NAMED + "2": "x", TAGS: ["a", "b"]}
    assert await store.messages.extended_properties(other) == []

    # past the cap nothing of the write is kept
    over = [ExtendedProperty(f"{NAMED}{i}", "v") for i in range(extended.MAX_PROPERTIES)]
    newer = msgspec.structs.replace(msg, change_key=ids.change_key(), subject="changed")
    with pytest.raises(ExtendedPropertyError):
        await store.messages.replace_message(
            user.id, newer, expected_change_key=msg.change_key, extended=over
        )
    stored = await store.messages.get_message(user.id, msg.id)
    assert stored is not None and stored.change_key == msg.change_key
    assert len(await store.messages.extended_properties(got)) == 3

    # the rows go with the message
    assert await store.messages.delete_message(user.id, msg.id)
    assert await store.messages.extended_properties(got) == []


async def test_open_extensions_are_added_replaced_and_deleted(store: Stores) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    got = await store.messages.insert_message(a_message(user, inbox.id))
    doc = {"id": "microsoft.graph.openTypeExtension.Com.X", "extensionName": "Com.X", "a": 1}
    await store.messages.add_extension(got, doc)
    with pytest.raises(AlreadyExistsError):
        await store.messages.add_extension(got, doc)
    assert await store.messages.replace_extension(got, {**doc, "a": 2, "b": [1]})
    assert await store.messages.extensions(got) == [{**doc, "a": 2, "b": [1]}]
    assert not await store.messages.replace_extension(got, {**doc, "extensionName": "Com.Y"})
    assert await store.messages.delete_extension(got, "Com.X")
    assert not await store.messages.delete_extension(got, "Com.X")
    assert await store.messages.extensions(got) == []
