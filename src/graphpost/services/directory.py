"""Tenants, users and their mailboxes; the demo tenant; who may open which mailbox."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from graphpost.auth.principal import DENIED, Principal
from graphpost.domain import addresses, ids
from graphpost.domain.folders import ROOT, WELL_KNOWN
from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    DelegatedOnlyError,
    DirectoryObjectNotFoundError,
    InsufficientPrivilegesError,
    InvalidInputError,
    UnknownUserError,
)
from graphpost.ports.directory import App, DirectoryStore, Tenant, User, UserPage, UserQuery
from graphpost.ports.folders import Folder
from graphpost.services.cache import ExpiringCache
from graphpost.types import USER_ALL, USER_BASIC_ALL, USER_SELF_SCOPES, Right

DEMO_DOMAIN = "contoso.onmicrosoft.com"
# The people the Graph docs' examples write to, so that those examples run as written.
DEMO_USERS = (
    ("Adele Vance", "AdeleV"),
    ("Alex Wilber", "AlexW"),
    ("Megan Bowen", "MeganB"),
    ("Patti Fernandez", "PattiF"),
    ("Lee Gu", "LeeG"),
    ("Miriam Graham", "MiriamG"),
    ("Nestor Wilke", "NestorW"),
    ("Lynne Robbins", "LynneR"),
    ("Diego Siciliani", "DiegoS"),
    ("Isaiah Langer", "IsaiahL"),
    ("Johanna Lorenz", "JohannaL"),
    ("Joni Sherman", "JoniS"),
    ("Grady Archie", "GradyA"),
    ("Lidia Holloway", "LidiaH"),
    ("Pradeep Gupta", "PradeepG"),
    ("Henrietta Mueller", "HenriettaM"),
    ("Irvin Sayers", "IrvinS"),
    ("Allan Deyoung", "AllanD"),
    ("Christie Cline", "ChristieC"),
    ("Enrico Cattaneo", "EnricoC"),
)
VIEWER_APP = "graphpost-mailbox-viewer"
_CACHE_SECONDS = 5.0  # a user removed (or renamed) is seen by every process within this


class Reach(Enum):
    """Where mail to an address goes."""

    MAILBOX = "mailbox"  # a user here
    NO_SUCH_USER = "no such user"  # one of our domains, but nobody by that name: bounce it
    REMOTE = "remote"  # elsewhere: the relay


@dataclass(frozen=True, slots=True)
class Destination:
    reach: Reach
    user: User | None = None


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An opened mailbox: its owner, and the caller who opened it."""

    user: User
    principal: Principal
    # what the owner granted the caller, when the caller opened another user's mailbox as
    # their delegate (the principal is then what scopes and grant allow together); else None
    rights: frozenset[Right] | None = None

    @property
    def id(self) -> str:
        return self.user.id

    @classmethod
    def reader(cls, user: User) -> Mailbox:
        """The mailbox opened for the local mailbox viewer: reading it, as its owner would
        with Mail.Read, and nothing more."""
        principal = Principal(
            tenant_id=user.tenant_id,
            app_id=VIEWER_APP,
            user_id=user.id,
            permissions=frozenset({"Mail.Read"}),
            expires=0,
        )
        return cls(user, principal)


INSUFFICIENT = "Insufficient privileges to complete the operation."


@dataclass(frozen=True, slots=True)
class Profile:
    """A user as the directory API shows them to this caller: ``basic`` when the caller may see
    only the basic profile (User.ReadBasic.All: names, mail, userPrincipalName, id)."""

    user: User
    basic: bool


def profile_access(principal: Principal, *, own: bool) -> str | None:
    """``"full"``, ``"basic"`` or None: what the caller's permissions show of a user's profile
    (``own``: the signed-in user's own)."""
    granted = principal.permissions
    if granted & USER_ALL:
        return "full"
    if own and principal.delegated and granted & USER_SELF_SCOPES:
        return "full"
    if USER_BASIC_ALL in granted:
        return "basic"
    return None


def not_found(key: str) -> DirectoryObjectNotFoundError:
    return DirectoryObjectNotFoundError(
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present."
    )


