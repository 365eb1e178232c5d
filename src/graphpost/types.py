"""Small shared vocabulary: permission names. A leaf module."""

from __future__ import annotations

from enum import StrEnum


class Access(StrEnum):
    """What an operation needs from the caller's permissions."""

    READ = "read"
    WRITE = "write"
    SEND = "send"


# Delegated scopes (scp) and application roles that grant each kind of access.
READ_SCOPES = frozenset({"Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
READ_ROLES = frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
BASIC_ONLY = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All"})
WRITE_SCOPES = frozenset({"Mail.ReadWrite"})
SEND_SCOPES = frozenset({"Mail.Send"})
