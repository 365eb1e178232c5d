"""Hostile MIME, through the MIME API (POST …/messages with text/plain) and through inbound
SMTP: malformed structure, absurd nesting, huge headers, foreign and unknown charsets,
zero-byte and duplicate attachments, CR/LF smuggled into headers. Each is refused with a
Graph error or stored faithfully, never a 500; and nothing smuggled reaches a header of the
mail that goes out (read at the SMTP sink)."""

from __future__ import annotations

import base64
import re
import smtplib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import ADELE, assert_error, inbox_items, unique
from tests.sink import Received, Sink, wait_for

TEXT_PLAIN = {"Content-Type": "text/plain"}
INJECTED = re.compile(rb"^(x-evil|bcc)\s*:", re.IGNORECASE | re.MULTILINE)


def nested(depth: int) -> bytes:
    out = b""
    for i in range(depth):
        out += f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
    out += b"Content-Type: text/plain\r\n\r\nat the bottom\r\n"
    for i in reversed(range(depth)):
        out += f"--b{i}--\r\n".encode()
    return out


def smuggling(subject: str, to: str) -> bytes:
    """CR/LF smuggled into every header a sender controls, as encoded words, RFC 2231
    parameters and folds; and a bare CR, which the parser (like many readers) takes for a
    line end: the sender's own second header, which must go out as one, unambiguously."""
    return (
        f"To: =?utf-8?q?Victim=0D=0ABcc=3A_evil=40example.com?= <{to}>\r\n"
        f"Subject: {subject} =?utf-8?q?=0D=0AX-Evil=3A_subject?=\r\n"
        "X-Note: =?utf-8?q?one=0D=0AX-Evil=3A_header?=\r\n"
        "X-Bare: one\rX-Split: bare-cr\r\n"
        "In-Reply-To: <a@b>\r\n =?utf-8?q?=0D=0AX-Evil=3A_thread?=\r\n"
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n"
        "--b\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "hello\r\n"
        "--b\r\n"
        "Content-Type: text/plain; name*=utf-8''n%0D%0AX-Evil:%20name.txt\r\n"
        "Content-Disposition: attachment; filename*=utf-8''f%0D%0AX-Evil:%20file.txt\r\n"
        "Content-ID: <cid\r\n X-Evil: cid>\r\n"
        "\r\n"
        "data\r\n"
        "--b--\r\n"
    ).encode()


def hostile(to: str) -> dict[str, bytes]:
    head = f"To: {to}\r\nSubject: ".encode()
    return {
        "deep": head + b"deep\r\nMIME-Version: 1.0\r\n" + nested(1000),
        "huge-subject": head + b"S" * 500_000 + b"\r\n\r\nbody\r\n",
        "many-headers": head + b"many\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(20_000)) + b"\r\nbody\r\n",
        "latin-1": head + b"=?iso-8859-1?q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\ncaf\xe9\r\n",
        "shift_jis": head + b"sjis\r\nContent-Type: text/plain; charset=shift_jis\r\n\r\n"
        + "日本語".encode("shift_jis") + b"\r\n",
        "unknown-charset": head + b"=?x-unknown?q?caf=E9?=\r\n"
        b"Content-Type: text/plain; charset=x-unknown\r\n\r\ncaf\xe9 \xff\r\n",
        # charsets whose codec refuses even with errors="replace"
        "refusing-charsets": head + b"=?undefined?q?caf=E9?= =?idna?q?=FF?=\r\n"
        b"Content-Type: text/plain; charset=undefined\r\n"
        b"Content-Disposition: attachment; filename*=idna''caf%E9.txt\r\n\r\ncaf\xe9\r\n",
        "bad-utf-8": head + b"bad\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xff\xc3(\r\n",
        "unterminated": head + b"u\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nno end",
        "no-boundary": head + b"nb\r\nContent-Type: multipart/mixed\r\n\r\nno parts\r\n",
        "bad-base64": head + b"b64\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!@@@\r\n--b--\r\n",
        "nul": head + b"a\x00b\r\nX-Nul: \x00\r\n\r\nb\x00c\r\n",
        "far-date": head + b"far\r\nDate: Fri, 31 Dec 9999 23:59:59 -2359\r\n\r\nlate\r\n",
        "early-date": head + b"early\r\nDate: Mon, 1 Jan 1900 00:00:00 +0000\r\n\r\nx\r\n",
    }  # fmt: skip