def mailbox_folders(user_id: str) -> list[Folder]:
    """The well-known folders of a new mailbox, root first."""
    root_id = ids.folder_id()
    out = [Folder(root_id, user_id, None, WELL_KNOWN[0].display_name, ROOT, False)]
    for wk in WELL_KNOWN[1:]:
        out.append(Folder(ids.folder_id(), user_id, root_id, wk.display_name, wk.name,
                                wk.hidden))  # fmt: skip
    return out


# C0 and C1 controls, DEL and the Unicode line and paragraph separators: never in a name or an
# address of the directory (a CR or LF would split the lines of a listing, a header, a log)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_DISPLAY_NAME = 255


def _check_address(value: str, what: str) -> str:
    if _CONTROL.search(value):
        raise InvalidInputError(f"A {what} must not contain control characters or line breaks.")
    value = value.strip()
    why = addresses.problem(value)
    if why is not None:
        raise InvalidInputError(f"'{addresses.shown(value)}' is not a valid {what}: {why}.")
    return value


def _check_display_name(value: str) -> str:
    if _CONTROL.search(value):
        raise InvalidInputError(
            "A display name must not contain control characters or line breaks."
        )
    value = value.strip()
    if not value or len(value) > MAX_DISPLAY_NAME:
        raise InvalidInputError(
            f"A user needs a display name of 1 to {MAX_DISPLAY_NAME} characters."
        )
    return value


class MailboxGate(Protocol):
    """Decides whether a caller may open a user's mailbox (``services.access``)."""

    async def admit(self, principal: Principal, user: User) -> Mailbox: ...


