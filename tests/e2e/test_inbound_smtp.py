"""Inbound SMTP with a real client (smtplib): local users' Inboxes, no open relay, limits."""

from __future__ import annotations

import base64
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import ADELE, ALEX, inbox_items, unique
from tests.ports import free_port
from tests.sink import Sink, wait_for


def test_mail_lands_in_the_inbox(server: RunningServer) -> None:
    subject = unique("inbound Ünïcode")
    msg = EmailMessage()
    msg["From"] = "Some One <someone@example.org>"
    msg["To"] = f"Adele <{ADELE}>"
    msg["Cc"] = ALEX
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{unique('mid')}@example.org>"
    msg["X-Origin"] = "outside"
    msg.set_content("plain version")
    msg.add_alternative("<p>html <b>version</b></p>", subtype="html")
    msg.add_attachment(b"col1,col2\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.ehlo("test.example.org")
        refused = client.send_message(msg, to_addrs=[ADELE, ALEX])
    assert refused == {}
    (got,) = wait_for(lambda: inbox_items(server, ADELE, subject))
    assert got["internetMessageId"] == msg["Message-ID"]
    assert got["from"]["emailAddress"] == {"name": "Some One", "address": "someone@example.org"}
    assert got["isRead"] is False and got["isDraft"] is False and got["hasAttachments"] is True
    assert got["body"]["contentType"] == "html" and "html <b>version</b>" in got["body"]["content"]
    assert got["bodyPreview"] == "html version"
    assert [r["emailAddress"]["address"] for r in got["ccRecipients"]] == [ALEX]
    with server.client() as c:
        headers = c.get(f"/me/messages/{got['id']}?$select=internetMessageHeaders").json()
        names = {h["name"] for h in headers["internetMessageHeaders"]}
        assert {"X-Origin", "Message-ID", "Subject"} <= names
        (att,) = c.get(f"/me/messages/{got['id']}/attachments").json()["value"]
        assert att["name"] == "data.csv" and att["contentType"] == "text/csv"
    assert len(inbox_items(server, ALEX, subject)) == 1


def test_not_an_open_relay(server: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        client.ehlo("x")
        client.mail("someone@example.org")
        code, text = client.rcpt("nobody@contoso.onmicrosoft.com")
        assert code == 550 and b"5.1.1" in text
        code, text = client.rcpt("victim@example.com")
        assert code == 550 and b"5.7.1" in text
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("someone@example.org", ["victim@example.com"], b"Subject: x\r\n\r\nx")


def test_smtp_command_alone(server: RunningServer) -> None:
    """`graphpost smtp` serves inbound SMTP on its own, into the same mailboxes."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "graphpost.cli.main", "smtp", "--smtp-port", str(port),
         "--data-dir", str(server.data_dir)],
        env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert f":{port}" in process.stdout.readline().decode()
        subject = unique("smtp alone")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("a@example.org", [ADELE], f"Subject: {subject}\r\n\r\nhi".encode())
        wait_for(lambda: inbox_items(server, ADELE, subject))
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Inbound SMTP that does not trust loopback, with few sessions and a short idle time."""
    running = start_server(
        tmp_path_factory.mktemp("guarded-smtp"),
        GRAPHPOST_SMTP_TRUSTED_NETWORKS="10.0.0.0/8, fd00::/8",
        GRAPHPOST_SMTP_MAX_SESSIONS="3",
        GRAPHPOST_SMTP_IDLE_TIMEOUT_SECONDS="2",
        GRAPHPOST_MAX_MESSAGE_BYTES="600000",
        GRAPHPOST_MIME_PARSE_TIMEOUT_SECONDS="2",
        GRAPHPOST_MAX_RECIPIENTS="3",
    )
    yield running
    running.stop()


def data_answer(server: RunningServer, mail_from: str, message: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        client.ehlo("outside.example.org")
        code, text = client.mail(mail_from)
        assert code == 250, text
        code, text = client.rcpt(ADELE)
        assert code == 250, text
        return client.data(message)


def test_spoofed_mail_from_refused_for_untrusted_clients(guarded: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", guarded.smtp_port, timeout=30) as client:
        client.ehlo("outside.example.org")
        for spoofed in (ADELE, "nobody@contoso.onmicrosoft.com", "X@CONTOSO.ONMICROSOFT.COM"):
            code, text = client.mail(spoofed)
            assert code == 550 and text.startswith(b"5.7.1"), (spoofed, code, text)
        code, _ = client.mail("someone@example.org")
        assert code == 250


@pytest.mark.parametrize(
    "header",
    [
        f"From: Adele Vance <{ADELE}>",
        f"From: someone@example.org, {ALEX}",
        f"Sender: {ALEX}\r\nFrom: someone@example.org",
        "From: =?utf-8?b?" + base64.b64encode(ADELE.encode()).decode() + "?=",
        "From: x <=?utf-8?q?adelev=40contoso.onmicrosoft.com?=>",
        "From: AdeleV@contoso.onmicrosoft.com\x00",
        "From: Group: AdeleV@Contoso.OnMicrosoft.com;",
        f'From: "{ADELE}" <someone@example.org>',
        "From: " + "(" * 5000 + ADELE,
        "From: " + '"' * 20000 + ADELE,
    ],
    ids=[
        "plain",
        "second-of-two",
        "sender",
        "encoded-word",
        "encoded-in-brackets",
        "nul",
        "group",
        "as-display-name",
        "nested-comments",
        "quotes",
    ],
)
def test_spoofed_header_from_refused_for_untrusted_clients(
    guarded: RunningServer, header: str
) -> None:
    subject = unique("spoof")
    message = f"{header}\r\nTo: {ADELE}\r\nSubject: {subject}\r\n\r\nIt is me, really.\r\n"
    code, text = data_answer(guarded, "someone@example.org", message.encode())
    assert code == 550 and text.startswith(b"5.7.1"), (code, text)
    assert inbox_items(guarded, ADELE, subject) == []


def test_outside_sender_still_delivered_when_untrusted(guarded: RunningServer) -> None:
    subject = unique("honest")
    message = (
        f'From: "Adele Vance" <someone@example.org>\r\nTo: {ADELE}\r\nSubject: {subject}\r\n'
        "\r\nhello\r\n"
    )
    code, _ = data_answer(guarded, "someone@example.org", message.encode())
    assert code == 250
    wait_for(lambda: inbox_items(guarded, ADELE, subject))


def test_trusted_network_may_send_as_own_domain(server: RunningServer) -> None:
    """Loopback is trusted by default: local submission as one of our users still works."""
    subject = unique("internal")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=30) as client:
        refused = client.sendmail(
            ADELE, [ALEX], f"From: {ADELE}\r\nTo: {ALEX}\r\nSubject: {subject}\r\n\r\nhi"
        )
    assert refused == {}
    wait_for(lambda: inbox_items(server, ALEX, subject))


def test_too_many_sessions_get_421(guarded: RunningServer) -> None:
    held = [smtplib.SMTP("127.0.0.1", guarded.smtp_port, timeout=30) for _ in range(3)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", guarded.smtp_port, timeout=30)
        assert refused.value.smtp_code == 421 and b"4.7.0" in refused.value.smtp_error
    finally:
        for client in held:
            client.quit()
    # the sessions are counted down again
    wait_for(lambda: smtplib.SMTP("127.0.0.1", guarded.smtp_port, timeout=30).quit())


def test_idle_session_is_closed(guarded: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", guarded.smtp_port), timeout=30) as sock:
        sock.sendall(b"EHLO slow.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<")
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert received.startswith(b"220 ")
    assert b"421 4.4.2" in received  # said why, then closed


def test_slow_data_is_cut_off(guarded: RunningServer) -> None:
    """A DATA that stops mid-way is closed; nothing half-stored."""
    subject = unique("stalled")
    with socket.create_connection(("127.0.0.1", guarded.smtp_port), timeout=30) as sock:
        sock.sendall(
            f"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<{ADELE}>\r\nDATA\r\n"
            f"Subject: {subject}\r\n\r\nhalf a message".encode()
        )
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    assert b"354 " in received and b"421 4.4.2" in received
    assert inbox_items(guarded, ADELE, subject) == []


@pytest.mark.parametrize(
    "body",
    [
        b"Subject: nul \x00 in the subject\r\n\r\nand \x00 in the body\r\n",
        b"Subject: broken \xff\xfe utf-8\r\nFrom: \xc3(x) <a@example.org>\r\n\r\n\xff\r\n",
        b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 2000,
    ],
    ids=["nul", "bad-utf8", "nested"],
)
def test_inbound_never_4xx_for_mail_it_will_never_take(server: RunningServer, body: bytes) -> None:
    """Stored (250) or refused for good (5xx): a 4xx would make the sender retry forever."""
    code, text = data_answer(server, "someone@example.org", body)
    assert code == 250 or 500 <= code < 600, (code, text)


def test_data_dots_sizes_and_pipelining(guarded: RunningServer) -> None:
    """The block-wise DATA reader: dot-stuffed lines come back whole, a terminator split across
    reads is found, an over-size message is refused (552) and the session goes on."""
    subject = unique("dots")
    lines = [".leading dot", "..two dots", ".", "x" * 5000, "end."]
    body = "\r\n".join(lines)
    big = "y" * 70 + "\r\n"
    with smtplib.SMTP("127.0.0.1", guarded.smtp_port, timeout=30) as client:
        client.ehlo("x")
        client.sendmail("a@example.org", [ADELE], f"Subject: {subject}\r\n\r\n{body}\r\n")
        client.mail("a@example.org")  # no SIZE: the limit is found while reading DATA
        client.rcpt(ADELE)
        code, _ = client.data(("Subject: big\r\n\r\n" + big * 9000).encode())
        assert code == 552
        assert client.noop()[0] == 250  # the session is usable after the refusal
        # a message just under the limit (600,000 bytes) is taken, arriving in many reads
        near = f"Subject: {subject} near\r\n\r\n" + big * 8000
        assert client.sendmail("a@example.org", [ADELE], near) == {}
    (got,) = wait_for(lambda: inbox_items(guarded, ADELE, subject))
    assert got["body"]["content"].rstrip("\r\n").split("\r\n") == lines
    wait_for(lambda: inbox_items(guarded, ADELE, f"{subject} near"))
    # the next command arriving in the same packet as the end of DATA is not lost
    with socket.create_connection(("127.0.0.1", guarded.smtp_port), timeout=30) as sock:
        piped = unique("piped")
        sock.sendall(
            f"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<{ADELE}>\r\nDATA\r\n".encode()
        )
        seen = b""
        while b"354" not in seen:
            seen += sock.recv(4096)
        sock.sendall(f"Subject: {piped}\r\n\r\nhi\r\n.\r\nQUIT\r\n".encode())
        while chunk := sock.recv(4096):
            seen += chunk
    assert b"250 2.0.0 OK" in seen and b"221 " in seen
    wait_for(lambda: inbox_items(guarded, ADELE, piped))


def test_large_mail_parsed_in_the_worker_pool(server: RunningServer) -> None:
    """A message over the offload size (256 KiB) is parsed in a worker process and stored the
    same as a small one: every byte of its attachment, on both engines."""
    subject = unique("large")
    payload = bytes(range(256)) * 8192  # 2 MiB
    msg = EmailMessage()
    msg["From"] = "big@example.org"
    msg["To"] = ADELE
    msg["Subject"] = subject
    msg.set_content("see the attachment")
    msg.add_attachment(payload, maintype="application", subtype="octet-stream", filename="b.bin")
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as client:
        assert client.send_message(msg) == {}
    (got,) = wait_for(lambda: inbox_items(server, ADELE, subject))
    with server.client() as c:
        (att,) = c.get(f"/me/messages/{got['id']}/attachments").json()["value"]
    assert att["name"] == "b.bin" and base64.b64decode(att["contentBytes"]) == payload


def test_pathological_mail_is_refused_not_parsed_forever(guarded: RunningServer) -> None:
    """60 KB of unclosed quoted parameters take the standard library's parser several seconds
    (a Content-Type of 20,000 parameters did too, until long structure headers were cut before
    parsing). It is parsed in a worker process, given up after the parse timeout (2 s here)
    with a 554, and the next message is stored as usual."""
    hostile = b"Subject: slow\r\nContent-Type: text/plain; " + b'a="b ' * 12_000 + b"\r\n\r\nx\r\n"
    code, text = data_answer(guarded, "someone@example.org", hostile)
    assert code == 554 and text.startswith(b"5.6.0"), (code, text)
    subject = unique("after")
    code, _ = data_answer(guarded, "someone@example.org", f"Subject: {subject}\r\n\r\nok".encode())
    assert code == 250
    wait_for(lambda: inbox_items(guarded, ADELE, subject))


def test_too_many_recipients_get_452(guarded: RunningServer) -> None:
    with smtplib.SMTP("127.0.0.1", guarded.smtp_port, timeout=30) as client:
        client.ehlo("x")
        client.mail("a@example.org")
        codes = [client.rcpt(ADELE)[0] for _ in range(5)]
    assert codes == [250, 250, 250, 452, 452]


def _smtp_send(server: RunningServer, msg: EmailMessage | bytes, to: str = ADELE) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=60) as client:
        if isinstance(msg, bytes):
            assert client.sendmail("someone@example.org", [to], msg) == {}
        else:
            assert client.send_message(msg, to_addrs=[to]) == {}


def _attached_message(subject: str) -> EmailMessage:
    """A message carrying an attached message (with a file and an attached message of its
    own) named by its file name, and one (a plain one) named by nothing but its subject."""
    deepest = EmailMessage()
    deepest["From"] = "deep@example.org"
    deepest["Subject"] = "the deepest"
    deepest.set_content("at the bottom")
    inner = EmailMessage()
    inner["From"] = "Inner Sender <inner@example.org>"
    inner["To"] = "Ïnner Rcpt <rcpt@example.net>"
    inner["Cc"] = "cc@example.net"
    inner["Subject"] = "the inner one"
    inner["Date"] = "Tue, 01 Dec 2026 10:20:30 +0100"
    inner["Message-ID"] = "<inner-1@example.org>"
    inner["X-Inner"] = "kept"
    inner.set_content("inner plain")
    inner.add_alternative("<p>inner <b>html</b></p>", subtype="html")
    inner.add_attachment(
        b"inner bytes", maintype="application", subtype="x-test", filename="in.bin"
    )
    inner.add_attachment(deepest)
    plain = EmailMessage()
    plain["From"] = "other@example.org"
    plain["Subject"] = "named by its subject"
    plain.set_content("plain one")
    msg = EmailMessage()
    msg["From"] = "Outer <outer@example.org>"
    msg["To"] = ADELE
    msg["Subject"] = subject
    msg.set_content("see attached")
    msg.add_attachment(inner)
    [part] = list(msg.iter_attachments())
    part.replace_header("Content-Disposition", 'attachment; filename="fwd.eml"')
    msg.add_attachment(plain)
    return msg


def test_an_attached_message_arrives_as_an_item(server: RunningServer, sink: Sink) -> None:
    """A received message/rfc822 part is an itemAttachment, as Exchange shows one: the inner
    message read by the same parser (its own attachments items again), its MIME back as
    ``$value``, and a forward carries it out as message/rfc822 again."""
    subject = unique("attached message")
    _smtp_send(server, _attached_message(subject))
    (got,) = wait_for(lambda: inbox_items(server, ADELE, subject))
    assert got["hasAttachments"] is True
    base = f"/me/messages/{got['id']}/attachments"
    with server.client() as c:
        atts = {a["name"]: a for a in c.get(base).json()["value"]}
        assert sorted(atts) == ["fwd.eml", "named by its subject"]
        for a in atts.values():
            assert a["@odata.type"] == "#microsoft.graph.itemAttachment"
            assert a["contentType"] is None and "contentBytes" not in a
        r = c.get(f"{base}/{atts['fwd.eml']['id']}",
                  params={"$expand": "microsoft.graph.itemAttachment/item"})  # fmt: skip
        assert r.status_code == 200, r.text
        item = r.json()["item"]
        value = c.get(f"{base}/{atts['fwd.eml']['id']}/$value")
        far = [{"emailAddress": {"address": "far@example.net"}}]
        forwarded = c.post(f"/me/messages/{got['id']}/forward", json={"toRecipients": far})
        assert forwarded.status_code == 202, forwarded.text
    assert item["subject"] == "the inner one" and item["isDraft"] is False
    assert item["from"]["emailAddress"] == {"name": "Inner Sender", "address": "inner@example.org"}
    assert item["toRecipients"] == [
        {"emailAddress": {"name": "Ïnner Rcpt", "address": "rcpt@example.net"}}
    ]
    assert [r["emailAddress"]["address"] for r in item["ccRecipients"]] == ["cc@example.net"]
    assert item["sentDateTime"] == item["receivedDateTime"] == "2026-12-01T09:20:30Z"
    assert item["internetMessageId"] == "<inner-1@example.org>"
    assert item["body"]["contentType"] == "html" and "inner <b>html</b>" in item["body"]["content"]
    assert {"name": "X-Inner", "value": "kept"} in item["internetMessageHeaders"]
    assert item["hasAttachments"] is True
    nested = {a["name"]: a for a in item["attachments"]}
    assert sorted(nested) == ["in.bin", "the deepest"]
    assert nested["in.bin"]["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert base64.b64decode(nested["in.bin"]["contentBytes"]) == b"inner bytes"
    assert nested["the deepest"]["@odata.type"] == "#microsoft.graph.itemAttachment"
    assert value.status_code == 200 and value.headers["content-type"] == "message/rfc822"
    again = message_from_bytes(value.content, policy=policy.default)
    assert again["Subject"] == "the inner one" and "inner@example.org" in again["From"]
    assert isinstance(again, EmailMessage)
    assert {p.get_filename() for p in again.iter_attachments()} >= {"in.bin"}
    (out,) = wait_for(lambda: sink.with_subject(f"FW: {subject}"))
    parts = [p for p in out.message.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert sorted(p.get_filename() for p in parts) == ["fwd.eml", "named by its subject"]
    (carried,) = [p for p in parts if p.get_filename() == "fwd.eml"]
    inner = carried.get_content()
    assert inner["Subject"] == "the inner one"
    files = {p.get_filename(): p for p in inner.iter_attachments() if p.get_filename()}
    assert files["in.bin"].get_payload(decode=True) == b"inner bytes"
    deepest = [p for p in inner.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert [p.get_content()["Subject"] for p in deepest] == ["the deepest"]


def _with_attached(subject: str, inner: bytes) -> bytes:
    return (
        (
            f"From: someone@example.org\r\nTo: {ADELE}\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
            "\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n"
            'Content-Disposition: attachment; filename="x.eml"\r\n\r\n'
        ).encode()
        + inner
        + b"\r\n--b--\r\n"
    )


def _nested_messages(depth: int) -> bytes:
    """``depth`` messages each attached to the one around it (one line of headers each)."""
    raw = b"From: a@example.org\r\nSubject: level %d\r\n\r\nbottom\r\n" % depth
    for level in range(depth - 1, 0, -1):
        raw = (
            b"From: a@example.org\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" % level
        ) + raw
    return raw


@pytest.mark.parametrize(
    ("case", "inner"),
    [
        ("garbage", b"\x00\xff\xfe not a message at all \r\n\x80\x81"),
        ("empty", b""),
        ("headerless", b"\r\njust a body"),
        ("deep", _nested_messages(100)),
        ("deep-40", _nested_messages(40)),
        ("deeper than the parser goes", _nested_messages(1000)),
        ("huge", b"From: a@example.org\r\nSubject: huge\r\n\r\n" + (b"y" * 998 + b"\r\n") * 5000),
    ],
)  # fmt: skip
def test_hostile_attached_messages_are_stored_and_served(
    server: RunningServer, case: str, inner: bytes
) -> None:
    """Garbage, empty, 40, 100 and 1000 deep, 5 MB: delivered, listed, expanded and served as
    MIME, never a 500. Not a message (no header a message has): a file attachment of message/rfc822;
    attached messages deeper than an item may nest (30 levels) stay files inside the last."""
    subject = unique(f"hostile rfc822 {case}")
    _smtp_send(server, _with_attached(subject, inner))
    (got,) = wait_for(lambda: inbox_items(server, ADELE, subject), timeout=60)
    base = f"/me/messages/{got['id']}/attachments"
    with server.client() as c:
        atts = c.get(base).json()["value"]
        if case == "deeper than the parser goes":
            # the standard library's parser recurses on it: read plainly, all of it the body
            assert atts == [] and got["hasAttachments"] is False
            full = c.get(f"/me/messages/{got['id']}").json()
            assert "Subject: level 1000" in full["body"]["content"]
            assert c.get(f"/me/messages/{got['id']}/$value").status_code == 200
            return
        assert len(atts) == 1, atts
        (att,) = atts
        expanded = c.get(f"{base}/{att['id']}",
                         params={"$expand": "microsoft.graph.itemAttachment/item"})  # fmt: skip
        value = c.get(f"{base}/{att['id']}/$value")
        mime_value = c.get(f"/me/messages/{got['id']}/$value")
    assert expanded.status_code == value.status_code == mime_value.status_code == 200
    if case in ("garbage", "empty", "headerless"):
        assert att["@odata.type"] == "#microsoft.graph.fileAttachment"
        assert att["contentType"] == "message/rfc822"
        return
    assert att["@odata.type"] == "#microsoft.graph.itemAttachment"
    item = expanded.json()["item"]
    if case == "huge":
        assert item["subject"] == "huge" and len(item["body"]["content"]) > 4_000_000
        return
    # (the depth cap, 30 levels of items and files below, is in tests/unit/domain/test_mime.py)
    assert item["subject"] == "level 1"
    (kid,) = item["attachments"]
    assert kid["@odata.type"] == "#microsoft.graph.itemAttachment" and kid["name"] == "level 2"
    # nothing lost: every level is in the attachment's MIME
    deepest = case.removeprefix("deep-") if case != "deep" else "100"
    assert b"Subject: level %s\r\n" % deepest.encode() in value.content
