"""The outbox port: what was sent (submissions), one delivery per recipient with its lease
and state, and every attempt. The delivery queue of the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from graphpost.domain.message import Message
from graphpost.ports.blobs import StagedBlob
from graphpost.ports.messages import NewMessage


class DeliveryState(StrEnum):
    """Where one recipient's delivery stands: queued → (deferred →)* delivered | failed."""

    QUEUED = "queued"
    DEFERRED = "deferred"
    DELIVERED = "delivered"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (DeliveryState.DELIVERED, DeliveryState.FAILED)


class Route(StrEnum):
    """How a recipient is reached: a mailbox here, or the SMTP relay."""

    LOCAL = "local"
    SMTP = "smtp"


@dataclass(slots=True)
class Submission:
    id: str
    mailbox_id: str
    message_id: str
    internet_message_id: str
    subject: str | None
    envelope_from: str
    sender_name: str | None
    mime: bytes
    saved: bool
    created_ms: int
    expires_ms: int
    idempotency_key: str | None = None
    # a large message: ``mime`` is its skeleton (mime.skeleton) and the whole message is this
    # blob, streamed to the relay; the blobs of its attachments are held until it is delivered
    mime_digest: str | None = None


@dataclass(slots=True)
class Delivery:
    """One recipient of one submission, and where its delivery stands."""

    seq: int
    submission_id: str
    recipient: str
    route: Route
    local_mailbox_id: str | None
    state: DeliveryState
    attempts: int
    next_attempt_ms: int
    last_code: int | None = None
    last_enhanced: str | None = None
    last_response: str | None = None
    created_ms: int = 0
    updated_ms: int = 0
    done_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_seq: int
    at_ms: int
    outcome: DeliveryState
    code: int | None
    enhanced: str | None
    response: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt came to, to be recorded (never ``queued``)."""

    delivery_seq: int
    state: DeliveryState
    code: int | None
    enhanced: str | None
    response: str
    next_attempt_ms: int = 0


@dataclass(frozen=True, slots=True)
class QueueQuery:
    """Which deliveries the queue view lists: of these states, of one tenant's senders or
    one sender's mailbox (or the whole server), older than ``before`` (the keyset cursor: a
    delivery's ``seq``), newest first, at most ``limit``."""

    states: tuple[DeliveryState, ...] = (
        DeliveryState.QUEUED,
        DeliveryState.DEFERRED,
        DeliveryState.FAILED,
    )
    tenant_id: str | None = None
    mailbox_id: str | None = None
    before: int | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One delivery as the queue view shows it: the recipient's delivery, what was sent
    (sender, subject), every attempt so far, and whether a worker holds it right now."""

    delivery: Delivery
    tenant_id: str
    sender_mailbox_id: str
    message_id: str  # the sender's Sent Items copy
    internet_message_id: str
    envelope_from: str
    sender_name: str | None
    subject: str | None
    attempts: tuple[Attempt, ...]
    in_progress: bool  # a worker holds its lease (an attempt is under way)


@dataclass(frozen=True, slots=True)
class QueuePage:
    entries: list[QueueEntry]
    next_before: int | None  # the cursor of the next page; None at the end


class QueueAction(StrEnum):
    """What an operator's action on one delivery came to."""

    DONE = "done"
    MISSING = "missing"  # no such delivery
    FINAL = "final"  # already delivered or failed: nothing to do
    IN_PROGRESS = "in-progress"  # a worker holds its lease (delete only)


class OutboxStore(Protocol):
    async def submit(
        self,
        submission: Submission,
        deliveries: list[Delivery],
        *,
        replace: tuple[Message, str] | None = None,
        insert: NewMessage | None = None,
        delete_id: str | None = None,
        mime_blob: StagedBlob | None = None,
        hold: list[str] | None = None,
    ) -> Submission:
        """Record a send in one transaction: the Sent Items copy (``replace``: the draft's
        new document and the change key it must still have; ``insert``: a new item;
        ``delete_id``: the draft, not kept), the submission and its deliveries. A large
        message: ``mime_blob``, its MIME staged, becomes the submission's blob, and the blobs
        ``hold`` names (its attachments') are held until every delivery is final.

        With an idempotency key this mailbox used already, nothing is written and the earlier
        submission is returned. A draft that changed or was sent meanwhile: ConflictError.
        """
        ...

    async def find_submission(self, mailbox_id: str, message_id: str) -> Submission | None: ...
    async def get_submission(self, submission_id: str) -> Submission | None: ...
    async def claim_deliveries(
        self, *, owner: str, now_ms: int, lease_ms: int, limit: int, remote: bool
    ) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries (local always; SMTP ones when ``remote``)."""
        ...

    async def deliver_local(
        self, delivery: Delivery, *, owner: str, message: NewMessage, now_ms: int
    ) -> bool:
        """The copy into the recipient's mailbox and the delivery marked delivered, in one
        transaction, if ``owner`` still holds the lease: a local delivery happens once."""
        ...

    async def record_outcomes(
        self, outcomes: list[Outcome], *, owner: str, now_ms: int, bounce: NewMessage | None
    ) -> int:
        """Record attempts (and the non-delivery report, in the same transaction)."""
        ...

    async def renew_leases(self, seqs: list[int], *, owner: str, until_ms: int) -> int: ...
    async def take_over_leases(self, owner: str) -> int:
        """Free every lease not held by ``owner`` (the one worker of a SQLite database)."""
        ...

    async def deliveries_of(self, submission_id: str) -> tuple[list[Delivery], list[Attempt]]: ...
    async def delivery_states(
        self, mailbox_id: str, message_ids: Sequence[str]
    ) -> dict[str, list[DeliveryState]]:
        """Each message's recipients' states, from its latest submission, in one read (a page
        of Sent Items); messages never sent from ``mailbox_id`` are left out."""
        ...

    async def queue(self, query: QueueQuery, *, now_ms: int) -> QueuePage:
        """Deliveries by state, newest first (keyset on ``seq``), with their attempts."""
        ...

    async def queue_entry(self, seq: int, *, now_ms: int) -> QueueEntry | None: ...
    async def queue_counts(
        self, states: tuple[DeliveryState, ...], *, tenant_id: str | None = None
    ) -> dict[DeliveryState, int]: ...
    async def retry_now(self, seq: int, *, now_ms: int) -> QueueAction:
        """A queued or deferred delivery becomes due now (its lease untouched: a worker
        attempting it right now still holds it, and no other can claim it meanwhile)."""
        ...

    async def cancel(self, seq: int, *, now_ms: int, note: str) -> QueueAction:
        """A queued or deferred delivery, not held by a worker, recorded as failed with an
        attempt saying ``note`` (no non-delivery report); the submission's blobs released
        when it was its last open delivery."""
        ...
