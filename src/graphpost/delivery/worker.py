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
import time
import uuid
from collections import defaultdict

from graphpost.delivery.transport import DeliveryTransport, Reply
from graphpost.domain.compose import Failure, non_delivery_report
from graphpost.domain.times import now
from graphpost.services.directory import DirectoryService
from graphpost.services.ingest import IngestService
from graphpost.store.ports import MailStore
from graphpost.store.records import DeliveryRow, NewMessage, Outcome, SubmissionRow

log = logging.getLogger("graphpost.delivery")


def now_ms() -> int:
    return int(time.time() * 1000)


class DeliveryWorker:
    def __init__(
        self,
        store: MailStore,
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
    ) -> None:
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
        while not self._stopping:
            try:
                done = await self.run_once()
            except Exception:
                log.exception("delivery round failed")
                done = 0
            if done == 0 and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def run_once(self) -> int:
        claimed = await self.store.claim_deliveries(
            owner=self.owner,
            now_ms=now_ms(),
            lease_ms=self.lease_ms,
            limit=self.batch,
            remote=self.transport is not None,
        )
        if not claimed:
            return 0
        by_submission: dict[str, list[DeliveryRow]] = defaultdict(list)
        for d in claimed:
            by_submission[d.submission_id].append(d)
        await asyncio.gather(*(self._submission(sid, ds) for sid, ds in by_submission.items()))
        return len(claimed)

    async def _submission(self, submission_id: str, deliveries: list[DeliveryRow]) -> None:
        async with self._limit:
            submission = await self.store.get_submission(submission_id)
            if submission is None:
                return
            try:
                local = [d for d in deliveries if d.transport == "local"]
                remote = [d for d in deliveries if d.transport == "smtp"]
                outcomes: list[Outcome] = []
                for d in local:
                    outcome = await self._local(submission, d)
                    if outcome is not None:
                        outcomes.append(outcome)
                if remote and self.transport is not None:
                    outcomes += await self._remote(submission, remote)
                await self._record(submission, outcomes, deliveries)
            except Exception:
                log.exception("delivery of submission %s failed", submission_id)
                await self.store.release([d.seq for d in deliveries], owner=self.owner)

    async def _local(self, submission: SubmissionRow, d: DeliveryRow) -> Outcome | None:
        user = await self.directory.user(d.local_mailbox_id) if d.local_mailbox_id else None
        if user is None:
            text = f"<{d.recipient}>: Recipient address rejected: no such mailbox here"
            return Outcome(d.seq, "failed", 550, "5.1.1", text)
        copy = await self.ingest.message_from_mime(submission.mime, user)
        await self.store.deliver_local(d, owner=self.owner, message=copy, now_ms=now_ms())
        return None

    async def _remote(self, submission: SubmissionRow, ds: list[DeliveryRow]) -> list[Outcome]:
        assert self.transport is not None
        replies = await self.transport.send(
            submission.envelope_from, [d.recipient for d in ds], submission.mime
        )
        out = []
        for d in ds:
            r = replies.get(d.recipient) or Reply(None, None, "no answer for this recipient")
            out.append(self._outcome(submission, d, r))
        return out

    def _outcome(self, submission: SubmissionRow, d: DeliveryRow, r: Reply) -> Outcome:
        code, enhanced, text = r.code, r.enhanced, r.text
        kind = r.kind
        next_ms = 0
        if kind == "deferred":
            delay = min(self.retry_base * (2**d.attempts), self.retry_max)
            next_ms = now_ms() + int(delay * 1000)
            if next_ms > submission.expires_ms:
                kind = "failed"
                text = f"retries exhausted; last answer: {code or ''} {enhanced or ''} {text}"
                code, enhanced = code or 550, "4.4.7"
        return Outcome(d.seq, kind, code, enhanced, text.strip(), next_ms)

    async def _record(
        self, submission: SubmissionRow, outcomes: list[Outcome], deliveries: list[DeliveryRow]
    ) -> None:
        if not outcomes:
            return
        failed = [o for o in outcomes if o.state == "failed"]
        bounce = await self._bounce(submission, failed, deliveries) if failed else None
        await self.store.record_outcomes(outcomes, owner=self.owner, now_ms=now_ms(), bounce=bounce)

    async def _bounce(
        self, submission: SubmissionRow, failed: list[Outcome], deliveries: list[DeliveryRow]
    ) -> NewMessage | None:
        """A non-delivery report for the sender's Inbox, if the sender is a mailbox here."""
        sender = await self.directory.user(submission.mailbox_id)
        if sender is None:
            return None
        recipient = {d.seq: d.recipient for d in deliveries}
        failures = [
            Failure(recipient[o.delivery_seq], o.code, o.enhanced, o.response) for o in failed
        ]
        raw = non_delivery_report(
            original_mime=submission.mime,
            original_subject=submission.subject,
            sender=sender.mail,
            sender_name=sender.display_name,
            failures=failures,
            now=now(),
        )
        return await self.ingest.message_from_mime(raw, sender)
