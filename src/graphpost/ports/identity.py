"""The identity port: application credentials, user passwords, grants (authorization codes,
device codes, refresh tokens) and failed sign-ins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class AppRegistration:
    """An application of a tenant as the token endpoint sees it. ``secret_digest``: SHA-256
    (hex) of the client secret, None for a public client."""

    id: str  # the client id
    tenant_id: str
    name: str
    secret_digest: str | None
    roles: tuple[str, ...] = ()
    redirect_uris: tuple[str, ...] = ()
    public_client: bool = False


@dataclass(frozen=True, slots=True)
class Grant:
    """A handed-out code or token, stored by the SHA-256 of its value (``handle``).

    ``kind``: "code" (authorization code), "device" (device code; ``user_code`` is what a
    person types, ``user_id`` is set once they sign in), "refresh". ``data``: what the grant
    is bound to (redirect URI, PKCE challenge, nonce, the device flow's state).
    ``expires_at``: unix milliseconds."""

    handle: str
    kind: str
    tenant_id: str
    client_id: str
    user_id: str | None
    scopes: tuple[str, ...]
    expires_at: int
    data: dict[str, str] = field(default_factory=dict)
    user_code: str | None = None


class IdentityStore(Protocol):
    async def add_app(self, app: AppRegistration) -> AppRegistration:
        """AlreadyExistsError when the tenant has an app of that name."""
        ...

    async def find_app(self, client_id: str) -> AppRegistration | None: ...
    async def list_apps(self) -> list[AppRegistration]: ...
    async def remove_app(self, client_id: str) -> bool: ...
    async def set_password_hash(self, user_id: str, password_hash: str | None) -> bool: ...
    async def password_hash(self, user_id: str) -> str | None: ...

    async def add_grant(self, grant: Grant) -> None:
        """AlreadyExistsError when the handle (or a device grant's user code) is taken."""
        ...

    async def take_grant(self, handle: str, kind: str) -> Grant | None:
        """The grant, deleted in the same transaction (single use): of two takers at once,
        one gets it and the other None."""
        ...

    async def peek_grant(self, handle: str, kind: str) -> Grant | None:
        """The grant, left in place (a device code polled before the person has signed in)."""
        ...

    async def grant_by_user_code(self, user_code: str) -> Grant | None: ...

    async def count_live_grants(self, client_id: str, kind: str, now_ms: int) -> int:
        """How many grants of ``kind`` of a client have not expired at ``now_ms``."""
        ...

    async def settle_device(self, handle: str, *, user_id: str | None, state: str) -> bool:
        """Record a person's answer to a device code (``state`` "approved" with the user,
        or "declined"); False when the code is gone or already answered."""
        ...

    async def record_failure(self, keys: list[str], at_ms: int) -> None:
        """One failed sign-in for each key ("user:ID", "name:" and the SHA-256 of a user name
        that is nobody's, "client:ID", "client-unknown:ID")."""
        ...

    async def count_failures(self, key: str, since_ms: int) -> int: ...

    async def purge(self, now_ms: int, failures_before_ms: int) -> None:
        """Forget expired grants and failures older than ``failures_before_ms``."""
        ...
