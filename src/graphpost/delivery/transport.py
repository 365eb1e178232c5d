"""Outbound SMTP to the configured relay: one session per submission, an answer per recipient.

Outcomes are values, not exceptions: each recipient gets (code, enhanced code, text); a relay
that cannot be reached gives every recipient a temporary failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from graphpost.domain.text import one_line
from graphpost.ports.outbox import DeliveryState

_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b\s*")
# what can never go on an SMTP command line: controls, space, DEL, angle brackets (a quoted
# local part may hold spaces, never controls)
_UNSENDABLE = re.compile(r"[\x00-\x20\x7f<>]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
log = logging.getLogger("graphpost.delivery")

# a message: its bytes, or (a large one) a function that streams them, anew on each call
Mime = bytes | Callable[[], AsyncIterator[bytes]]
_PERIOD_AT_LINE_START = re.compile(rb"(?<=\n)\.")
_LINE_END = re.compile(rb"\r\n|\n|\r")


async def stream_data(
    client: aiosmtplib.SMTP, chunks: AsyncIterator[bytes], seconds: float
) -> aiosmtplib.SMTPResponse:
    """DATA with a message streamed in chunks (aiosmtplib's ``data`` takes it whole): each
    chunk's line ends made CRLF (a bare CR or LF, which an attached message/rfc822 file may
    hold as it is, could otherwise end the DATA early at a lenient relay: SMTP smuggling), a
    period at a line start doubled (across chunk boundaries too, as aiosmtplib does for a whole
    message), and written after the transport drained the one before, so that at most one
    chunk waits in memory. Uses aiosmtplib's protocol the way its own
    ``execute_data_command`` does."""
    protocol = client.protocol
    if protocol is None or protocol._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    async with protocol._command_lock:
        protocol._response_pending = True
        protocol.write(b"DATA\r\n")
        start = await protocol.read_response(timeout=seconds)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        at_line_start, ended, held = True, True, b""
        async for chunk in chunks:
            data = held + chunk
            # a CR at the end may be the first half of a CRLF split between two chunks
            held = b"\r" if data.endswith(b"\r") else b""
            data = data[: len(data) - len(held)]
            if not data:
                continue
            stuffed = _PERIOD_AT_LINE_START.sub(b"..", _LINE_END.sub(b"\r\n", data))
            if at_line_start and stuffed.startswith(b"."):
                stuffed = b"." + stuffed
            at_line_start = stuffed.endswith(b"\n")
            ended = stuffed.endswith(b"\r\n")
            protocol.write(stuffed)
            async with asyncio.timeout(seconds):
                await protocol._drain_helper()
        if held:
            protocol.write(b"\r\n")
            ended = True
        protocol._response_pending = True
        protocol.write((b"" if ended else b"\r\n") + b".\r\n")
        answer = await protocol.read_response(timeout=seconds)
        if answer.code != 250:
            raise aiosmtplib.SMTPDataError(answer.code, answer.message)
        return answer


@dataclass(frozen=True, slots=True)
class Reply:
    code: int | None  # None: no answer (connection refused, dropped, timed out)
    enhanced: str | None
    text: str

    @property
    def kind(self) -> DeliveryState:
        """delivered (2xx), failed (5xx), else deferred: 4xx, no answer, or an answer that is
        not an SMTP reply (aiosmtplib's -1), which refused nothing."""
        if self.code is not None and 200 <= self.code < 300:
            return DeliveryState.DELIVERED
        if self.code is not None and 500 <= self.code < 600:
            return DeliveryState.FAILED
        return DeliveryState.DEFERRED


def reply(code: int | None, text: str) -> Reply:
    # the relay's text as it is stored and shown: one line, storable (a relay may answer in
    # bytes that are not UTF-8, which the client hands over as surrogate escapes)
    text = one_line(str(text))[:2000]
    if code is not None and not 200 <= code < 600:
        # aiosmtplib's -1: a line that is not an SMTP reply (no code), a temporary failure
        code, text = None, f"the relay's answer is not an SMTP reply: {text}"
    m = _ENHANCED.match(text)
    return Reply(code, m.group(1) if m else None, text[m.end() :] if m else text)


def refusal(address: str, *, smtputf8: bool) -> Reply | None:
    """Why ``address`` cannot be given to this relay (a permanent failure), or None.

    Checked here as well as before the 202: mail queued by an older version, or an address
    that only this relay cannot take (non-ASCII without SMTPUTF8), fails alone and at once
    instead of failing the whole transaction on every retry.
    """
    local, _, domain = address.rpartition("@")
    quoted = len(local) >= 2 and local[0] == local[-1] == '"'
    if (
        not local
        or not domain
        or _UNSENDABLE.search(domain)
        or (_CONTROL.search(local) if quoted else _UNSENDABLE.search(local))
    ):
        return Reply(553, "5.1.3", f"invalid address {address!r}: not a valid SMTP mailbox")
    if not address.isascii() and not smtputf8:
        return Reply(
            553,
            "5.6.7",
            f"the relay does not offer SMTPUTF8, which the non-ASCII address {address!r} needs",
        )
    return None


def _unread(client: aiosmtplib.SMTP) -> bool:
    """Bytes the relay sent that no command asked for (replies beyond the last one read): a
    connection in that state would pair the next command with a stale answer, and could
    record a recipient delivered that the relay never took. aiosmtplib keeps them in its
    protocol's buffer; it has no public way to ask."""
    protocol = getattr(client, "protocol", None)
    return bool(getattr(protocol, "_buffer", b""))


class DeliveryTransport(Protocol):
    async def send(self, sender: str, recipients: list[str], mime: Mime) -> dict[str, Reply]:
        """An answer for every recipient; never raises."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: str  # "opportunistic", "require", "off"
    verify: bool

    @classmethod
    def parse(cls, url: str) -> RelayConfig:
        """smtp://user:pass@host:port, smtps://… (implicit TLS); ?starttls=require|off,
        ?verify=false for a relay with a self-signed certificate."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"GRAPHPOST_SMTP_RELAY must look like smtp://host:port, not {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls="off" if implicit else query.get("starttls", "opportunistic"),
            verify=query.get("verify", "true").lower() != "false",
        )


