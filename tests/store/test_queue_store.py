"""The outbox port's queue operations on both engines: deliveries listed by state newest
first with a keyset cursor, "retry now" (never taking a worker's lease) and "delete"
(refused while a worker holds the delivery, and for one that has ended)."""

from __future__ import annotations

import pytest

from graphpost.domain import ids
from graphpost.ports.directory import User
from graphpost.ports.outbox import (
    Delivery,
    DeliveryState,
    Outcome,
    QueueAction,
    QueueQuery,
    Route,
    Submission,
)
from graphpost.services.directory import mailbox_folders
from graphpost.store.outbox import SqlOutbox
from tests.store.conftest import Stores
from tests.store.samples import a_user

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000_000
LEASE = 30_000
ALL = (DeliveryState.QUEUED, DeliveryState.DEFERRED, DeliveryState.FAILED, DeliveryState.DELIVERED)


async def submit(outbox: SqlOutbox, mailbox_id: str, subject: str, *to: str) -> Submission:
    s = Submission(
        ids.guid(), mailbox_id, ids.message_id(), f"<{ids.guid()}@example.com>", subject,
        "a@example.com", "A Person", b"Subject: x\r\n\r\nhi\r\n", True, T0, T0 + 3_600_000,
    )  # fmt: skip
    ds = [Delivery(0, s.id, rcpt, Route.SMTP, None, DeliveryState.QUEUED, 0, T0) for rcpt in to]
    return await outbox.submit(s, ds)


async def seqs_of(outbox: SqlOutbox, query: QueueQuery) -> list[int]:
    page = await outbox.queue(query, now_ms=T0)
    return [e.delivery.seq for e in page.entries]


async def defer(outbox: SqlOutbox, *, at: int, next_at: int) -> list[int]:
    """Claim what is due at ``at`` and record a 451 for each, next attempt ``next_at``."""
    claimed = await outbox.claim_deliveries(
        owner="w1", now_ms=at, lease_ms=LEASE, limit=100, remote=True
    )
    outcomes = [
        Outcome(d.seq, DeliveryState.DEFERRED, 451, "4.7.1", "greylisted", next_at) for d in claimed
    ]
    await outbox.record_outcomes(outcomes, owner="w1", now_ms=at, bounce=None)
    return [d.seq for d in claimed]


async def test_listed_by_state_newest_first_with_sender_and_attempts(store: Stores) -> None:
    user = await a_user(store)
    out = store.outbox
    first = await submit(out, user.id, "first", "x@example.net", "y@example.net")
    deferred = await defer(out, at=T0, next_at=T0 + 3_600_000)
    assert len(deferred) == 2
    await submit(out, user.id, "second", "z@example.net")

    page = await out.queue(QueueQuery(), now_ms=T0)
    assert [e.delivery.recipient for e in page.entries] == [
        "z@example.net", "y@example.net", "x@example.net",
    ]  # fmt: skip
    assert page.next_before is None
    newest, _, oldest = page.entries
    assert (newest.subject, newest.delivery.state, newest.attempts) == (
        "second", DeliveryState.QUEUED, (),
    )  # fmt: skip
    assert (oldest.subject, oldest.envelope_from, oldest.sender_name) == (
        "first", "a@example.com", "A Person",
    )  # fmt: skip
    assert oldest.sender_mailbox_id == user.id and oldest.tenant_id == user.tenant_id
    assert oldest.message_id == first.message_id and not oldest.in_progress
    (attempt,) = oldest.attempts
    assert (attempt.outcome, attempt.code, attempt.enhanced, attempt.response) == (
        DeliveryState.DEFERRED, 451, "4.7.1", "greylisted",
    )  # fmt: skip
    assert oldest.delivery.next_attempt_ms == T0 + 3_600_000

    only_deferred = QueueQuery((DeliveryState.DEFERRED,))
    assert await seqs_of(out, only_deferred) == sorted(deferred, reverse=True)
    assert await seqs_of(out, QueueQuery((DeliveryState.DELIVERED,))) == []
    counts = await out.queue_counts(ALL)
    assert counts == {
        DeliveryState.QUEUED: 1, DeliveryState.DEFERRED: 2, DeliveryState.FAILED: 0,
        DeliveryState.DELIVERED: 0,
    }  # fmt: skip


