"""A failing write spoils nothing but itself: it runs once more alone at most, and its
neighbours in the same group commit still commit (SQLite batches; PostgreSQL does not)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from graphpost.errors import AlreadyExistsError
from graphpost.store.engine import Engine, Op, Tx

pytestmark = pytest.mark.anyio


def add_tenant(calls: Counter[str], name: str, domain: str) -> Op[str]:
    """An operation inserting one tenant, counting how often it runs."""

    async def op(tx: Tx) -> str:
        calls[name] += 1
        await tx.execute(
            "INSERT INTO tenants (id, domain, display_name, created_at) VALUES (?, ?, ?, 0)",
            (name, domain, name),
        )
        return name

    return op


async def tenant_ids(engine: Engine) -> set[str]:
    async def op(tx: Tx) -> set[str]:
        return {str(row[0]) for row in await tx.fetchall("SELECT id FROM tenants")}

    return await engine.read(op)


async def test_a_failing_write_alone_runs_once(engine: Engine) -> None:
    calls: Counter[str] = Counter()
    await engine.write(add_tenant(calls, "first", "taken.example"))
    with pytest.raises(AlreadyExistsError):
        await engine.write(add_tenant(calls, "again", "taken.example"))
    assert calls == {"first": 1, "again": 1}
    assert await tenant_ids(engine) == {"first"}


async def test_a_failing_write_in_a_batch_runs_once_more_alone(engine: Engine) -> None:
    calls: Counter[str] = Counter()
    await engine.write(add_tenant(calls, "first", "taken.example"))
    results = await asyncio.gather(
        engine.write(add_tenant(calls, "before", "before.example")),
        engine.write(add_tenant(calls, "failing", "taken.example")),
        engine.write(add_tenant(calls, "after", "after.example")),
        return_exceptions=True,
    )
    assert results[0] == "before" and results[2] == "after"
    assert isinstance(results[1], AlreadyExistsError)  # its own error, to its own caller
    # SQLite ran the three in one transaction until "failing" raised, then undid it and ran
    # each once more in a transaction of its own ("after" had not run yet)
    batched = engine.dialect == "sqlite"
    assert calls == {"first": 1, "before": 1 + batched, "failing": 1 + batched, "after": 1}
    assert await tenant_ids(engine) == {"first", "before", "after"}


async def test_two_writes_in_a_lock_cycle_both_commit(engine: Engine) -> None:
    """Two writes that lock two rows in opposite orders (PostgreSQL: a deadlock, one aborted,
    which was answered 503): the aborted one runs again and both commit. On SQLite the one
    writer serialises them."""
    if engine.dialect != "postgresql":
        pytest.skip("SQLite's one writer cannot deadlock")
    await engine.write(
        lambda tx: tx.executemany(
            "INSERT INTO change_counters (mailbox_id, last_seq, horizon) VALUES (?, 0, 0)",
            [("lock-a",), ("lock-b",)],
        )
    )
    both_locked_once = asyncio.Barrier(2)
    runs: Counter[str] = Counter()

    def crossing(first: str, second: str) -> Op[None]:
        async def op(tx: Tx) -> None:
            runs[first] += 1
            await tx.execute(
                "UPDATE change_counters SET last_seq = last_seq + 1 WHERE mailbox_id = ?", (first,)
            )
            if runs[first] == 1:
                await asyncio.wait_for(both_locked_once.wait(), 10)
            await tx.execute(
                "UPDATE change_counters SET last_seq = last_seq + 1 WHERE mailbox_id = ?",
                (second,),
            )

        return op

    await asyncio.gather(
        engine.write(crossing("lock-a", "lock-b")), engine.write(crossing("lock-b", "lock-a"))
    )
    rows = await engine.read(
        lambda tx: tx.fetchall(
            "SELECT last_seq FROM change_counters WHERE mailbox_id IN ('lock-a', 'lock-b')"
        )
    )
    assert [r[0] for r in rows] == [2, 2]  # each write once, whole
    assert sum(runs.values()) == 3  # one of them ran again
