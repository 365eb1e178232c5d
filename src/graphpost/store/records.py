"""Plain records the store hands to services (no SQL, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: str
    domain: str
    display_name: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    tenant_id: str
    display_name: str
    mail: str
    upn: str


@dataclass(frozen=True, slots=True)
class AppRecord:
    id: str
    tenant_id: str
    name: str


@dataclass(frozen=True, slots=True)
class FolderRecord:
    id: str
    mailbox_id: str
    parent_id: str | None
    display_name: str
    well_known: str | None
    is_hidden: bool
    total_count: int = 0
    unread_count: int = 0
    child_count: int = 0


@dataclass(frozen=True, slots=True)
class AttachmentRow:
    id: str
    name: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None
    modified_at: int
    content: bytes


@dataclass(slots=True)
class MessageRow:
    """A message as stored: the indexed columns plus the JSON document (Graph wire form)."""

    id: str
    mailbox_id: str
    folder_id: str
    created_at: int
    modified_at: int
    received_at: int
    sent_at: int
    is_read: bool
    is_draft: bool
    has_attachments: bool
    importance: str
    inference: str
    flag_status: str
    subject: str | None
    body_preview: str
    from_name: str | None
    from_address: str | None
    sender_name: str | None
    sender_address: str | None
    internet_message_id: str
    conversation_id: str
    change_key: str
    doc: bytes
    headers: bytes | None = None
    seq: int = 0
    # (kind, name, address) with kind in to, cc, bcc, rt
    recipients: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SubmissionRow:
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


@dataclass(slots=True)
class DeliveryRow:
    """One recipient of one submission, and where its delivery stands."""

    seq: int
    submission_id: str
    recipient: str
    transport: str  # local, smtp
    local_mailbox_id: str | None
    state: str  # queued, deferred, delivered, failed
    attempts: int
    next_attempt_ms: int
    last_code: int | None = None
    last_enhanced: str | None = None
    last_response: str | None = None
    created_ms: int = 0
    updated_ms: int = 0
    done_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    delivery_seq: int
    at_ms: int
    outcome: str
    code: int | None
    enhanced: str | None
    response: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt came to, to be recorded (state: delivered, deferred, failed)."""

    delivery_seq: int
    state: str
    code: int | None
    enhanced: str | None
    response: str
    next_attempt_ms: int = 0


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to insert in the same transaction as something else (a bounce, a delivery)."""

    row: MessageRow
    attachments: list[AttachmentRow]
