"""Who may open which mailbox beyond their own: mailbox delegation (the .Shared scopes) and
application access policies (an app restricted to some mailboxes).

The answers are cached for a few seconds per process, like the directory's users: a grant
revoked or a policy changed by the CLI reaches a running server within ``CACHE_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphpost.auth.principal import DENIED, Principal
from graphpost.domain.addresses import shown
from graphpost.domain.times import now
from graphpost.errors import AccessDeniedError, InvalidInputError, UnknownUserError
from graphpost.ports.access import AccessStore, Grant
from graphpost.ports.directory import App, DirectoryStore, User
from graphpost.services.cache import ExpiringCache
from graphpost.services.directory import Mailbox
from graphpost.types import Right

CACHE_SECONDS = 5.0
# Exchange's answer when an application access policy keeps an app out of a mailbox
ODATA_DISABLED = "Access to OData is disabled."
MAX_POLICY_MAILBOXES = 10_000


@dataclass(frozen=True, slots=True)
class DelegateGrant:
    """A grant as the CLI lists it: the delegate, and what they may do."""

    delegate: User
    grant: Grant


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    app: App
    mailbox: User | None  # None: the app may open no mailbox (its listed users were removed)


def rights_from(
    access: str, *, send_on_behalf: bool = False, send_as: bool = False
) -> frozenset[Right]:
    """The rights of ``graphpost mailbox grant --rights read|readwrite [--send-…]``."""
    try:
        base = Right(access.strip().lower())
    except ValueError:
        base = None
    if base not in (Right.READ, Right.READWRITE):
        raise InvalidInputError(f"--rights must be 'read' or 'readwrite', not '{shown(access)}'.")
    rights: set[Right] = {base}
    if send_on_behalf:
        rights.add(Right.SEND_ON_BEHALF)
    if send_as:
        rights.add(Right.SEND_AS)
    return frozenset(rights)


class AccessService:
    def __init__(self, store: AccessStore, users: DirectoryStore) -> None:
        self.store = store
        self.users = users
        self._rights: ExpiringCache[frozenset[Right] | None] = ExpiringCache(
            seconds=CACHE_SECONDS, size=50_000
        )
        self._policies: ExpiringCache[frozenset[str] | None] = ExpiringCache(
            seconds=CACHE_SECONDS, size=10_000
        )

    # ------------------------------------------------------------ deciding (every request)

    async def rights(self, mailbox_id: str, delegate_id: str) -> frozenset[Right] | None:
        """What the owner of ``mailbox_id`` granted ``delegate_id`` (None: nothing)."""
        key = f"{mailbox_id} {delegate_id}"
        known, cached = self._rights.get(key)
        if known:
            return cached
        grant = await self.store.grant(mailbox_id, delegate_id)
        rights = grant.rights if grant is not None and grant.rights else None
        self._rights.put(key, rights)
        return rights

    async def app_policy(self, app_id: str) -> frozenset[str] | None:
        """The mailboxes an app is restricted to; None when it is not restricted."""
        known, cached = self._policies.get(app_id)
        if known:
            return cached
        found = await self.store.policy_of(app_id)
        self._policies.put(app_id, found)
        return found

    async def admit(self, principal: Principal, user: User) -> Mailbox:
        """``user``'s mailbox opened for ``principal``, or AccessDeniedError.

        A delegated token opens its user's own mailbox; with a .Shared scope also a mailbox
        whose owner granted its user rights (and then only what scope and grant both allow).
        An application token opens any mailbox of its tenant, unless an application access
        policy lists the mailboxes it may open."""
        caller = principal.user_id
        if caller is not None:  # delegated
            if caller == user.id:
                return Mailbox(user, principal)
            if principal.shares and principal.tenant_id == user.tenant_id:
                rights = await self.rights(user.id, caller)
                if rights:
                    return Mailbox(user, principal.in_shared(rights), rights)
            raise AccessDeniedError(DENIED)
        if principal.tenant_id != user.tenant_id:
            raise AccessDeniedError(DENIED)
        allowed = await self.app_policy(principal.app_id)
        if allowed is not None and user.id not in allowed:
            raise AccessDeniedError(ODATA_DISABLED)
        return Mailbox(user, principal)

    # ------------------------------------------------------------ managing (the CLI)

    async def _user(self, key: str) -> User:
        user = await self.users.find_user(key.strip())
        if user is None:
            raise UnknownUserError(f"No user '{shown(key)}'; see `graphpost users list`.")
        return user

    async def grant(self, owner_key: str, delegate_key: str, rights: frozenset[Right]) -> Grant:
        owner = await self._user(owner_key)
        delegate = await self._user(delegate_key)
        if owner.id == delegate.id:
            raise InvalidInputError("A user cannot be granted their own mailbox.")
        if owner.tenant_id != delegate.tenant_id:
            raise InvalidInputError(
                f"{owner.upn} and {delegate.upn} are in different tenants; a mailbox can be "
                "shared only within its tenant."
            )
        if not rights & {Right.READ, Right.READWRITE}:
            raise InvalidInputError("A grant needs 'read' or 'readwrite'.")
        grant = Grant(owner.id, delegate.id, rights, now())
        await self.store.put_grant(grant)
        self._rights.clear()
        return grant

    async def revoke(self, owner_key: str, delegate_key: str) -> bool:
        owner = await self._user(owner_key)
        delegate = await self._user(delegate_key)
        removed = await self.store.remove_grant(owner.id, delegate.id)
        self._rights.clear()
        return removed

    async def grants(self, owner_key: str) -> list[DelegateGrant]:
        owner = await self._user(owner_key)
        out = []
        for grant in await self.store.grants_of(owner.id):
            delegate = await self.users.find_user(grant.delegate_id)
            if delegate is not None:
                out.append(DelegateGrant(delegate, grant))
        return out

    async def _app(self, key: str) -> App:
        found = await self.store.find_apps(key.strip())
        if not found:
            raise InvalidInputError(
                f"No registered application '{shown(key)}' (a client id, or the name of an app)."
            )
        if len(found) > 1:
            raise InvalidInputError(
                f"'{shown(key)}' names {len(found)} applications (one per tenant); give its "
                "client id."
            )
        return found[0]

    async def restrict_app(self, app_key: str, mailbox_keys: list[str]) -> tuple[App, list[User]]:
        """From now on the app may open exactly these mailboxes (of its tenant)."""
        app = await self._app(app_key)
        if not mailbox_keys:
            raise InvalidInputError("Name at least one mailbox the application may open.")
        if len(mailbox_keys) > MAX_POLICY_MAILBOXES:
            raise InvalidInputError(f"At most {MAX_POLICY_MAILBOXES} mailboxes per policy.")
        mailboxes: dict[str, User] = {}
        for key in mailbox_keys:
            user = await self._user(key)
            if user.tenant_id != app.tenant_id:
                raise InvalidInputError(
                    f"{user.upn} is not in the tenant of application {app.name} ({app.id})."
                )
            mailboxes[user.id] = user
        await self.store.put_policy(app.id, list(mailboxes), now())
        self._policies.clear()
        return app, sorted(mailboxes.values(), key=lambda u: u.upn.lower())

    async def unrestrict_app(self, app_key: str) -> tuple[App, int]:
        app = await self._app(app_key)
        removed = await self.store.remove_policy(app.id)
        self._policies.clear()
        return app, removed

    async def app_policies(self) -> list[PolicyEntry]:
        out = []
        apps: dict[str, App | None] = {}
        for row in await self.store.policies():
            if row.app_id not in apps:
                found = await self.store.find_apps(row.app_id)
                apps[row.app_id] = found[0] if found else None
            app = apps[row.app_id]
            user = None if row.mailbox_id is None else await self.users.find_user(row.mailbox_id)
            if app is not None and (user is not None or row.mailbox_id is None):
                out.append(PolicyEntry(app, user))
        return out
