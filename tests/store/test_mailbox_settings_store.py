"""The mailbox settings port's contract on SQLite and PostgreSQL: the settings document and
its reply period, master categories (names unique in any case, a cap), Focused Inbox overrides
(one per address, a cap), what removing the user does, and the index that answers a folder's
``inferenceClassification`` filter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphpost.api.odata import parse_filter
from graphpost.domain import ids
from graphpost.domain.settings import Category, Override
from graphpost.errors import AlreadyExistsError
from graphpost.ports.directory import User
from graphpost.services.directory import mailbox_folders
from graphpost.store.directory import SqlDirectory
from graphpost.store.engine import Engine, Tx
from graphpost.store.filters import compile_filter, compile_order
from graphpost.store.mailbox import SqlMailboxSettings

pytestmark = pytest.mark.anyio


async def a_user(engine: Engine, name: str = "owner") -> User:
    directory = SqlDirectory(engine)
    tenant = await directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, name, f"{name}@example.com", f"{name}@example.com")
    return await directory.add_user(user, mailbox_folders(user.id))


async def test_settings_document_and_reply_period(engine: Engine) -> None:
    store = SqlMailboxSettings(engine)
    user = await a_user(engine)
    assert (await store.settings(user.id)).document is None
    seen: list[bytes | None] = []

    def change(doc: bytes, replies: bool):  # type: ignore[no-untyped-def]
        def apply(raw: bytes | None) -> tuple[bytes, bool]:
            seen.append(raw)
            return doc, replies

        return apply

    got = await store.update_settings(user.id, change(b'{"a":1}', True), now_ms=1)
    assert got.document == b'{"a":1}' and got.reply_epoch == 1 and seen == [None]
    got = await store.update_settings(user.id, change(b'{"a":2}', False), now_ms=2)
    assert got.reply_epoch == 1 and seen[-1] == b'{"a":1}'
    got = await store.update_settings(user.id, change(b'{"a":3}', True), now_ms=3)
    assert got.reply_epoch == 2
    assert await store.settings(user.id) == got

    # concurrent changes each see the one before (the row is locked): none is lost
    async def bump(_: int) -> None:
        def apply(raw: bytes | None) -> tuple[bytes, bool]:
            return str(int((raw or b"0").decode().strip('{"a:}') or 0) + 1).encode(), True

        await store.update_settings(user.id, apply, now_ms=4)

    await store.update_settings(user.id, lambda raw: (b"0", False), now_ms=4)
    await asyncio.gather(*(bump(i) for i in range(8)))
    final = await store.settings(user.id)
    assert final.document == b"8" and final.reply_epoch == 10


async def test_categories(engine: Engine) -> None:
    store = SqlMailboxSettings(engine)
    user, other = await a_user(engine), await a_user(engine, "other")
    first = Category(ids.guid(), "Red Team", "preset0")
    assert await store.add_category(user.id, first, limit=2, now_ms=1)
    with pytest.raises(AlreadyExistsError):
        await store.add_category(user.id, Category(ids.guid(), "red TEAM", "none"), limit=2,
                                 now_ms=2)  # fmt: skip
    # the same name in another Unicode normalization form (NFD, as macOS writes it) and case
    decomposed = Category(ids.guid(), "Cafe\u0301", "none")
    assert await store.add_category(other.id, decomposed, limit=9, now_ms=2)
    with pytest.raises(AlreadyExistsError):
        await store.add_category(other.id, Category(ids.guid(), "CAF\u00c9", "none"), limit=9,
                                 now_ms=2)  # fmt: skip
    assert await store.remove_category(other.id, decomposed.id)
    # another mailbox may have the same name
    assert await store.add_category(other.id, Category(ids.guid(), "Red Team", "none"),
                                    limit=2, now_ms=2)  # fmt: skip
    second = Category(ids.guid(), "Blue", "preset1")
    assert await store.add_category(user.id, second, limit=2, now_ms=3)
    assert not await store.add_category(user.id, Category(ids.guid(), "Third", "none"),
                                        limit=2, now_ms=4)  # fmt: skip
    assert await store.categories(user.id) == [first, second]
    assert await store.set_color(user.id, first.id, "preset7")
    assert (await store.category(user.id, first.id)) == Category(first.id, "Red Team", "preset7")
    assert not await store.set_color(other.id, first.id, "preset7")  # not its category
    assert await store.remove_category(user.id, second.id)
    assert not await store.remove_category(user.id, second.id)
    assert await store.category(user.id, second.id) is None


async def test_overrides_and_user_removal(engine: Engine) -> None:
    store = SqlMailboxSettings(engine)
    user = await a_user(engine)
    made = await store.put_override(
        user.id, Override(ids.guid(), "a@example.net", "A", "other"), limit=2, now_ms=1
    )
    assert made is not None
    again = await store.put_override(
        user.id, Override(ids.guid(), "a@example.net", "A2", "focused"), limit=2, now_ms=2
    )
    assert again == Override(made.id, "a@example.net", "A2", "focused")
    assert await store.put_override(
        user.id, Override(ids.guid(), "b@example.net", None, "other"), limit=2, now_ms=3
    )
    assert (
        await store.put_override(
            user.id, Override(ids.guid(), "c@example.net", None, "other"), limit=2, now_ms=4
        )
        is None
    )
    assert await store.classification_of(user.id, "A@Example.NET") == "focused"
    assert await store.classification_of(user.id, "nobody@example.net") is None
    assert await store.set_classification(user.id, made.id, "other")
    assert (await store.override(user.id, made.id)) == Override(made.id, "a@example.net", "A2",
                                                                  "other")  # fmt: skip
    assert [o.address for o in await store.overrides(user.id)] == [
        "a@example.net",
        "b@example.net",
    ]
    await store.update_settings(user.id, lambda raw: (b"{}", True), now_ms=5)
    await store.add_category(user.id, Category(ids.guid(), "x", "none"), limit=5, now_ms=5)
    await SqlDirectory(engine).remove_user(user.id)
    assert await store.overrides(user.id) == []
    assert await store.categories(user.id) == []
    assert (await store.settings(user.id)).document is None


async def test_inference_filter_uses_an_index(engine: Engine) -> None:
    """The folder query ``SqlMessages.list_messages`` runs for
    ``$filter=inferenceClassification eq 'focused'`` (compiled by store/filters.py)."""
    params: list[Any] = ["folder"]
    where = "m.folder_id = ? AND " + compile_filter(
        parse_filter("inferenceClassification eq 'focused'"), params
    )
    sql = f"SELECT m.seq FROM messages m WHERE {where} ORDER BY {compile_order([])} LIMIT 11"

    async def plan(tx: Tx) -> str:
        if tx.dialect == "sqlite":
            rows = await tx.fetchall("EXPLAIN QUERY PLAN " + sql, params)
            return " ".join(str(r[-1]) for r in rows)
        await tx.execute("SET LOCAL enable_seqscan = off")
        rows = await tx.fetchall("EXPLAIN " + sql, params)
        return " ".join(str(r[0]) for r in rows)

    text = await engine.write(plan)
    assert "ix_messages_folder_inference" in text, text
