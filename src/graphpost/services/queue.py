"""The outbound queue, for operators (the web page's queue view and ``graphpost queue``):
deliveries by state, "retry now" and "delete".

No caller check here: the edges decide who may see and act on which deliveries (the web
page: an admin every tenant's, a user their own, by ``tenant``/``mailbox_id``).

- **Retry now** makes a queued or deferred delivery due now and wakes the worker. Its lease
  is not touched: if a worker is attempting it at that moment, that attempt goes on and
  records its outcome (and its own next attempt); no other worker can claim it meanwhile, so
  nothing is sent twice.
- **Delete** removes a queued or deferred delivery from the queue, as ``postsuper -d`` and
  Exchange's ``Remove-Message -WithNDR $false`` do: it is recorded as failed, with an
  attempt saying an operator deleted it (the sender's ``deliveryStatus`` shows that), and no
  non-delivery report is sent. A delivery a worker is attempting right now cannot be deleted
  (the relay may already have it): the operator tries again once the attempt has ended. A
  delivered or failed delivery is not in the queue any more: deleting it is an error.
"""

from __future__ import annotations

from collections.abc import Callable

from graphpost.domain.times import now_ms
from graphpost.errors import InvalidInputError, InvalidOperationError, NotFoundError
from graphpost.ports.outbox import (
    DeliveryState,
    OutboxStore,
    QueueAction,
    QueueEntry,
    QueuePage,
    QueueQuery,
)
from graphpost.services.directory import DirectoryService

DELETED = "deleted from the queue by an operator"
MAX_PAGE = 500
QUEUE_STATES = (DeliveryState.QUEUED, DeliveryState.DEFERRED, DeliveryState.FAILED)


def _missing(seq: int) -> NotFoundError:
    return NotFoundError(f"There is no delivery {seq} in the queue.")


class QueueService:
    def __init__(
        self,
        store: OutboxStore,
        directory: DirectoryService,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.wake = wake  # the local delivery worker's

    async def page(
        self,
        states: tuple[DeliveryState, ...] = QUEUE_STATES,
        *,
        tenant: str | None = None,
        mailbox_id: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> QueuePage:
        """Deliveries in ``states`` (of one tenant, by id or domain, or one sender's mailbox,
        or the whole server), newest first: ``before`` is the ``next_before`` of the page
        before."""
        if not states:
            raise InvalidInputError("Name at least one delivery state.")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"A page holds 1 to {MAX_PAGE} deliveries.")
        if before is not None and before < 1:
            raise InvalidInputError("The cursor is not one of this queue's.")
        tenant_id = None
        if tenant is not None:
            found = await self.directory.tenant(tenant)
            if found is None:
                raise NotFoundError(f"There is no tenant '{tenant}' here.")
            tenant_id = found.id
        query = QueueQuery(tuple(states), tenant_id, mailbox_id, before, limit)
        return await self.store.queue(query, now_ms=now_ms())

    async def counts(self, *, tenant_id: str | None = None) -> dict[DeliveryState, int]:
        """How many deliveries are queued, deferred and failed."""
        return await self.store.queue_counts(QUEUE_STATES, tenant_id=tenant_id)

    async def get(self, seq: int) -> QueueEntry:
        entry = await self.store.queue_entry(seq, now_ms=now_ms())
        if entry is None:
            raise _missing(seq)
        return entry

    async def retry(self, seq: int) -> QueueEntry:
        """Make a queued or deferred delivery due now; the entry as it is then."""
        done = await self.store.retry_now(seq, now_ms=now_ms())
        if done is QueueAction.MISSING:
            raise _missing(seq)
        if done is QueueAction.FINAL:
            raise InvalidOperationError(
                f"Delivery {seq} has already ended (delivered or failed): there is nothing "
                "to retry."
            )
        if self.wake is not None:
            self.wake()
        return await self.get(seq)

    async def delete(self, seq: int) -> QueueEntry:
        """Take a queued or deferred delivery out of the queue (failed, no report)."""
        done = await self.store.cancel(seq, now_ms=now_ms(), note=DELETED)
        if done is QueueAction.MISSING:
            raise _missing(seq)
        if done is QueueAction.FINAL:
            entry = await self.get(seq)
            raise InvalidOperationError(
                f"Delivery {seq} has already been {entry.delivery.state.value}: only a "
                "queued or deferred delivery can be deleted."
            )
        if done is QueueAction.IN_PROGRESS:
            raise InvalidOperationError(
                f"Delivery {seq} is being attempted right now; try again in a few seconds."
            )
        return await self.get(seq)