def post(c: httpx.Client, raw: bytes) -> httpx.Response:
    return c.post("/me/messages", content=base64.b64encode(raw), headers=TEXT_PLAIN)


def assert_clean(received: Received) -> None:
    """The header block: CRLF lines only, none longer than 998, nothing smuggled."""
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b""), "a bare LF in the headers"
    assert b"\r" not in head.replace(b"\r\n", b""), "a bare CR in the headers"
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert INJECTED.search(head) is None, head
    for part in received.message.walk():  # and the parts' headers too
        for name in part:
            assert name.lower() not in ("x-evil", "bcc"), name


def test_hostile_mime_drafts_are_stored_or_refused(server: RunningServer) -> None:
    with server.client() as c:
        for name, raw in hostile("someone@example.net").items():
            r = post(c, raw)
            assert r.status_code == 201, (name, r.text)
            got = r.json()
            assert got["isDraft"] is True, name
            # what a reader gets back is the stored draft, as MIME, too
            value = c.get(f"/me/messages/{got['id']}/$value")
            assert value.status_code == 200, (name, value.text)
        by_name = {n: post(c, raw).json() for n, raw in hostile("x@example.net").items()}
    assert by_name["latin-1"]["subject"] == "café"
    assert by_name["latin-1"]["body"]["content"] == "café\r\n"
    assert by_name["shift_jis"]["body"]["content"] == "日本語\r\n"
    assert "\ufffd" in by_name["unknown-charset"]["body"]["content"]
    assert by_name["nul"]["subject"] == "a\ufffdb"
    assert "at the bottom" in by_name["deep"]["body"]["content"]
    assert by_name["huge-subject"]["subject"] == "S" * 500_000
    # a Date past 9999-12-31 in UTC is no date (the draft's is its creation); 1900 is one
    assert by_name["far-date"]["sentDateTime"] == by_name["far-date"]["createdDateTime"]
    assert by_name["early-date"]["sentDateTime"] == "1900-01-01T00:00:00Z"


def test_zero_byte_and_duplicate_attachments(server: RunningServer) -> None:
    raw = (
        b"To: x@example.net\r\nSubject: dupes\r\nContent-Type: multipart/mixed; boundary=b\r\n"
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=same.bin\r\n\r\n"
        b"\r\n--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename=same.bin\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n"
    )
    with server.client() as c:
        r = post(c, raw)
        assert r.status_code == 201, r.text
        found = c.get(f"/me/messages/{r.json()['id']}/attachments").json()["value"]
    assert sorted((a["name"], a["size"]) for a in found) == [("same.bin", 0), ("same.bin", 3)]
    assert sorted(base64.b64decode(a["contentBytes"]) for a in found) == [b"", b"\x00\x01\x02"]


def test_smuggled_headers_never_go_out(server: RunningServer, sink: Sink) -> None:
    outside = f"{unique('victim')}@example.net"
    subject = unique("smuggle")
    with server.client() as c:
        r = post(c, smuggling(subject, outside))
        assert r.status_code == 201, r.text
        draft = r.json()
        assert "\r" not in draft["toRecipients"][0]["emailAddress"]["name"]
        assert [r["emailAddress"]["address"] for r in draft["toRecipients"]] == [outside]
        assert draft["bccRecipients"] == []
        found = c.get(f"/me/messages/{draft['id']}/attachments").json()["value"]
        assert all("\r" not in a["name"] and "\n" not in a["name"] for a in found)
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
        # and sendMail of the same MIME
        r = c.post("/me/sendMail", content=base64.b64encode(smuggling(subject, outside)),
                   headers=TEXT_PLAIN)  # fmt: skip
        assert r.status_code == 202, r.text
    got = wait_for(
        lambda: (
            [m for m in sink.handler.received if outside in m.rcpt_tos][:2]
            if len([m for m in sink.handler.received if outside in m.rcpt_tos]) >= 2
            else []
        ),
        what="both sends relayed",
    )
    for received in got:
        assert received.rcpt_tos == [outside]  # no smuggled Bcc recipient either
        assert_clean(received)
        assert received.message["Subject"].startswith(subject)
        mail = received.message
        assert (mail["X-Bare"], mail["X-Split"]) == ("one", "bare-cr")


