"""The notifier on the real store and a real webhook receiver, with the change log in memory
(tests.fakes.FakeChangeFeed) and the notifier's clock given by the test: matching, sequence
numbers, batching, retries, lifecycle notifications."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from graphpost.delivery.notifier import BATCH
from graphpost.runtime import Runtime
from tests.fakes import FakeChangeFeed
from tests.unit.wiring import add_mailbox, folder_id, notifier_on, subscription_input
from tests.webhook import Receiver, sequence_gaps, start_receiver

MINUTE_MS = 60_000
pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Any:
    r = start_receiver()
    yield r
    r.stop()


def in_minutes(n: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + n * 60))


async def subscribe(runtime: Runtime, mailbox: Any, receiver: Receiver, **extra: Any) -> Any:
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url,
        "resource": "me/messages",
        "expirationDateTime": in_minutes(120),
        "clientState": "secret",
        **extra,
    }
    return await runtime.subscriptions.create(mailbox.principal, subscription_input(**body))


async def rounds(notifier: Any, n: int = 3, now_ms: int | None = None) -> None:
    for _ in range(n):
        await notifier.step(now_ms)


async def test_matching_sequence_and_batches(runtime: Runtime, receiver: Receiver) -> None:
    box = await add_mailbox(runtime, "notify@example.com")
    inbox = await folder_id(runtime, box, "inbox")
    archive = await folder_id(runtime, box, "archive")
    feed = FakeChangeFeed()
    feed.add(box.id, "created", "before", inbox)  # before the subscription: never notified
    notifier = notifier_on(runtime, feed)
    everything = await subscribe(runtime, box, receiver)
    in_inbox = await subscribe(
        runtime, box, receiver, resource="me/mailFolders('inbox')/messages",
        notificationUrl=receiver.url + "?inbox=1",
    )  # fmt: skip
    assert receiver.validations[0].startswith("Validation: ")
    for n in range(250):
        feed.add(box.id, "created", f"m{n}", inbox)
    feed.add(box.id, "updated", "m0", archive, prior_folder_id=inbox)  # a move out of the inbox
    feed.add(box.id, "updated", "m1", inbox)
    feed.add(box.id, "deleted", "m2", inbox)
    feed.add(box.id, "created", "f1", inbox, kind="folder")
    await rounds(notifier)
    all_ = [n for n in receiver.notifications() if n["subscriptionId"] == everything.id]
    assert len(all_) == 253
    assert [n["sequenceNumber"] for n in all_] == list(range(1, 254))
    assert all_[0]["clientState"] == "secret"
    assert all_[0]["resourceData"]["id"] == "m0"
    assert all_[0]["resource"] == f"Users/{box.id}/Messages/m0"
    assert all_[250]["changeType"] == "updated"  # a move is an update of the mailbox
    inbox_only = [n for n in receiver.notifications() if n["subscriptionId"] == in_inbox.id]
    assert [n["changeType"] for n in inbox_only[-3:]] == ["deleted", "updated", "deleted"]
    assert sequence_gaps(inbox_only, in_inbox.id) == []
    # several notifications per post, at most BATCH
    sizes = [len(p.notifications()) for p in receiver.posts]
    assert 1 < max(sizes) <= BATCH and len(sizes) < 253
    assert all(p.content_type == "application/json" for p in receiver.posts)


async def test_failed_posts_are_retried_in_order(runtime: Runtime, receiver: Receiver) -> None:
    box = await add_mailbox(runtime, "retry@example.com")
    inbox = await folder_id(runtime, box, "inbox")
    feed = FakeChangeFeed()
    notifier = notifier_on(runtime, feed)
    sub = await subscribe(runtime, box, receiver)
    for n in range(5):
        feed.add(box.id, "created", f"m{n}", inbox)
    receiver.behaviour.fail_next = 3
    now = int(time.time() * 1000)
    await notifier.step(now)  # fails: 1 s backoff
    await notifier.step(now + 500)  # not due yet: nothing posted
    assert receiver.notifications() == []
    await notifier.step(now + 1_100)  # fails again: 2 s
    await notifier.step(now + 3_200)  # fails again: 4 s
    await notifier.step(now + 7_300)
    got = receiver.notifications()
    assert [n["sequenceNumber"] for n in got] == [1, 2, 3, 4, 5]
    assert sequence_gaps(got, sub.id) == []


async def test_lifecycle_missed_reauthorization_and_removal(
    runtime: Runtime, receiver: Receiver
) -> None:
    box = await add_mailbox(runtime, "life@example.com")
    inbox = await folder_id(runtime, box, "inbox")
    feed = FakeChangeFeed()
    notifier = notifier_on(runtime, feed)
    sub = await subscribe(
        runtime, box, receiver, lifecycleNotificationUrl=receiver.url.replace("/hook", "/life")
    )
    assert len(receiver.validations) == 2  # both URLs were validated
    feed.add(box.id, "created", "m1", inbox)
    feed.add(box.id, "created", "m2", inbox)
    feed.prune(box.id, 2)  # the log lost both before the notifier read them
    feed.add(box.id, "created", "m3", inbox)
    now = int(time.time() * 1000)
    await notifier.step(now)
    life = receiver.notifications("/life")
    assert [n["lifecycleEvent"] for n in life] == ["missed"]
    assert life[0]["subscriptionId"] == sub.id and life[0]["clientState"] == "secret"
    assert [n["resourceData"]["id"] for n in receiver.notifications()] == ["m3"]
    # a quarter of the lifetime (at most an hour) before the end, once: reauthorizationRequired
    await notifier.step(sub.expires_ms - 31 * MINUTE_MS)  # not yet
    assert len(receiver.notifications("/life")) == 1
    await notifier.step(sub.expires_ms - 29 * MINUTE_MS)
    await notifier.step(sub.expires_ms - 28 * MINUTE_MS)
    events = [n["lifecycleEvent"] for n in receiver.notifications("/life")]
    assert events == ["missed", "reauthorizationRequired"]
    # expired: removed, a subscriptionRemoved, and then gone
    feed.add(box.id, "created", "m4", inbox)
    await notifier.step(sub.expires_ms + 1)
    await notifier.step(sub.expires_ms + 2)
    events = [n["lifecycleEvent"] for n in receiver.notifications("/life")]
    assert events == ["missed", "reauthorizationRequired", "subscriptionRemoved"]
    assert await runtime.subscriptions.store.get(sub.id) is None
    assert "m4" not in [n["resourceData"]["id"] for n in receiver.notifications()]


async def test_two_notifiers_never_dispatch_twice(runtime: Runtime, receiver: Receiver) -> None:
    box = await add_mailbox(runtime, "twice@example.com")
    inbox = await folder_id(runtime, box, "inbox")
    feed = FakeChangeFeed()
    first, second = notifier_on(runtime, feed), notifier_on(runtime, feed)
    sub = await subscribe(runtime, box, receiver)
    for n in range(300):
        feed.add(box.id, "created", f"m{n}", inbox)
    await asyncio.gather(rounds(first, 4), rounds(second, 4))
    got = receiver.notifications()
    numbers = [n["sequenceNumber"] for n in got]
    assert sorted(numbers) == list(range(1, 301)) and sequence_gaps(got, sub.id) == []
