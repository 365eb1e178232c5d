"""The one place the unit tests build graphpost: real services on a real SQLite file, with only
the network faked (``tests.fakes.FakeTransport`` in place of the relay) and the delivery
worker's clock under the test's control.

Every constructor call, every direct store call and every reading of a service's return
shape the tests need lives here, so that a change of wiring is adapted in this file alone.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import msgspec
import pytest

import graphpost.delivery.worker as worker_module
import graphpost.runtime as runtime_module
from graphpost.auth.keys import KeySet, SigningKey, load_or_create
from graphpost.auth.principal import Principal
from graphpost.domain.message import MessageInput
from graphpost.domain.query import MessageQuery
from graphpost.ports.outbox import DeliveryState, Outcome, Route
from graphpost.runtime import Runtime, prepare
from graphpost.services.directory import Mailbox
from graphpost.settings import Settings
from tests.fakes import FakeTransport

# A relay URL nothing listens on: it makes the runtime believe a relay is configured (so
# mail to other domains is queued for the worker), and its transport is then replaced by a
# FakeTransport before anything is sent.
UNUSED_RELAY = "smtp://127.0.0.1:9"
# Retries after 60 s, 120 s, 240 s, then every 300 s, for an hour; leases of 30 s. The tests
# move the worker's clock instead of waiting, so these are realistic values.
RETRY_BASE, RETRY_MAX, RETRY_WINDOW, LEASE = 60.0, 300.0, 3600.0, 30.0
TEST_SETTINGS: dict[str, Any] = {
    "retry_base_seconds": RETRY_BASE,
    "retry_max_seconds": RETRY_MAX,
    "retry_window_seconds": RETRY_WINDOW,
    "lease_seconds": LEASE,
    "demo": False,
    "smtp_relay": UNUSED_RELAY,
    "public_url": "http://graphpost.test",
    # parse every message on the event loop: no process pool to start for a report
    "mime_offload_bytes": 64 * 1024 * 1024,
    # the webhook receivers of tests (tests/webhook.py) listen on loopback
    "webhook_allow_hosts": "127.0.0.0/8,::1,localhost",
}
ALL_SCOPES = frozenset({"Mail.ReadWrite", "Mail.Send"})


class Clock:
    """The delivery worker's clock: the real time plus whatever the test has moved it on by
    (never behind the real time, which stamps submissions)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    def advance(self, seconds: float) -> None:
        self.offset_ms += int(seconds * 1000)

    def advance_to(self, at_ms: int) -> None:
        """On to just past ``at_ms`` (a delivery's next attempt), if not there already."""
        self.offset_ms += max(0, at_ms + 1 - self.now_ms())


def install_clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Make the delivery worker read its time from a Clock the test moves."""
    clock = Clock()
    monkeypatch.setattr(worker_module, "now_ms", clock.now_ms)
    return clock


@dataclass(frozen=True)
class Template:
    """A data directory with the schema migrated and a signing key, to be copied for each
    test, and that key loaded (migrating, making an RSA key and even loading one take far
    longer than a test)."""

    directory: Path
    key: SigningKey


def make_template(directory: Path) -> Template:
    prepare(Settings(data_dir=directory, **TEST_SETTINGS))
    return Template(directory, load_or_create(directory))


@asynccontextmanager
async def open_runtime(
    data_dir: Path, transport: FakeTransport, *, template: Template | None = None, **settings: Any
) -> AsyncIterator[Runtime]:
    """The real runtime on a SQLite file in ``data_dir`` (a copy of ``template`` when given,
    whose key is then used as it was loaded), with ``transport`` in place of the relay;
    closed afterwards."""
    config = Settings(data_dir=data_dir, **{**TEST_SETTINGS, **settings})
    if template is None:
        prepare(config)
        runtime = await Runtime.open(config)
    else:
        shutil.copytree(template.directory, data_dir)
        prepare(config)
        fixed = KeySet.of(template.key)
        with mock.patch.object(runtime_module, "KeySet", lambda *_, **__: fixed):
            runtime = await Runtime.open(config)
    try:
        relay = runtime.worker.transport
        assert relay is not None, "a relay is configured: the worker must have a transport"
        runtime.worker.transport = transport
        await relay.close()
        assert runtime.sending.limits.relay_configured
        yield runtime
    finally:
        left = in_hand(runtime)  # a test that failed half-way may leave a submission in hand
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        await runtime.close()


# ---------------------------------------------------------------- mailboxes and messages


async def add_mailbox(
    runtime: Runtime, mail: str, name: str | None = None, *, scopes: frozenset[str] = ALL_SCOPES
) -> Mailbox:
    """A new user with a mailbox, opened by that user (delegated) with ``scopes``."""
    user = await runtime.directory.add_user(display_name=name or mail.split("@")[0], mail=mail)
    return await open_as(runtime, user.id, user.tenant_id, mail, scopes=scopes)


async def open_as(
    runtime: Runtime, user_id: str, tenant_id: str, key: str, *, scopes: frozenset[str]
) -> Mailbox:
    """Mailbox ``key`` opened by the delegated caller ``user_id`` holding ``scopes``."""
    caller = Principal(tenant_id, "unit-tests", user_id, scopes, int(time.time()) + 3600)
    return await runtime.directory.open_mailbox(caller, key)


def message_input(**graph: Any) -> MessageInput:
    """A message as a Graph client writes it (camelCase JSON), e.g.
    ``message_input(subject="Hi", toRecipients=to("a@example.com"))``."""
    return msgspec.convert(graph, MessageInput)


def to(*addresses: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}} for a in addresses]


async def send(runtime: Runtime, mailbox: Mailbox, subject: str, *recipients: str) -> str:
    """sendMail from ``mailbox`` to ``recipients``; the id of the Sent Items copy."""
    sent = await runtime.sending.send_mail(
        mailbox,
        message_input(subject=subject, body={"content": "hello"}, toRecipients=to(*recipients)),
    )
    return sent.message_id


@dataclass(frozen=True)
class Mail:
    id: str
    subject: str
    body: str
    folder_id: str
    is_draft: bool
    change_key: str


async def messages_in(runtime: Runtime, mailbox: Mailbox, folder: str = "inbox") -> list[Mail]:
    rows, _, _ = await runtime.messages.list_messages(
        mailbox, MessageQuery(top=100), folder_key=folder
    )
    return [mail_of(row.message()) for row in rows]


async def get_mail(runtime: Runtime, mailbox: Mailbox, message_id: str) -> Mail:
    return mail_of((await runtime.messages.get(mailbox, message_id)).message())


def mail_of(msg: Any) -> Mail:
    return Mail(
        msg.id, msg.subject or "", msg.body.content, msg.parent_folder_id, msg.is_draft,
        msg.change_key,
    )  # fmt: skip


async def create_draft(runtime: Runtime, mailbox: Mailbox, **graph: Any) -> Mail:
    """POST /messages with a Graph body: the new draft."""
    created = await runtime.messages.create_draft(mailbox, message_input(**graph))
    return await get_mail(runtime, mailbox, created.message.id)


@dataclass(frozen=True)
class Folder:
    id: str
    parent_id: str | None
    name: str


async def folder(runtime: Runtime, mailbox: Mailbox, key: str) -> Folder:
    """A folder by id or well-known name."""
    found = await runtime.folders.get(mailbox, key)
    return Folder(found.id, found.parent_id, found.display_name)


async def folder_id(runtime: Runtime, mailbox: Mailbox, key: str) -> str:
    return (await folder(runtime, mailbox, key)).id


# ---------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class Delivery:
    """Where one recipient's delivery stands, as deliveryStatus reports it."""

    state: str
    attempts: int
    next_attempt_ms: int
    code: int | None
    enhanced: str | None
    response: str | None


