"""Parallel reads (`Engine.read(op, parallel=True)`): on SQLite they run on reader connections
in threads, off the event loop. A read asked for after a write was acknowledged must see it,
whichever connection runs it, and nothing may fail with "database is locked" while writes
commit and reads run at once. On PostgreSQL every read is on the pool already: the same
contract holds."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from msgspec.structs import replace

from graphpost.domain.query import MessageQuery
from graphpost.store.engine import SqliteEngine, Tx
from graphpost.store.migrate import migrate
from tests.store.conftest import Stores
from tests.store.samples import a_message, a_user

pytestmark = pytest.mark.anyio


async def test_a_parallel_read_after_a_write_sees_it(store: Stores) -> None:
    user = await a_user(store)
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    query = MessageQuery(top=1000, count=True)
    errors: list[BaseException] = []

    async def writer(k: int) -> None:
        try:
            for n in range(15):
                new = a_message(user, inbox.id, subject=f"w{k}-{n}", at=1_700_000_000 + n)
                made = await store.messages.insert_message(new)
                # asked after the write was acknowledged: the list and the count have it
                found, count, _ = await store.messages.list_messages(user.id, inbox.id, query)
                assert made.id in {m.id for m in found}
                total, _ = await store.messages.count_messages(user.id, inbox.id, None)
                assert count is not None and total >= count >= len(found)
                # an update too: the next read sees the new subject
                changed = replace(made.message(), subject=f"changed {k}-{n}")
                after = await store.messages.replace_message(
                    user.id, changed, expected_change_key=made.change_key
                )
                assert after is not None
                again, _, _ = await store.messages.list_messages(user.id, inbox.id, query)
                mine = [m for m in again if m.id == made.id]
                assert [m.message().subject for m in mine] == [f"changed {k}-{n}"]
        except BaseException as exc:  # every writer's failure is reported, not only the first
            errors.append(exc)

    async def reader() -> None:  # reads all along, beside the writers
        for _ in range(60):
            await store.messages.list_messages(user.id, inbox.id, query)

    await asyncio.gather(*(writer(k) for k in range(8)), *(reader() for _ in range(4)))
    assert errors == []
    _, count, _ = await store.messages.list_messages(user.id, inbox.id, query)
    assert count == 8 * 15


async def _thread_of(engine: SqliteEngine, parallel: bool) -> int:
    async def op(tx: Tx) -> int:
        await tx.fetchone("SELECT 1")
        return threading.get_ident()

    return await engine.read(op, parallel=parallel)


async def test_sqlite_parallel_reads_run_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "pool.sqlite3"
    migrate(database_url=None, sqlite_path=path)
    engine = SqliteEngine(path, readers=2)
    try:
        loop = threading.get_ident()
        assert await _thread_of(engine, parallel=False) == loop
        ran = set(await asyncio.gather(*(_thread_of(engine, True) for _ in range(20))))
        assert loop not in ran and 1 <= len(ran) <= 2

        # an error in a thread reaches the caller as the store's error
        async def bad(tx: Tx) -> None:
            await tx.fetchone("SELECT * FROM no_such_table")

        with pytest.raises(Exception, match="no such table"):
            await engine.read(bad, parallel=True)
    finally:
        await engine.close()

    # GRAPHPOST_SQLITE_READER_MMAP_MB: the reader threads' connections map the file
    async def mapped(tx: Tx) -> int:
        row = await tx.fetchone("PRAGMA mmap_size")
        return int(row[0]) if row else -1

    engine = SqliteEngine(path, readers=1, mmap_bytes=1 << 20)
    try:
        assert await engine.read(mapped, parallel=True) == 1 << 20
        assert await engine.read(mapped) == 0  # the loop's reader: not mapped
    finally:
        await engine.close()
    # no reader threads: every read on the loop
    engine = SqliteEngine(path, readers=0)
    try:
        assert await _thread_of(engine, parallel=True) == threading.get_ident()
    finally:
        await engine.close()
