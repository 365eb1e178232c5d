"""Small shared vocabulary: permission names and mailbox rights. A leaf module."""

from __future__ import annotations

from enum import StrEnum


class Access(StrEnum):
    """What an operation needs from the caller's permissions."""

    READ = "read"
    WRITE = "write"
    SEND = "send"


class Right(StrEnum):
    """What a mailbox's owner granted a delegate (``graphpost mailbox grant``)."""

    READ = "read"  # read the mailbox (Exchange: folder Reviewer)
    READWRITE = "readwrite"  # read and change it (Exchange: Full Access)
    SEND_ON_BEHALF = "send_on_behalf"  # From the owner, Sender the delegate
    SEND_AS = "send_as"  # From (and Sender) the owner: no sign of the delegate


# Delegated scopes (scp) and application roles that grant each kind of access.
READ_SCOPES = frozenset({"Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
READ_ROLES = frozenset({"Mail.ReadBasic.All", "Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite"})
BASIC_ONLY = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All"})
WRITE_SCOPES = frozenset({"Mail.ReadWrite"})
SEND_SCOPES = frozenset({"Mail.Send"})
# The .Shared scopes: the signed-in user's own mailbox, and the mailboxes others shared with them
READ_SHARED_SCOPES = frozenset({"Mail.Read.Shared", "Mail.ReadWrite.Shared"})
WRITE_SHARED_SCOPES = frozenset({"Mail.ReadWrite.Shared"})
SEND_SHARED_SCOPES = frozenset({"Mail.Send.Shared"})
SHARED_SCOPES = READ_SHARED_SCOPES | WRITE_SHARED_SCOPES | SEND_SHARED_SCOPES
# Mailbox settings (mailboxSettings, masterCategories): the same names delegated and application
SETTINGS_READ = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
SETTINGS_WRITE = frozenset({"MailboxSettings.ReadWrite"})

# Directory (user profiles). Delegated: USER_SELF_SCOPES read the signed-in user's own profile;
# USER_BASIC_ALL the basic profile of every user of the tenant; USER_ALL every user's whole
# profile (delegated and application alike).
USER_SELF_SCOPES = frozenset({"User.Read", "User.ReadWrite"})
USER_BASIC_ALL = "User.ReadBasic.All"
USER_ALL = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
