"""Outbound SMTP to the configured relay: one session per submission, an answer per recipient.

Outcomes are values, not exceptions: each recipient gets (code, enhanced code, text); a relay
that cannot be reached gives every recipient a temporary failure.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

_ENHANCED = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b\s*")


@dataclass(frozen=True, slots=True)
class Reply:
    code: int | None  # None: no answer (connection refused, dropped, timed out)
    enhanced: str | None
    text: str

    @property
    def kind(self) -> str:
        """delivered (2xx), deferred (4xx or no answer) or failed (5xx)."""
        if self.code is None or 400 <= self.code < 500:
            return "deferred"
        if 200 <= self.code < 300:
            return "delivered"
        return "failed"


def reply(code: int | None, text: str) -> Reply:
    text = " ".join(str(text).split())
    m = _ENHANCED.match(text)
    return Reply(code, m.group(1) if m else None, text[m.end() :] if m else text)


class DeliveryTransport(Protocol):
    async def send(self, sender: str, recipients: list[str], mime: bytes) -> dict[str, Reply]: ...


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
    """DeliveryTransport over aiosmtplib to one relay."""

    def __init__(self, config: RelayConfig, *, helo: str, timeout: float) -> None:
        self.config = config
        self.helo = helo
        self.timeout = timeout
        self._closing: set[asyncio.Task[None]] = set()

    def _tls(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def send(self, sender: str, recipients: list[str], mime: bytes) -> dict[str, Reply]:
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
        results: dict[str, Reply] = {}
        try:
            await client.connect()
            await client.ehlo()
            if c.starttls != "off" and client.supports_extension("starttls"):
                await client.starttls(tls_context=self._tls())
                await client.ehlo()
            elif c.starttls == "require":
                return {r: reply(None, "the relay does not offer STARTTLS") for r in recipients}
            if c.username:
                await client.login(c.username, c.password or "")
            await client.mail(sender)
            accepted: list[str] = []
            for rcpt in recipients:
                try:
                    await client.rcpt(rcpt)
                    accepted.append(rcpt)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    results[rcpt] = reply(exc.code, exc.message)
            if accepted:
                try:
                    answer = await client.data(mime)
                    done = reply(answer.code, answer.message)
                except aiosmtplib.SMTPDataError as exc:
                    done = reply(exc.code, exc.message)
                for rcpt in accepted:
                    results[rcpt] = done
            else:
                await client.rset()
        except aiosmtplib.SMTPSenderRefused as exc:
            return {r: reply(exc.code, exc.message) for r in recipients}
        except aiosmtplib.SMTPResponseException as exc:
            missing = reply(exc.code, exc.message)
            return {r: results.get(r, missing) for r in recipients}
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            missing = reply(None, f"relay {c.host}:{c.port} unreachable: {exc}")
            # a recipient refused before the failure keeps its answer
            return {r: results.get(r, missing) for r in recipients}
        finally:
            if client.is_connected:
                # QUIT after the answers are handed back: the outcome is recorded at once, so
                # a crash cannot fall between the relay's 250 and our record of it for long.
                task = asyncio.create_task(self._quit(client))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        return results

    @staticmethod
    async def _quit(client: aiosmtplib.SMTP) -> None:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