def smtp_send(server: RunningServer, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as client:
        client.ehlo("hostile.example.org")
        client.mail("someone@example.org")
        code, _ = client.rcpt(ADELE)
        assert code == 250
        code, text = client.data(raw)
        return code, text


@pytest.mark.parametrize("name", sorted(hostile(ADELE)))
def test_hostile_mime_over_smtp(server: RunningServer, name: str) -> None:
    raw = hostile(ADELE)[name]
    marker = unique(name)
    raw = raw.replace(b"Subject: ", f"X-Marker: {marker}\r\nSubject: ".encode(), 1)
    code, text = smtp_send(server, raw)
    # accepted and stored (552 for a message over the size limit would also be an answer)
    assert code == 250, (name, code, text)
    with server.client() as c:

        def arrived() -> list[Any]:
            r = c.get("/me/mailFolders/inbox/messages", params={"$top": "50",
                      "$select": "subject,internetMessageHeaders"})  # fmt: skip
            assert r.status_code == 200, r.text
            tag = {"name": "X-Marker", "value": marker}
            return [m for m in r.json()["value"] if tag in m["internetMessageHeaders"]]

        [got] = wait_for(arrived, what=name)
        assert c.get(f"/me/messages/{got['id']}/$value").status_code == 200


def test_smuggled_headers_over_smtp_never_go_out_again(server: RunningServer, sink: Sink) -> None:
    """Received mail full of smuggled CR/LF, forwarded: the forward's headers are clean."""
    subject = unique("smuggled in")
    code, _ = smtp_send(server, smuggling(subject, ADELE))
    assert code == 250
    [got] = wait_for(lambda: [m for m in inbox_items(server, ADELE, subject + " X-Evil: subject")]
                     or inbox_items(server, ADELE, subject))  # fmt: skip
    outside = f"{unique('fwd')}@example.net"
    with server.client() as c:
        r = c.post(f"/me/messages/{got['id']}/forward", json={
            "toRecipients": [{"emailAddress": {"address": outside}}]})  # fmt: skip
        assert r.status_code == 202, r.text
    [received] = wait_for(lambda: [m for m in sink.handler.received if outside in m.rcpt_tos])
    assert received.rcpt_tos == [outside]
    assert_clean(received)


def test_a_parse_that_runs_out_of_time_is_a_400(tmp_path: Path) -> None:
    """A client's MIME is parsed under the received-mail time limit: one too slow to read is
    refused with Graph's error for unreadable MIME, and the next one is read as usual."""
    running = start_server(tmp_path / "slow", GRAPHPOST_MIME_PARSE_TIMEOUT_SECONDS="1")
    try:
        parts = b"".join(
            b"--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=p%d\r\n"
            b"\r\nx\r\n" % i
            for i in range(20_000)
        )
        raw = b"To: x@example.net\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        with running.client() as c:
            r = post(c, raw + parts + b"--b--\r\n")
            error = assert_error(r, 400, "ErrorMimeContentInvalid")
            assert "within 1 seconds" in str(error["message"])
            r = post(c, b"To: x@example.net\r\nSubject: quick\r\n\r\nfine\r\n")
            assert r.status_code == 201, r.text
    finally:
        running.stop()


def test_many_mime_drafts_at_once(server: RunningServer) -> None:
    subject = unique("at once")

    def one(i: int) -> int:
        with server.client() as c:
            raw = f"To: x@example.net\r\nSubject: {subject} {i}\r\n\r\nbody {i}\r\n".encode()
            return post(c, raw).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(one, range(24))) == [201] * 24
    with server.client() as c:
        query = {"$filter": f"startswith(subject, '{subject}')", "$count": "true", "$top": "1"}
        r = c.get("/me/mailFolders/drafts/messages", params=query)
        assert r.json()["@odata.count"] == 24


def test_tens_of_thousands_of_recipients(server: RunningServer) -> None:
    """More recipients than a statement takes parameters (32,767 on PostgreSQL): the directory
    names are looked up in chunks, on both engines, for MIME and JSON alike."""
    n = 20_000
    to = ",\r\n ".join(f"u{i}@example.net" for i in range(n))
    with server.client() as c:
        r = post(c, f"To: {to}\r\nSubject: many\r\n\r\nbody\r\n".encode())
        assert r.status_code == 201, r.text[:500]
        assert len(r.json()["toRecipients"]) == n
        people = [{"emailAddress": {"address": f"u{i}@example.net"}} for i in range(n)]
        r = c.post("/me/messages", json={"subject": "many", "toRecipients": people})
        assert r.status_code == 201, r.text[:500]
