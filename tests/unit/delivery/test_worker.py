"""DeliveryWorker on the real services and a real SQLite file, with the relay faked in memory
and the worker's clock moved by the test: retry, backoff, lease expiry, bounces and partial
failures, each in milliseconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from graphpost.runtime import Runtime
from graphpost.services.directory import Mailbox
from tests.fakes import HANG, SILENT, FakeTransport, permanent, temporary
from tests.unit.wiring import (
    LEASE,
    RETRY_BASE,
    RETRY_MAX,
    Clock,
    Mail,
    Template,
    add_mailbox,
    attempt_times,
    claim_as,
    deliveries,
    in_hand,
    late_delivery,
    messages_in,
    open_runtime,
    run_worker_once,
    send,
    settle,
)

pytestmark = pytest.mark.anyio

ADELE = "adele@contoso.test"
BOB = "bob@contoso.test"
OK = "ok@example.net"
GONE = "gone@example.net"
LATER = "later@example.net"
DAY = 24 * 3600.0


@pytest.fixture
async def adele(runtime: Runtime) -> Mailbox:
    return await add_mailbox(runtime, ADELE, "Adele Vance")


async def reports(runtime: Runtime, mailbox: Mailbox) -> list[Mail]:
    """The non-delivery reports in the mailbox's Inbox."""
    return [m for m in await messages_in(runtime, mailbox) if m.subject.startswith("Undeliverable")]


async def test_a_250_is_delivered(runtime: Runtime, adele: Mailbox, fake: FakeTransport) -> None:
    sent = await send(runtime, adele, "plain", OK)
    assert await run_worker_once(runtime) == 1
    got = (await deliveries(runtime, adele, sent))[OK]
    assert (got.state, got.attempts, got.code, got.enhanced) == ("delivered", 1, 250, "2.0.0")
    [call] = fake.calls
    assert call.sender == ADELE and call.recipients == (OK,)
    assert b"Subject: plain" in call.mime
    assert await reports(runtime, adele) == []


