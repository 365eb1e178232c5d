"""The change log's contract on both engines: every write records its change in its own
transaction, seqs are gap-free and follow commit order, pruning raises the horizon."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

import msgspec
import pytest

from graphpost.domain import ids
from graphpost.domain.message import attachment
from graphpost.ports.changes import Change
from graphpost.ports.folders import Folder
from graphpost.store.changes import SqlChangeLog
from graphpost.store.engine import Tx
from tests.store.conftest import Stores
from tests.store.samples import a_message, a_user

pytestmark = pytest.mark.anyio


def shape(changes: list[Change]) -> list[tuple[str, str, str, str | None, str]]:
    return [(c.kind, c.item_id, c.folder_id, c.prior_folder_id, c.change_type) for c in changes]


async def folder_id(store: Stores, mailbox: str, name: str) -> str:
    found = await store.folders.well_known_folder(mailbox, name)
    assert found is not None
    return found.id


async def test_message_writes_are_recorded_in_order(store: Stores) -> None:
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    assert (await log.last_seq(user.id), await log.horizon(user.id)) == (0, 0)
    inbox = await folder_id(store, user.id, "inbox")
    trash = await folder_id(store, user.id, "deleteditems")
    plain = a_message(user, inbox)
    att = attachment("a.txt", "text/plain", b"hi", is_inline=False, content_id=None, now=1)
    with_att = replace(a_message(user, inbox), attachments=[att])
    await store.messages.insert_message(plain)
    await store.messages.insert_message(with_att)
    msg = plain.message
    read = msgspec.structs.replace(msg, is_read=False, change_key=ids.change_key())
    assert await store.messages.replace_message(user.id, read, expected_change_key=msg.change_key)
    # a stale change key writes nothing and records nothing
    assert not await store.messages.replace_message(user.id, read, expected_change_key="x")
    moved = msgspec.structs.replace(read, parent_folder_id=trash, change_key=ids.change_key())
    assert await store.messages.replace_message(user.id, moved, expected_change_key=read.change_key)
    assert await store.messages.delete_message(user.id, msg.id)
    assert not await store.messages.delete_message(user.id, msg.id)
    changes = await log.changes_after(user.id, 0, 100)
    assert [c.seq for c in changes] == [1, 2, 3, 4, 5]
    assert shape(changes) == [
        ("message", msg.id, inbox, None, "created"),
        ("message", with_att.message.id, inbox, None, "created"),
        ("message", msg.id, inbox, None, "updated"),
        ("message", msg.id, trash, inbox, "updated"),
        ("message", msg.id, trash, None, "deleted"),
    ]
    assert await log.last_seq(user.id) == 5
    assert shape(await log.changes_after(user.id, 3, 1)) == shape(changes[3:4])
    # another mailbox has its own seqs
    other = await a_user(store, "o@example.com")
    await store.messages.insert_message(a_message(other, await folder_id(store, other.id, "inbox")))
    assert [c.seq for c in await log.changes_after(other.id, 0, 10)] == [1]
    assert await log.last_seq(user.id) == 5


async def test_batches_and_attachment_writes_are_recorded(store: Stores) -> None:
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    inbox = await folder_id(store, user.id, "inbox")
    news = [a_message(user, inbox) for _ in range(3)]
    await store.messages.insert_messages(news)
    msg = news[0].message
    att = attachment("b.txt", "text/plain", b"yo", is_inline=False, content_id=None, now=1)
    doc = msgspec.structs.replace(msg, has_attachments=True, change_key=ids.change_key())
    assert await store.messages.add_attachment(
        user.id, doc, att, expected_change_key=msg.change_key
    )
    doc2 = msgspec.structs.replace(doc, has_attachments=False, change_key=ids.change_key())
    assert await store.messages.delete_attachment(
        user.id, doc2, att.id, expected_change_key=doc.change_key
    )
    assert shape(await log.changes_after(user.id, 0, 100)) == [
        *(("message", n.message.id, inbox, None, "created") for n in news),
        ("message", msg.id, inbox, None, "updated"),
        ("message", msg.id, inbox, None, "updated"),
    ]


async def test_folder_writes_are_recorded_and_a_delete_takes_its_contents(store: Stores) -> None:
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    inbox = await folder_id(store, user.id, "inbox")
    root = await store.folders.get_folder(user.id, inbox)
    assert root is not None and root.parent_id is not None
    top = Folder(ids.folder_id(), user.id, inbox, "Top", None, False)
    sub = Folder(ids.folder_id(), user.id, top.id, "Sub", None, False)
    await store.folders.create_folder(top)
    await store.folders.create_folder(sub)
    await store.folders.rename_folder(user.id, sub.id, "Sub2")
    await store.folders.move_folder(user.id, top.id, root.parent_id, "Top")
    in_top = a_message(user, top.id)
    in_sub = a_message(user, sub.id)
    await store.messages.insert_message(in_top)
    await store.messages.insert_message(in_sub)
    before = await log.last_seq(user.id)
    await store.folders.delete_folder(user.id, top.id)
    changes = await log.changes_after(user.id, 0, 100)
    assert shape(changes[:4]) == [
        ("folder", top.id, inbox, None, "created"),
        ("folder", sub.id, top.id, None, "created"),
        ("folder", sub.id, top.id, None, "updated"),
        ("folder", top.id, root.parent_id, inbox, "updated"),
    ]
    gone = shape(changes[6:])
    assert [c.seq for c in changes] == list(range(1, len(changes) + 1))
    assert changes[6].seq == before + 1
    assert sorted(gone) == sorted([
        ("message", in_top.message.id, top.id, None, "deleted"),
        ("message", in_sub.message.id, sub.id, None, "deleted"),
        ("folder", top.id, root.parent_id, None, "deleted"),
        ("folder", sub.id, top.id, None, "deleted"),
    ])  # fmt: skip


async def test_a_removed_mailbox_takes_its_log(store: Stores) -> None:
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    await store.messages.insert_message(a_message(user, await folder_id(store, user.id, "inbox")))
    assert await store.directory.remove_user(user.id)
    assert await log.changes_after(user.id, 0, 10) == []
    assert await log.last_seq(user.id) == 0


async def test_prune_raises_the_horizon(store: Stores) -> None:
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    inbox = await folder_id(store, user.id, "inbox")
    for _ in range(5):
        await store.messages.insert_message(a_message(user, inbox))

    async def age(tx: Tx) -> None:  # the first three were written long ago
        await tx.execute("UPDATE changes SET at_ms = 1000 WHERE seq <= 3")

    await store.engine.write(age)
    assert await log.prune(before_ms=2000, batch=2) == 2
    assert await log.horizon(user.id) == 2
    assert await log.prune(before_ms=2000) == 1
    assert await log.horizon(user.id) == 3
    assert await log.prune(before_ms=2000) == 0
    assert [c.seq for c in await log.changes_after(user.id, 0, 10)] == [4, 5]
    await store.messages.insert_message(a_message(user, inbox))
    assert (await log.last_seq(user.id), await log.horizon(user.id)) == (6, 3)


async def test_concurrent_writers_give_gap_free_commit_ordered_seqs(store: Stores) -> None:
    """Many writers to one mailbox (inserts, moves between two folders, folder creates) while
    a reader follows the log: every read continues exactly where the last one ended (a seq
    seen before a smaller one committed would show as a gap), and nothing deadlocks."""
    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    inbox = await folder_id(store, user.id, "inbox")
    archive = await folder_id(store, user.id, "archive")
    writers = 12 if store.engine.dialect == "postgresql" else 4
    rounds = 15
    done = asyncio.Event()

    async def writer(n: int) -> None:
        for r in range(rounds):
            new = a_message(user, inbox if (n + r) % 2 else archive)
            await store.messages.insert_message(new)
            msg = new.message
            there = archive if msg.parent_folder_id == inbox else inbox
            moved = msgspec.structs.replace(
                msg, parent_folder_id=there, change_key=ids.change_key()
            )
            assert await store.messages.replace_message(
                user.id, moved, expected_change_key=msg.change_key
            )
            if r % 5 == 0:
                await store.folders.create_folder(
                    Folder(ids.folder_id(), user.id, inbox, f"f{n}-{r}", None, False)
                )

    seen: list[int] = []

    async def reader() -> None:
        while True:
            finished = done.is_set()
            got = await log.changes_after(user.id, seen[-1] if seen else 0, 1000)
            assert [c.seq for c in got] == list(range(len(seen) + 1, len(seen) + 1 + len(got)))
            seen.extend(c.seq for c in got)
            if finished and not got:
                return
            await asyncio.sleep(0)

    follow = asyncio.create_task(reader())
    await asyncio.gather(*(writer(n) for n in range(writers)))
    done.set()
    await asyncio.wait_for(follow, 30)
    expected = writers * (rounds * 2 + rounds // 5)
    assert seen == list(range(1, expected + 1))
    assert await log.last_seq(user.id) == expected


async def test_housekeeping_prunes_past_the_retention(store: Stores) -> None:
    """The serving process's housekeeping loop prunes the log (here every 10 ms)."""
    from graphpost.runtime import housekeeping
    from graphpost.store.blobs import SqlBlobs

    log = SqlChangeLog(store.engine)
    user = await a_user(store)
    inbox = await folder_id(store, user.id, "inbox")
    for _ in range(3):
        await store.messages.insert_message(a_message(user, inbox))
    task = asyncio.create_task(
        housekeeping(SqlBlobs(store.engine), log, retention_ms=-60_000, every=0.01)
    )
    try:
        for _ in range(500):  # bounded: 5 s at most
            if await log.horizon(user.id) == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await log.horizon(user.id) == 3
    assert await log.changes_after(user.id, 0, 10) == []
