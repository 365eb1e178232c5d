"""The delivery worker: claim due deliveries (leases), deliver locally or over SMTP, record the
outcome per recipient, retry with exponential backoff, bounce on permanent failure.

Runs inside ``graphpost serve`` and, on PostgreSQL, as any number of ``graphpost worker``
processes: claims use ``FOR UPDATE SKIP LOCKED`` and a crashed worker's leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

from graphpost.delivery.reports import Failure, non_delivery_report
from graphpost.delivery.transport import DeliveryTransport, Mime, Reply
from graphpost.domain.text import one_line
from graphpost.domain.times import now, now_ms
from graphpost.errors import BlobMissingError
from graphpost.ports.blobs import BlobStore
from graphpost.ports.messages import NewMessage
from graphpost.ports.outbox import Delivery, DeliveryState, OutboxStore, Outcome, Route, Submission
from graphpost.services.directory import DirectoryService
from graphpost.services.ingest import IngestService
from graphpost.services.parsing import ParseTimeoutError

log = logging.getLogger("graphpost.delivery")
# pauses between attempts to record outcomes when the database does not answer
_RECORD_PAUSES = (0.5, 2.0, 5.0)


def _describe(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}")[:500]


def _internal(exc: BaseException) -> Reply:
    """An error of ours, as a temporary failure: retried later, never lost."""
    return Reply(None, None, f"internal error: {_describe(exc)}")


class DeliveryWorker:
    STOP_GRACE_SECONDS = 5.0

    def __init__(
        self,
        store: OutboxStore,
        directory: DirectoryService,
        ingest: IngestService,
        transport: DeliveryTransport | None,
        *,
        retry_base: float,
        retry_max: float,
        lease_seconds: float,
        poll_seconds: float,
        batch: int = 200,
        concurrency: int = 16,
        sole: bool = False,
        blobs: BlobStore | None = None,
        on_outcome: Callable[[], None] | None = None,
    ) -> None:
        self.blobs = blobs
        # called when a submission's claimed deliveries have their outcomes recorded (the
        # emulator's long poll of what was delivered waits for it)
        self.on_outcome = on_outcome
        self.store = store
        self.directory = directory
        self.ingest = ingest
        self.transport = transport
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.lease_ms = int(lease_seconds * 1000)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._limit = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self._tasks: dict[asyncio.Task[None], list[int]] = {}  # submissions in hand → seqs
        self.sole = sole  # the only worker of this database (SQLite): no one else holds leases

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Work until stopped; an unexpected error is logged and the loop goes on."""
        try:
            await self._run()
        finally:
            if self.transport is not None:
                await self.transport.close()

    async def _run(self) -> None:
        """Claim due work whenever fewer than ``concurrency`` submissions are in hand, and
        deliver each on its own: a submission stuck on a relay that does not answer holds
        one slot until the relay timeout, never the rest of the queue."""
        if self.sole:
            taken = await self.store.take_over_leases(self.owner)
            if taken:
                log.warning("took over %d deliveries left by a process that stopped", taken)
        keeper = asyncio.create_task(self._keep_leases())
        try:
            while not self._stopping:
                if len(self._tasks) >= self.concurrency:
                    await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    started = await self.run_once()
                except Exception:
                    log.exception("claiming deliveries failed")
                    started = 0
                if started == 0 and not self._stopping:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
        finally:
            await self._finish_running()
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def run_once(self) -> int:
        """Claim due deliveries and start a task per submission; the number claimed."""
        claimed = await self.store.claim_deliveries(
            owner=self.owner,
            now_ms=now_ms(),
            lease_ms=self.lease_ms,
            limit=self.batch,
            remote=self.transport is not None,
        )
        # a delivery already in hand is never started twice: its lease can only look over
        # to this worker when the clock was moved forward (emulator mode), and it is ours
        in_hand = {seq for group in self._tasks.values() for seq in group}
        by_submission: dict[str, list[Delivery]] = defaultdict(list)
        for d in claimed:
            if d.seq not in in_hand:
                by_submission[d.submission_id].append(d)
        for sid, ds in by_submission.items():
            task = asyncio.create_task(self._submission(sid, ds))
            self._tasks[task] = [d.seq for d in ds]
            task.add_done_callback(self._tasks.pop)
        return len(claimed)

    async def _finish_running(self) -> None:
        """On stop: let the submissions in hand end for a while, then cancel the rest (their
        leases run out, or the next start on SQLite takes them over)."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.STOP_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _keep_leases(self) -> None:
        """Renew the leases of the deliveries in hand: a slow relay or a long wait behind the
        concurrency limit must not let a lease run out under a live worker (another worker
        would then send the same recipients again). Only a worker that died stops renewing."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            seqs = [seq for group in self._tasks.values() for seq in group]
            try:
                await self.store.renew_leases(
                    seqs, owner=self.owner, until_ms=now_ms() + self.lease_ms
                )
            except Exception:
                log.warning("could not renew delivery leases", exc_info=True)

    async def _submission(self, submission_id: str, deliveries: list[Delivery]) -> None:
        """Deliver one submission's claimed recipients. Every recipient ends this with its
        outcome recorded (delivered, deferred with backoff, or failed), whatever goes wrong:
        nothing is released to be tried again at once."""
        try:
            await self._deliver(submission_id, deliveries)
        finally:
            if self.on_outcome is not None:
                self.on_outcome()

    async def _deliver(self, submission_id: str, deliveries: list[Delivery]) -> None:
        async with self._limit:
            try:
                submission = await self.store.get_submission(submission_id)
            except Exception as exc:
                log.exception("could not read submission %s", submission_id)
                await self._settle(None, deliveries, _internal(exc).text)
                return
            if submission is None:
                await self._settle(None, deliveries, "the submission no longer exists")
                return
            outcomes: list[Outcome] = []
            for d in deliveries:
                if d.route is Route.LOCAL:
                    outcome = await self._local(submission, d)
                    if outcome is not None:
                        outcomes.append(outcome)
            remote = [d for d in deliveries if d.route is Route.SMTP]
            if remote and self.transport is not None:
                outcomes += await self._remote(submission, remote)
            await self._record(submission, outcomes, deliveries)

    async def _local(self, submission: Submission, d: Delivery) -> Outcome | None:
        """Deliver into a mailbox here; None when delivered (recorded in the same transaction
        as the copy), else the outcome to record."""
        try:
            user = await self.directory.user(d.local_mailbox_id) if d.local_mailbox_id else None
            if user is None:
                text = f"<{d.recipient}>: Recipient address rejected: no such mailbox here"
                return Outcome(d.seq, DeliveryState.FAILED, 550, "5.1.1", text)
            copy = await self.ingest.message_from_mime(
                submission.mime, user, trusted=True, arriving=True
            )
            try:
                done = await self.store.deliver_local(
                    d, owner=self.owner, message=copy, now_ms=now_ms()
                )
            except BlobMissingError:
                # a large message's skeleton names blobs that were removed meanwhile (they
                # should not be: the submission holds them): read the whole message instead
                whole = b"".join([block async for block in self._mime_stream(submission)()])
                copy = await self.ingest.message_from_mime(
                    whole, user, trusted=False, arriving=True
                )
                done = await self.store.deliver_local(
                    d, owner=self.owner, message=copy, now_ms=now_ms()
                )
            if done:  # delivered by us (not by a worker that took the lease over)
                await self.ingest.arrived(user, copy, submission.envelope_from)
            return None
        except ParseTimeoutError as exc:  # the same message would time out again: for good
            return Outcome(
                d.seq, DeliveryState.FAILED, 554, "5.6.0", f"the message cannot be read: {exc}"
            )
        except Exception as exc:
            log.exception("local delivery %s failed", d.seq)
            return self._outcome(submission, d, _internal(exc))

    async def _remote(self, submission: Submission, ds: list[Delivery]) -> list[Outcome]:
        assert self.transport is not None
        try:
            mime: Mime = submission.mime
            if submission.mime_digest is not None:
                mime = self._mime_stream(submission)
            replies = await self.transport.send(
                submission.envelope_from, [d.recipient for d in ds], mime
            )
        except Exception as exc:  # a transport must not raise; if one does, retry later
            log.exception("relay transport failed")
            replies = {d.recipient: _internal(exc) for d in ds}
        out = []
        for d in ds:
            r = replies.get(d.recipient) or Reply(None, None, "no answer for this recipient")
            out.append(self._outcome(submission, d, r))
        return out

    def _mime_stream(self, submission: Submission) -> Callable[[], AsyncIterator[bytes]]:
        """A large message's MIME, streamed from its blob (anew on each call)."""
        blobs, digest = self.blobs, submission.mime_digest
        if blobs is None or digest is None:
            raise RuntimeError("a large message needs the blob store")
        return lambda: blobs.read(digest)

    def _outcome(self, submission: Submission | None, d: Delivery, r: Reply) -> Outcome:
        """The reply as an outcome: a temporary failure is retried with exponential backoff
        until the submission's retry window ends, then it fails for good."""
        code, enhanced, text = r.code, r.enhanced, r.text
        kind = r.kind
        next_ms = 0
        if kind is DeliveryState.DEFERRED:
            delay = min(self.retry_base * (2**d.attempts), self.retry_max)
            next_ms = now_ms() + int(delay * 1000)
            expires = submission.expires_ms if submission is not None else 0
            if next_ms > expires:
                kind = DeliveryState.FAILED
                text = f"retries exhausted; last answer: {code or ''} {enhanced or ''} {text}"
                code, enhanced = code or 550, "4.4.7"
        return Outcome(d.seq, kind, code, enhanced, text.strip(), next_ms)

    async def _settle(
        self, submission: Submission | None, deliveries: list[Delivery], text: str
    ) -> None:
        """Record a temporary failure for each delivery (best effort: if even that cannot be
        written, the leases run out and the deliveries are claimed again later, not now)."""
        outcomes = [self._outcome(submission, d, Reply(None, None, text)) for d in deliveries]
        with contextlib.suppress(Exception):
            await self.store.record_outcomes(
                outcomes, owner=self.owner, now_ms=now_ms(), bounce=None
            )

    async def _record(
        self, submission: Submission, outcomes: list[Outcome], deliveries: list[Delivery]
    ) -> None:
        """Record the outcomes, with the non-delivery report of the failures in the same
        transaction. A report that cannot be built never holds the outcomes back (the sender
        still sees the failure in deliveryStatus); a database that does not answer is asked
        again a few times before the leases are left to run out."""
        if not outcomes:
            return
        failed = [o for o in outcomes if o.state is DeliveryState.FAILED]
        bounce = None
        if failed:
            try:
                bounce = await self._bounce(submission, failed, deliveries)
            except Exception:
                log.exception("could not build the non-delivery report of %s", submission.id)
        for tries, pause in enumerate((*_RECORD_PAUSES, None)):
            try:
                await self.store.record_outcomes(
                    outcomes, owner=self.owner, now_ms=now_ms(), bounce=bounce
                )
                return
            except Exception:
                if pause is None:
                    log.exception("could not record the outcomes of %s", submission.id)
                    return
                log.warning("recording the outcomes of %s failed", submission.id, exc_info=True)
                if tries >= 1 and bounce is not None:
                    log.error("recording without the non-delivery report of %s", submission.id)
                    bounce = None  # the report itself may be what the database refuses
                await asyncio.sleep(pause)

    async def _bounce(
        self, submission: Submission, failed: list[Outcome], deliveries: list[Delivery]
    ) -> NewMessage | None:
        """A non-delivery report for the sender's Inbox, if the sender is a mailbox here."""
        sender = await self.directory.user(submission.mailbox_id)
        if sender is None:
            return None
        recipient = {d.seq: d.recipient for d in deliveries}
        failures = [
            Failure(recipient[o.delivery_seq], o.code, o.enhanced, o.response) for o in failed
        ]
        original = submission.mime
        if submission.mime_digest is not None:  # a skeleton: its header block is enough
            original = original.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        raw = non_delivery_report(
            original_mime=original,
            original_subject=submission.subject,
            sender=sender.mail,
            sender_name=sender.display_name,
            failures=failures,
            now=now(),
        )
        return await self.ingest.message_from_mime(raw, sender, trusted=True)
