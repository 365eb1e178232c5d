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
