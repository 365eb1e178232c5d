"""Delivery safety (issue 7): hostile input never loops, never duplicates, never takes the
server down. Each test is named after what it protects and runs a real `graphpost serve` on
SQLite and on PostgreSQL, with a short retry policy, against a real aiosmtpd relay.

Every delivery ends (delivered or failed, within the retry policy), a recipient gets one copy,
the sender one non-delivery report, the process keeps its file descriptors, and the log shows
no error repeated faster than the retry policy allows.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.delivery_checks import (
    ADELE,
    ALEX,
    FdWatch,
    LogWatch,
    attempts_allowed,
    delivery_status,
    engine_server,
    inbox_copies,
    inbox_subjects,
    location_id,
    wait_final,
)
from tests.sink import Sink, wait_for

ENGINES = ["sqlite", "postgresql"]


def tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def plain_relay() -> Iterator[Sink]:
    """A relay that does not offer SMTPUTF8, like many real ones."""
    sink = Sink(smtputf8=False).start()
    yield sink
    sink.stop()


def send_mail(
    server: RunningServer, message: dict[str, Any], *, save: bool = True
) -> httpx.Response:
    with server.client() as c:
        return c.post("/me/sendMail", json={"message": message, "saveToSentItems": save})


def assert_graph_400(r: httpx.Response) -> None:
    assert r.status_code == 400, (r.status_code, r.text)
    error = r.json()["error"]
    assert error["code"] and error["message"], r.text


def to(*addresses: str, name: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in addresses:
        email: dict[str, Any] = {"address": a}
        if name is not None:
            email["name"] = name
        out.append({"emailAddress": email})
    return out


def warm_up(server: RunningServer, sink: Sink) -> None:
    """One ordinary message through the relay, so pools are open before the fd baseline."""
    subject = tag("warm")
    r = send_mail(server, {"subject": subject, "toRecipients": to(f"{subject}@example.net")})
    assert r.status_code == 202, r.text
    wait_for(lambda: sink.with_subject(subject), what="the warm-up message")


def ndr_count(server: RunningServer, subject_prefix: str) -> int:
    return len(inbox_subjects(server, ADELE, f"Undeliverable: {subject_prefix}"))


# -- finding 1: an address the relay cannot be sent ------------------------------------------

BAD_ADDRESSES = {  # kind → (local part, display name)
    "non-ascii": ("bøb", None),
    "non-ascii-named": ("bøb", "Bøb Builder"),
    "nul": ("nul\x00bob", None),
    "del": ("del\x7fbob", None),
    "backspace": ("bs\x08bob", None),
}


def test_unsendable_address_ends_and_the_valid_recipient_gets_one_copy(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest, plain_relay: Sink
) -> None:
    """sendMail to a good address and one that cannot go on the wire (non-ASCII to a relay
    without SMTPUTF8; NUL, DEL or backspace in the local part): either a Graph 400 before the
    202 (never for the non-ASCII one: RFC 6531 allows it), or the good recipient delivered
    exactly once, the bad one failed with a clear reason, no socket leaked, no log storm."""
    with engine_server(engine, tmp_path / "srv", request, relay=plain_relay.url) as server:
        warm_up(server, plain_relay)
        fds = FdWatch(server.process.pid)
        log = LogWatch(server.data_dir / "server.log")
        problems: list[str] = []
        sent: dict[str, tuple[str, str]] = {}  # kind → (message id, good address)
        for kind, (local, name) in BAD_ADDRESSES.items():
            good = f"ok-{uuid.uuid4().hex[:8]}@example.com"
            rcpts = to(good) + to(f"{local}@example.com", name=name)
            r = send_mail(server, {"subject": tag(f"unsendable {kind}"), "toRecipients": rcpts})
            if r.status_code == 400 and not kind.startswith("non-ascii"):
                assert_graph_400(r)
            elif r.status_code != 202:
                problems.append(f"{kind}: sendMail answered {r.status_code} {r.text[:300]}")
            else:
                sent[kind] = (location_id(r.headers["location"]), good)
        statuses, pending = wait_final(server, [mid for mid, _ in sent.values()], timeout=20)
        copies = plain_relay.copies()
        for kind, (mid, good) in sent.items():
            status = statuses[mid]
            got = copies[(status["internetMessageId"], good.lower())]
            if got != 1:
                problems.append(f"{kind}: the valid recipient got {got} copies")
            if mid in pending:
                left = [(x["emailAddress"]["address"], x["status"]) for x in status["recipients"]]
                problems.append(f"{kind}: never reached a final state: {left}")
                continue
            by = {x["emailAddress"]["address"]: x for x in status["recipients"]}
            if by[good]["status"] != "delivered":
                problems.append(f"{kind}: the valid recipient is {by[good]['status']}")
            (other,) = [x for a, x in by.items() if a != good]
            if other["status"] != "failed" or not other["response"]:
                problems.append(f"{kind}: the bad recipient ended {other}")
            elif kind.startswith("non-ascii") and "smtputf8" not in other["response"].lower():
                problems.append(f"{kind}: the reason does not name SMTPUTF8: {other['response']}")
        if not pending and ndr_count(server, "unsendable") != len(sent):
            problems.append(f"{ndr_count(server, 'unsendable')} reports for {len(sent)} failures")
        count = fds.settled()
        if count > fds.baseline + fds.slack:
            problems.append(f"open file descriptors grew from {fds.baseline} to {count}")
        if storm := log.storm(most=attempts_allowed() * len(sent)):
            problems.append(storm)
        assert not problems, "\n".join(problems)


def test_non_ascii_address_goes_out_when_the_relay_offers_smtputf8(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sink = Sink(smtputf8=True).start()
    try:
        with engine_server(engine, tmp_path / "srv", request, relay=sink.url) as server:
            subject = tag("smtputf8")
            good, utf8 = f"ok-{uuid.uuid4().hex[:8]}@example.com", "bøb@example.com"
            r = send_mail(server, {"subject": subject, "toRecipients": to(good, utf8)})
            assert r.status_code == 202, r.text
            mid = location_id(r.headers["location"])
            statuses, pending = wait_final(server, [mid], timeout=20)
            imid = statuses[mid]["internetMessageId"]
            assert sink.copies()[(imid, good.lower())] == 1
            assert sink.copies()[(imid, utf8)] == 1
            assert not pending and statuses[mid]["status"] == "delivered", statuses[mid]
            assert any(r.smtputf8 for r in sink.messages_for(utf8))
    finally:
        sink.stop()


# -- finding 2: a bounce for a message whose subject is not a header value -------------------

ODD_SUBJECTS = {"crlf": "first line\r\nBcc: injected@example.org", "u2028": "one\u2028two"}


@pytest.mark.parametrize("failure", ["relay-550", "unknown-local-user"])
def test_bounce_of_an_odd_subject_sends_the_good_recipient_once(
    engine: str, failure: str, tmp_path: Path, request: pytest.FixtureRequest, plain_relay: Sink
) -> None:
    """A subject with CR/LF or U+2028 and one recipient that fails for good: the good
    recipient gets exactly one copy, the sender exactly one non-delivery report, and the
    delivery ends. (CR/LF may instead be refused at the edge with a Graph 400.)"""
    with engine_server(engine, tmp_path / "srv", request, relay=plain_relay.url) as server:
        log = LogWatch(server.data_dir / "server.log")
        problems: list[str] = []
        sent: dict[str, tuple[str, str, str]] = {}  # kind → (message id, prefix, good)
        for kind, odd in ODD_SUBJECTS.items():
            prefix = tag(f"odd-{kind}")
            good = f"good-{uuid.uuid4().hex[:8]}@example.net"
            if failure == "relay-550":
                bad = f"gone-{uuid.uuid4().hex[:8]}@example.net"
                # refused on every try (a retry of the whole message meets the same 550)
                plain_relay.answer(bad, *[f"550 5.1.1 <{bad}>: user unknown"] * 100)
            else:
                bad = f"nobody-{uuid.uuid4().hex[:8]}@contoso.onmicrosoft.com"
            r = send_mail(server, {"subject": f"{prefix} {odd}", "toRecipients": to(good, bad)})
            if kind == "crlf" and r.status_code == 400:
                assert_graph_400(r)
            elif r.status_code != 202:
                problems.append(f"{kind}: sendMail answered {r.status_code} {r.text[:300]}")
            else:
                sent[kind] = (location_id(r.headers["location"]), prefix, good)
        statuses, pending = wait_final(server, [mid for mid, _, _ in sent.values()], timeout=20)
        copies = plain_relay.copies()
        for kind, (mid, prefix, good) in sent.items():
            got = copies[(statuses[mid]["internetMessageId"], good.lower())]
            if got != 1:
                problems.append(f"{kind}: the good recipient got {got} copies")
            if mid in pending:
                problems.append(f"{kind}: never reached a final state: {statuses[mid]['status']}")
                continue
            if statuses[mid]["status"] != "partiallyFailed":
                problems.append(f"{kind}: ended {statuses[mid]['status']}, not partiallyFailed")
            reports = ndr_count(server, prefix)
            if reports != 1:
                problems.append(f"{kind}: {reports} non-delivery reports, not 1")
        for received in plain_relay.handler.received:
            if "injected@example.org" in received.rcpt_tos:
                problems.append("the CR/LF subject added a recipient")
        if storm := log.storm(most=2 * len(sent)):
            problems.append(storm)
        assert not problems, "\n".join(problems)


# -- finding 3: a local delivery that the database cannot store ------------------------------

ODD_NAMES = {
    "nul": "Alex\x00Wilber",
    "del": "Alex\x7fWilber",
    "escape": "Alex\x1b[31mWilber",
    "u2028": "Alex\u2028Wilber",
}


def test_odd_recipient_name_to_a_local_user_is_refused_or_delivered_once(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A NUL (or another odd character) in a local recipient's name, not saved to Sent Items:
    a Graph 400 at the edge, or delivered once; no error loop in the log."""
    with engine_server(engine, tmp_path / "srv", request, relay=None) as server:
        log = LogWatch(server.data_dir / "server.log")
        problems: list[str] = []
        sent: dict[str, str] = {}
        for kind, name in ODD_NAMES.items():
            message = {"subject": tag(f"odd name {kind}"), "toRecipients": to(ALEX, name=name)}
            r = send_mail(server, message, save=False)
            if r.status_code == 400:
                assert_graph_400(r)
            elif r.status_code != 202:
                problems.append(f"{kind}: sendMail answered {r.status_code} {r.text[:300]}")
            else:
                assert r.headers["location"].endswith("/deliveryStatus")
                sent[kind] = location_id(r.headers["location"])
        statuses, pending = wait_final(server, sent.values(), timeout=20)
        for kind, mid in sent.items():
            status = statuses[mid]
            if mid in pending:
                problems.append(f"{kind}: never reached a final state: {status['status']}")
            elif status["status"] != "delivered":
                problems.append(f"{kind}: ended {status['status']}: {status['recipients']}")
            elif (n := inbox_copies(server, ALEX, status["internetMessageId"])) != 1:
                problems.append(f"{kind}: {n} copies in the Inbox")
        if storm := log.storm(most=0):
            problems.append(storm)
        assert not problems, "\n".join(problems)


