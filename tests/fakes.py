"""An in-memory stand-in for the relay: the delivery worker's transport without a network.

Like httpx's ``MockTransport``, it answers from a script instead of a socket: per recipient, a
queue of answers (a ``Reply``, an exception to raise, ``HANG`` to wait until released, or
``SILENT`` to leave that recipient out of the answer); a recipient with nothing scripted is
accepted with a 250. Every transaction it was handed is recorded.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass

from graphpost.delivery.transport import Mime, Reply, reply


class _Hang:
    def __repr__(self) -> str:
        return "HANG"


class _Silent:
    def __repr__(self) -> str:
        return "SILENT"


HANG = _Hang()  # the relay does not answer until the test calls ``release()``
SILENT = _Silent()  # the relay's answer has no entry for this recipient
Answer = Reply | BaseException | _Hang | _Silent

ACCEPTED = reply(250, "2.0.0 OK queued as FAKE")


def temporary(text: str = "4.7.1 try again later") -> Reply:
    return reply(451, text)


def permanent(text: str = "5.1.1 user unknown") -> Reply:
    return reply(550, text)


@dataclass(frozen=True)
class Call:
    """One transaction the worker handed to the transport."""

    sender: str
    recipients: tuple[str, ...]
    mime: bytes


class FakeTransport:
    """A ``DeliveryTransport`` that answers from a script, in memory."""

    def __init__(self, default: Reply = ACCEPTED) -> None:
        self.default = default
        self.calls: list[Call] = []
        self.closed = False
        self._script: dict[str, deque[Answer]] = defaultdict(deque)
        self._released = asyncio.Event()
        self.hanging = 0  # transactions waiting for ``release()`` right now

    def script(self, recipient: str, *answers: Answer) -> None:
        """Queue answers for ``recipient``: one is used per transaction naming it."""
        self._script[recipient.lower()].extend(answers)

    def release(self) -> None:
        """Let every transaction held by ``HANG`` go on (its recipients are then accepted)."""
        self._released.set()

    def delivered_to(self, recipient: str) -> int:
        """How many transactions named ``recipient``."""
        return sum(recipient.lower() in (r.lower() for r in c.recipients) for c in self.calls)

    async def send(self, sender: str, recipients: list[str], mime: Mime) -> dict[str, Reply]:
        if not isinstance(mime, bytes):  # a large message, streamed
            mime = b"".join([block async for block in mime()])
        self.calls.append(Call(sender, tuple(recipients), mime))
        answers: dict[str, Answer] = {}
        for rcpt in recipients:
            queue = self._script.get(rcpt.lower())
            answers[rcpt] = queue.popleft() if queue else self.default
        for answer in answers.values():
            if isinstance(answer, BaseException):
                raise answer
        if any(isinstance(a, _Hang) for a in answers.values()):
            self.hanging += 1
            try:
                await self._released.wait()
            finally:
                self.hanging -= 1
        return {
            rcpt: answer if isinstance(answer, Reply) else self.default
            for rcpt, answer in answers.items()
            if not isinstance(answer, _Silent)
        }

    async def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class FakeChange:
    seq: int
    kind: str
    item_id: str
    folder_id: str
    prior_folder_id: str | None
    change_type: str
    at_ms: int


class FakeChangeFeed:
    """A mailbox change log in memory (``ports.changes.ChangeLog``), for the
    notifier's unit tests: the test appends changes and prunes the log."""

    def __init__(self) -> None:
        self.log: dict[str, list[FakeChange]] = {}
        self.pruned: dict[str, int] = {}

    def add(self, mailbox_id: str, change_type: str, item_id: str, folder_id: str,
            prior_folder_id: str | None = None, kind: str = "message") -> int:  # fmt: skip
        entries = self.log.setdefault(mailbox_id, [])
        seq = (entries[-1].seq if entries else self.pruned.get(mailbox_id, 0)) + 1
        entries.append(FakeChange(seq, kind, item_id, folder_id, prior_folder_id, change_type, 0))
        return seq

    def prune(self, mailbox_id: str, up_to: int) -> None:
        self.log[mailbox_id] = [c for c in self.log.get(mailbox_id, []) if c.seq > up_to]
        self.pruned[mailbox_id] = max(self.pruned.get(mailbox_id, 0), up_to)

    async def changes_after(self, mailbox_id: str, after_seq: int, limit: int) -> list[FakeChange]:
        return [c for c in self.log.get(mailbox_id, []) if c.seq > after_seq][:limit]

    async def last_seq(self, mailbox_id: str) -> int:
        entries = self.log.get(mailbox_id, [])
        return entries[-1].seq if entries else self.pruned.get(mailbox_id, 0)

    async def horizon(self, mailbox_id: str) -> int:
        return self.pruned.get(mailbox_id, 0)