class DirectoryService:
    def __init__(self, store: DirectoryStore, *, gate: MailboxGate | None = None) -> None:
        self.store = store
        self.gate = gate
        self._users: ExpiringCache[User | None] = ExpiringCache(seconds=_CACHE_SECONDS, size=10_000)
        # address (lower case) → display name, or None for an address not in the directory
        self._names: ExpiringCache[str | None] = ExpiringCache(seconds=_CACHE_SECONDS, size=50_000)

    async def add_user(
        self, *, display_name: str, mail: str, upn: str | None = None, user_id: str | None = None
    ) -> User:
        mail = _check_address(mail, "mail address")
        upn = _check_address(upn or mail, "userPrincipalName")
        display_name = _check_display_name(display_name)
        domain = upn.split("@", 1)[1].lower()
        tenant = await self.store.find_tenant(domain)
        if tenant is None:
            tenant = await self.store.ensure_tenant(domain=domain, display_name=domain)
        user = User(user_id or ids.guid(), tenant.id, display_name, mail, upn)
        # the store refuses an address that is already someone's upn or mail, with its reason
        added = await self.store.add_user(user, mailbox_folders(user.id))
        self._users.clear()  # a look-up that found no one before is stale now
        self._names.clear()
        return added

    async def remove_user(self, key: str) -> User:
        user = await self.store.find_user(key)
        if user is None:
            raise UnknownUserError(f"The requested user '{key}' is invalid.")
        await self.store.remove_user(user.id)
        self._users.clear()
        return user

    async def seed_demo(self) -> Tenant:
        """The demo tenant and its users; users that exist already are left as they are."""
        tenant = await self.store.ensure_tenant(domain=DEMO_DOMAIN, display_name="Contoso")
        for name, alias in DEMO_USERS:
            address = f"{alias}@{DEMO_DOMAIN}"
            if await self.store.find_user(address) is None:
                # another process may seed it at the same moment
                with contextlib.suppress(AlreadyExistsError):
                    await self.add_user(display_name=name, mail=address)
        return tenant

    async def user(self, key: str) -> User | None:
        """A user by object id, userPrincipalName or mail (cached for a few seconds)."""
        lowered = key.lower()
        known, cached = self._users.get(lowered)
        if known:
            return cached
        found = await self.store.find_user(lowered)
        self._users.put(lowered, found)
        return found

    async def display_names(self, addresses: list[str]) -> dict[str, str]:
        """Directory display names for addresses (lower case keys; cached a few seconds)."""
        out: dict[str, str] = {}
        missing: list[str] = []
        for address in addresses:
            key = address.lower()
            known, name = self._names.get(key)
            if not known:
                missing.append(key)
            elif name is not None:
                out[key] = name
        if missing:
            found = await self.store.display_names(missing)
            for key in missing:
                name = found.get(key)
                self._names.put(key, name)
                if name is not None:
                    out[key] = name
        return out

    async def locate(self, address: str) -> Destination:
        """Where mail to ``address`` goes: the one place inbound SMTP and sending decide
        "a mailbox here, one of our domains, or elsewhere"."""
        user = await self.user(address)
        if user is not None:
            return Destination(Reach.MAILBOX, user)
        if await self.is_ours(address):
            return Destination(Reach.NO_SUCH_USER)
        return Destination(Reach.REMOTE)

    async def is_ours(self, address: str) -> bool:
        """Whether the address's domain is one of our tenants' domains."""
        return await self.store.find_tenant(addresses.domain_of(address)) is not None

    async def tenant(self, key: str) -> Tenant | None:
        """A tenant by domain or id."""
        return await self.store.find_tenant(key)

    async def tenants(self) -> list[Tenant]:
        return await self.store.list_tenants()

    async def users(self, tenant_id: str | None = None) -> list[User]:
        return await self.store.list_users(tenant_id)

    async def profile(self, principal: Principal, key: str | None) -> Profile:
        """``/me`` (key None) or ``/users/{id|userPrincipalName}`` for this caller: never a user
        of another tenant; 403 before 404 for a caller who may not read that user anyway."""
        if key is None:
            if principal.user_id is None:
                raise DelegatedOnlyError(
                    "/me request is only valid with delegated authentication flow."
                )
            key = principal.user_id
        granted = principal.permissions
        if not (
            granted & USER_ALL
            or USER_BASIC_ALL in granted
            or (principal.delegated and granted & USER_SELF_SCOPES)
        ):
            raise InsufficientPrivilegesError(INSUFFICIENT)
        user = await self.user(key)
        if user is None or user.tenant_id != principal.tenant_id:
            if key != principal.user_id and profile_access(principal, own=False) is None:
                # a caller who may read only its own profile learns nothing of others
                raise InsufficientPrivilegesError(INSUFFICIENT)
            raise not_found(key)
        access = profile_access(principal, own=user.id == principal.user_id)
        if access is None:
            raise InsufficientPrivilegesError(INSUFFICIENT)
        return Profile(user, access == "basic")

    async def profiles(self, principal: Principal, query: UserQuery) -> tuple[UserPage, bool]:
        """A page of the caller's tenant's users, and whether only basic profiles may be shown."""
        access = profile_access(principal, own=False)
        if access is None:
            raise InsufficientPrivilegesError(INSUFFICIENT)
        page = await self.store.query_users(replace(query, tenant_id=principal.tenant_id))
        return page, access == "basic"

    async def ensure_app(self, tenant: Tenant, name: str) -> App:
        """The application of that name in the tenant, registered on first use."""
        return await self.store.ensure_app(tenant_id=tenant.id, name=name, app_id=ids.guid())

    async def open_mailbox(self, principal: Principal, key: str | None) -> Mailbox:
        """The mailbox ``/me`` (key None) or ``/users/{key}`` means for this caller."""
        if key is None:
            if principal.user_id is None:
                raise DelegatedOnlyError(
                    "/me request is only valid with delegated authentication flow."
                )
            user = await self.user(principal.user_id)
            if user is None:
                raise UnknownUserError(
                    f"The user '{principal.user_id}' of this token no longer exists."
                )
        else:
            user = await self.user(key)
            # a user of another tenant is, for this caller, no user at all: the same 404 as an
            # unknown one (a 403 would tell a delegated caller which addresses exist elsewhere)
            if user is None or (
                user.tenant_id != principal.tenant_id and user.id != principal.user_id
            ):
                raise UnknownUserError(f"The requested user '{key}' is invalid.")
        if self.gate is not None:
            return await self.gate.admit(principal, user)
        if not principal.may_open(mailbox_id=user.id, mailbox_tenant=user.tenant_id):
            raise AccessDeniedError(DENIED)
        return Mailbox(user, principal)
