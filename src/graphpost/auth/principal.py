"""Who is calling, and what each call needs."""

from __future__ import annotations

from dataclasses import dataclass

from graphpost.errors import AccessDeniedError
from graphpost.types import (
    BASIC_ONLY,
    READ_ROLES,
    READ_SCOPES,
    SEND_SCOPES,
    WRITE_SCOPES,
    Access,
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
        if access is Access.READ:
            return bool(self.permissions & (READ_SCOPES if self.delegated else READ_ROLES))
        if access is Access.WRITE:
            return bool(self.permissions & WRITE_SCOPES)
        return bool(self.permissions & SEND_SCOPES)

    def require(self, access: Access) -> None:
        if not self.grants(access):
            raise AccessDeniedError(DENIED)

    @property
    def basic_only(self) -> bool:
        """Mail.ReadBasic alone: bodies, previews and attachments stay hidden."""
        readers = self.permissions & (READ_SCOPES | READ_ROLES)
        return bool(readers) and readers <= BASIC_ONLY

    def may_open(self, *, mailbox_id: str, mailbox_tenant: str) -> bool:
        """A delegated token opens its own mailbox; an app token any mailbox of its tenant."""
        if mailbox_tenant != self.tenant_id:
            return False
        return self.user_id == mailbox_id if self.delegated else True
