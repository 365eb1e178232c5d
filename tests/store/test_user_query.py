"""The directory port's user queries on both engines: tenant scoping, filters (case-insensitive,
LIKE wildcards taken literally), ordering, keyset pages and counts."""

from __future__ import annotations

import pytest

from graphpost.api.odata import parse_filter
from graphpost.domain import ids
from graphpost.ports.directory import User, UserQuery
from graphpost.services.directory import mailbox_folders
from tests.store.conftest import Stores

pytestmark = pytest.mark.anyio

NAMES = ["Adele Vance", "alex Wilber", "Allan Deyoung", "Megan Bowen", "Ada_%Lovelace",
         "Élodie Ünal"]  # fmt: skip


async def seed(store: Stores) -> tuple[str, list[User]]:
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    other = await store.directory.ensure_tenant(domain="other.example", display_name="Other")
    users = []
    for name in NAMES:
        alias = name.split()[0].lower().replace("%", "").replace("é", "e")
        user = User(ids.guid(), tenant.id, name, f"{alias}@Example.com", f"{alias}@example.com")
        users.append(await store.directory.add_user(user, mailbox_folders(user.id)))
    stranger = User(ids.guid(), other.id, "Adele Elsewhere", "adele@other.example",
                    "adele@other.example")  # fmt: skip
    await store.directory.add_user(stranger, mailbox_folders(stranger.id))
    return tenant.id, users


async def names(store: Stores, tenant: str, text: str | None, **kw: object) -> list[str]:
    query = UserQuery(tenant, where=parse_filter(text) if text else None, top=50, **kw)  # type: ignore[arg-type]
    page = await store.directory.query_users(query)
    return [u.display_name for u in page.users]


async def test_filters_are_scoped_to_the_tenant_and_case_insensitive(store: Stores) -> None:
    tenant, users = await seed(store)
    assert len(await names(store, tenant, None)) == len(NAMES)  # never the other tenant's
    assert sorted(await names(store, tenant, "startswith(displayName,'AD')")) == [
        "Ada_%Lovelace", "Adele Vance",
    ]  # fmt: skip
    assert await names(store, tenant, "mail eq 'MEGAN@EXAMPLE.COM'") == ["Megan Bowen"]
    assert await names(store, tenant, "userPrincipalName eq 'megan@example.com' or "
                                      "displayName eq 'ALLAN DEYOUNG'",
                       order="displayname") == ["Allan Deyoung", "Megan Bowen"]  # fmt: skip
    assert await names(store, tenant, f"id eq '{users[1].id.upper()}'") == ["alex Wilber"]
    # % and _ are literal characters, not wildcards
    assert await names(store, tenant, "startswith(displayName,'Ada_%')") == ["Ada_%Lovelace"]
    assert await names(store, tenant, "startswith(displayName,'A%')") == []
    assert sorted(await names(store, tenant, "endswith(mail,'example.com') and not "
                                             "(startswith(mail,'a'))")) == [
        "Megan Bowen", "Élodie Ünal",
    ]  # fmt: skip
    # a non-ASCII name matches as written, and with its ASCII letters in any case, on both
    # engines (the database lowers both sides, so they always agree)
    assert await names(store, tenant, "displayName eq 'Élodie Ünal'") == ["Élodie Ünal"]
    assert await names(store, tenant, "displayName eq 'ÉLODIE ÜNAL'") == ["Élodie Ünal"]
    assert await names(store, tenant, "startswith(displayName,'Élo')") == ["Élodie Ünal"]
    # a value is only ever a value
    assert await names(store, tenant, "displayName eq 'x'' OR ''1''=''1'") == []


async def test_order_pages_and_count(store: Stores) -> None:
    tenant, _ = await seed(store)
    # the database's own order (its collation decides where accented names go), in one page
    expected = await names(store, tenant, None, order="displayname")
    assert sorted(expected) == sorted(NAMES)
    ascii_only = [n for n in expected if n.isascii()]
    assert ascii_only == sorted(ascii_only, key=str.lower)
    for descending in (False, True):
        seen: list[str] = []
        after = None
        while True:
            query = UserQuery(tenant, order="displayname", descending=descending, top=2,
                              after=after, count=after is None)  # fmt: skip
            page = await store.directory.query_users(query)
            if after is None:
                assert page.count == len(NAMES)
            seen += [u.display_name for u in page.users]
            if page.next_after is None:
                break
            after = page.next_after
        assert seen == (expected[::-1] if descending else expected)
    by_id: list[str] = []
    after = None
    while True:
        page = await store.directory.query_users(UserQuery(tenant, top=3, after=after))
        by_id += [u.id for u in page.users]
        if page.next_after is None:
            break
        after = page.next_after
    assert by_id == sorted(by_id) and len(set(by_id)) == len(NAMES)
    filtered = await store.directory.query_users(
        UserQuery(tenant, where=parse_filter("startswith(displayName,'a')"), top=1, count=True)
    )
    assert filtered.count == 4 and len(filtered.users) == 1 and filtered.next_after is not None
