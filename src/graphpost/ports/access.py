"""The access port: mailbox delegation (who may use whose mailbox, with which rights) and
application access policies (which mailboxes an app may open at all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from graphpost.ports.directory import App
from graphpost.types import Right


@dataclass(frozen=True, slots=True)
class Grant:
    """The owner of ``mailbox_id`` lets ``delegate_id`` use it with ``rights``."""

    mailbox_id: str
    delegate_id: str
    rights: frozenset[Right]
    created_at: int


@dataclass(frozen=True, slots=True)
class AppPolicy:
    """The app ``app_id`` may open ``mailbox_id`` (and only the mailboxes it has a row for);
    ``mailbox_id`` None: a restricted app left with no mailbox (every one listed was removed)."""

    app_id: str
    mailbox_id: str | None
    created_at: int


class AccessStore(Protocol):
    async def put_grant(self, grant: Grant) -> None:
        """Insert the grant, or replace the rights of the one between the same two users."""
        ...

    async def remove_grant(self, mailbox_id: str, delegate_id: str) -> bool: ...
    async def grant(self, mailbox_id: str, delegate_id: str) -> Grant | None: ...
    async def grants_of(self, mailbox_id: str) -> list[Grant]:
        """Every grant of one mailbox, oldest first."""
        ...

    async def find_apps(self, key: str) -> list[App]:
        """Registered applications by client id, or by name (one per tenant that has it)."""
        ...

    async def put_policy(self, app_id: str, mailbox_ids: list[str], created_at: int) -> None:
        """The app may open exactly these mailboxes from now on (replaces its policy)."""
        ...

    async def remove_policy(self, app_id: str) -> int:
        """The app is unrestricted again; the number of mailboxes it was restricted to (0:
        it had no policy)."""
        ...

    async def policy_of(self, app_id: str) -> frozenset[str] | None:
        """The mailboxes the app may open; None when it has no policy (every mailbox). A
        policy whose users were all removed is the empty set: the app opens nothing."""
        ...

    async def policies(self) -> list[AppPolicy]:
        """Every policy row, by app and mailbox (one with no mailbox for an app that may open
        none)."""
        ...
