"""The folder and directory services called directly, on the real store (a SQLite file)."""

from __future__ import annotations

import pytest

from graphpost.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    CannotDeleteError,
    NotFoundError,
    UnknownUserError,
)
from graphpost.runtime import Runtime
from graphpost.services.directory import Mailbox
from tests.unit.wiring import ALL_SCOPES, add_mailbox, folder, folder_id, open_as

pytestmark = pytest.mark.anyio

ADELE = "adele@contoso.test"


@pytest.fixture
async def adele(runtime: Runtime) -> Mailbox:
    return await add_mailbox(runtime, ADELE, "Adele Vance")


async def test_a_folder_goes_to_deleted_items_then_for_good(
    runtime: Runtime, adele: Mailbox
) -> None:
    made = await runtime.folders.create(adele, None, name=" Projects ", hidden=None)
    assert made.display_name == "Projects"
    assert (await folder(runtime, adele, made.id)).parent_id == await folder_id(
        runtime, adele, "msgfolderroot"
    )
    with pytest.raises(AlreadyExistsError):
        await runtime.folders.create(adele, None, name="projects", hidden=None)

    await runtime.folders.delete(adele, made.id)
    binned = await folder(runtime, adele, made.id)
    assert binned.parent_id == await folder_id(runtime, adele, "deleteditems")

    # a second folder of the same name lands in Deleted Items under a new name
    again = await runtime.folders.create(adele, None, name="Projects", hidden=None)
    await runtime.folders.delete(adele, again.id)
    assert (await folder(runtime, adele, again.id)).name == "Projects (1)"

    await runtime.folders.delete(adele, made.id)
    with pytest.raises(NotFoundError):
        await folder(runtime, adele, made.id)


async def test_well_known_folders_cannot_be_deleted_or_renamed(
    runtime: Runtime, adele: Mailbox
) -> None:
    with pytest.raises(CannotDeleteError):
        await runtime.folders.delete(adele, "inbox")
    with pytest.raises(CannotDeleteError):
        await runtime.folders.rename(adele, "drafts", name="Sketches")
    assert (await folder(runtime, adele, "inbox")).name == "Inbox"


async def test_a_user_opens_only_their_own_mailbox(runtime: Runtime, adele: Mailbox) -> None:
    bob = await add_mailbox(runtime, "bob@contoso.test")
    with pytest.raises(AccessDeniedError):
        await open_as(runtime, bob.id, bob.user.tenant_id, ADELE, scopes=ALL_SCOPES)
    with pytest.raises(UnknownUserError):
        await open_as(runtime, bob.id, bob.user.tenant_id, "nobody@contoso.test", scopes=ALL_SCOPES)
    with pytest.raises(AlreadyExistsError):
        await runtime.directory.add_user(display_name="Adele again", mail=ADELE)
