"""`GET …/messages/{id}/$value` (the message as MIME) and `GET …/attachments/{id}/$value`
(an attachment's bytes), over real HTTP on both engines."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

from tests.conftest import RunningServer
from tests.mail_api import ALEX, MEGAN, assert_error, inbox_items, unique
from tests.sink import wait_for

PAYLOAD = bytes(range(256)) * 3  # every byte value: nothing may be re-encoded on the way


def draft(server: RunningServer, subject: str, *, to: str = ALEX) -> dict[str, object]:
    body = {
        "subject": subject,
        "body": {"contentType": "HTML", "content": "<p>Hello <b>Alex</b> — café</p>"},
        "toRecipients": [{"emailAddress": {"address": to}}],
        "ccRecipients": [{"emailAddress": {"address": MEGAN}}],
        "bccRecipients": [{"emailAddress": {"address": "hidden@example.com"}}],
        "attachments": [
            {
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "bytes.bin",
                "contentType": "application/x-test",
                "contentBytes": base64.b64encode(PAYLOAD).decode(),
            }
        ],
    }
    with server.client() as c:
        r = c.post("/me/messages", json=body)
    assert r.status_code == 201, r.text
    return cast(dict[str, object], r.json())


def parsed(raw: bytes) -> EmailMessage:
    return message_from_bytes(raw, policy=policy.default)


def test_a_draft_as_mime(server: RunningServer) -> None:
    subject = unique("mime — ümlaut")
    made = draft(server, subject)
    with server.client() as c:
        r = c.get(f"/me/messages/{made['id']}/$value")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert b"\r\n" in r.content and all(b < 128 for b in r.content)  # 7-bit, CRLF lines
    mail = parsed(r.content)
    assert mail["Subject"] == subject
    assert ALEX.lower() in mail["To"].lower() and MEGAN.lower() in mail["Cc"].lower()
    assert mail["Bcc"] is None  # as on the wire
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and "café" in html.get_content()
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "bytes.bin"
    assert attached.get_content_type() == "application/x-test"
    assert attached.get_payload(decode=True) == PAYLOAD


def test_a_received_message_as_mime(server: RunningServer) -> None:
    subject = unique("mime received")
    made = draft(server, subject)
    with server.client() as c:
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [item] = wait_for(lambda: inbox_items(server, ALEX, subject))
    with server.client(server.token(ALEX)) as c:
        r = c.get(f"/me/messages/{item['id']}/$value")
    assert r.status_code == 200, r.text
    mail = parsed(r.content)
    assert mail["Subject"] == subject
    assert "adelev@contoso.onmicrosoft.com" in mail["From"].lower()
    [attached] = list(mail.iter_attachments())
    assert attached.get_payload(decode=True) == PAYLOAD


def test_an_attachments_bytes(server: RunningServer) -> None:
    made = draft(server, unique("attachment value"))
    with server.client() as c:
        listed = c.get(f"/me/messages/{made['id']}/attachments").json()["value"]
        r = c.get(f"/me/messages/{made['id']}/attachments/{listed[0]['id']}/$value")
        assert r.status_code == 200
        assert r.content == PAYLOAD
        assert r.headers["content-type"] == "application/x-test"
        missing = c.get(f"/me/messages/{made['id']}/attachments/AAMkAGnothere=/$value")
        assert_error(missing, 404, "ErrorItemNotFound")


def test_refusals(server: RunningServer) -> None:
    made = draft(server, unique("mime refusals"))
    with server.client() as c:
        assert_error(c.get("/me/messages/AAMkADhMGAAA=/$value"), 404, "ErrorItemNotFound")
        assert c.post(f"/me/messages/{made['id']}/$value").status_code == 405
    basic = server.token(scopes="Mail.ReadBasic")
    with server.client(basic) as c:
        assert_error(c.get(f"/me/messages/{made['id']}/$value"), 403, "ErrorAccessDenied")
        listed = c.get(f"/me/messages/{made['id']}/attachments").json()["value"]
        assert listed == []
    with server.client(server.token(MEGAN, "Mail.Read")) as c:  # not her mailbox
        r = c.get(f"/users/AdeleV@contoso.onmicrosoft.com/messages/{made['id']}/$value")
        assert r.status_code == 403
