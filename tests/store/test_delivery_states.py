"""``OutboxStore.delivery_states`` on both engines: the recipients' states of a page of sent
messages in one read, the latest submission of each, another mailbox's never."""

from __future__ import annotations

import pytest

from graphpost.domain import ids
from graphpost.ports.outbox import Delivery, DeliveryState, Outcome, Route, Submission
from graphpost.store.outbox import SqlOutbox
from tests.store.conftest import Stores
from tests.store.samples import a_user

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000_000


async def submit(
    outbox: SqlOutbox, mailbox_id: str, message_id: str, created: int, *to: str
) -> Submission:
    s = Submission(
        ids.guid(), mailbox_id, message_id, f"<{ids.guid()}@example.com>", "s",
        "a@example.com", None, b"Subject: x\r\n\r\nhi\r\n", True, created, created + 3_600_000,
    )  # fmt: skip
    ds = [Delivery(0, s.id, r, Route.SMTP, None, DeliveryState.QUEUED, 0, created) for r in to]
    return await outbox.submit(s, ds)


async def test_states_of_a_page_of_sent_messages(store: Stores) -> None:
    user, other = await a_user(store), await a_user(store, "b@example.com")
    out = store.outbox
    one, two, never = ids.message_id(), ids.message_id(), ids.message_id()
    await submit(out, user.id, one, T0, "x@example.net", "y@example.net")
    # sent twice (a later submission of the same message id): the later one counts
    await submit(out, user.id, two, T0, "old@example.net")
    await submit(out, user.id, two, T0 + 1000, "new@example.net")
    claimed = await out.claim_deliveries(
        owner="w", now_ms=T0 + 2000, lease_ms=30_000, limit=10, remote=True
    )
    failing = [d for d in claimed if d.recipient == "y@example.net"]
    await out.record_outcomes(
        [Outcome(failing[0].seq, DeliveryState.FAILED, 550, "5.1.1", "no such user")],
        owner="w", now_ms=T0 + 2000, bounce=None,
    )  # fmt: skip
    states = await out.delivery_states(user.id, [one, two, never, one])
    assert sorted(states) == sorted([one, two])
    assert sorted(states[one]) == sorted([DeliveryState.QUEUED, DeliveryState.FAILED])
    assert states[two] == [DeliveryState.QUEUED]
    # another mailbox asking for these ids: nothing
    assert await out.delivery_states(other.id, [one, two]) == {}
    assert await out.delivery_states(user.id, []) == {}