async def test_pages_by_keyset_and_filters_by_tenant_and_mailbox(store: Stores) -> None:
    user = await a_user(store)
    other_tenant = await store.directory.ensure_tenant(domain="other.test", display_name="O")

    other = User(ids.guid(), other_tenant.id, "O", "o@other.test", "o@other.test")
    await store.directory.add_user(other, mailbox_folders(other.id))
    out = store.outbox
    for n in range(7):
        await submit(out, user.id if n % 2 == 0 else other.id, f"m{n}", f"r{n}@example.net")
    everything = await seqs_of(out, QueueQuery(limit=100))
    assert len(everything) == 7 and everything == sorted(everything, reverse=True)

    walked: list[int] = []
    before = None
    while True:
        page = await out.queue(QueueQuery(limit=3, before=before), now_ms=T0)
        walked += [e.delivery.seq for e in page.entries]
        if page.next_before is None:
            break
        before = page.next_before
    assert walked == everything

    mine = await seqs_of(out, QueueQuery(tenant_id=user.tenant_id, limit=100))
    theirs = await seqs_of(out, QueueQuery(mailbox_id=other.id, limit=100))
    assert len(mine) == 4 and len(theirs) == 3 and set(mine) | set(theirs) == set(everything)
    assert (await out.queue_counts(ALL, tenant_id=other_tenant.id))[DeliveryState.QUEUED] == 3


async def test_retry_now_makes_a_deferred_delivery_due_and_never_takes_a_lease(
    store: Stores,
) -> None:
    user = await a_user(store)
    out = store.outbox
    await submit(out, user.id, "later", "x@example.net")
    (seq,) = await defer(out, at=T0, next_at=T0 + 3_600_000)
    at = T0 + 1000
    assert (
        await out.claim_deliveries(owner="w2", now_ms=at, lease_ms=LEASE, limit=9, remote=True)
        == []
    )
    assert await out.retry_now(seq, now_ms=at) is QueueAction.DONE
    (claimed,) = await out.claim_deliveries(
        owner="w2", now_ms=at, lease_ms=LEASE, limit=9, remote=True
    )
    assert claimed.seq == seq
    entry = await out.queue_entry(seq, now_ms=at)
    assert entry is not None and entry.in_progress

    # retried again while w2 is attempting it: no other worker may claim it meanwhile
    assert await out.retry_now(seq, now_ms=at + 1) is QueueAction.DONE
    assert (
        await out.claim_deliveries(owner="w3", now_ms=at + 1, lease_ms=LEASE, limit=9, remote=True)
        == []
    )
    # and w2's outcome is still recorded (its lease was left alone)
    done = Outcome(seq, DeliveryState.DELIVERED, 250, "2.0.0", "ok")
    assert await out.record_outcomes([done], owner="w2", now_ms=at + 2, bounce=None) == 1
    assert await out.retry_now(seq, now_ms=at + 3) is QueueAction.FINAL
    assert await out.retry_now(10**9, now_ms=at) is QueueAction.MISSING


async def test_delete_fails_the_delivery_unless_a_worker_holds_it_or_it_has_ended(
    store: Stores,
) -> None:
    user = await a_user(store)
    out = store.outbox
    await submit(out, user.id, "doomed", "x@example.net", "y@example.net")
    x, y = await defer(out, at=T0, next_at=T0 + 1000)
    assert await out.cancel(x, now_ms=T0 + 10, note="deleted by test") is QueueAction.DONE
    entry = await out.queue_entry(x, now_ms=T0 + 10)
    assert entry is not None
    assert (entry.delivery.state, entry.delivery.last_response, entry.delivery.done_ms) == (
        DeliveryState.FAILED, "deleted by test", T0 + 10,
    )  # fmt: skip
    assert [(a.outcome, a.response) for a in entry.attempts] == [
        (DeliveryState.DEFERRED, "greylisted"), (DeliveryState.FAILED, "deleted by test"),
    ]  # fmt: skip
    # due again later: only y is claimed; the deleted one never is
    (claimed,) = await out.claim_deliveries(
        owner="w1", now_ms=T0 + 2000, lease_ms=LEASE, limit=9, remote=True
    )
    assert claimed.seq == y
    assert await out.cancel(y, now_ms=T0 + 2001, note="n") is QueueAction.IN_PROGRESS
    assert await out.cancel(x, now_ms=T0 + 2001, note="n") is QueueAction.FINAL
    assert await out.cancel(10**9, now_ms=T0, note="n") is QueueAction.MISSING
    # a worker's lease that ran out (a dead worker) no longer protects it
    assert await out.cancel(y, now_ms=T0 + 2000 + LEASE + 1, note="n") is QueueAction.DONE
    late = Outcome(y, DeliveryState.DELIVERED, 250, "2.0.0", "late")
    assert await out.record_outcomes([late], owner="w1", now_ms=T0 + 9, bounce=None) == 0
