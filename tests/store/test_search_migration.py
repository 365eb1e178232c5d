"""Migration 0011 indexes the messages stored before it, on both engines: a database whose
index is taken away (downgraded one step) and upgraded again finds them as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, attachment, item
from graphpost.domain.query import MessageQuery
from graphpost.domain.search import parse_search
from graphpost.ports.directory import User
from graphpost.ports.messages import NewMessage
from graphpost.services.directory import mailbox_folders
from graphpost.store.directory import SqlDirectory
from graphpost.store.engine import Engine, open_engine
from graphpost.store.folders import SqlFolders
from graphpost.store.messages import SqlMessages
from graphpost.store.migrate import alembic_config, migrate
from tests.conftest import drop_pg_database, in_thread, make_pg_database

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str | None, Path]]:
    """A database of its own (the migration is run down and up on it)."""
    path = tmp_path / "search.sqlite3"
    if request.param == "sqlite":
        yield None, path
        return
    admin = request.getfixturevalue("pg_admin_url")
    name, url = make_pg_database(admin)
    try:
        yield url, path
    finally:
        drop_pg_database(admin, name)


async def fill(engine: Engine, more: tuple[tuple[str, str, list[str]], ...] = ()) -> str:
    directory, folders, messages = SqlDirectory(engine), SqlFolders(engine), SqlMessages(engine)
    tenant = await directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, "Old Timer", "old@example.com", "old@example.com")
    await directory.add_user(user, mailbox_folders(user.id))
    inbox = await folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    me = Recipient(EmailAddress("Zelda Zhou", "zelda@example.com"))
    for n, (subject, body, files) in enumerate(
        [("Ancient scrolls", "papyrus and ink", ["map.png"]), ("Modern times", "steel", []),
         *more]
    ):  # fmt: skip
        found = [attachment(f, "image/png", b"x", is_inline=False, content_id=None, now=1)
                 for f in files]  # fmt: skip
        msg = item(
            message_id=ids.message_id(), folder_id=inbox.id, now=1_700_000_000 + n,
            web_base="http://x", conversation_index=ids.conversation_index(),
            attachments=found, internet_message_id=f"<{ids.guid()}@example.com>",
            subject=subject, body=ItemBody("text", body), sender=me, from_=me, to=[me], cc=[],
            bcc=[], reply_to=[], is_read=True, is_draft=False, categories=[],
        )  # fmt: skip
        await messages.insert_message(NewMessage(user.id, msg, attachments=found))
    return user.id


async def found(engine: Engine, mailbox: str, kql: str) -> list[str]:
    query = MessageQuery(top=10, search=parse_search(kql, now=1_700_000_000))
    rows, _, _ = await SqlMessages(engine).list_messages(mailbox, None, query)
    return [r.message().subject or "" for r in rows]


async def test_upgrade_indexes_what_was_stored(database: tuple[str | None, Path]) -> None:
    url, path = database

    def run(action: str, revision: str) -> None:
        in_thread(lambda: migrate(database_url=url, sqlite_path=path, action=action,
                                  revision=revision))  # fmt: skip

    run("upgrade", "head")
    engine = await open_engine(database_url=url, sqlite_path=path)
    try:
        mailbox = await fill(engine)
        assert await found(engine, mailbox, "papyrus") == ["Ancient scrolls"]
    finally:
        await engine.close()
    before = ScriptDirectory.from_config(alembic_config()).get_revision("0011").down_revision
    run("downgrade", str(before))  # the index is gone with its migration ...
    run("upgrade", "head")  # ... and made again from the messages
    engine = await open_engine(database_url=url, sqlite_path=path)
    try:
        assert await found(engine, mailbox, "papyrus") == ["Ancient scrolls"]
        assert await found(engine, mailbox, "attachment:map") == ["Ancient scrolls"]
        assert await found(engine, mailbox, "from:zelda") == ["Modern times", "Ancient scrolls"]
        assert await found(engine, mailbox, "steel OR ink") == ["Modern times", "Ancient scrolls"]
    finally:
        await engine.close()


async def test_0016_reindexes_with_todays_folding(database: tuple[str | None, Path]) -> None:
    """A message indexed by the folding before 0016 (ø, ł kept; a Devanagari word split at
    its vowel signs) is found after the upgrade by the words a query folds to now."""
    from graphpost.domain.search import IndexFields
    from graphpost.store.search import IndexEntry

    url, path = database

    def run(action: str, revision: str) -> None:
        in_thread(lambda: migrate(database_url=url, sqlite_path=path, action=action,
                                  revision=revision))  # fmt: skip

    # the schema just before the folding migration (today's store code reads it)
    run(
        "upgrade",
        str(ScriptDirectory.from_config(alembic_config()).get_revision("0016").down_revision),
    )
    engine = await open_engine(database_url=url, sqlite_path=path)
    try:
        mailbox = await fill(engine, (("Øresund Łódź", "हिन्दी भाषा", []),))
        # the index as the old folding wrote it, for that message
        old = IndexEntry(IndexFields(
            subject=["øresund", "łódź"], body=["ह", "नद", "भ", "ष"], sender=[["zelda"]], to=[],
            cc=[], bcc=[], attachment=[],
        ))  # fmt: skip

        async def stale(tx: Any) -> None:
            seq = (await tx.fetchone("SELECT max(seq) FROM messages", ()))[0]
            if engine.dialect == "postgresql":
                await tx.execute(
                    "UPDATE message_search SET doc = CAST(CAST(? AS TEXT) AS tsvector) "
                    "WHERE message_seq = ?",
                    (old.pg, seq),
                )
            else:
                await tx.execute(
                    "UPDATE message_search SET subject = ?, body = ? WHERE rowid = ?",
                    (old.sqlite[0], old.sqlite[1], seq),
                )

        await engine.write(stale)
        assert await found(engine, mailbox, "lodz") == []  # stale: not found by today's words
    finally:
        await engine.close()
    run("upgrade", "head")
    engine = await open_engine(database_url=url, sqlite_path=path)
    try:
        for kql in ("lodz", "oresund", "subject:Łódź", "LODZ oresund", "हिन्दी", "भाषा"):
            assert await found(engine, mailbox, kql) == ["Øresund Łódź"], kql
        # a piece of the word between its vowel signs is no word of it any more
        assert await found(engine, mailbox, "नद") == []
        assert await found(engine, mailbox, "papyrus") == ["Ancient scrolls"]
    finally:
        await engine.close()
