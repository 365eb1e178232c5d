"""The subscriptions port's contract on SQLite and PostgreSQL: subscriptions, the cap per
mailbox, leases, notifications numbered and dropped in order, removal."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from graphpost.domain import ids
from graphpost.ports.directory import User
from graphpost.ports.subscriptions import Channel, ResourceKind, Subscription
from graphpost.services.directory import mailbox_folders
from graphpost.store.directory import SqlDirectory
from graphpost.store.engine import Engine
from graphpost.store.subscriptions import SqlSubscriptions

pytestmark = pytest.mark.anyio
HOUR = 3_600_000


async def a_user(engine: Engine, name: str = "a") -> User:
    directory = SqlDirectory(engine)
    tenant = await directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, name, f"{name}@example.com", f"{name}@example.com")
    return await directory.add_user(user, mailbox_folders(user.id))


def a_subscription(
    user: User, *, app: str = "app", lifecycle: str | None = None, expires_ms: int = 10 * HOUR
) -> Subscription:
    return Subscription(
        id=ids.guid(), tenant_id=user.tenant_id, app_id=app, creator_id=user.id,
        delegated=True, mailbox_id=user.id, resource="me/messages", kind=ResourceKind.MESSAGE,
        folder_id=None, change_types=frozenset({"created", "deleted"}),
        notification_url="https://example.net/hook", lifecycle_url=lifecycle,
        client_state="s", tls_version="v1_2", created_ms=1, expires_ms=expires_ms,
        reauth_ms=None, cursor=7, change_seq=0, life_seq=0,
    )  # fmt: skip


async def test_subscriptions_and_the_cap(engine: Engine) -> None:
    store = SqlSubscriptions(engine)
    user = await a_user(engine)
    first = a_subscription(user)
    assert await store.create(first, max_per_mailbox=2)
    assert await store.get(first.id) == first
    second = a_subscription(user, app="other")
    assert await store.create(second, max_per_mailbox=2)
    assert not await store.create(a_subscription(user), max_per_mailbox=2)
    assert [s.id for s in await store.list_for(user.tenant_id, "app", None)] == [first.id]
    assert await store.list_for(user.tenant_id, "app", "someone else") == []
    renewed = await store.renew(first.id, expires_ms=20 * HOUR, reauth_ms=19 * HOUR,
                                notification_url=None)  # fmt: skip
    assert renewed == replace(first, expires_ms=20 * HOUR, reauth_ms=19 * HOUR)
    assert await store.delete(first.id) and not await store.delete(first.id)
    assert await store.get(first.id) is None
    assert await store.mailboxes() == [user.id]
    # the user's removal takes the subscriptions with it
    assert await SqlDirectory(engine).remove_user(user.id)
    assert await store.get(second.id) is None


async def test_two_creates_at_once_respect_the_cap(engine: Engine) -> None:
    store = SqlSubscriptions(engine)
    user = await a_user(engine)
    made = await asyncio.gather(
        *(store.create(a_subscription(user), max_per_mailbox=3) for _ in range(8))
    )
    assert sum(made) == 3


async def test_leases_notifications_in_order(engine: Engine) -> None:
    store = SqlSubscriptions(engine)
    user = await a_user(engine)
    sub = a_subscription(user, lifecycle="https://example.net/life")
    await store.create(sub, max_per_mailbox=10)
    got = await store.claim(owner="w1", now_ms=1000, lease_ms=5000, limit=10)
    assert [s.id for s in got] == [sub.id]
    assert await store.claim(owner="w2", now_ms=2000, lease_ms=5000, limit=10) == []
    # the owner adds, guarded by the cursor it read
    assert await store.add_notifications(
        sub.id, owner="w1", expected_cursor=7, cursor=9, changes=[b'{"a":1}', b'{"a":2}'],
        lifecycle=[b'{"lifecycleEvent":"missed"}'], now_ms=1000,
    )  # fmt: skip
    assert not await store.add_notifications(
        sub.id, owner="w1", expected_cursor=7, cursor=12, changes=[b"{}"], lifecycle=[],
        now_ms=1000,
    )  # fmt: skip
    assert not await store.add_notifications(
        sub.id, owner="w2", expected_cursor=9, cursor=12, changes=[b"{}"], lifecycle=[],
        now_ms=1000,
    )  # fmt: skip
    assert await store.add_notifications(
        sub.id, owner="w1", expected_cursor=9, cursor=10, changes=[b'{"a":3}'], lifecycle=[],
        now_ms=1000,
    )  # fmt: skip
    pending = await store.pending(sub.id, Channel.CHANGE, 10)
    assert [(n.seq, n.body) for n in pending] == [(1, b'{"a":1}'), (2, b'{"a":2}'), (3, b'{"a":3}')]
    assert [n.seq for n in await store.pending(sub.id, Channel.LIFECYCLE, 10)] == [1]
    assert await store.delivered(sub.id, Channel.CHANGE, 2, owner="w2") == 0  # not its lease
    await store.deferred(sub.id, owner="w1", next_attempt_ms=9000)
    assert await store.delivered(sub.id, Channel.CHANGE, 2, owner="w1") == 2
    assert [n.seq for n in await store.pending(sub.id, Channel.CHANGE, 10)] == [3]
    # an expired lease is taken over; the cursor and numbers stay
    taken = await store.claim(owner="w2", now_ms=7000, lease_ms=5000, limit=10)
    assert taken[0].cursor == 10 and taken[0].change_seq == 3 and taken[0].attempts == 0
    await store.release([sub.id], owner="w2")
    assert await store.claim(owner="w3", now_ms=7001, lease_ms=5000, limit=10)


async def test_removal(engine: Engine) -> None:
    store = SqlSubscriptions(engine)
    user = await a_user(engine)
    with_life = a_subscription(user, lifecycle="https://example.net/life", expires_ms=HOUR)
    without = a_subscription(user, expires_ms=HOUR)
    later = a_subscription(user, expires_ms=5 * HOUR)
    for s in (with_life, without, later):
        await store.create(s, max_per_mailbox=10)
    await store.claim(owner="w", now_ms=0, lease_ms=HOUR, limit=10)
    await store.add_notifications(with_life.id, owner="w", expected_cursor=7, cursor=8,
                                  changes=[b"{}"], lifecycle=[], now_ms=0)  # fmt: skip
    expired = await store.expired(HOUR, 10)
    assert {s.id for s in expired} == {with_life.id, without.id}
    assert await store.remove(with_life.id, lifecycle=b'{"x":1}', now_ms=HOUR)
    assert await store.remove(without.id, lifecycle=None, now_ms=HOUR)
    assert not await store.remove(without.id, lifecycle=None, now_ms=HOUR)
    assert await store.get(with_life.id) is None  # removed: not visible
    assert await store.pending(with_life.id, Channel.CHANGE, 10) == []
    assert [n.seq for n in await store.pending(with_life.id, Channel.LIFECYCLE, 10)] == [1]
    assert await store.purge_removed(0) == 0  # its subscriptionRemoved is still to go
    await store.delivered(with_life.id, Channel.LIFECYCLE, 1, owner="w")
    assert await store.purge_removed(0) == 1
    assert await store.expired(HOUR, 10) == []
