"""The emulator port's contract (a tenant's mailboxes emptied in one transaction; the
deliveries that have an outcome) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, attachment, item
from graphpost.ports.directory import User
from graphpost.ports.folders import Folder
from graphpost.ports.messages import NewMessage
from graphpost.ports.outbox import Delivery, DeliveryState, Outcome, Route, Submission
from graphpost.services.directory import mailbox_folders
from graphpost.store.emulator import SqlEmulator
from graphpost.store.engine import Tx
from tests.store.conftest import Stores

pytestmark = pytest.mark.anyio
AT = 1_700_000_000


async def a_user(store: Stores, domain: str, name: str = "a") -> User:
    tenant = await store.directory.ensure_tenant(domain=domain, display_name=domain)
    user = User(ids.guid(), tenant.id, name, f"{name}@{domain}", f"{name}@{domain}")
    await store.directory.add_user(user, mailbox_folders(user.id))
    return user


async def inbox_of(store: Stores, user: User) -> str:
    found = await store.folders.well_known_folder(user.id, "inbox")
    assert found is not None
    return found.id


async def folders_of(
    store: Stores, user: User
) -> list[tuple[str, str | None, str | None, int, int, int]]:
    """(id, parent, well-known name, total, unread, children) of every folder of a mailbox."""

    async def op(tx: Tx) -> list[tuple[str, str | None, str | None, int, int, int]]:
        rows = await tx.fetchall(
            "SELECT id, parent_id, well_known, total_count, unread_count, child_count "
            "FROM folders WHERE mailbox_id = ?",
            (user.id,),
        )
        return [(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows]

    return await store.engine.read(op)


def a_message(user: User, folder: str, subject: str, *, with_file: bool = False) -> NewMessage:
    me = Recipient(EmailAddress("A", user.mail))
    files = [attachment("a.txt", "text/plain", b"x" * 10, is_inline=False, content_id=None, now=AT)]
    msg = item(
        message_id=ids.message_id(), folder_id=folder, now=AT, web_base="http://x",
        conversation_index=ids.conversation_index(), attachments=files if with_file else [],
        internet_message_id=f"<{ids.guid()}@x>", subject=subject, body=ItemBody("text", "b"),
        sender=me, from_=me, to=[me], cc=[], bcc=[], reply_to=[], is_read=False,
        is_draft=False, categories=[],
    )  # fmt: skip
    return NewMessage(user.id, msg, attachments=files if with_file else [])


async def a_send(store: Stores, user: User, subject: str, *to: str) -> list[Delivery]:
    sub = Submission(
        ids.guid().replace("-", ""), user.id, ids.message_id(), f"<{ids.guid()}@x>", subject,
        user.mail, None, b"Subject: x\r\n\r\nbody", True, AT * 1000, AT * 1000 + 86_400_000,
    )  # fmt: skip
    deliveries = [
        Delivery(0, sub.id, address, Route.SMTP, None, DeliveryState.QUEUED, 0, 0) for address in to
    ]
    await store.outbox.submit(sub, deliveries)
    return await store.outbox.claim_deliveries(
        owner="w", now_ms=AT * 1000, lease_ms=60_000, limit=100, remote=True
    )


async def test_reset_empties_one_tenants_mailboxes(store: Stores) -> None:
    emulator = SqlEmulator(store.engine)
    a = await a_user(store, "a.example")
    b = await a_user(store, "b.example")
    a_inbox, b_inbox = await inbox_of(store, a), await inbox_of(store, b)
    made = await store.folders.create_folder(
        Folder(ids.folder_id(), a.id, a_inbox, "Projects", None, False)
    )
    await store.folders.create_folder(Folder(ids.folder_id(), a.id, made.id, "Sub", None, False))
    for user, folder in ((a, a_inbox), (a, made.id), (b, b_inbox)):
        await store.messages.insert_message(a_message(user, folder, "m", with_file=True))
    claimed = await a_send(store, a, "sent", "x@far.example")
    await store.outbox.record_outcomes(
        [Outcome(claimed[0].seq, DeliveryState.DELIVERED, 250, "2.0.0", "ok")],
        owner="w", now_ms=AT * 1000, bounce=None,
    )  # fmt: skip
    await a_send(store, b, "other", "y@far.example")

    assert [d.recipient for d in await emulator.delivered(10)] == ["x@far.example"]
    before = {f[2]: f[0] for f in await folders_of(store, a) if f[2]}
    done = await emulator.reset_tenant(a.tenant_id)
    assert (done.mailboxes, done.messages, done.submissions) == (1, 2, 1)
    after = await folders_of(store, a)
    assert {f[2]: f[0] for f in after if f[2]} == before
    assert all(f[2] for f in after)  # Projects and Sub are gone
    assert all(f[3] == 0 and f[4] == 0 for f in after)
    for folder_id, _, _, _, _, children in after:
        assert children == sum(1 for f in after if f[1] == folder_id)
    # the reset tenant's user is still there; a's delivery went with its submission, and
    # b's has no outcome yet
    assert await store.directory.find_user(a.id) == a
    assert await emulator.delivered(10) == []
    assert next(f for f in await folders_of(store, b) if f[0] == b_inbox)[3] == 1
    # an empty tenant, or one reset again: nothing to do
    again = await emulator.reset_tenant(a.tenant_id)
    assert (again.messages, again.submissions) == (0, 0)

    async def attachments(tx: Tx) -> int:
        row = await tx.fetchone("SELECT COUNT(*) FROM attachments")
        return int(row[0]) if row else 0

    async def blob_refs(tx: Tx) -> int:
        row = await tx.fetchone("SELECT COALESCE(SUM(refs), 0) FROM blobs")
        return int(row[0]) if row else 0

    assert await store.engine.read(attachments) == 1  # b's message's
    assert await store.engine.read(blob_refs) == 1  # the same bytes: b's reference alone


async def test_delivered_lists_outcomes_newest_first(store: Stores) -> None:
    emulator = SqlEmulator(store.engine)
    a = await a_user(store, "a.example")
    claimed = await a_send(store, a, "Subject É", "one@far.example", "two@far.example", "q@x.y")
    by = {d.recipient: d for d in claimed}
    await store.outbox.record_outcomes(
        [
            Outcome(by["one@far.example"].seq, DeliveryState.DELIVERED, 250, "2.0.0", "ok"),
            Outcome(by["two@far.example"].seq, DeliveryState.DEFERRED, 451, "4.3.0", "later",
                    AT * 1000 + 60_000),
        ],
        owner="w", now_ms=AT * 1000, bounce=None,
    )  # fmt: skip
    listed = await emulator.delivered(10)
    assert [(d.recipient, d.state) for d in listed] == [
        ("two@far.example", DeliveryState.DEFERRED),
        ("one@far.example", DeliveryState.DELIVERED),
    ]
    two = listed[0]
    assert (two.attempts, two.last_code, two.last_enhanced) == (1, 451, "4.3.0")
    assert two.subject == "Subject É" and two.envelope_from == a.mail
    assert two.sender_mailbox_id == a.id and two.route is Route.SMTP
    assert [d.recipient for d in await emulator.delivered(1)] == ["two@far.example"]