async def test_a_4xx_is_deferred_with_backoff_doubling_up_to_retry_max(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    fake.script(OK, *[temporary()] * 6)
    sent = await send(runtime, adele, "backoff", OK)
    delays = [min(RETRY_BASE * 2**n, RETRY_MAX) for n in range(6)]
    assert delays == [60, 120, 240, 300, 300, 300]
    for n, delay in enumerate(delays, start=1):
        assert await run_worker_once(runtime) == 1
        got = (await deliveries(runtime, adele, sent))[OK]
        assert (got.state, got.attempts, got.code, got.enhanced) == ("deferred", n, 451, "4.7.1")
        gap_ms = got.next_attempt_ms - (await attempt_times(runtime, adele, sent))[-1]
        assert delay * 1000 - 1000 < gap_ms <= delay * 1000, (n, gap_ms)
        clock.advance_to(got.next_attempt_ms - 2000)
        assert await run_worker_once(runtime) == 0, "claimed before its next attempt is due"
        clock.advance_to(got.next_attempt_ms)
    assert len(fake.calls) == 6
    assert await reports(runtime, adele) == []


async def test_deferred_then_delivered_on_retry(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    fake.script(OK, temporary("4.2.1 mailbox busy"))
    sent = await send(runtime, adele, "retry", OK)
    await run_worker_once(runtime)
    first = (await deliveries(runtime, adele, sent))[OK]
    assert (first.state, first.response) == ("deferred", "mailbox busy")
    assert await run_worker_once(runtime) == 0
    clock.advance_to(first.next_attempt_ms)
    assert await run_worker_once(runtime) == 1
    got = (await deliveries(runtime, adele, sent))[OK]
    assert (got.state, got.attempts, got.code) == ("delivered", 2, 250)
    assert fake.delivered_to(OK) == 2
    assert await reports(runtime, adele) == []


async def test_a_5xx_fails_with_exactly_one_bounce(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    fake.script(GONE, permanent("5.1.1 <gone@example.net>: no such user"))
    sent = await send(runtime, adele, "to nobody", GONE)
    await run_worker_once(runtime)
    got = (await deliveries(runtime, adele, sent))[GONE]
    assert (got.state, got.attempts, got.code, got.enhanced) == ("failed", 1, 550, "5.1.1")
    clock.advance(DAY)
    assert await run_worker_once(runtime) == 0
    [report] = await reports(runtime, adele)
    assert report.subject == "Undeliverable: to nobody"
    assert GONE in report.body and "no such user" in report.body
    assert len(fake.calls) == 1


async def test_partial_failure_records_each_recipient_and_bounces_only_the_failed_one(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    fake.script(GONE, permanent())
    fake.script(LATER, temporary())
    sent = await send(runtime, adele, "mixed", OK, GONE, LATER)
    assert await run_worker_once(runtime) == 3
    assert [c.recipients for c in fake.calls] == [(OK, GONE, LATER)]
    got = await deliveries(runtime, adele, sent)
    assert {r: (d.state, d.code) for r, d in got.items()} == {
        OK: ("delivered", 250),
        GONE: ("failed", 550),
        LATER: ("deferred", 451),
    }
    [report] = await reports(runtime, adele)
    assert GONE in report.body
    assert OK not in report.body and LATER not in report.body
    # the deferred one alone is tried again; it gets through and bounces nothing
    clock.advance_to(got[LATER].next_attempt_ms)
    assert await run_worker_once(runtime) == 1
    assert fake.calls[-1].recipients == (LATER,)
    assert (await deliveries(runtime, adele, sent))[LATER].state == "delivered"
    assert len(await reports(runtime, adele)) == 1


async def test_a_transport_that_raises_defers_and_the_delivery_is_not_lost(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    fake.script(OK, RuntimeError("the relay client broke"))
    sent = await send(runtime, adele, "raise", OK)
    await run_worker_once(runtime)  # a task that raised would raise here
    got = (await deliveries(runtime, adele, sent))[OK]
    assert (got.state, got.attempts, got.code) == ("deferred", 1, None)
    assert got.response is not None and "RuntimeError: the relay client broke" in got.response
    clock.advance_to(got.next_attempt_ms)
    assert await run_worker_once(runtime) == 1
    assert (await deliveries(runtime, adele, sent))[OK].state == "delivered"


async def test_a_recipient_missing_from_the_answer_is_deferred(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport
) -> None:
    fake.script(LATER, SILENT)
    sent = await send(runtime, adele, "silent", OK, LATER)
    await run_worker_once(runtime)
    got = await deliveries(runtime, adele, sent)
    assert got[OK].state == "delivered"
    assert (got[LATER].state, got[LATER].response) == ("deferred", "no answer for this recipient")


async def test_retries_end_with_the_retry_window_in_a_failure_and_a_bounce(
    tmp_path: Path, migrated: Template, fake: FakeTransport, clock: Clock
) -> None:
    async with open_runtime(
        tmp_path / "data", fake, template=migrated, retry_window_seconds=100
    ) as runtime:
        adele = await add_mailbox(runtime, ADELE)
        fake.script(LATER, *[temporary("4.4.1 connection timed out")] * 5)
        sent = await send(runtime, adele, "window", LATER)
        await run_worker_once(runtime)  # next try after 60 s: within the 100 s window
        first = (await deliveries(runtime, adele, sent))[LATER]
        assert first.state == "deferred"
        clock.advance_to(first.next_attempt_ms)
        await run_worker_once(runtime)  # the next would be 120 s later: past the window
        got = (await deliveries(runtime, adele, sent))[LATER]
        assert (got.state, got.attempts, got.enhanced) == ("failed", 2, "4.4.7")
        assert got.response is not None and got.response.startswith("retries exhausted")
        assert "connection timed out" in got.response
        [report] = await reports(runtime, adele)
        assert LATER in report.body
        clock.advance(DAY)
        assert await run_worker_once(runtime) == 0
        assert len(fake.calls) == 2


async def test_an_expired_lease_is_taken_by_the_next_run_and_delivered_once(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    bob = await add_mailbox(runtime, BOB)
    sent = await send(runtime, adele, "orphaned", OK, BOB)
    # another worker claims both deliveries and dies holding them
    assert await claim_as(runtime, "dead-worker", at_ms=clock.now_ms(), lease_seconds=LEASE) == 2
    assert await run_worker_once(runtime) == 0
    clock.advance(LEASE - 1)
    assert await run_worker_once(runtime) == 0, "claimed while the lease still runs"
    assert fake.calls == []
    clock.advance(2)
    assert await run_worker_once(runtime) == 2
    got = await deliveries(runtime, adele, sent)
    assert (got[OK].state, got[OK].attempts) == ("delivered", 1)
    assert (got[BOB].state, got[BOB].attempts) == ("delivered", 1)
    # the dead worker comes back and records its outcome: too late, nothing changes
    assert await late_delivery(runtime, "dead-worker", adele, sent) == 0
    clock.advance(DAY)
    assert await run_worker_once(runtime) == 0
    assert fake.delivered_to(OK) == 1
    assert [m.subject for m in await messages_in(runtime, bob)] == ["orphaned"]


async def test_a_worker_whose_lease_ran_out_cannot_deliver_over_the_new_owner(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    bob = await add_mailbox(runtime, BOB)
    sent = await send(runtime, adele, "paused", OK, BOB)
    assert await claim_as(runtime, "paused", at_ms=clock.now_ms(), lease_seconds=LEASE) == 2
    clock.advance(LEASE + 1)
    assert await claim_as(runtime, "successor", at_ms=clock.now_ms(), lease_seconds=LEASE) == 2
    # the first worker wakes up while the successor is still at work: it changes nothing
    assert await late_delivery(runtime, "paused", adele, sent) == 0
    got = await deliveries(runtime, adele, sent)
    assert {(d.state, d.attempts) for d in got.values()} == {("queued", 0)}
    assert await messages_in(runtime, bob) == []
    # the successor dies too; this worker delivers once the successor's lease has run out
    clock.advance(LEASE + 1)
    assert await run_worker_once(runtime) == 2
    got = await deliveries(runtime, adele, sent)
    assert {(d.state, d.attempts) for d in got.values()} == {("delivered", 1)}
    assert len(await messages_in(runtime, bob)) == 1
    assert len(fake.calls) == 1


async def test_local_delivery_lands_in_the_inbox_without_the_transport(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport
) -> None:
    bob = await add_mailbox(runtime, BOB, "Bob")
    sent = await send(runtime, adele, "hello bob", BOB)
    assert await run_worker_once(runtime) == 1
    got = (await deliveries(runtime, adele, sent))[BOB]
    assert (got.state, got.code) == ("delivered", 250)
    [mail] = await messages_in(runtime, bob)
    assert (mail.subject, mail.is_draft) == ("hello bob", False)
    assert "hello" in mail.body
    assert [m.subject for m in await messages_in(runtime, adele, "sentitems")] == ["hello bob"]
    assert fake.calls == []


async def test_an_unknown_address_of_our_own_domain_bounces_without_the_transport(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport
) -> None:
    nobody = "nobody@contoso.test"
    sent = await send(runtime, adele, "to a ghost", nobody)
    await run_worker_once(runtime)
    got = (await deliveries(runtime, adele, sent))[nobody]
    assert (got.state, got.code, got.enhanced) == ("failed", 550, "5.1.1")
    [report] = await reports(runtime, adele)
    assert nobody in report.body
    assert fake.calls == []


async def test_no_second_copy_when_the_worker_runs_again_after_success(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport, clock: Clock
) -> None:
    bob = await add_mailbox(runtime, BOB)
    sent = await send(runtime, adele, "once", BOB, OK)
    assert await run_worker_once(runtime) == 2
    for _ in range(3):
        clock.advance(DAY)
        assert await run_worker_once(runtime) == 0
    assert {d.state for d in (await deliveries(runtime, adele, sent)).values()} == {"delivered"}
    assert len(await messages_in(runtime, bob)) == 1
    assert len(fake.calls) == 1


async def test_a_relay_that_hangs_holds_only_its_own_submission(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport
) -> None:
    slow = "slow@example.net"
    fake.script(slow, HANG)
    stuck = await send(runtime, adele, "stuck", slow)
    quick = await send(runtime, adele, "quick", OK)
    assert await runtime.worker.run_once() == 2
    done, _ = await asyncio.wait(in_hand(runtime), timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1 and fake.hanging == 1
    assert (await deliveries(runtime, adele, quick))[OK].state == "delivered"
    assert (await deliveries(runtime, adele, stuck))[slow].state == "queued"
    assert await runtime.worker.run_once() == 0, "the hanging delivery is leased, not free"
    fake.release()
    await settle(runtime)
    assert (await deliveries(runtime, adele, stuck))[slow].state == "delivered"
    assert fake.delivered_to(slow) == 1
