"""One contract for the MailStore, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio

import pytest

from graphpost.domain import ids
from graphpost.domain.query import (
    Compare,
    Lambda,
    Lit,
    MessageQuery,
    OrderBy,
    Prop,
)
from graphpost.errors import AlreadyExistsError
from graphpost.services.directory import mailbox_folders
from graphpost.store.engine import Tx
from graphpost.store.records import AttachmentRow, FolderRecord, MessageRow, UserRecord
from graphpost.store.sql import SqlMailStore

pytestmark = pytest.mark.anyio


async def a_user(store: SqlMailStore, mail: str = "a@example.com") -> UserRecord:
    tenant = await store.ensure_tenant(domain="example.com", display_name="Example")
    user = UserRecord(ids.guid(), tenant.id, "A Person", mail, mail)
    await store.add_user(user, mailbox_folders(user.id))
    return user


def a_row(user: UserRecord, folder: str, *, subject: str = "s", read: bool = True,
          at: int = 1_700_000_000, to: str = "b@example.com") -> MessageRow:  # fmt: skip
    return MessageRow(
        id=ids.message_id(), mailbox_id=user.id, folder_id=folder, created_at=at,
        modified_at=at, received_at=at, sent_at=at, is_read=read, is_draft=True,
        has_attachments=False, importance="normal", inference="focused",
        flag_status="notFlagged", subject=subject, body_preview="", from_name="A",
        from_address="a@example.com", sender_name="A", sender_address="a@example.com",
        internet_message_id=f"<{ids.guid()}@example.com>",
        conversation_id=ids.conversation_id_for(ids.conversation_index()),
        change_key=ids.change_key(), doc=b'{"subject":"' + subject.encode() + b'"}',
        recipients=[("to", "B", to)], categories=["Red"] if read else [],
    )  # fmt: skip


async def test_users_and_folders(store: SqlMailStore) -> None:
    user = await a_user(store)
    assert await store.find_user("A@EXAMPLE.COM") == user
    assert await store.find_user(user.id) == user
    assert await store.display_names(["a@example.com", "x@y.z"]) == {"a@example.com": "A Person"}
    with pytest.raises(AlreadyExistsError):
        await a_user(store)
    drafts = await store.well_known_folder(user.id, "drafts")
    root = await store.well_known_folder(user.id, "msgfolderroot")
    assert drafts is not None and root is not None
    top, total = await store.list_folders(user.id, root.id, include_hidden=False, top=50, skip=0)
    assert total == len(top) == 8
    child = FolderRecord(ids.folder_id(), user.id, drafts.id, "Sub", None, False)
    await store.create_folder(child)
    refreshed = await store.get_folder(user.id, drafts.id)
    assert refreshed is not None and refreshed.child_count == 1
    with pytest.raises(AlreadyExistsError):
        await store.create_folder(FolderRecord(ids.folder_id(), user.id, drafts.id, "sub", None,
                                               False))  # fmt: skip
    assert await store.is_within(user.id, child.id, root.id)
    assert await store.remove_user(user.id)
    assert await store.find_user(user.id) is None


async def test_messages_counts_and_children(store: SqlMailStore) -> None:
    user = await a_user(store)
    inbox = await store.well_known_folder(user.id, "inbox")
    assert inbox is not None
    row = a_row(user, inbox.id, read=False)
    att = AttachmentRow(ids.attachment_id(), "a.txt", "text/plain", 2, False, None, 1, b"hi")
    await store.insert_message(row, attachments=[att], extensions=[("X.Y", b'{"a":1}')])
    got = await store.get_message(user.id, row.id)
    assert got is not None and got.doc == row.doc and got.seq == row.seq
    assert await store.list_attachments(got.seq) == [att]
    assert await store.list_extensions(got.seq) == [b'{"a":1}']
    folder = await store.get_folder(user.id, inbox.id)
    assert folder is not None and (folder.total_count, folder.unread_count) == (1, 1)
    got.is_read = True
    new_key = ids.change_key()
    old_key, got.change_key = got.change_key, new_key
    assert not await store.replace_message(got, expected_change_key="stale")
    assert await store.replace_message(got, expected_change_key=old_key)
    folder = await store.get_folder(user.id, inbox.id)
    assert folder is not None and folder.unread_count == 0
    trash = await store.well_known_folder(user.id, "deleteditems")
    assert trash is not None
    assert await store.move_message(got, trash.id, expected_change_key=new_key)
    moved = await store.get_message(user.id, row.id)
    assert moved is not None and moved.folder_id == trash.id
    assert await store.delete_message(user.id, row.id)
    assert not await store.delete_message(user.id, row.id)
    for f in (inbox.id, trash.id):
        counts = await store.get_folder(user.id, f)
        assert counts is not None and counts.total_count == 0


async def test_queries(store: SqlMailStore) -> None:
    user = await a_user(store)
    inbox = await store.well_known_folder(user.id, "inbox")
    assert inbox is not None
    for n in range(15):
        row = a_row(user, inbox.id, subject=f"s{n:02d}", read=n % 2 == 0, at=1_700_000_000 + n,
                    to=f"r{n}@example.com")  # fmt: skip
        await store.insert_message(row, attachments=[], extensions=[])
    rows, count, more = await store.list_messages(
        user.id, inbox.id, MessageQuery(top=5, count=True)
    )
    assert [r.subject for r in rows] == ["s14", "s13", "s12", "s11", "s10"]
    assert count == 15 and more
    unread = MessageQuery(filter=Compare("eq", Prop(("isread",)), Lit(False, "bool")), top=50)
    rows, _, more = await store.list_messages(user.id, None, unread)
    assert len(rows) == 7 and not more
    lam = Lambda("any", "torecipients", "r",
                 Compare("eq", Prop(("r", "emailaddress", "address")), Lit("R3@EXAMPLE.COM",
                                                                           "string")))  # fmt: skip
    rows, _, _ = await store.list_messages(user.id, None, MessageQuery(filter=lam))
    assert [r.subject for r in rows] == ["s03"]
    cats = Lambda("any", "categories", "c", Compare("eq", Prop(("c",)), Lit("red", "string")))
    rows, count, _ = await store.list_messages(
        user.id, None, MessageQuery(filter=cats, count=True, top=1)
    )
    assert count == 8
    asc = MessageQuery(orderby=[OrderBy(Prop(("subject",)), False)], top=2, skip=3)
    rows, _, _ = await store.list_messages(user.id, inbox.id, asc)
    assert [r.subject for r in rows] == ["s03", "s04"]
    since = Compare("ge", Prop(("receiveddatetime",)), Lit("2023-11-14T22:13:33Z", "datetime"))
    rows, _, _ = await store.list_messages(user.id, None, MessageQuery(filter=since, top=50))
    assert len(rows) == 15 - 13


async def test_a_failed_write_leaves_nothing_and_spares_its_neighbours(
    store: SqlMailStore,
) -> None:
    user = await a_user(store)
    inbox = await store.well_known_folder(user.id, "inbox")
    assert inbox is not None
    good = a_row(user, inbox.id, subject="good")
    dup = a_row(user, inbox.id, subject="dup")
    await store.insert_message(dup, attachments=[], extensions=[])
    again = a_row(user, inbox.id, subject="again")
    again.id = dup.id  # same id: the insert must fail as a whole
    results = await asyncio.gather(
        store.insert_message(good, attachments=[], extensions=[]),
        store.insert_message(again, attachments=[], extensions=[]),
        return_exceptions=True,
    )
    assert isinstance(results[1], AlreadyExistsError)
    assert await store.get_message(user.id, good.id) is not None
    folder = await store.get_folder(user.id, inbox.id)
    assert folder is not None and folder.total_count == 2

    async def count(tx: Tx) -> int:
        row = await tx.fetchone("SELECT count(*) FROM message_recipients")
        return int(row[0]) if row else -1

    assert await store.engine.read(count) == 2


async def test_group_commit_many_writers(store: SqlMailStore) -> None:
    user = await a_user(store)
    inbox = await store.well_known_folder(user.id, "inbox")
    assert inbox is not None
    rows = [a_row(user, inbox.id, subject=f"c{n}") for n in range(200)]
    await asyncio.gather(*(store.insert_message(r, attachments=[], extensions=[]) for r in rows))
    folder = await store.get_folder(user.id, inbox.id)
    assert folder is not None and folder.total_count == 200
