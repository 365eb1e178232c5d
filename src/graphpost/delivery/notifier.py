"""The notification worker: turns a mailbox's changes into its subscriptions' notifications
(the dispatcher) and posts them to the webhooks (delivery), under a per-subscription lease.

Per round: expired subscriptions are removed (a ``subscriptionRemoved`` to their lifecycle
URL); the subscriptions this worker may serve are claimed (leased, so that of several workers
on PostgreSQL one at a time dispatches and delivers a subscription's notifications, in
order); for each, the changes after its cursor are matched to its resource and change types
and written as notifications with consecutive sequence numbers, in ONE transaction that also
moves the cursor; then its pending notifications are posted in batches (``value``), in
sequence order, and dropped on a 2xx answer. A failed post is retried with a backoff
(doubling from 1 s to 60 s) for as long as the subscription lives: a notification is never
dropped while its subscription lives, only delivered more than once (when the answer of a
post it was in is lost).

A round does not wait for its deliveries: each subscription's dispatch and delivery runs as a
task of its own (each post under its own deadline), and a subscription whose task is still
running is skipped by the rounds that follow until it ends (its lease is still renewed by
them). So a webhook that never answers, or answers slowly, delays only its own
subscriptions; the webhook client caps the connections to any one host.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from graphpost.domain import subscriptions as d
from graphpost.ports.changes import Change, ChangeLog
from graphpost.ports.subscriptions import (
    Channel,
    ResourceKind,
    Subscription,
    SubscriptionStore,
    WebhookError,
    Webhooks,
)
from graphpost.services.subscriptions import iso_ms

log = logging.getLogger("graphpost.notifier")

BATCH = 1000  # notifications per POST
CHANGES_PER_ROUND = 2000  # changes read per subscription per round
POST_SECONDS = 3.0  # Graph: a webhook has 3 s to answer
RETRY_BASE_MS = 1000
RETRY_MAX_MS = 60_000
REMOVED_KEPT_MS = 3_600_000  # a removed subscription's subscriptionRemoved is tried this long


def matches(s: Subscription, c: Change) -> list[str]:
    """The change types ``c`` is for subscription ``s`` (none, one, or for a move out of and
    into its folder, none but one either way)."""
    if s.kind is ResourceKind.FOLDER:
        kinds = [c.change_type] if c.kind == "folder" else []
    elif c.kind != "message":
        kinds = []
    elif s.folder_id is None:
        kinds = [c.change_type]
    elif c.change_type == "updated" and c.prior_folder_id is not None:  # a move
        if c.prior_folder_id == s.folder_id and c.folder_id != s.folder_id:
            kinds = ["deleted"]
        elif c.folder_id == s.folder_id and c.prior_folder_id != s.folder_id:
            kinds = ["created"]
        else:
            kinds = ["updated"] if c.folder_id == s.folder_id else []
    elif c.folder_id == s.folder_id or c.prior_folder_id == s.folder_id:
        kinds = [c.change_type]
    else:
        kinds = []
    return [k for k in kinds if k in s.change_types]


class Notifier:
    def __init__(
        self,
        store: SubscriptionStore,
        webhooks: Webhooks,
        changes: ChangeLog | None,
        *,
        sole: bool = False,
        poll_seconds: float = 0.1,
        lease_seconds: float = 60.0,
        post_seconds: float = POST_SECONDS,
        allowed: Callable[[Subscription], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.changes = changes
        self.sole = sole
        self.poll_seconds = poll_seconds
        self.lease_ms = int(lease_seconds * 1000)
        self.post_seconds = post_seconds
        # whether a subscription's maker may still read its mailbox (checked before each of
        # its rounds; the answers are cached where they are decided)
        self.allowed = allowed
        self.owner = f"notifier-{uuid.uuid4().hex[:12]}"
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._last_sweep = 0
        self.concurrency = asyncio.Semaphore(32)  # dispatches (database work) at once
        self._inflight: dict[str, asyncio.Task[int]] = {}  # each subscription's running task
        # what this worker knows without asking the database: the subscriptions it held last
        # round, and those of them with nothing left to deliver (only the lease holder adds
        # notifications; a subscription newly taken may have some)
        self._held: set[str] = set()
        self._idle: set[str] = set()
        self.idle_seconds = max(poll_seconds, 1.0)

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        if self.sole:
            await self.store.take_over_leases(self.owner)
        try:
            while not self._stop.is_set():
                try:
                    await self.round()
                except Exception:
                    log.exception("notification round failed")
                self._wake.clear()
                wait = self.poll_seconds if self._held else self.idle_seconds
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            # a delivery cut off here is not lost: its notifications stay until a 2xx
            tasks = list(self._inflight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def step(self, now_ms: int | None = None) -> int:
        """One round, waiting for the deliveries it started (tests); the number of
        notifications they delivered."""
        started = await self.round(now_ms)
        done = await asyncio.gather(*started)
        return sum(done)

    async def round(self, now_ms: int | None = None) -> list[asyncio.Task[int]]:
        """One round: the subscriptions claimed, and a task started for each that has none
        running; those tasks (not awaited)."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if now - self._last_sweep >= 1000 or now_ms is not None:
            self._last_sweep = now
            await self._sweep(now)
        claimed = await self.store.claim(
            owner=self.owner, now_ms=now, lease_ms=self.lease_ms, limit=500
        )
        held = {s.id for s in claimed}
        self._idle &= held & self._held
        self._held = held
        # one with a delivery in flight is skipped (what it read may be stale: it reads again
        # the round after it ends)
        ready = [s for s in claimed if s.id not in self._inflight]
        if not ready:
            return []
        last: dict[str, int] = {}  # each mailbox's last change, read once a round
        if self.changes is not None:
            for mailbox in {s.mailbox_id for s in ready}:
                last[mailbox] = await self.changes.last_seq(mailbox)
        started = []
        for s in ready:
            task = asyncio.create_task(self._serve(s, now, last))
            self._inflight[s.id] = task
            task.add_done_callback(functools.partial(self._ended, s.id))
            started.append(task)
        return started

    def _ended(self, subscription_id: str, task: asyncio.Task[int]) -> None:
        if self._inflight.get(subscription_id) is task:
            del self._inflight[subscription_id]

    async def _sweep(self, now: int) -> None:
        for s in await self.store.expired(now, 100):
            body = d.lifecycle_body("subscriptionRemoved") if s.lifecycle_url else None
            await self.store.remove(s.id, lifecycle=body, now_ms=now)
        await self.store.purge_removed(now - REMOVED_KEPT_MS)

    async def _serve(self, s: Subscription, now: int, last: dict[str, int]) -> int:
        try:
            if s.removed_ms is None and self.allowed is not None and not await self.allowed(s):
                # access revoked (an app's access policy, the user gone): Graph removes the
                # subscription; nothing more is delivered but its subscriptionRemoved
                log.info("subscription %s: its app no longer may read the mailbox", s.id)
                body = d.lifecycle_body("subscriptionRemoved") if s.lifecycle_url else None
                await self.store.remove(s.id, lifecycle=body, now_ms=now)
                self._idle.discard(s.id)
                return 0
            if s.removed_ms is None:
                async with self.concurrency:
                    if await self._dispatch(s, now, last):
                        self._idle.discard(s.id)
            if now < s.next_attempt_ms or (s.id in self._idle and s.removed_ms is None):
                return 0
            delivered, emptied = 0, True
            if s.removed_ms is None:
                count, empty = await self._deliver(s, Channel.CHANGE, now)
                delivered, emptied = delivered + count, emptied and empty
            if s.lifecycle_url is not None:
                count, empty = await self._deliver(s, Channel.LIFECYCLE, now)
                delivered, emptied = delivered + count, emptied and empty
            if emptied:
                self._idle.add(s.id)
            return delivered
        except Exception:
            log.exception("subscription %s: notification round failed", s.id)
            return 0

    async def _dispatch(self, s: Subscription, now: int, last: dict[str, int]) -> bool:
        """The changes after the cursor, as notifications, and the cursor moved: one
        transaction (guarded by the lease and the cursor read). True when notifications were
        added."""
        lifecycle: list[bytes] = []
        clear_reauth = False
        if s.lifecycle_url is not None and s.reauth_ms is not None and now >= s.reauth_ms:
            lifecycle.append(d.lifecycle_body("reauthorizationRequired"))
            clear_reauth = True
        cursor, bodies = s.cursor, []
        if self.changes is not None and last.get(s.mailbox_id, 0) != s.cursor:
            horizon = await self.changes.horizon(s.mailbox_id)
            if cursor < horizon:  # the log no longer holds what came after the cursor
                if s.lifecycle_url is not None:
                    lifecycle.append(d.lifecycle_body("missed"))
                cursor = horizon
            got = await self.changes.changes_after(s.mailbox_id, cursor, CHANGES_PER_ROUND)
            for change in got:
                for kind in matches(s, change):
                    bodies.append(
                        d.change_body(
                            change_type=kind, mailbox_id=s.mailbox_id,
                            kind=change.kind, item_id=change.item_id,
                        )
                    )  # fmt: skip
            if got:
                cursor = got[-1].seq
        if cursor == s.cursor and not lifecycle:
            return False
        added = await self.store.add_notifications(
            s.id, owner=self.owner, expected_cursor=s.cursor, cursor=cursor,
            changes=bodies, lifecycle=lifecycle, now_ms=now, clear_reauth=clear_reauth,
        )  # fmt: skip
        return added and bool(bodies or lifecycle)

    async def _deliver(self, s: Subscription, channel: Channel, now: int) -> tuple[int, bool]:
        """Post the pending notifications of one channel, in order; (how many were delivered,
        whether none is left)."""
        url = s.notification_url if channel is Channel.CHANGE else s.lifecycle_url
        assert url is not None
        delivered = 0
        for _ in range(5):  # at most 5,000 a round per subscription and channel
            pending = await self.store.pending(s.id, channel, BATCH)
            if not pending:
                return delivered, True
            expiration = iso_ms(s.expires_ms)
            items = [
                d.notification(
                    n.body, subscription_id=s.id, expiration=expiration,
                    client_state=s.client_state, tenant_id=s.tenant_id, sequence_number=n.seq,
                )
                for n in pending
            ]  # fmt: skip
            body = d.collection(items)
            try:
                answer = await self.webhooks.post(
                    url, body, content_type="application/json", seconds=self.post_seconds
                )
                ok = 200 <= answer.status < 300
                why = f"answered {answer.status}"
            except WebhookError as exc:
                ok, why = False, str(exc)
            if not ok:
                delay = min(RETRY_BASE_MS * 2 ** min(s.attempts, 16), RETRY_MAX_MS)
                log.info("subscription %s: delivery failed (%s); again in %d ms", s.id, why, delay)
                # from when it failed: a post that hung for its whole deadline started long ago
                failed = max(now, int(time.time() * 1000))
                await self.store.deferred(s.id, owner=self.owner, next_attempt_ms=failed + delay)
                return delivered, False
            delivered += await self.store.delivered(
                s.id, channel, pending[-1].seq, owner=self.owner
            )
            if len(pending) < BATCH:
                return delivered, True
        return delivered, False
