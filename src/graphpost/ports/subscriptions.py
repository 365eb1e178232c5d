"""The subscriptions port: change notification subscriptions, the notifications each has not
yet delivered (in sequence order, per channel), and the lease that makes one worker at a time
dispatch and deliver them; and the webhook client they are sent with (``Webhooks``). The
notifications are derived from the mailbox change log (``ports.changes``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Channel(StrEnum):
    """Where a notification goes: the notificationUrl, or the lifecycleNotificationUrl."""

    CHANGE = "c"
    LIFECYCLE = "l"


class ResourceKind(StrEnum):
    MESSAGE = "message"  # messages of the mailbox, or of one folder (folder_id)
    FOLDER = "folder"  # the mailbox's folders


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant_id: str
    app_id: str
    creator_id: str  # the user of a delegated token, else the app
    delegated: bool
    mailbox_id: str
    resource: str  # as the client gave it
    kind: ResourceKind
    folder_id: str | None
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    tls_version: str | None
    created_ms: int
    expires_ms: int
    reauth_ms: int | None  # when a reauthorizationRequired lifecycle notification is due
    cursor: int  # the last change of the mailbox turned into notifications
    change_seq: int  # the last sequence number given to a change notification
    life_seq: int  # ... and to a lifecycle notification
    attempts: int = 0  # failed deliveries in a row
    next_attempt_ms: int = 0
    removed_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification not yet delivered: its JSON object without the subscription's
    properties (added when it is sent, so that a renewal shows in it)."""

    subscription_id: str
    channel: Channel
    seq: int
    body: bytes
    created_ms: int


class WebhookError(Exception):
    """A webhook request that got no usable answer (refused, timed out, TLS, too large)."""


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    content_type: str
    body: bytes


class Webhooks(Protocol):
    """The HTTP client that validates notification URLs and posts notifications."""

    def check_url(self, url: str) -> str | None:
        """Why ``url`` may not be a notification URL (scheme, host), or None."""
        ...

    async def check_target(self, url: str) -> str | None:
        """Why the host of ``url`` may not receive notifications (an internal address, given
        or resolved to), or None."""
        ...

    async def post(
        self, url: str, body: bytes, *, content_type: str, seconds: float
    ) -> WebhookAnswer: ...


class SubscriptionStore(Protocol):
    async def create(self, subscription: Subscription, *, max_per_mailbox: int) -> bool:
        """Insert; False when the mailbox already has ``max_per_mailbox`` live ones."""
        ...

    async def get(self, subscription_id: str) -> Subscription | None:
        """A live (not removed) subscription."""
        ...

    async def list_for(
        self, tenant_id: str, app_id: str, creator_id: str | None
    ) -> list[Subscription]:
        """Live subscriptions of an app in a tenant (of one creator when given)."""
        ...

    async def renew(
        self,
        subscription_id: str,
        *,
        expires_ms: int,
        reauth_ms: int | None,
        notification_url: str | None,
    ) -> Subscription | None: ...

    async def delete(self, subscription_id: str) -> bool: ...

    # ---- the worker's side

    async def claim(
        self, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[Subscription]:
        """Subscriptions this worker may dispatch and deliver for now (free, or leased by it,
        or leased by a worker whose lease ran out), those whose lease is oldest first (so that
        past ``limit`` every subscription takes its turn); their leases are (re)taken."""
        ...

    async def release(self, subscription_ids: list[str], *, owner: str) -> None: ...

    async def take_over_leases(self, owner: str) -> int: ...

    async def add_notifications(
        self,
        subscription_id: str,
        *,
        owner: str,
        expected_cursor: int,
        cursor: int,
        changes: list[bytes],
        lifecycle: list[bytes],
        now_ms: int,
        clear_reauth: bool = False,
    ) -> bool:
        """In one transaction: the change notifications (numbered after ``change_seq``), the
        lifecycle ones (after ``life_seq``), and the cursor moved to ``cursor``; only while
        this worker holds the lease and the cursor is still ``expected_cursor``.
        ``clear_reauth``: the lifecycle notification is the reauthorizationRequired due."""
        ...

    async def pending(
        self, subscription_id: str, channel: Channel, limit: int
    ) -> list[Notification]: ...

    async def delivered(
        self, subscription_id: str, channel: Channel, up_to_seq: int, *, owner: str
    ) -> int:
        """Drop the notifications up to ``up_to_seq`` (answered 2xx); resets the backoff."""
        ...

    async def deferred(self, subscription_id: str, *, owner: str, next_attempt_ms: int) -> None:
        """A failed delivery: count it, try again at ``next_attempt_ms``."""
        ...

    async def expired(self, now_ms: int, limit: int) -> list[Subscription]:
        """Live subscriptions whose expiry has passed."""
        ...

    async def remove(self, subscription_id: str, *, lifecycle: bytes | None, now_ms: int) -> bool:
        """Remove a live subscription in one transaction: its change notifications go; with
        ``lifecycle`` (a subscriptionRemoved) it stays, removed, until that is delivered, else
        it is deleted at once."""
        ...

    async def purge_removed(self, before_ms: int) -> int:
        """Delete removed subscriptions with nothing left to deliver, or removed before
        ``before_ms``."""
        ...

    async def mailboxes(self) -> list[str]:
        """Mailboxes with at least one live subscription."""
        ...
