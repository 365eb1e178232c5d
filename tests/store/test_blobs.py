"""The blob port's contract (content-addressed attachment bytes, counted references, upload
sessions) on SQLite and PostgreSQL, with the bytes in the database and in a directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from graphpost.domain import ids
from graphpost.domain.message import (
    Attachment,
    EmailAddress,
    ItemBody,
    Message,
    Recipient,
    attachment,
    item,
)
from graphpost.domain.times import now_ms
from graphpost.ports.blobs import UploadSession
from graphpost.ports.directory import User
from graphpost.ports.messages import NewMessage
from graphpost.services.directory import mailbox_folders
from graphpost.store.blobs import CHUNK, Content, DbContent, DirContent, SqlBlobs
from graphpost.store.directory import SqlDirectory
from graphpost.store.engine import Engine, Tx
from graphpost.store.folders import SqlFolders
from graphpost.store.messages import SqlMessages

pytestmark = pytest.mark.anyio


class Blobs:
    def __init__(self, engine: Engine, content: Content) -> None:
        self.engine = engine
        self.content = content
        self.blobs = SqlBlobs(engine, content)
        self.messages = SqlMessages(engine, content)
        self.directory = SqlDirectory(engine)
        self.folders = SqlFolders(engine)


@pytest.fixture(params=["database", "directory"])
async def b(request: pytest.FixtureRequest, engine: Engine, tmp_path: Path) -> AsyncIterator[Blobs]:
    content: Content = (
        DirContent(tmp_path / "blobs") if request.param == "directory" else DbContent()
    )
    yield Blobs(engine, content)


async def a_user(b: Blobs, mail: str = "a@example.com") -> User:
    tenant = await b.directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, "A Person", mail, mail)
    await b.directory.add_user(user, mailbox_folders(user.id))
    return user


async def a_message(b: Blobs, user: User, *files: bytes, folder: str = "drafts") -> NewMessage:
    found = await b.folders.well_known_folder(user.id, folder)
    assert found is not None
    me = Recipient(EmailAddress("A", user.mail))
    atts = [
        attachment(f"f{n}.bin", "application/octet-stream", data, is_inline=False,
                   content_id=None, now=1_700_000_000)
        for n, data in enumerate(files)
    ]  # fmt: skip
    msg = item(
        message_id=ids.message_id(), folder_id=found.id, now=1_700_000_000, web_base="http://x",
        conversation_index=ids.conversation_index(), attachments=atts,
        internet_message_id=f"<{ids.guid()}@example.com>", subject="s",
        body=ItemBody("text", "s"), sender=me, from_=me,
        to=[Recipient(EmailAddress("B", "b@example.com"))], cc=[], bcc=[], reply_to=[],
        is_read=True, is_draft=True, categories=[],
    )  # fmt: skip
    new = NewMessage(user.id, msg, attachments=atts)
    await b.messages.insert_message(new)
    return new


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def chunk_rows(b: Blobs) -> int:
    async def op(tx: Tx) -> int:
        row = await tx.fetchone("SELECT count(*) FROM blob_chunks")
        return int(row[0]) if row else 0

    return await b.engine.read(op)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_one_blob_for_the_same_bytes(b: Blobs) -> None:
    user = await a_user(b)
    data = os.urandom(CHUNK * 2 + 17)  # three chunks
    first = await a_message(b, user, data, b"small")
    second = await a_message(b, user, data)
    assert await b.blobs.blob(digest(data)) == (len(data), 2)
    assert await b.blobs.blob(digest(b"small")) == (5, 1)
    if isinstance(b.content, DirContent):
        assert (b.content.path(digest(data))).read_bytes() == data
        assert await chunk_rows(b) == 0
    else:
        assert await chunk_rows(b) == 3 + 1
    stored = await b.messages.get_message(user.id, second.message.id)
    assert stored is not None
    [att] = await b.messages.attachments(stored)
    assert att.content == data and att.size == len(data)
    assert b"".join([x async for x in b.blobs.read(digest(data))]) == data
    # deleting the first message: one reference less, the small blob unused and swept
    assert await b.messages.delete_message(user.id, first.message.id)
    assert await b.blobs.blob(digest(data)) == (len(data), 1)
    assert await b.blobs.blob(digest(b"small")) is None
    assert await b.messages.delete_message(user.id, second.message.id)
    assert await b.blobs.blob(digest(data)) is None
    assert await chunk_rows(b) == 0
    if isinstance(b.content, DirContent):
        assert [p for p in files(b.content.root) if "uploads" not in p.parts] == []


async def test_a_blob_at_zero_taken_again_before_the_sweep(b: Blobs) -> None:
    """The race a delete and an insert of the same bytes run: released to 0, referenced again
    before the sweep ran: the sweep must leave it, and its bytes must be there."""
    user = await a_user(b)
    data = os.urandom(1000)

    async def release(tx: Tx) -> None:
        await tx.execute("UPDATE blobs SET refs = 0 WHERE digest = ?", (digest(data),))

    await a_message(b, user, data)
    await b.engine.write(release)  # as if its last message were gone, the sweep not yet run
    await a_message(b, user, data)
    assert await b.blobs.sweep() == 0
    assert await b.blobs.blob(digest(data)) == (1000, 1)
    assert b"".join([x async for x in b.blobs.read(digest(data))]) == data


async def test_bytes_lost_at_zero_are_written_again(b: Blobs) -> None:
    """A blob at 0 whose bytes are gone (a sweep that removed a file and then rolled back) is
    repaired by the next reference."""
    user = await a_user(b)
    data = os.urandom(5000)
    await a_message(b, user, data)

    async def lose(tx: Tx) -> None:
        await tx.execute("UPDATE blobs SET refs = 0 WHERE digest = ?", (digest(data),))
        await tx.execute("DELETE FROM blob_chunks")

    await b.engine.write(lose)
    if isinstance(b.content, DirContent):
        b.content.path(digest(data)).unlink()
    await a_message(b, user, data)
    assert b"".join([x async for x in b.blobs.read(digest(data))]) == data


async def test_deleting_a_folder_or_a_user_releases(b: Blobs) -> None:
    user = await a_user(b)
    data = os.urandom(3000)
    await a_message(b, user, data, folder="inbox")
    await a_message(b, user, data, folder="drafts")
    inbox = await b.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    await b.folders.delete_folder(user.id, inbox.id)
    assert await b.blobs.blob(digest(data)) == (3000, 1)
    assert await b.directory.remove_user(user.id)
    assert await b.blobs.blob(digest(data)) == (3000, 0)
    assert await b.blobs.sweep() == 1
    assert await b.blobs.blob(digest(data)) is None


def a_session(user: User, message_id: str, size: int) -> UploadSession:
    return UploadSession(
        id=ids.guid().replace("-", ""), mailbox_id=user.id, message_id=message_id,
        app_id="app", name="big.bin", content_type="application/octet-stream", size=size,
        is_inline=False, content_id=None, received=0, parts=0, expires_at_ms=now_ms() + 60_000,
    )  # fmt: skip


def an_attachment(size: int) -> Attachment:
    return Attachment(ids.attachment_id(), "big.bin", "application/octet-stream", size, False,
                      None, "2026-01-01T00:00:00Z")  # fmt: skip


def touched(msg: Message) -> Message:
    import msgspec

    return msgspec.structs.replace(msg, has_attachments=True, change_key=ids.change_key())


async def upload(b: Blobs, user: User, message_id: str, data: bytes, part: int) -> Attachment:
    session = a_session(user, message_id, len(data))
    await b.blobs.create_session(session, "0" * 64)
    for first in range(0, len(data), part):
        moved = await b.blobs.append(session, data[first : first + part])
        assert moved is not None
        session = moved
    att = an_attachment(len(data))
    assert await b.blobs.finish(session, att, touched)
    return att


async def test_an_upload_session(b: Blobs) -> None:
    user = await a_user(b)
    draft = await a_message(b, user)
    data = os.urandom(CHUNK * 3 + 5)
    session = a_session(user, draft.message.id, len(data))
    await b.blobs.create_session(session, "ab" * 32)
    found = await b.blobs.session(session.id)
    assert found == (session, "ab" * 32)
    moved = await b.blobs.append(session, data[: 2 * CHUNK])
    assert moved is not None and moved.received == 2 * CHUNK
    # a second request with the same (stale) state: refused, nothing kept
    assert await b.blobs.append(session, data[: 2 * CHUNK]) is None
    moved2 = await b.blobs.append(moved, data[2 * CHUNK :])
    assert moved2 is not None and moved2.received == len(data)
    att = an_attachment(len(data))
    assert await b.blobs.finish(moved2, att, touched)
    # kept, finished, to answer its last part sent again
    kept = await b.blobs.session(session.id)
    assert kept is not None and kept[0].finished and kept[0].received == len(data)
    stored = await b.messages.get_message(user.id, draft.message.id)
    assert stored is not None and stored.message().has_attachments
    [got] = await b.messages.attachments(stored)
    assert got.id == att.id and got.content == data
    assert await b.blobs.blob(digest(data)) == (len(data), 1)
    if isinstance(b.content, DirContent):
        assert list(b.content.uploads.iterdir()) == []  # parts and the whole file are gone
        assert b.content.path(digest(data)).read_bytes() == data
    # ending the finished session (its expiry) leaves the attachment's bytes alone
    assert await b.blobs.cancel(session.id)
    assert await b.blobs.session(session.id) is None
    [got] = await b.messages.attachments(stored)
    assert got.content == data
    assert await b.blobs.blob(digest(data)) == (len(data), 1)
    if isinstance(b.content, DirContent):
        assert b.content.path(digest(data)).read_bytes() == data


async def test_an_upload_of_bytes_already_stored(b: Blobs) -> None:
    user = await a_user(b)
    data = os.urandom(CHUNK + 1)
    one = await a_message(b, user, data)
    draft = await a_message(b, user)
    await upload(b, user, draft.message.id, data, CHUNK // 2)
    assert await b.blobs.blob(digest(data)) == (len(data), 2)
    if not isinstance(b.content, DirContent):
        assert await chunk_rows(b) == 2  # the staged copy was dropped
    else:
        assert list(b.content.uploads.iterdir()) == []
    assert await b.messages.delete_message(user.id, one.message.id)
    stored = await b.messages.get_message(user.id, draft.message.id)
    assert stored is not None
    [got] = await b.messages.attachments(stored)
    assert got.content == data


async def test_cancel_and_expiry_drop_what_was_staged(b: Blobs) -> None:
    user = await a_user(b)
    draft = await a_message(b, user)
    session = a_session(user, draft.message.id, 3 * CHUNK)
    await b.blobs.create_session(session, "0" * 64)
    assert await b.blobs.append(session, os.urandom(CHUNK)) is not None
    assert await b.blobs.cancel(session.id)
    assert not await b.blobs.cancel(session.id)
    assert await b.blobs.session(session.id) is None
    old = a_session(user, draft.message.id, 3 * CHUNK)
    old = UploadSession(**{**{f: getattr(old, f) for f in old.__slots__}, "expires_at_ms": 1})
    await b.blobs.create_session(old, "0" * 64)
    assert await b.blobs.append(old, os.urandom(100)) is not None
    assert await b.blobs.expire() == 1
    assert await b.blobs.session(old.id) is None
    assert await chunk_rows(b) == 0
    if isinstance(b.content, DirContent):
        assert list(b.content.uploads.iterdir()) == []


async def test_finishing_for_a_deleted_message(b: Blobs) -> None:
    user = await a_user(b)
    draft = await a_message(b, user)
    session = a_session(user, draft.message.id, 100)
    await b.blobs.create_session(session, "0" * 64)
    moved = await b.blobs.append(session, os.urandom(100))
    assert moved is not None
    assert await b.messages.delete_message(user.id, draft.message.id)
    assert not await b.blobs.finish(moved, an_attachment(100), touched)
    assert await b.blobs.session(session.id) is None
    assert await chunk_rows(b) == 0


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_migration_moves_inline_bytes_into_blobs(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Rows written before 0007 (bytes in attachments.content) come out as blobs: two equal
    attachments share one, counted twice."""
    import asyncio

    from graphpost.store.engine import open_engine
    from graphpost.store.migrate import migrate
    from tests.conftest import drop_pg_database, in_thread, make_pg_database

    url: str | None = None
    name = ""
    if kind == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
    path = tmp_path / "old.sqlite3"
    try:
        await asyncio.to_thread(migrate, database_url=url, sqlite_path=path, revision="0005")
        engine = await open_engine(database_url=url, sqlite_path=path)
        data = os.urandom(CHUNK + 10)
        try:
            b = Blobs(engine, DbContent())
            user = await a_user(b)

            async def drafts_id(tx: Tx) -> str:
                # raw SQL: today's folder queries read tables this old schema does not have
                row = await tx.fetchone(
                    "SELECT id FROM folders WHERE mailbox_id = ? AND well_known = 'drafts'",
                    (user.id,),
                )
                assert row is not None
                return str(row[0])

            drafts = await engine.read(drafts_id)

            async def old_rows(tx: Tx) -> None:
                await tx.execute(
                    "INSERT INTO messages (id, mailbox_id, folder_id, created_at, modified_at, "
                    "received_at, sent_at, is_read, is_draft, has_attachments, importance, "
                    "inference, flag_status, body_preview, internet_message_id, conversation_id, "
                    "change_key, doc) VALUES (?, ?, ?, 0, 0, 0, 0, ?, ?, ?, 'normal', 'focused', "
                    "'notFlagged', '', '<x@y>', 'c', 'k', ?)",
                    ("m1", user.id, drafts, True, True, True, b"{}"),
                )
                row = await tx.fetchone("SELECT seq FROM messages WHERE id = 'm1'")
                assert row is not None
                for n, content in enumerate([data, data, b""]):
                    await tx.execute(
                        "INSERT INTO attachments (id, message_seq, position, name, content_type, "
                        "size, is_inline, content_id, modified_at, content) "
                        "VALUES (?, ?, ?, 'f', 'application/x', ?, ?, NULL, 0, ?)",
                        (f"a{n}", row[0], n, len(content), False, content),
                    )

            await engine.write(old_rows)
        finally:
            await engine.close()
        await asyncio.to_thread(migrate, database_url=url, sqlite_path=path)
        engine = await open_engine(database_url=url, sqlite_path=path)
        try:
            b = Blobs(engine, DbContent())
            assert await b.blobs.blob(digest(data)) == (len(data), 2)
            assert await b.blobs.blob(digest(b"")) == (0, 1)
            assert b"".join([x async for x in b.blobs.read(digest(data))]) == data
            assert await chunk_rows(b) == 2 + 1
        finally:
            await engine.close()
        # and back: the bytes return to attachments.content
        await asyncio.to_thread(
            migrate, database_url=url, sqlite_path=path, action="downgrade", revision="0005"
        )
    finally:
        if url is not None:
            drop_pg_database(request.getfixturevalue("pg_admin_url"), name)
    del in_thread