# -- finding 3, inbound: mail with a NUL byte or bytes that are not UTF-8 ---------------------

RAW_INBOUND = {
    "nul-in-body": b"Subject: {tag}\r\n\r\nbefore\x00after\r\n",
    "nul-in-subject": b"Subject: {tag} a\x00b\r\n\r\nbody\r\n",
    "nul-in-from-name": b"From: Some\x00One <someone@example.org>\r\nSubject: {tag}\r\n\r\nb\r\n",
    "8bit-invalid-utf8-subject": b"Subject: {tag} caf\xe9 \xff\xfe\r\n\r\nbody\r\n",
    "invalid-utf8-body": (
        b"Subject: {tag}\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        b"caf\xe9 \xed\xa0\x80 \xff\r\n"
    ),
    "nul-in-html-base64": (
        b"Subject: {tag}\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PGI+YQBiPC9iPg==\r\n"
    ),
}


def smtp_send(server: RunningServer, raw: bytes) -> tuple[int, bytes]:
    """DATA's answer (or the first refusal) for ``raw`` from an outside sender to Adele."""
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.ehlo("outside.example.org")
        code, text = client.mail("someone@example.org")
        if code != 250:
            return code, text
        code, text = client.rcpt(ADELE)
        if code != 250:
            return code, text
        return client.data(raw)


