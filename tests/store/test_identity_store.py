"""The identity port's contract (apps' credentials, passwords, grants, failures) on SQLite and
PostgreSQL alike."""

from __future__ import annotations

import asyncio

import pytest

from graphpost.domain import ids
from graphpost.errors import AlreadyExistsError
from graphpost.ports.directory import User
from graphpost.ports.identity import AppRegistration, Grant
from graphpost.services.directory import mailbox_folders
from graphpost.store.identity import SqlIdentity
from tests.store.conftest import Stores

pytestmark = pytest.mark.anyio


async def _user(store: Stores) -> User:
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, "A Person", "a@example.com", "a@example.com")
    await store.directory.add_user(user, mailbox_folders(user.id))
    return user


def _grant(user: User, kind: str = "code", **changes: object) -> Grant:
    values: dict[str, object] = dict(
        handle=ids.guid().replace("-", "") * 2, kind=kind, tenant_id=user.tenant_id,
        client_id="c1", user_id=user.id, scopes=("Mail.Read", "openid"),
        expires_at=2_000_000_000_000, data={"redirect_uri": "http://localhost/ü"},
    )  # fmt: skip
    values.update(changes)
    return Grant(**values)  # type: ignore[arg-type]


async def test_apps(store: Stores) -> None:
    identity = SqlIdentity(store.engine)
    user = await _user(store)
    app = AppRegistration(
        id=ids.guid(), tenant_id=user.tenant_id, name="daemon", secret_digest="ab" * 32,
        roles=("Mail.Read", "Mail.Send"), redirect_uris=("https://app.example/cb",),
    )  # fmt: skip
    await identity.add_app(app)
    assert await identity.find_app(app.id) == app
    public = AppRegistration(ids.guid(), user.tenant_id, "native", None, (),
                             ("http://localhost",), True)  # fmt: skip
    await identity.add_app(public)
    assert await identity.find_app(public.id) == public
    with pytest.raises(AlreadyExistsError):
        await identity.add_app(AppRegistration(ids.guid(), user.tenant_id, "daemon", None))
    assert [a.name for a in await identity.list_apps()] == ["daemon", "native"]
    # the CLI's token --app registers apps with no credentials: they read back empty
    await store.directory.ensure_app(tenant_id=user.tenant_id, name="bare", app_id="bare-id")
    bare = await identity.find_app("bare-id")
    assert bare is not None and bare.roles == () and bare.secret_digest is None
    assert await identity.remove_app(app.id)
    assert await identity.find_app(app.id) is None
    assert not await identity.remove_app(app.id)


async def test_passwords(store: Stores) -> None:
    identity = SqlIdentity(store.engine)
    user = await _user(store)
    assert await identity.password_hash(user.id) is None
    assert await identity.set_password_hash(user.id, "$argon2id$v=19$x")
    assert await identity.password_hash(user.id) == "$argon2id$v=19$x"
    assert not await identity.set_password_hash("nobody", "h")


async def test_grants_are_single_use(store: Stores) -> None:
    identity = SqlIdentity(store.engine)
    user = await _user(store)
    grant = _grant(user)
    await identity.add_grant(grant)
    with pytest.raises(AlreadyExistsError):
        await identity.add_grant(grant)
    assert await identity.peek_grant(grant.handle, "refresh") is None  # another kind
    assert await identity.peek_grant(grant.handle, "code") == grant
    takers = await asyncio.gather(*(identity.take_grant(grant.handle, "code") for _ in range(5)))
    assert [t for t in takers if t is not None] == [grant]  # exactly one taker gets it
    assert await identity.take_grant(grant.handle, "code") is None


async def test_device_grants(store: Stores) -> None:
    identity = SqlIdentity(store.engine)
    user = await _user(store)
    device = _grant(user, "device", user_id=None, user_code="BCDFGHJKL", data={"state": "pending"})
    await identity.add_grant(device)
    with pytest.raises(AlreadyExistsError):  # the user code is unique
        await identity.add_grant(_grant(user, "device", user_code="BCDFGHJKL"))
    assert await identity.grant_by_user_code("BCDFGHJKL") == device
    assert await identity.grant_by_user_code("NOPE") is None
    assert await identity.settle_device(device.handle, user_id=user.id, state="approved")
    assert not await identity.settle_device(device.handle, user_id=None, state="declined")
    settled = await identity.peek_grant(device.handle, "device")
    assert settled is not None and settled.user_id == user.id
    assert settled.data["state"] == "approved"


async def test_failures_and_purge(store: Stores) -> None:
    identity = SqlIdentity(store.engine)
    user = await _user(store)
    for at in (1_000, 2_000, 3_000):
        await identity.record_failure([f"user:{user.id}", "client:c1"], at)
    assert await identity.count_failures(f"user:{user.id}", 0) == 3
    assert await identity.count_failures("client:c1", 2_000) == 2
    assert await identity.count_failures("client:other", 0) == 0
    await identity.add_grant(_grant(user, expires_at=5_000))
    keep = _grant(user, expires_at=10_000)
    await identity.add_grant(keep)
    await identity.purge(6_000, failures_before_ms=2_500)
    assert await identity.count_failures("client:c1", 0) == 1
    assert await identity.peek_grant(keep.handle, "code") == keep
    # removing the user removes their grants
    await store.directory.remove_user(user.id)
    assert await identity.peek_grant(keep.handle, "code") is None


async def test_live_grants_are_counted_per_client_and_kind(store: Stores) -> None:
    identity = SqlIdentity(store.engine)
    user = await _user(store)
    for i in range(3):
        await identity.add_grant(_grant(user, "device", user_code=f"BCDFG{i}", user_id=None))
    await identity.add_grant(_grant(user, "device", user_code="BCDFGX", expires_at=1000))
    await identity.add_grant(_grant(user, "device", user_code="BCDFGY", client_id="c2"))
    await identity.add_grant(_grant(user, "refresh"))
    assert await identity.count_live_grants("c1", "device", 2000) == 3
    assert await identity.count_live_grants("c2", "device", 2000) == 1
    assert await identity.count_live_grants("c1", "refresh", 2000) == 1
    assert await identity.count_live_grants("c3", "device", 2000) == 0