class SmtpTransport:
    """DeliveryTransport over aiosmtplib to one relay, keeping up to ``pool_size`` connections
    open between messages (no connect, EHLO, STARTTLS and AUTH per message)."""

    def __init__(
        self, config: RelayConfig, *, helo: str, timeout: float, pool_size: int = 16
    ) -> None:
        self.config = config
        self.helo = helo
        self.timeout = timeout
        self._closing: set[asyncio.Task[None]] = set()
        self._idle: list[aiosmtplib.SMTP] = []
        self.pool_size = pool_size

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _connect(self) -> aiosmtplib.SMTP:
        c = self.config
        client = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            local_hostname=self.helo,
            timeout=self.timeout,
            use_tls=c.implicit_tls,
            start_tls=False,
            tls_context=self._tls() if c.implicit_tls else None,
        )
        try:
            await client.connect()
            await client.ehlo()
            if c.starttls != "off" and client.supports_extension("starttls"):
                await client.starttls(tls_context=self._tls())
                await client.ehlo()
            elif c.starttls == "require":
                raise aiosmtplib.SMTPException("the relay does not offer STARTTLS")
            if c.username:
                await client.login(c.username, c.password or "")
        except BaseException:
            client.close()
            raise
        return client

    def _release(self, client: aiosmtplib.SMTP) -> None:
        if _unread(client):
            client.close()  # out of step with the relay: its next answer is not ours
        elif client.is_connected and len(self._idle) < self.pool_size:
            self._idle.append(client)
        elif client.is_connected:
            task = asyncio.create_task(self._quit(client))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def send(self, sender: str, recipients: list[str], mime: Mime) -> dict[str, Reply]:
        """One SMTP transaction, on a pooled connection when one is idle. Never raises: an
        unexpected error is a temporary failure for every recipient, and the connection it
        happened on is closed."""
        try:
            return await self._send(sender, recipients, mime)
        except Exception as exc:
            log.exception("relay transaction failed unexpectedly")
            text = f"internal error talking to the relay: {type(exc).__name__}: {exc}"
            return {r: reply(None, text) for r in recipients}

    async def _send(self, sender: str, recipients: list[str], mime: Mime) -> dict[str, Reply]:
        """A pooled connection the relay has closed meanwhile fails before any recipient was
        answered: then the transaction is tried once more on a fresh connection."""
        while self._idle:
            client = self._idle.pop()
            if not client.is_connected or _unread(client):
                client.close()
                continue
            results, untouched = await self._on(client, sender, recipients, mime)
            if not untouched:
                return results
            break  # the pooled connection was dead: try a new one
        try:
            client = await self._connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            c = self.config
            return {
                r: reply(None, f"relay {c.host}:{c.port} unreachable: {exc}") for r in recipients
            }
        results, _ = await self._on(client, sender, recipients, mime)
        return results

    async def _on(
        self, client: aiosmtplib.SMTP, sender: str, recipients: list[str], mime: Mime
    ) -> tuple[dict[str, Reply], bool]:
        """The transaction on ``client``; afterwards the connection goes back to the pool or
        is closed, whatever happened."""
        reusable = False
        try:
            results, reusable, untouched = await self._transaction(client, sender, recipients, mime)
        finally:
            if reusable:
                self._release(client)
            else:
                client.close()
        return results, untouched

    async def _transaction(
        self, client: aiosmtplib.SMTP, sender: str, recipients: list[str], mime: Mime
    ) -> tuple[dict[str, Reply], bool, bool]:
        """(answers, connection still usable, failed before the relay answered anything)."""
        utf8 = client.supports_extension("smtputf8")
        results: dict[str, Reply] = {}
        sendable: list[str] = []
        for rcpt in recipients:
            refused = refusal(rcpt, smtputf8=utf8)
            if refused is None:
                sendable.append(rcpt)
            else:
                results[rcpt] = refused
        refused_sender = refusal(sender, smtputf8=utf8)
        if refused_sender is not None:
            return {r: results.get(r, refused_sender) for r in recipients}, True, False
        if not sendable:
            return results, True, False
        wide = not sender.isascii() or not all(r.isascii() for r in sendable)
        options = ["SMTPUTF8"] if wide else []
        encoding = "utf-8" if wide else "ascii"
        answered = False
        try:
            await client.mail(sender, options=options, encoding=encoding)
            answered = True
            accepted: list[str] = []
            for rcpt in sendable:
                try:
                    await client.rcpt(rcpt, encoding=encoding)
                    accepted.append(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    results[rcpt] = reply(exc.code, exc.message)
            if accepted:
                try:
                    if isinstance(mime, bytes):
                        answer = await client.data(mime)
                    else:
                        answer = await stream_data(client, mime(), self.timeout)
                    done = reply(answer.code, answer.message)
                except aiosmtplib.SMTPDataError as exc:
                    done = reply(exc.code, exc.message)
                for rcpt in accepted:
                    results[rcpt] = done
            else:
                await client.rset()
            return results, True, False
        except aiosmtplib.SMTPSenderRefused as exc:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.rset()
            refused = reply(exc.code, exc.message)
            return {r: results.get(r, refused) for r in recipients}, client.is_connected, False
        except aiosmtplib.SMTPResponseException as exc:
            missing = reply(exc.code, exc.message)
            return {r: results.get(r, missing) for r in recipients}, False, False
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            c = self.config
            missing = reply(None, f"relay {c.host}:{c.port} unreachable: {exc}")
            # a recipient refused before the failure keeps its answer
            return {r: results.get(r, missing) for r in recipients}, False, not answered

    async def close(self) -> None:
        while self._idle:
            await self._quit(self._idle.pop())

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