async def deliveries(runtime: Runtime, mailbox: Mailbox, message_id: str) -> dict[str, Delivery]:
    """recipient → its delivery, for the message ``mailbox`` sent."""
    _, rows, _ = await runtime.sending.delivery_status(mailbox, message_id)
    return {
        d.recipient: Delivery(
            d.state, d.attempts, d.next_attempt_ms, d.last_code, d.last_enhanced, d.last_response
        )
        for d in rows
    }


async def attempt_times(runtime: Runtime, mailbox: Mailbox, message_id: str) -> list[int]:
    """When each attempt of the message's deliveries was recorded (ms), in order."""
    _, _, attempts = await runtime.sending.delivery_status(mailbox, message_id)
    return [a.at_ms for a in attempts]


async def run_worker_once(runtime: Runtime) -> int:
    """One pass of the delivery worker: claim what is due, and wait until every submission it
    took in hand is done. The number of deliveries claimed."""
    claimed = await runtime.worker.run_once()
    await settle(runtime)
    return claimed


async def settle(runtime: Runtime) -> None:
    """Wait for the submissions the worker has in hand."""
    tasks = in_hand(runtime)
    if tasks:
        await asyncio.gather(*tasks)


def in_hand(runtime: Runtime) -> list[asyncio.Task[None]]:
    """The worker's tasks, one per submission it is delivering."""
    return list(runtime.worker._tasks)


async def claim_as(runtime: Runtime, owner: str, *, at_ms: int, lease_seconds: float) -> int:
    """Claim every due delivery for another worker ``owner`` (one that then dies without
    recording anything); the number claimed."""
    claimed = await runtime.outbox.claim_deliveries(
        owner=owner, now_ms=at_ms, lease_ms=int(lease_seconds * 1000), limit=1000, remote=True
    )
    return len(claimed)


async def late_delivery(runtime: Runtime, owner: str, mailbox: Mailbox, message_id: str) -> int:
    """``owner``, a worker that was only paused, finishes the deliveries of the message after
    all: the local ones into their mailboxes, the others recorded delivered. How many it
    changed (none once its leases have gone to another worker)."""
    submission, rows, _ = await runtime.sending.delivery_status(mailbox, message_id)
    now_ms = int(time.time() * 1000)
    changed = 0
    for d in rows:
        if d.route is Route.LOCAL and d.local_mailbox_id is not None:
            user = await runtime.directory.user(d.local_mailbox_id)
            assert user is not None
            copy = await runtime.ingest.message_from_mime(submission.mime, user, trusted=True)
            changed += await runtime.outbox.deliver_local(
                d, owner=owner, message=copy, now_ms=now_ms
            )
        else:
            outcome = Outcome(d.seq, DeliveryState.DELIVERED, 250, "2.0.0", "late")
            changed += await runtime.outbox.record_outcomes(
                [outcome], owner=owner, now_ms=now_ms, bounce=None
            )
    return changed


# ---------------------------------------------------------------- subscriptions


def notifier_on(runtime: Runtime, feed: Any) -> Any:
    """A notifier of the runtime's subscriptions reading ``feed`` as the change log; the
    subscription service reads the same feed for new subscriptions' cursors."""
    from graphpost.delivery.notifier import Notifier

    runtime.subscriptions.changes = feed
    service = runtime.subscriptions
    return Notifier(
        service.store, service.webhooks, feed, post_seconds=5.0, allowed=service.still_allowed
    )


def subscription_input(**graph: Any) -> Any:
    from graphpost.domain.subscriptions import SubscriptionInput

    return msgspec.convert(graph, SubscriptionInput)