@pytest.mark.parametrize("kind", list(RAW_INBOUND))
def test_inbound_mail_with_nul_or_invalid_utf8_is_accepted_and_readable(
    server: RunningServer, kind: str
) -> None:
    """Inbound SMTP never answers 4xx for a message it will never accept: such mail is
    accepted (250) and readable through the API on both engines (a permanent 5xx, the same
    on every try, would be a clean outcome too)."""
    mark = tag(kind)
    raw = RAW_INBOUND[kind].replace(b"{tag}", mark.encode())
    code, text = smtp_send(server, raw)
    assert not 400 <= code < 500, f"temporary refusal for a message that will never go in: {text!r}"
    if code >= 500:
        assert smtp_send(server, raw)[0] == code, "a permanent refusal must stay the same"
        return
    assert code == 250, (code, text)
    (got,) = wait_for(lambda: inbox_subjects(server, ADELE, mark), what="the received message")
    with server.client() as c:
        full = c.get(f"/me/messages/{got['id']}")
        assert full.status_code == 200, full.text
        assert full.json()["subject"].startswith(mark)
        headers = c.get(f"/me/messages/{got['id']}?$select=internetMessageHeaders")
        assert headers.status_code == 200, headers.text


def test_delivery_status_of_a_message_not_saved(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The tests above follow unsaved sends through the Location of their 202."""
    with engine_server(engine, tmp_path / "srv", request, relay=None) as server:
        r = send_mail(server, {"subject": tag("unsaved"), "toRecipients": to(ALEX)}, save=False)
        assert r.status_code == 202, r.text
        mid = location_id(r.headers["location"])
        status = wait_for(
            lambda: (s := delivery_status(server, mid))["status"] == "delivered" and s
        )
        assert status["savedToSentItems"] is False
        assert inbox_copies(server, ALEX, status["internetMessageId"]) == 1
