"""Inbound SMTP: mail for local users lands in their Inbox through the ingest service.

Not an open relay: recipients must be users here. Unknown users of our domains get
550 5.1.1, other domains 550 5.7.1. aiosmtpd enforces the size limit with 552.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from graphpost.services.directory import DirectoryService
from graphpost.services.ingest import IngestService
from graphpost.store.ports import MailStore
from graphpost.store.records import UserRecord

log = logging.getLogger("graphpost.smtp")


class InboundHandler:
    def __init__(
        self, store: MailStore, directory: DirectoryService, ingest: IngestService
    ) -> None:
        self.store = store
        self.directory = directory
        self.ingest = ingest

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        address = address.strip()
        if "@" not in address:
            return "501 5.1.3 Bad recipient address syntax"
        user = await self.directory.user(address)
        if user is not None:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        domain = address.rsplit("@", 1)[1]
        if await self.store.find_tenant(domain) is not None:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        return f"550 5.7.1 <{address}>: Relay access denied"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        users: list[UserRecord] = []
        seen: set[str] = set()
        for rcpt in envelope.rcpt_tos:
            user = await self.directory.user(rcpt)
            if user is not None and user.id not in seen:
                seen.add(user.id)
                users.append(user)
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        try:
            copies = await self.ingest.deliver(data, users)
        except Exception:
            log.exception("could not store an inbound message")
            return "451 4.3.0 Temporary failure storing the message; try again later"
        ids = ",".join(c.row.id[-12:] for c in copies)
        return f"250 2.0.0 OK: stored as {ids}"


class InboundServer:
    """aiosmtpd on this event loop (no thread)."""

    def __init__(
        self, handler: InboundHandler, *, host: str, port: int, hostname: str, max_bytes: int
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_bytes = max_bytes
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> Any:
            return SMTP(
                self.handler,
                data_size_limit=self.max_bytes,
                hostname=self.hostname,
                ident="graphpost ESMTP",
                decode_data=False,
                enable_SMTPUTF8=True,
            )

        # reuse_port: with `serve --workers N` every API process listens on the same SMTP port
        # and the kernel spreads the connections among them
        self._server = await loop.create_server(
            factory, host=self.host, port=self.port, reuse_port=hasattr(socket, "SO_REUSEPORT")
        )
        sockets: Any = self._server.sockets or ()
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
