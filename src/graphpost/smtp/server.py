"""Inbound SMTP: mail for local users lands in their Inbox through the ingest service.

Not an open relay: recipients must be users here. Unknown users of our domains get
550 5.1.1, other domains 550 5.7.1. aiosmtpd enforces the size limit with 552.

Limits, as a hostile client would try them:

* a session silent for ``idle_timeout`` seconds gets ``421 4.4.2`` and is closed, and no
  session lasts longer than ``SESSION_SECONDS`` (a trickle of bytes cannot hold one forever);
* at most ``max_sessions`` at once; one more is greeted ``421 4.7.0`` and closed;
* only a store that is unavailable answers ``451`` (try again later); a message that can never
  be accepted gets a 5xx, so that the sending server stops retrying it;
* anti-spoofing, as Exchange's anonymous connector: a client outside ``trusted_networks`` may
  not use one of our own domains in ``MAIL FROM`` (refused at MAIL) or in the header ``From:``
  or ``Sender:`` (refused at the end of DATA): ``550 5.7.1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
import sqlite3
from email.header import decode_header, make_header
from typing import Any, cast

from aiosmtpd.smtp import SMTP, Envelope, Session

from graphpost.domain import addresses
from graphpost.errors import StoreError
from graphpost.ports.directory import User
from graphpost.services.directory import DirectoryService, Reach
from graphpost.services.ingest import IngestService

log = logging.getLogger("graphpost.smtp")

SESSION_SECONDS = 600.0  # RFC 5321 §4.5.3.2: ten minutes for the whole of a DATA transfer
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


NULL_SENDER = "<>"  # MAIL FROM:<>, kept as aiosmtpd needs a reverse path to take RCPT


def _bad_address(address: str) -> bool:
    """Not an address this server will take (the one validator of the API's sends: controls,
    spaces, bytes that were not UTF-8, no ``@`` ...)."""
    return addresses.problem(address) is not None


def _permanent(exc: BaseException) -> bool:
    """Whether storing failed for good (a 5xx: never retry) rather than for now (451). Only a
    database that cannot be reached or is busy is "for now"; a value it refuses is for good."""
    if not isinstance(exc, StoreError):
        return True  # the message itself could not be read or stored
    cause = exc.__cause__
    if isinstance(cause, sqlite3.DataError | sqlite3.IntegrityError):
        return True
    # PostgreSQL: class 22 data exception, 23 integrity violation, 54 program limit exceeded
    return str(getattr(cause, "sqlstate", "") or "")[:2] in ("22", "23", "54")


_AT_DOMAIN = re.compile(r"@([^\s<>()\[\],;:\"@]+)")
_SENDER_FIELD = re.compile(rb"^(?:from|sender)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def _header_domains(data: bytes) -> set[str]:
    """Every domain written after an ``@`` in the From: and Sender: fields, raw and with
    encoded words decoded: an address, or an address shown as a display name. Regular
    expressions in linear time only: the standard library's address parser is quadratic or
    recursive on hostile headers, and this runs on the event loop."""
    end = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=-1)
    head = data[: end + 1] if end >= 0 else data
    found: set[str] = set()
    for match in _SENDER_FIELD.finditer(head):
        raw = match.group(1).decode("utf-8", "replace")
        texts = [raw]
        if "=?" in raw:
            with contextlib.suppress(Exception):  # undecodable: the raw text is checked
                texts.append(str(make_header(decode_header(raw))))
        for text in texts:
            found.update(addresses.domain_of("@" + d) for d in _AT_DOMAIN.findall(text))
    return found


class InboundHandler:
    def __init__(
        self,
        directory: DirectoryService,
        ingest: IngestService,
        *,
        trusted_networks: list[Network] | None = None,
        max_recipients: int = 500,
    ) -> None:
        self.max_recipients = max_recipients
        self.directory = directory
        self.ingest = ingest
        self.trusted_networks = (
            trusted_networks
            if trusted_networks is not None
            else [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        )

    def trusted(self, session: Session) -> bool:
        peer: Any = session.peer  # typed str by aiosmtpd; really the socket's peername tuple
        if not isinstance(peer, tuple) or not peer:
            return False
        try:
            ip = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.trusted_networks)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:  # fmt: skip
        if address.strip() == "<>":  # the null reverse path (RFC 5321 §4.5.5): a report
            envelope.mail_from = NULL_SENDER
            envelope.mail_options.extend(mail_options)
            return "250 2.1.0 OK"
        if address and _bad_address(address):
            return "553 5.1.7 Bad sender address syntax"
        if address and not self.trusted(session) and await self.directory.is_ours(address):
            return (
                f"550 5.7.1 <{address}>: Client not authorized to send as this sender "
                "(anonymous mail from one of our own domains)"
            )
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:  # fmt: skip
        address = address.strip()
        if _bad_address(address):
            return "501 5.1.3 Bad recipient address syntax"
        if len(envelope.rcpt_tos) >= self.max_recipients:
            return "452 4.5.3 Too many recipients"  # RFC 5321 §4.5.3.1.10: the rest later
        reach = (await self.directory.locate(address)).reach
        if reach is Reach.MAILBOX:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"
        if reach is Reach.NO_SUCH_USER:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        return f"550 5.7.1 <{address}>: Relay access denied"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        if not self.trusted(session):
            ours = {t.domain.lower() for t in await self.directory.tenants()}
            spoofed = sorted(_header_domains(data) & ours)
            if spoofed:
                return (
                    f"550 5.7.1 Client not authorized to send as {spoofed[0]} "
                    "(anonymous mail from one of our own domains)"
                )
        users: list[User] = []
        seen: set[str] = set()
        for rcpt in envelope.rcpt_tos:
            user = await self.directory.user(rcpt)
            if user is not None and user.id not in seen:
                seen.add(user.id)
                users.append(user)
        try:
            sender = None if envelope.mail_from == NULL_SENDER else envelope.mail_from
            copies = await self.ingest.deliver(data, users, sender=sender)
        except Exception as exc:
            if _permanent(exc):
                log.exception("an inbound message cannot be stored; refused for good")
                return "554 5.6.0 The message could not be read or stored; not accepted"
            log.exception("could not store an inbound message")
            return "451 4.3.0 Temporary failure storing the message; try again later"
        ids = ",".join(c.message.id[-12:] for c in copies)
        return f"250 2.0.0 OK: stored as {ids}"


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP with a cap on sessions, an idle timeout (any byte from the client
    counts; the time our own handlers take does not), a ceiling on a session's life, and a
    DATA reader that works in 64 KiB blocks rather than line by line.

    aiosmtpd reads DATA one line at a time through a stream buffer of 2 KB: about 0.4 s of
    the event loop per 10 MB message (measured), as much as parsing it. Here the terminator
    is found and the dots are unstuffed by bytes methods (C), a block at a time."""

    # the stream reader's limit: its buffer holds up to twice this before pausing the socket
    line_length_limit = 1 << 16

    def __init__(
        self, handler: Any, *, sessions: set[GuardedSMTP], max_sessions: int,
        idle_timeout: float, **options: Any,
    ) -> None:  # fmt: skip
        super().__init__(handler, timeout=idle_timeout, **options)
        self._sessions = sessions
        self._max_sessions = max_sessions
        self._refused = False
        self._life: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None and len(self._sessions) >= self._max_sessions:
            self._refused = True
            # uvloop's transports do not subclass asyncio's: typed by a cast, not isinstance
            writer = cast(asyncio.Transport, transport)
            writer.write(b"421 4.7.0 Too many connections, try again later\r\n")
            writer.close()
            return
        if self.transport is None:
            self._sessions.add(self)
            self._life = asyncio.get_running_loop().call_later(SESSION_SECONDS, self._timeout_cb)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._sessions.discard(self)
        if self._life is not None:
            self._life.cancel()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self.transport is not None and not self.transport.is_closing():
            self._reset_timeout()

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        return super().eof_received()

    def _timeout_cb(self) -> None:
        transport = cast(asyncio.Transport | None, self.transport)
        if transport is not None and not transport.is_closing():
            transport.write(b"421 4.4.2 Timeout, closing the connection\r\n")
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        limit = self.data_size_limit or 0
        buf = bytearray(b"\r\n")  # a line break before the first line: one terminator rule
        dropped = 0  # bytes read past the size limit and thrown away
        while True:
            chunk = await self._reader.read(1 << 16)
            if not chunk:  # the client went away mid-DATA
                self.envelope = self._create_envelope()
                return
            start = max(0, len(buf) - 4)
            buf += chunk
            end = buf.find(b"\r\n.\r\n", start)
            if end >= 0:
                rest = bytes(buf[end + 5 :])
                del buf[end + 2 :]
                if rest:  # a pipelined command: back to the reader for the command loop
                    self._reader._buffer[:0] = rest  # type: ignore[attr-defined]
                break
            if limit and len(buf) - 2 > limit:
                dropped += len(buf) - 4  # over the limit: keep reading, keep nothing
                del buf[:-4]
        if dropped:
            self.envelope = self._create_envelope()
            await self.push("552 Error: Too much mail data")
            return
        content = bytes(buf).replace(b"\r\n.", b"\r\n")[2:]  # RFC 5321 §4.5.2
        if limit and len(content) > limit:
            self.envelope = self._create_envelope()
            await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = content
        self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()
        await self.push(status)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        # storing a large message is our time, not the client's: no idle timeout meanwhile
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        try:
            return await super()._call_handler_hook(command, *args)
        finally:
            if self.transport is not None and not self.transport.is_closing():
                self._reset_timeout()


class InboundServer:
    """aiosmtpd on this event loop (no thread)."""

    def __init__(
        self,
        handler: InboundHandler,
        *,
        host: str,
        port: int,
        hostname: str,
        max_bytes: int,
        idle_timeout: float = 60.0,
        max_sessions: int = 100,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.sessions: set[GuardedSMTP] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def factory() -> Any:
            return GuardedSMTP(
                self.handler,
                sessions=self.sessions,
                max_sessions=self.max_sessions,
                idle_timeout=self.idle_timeout,
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
