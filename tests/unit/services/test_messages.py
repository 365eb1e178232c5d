"""The message and send services called directly, on the real store (a SQLite file)."""

from __future__ import annotations

import pytest

from graphpost.api.errors import status_and_code
from graphpost.errors import AccessDeniedError, ConflictError, MalformedIdError, NotFoundError
from graphpost.runtime import Runtime
from graphpost.services.directory import Mailbox
from tests.fakes import FakeTransport
from tests.unit.wiring import (
    add_mailbox,
    create_draft,
    folder_id,
    get_mail,
    message_input,
    messages_in,
    run_worker_once,
    to,
)

pytestmark = pytest.mark.anyio

ADELE = "adele@contoso.test"
BOB = "bob@contoso.test"


@pytest.fixture
async def adele(runtime: Runtime) -> Mailbox:
    return await add_mailbox(runtime, ADELE, "Adele Vance")


async def test_a_draft_is_created_read_and_updated_and_a_stale_if_match_is_a_412(
    runtime: Runtime, adele: Mailbox
) -> None:
    draft = await create_draft(runtime, adele, subject="first", toRecipients=to(BOB))
    assert draft.is_draft and draft.folder_id == await folder_id(runtime, adele, "drafts")
    assert (await get_mail(runtime, adele, draft.id)).subject == "first"

    await runtime.messages.update(
        adele, draft.id, message_input(subject="second"), if_match=f'W/"{draft.change_key}"'
    )
    updated = await get_mail(runtime, adele, draft.id)
    assert updated.subject == "second" and updated.change_key != draft.change_key

    with pytest.raises(ConflictError) as stale:
        await runtime.messages.update(
            adele, draft.id, message_input(subject="third"), if_match=f'W/"{draft.change_key}"'
        )
    assert status_and_code(stale.value) == (412, "ErrorIrresolvableConflict")
    assert (await get_mail(runtime, adele, draft.id)).subject == "second"

    # without If-Match the last writer wins
    await runtime.messages.update(adele, draft.id, message_input(subject="fourth"), if_match=None)
    assert (await get_mail(runtime, adele, draft.id)).subject == "fourth"


async def test_move_keeps_the_id_and_copy_makes_a_new_item(
    runtime: Runtime, adele: Mailbox
) -> None:
    draft = await create_draft(runtime, adele, subject="keep me")
    archive = await folder_id(runtime, adele, "archive")

    moved = await runtime.messages.move(adele, draft.id, "archive")
    assert moved.id == draft.id
    assert (await get_mail(runtime, adele, draft.id)).folder_id == archive
    assert await messages_in(runtime, adele, "drafts") == []

    copy = await runtime.messages.copy(adele, draft.id, "inbox")
    assert copy.id != draft.id
    [in_inbox] = await messages_in(runtime, adele, "inbox")
    assert (in_inbox.id, in_inbox.subject) == (copy.id, "keep me")
    assert [m.id for m in await messages_in(runtime, adele, "archive")] == [draft.id]

    with pytest.raises(MalformedIdError):
        await runtime.messages.move(adele, draft.id, "no such folder")
    with pytest.raises(NotFoundError):
        await runtime.messages.move(adele, "AAMk" + "A" * 40, "inbox")


async def test_delete_goes_to_deleted_items_then_for_good(runtime: Runtime, adele: Mailbox) -> None:
    draft = await create_draft(runtime, adele, subject="bin me")
    with pytest.raises(ConflictError):
        await runtime.messages.delete(adele, draft.id, if_match='W/"not-the-change-key"')
    assert (await get_mail(runtime, adele, draft.id)).folder_id != await folder_id(
        runtime, adele, "deleteditems"
    )

    await runtime.messages.delete(adele, draft.id, if_match=None)
    binned = await get_mail(runtime, adele, draft.id)
    assert binned.folder_id == await folder_id(runtime, adele, "deleteditems")

    await runtime.messages.delete(adele, draft.id, if_match=None)
    with pytest.raises(NotFoundError):
        await get_mail(runtime, adele, draft.id)

    other = await create_draft(runtime, adele, subject="gone at once")
    await runtime.messages.permanent_delete(adele, other.id)
    with pytest.raises(NotFoundError):
        await get_mail(runtime, adele, other.id)
    with pytest.raises(NotFoundError):
        await runtime.messages.permanent_delete(adele, other.id)
    assert await messages_in(runtime, adele, "deleteditems") == []


async def test_a_sent_draft_keeps_its_id_in_sent_items_and_a_second_send_is_a_no_op(
    runtime: Runtime, adele: Mailbox, fake: FakeTransport
) -> None:
    bob = await add_mailbox(runtime, BOB)
    draft = await create_draft(runtime, adele, subject="for bob", toRecipients=to(BOB))
    first = await runtime.sending.send_draft(adele, draft.id)
    assert first.message_id == draft.id
    sent = await get_mail(runtime, adele, draft.id)
    assert sent.folder_id == await folder_id(runtime, adele, "sentitems") and not sent.is_draft

    again = await runtime.sending.send_draft(adele, draft.id)
    assert again.submission_id == first.submission_id
    assert await run_worker_once(runtime) == 1
    assert await run_worker_once(runtime) == 0
    assert [m.subject for m in await messages_in(runtime, bob)] == ["for bob"]
    assert fake.calls == []


async def test_a_read_only_caller_reads_but_cannot_write_or_send(runtime: Runtime) -> None:
    reader = await add_mailbox(runtime, ADELE, scopes=frozenset({"Mail.Read"}))
    assert await messages_in(runtime, reader, "drafts") == []
    with pytest.raises(AccessDeniedError):
        await create_draft(runtime, reader, subject="nope")
    with pytest.raises(AccessDeniedError):
        await runtime.sending.send_mail(reader, message_input(subject="nope", toRecipients=to(BOB)))
