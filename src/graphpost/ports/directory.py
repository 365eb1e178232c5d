"""The directory port: tenants, users (each owns one mailbox) and applications."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from graphpost.domain.query import Node
from graphpost.ports.folders import Folder


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    domain: str
    display_name: str


@dataclass(frozen=True, slots=True)
class User:
    """A person of a tenant; their mailbox has the same id."""

    id: str
    tenant_id: str
    display_name: str
    mail: str
    upn: str


@dataclass(frozen=True, slots=True)
class UserQuery:
    """One page of a tenant's users: ``where`` uses the properties ``id``, ``displayname``,
    ``mail`` and ``userprincipalname`` (compared case-insensitively); ``order`` is one of
    those (None: by id); ``after`` is the (sort value, id) of the previous page's last user."""

    tenant_id: str
    where: Node | None = None
    order: str | None = None
    descending: bool = False
    top: int = 100
    after: tuple[str, str] | None = None
    count: bool = False


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[User]
    # (sort value, id) of the last user when another page follows: the next page's ``after``
    next_after: tuple[str, str] | None
    count: int | None = None  # every match, when the query asked for it


@dataclass(frozen=True, slots=True)
class App:
    id: str
    tenant_id: str
    name: str


class DirectoryStore(Protocol):
    async def ensure_tenant(self, *, domain: str, display_name: str) -> Tenant: ...
    async def find_tenant(self, key: str) -> Tenant | None:
        """A tenant by domain (any case) or id."""
        ...

    async def list_tenants(self) -> list[Tenant]: ...
    async def add_user(self, user: User, folders: list[Folder]) -> User:
        """The user and their mailbox's folders, in one transaction (AlreadyExistsError when
        the address is taken)."""
        ...

    async def find_user(self, key: str) -> User | None:
        """A user by id, userPrincipalName or mail (any case)."""
        ...

    async def list_users(self, tenant_id: str | None = None) -> list[User]: ...
    async def query_users(self, query: UserQuery) -> UserPage:
        """A page of the tenant's users matching the query (the tenant is always enforced)."""
        ...

    async def remove_user(self, user_id: str) -> bool: ...
    async def display_names(self, addresses: list[str]) -> dict[str, str]:
        """Directory display names by address (lower case), for the addresses known."""
        ...

    async def ensure_app(self, *, tenant_id: str, name: str, app_id: str) -> App: ...
