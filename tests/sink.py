"""A real SMTP sink (aiosmtpd, on its own thread) that answers per recipient on command."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.ports import free_port

_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool = False  # the client sent MAIL FROM with SMTPUTF8
    at: float = field(default_factory=time.time)  # when the sink said 250

    @property
    def message_id(self) -> str:
        """The Message-ID header, read from the raw header block (no parser: any bytes)."""
        head = self.data.split(b"\r\n\r\n", 1)[0]
        m = _MESSAGE_ID.search(head)
        return m.group(1).strip().decode("ascii", "replace") if m else ""

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SinkHandler:
    received: list[Received] = field(default_factory=list)
    # address (lower case) → answers to give, in order; then 250. "drop" closes the connection.
    rules: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds each DATA takes, blocking the sink: one message at a time
    rcpt_delay: float = 0.0  # seconds each RCPT takes, without blocking other sessions

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        with self.lock:
            queue = self.rules.get(address.lower())
            answer = queue.pop(0) if queue else "250 2.1.5 OK"
        if answer == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 4.4.2 closing"
        if answer.startswith("2"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        if self.delay:
            time.sleep(self.delay)  # noqa: ASYNC251 - blocking on purpose: one at a time
        with self.lock:
            self.received.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    data,
                    smtputf8=bool(envelope.smtp_utf8),
                )
            )
        return "250 2.0.0 OK queued"


class Sink:
    """``smtputf8=False`` makes a relay that does not offer SMTPUTF8 (RFC 6531) in its EHLO;
    ``max_bytes``: the largest message it takes (aiosmtpd's default: 32 MiB)."""

    def __init__(
        self, port: int | None = None, *, smtputf8: bool = True, max_bytes: int | None = None
    ) -> None:
        self.handler = SinkHandler()
        if port is None:
            port = free_port()
        limits: dict[str, Any] = {} if max_bytes is None else {"data_size_limit": max_bytes}
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8, **limits
        )

    def start(self) -> Sink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def answer(self, address: str, *answers: str) -> None:
        with self.handler.lock:
            self.handler.rules[address.lower()].extend(answers)

    def messages_for(self, address: str) -> list[Received]:
        with self.handler.lock:
            return [r for r in self.handler.received
                    if address.lower() in (a.lower() for a in r.rcpt_tos)]  # fmt: skip

    def copies(self) -> Counter[tuple[str, str]]:
        """How many times each (Message-ID, recipient in lower case) arrived."""
        with self.handler.lock:
            items = list(self.handler.received)
        return Counter((r.message_id, a.lower()) for r in items for a in r.rcpt_tos)

    def with_subject(self, subject: str) -> list[Received]:
        with self.handler.lock:
            items = list(self.handler.received)
        return [r for r in items if r.message["subject"] == subject]


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
