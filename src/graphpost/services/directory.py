"""Tenants, users and their mailboxes; the demo tenant; who may open which mailbox."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from graphpost.auth.principal import DENIED, Principal
from graphpost.domain import addresses, ids
from graphpost.domain.folders import ROOT, WELL_KNOWN
from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    DelegatedOnlyError,
    InvalidInputError,
    UnknownUserError,
)
from graphpost.store.ports import MailStore
from graphpost.store.records import FolderRecord, TenantRecord, UserRecord

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
_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An opened mailbox: its owner, and the caller who opened it."""

    user: UserRecord
    principal: Principal

    @property
    def id(self) -> str:
        return self.user.id


def mailbox_folders(user_id: str) -> list[FolderRecord]:
    """The well-known folders of a new mailbox, root first."""
    root_id = ids.folder_id()
    out = [FolderRecord(root_id, user_id, None, WELL_KNOWN[0].display_name, ROOT, False)]
    for wk in WELL_KNOWN[1:]:
        out.append(FolderRecord(ids.folder_id(), user_id, root_id, wk.display_name, wk.name,
                                wk.hidden))  # fmt: skip
    return out


def _check_address(value: str, what: str) -> str:
    value = value.strip()
    why = addresses.problem(value)
    if why is not None:
        raise InvalidInputError(f"'{addresses.shown(value)}' is not a valid {what}: {why}.")
    return value


class DirectoryService:
    def __init__(self, store: MailStore) -> None:
        self.store = store
        self._users: dict[str, tuple[float, UserRecord | None]] = {}

    async def add_user(
        self, *, display_name: str, mail: str, upn: str | None = None, user_id: str | None = None
    ) -> UserRecord:
        mail = _check_address(mail, "mail address")
        upn = _check_address(upn or mail, "userPrincipalName")
        if not display_name.strip():
            raise InvalidInputError("A user needs a display name.")
        domain = upn.split("@", 1)[1].lower()
        tenant = await self.store.find_tenant(domain)
        if tenant is None:
            tenant = await self.store.ensure_tenant(domain=domain, display_name=domain)
        user = UserRecord(user_id or ids.guid(), tenant.id, display_name.strip(), mail, upn)
        try:
            return await self.store.add_user(user, mailbox_folders(user.id))
        except AlreadyExistsError:
            raise AlreadyExistsError(f"A user with address '{mail}' already exists.") from None

    async def remove_user(self, key: str) -> UserRecord:
        user = await self.store.find_user(key)
        if user is None:
            raise UnknownUserError(f"The requested user '{key}' is invalid.")
        await self.store.remove_user(user.id)
        self._users.clear()
        return user

    async def seed_demo(self) -> TenantRecord:
        """The demo tenant and its users; users that exist already are left as they are."""
        tenant = await self.store.ensure_tenant(domain=DEMO_DOMAIN, display_name="Contoso")
        for name, alias in DEMO_USERS:
            address = f"{alias}@{DEMO_DOMAIN}"
            if await self.store.find_user(address) is None:
                # another process may seed it at the same moment
                with contextlib.suppress(AlreadyExistsError):
                    await self.add_user(display_name=name, mail=address)
        return tenant

    async def user(self, key: str) -> UserRecord | None:
        """A user by object id, userPrincipalName or mail (cached for a few seconds)."""
        lowered = key.lower()
        hit = self._users.get(lowered)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        found = await self.store.find_user(lowered)
        if len(self._users) > 10_000:
            self._users.clear()
        self._users[lowered] = (now + _CACHE_SECONDS, found)
        return found

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
            if user is None or (
                principal.user_id is None and user.tenant_id != principal.tenant_id
            ):
                raise UnknownUserError(f"The requested user '{key}' is invalid.")
        if not principal.may_open(mailbox_id=user.id, mailbox_tenant=user.tenant_id):
            raise AccessDeniedError(DENIED)
        return Mailbox(user, principal)
