"""Who is calling, and what each call needs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from graphpost.errors import AccessDeniedError
from graphpost.types import (
    BASIC_ONLY,
    READ_ROLES,
    READ_SCOPES,
    READ_SHARED_SCOPES,
    SEND_SCOPES,
    SEND_SHARED_SCOPES,
    SETTINGS_READ,
    SETTINGS_WRITE,
    SHARED_SCOPES,
    WRITE_SCOPES,
    WRITE_SHARED_SCOPES,
    Access,
    Right,
)

DENIED = "Access is denied. Check credentials and try again."


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: a user through an app (delegated), or an app on its own."""

    tenant_id: str
    app_id: str
    user_id: str | None  # oid of a delegated token; None for an application token
    permissions: frozenset[str]  # scp (delegated) or roles (application)
    expires: int

    @property
    def delegated(self) -> bool:
        return self.user_id is not None

    def grants(self, access: Access) -> bool:
        """Whether the permissions allow ``access`` (in the caller's own mailbox, or, for a
        view made by ``in_shared``, in the mailbox shared with them)."""
        if not self.delegated:
            if access is Access.READ:
                return bool(self.permissions & READ_ROLES)
            return bool(
                self.permissions & (WRITE_SCOPES if access is Access.WRITE else SEND_SCOPES)
            )
        if access is Access.READ:
            return bool(self.permissions & (READ_SCOPES | READ_SHARED_SCOPES))
        if access is Access.WRITE:
            return bool(self.permissions & (WRITE_SCOPES | WRITE_SHARED_SCOPES))
        return bool(self.permissions & (SEND_SCOPES | SEND_SHARED_SCOPES))

    def require(self, access: Access) -> None:
        if not self.grants(access):
            raise AccessDeniedError(DENIED)

    def require_settings(self, *, write: bool) -> None:
        """MailboxSettings.Read (to read) or MailboxSettings.ReadWrite, delegated or
        application alike; a delegate in a mailbox shared with them has neither (``in_shared``
        keeps only the Mail scopes), as Graph gives no delegated access to another's settings."""
        if not self.permissions & (SETTINGS_WRITE if write else SETTINGS_READ):
            raise AccessDeniedError(DENIED)

    @property
    def basic_only(self) -> bool:
        """Mail.ReadBasic alone: bodies, previews and attachments stay hidden."""
        readers = self.permissions & (READ_SCOPES | READ_ROLES | READ_SHARED_SCOPES)
        return bool(readers) and readers <= BASIC_ONLY

    @property
    def shares(self) -> bool:
        """A delegated token with a .Shared scope: it may open mailboxes shared with its user."""
        return self.delegated and bool(self.permissions & SHARED_SCOPES)

    def may_send_from_others(self) -> bool:
        """Mail.Send.Shared: a message `from` a mailbox whose owner granted send rights."""
        return self.delegated and bool(self.permissions & SEND_SHARED_SCOPES)

    def in_shared(self, rights: frozenset[Right]) -> Principal:
        """This caller in a mailbox shared with them with ``rights``: what the .Shared scopes
        and the grant allow together, as the plain scopes the services check."""
        mine = self.permissions
        allowed: set[str] = set()
        if mine & READ_SHARED_SCOPES and rights & {Right.READ, Right.READWRITE}:
            allowed.add("Mail.Read")
        if mine & WRITE_SHARED_SCOPES and Right.READWRITE in rights:
            allowed.add("Mail.ReadWrite")
        if mine & SEND_SHARED_SCOPES:
            allowed.add("Mail.Send")  # From and Sender are decided by the send rights
        return dataclasses.replace(self, permissions=frozenset(allowed))

    def may_open(self, *, mailbox_id: str, mailbox_tenant: str) -> bool:
        """A delegated token opens its own mailbox; an app token any mailbox of its tenant."""
        if mailbox_tenant != self.tenant_id:
            return False
        return self.user_id == mailbox_id if self.delegated else True
