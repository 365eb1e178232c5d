"""The access port's contract (mailbox grants, application access policies) on SQLite and
PostgreSQL, and what removing a user or an app does to them."""

from __future__ import annotations

import pytest

from graphpost.domain import ids
from graphpost.ports.access import AppPolicy, Grant
from graphpost.ports.directory import User
from graphpost.services.directory import mailbox_folders
from graphpost.store.access import SqlAccess
from graphpost.store.directory import SqlDirectory
from graphpost.store.engine import Engine, Tx
from graphpost.types import Right

pytestmark = pytest.mark.anyio


async def users(engine: Engine, *names: str) -> list[User]:
    directory = SqlDirectory(engine)
    tenant = await directory.ensure_tenant(domain="example.com", display_name="Example")
    out = []
    for name in names:
        user = User(ids.guid(), tenant.id, name, f"{name}@example.com", f"{name}@example.com")
        out.append(await directory.add_user(user, mailbox_folders(user.id)))
    return out


async def test_grants(engine: Engine) -> None:
    access = SqlAccess(engine)
    owner, a, b = await users(engine, "owner", "a", "b")
    assert await access.grant(owner.id, a.id) is None
    first = Grant(owner.id, a.id, frozenset({Right.READ}), 100)
    await access.put_grant(first)
    assert await access.grant(owner.id, a.id) == first
    # a second grant between the same two replaces the rights, not the row
    wider = frozenset({Right.READWRITE, Right.SEND_AS, Right.SEND_ON_BEHALF})
    await access.put_grant(Grant(owner.id, a.id, wider, 200))
    got = await access.grant(owner.id, a.id)
    assert got is not None and got.rights == wider and got.created_at == 100
    await access.put_grant(Grant(owner.id, b.id, frozenset({Right.READ}), 150))
    assert [g.delegate_id for g in await access.grants_of(owner.id)] == [a.id, b.id]
    assert await access.grants_of(a.id) == []  # grants go one way
    assert await access.grant(a.id, owner.id) is None
    assert await access.remove_grant(owner.id, a.id) is True
    assert await access.remove_grant(owner.id, a.id) is False
    assert [g.delegate_id for g in await access.grants_of(owner.id)] == [b.id]


async def test_grants_go_with_their_users(engine: Engine) -> None:
    access = SqlAccess(engine)
    owner, a = await users(engine, "owner", "a")
    await access.put_grant(Grant(owner.id, a.id, frozenset({Right.READ}), 1))
    assert await SqlDirectory(engine).remove_user(a.id)
    assert await access.grants_of(owner.id) == []


async def test_unknown_rights_in_the_table_are_ignored(engine: Engine) -> None:
    access = SqlAccess(engine)
    owner, a = await users(engine, "owner", "a")

    async def op(tx: Tx) -> None:
        await tx.execute(
            "INSERT INTO mailbox_grants (mailbox_id, delegate_id, rights, created_at) "
            "VALUES (?, ?, ?, ?)",
            (owner.id, a.id, "read  everything\tsend_as", 1),
        )

    await engine.write(op)
    got = await access.grant(owner.id, a.id)
    assert got is not None and got.rights == {Right.READ, Right.SEND_AS}


async def test_app_policies(engine: Engine) -> None:
    access = SqlAccess(engine)
    directory = SqlDirectory(engine)
    owner, a, b = await users(engine, "owner", "a", "b")
    app = await directory.ensure_app(tenant_id=owner.tenant_id, name="daemon", app_id=ids.guid())
    other = await directory.ensure_app(tenant_id=owner.tenant_id, name="other", app_id=ids.guid())
    assert await access.find_apps(app.id) == [app]
    assert await access.find_apps(app.id.upper()) == [app]
    assert await access.find_apps("daemon") == [app]
    assert await access.find_apps("nothing") == []
    assert await access.policy_of(app.id) is None
    await access.put_policy(app.id, [owner.id, a.id, owner.id], 5)
    assert await access.policy_of(app.id) == frozenset({owner.id, a.id})
    assert await access.policy_of(other.id) is None
    # a new policy replaces the old one
    await access.put_policy(app.id, [b.id], 6)
    assert await access.policy_of(app.id) == frozenset({b.id})
    await access.put_policy(other.id, [a.id], 7)
    assert await access.policies() == sorted(
        [AppPolicy(app.id, b.id, 6), AppPolicy(other.id, a.id, 7)],
        key=lambda p: (p.app_id, p.mailbox_id),
    )
    # a removed mailbox leaves the policy; the app stays restricted to what is left
    await access.put_policy(app.id, [a.id, b.id], 8)
    assert await directory.remove_user(b.id)
    assert await access.policy_of(app.id) == frozenset({a.id})
    # and once every listed mailbox is gone it opens none: never every mailbox
    assert await directory.remove_user(a.id)
    assert await access.policy_of(app.id) == frozenset()
    assert await access.policies() == sorted(
        [AppPolicy(app.id, None, 5), AppPolicy(other.id, None, 7)], key=lambda p: p.app_id
    )
    await access.put_policy(app.id, [owner.id], 9)
    assert await access.remove_policy(app.id) == 1
    assert await access.remove_policy(app.id) == 0
    assert await access.policy_of(app.id) is None
