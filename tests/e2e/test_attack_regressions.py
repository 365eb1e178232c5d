"""Regressions found by a hostile pass over the delivery pipeline, inbound SMTP and the API
(issue 7 follow-up). Each test is named after what it protects and runs a real
`graphpost serve` on SQLite and on PostgreSQL.

The relay tests use ``WeirdRelay``: a tiny asyncio SMTP server that misbehaves on command
(the first recipient's local part, ``mode-<name>@…``, names the behaviour), for the answers
aiosmtpd will not give: undecodable reply text, stray replies, malformed lines.

The stall tests poll a cheap GET (`/.well-known/jwks.json`) while the hostile work runs and
fail when one answer takes longer than ``STALL_LIMIT``: far above a healthy answer (a few ms)
and far below what was measured before the fix (seconds), so they are not timing-sensitive.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.delivery_checks import (
    ALEX,
    LogWatch,
    attempts_allowed,
    engine_server,
    inbox_subjects,
    location_id,
    nested_multipart,
    wait_final,
)
from tests.sink import wait_for

ENGINES = ["sqlite", "postgresql"]
STALL_LIMIT = 1.0  # seconds one cheap GET may take while hostile work runs (5-9 s before)
HEAD = b"From: someone@example.org\r\nTo: AdeleV@contoso.onmicrosoft.com\r\n"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ------------------------------------------------------------------ a relay that misbehaves


class WeirdRelay:
    """An SMTP relay on a thread of its own. Modes (first RCPT ``mode-<mode>@…``):

    - ``ok``: a normal relay;
    - ``data-8bit``: accepts the message, and its ``250`` carries bytes that are not UTF-8
      (``\\xff\\xfe``) and a NUL, as a relay quoting a remote server's text may;
    - ``rcpt-8bit``: refuses that recipient with ``550`` and Latin-1 text, accepts the others;
    - ``data-extra``: answers the end of DATA with ``250`` and then two stray replies;
    - ``rcpt-garbage-once``: the first time, answers the RCPT with a line that is not a reply;
    - ``data-hang``: takes the message and never answers the end of DATA.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.received: Counter[str] = Counter()  # mode → messages fully received (end of DATA)
        self.sessions: Counter[str] = Counter()  # mode → transactions started
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> WeirdRelay:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        """End every session (a hung one too), so that none is destroyed while pending."""
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", self.port))
        self._ready.set()
        self.loop.run_forever()

    async def _session(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            w.write(b"220 weird ESMTP\r\n")
            mode: str | None = None
            while line := await r.readline():
                cmd = line.decode("latin-1").strip()
                verb = cmd[:4].upper()
                if verb in ("EHLO", "HELO"):
                    w.write(b"250-weird\r\n250-8BITMIME\r\n250 PIPELINING\r\n")
                elif verb == "MAIL":
                    mode = None
                    w.write(b"250 2.1.0 ok\r\n")
                elif verb == "RCPT":
                    address = cmd.split("<", 1)[1].split(">", 1)[0].lower()
                    if mode is None:
                        mode = address.split("@")[0].removeprefix("mode-")
                        self.sessions[mode] += 1
                    if mode == "rcpt-8bit" and address.startswith("mode-"):
                        w.write(b"550 5.1.1 Benutzer unbekannt: \xfc\xe4\xf6 \xff\r\n")
                    elif mode == "rcpt-garbage-once" and self.sessions[mode] == 1:
                        w.write(b"hello there\r\n")
                    else:
                        w.write(b"250 2.1.5 ok\r\n")
                elif verb == "DATA":
                    w.write(b"354 go ahead\r\n")
                    await w.drain()
                    while (body := await r.readline()) != b".\r\n":
                        if not body:
                            return
                    self.received[mode or ""] += 1
                    if mode == "data-hang":
                        await asyncio.sleep(3600)  # never answers the end of DATA
                    if mode == "data-8bit":
                        w.write(b"250 2.0.0 queued as \xff\xfe\x00 ok\r\n")
                    elif mode == "data-extra":
                        w.write(b"250 2.0.0 queued\r\n250 stray\r\n550 5.0.0 stray\r\n")
                    else:
                        w.write(b"250 2.0.0 queued\r\n")
                elif verb in ("RSET", "NOOP"):
                    w.write(b"250 ok\r\n")
                elif verb == "QUIT":
                    w.write(b"221 bye\r\n")
                    await w.drain()
                    break
                else:
                    w.write(b"502 5.5.2 not implemented\r\n")
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()


@pytest.fixture
def weird_relay() -> Iterator[WeirdRelay]:
    relay = WeirdRelay().start()
    yield relay
    relay.stop()


def send_mail(server: RunningServer, message: dict[str, Any]) -> str:
    with server.client() as c:
        r = c.post("/me/sendMail", json={"message": message, "saveToSentItems": True})
    assert r.status_code == 202, r.text
    return location_id(r.headers["location"])


def to(*addresses: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": a}} for a in addresses]


def states(status: dict[str, Any]) -> dict[str, str]:
    return {x["emailAddress"]["address"]: x["status"] for x in status["recipients"]}


# ------------------------------------------------------------------ relay answers


@pytest.mark.parametrize("mode", ["data-8bit", "rcpt-8bit"])
def test_relay_reply_text_that_is_not_utf8_is_recorded_and_never_resent(
    engine: str, mode: str, tmp_path: Path, request: pytest.FixtureRequest,
    weird_relay: WeirdRelay,
) -> None:  # fmt: skip
    """A relay's reply whose text holds bytes that are not UTF-8 (or a NUL) — a relay quoting
    a remote server's Latin-1 text does this. Found: aiosmtplib hands the text on with
    surrogate escapes, recording the outcome fails ("cannot be stored") on both engines, the
    lease runs out, and the message is sent again and again: a duplicate storm to the
    accepted recipient, and the delivery never ends."""
    with engine_server(engine, tmp_path / "srv", request, relay=weird_relay.url) as server:
        log = LogWatch(server.data_dir / "server.log")
        other = f"other-{uuid.uuid4().hex[:8]}@example.net"
        mid = send_mail(
            server, {"subject": tag(mode), "toRecipients": to(f"mode-{mode}@example.net", other)}
        )
        statuses, pending = wait_final(server, [mid], timeout=15)
        problems = []
        if weird_relay.received[mode] != 1:
            problems.append(f"the relay received the message {weird_relay.received[mode]} times")
        if pending:
            problems.append(f"never reached a final state: {states(statuses[mid])}")
        elif states(statuses[mid])[other] != "delivered":
            problems.append(f"the accepted recipient ended {states(statuses[mid])}")
        if storm := log.storm(most=attempts_allowed()):
            problems.append(storm)
        assert not problems, "\n".join(problems)


def test_pooled_relay_connection_with_stray_replies_never_reports_unsent_mail_delivered(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, weird_relay: WeirdRelay
) -> None:
    """A relay that writes more replies than it was asked for (after the end of DATA). Found:
    the connection goes back to the pool with the stray replies unread; the next message's
    MAIL, RCPT and DATA read the previous answers, one recipient fails with the stray ``550``
    and the other is recorded ``delivered`` from a RCPT answer although the relay never
    received that message (silent loss)."""
    with engine_server(engine, tmp_path / "srv", request, relay=weird_relay.url) as server:
        first = send_mail(server, {"subject": tag("stray"), "toRecipients": to(
            "mode-data-extra@example.net")})  # fmt: skip
        _, pending = wait_final(server, [first], timeout=15)
        assert not pending
        other = f"other-{uuid.uuid4().hex[:8]}@example.net"
        second = send_mail(
            server, {"subject": tag("after"), "toRecipients": to("mode-after@example.net", other)}
        )
        statuses, pending = wait_final(server, [second], timeout=15)
        got = states(statuses[second])
        delivered = [a for a, s in got.items() if s == "delivered"]
        assert weird_relay.received["after"] >= 1 or not delivered, (
            f"recorded delivered without the relay receiving the message: {got}"
        )
        assert not pending and set(got.values()) == {"delivered"}, got
        assert weird_relay.received["after"] == 1, weird_relay.received


def test_one_malformed_relay_reply_is_a_temporary_failure(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, weird_relay: WeirdRelay
) -> None:
    """A line from the relay that is not an SMTP reply at all (no code): found recorded as a
    permanent failure with status code -1 for every recipient of the message, on the first
    try. Nothing was refused; it is a temporary failure (retried), as for no answer."""
    with engine_server(engine, tmp_path / "srv", request, relay=weird_relay.url) as server:
        other = f"other-{uuid.uuid4().hex[:8]}@example.net"
        mid = send_mail(server, {"subject": tag("garbage"), "toRecipients": to(
            "mode-rcpt-garbage-once@example.net", other)})  # fmt: skip
        statuses, pending = wait_final(server, [mid], timeout=15)
        codes = [a.get("statusCode") for x in statuses[mid]["recipients"] for a in x["attempts"]]
        recipients = statuses[mid]["recipients"]
        assert not pending and set(states(statuses[mid]).values()) == {"delivered"}, recipients
        assert -1 not in codes, codes


def test_a_hung_relay_transaction_does_not_hold_up_other_deliveries(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, weird_relay: WeirdRelay
) -> None:
    """The relay takes one message and never answers its end of DATA (relay timeout 20 s
    here, 30 s by default, and per command: a relay answering each RCPT just in time holds a
    500-recipient message for hours). Found: the worker waits for every submission of a
    round before it claims again, so a message to a local mailbox sent one second later
    waited ~19 s, on both engines: one stuck session holds up all delivery."""
    with engine_server(
        engine, tmp_path / "srv", request, relay=weird_relay.url,
        GRAPHPOST_SMTP_TIMEOUT_SECONDS="20",
    ) as server:  # fmt: skip
        send_mail(server, {"subject": tag("hang"), "toRecipients": to(
            "mode-data-hang@example.net")})  # fmt: skip
        wait_for(lambda: weird_relay.received["data-hang"], what="the relay to take the message")
        local = send_mail(server, {"subject": tag("local"), "toRecipients": to(ALEX)})
        statuses, pending = wait_final(server, [local], timeout=8)
        assert not pending, f"a local delivery waited behind the hung relay: {statuses[local]}"


# ------------------------------------------------------------------ inbound SMTP


UNPARSEABLE = {
    # parsedate_to_datetime raises OverflowError, which mime.parse does not catch
    "date-year-overflow": HEAD + b"Subject: date\r\nDate: 1 Jan 9999999999 00:00:00 +0000\r\n"
    b"\r\nbody\r\n",
    # the address parser recurses once per comment level: RecursionError
    "from-nested-comments": b"From:" + b"\r\n ((((((((((((((((((((" * 100 + b"a@b.example\r\n"
    b"To: AdeleV@contoso.onmicrosoft.com\r\nSubject: comments\r\n\r\nbody\r\n",
    "content-type-nested-comments": HEAD + b"Subject: ctype\r\nContent-Type: text/plain"
    + b"\r\n ((((((((((((((((((((" * 100 + b"\r\n\r\nbody\r\n",
    # the parser and get_body recurse per level: RecursionError
    "multipart-1500-deep": HEAD + b"Subject: deep\r\n" + nested_multipart(1500),
}  # fmt: skip


def smtp_send(server: RunningServer, raw: bytes) -> tuple[int, str]:
    """Send ``raw`` to Adele over inbound SMTP: (the final reply code, its text)."""
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as c:
        c.ehlo()
        c.mail("someone@example.org")
        code, text = c.rcpt("AdeleV@contoso.onmicrosoft.com")
        assert code == 250, (code, text)
        code, text = c.data(raw)
        return code, text.decode("utf-8", "replace")


@pytest.mark.parametrize("kind", list(UNPARSEABLE))
def test_inbound_mail_the_parser_cannot_read_is_not_deferred_forever(
    server: RunningServer, kind: str
) -> None:
    """Found: each of these answers ``451 4.3.0`` (mime.parse raises), so the sending MTA
    retries it for days and it is never accepted. A message we will never accept must get a
    5xx; better, it is stored as well as it can be read (250)."""
    code, text = smtp_send(server, UNPARSEABLE[kind])
    assert not 400 <= code < 500, (code, text)


def smtp_dialogue(server: RunningServer, commands: list[bytes]) -> list[bytes]:
    """Raw bytes to inbound SMTP (smtplib will not send what is not ASCII): the last reply
    line to each command."""
    answers: list[bytes] = []
    with socket.create_connection(("127.0.0.1", server.smtp_port), timeout=30) as s:
        reader = s.makefile("rb")
        reader.readline()  # the greeting
        for command in [*commands, b"QUIT"]:
            s.sendall(command + b"\r\n")
            while (line := reader.readline())[3:4] == b"-":
                pass
            answers.append(line.strip())
    return answers


UNSTORABLE_RECIPIENTS = {
    "nul-local": b"Adele\x00V@contoso.onmicrosoft.com",
    "nul-domain": b"x@contoso\x00.example",
    "not-utf8": b"\xff\xfe@contoso.onmicrosoft.com",
    "utf8-surrogate": b"\xed\xa0\x80@contoso.onmicrosoft.com",
}


@pytest.mark.parametrize("kind", list(UNSTORABLE_RECIPIENTS))
def test_inbound_recipient_with_unstorable_bytes_is_refused_alike_on_both_engines(
    server: RunningServer, kind: str
) -> None:
    """RCPT TO with a NUL or bytes that are not UTF-8. Found: the directory lookup raises
    (InvalidInputError: the value cannot be stored) and aiosmtpd answers with the exception
    itself, ``500 Error: (InvalidInputError) A value in this request cannot be stored…``,
    with a traceback in the log; for a NUL SQLite answers ``550 5.1.1`` / ``550 5.7.1`` and
    PostgreSQL the 500. Such a recipient is refused by our own rule, the same on both."""
    answers = smtp_dialogue(
        server,
        [
            b"EHLO attacker.example",
            b"MAIL FROM:<a@example.org>",
            b"RCPT TO:<" + UNSTORABLE_RECIPIENTS[kind] + b">",
        ],
    )
    rcpt = answers[2]
    assert rcpt[:1] == b"5" and rcpt[:3] != b"500", rcpt
    assert b"Error: (" not in rcpt, rcpt


@contextmanager
def worst_cheap_get(server: RunningServer) -> Iterator[Callable[[], float]]:
    """Poll `/.well-known/jwks.json` on another thread while the block runs; yields a function
    giving the slowest answer seen (seconds)."""
    worst = [0.0]
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=server.base, timeout=120) as c:
            while not stop.is_set():
                t = time.perf_counter()
                c.get("/.well-known/jwks.json")
                worst[0] = max(worst[0], time.perf_counter() - t)
                time.sleep(0.01)

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.1)
    try:
        yield lambda: worst[0]
    finally:
        stop.set()
        thread.join()


