"""The delta service on a real store, both engines: a round continues across pages while
others write, and a token older than the log's horizon (pruned) is refused with 410."""

from __future__ import annotations

import msgspec
import pytest

from graphpost.auth.principal import Principal
from graphpost.domain import ids
from graphpost.errors import SyncStateNotFoundError
from graphpost.services.delta import DeltaQuery, DeltaService
from graphpost.services.directory import Mailbox
from graphpost.services.folders import FolderService
from graphpost.store.changes import SqlChangeLog
from graphpost.store.engine import Tx
from tests.store.conftest import Stores
from tests.store.samples import a_message, a_user

pytestmark = pytest.mark.anyio


async def test_a_pruned_position_is_refused_and_a_fresh_sync_works(store: Stores) -> None:
    log = SqlChangeLog(store.engine)
    delta = DeltaService(store.messages, FolderService(store.folders), store.folders, log)
    user = await a_user(store)
    mailbox = Mailbox(user, Principal("t", "app", user.id, frozenset({"Mail.Read"}), 0))
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    first = a_message(user, inbox.id)
    await store.messages.insert_message(first)
    page = await delta.messages_page(mailbox, "inbox", DeltaQuery(page_size=5))
    assert [m.id for m in page.messages] == [first.message.id] and page.delta_token
    token = page.delta_token
    # an initial sync paging while a message arrives: the next round has it
    await store.messages.insert_message(a_message(user, inbox.id))
    paging = await delta.messages_page(mailbox, "inbox", DeltaQuery(page_size=1))
    assert paging.next_token is not None
    late = a_message(user, inbox.id)
    await store.messages.insert_message(late)
    rest = await delta.messages_page(
        mailbox, "inbox", DeltaQuery(token=paging.next_token, page_size=1)
    )
    following = rest.next_token or rest.delta_token
    while rest.next_token:
        rest = await delta.messages_page(mailbox, "inbox", DeltaQuery(token=following, page_size=1))
        following = rest.next_token or rest.delta_token
    after = await delta.messages_page(mailbox, "inbox", DeltaQuery(token=following, page_size=9))
    assert late.message.id in [m.id for m in after.messages]
    # changes older than the retention are pruned: the old token's position is gone
    changed = msgspec.structs.replace(first.message, is_read=False, change_key=ids.change_key())
    assert await store.messages.replace_message(
        user.id, changed, expected_change_key=first.message.change_key
    )

    async def age(tx: Tx) -> None:
        await tx.execute("UPDATE changes SET at_ms = 1")

    await store.engine.write(age)
    assert await log.prune(before_ms=2) > 0
    with pytest.raises(SyncStateNotFoundError):
        await delta.messages_page(mailbox, "inbox", DeltaQuery(token=token))
    # the client starts again
    again = await delta.messages_page(mailbox, "inbox", DeltaQuery(page_size=10))
    assert len(again.messages) == 3 and again.delta_token
    quiet = await delta.messages_page(mailbox, "inbox", DeltaQuery(token=again.delta_token))
    assert quiet.messages == [] and quiet.removed == []


async def test_a_filtered_initial_sync_returns_at_most_the_cap(store: Stores) -> None:
    """Graph: with $filter a delta returns only up to 5,000 messages (here a cap of 5): the
    newest, then the deltaLink; the next round has the changes as usual."""
    log = SqlChangeLog(store.engine)
    delta = DeltaService(
        store.messages, FolderService(store.folders), store.folders, log, filtered_cap=5
    )
    user = await a_user(store)
    mailbox = Mailbox(user, Principal("t", "app", user.id, frozenset({"Mail.Read"}), 0))
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    for _ in range(8):
        await store.messages.insert_message(a_message(user, inbox.id))
    since = (0, True)
    seen: list[str] = []
    page = await delta.messages_page(mailbox, "inbox", DeltaQuery(page_size=2, since=since))
    seen += [m.id for m in page.messages]
    while page.next_token:
        page = await delta.messages_page(
            mailbox, "inbox", DeltaQuery(token=page.next_token, page_size=2)
        )
        seen += [m.id for m in page.messages]
    assert len(seen) == 5 and page.delta_token is not None
    unfiltered = await delta.messages_page(mailbox, "inbox", DeltaQuery(page_size=100))
    assert len(unfiltered.messages) == 8  # no cap without $filter
    assert seen == [m.id for m in unfiltered.messages][:5]  # the newest
    late = a_message(user, inbox.id)
    await store.messages.insert_message(late)
    after = await delta.messages_page(mailbox, "inbox", DeltaQuery(token=page.delta_token))
    assert [m.id for m in after.messages] == [late.message.id]
