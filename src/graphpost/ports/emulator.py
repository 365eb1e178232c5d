"""The emulator's port: what the test controls need of the store (emulator mode only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from graphpost.ports.outbox import DeliveryState, Route


@dataclass(frozen=True, slots=True)
class Delivered:
    """One recipient of one sent message whose delivery has an outcome (delivered, deferred
    or failed), with what it was sent as."""

    seq: int
    submission_id: str
    message_id: str  # the sender's Sent Items copy
    internet_message_id: str
    sender_mailbox_id: str
    envelope_from: str
    subject: str | None
    recipient: str
    route: Route
    local_mailbox_id: str | None
    state: DeliveryState
    attempts: int
    last_code: int | None
    last_enhanced: str | None
    last_response: str | None
    created_ms: int
    updated_ms: int
    done_ms: int | None


@dataclass(frozen=True, slots=True)
class ResetCount:
    mailboxes: int
    messages: int
    submissions: int


class EmulatorStore(Protocol):
    async def reset_tenant(self, tenant_id: str) -> ResetCount:
        """Empty every mailbox of the tenant, in one transaction: messages (and their
        attachments' blob references), folders other than the well-known ones (which stay,
        with the same ids, at zero counts), the submissions of its users (with their
        deliveries and attempts) and their upload sessions. Users, apps, grants stay."""
        ...

    async def delivered(self, limit: int) -> list[Delivered]:
        """The latest ``limit`` deliveries with an outcome, newest first."""
        ...