def _many_parameters(header: bytes, count: int) -> bytes:
    return header + b"".join(b";\r\n p%d=v" % i for i in range(count))


def test_inbound_header_with_many_parameters_does_not_stall_the_api(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A 200 KB Content-Type (20,000 folded parameters; each line short, so aiosmtpd takes
    it): the standard library's header parser is quadratic in the parameter count and
    `mime.parse` runs on the event loop. Found: every API request waited ~9 s."""
    raw = HEAD + b"Subject: params\r\n" + _many_parameters(b"Content-Type: text/plain", 20000)
    raw += b"\r\n\r\nbody\r\n"
    with (
        engine_server(engine, tmp_path / "srv", request, relay=None) as server,
        worst_cheap_get(server) as worst,
    ):
        code, text = smtp_send(server, raw)
    assert code == 250, (code, text)
    assert worst() < STALL_LIMIT, f"a cheap GET waited {worst():.2f} s"


def _attached_message_send(server: RunningServer, inner: bytes, subject: str) -> str:
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "forwarded.eml",
        "contentType": "message/rfc822",
        "contentBytes": base64.b64encode(inner).decode(),
    }
    return send_mail(
        server,
        {"subject": subject, "toRecipients": to(ALEX), "attachments": [attachment]},
    )


def test_local_delivery_of_an_attached_message_does_not_stall_the_api(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """sendMail (any Mail.Send token) to a local user with a message/rfc822 attachment whose
    Content-Type has 20,000 parameters (140 KB): the local delivery parses it on the event
    loop. Found: the API stopped answering for ~5 s per such message."""
    inner = (
        b"From: a@example.org\r\nSubject: inner\r\n"
        + _many_parameters(b"Content-Type: text/plain", 20000)
        + b"\r\n\r\nbody\r\n"
    )
    subject = tag("attached-params")
    with (
        engine_server(engine, tmp_path / "srv", request, relay=None) as server,
        worst_cheap_get(server) as worst,
    ):
        mid = _attached_message_send(server, inner, subject)
        statuses, pending = wait_final(server, [mid], timeout=60)
    assert not pending and states(statuses[mid])[ALEX] == "delivered", statuses[mid]
    assert worst() < STALL_LIMIT, f"a cheap GET waited {worst():.2f} s"


def test_local_recipient_gets_a_deeply_nested_attached_message_like_a_remote_one(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A message/rfc822 attachment nested 1500 multiparts deep (a valid message, 100 KB): it
    goes out to the relay unchanged, but found: local delivery raises RecursionError in
    mime.parse on every attempt, stalls the event loop ~2 s each time, and ends in a
    non-delivery report. The local recipient must get it as a remote one does."""
    inner = b"From: a@example.org\r\nSubject: deep\r\n" + nested_multipart(1500)
    subject = tag("attached-deep")
    with engine_server(engine, tmp_path / "srv", request, relay=None) as server:
        mid = _attached_message_send(server, inner, subject)
        statuses, pending = wait_final(server, [mid], timeout=30)
        assert not pending, statuses[mid]
        assert states(statuses[mid])[ALEX] == "delivered", statuses[mid]["recipients"]
        assert len(inbox_subjects(server, ALEX, subject)) == 1


def test_send_of_a_large_html_body_is_delivered(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """sendMail (any Mail.Send token) of a 3.8 MB HTML body of empty tags to a local and a
    remote recipient. The work is linear but all of it runs on the event loop, several
    times over: the preview on submit, `html_to_text` for the plain alternative in
    `mime.build`, `mime.parse` and the preview again for the local copy. Found: ~1.3 s during
    which no request was answered, per such message."""
    html = "<script>" * 480_000
    with engine_server(engine, tmp_path / "srv", request, relay=None) as server:
        with server.client() as c:
            r = c.post("/me/sendMail", json={"message": {
                "subject": tag("big-html"), "body": {"contentType": "html", "content": html},
                "toRecipients": to(ALEX)}})  # fmt: skip
        assert r.status_code == 202, r.text
        statuses, pending = wait_final(server, [location_id(r.headers["location"])], timeout=30)
    # what is left of the stall (the text alternative of 3.8 MB of markup, written on the
    # loop) is ~0.3 s, too close to any fixed limit to assert here without flakiness
    assert not pending, statuses


# ------------------------------------------------------------------ queries


def test_orderby_on_long_subjects_does_not_stall_the_api(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Subjects have no length limit (a 1 MB subject is stored), and `$orderby` takes the
    same property up to 32 times. Each key sorts on ``lower(m.subject)``, recomputed per
    comparison, and SQLite queries run on the event loop. Found on SQLite: 40 messages with
    1 MB subjects and ``$orderby=subject`` 32 times held every API request for ~6 s (PostgreSQL
    answers in 0.5 s without stalling)."""
    with engine_server(engine, tmp_path / "srv", request, relay=None) as server:
        with server.client() as c:
            r = c.post("/me/mailFolders", json={"displayName": tag("long-subjects")})
            assert r.status_code == 201, r.text
            folder = r.json()["id"]
            for i in range(40):
                subject = chr(ord("A") + i % 26) * 1_000_000
                r = c.post(f"/me/mailFolders/{folder}/messages", json={"subject": subject})
                assert r.status_code in (201, 400), r.text  # a 400: subjects are capped
            with worst_cheap_get(server) as worst:
                r = c.get(
                    f"/me/mailFolders/{folder}/messages",
                    params={"$orderby": ",".join(["subject"] * 32), "$select": "id", "$top": "1"},
                )
        assert r.status_code in (200, 400), r.text
        assert worst() < STALL_LIMIT, f"a cheap GET waited {worst():.2f} s"


# ------------------------------------------------------------------ what goes on the wire


def named(address: str, name: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": address, "name": name}}]


LONG_FIELDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "recipient-name": lambda a: {"toRecipients": named(a, "n" * 2000)},
    "recipient-name-words": lambda a: {"toRecipients": named(a, "n " * 1000)},
    "reply-to-name": lambda a: {"toRecipients": to(a),
                                "replyTo": named("r@example.org", "r" * 2000)},
    "attachment-name": lambda a: {"toRecipients": to(a), "attachments": [
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "f" * 2000 + ".txt",
         "contentBytes": "aGk="}]},
    "attachment-name-quotes": lambda a: {"toRecipients": to(a), "attachments": [
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": '"' * 2000,
         "contentBytes": "aGk="}]},
    "inline-content-id": lambda a: {"toRecipients": to(a),
        "body": {"contentType": "html", "content": "<img src='cid:x'>"}, "attachments": [
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "i.png",
         "contentType": "image/png", "isInline": True, "contentId": "c" * 2000,
         "contentBytes": "aGk="}]},
}  # fmt: skip


@pytest.mark.parametrize("field", list(LONG_FIELDS))
def test_long_names_are_folded_so_the_relay_takes_the_message(
    server: RunningServer, sink: Any, field: str
) -> None:
    """A 2000-character display name, attachment name or content id is accepted (202), but
    found: the MIME writer puts it on one header line longer than RFC 5322's 998 characters,
    the relay refuses the whole message (``500 Line too long``) and every recipient fails.
    Long values must be folded (RFC 5322 §2.2.3, RFC 2231 continuations) or refused with a
    400 before the 202."""
    address = f"long-{uuid.uuid4().hex[:8]}@example.net"
    with server.client() as c:
        r = c.post("/me/sendMail", json={"message": {"subject": tag("long"),
                                                      **LONG_FIELDS[field](address)}})  # fmt: skip
    if r.status_code == 400:
        assert r.json()["error"]["code"], r.text
        return
    assert r.status_code == 202, r.text
    mid = location_id(r.headers["location"])
    statuses, pending = wait_final(server, [mid], timeout=20)
    assert not pending and states(statuses[mid])[address] == "delivered", statuses[mid]
    assert len(sink.messages_for(address)) == 1


# ------------------------------------------------------------------ the engines agree


def test_concurrent_sends_of_one_draft_answer_alike_on_both_engines(
    server: RunningServer, sink: Any
) -> None:
    """Twenty clients POST /send on the same draft at once (a client retrying on a timeout).
    Sending a message already sent is a no-op (202), and SQLite answers 202 to all; found on
    PostgreSQL: some get ``412 ErrorIrresolvableConflict`` "The draft changed or was sent
    while it was being sent". Either way the recipient must get exactly one copy."""
    address = f"race-{uuid.uuid4().hex[:8]}@example.net"
    with server.client() as c:
        r = c.post("/me/messages", json={"subject": tag("race"), "toRecipients": to(address)})
        assert r.status_code == 201, r.text
        draft = r.json()["id"]

    def send(_: int) -> int:
        with server.client() as c:
            return c.post(f"/me/messages/{draft}/send").status_code

    with ThreadPoolExecutor(20) as pool:
        codes = Counter(pool.map(send, range(20)))
    statuses, pending = wait_final(server, [draft], timeout=20)
    assert not pending and len(sink.messages_for(address)) == 1, statuses[draft]
    assert codes == Counter({202: 20}), codes
