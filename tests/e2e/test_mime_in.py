"""MIME in: drafts, sendMail, replies and forwards from a base64 MIME body (``Content-Type:
text/plain``), Graph's errors for what is not one, over real HTTP on both engines."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import ALEX, MEGAN, assert_error, inbox_items, unique, user_id
from tests.sink import Sink, wait_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PDF = b"%PDF-1.4\n" + bytes(range(255, -1, -1)) * 2
TEXT_PLAIN = {"Content-Type": "text/plain"}


def mime(subject: str, *, to: str = ALEX, extra: str = "") -> bytes:
    """A multipart message: text and HTML alternatives, an inline image, a file, headers."""
    return (
        "From: =?utf-8?q?Ad=C3=A8le_Vance?= <AdeleV@contoso.onmicrosoft.com>\r\n"
        f"To: =?utf-8?b?{base64.b64encode('Àlex, W.'.encode()).decode()}?= <{to}>\r\n"
        f"Cc: Megan Bowen <{MEGAN}>\r\n"
        "Bcc: hidden@example.com\r\n"
        "Reply-To: answers@example.com\r\n"
        f"Subject: {subject}\r\n"
        "Date: Sun, 28 Feb 2021 07:15:00 +0000\r\n"
        f"Message-ID: <{subject}@client.example>\r\n"
        "X-Custom-Tag: tagged\r\n"
        "Importance: High\r\n"
        f"{extra}"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="outer"\r\n'
        "\r\n"
        "--outer\r\n"
        'Content-Type: multipart/related; boundary="rel"\r\n'
        "\r\n"
        "--rel\r\n"
        'Content-Type: multipart/alternative; boundary="alt"\r\n'
        "\r\n"
        "--alt\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hello in text — café\r\n"
        "--alt\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "\r\n"
        '<p>Hello in <b>HTML</b> — café <img src="cid:logo@x"></p>\r\n'
        "--alt--\r\n"
        "--rel\r\n"
        "Content-Type: image/png\r\n"
        "Content-Disposition: inline; filename=logo.png\r\n"
        "Content-ID: <logo@x>\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{base64.b64encode(PNG).decode()}\r\n"
        "--rel--\r\n"
        "--outer\r\n"
        "Content-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="report.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        f"{base64.b64encode(PDF).decode()}\r\n"
        "--outer--\r\n"
    ).encode()


def post_mime(c: httpx.Client, path: str, raw: bytes, **headers: str) -> httpx.Response:
    return c.post(path, content=base64.encodebytes(raw), headers={**TEXT_PLAIN, **headers})


def attachments(c: httpx.Client, message_id: str) -> dict[str, dict[str, Any]]:
    r = c.get(f"/me/messages/{message_id}/attachments")
    assert r.status_code == 200, r.text
    return {a["name"]: a for a in r.json()["value"]}


def test_a_draft_from_mime(server: RunningServer) -> None:
    subject = unique("mime-in")
    with server.client() as c:
        r = post_mime(c, "/me/messages", mime(subject))
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["isDraft"] is True and got["isRead"] is True
        assert got["subject"] == subject
        assert got["sentDateTime"] == "2021-02-28T07:15:00Z"  # the MIME's Date
        assert got["createdDateTime"] == got["receivedDateTime"] != got["sentDateTime"]
        assert got["internetMessageId"] == f"<{subject}@client.example>"
        assert got["isDeliveryReceiptRequested"] is None  # as Graph's example shows
        assert got["importance"] == "high"
        assert (
            got["from"]
            == got["sender"]
            == {
                "emailAddress": {"name": "Adèle Vance", "address": "AdeleV@contoso.onmicrosoft.com"}
            }
        )
        assert got["toRecipients"] == [{"emailAddress": {"name": "Àlex, W.", "address": ALEX}}]
        assert got["ccRecipients"] == [{"emailAddress": {"name": "Megan Bowen", "address": MEGAN}}]
        assert [r["emailAddress"]["address"] for r in got["bccRecipients"]] == [
            "hidden@example.com"
        ]
        assert got["replyTo"][0]["emailAddress"]["address"] == "answers@example.com"
        # HTML is the body when there is one (as Graph keeps it); the inline image is
        # not a file, so hasAttachments counts the PDF only
        assert (
            got["body"]["contentType"] == "html" and "<b>HTML</b> — café" in got["body"]["content"]
        )
        assert got["hasAttachments"] is True
        drafts = c.get("/me/mailFolders/drafts").json()["id"]
        assert got["parentFolderId"] == drafts
        found = attachments(c, got["id"])
        assert base64.b64decode(found["report.pdf"]["contentBytes"]) == PDF
        assert found["report.pdf"]["contentType"] == "application/pdf"
        assert found["report.pdf"]["isInline"] is False
        assert base64.b64decode(found["logo.png"]["contentBytes"]) == PNG
        assert found["logo.png"]["isInline"] is True
        assert found["logo.png"]["contentId"] == "logo@x"
        headers = c.get(
            f"/me/messages/{got['id']}", params={"$select": "internetMessageHeaders"}
        ).json()["internetMessageHeaders"]
        assert {"name": "X-Custom-Tag", "value": "tagged"} in headers


def test_the_folder_and_users_forms(server: RunningServer) -> None:
    with server.client() as c:
        folder = c.post("/me/mailFolders", json={"displayName": unique("mimefolder")}).json()
        r = post_mime(c, f"/me/mailFolders/{folder['id']}/messages", mime(unique("in-folder")))
        assert r.status_code == 201, r.text
        assert r.json()["parentFolderId"] == folder["id"]
        r = post_mime(c, f"/users/{user_id(server)}/messages", mime(unique("users-form")))
        assert r.status_code == 201, r.text


def test_a_minimal_message_gets_defaults(server: RunningServer) -> None:
    """No From, no Date, no Message-ID: the owner, now, and an id of the server's own; an
    address without a name gets the directory's; text only is a text body."""
    raw = f"To: {ALEX}\r\nSubject: plain\r\n\r\nJust text.\r\n".encode()
    with server.client() as c:
        r = post_mime(c, "/me/messages", raw)
        assert r.status_code == 201, r.text
        got = r.json()
    assert got["from"]["emailAddress"]["address"].lower() == "adelev@contoso.onmicrosoft.com"
    assert got["toRecipients"] == [{"emailAddress": {"name": "Alex Wilber", "address": ALEX}}]
    assert got["body"] == {"contentType": "text", "content": "Just text.\r\n"}
    assert got["sentDateTime"] == got["createdDateTime"]
    assert got["internetMessageId"].startswith("<") and got["internetMessageId"].endswith(">")


def test_bad_mime_bodies_get_graphs_errors(server: RunningServer) -> None:
    with server.client() as c:
        for body in (b"not base64!", b"QUJD\x00", "héllo".encode(), b"QQ=A", b"Q"):
            r = c.post("/me/messages", content=body, headers=TEXT_PLAIN)
            error = assert_error(r, 400, "ErrorMimeContentInvalidBase64String")
            assert error["message"] == "Invalid base64 string for MIME content."
        r = c.post("/me/messages", content=b"", headers=TEXT_PLAIN)
        assert_error(r, 400, "ErrorMimeContentInvalidBase64String")
        # valid base64 of something that is not a message (no header field first)
        for raw in (b"\x00\x01\x02garbage", b"just some words\r\n", b"\r\nbody only"):
            r = post_mime(c, "/me/messages", raw)
            assert_error(r, 400, "ErrorMimeContentInvalid")
        for path in ("/me/sendMail", "/me/messages/AAMkAD00/reply"):
            r = c.post(path, content=b"%%%", headers=TEXT_PLAIN)
            assert_error(r, 400, "ErrorMimeContentInvalidBase64String")
        # over the 4 MB request cap (Graph: 413 for MIME over 4 MB)
        big = b"To: a@example.com\r\n\r\n" + b"x" * (3 * 1024 * 1024 + 200_000)
        r = post_mime(c, "/me/messages", big)
        assert_error(r, 413, "RequestEntityTooLarge")
        # no draft was left behind by any of them
        r = c.get("/me/mailFolders/drafts/messages", params={"$filter": "subject eq 'x'"})
        assert r.status_code == 200


def test_a_json_draft_round_trips_through_mime(server: RunningServer) -> None:
    subject = unique("round trip — ü")
    payload = bytes(range(256)) * 4
    with server.client() as c:
        made = c.post("/me/messages", json={
            "subject": subject,
            "body": {"contentType": "HTML", "content": "<p>Round <i>trip</i> — ü</p>"},
            "toRecipients": [{"emailAddress": {"address": ALEX, "name": "Àlex «W»"}}],
            "ccRecipients": [{"emailAddress": {"address": MEGAN}}],
            "internetMessageHeaders": [{"name": "x-trip", "value": "there and back"}],
            "attachments": [
                {"@odata.type": "#microsoft.graph.fileAttachment", "name": "bytes.bin",
                 "contentType": "application/x-test",
                 "contentBytes": base64.b64encode(payload).decode()},
                {"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
                 "contentType": "image/png", "isInline": True, "contentId": "logo1",
                 "contentBytes": base64.b64encode(PNG).decode()},
            ],
        }).json()  # fmt: skip
        raw = c.get(f"/me/messages/{made['id']}/$value").content
        r = post_mime(c, "/me/messages", raw)
        assert r.status_code == 201, r.text
        again = r.json()
        for prop in ("subject", "toRecipients", "ccRecipients", "from", "importance"):
            assert again[prop] == made[prop], prop
        assert again["internetMessageId"] == made["internetMessageId"]
        assert again["body"]["contentType"] == "html"
        assert "Round <i>trip</i> — ü" in again["body"]["content"]
        before, after = attachments(c, made["id"]), attachments(c, again["id"])
        assert set(before) == set(after) == {"bytes.bin", "logo.png"}
        for name in before:
            for prop in ("contentBytes", "contentType", "isInline", "contentId", "size"):
                assert after[name][prop] == before[name][prop], (name, prop)
        headers = c.get(
            f"/me/messages/{again['id']}", params={"$select": "internetMessageHeaders"}
        ).json()["internetMessageHeaders"]
        assert {"name": "x-trip", "value": "there and back"} in headers


def test_send_mail_in_mime(server: RunningServer, sink: Sink) -> None:
    subject = unique("mime sendMail")
    outside = f"{unique('out')}@example.net"
    with server.client() as c:
        r = post_mime(c, "/me/sendMail", mime(subject, to=outside))
        assert r.status_code == 202, r.text
        assert r.content == b""
        sent_id = r.headers["location"].split("'")[3]
        saved = c.get(f"/me/messages/{sent_id}").json()
        assert saved["isDraft"] is False and saved["subject"] == subject
        sent_items = c.get("/me/mailFolders/sentitems").json()["id"]
        assert saved["parentFolderId"] == sent_items
        assert saved["sentDateTime"] != "2021-02-28T07:15:00Z"  # sent now, not at its Date
    got = wait_for(
        lambda: [m for m in sink.handler.received if outside in m.rcpt_tos], what="relayed"
    )[0]
    mail = got.message
    assert mail["Subject"] == subject and mail["Bcc"] is None
    assert mail["X-Custom-Tag"] == "tagged"
    assert mail.get_body(preferencelist=("html",)) is not None
    names = sorted(p.get_filename() for p in mail.walk() if p.get_filename())
    assert names == ["logo.png", "report.pdf"]
    # Bcc is delivered, never written
    wait_for(lambda: [m for m in sink.handler.received if "hidden@example.com" in m.rcpt_tos])
    [local] = wait_for(lambda: inbox_items(server, MEGAN, subject))
    assert local["hasAttachments"] is True


def test_send_mail_in_mime_refuses_a_foreign_from(server: RunningServer) -> None:
    raw = b"From: someone@example.org\r\nTo: x@example.net\r\nSubject: s\r\n\r\nhi\r\n"
    with server.client() as c:
        assert_error(post_mime(c, "/me/sendMail", raw), 403, "ErrorSendAsDenied")
        raw = b"Subject: nobody\r\n\r\nhi\r\n"
        assert_error(post_mime(c, "/me/sendMail", raw), 400, "ErrorInvalidRecipients")


def original_from_alex(server: RunningServer, sink: Sink) -> dict[str, Any]:
    """A message in Adele's Inbox from Alex, with an attachment, cc Megan."""
    subject = unique("to answer")
    with server.client(server.token(ALEX)) as c:
        r = c.post("/me/sendMail", json={"message": {
            "subject": subject,
            "toRecipients": [{"emailAddress": {"address": "AdeleV@contoso.onmicrosoft.com"}}],
            "ccRecipients": [{"emailAddress": {"address": MEGAN}}],
            "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment",
                             "name": "orig.txt", "contentBytes": "b3JpZw=="}],
        }})  # fmt: skip
        assert r.status_code == 202, r.text
    [item] = wait_for(lambda: inbox_items(server, "AdeleV@contoso.onmicrosoft.com", subject))
    return dict(item)


def test_replies_and_forwards_in_mime(server: RunningServer, sink: Sink) -> None:
    original = original_from_alex(server, sink)
    body = b"Subject: my answer\r\nX-Answer: yes\r\n\r\nAnswered in MIME.\r\n"
    with server.client() as c:
        r = post_mime(c, f"/me/messages/{original['id']}/createReply", body)
        assert r.status_code == 201, r.text
        draft = r.json()
        assert draft["isDraft"] is True and draft["subject"] == "my answer"
        assert draft["conversationId"] == original["conversationId"]
        assert [t["emailAddress"]["address"] for t in draft["toRecipients"]] == [ALEX]
        assert draft["body"] == {"contentType": "text", "content": "Answered in MIME.\r\n"}
        headers = c.get(
            f"/me/messages/{draft['id']}", params={"$select": "internetMessageHeaders"}
        ).json()["internetMessageHeaders"]
        assert {"name": "In-Reply-To", "value": original["internetMessageId"]} in headers

        r = post_mime(c, f"/me/messages/{original['id']}/createReplyAll", b"X-A: b\r\n\r\nall\r\n")
        assert r.status_code == 201, r.text
        everyone = r.json()
        assert everyone["subject"] == f"RE: {original['subject']}"
        assert [t["emailAddress"]["address"] for t in everyone["toRecipients"]] == [ALEX]
        assert [t["emailAddress"]["address"] for t in everyone["ccRecipients"]] == [MEGAN]

        outside = f"{unique('fwd')}@example.net"
        r = post_mime(
            c,
            f"/me/messages/{original['id']}/createForward",
            f"To: {outside}\r\nSubject: FW: look\r\n\r\nsee below\r\n".encode(),
        )
        assert r.status_code == 201, r.text
        forward = r.json()
        assert forward["hasAttachments"] is True  # the original's attachment is carried
        assert set(attachments(c, forward["id"])) == {"orig.txt"}

        subject = unique("mime reply")
        r = post_mime(
            c, f"/me/messages/{original['id']}/reply", f"Subject: {subject}\r\n\r\nr\r\n".encode()
        )
        assert r.status_code == 202, r.text
        r = post_mime(
            c,
            f"/me/messages/{original['id']}/replyAll",
            f"Subject: {subject}-all\r\n\r\nr\r\n".encode(),
        )
        assert r.status_code == 202, r.text
        r = post_mime(
            c,
            f"/me/messages/{original['id']}/forward",
            f"To: {outside}\r\nSubject: {subject}-fwd\r\n\r\nf\r\n".encode(),
        )
        assert r.status_code == 202, r.text
    [reply] = wait_for(lambda: inbox_items(server, ALEX, subject))
    assert reply["conversationId"] == original["conversationId"]
    wait_for(lambda: inbox_items(server, MEGAN, f"{subject}-all"))
    relayed = wait_for(
        lambda: [m for m in sink.handler.received if outside in m.rcpt_tos], what="forward"
    )[0]
    mail = relayed.message
    assert mail["Subject"] == f"{subject}-fwd"
    assert mail["In-Reply-To"] == original["internetMessageId"]
    assert [p.get_filename() for p in mail.iter_attachments()] == ["orig.txt"]
    with server.client() as c:
        r = post_mime(c, f"/me/messages/{original['id']}/forward", b"Subject: nobody\r\n\r\nx")
        assert_error(r, 400, "ErrorInvalidRecipients")


def parsed(raw: bytes) -> EmailMessage:
    mail = message_from_bytes(raw, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return mail


def test_mime_needs_the_permission_of_its_action(server: RunningServer) -> None:
    raw = mime(unique("no right"))
    with server.client(server.token(scopes="Mail.Read")) as c:
        assert_error(post_mime(c, "/me/messages", raw), 403, "ErrorAccessDenied")
        assert_error(post_mime(c, "/me/sendMail", raw), 403, "ErrorAccessDenied")


def test_a_mime_draft_in_a_json_batch(server: RunningServer) -> None:
    """A batch member's non-JSON body is base64 of the request body, which for MIME is
    itself base64: the member body is base64 twice."""
    subject = unique("batched mime")
    member_body = base64.b64encode(base64.b64encode(mime(subject))).decode()
    token = server.token(scopes="Mail.ReadWrite Mail.Send")
    r = httpx.post(
        f"{server.base}/v1.0/$batch",
        json={"requests": [
            {"id": "1", "method": "POST", "url": "/me/messages", "body": member_body,
             "headers": {"Content-Type": "text/plain"}},
            {"id": "2", "method": "POST", "url": "/me/messages",
             "body": base64.b64encode(b"%%%").decode(), "headers": {"Content-Type": "text/plain"}},
        ]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    answers = {a["id"]: a for a in r.json()["responses"]}
    assert answers["1"]["status"] == 201 and answers["1"]["body"]["subject"] == subject
    assert answers["2"]["status"] == 400
    assert answers["2"]["body"]["error"]["code"] == "ErrorMimeContentInvalidBase64String"


def test_send_mail_in_mime_is_idempotent_with_a_key(server: RunningServer) -> None:
    subject = unique("mime once")
    raw = f"To: {MEGAN}\r\nSubject: {subject}\r\n\r\nonce\r\n".encode()
    key = unique("key")
    with server.client() as c:
        first = post_mime(c, "/me/sendMail", raw, **{"Idempotency-Key": key})
        again = post_mime(c, "/me/sendMail", raw, **{"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert first.headers["location"] == again.headers["location"]
    wait_for(lambda: inbox_items(server, MEGAN, subject))
    assert len(inbox_items(server, MEGAN, subject)) == 1


def test_an_attached_message_in_a_mime_draft_is_an_item(server: RunningServer) -> None:
    """A MIME draft's message/rfc822 part is an item attachment (as for received mail)."""
    subject = unique("mime draft with a message")
    raw = (
        f"From: {ALEX}\r\nTo: {MEGAN}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
        "\r\nsee it\r\n--b\r\nContent-Type: message/rfc822\r\n"
        "Content-Disposition: attachment\r\n\r\n"
        "From: Old <old@example.org>\r\nSubject: the old one\r\n"
        "Date: Sun, 28 Feb 2021 07:15:00 +0000\r\n\r\nold body\r\n--b--\r\n"
    ).encode()
    with server.client() as c:
        r = post_mime(c, "/me/messages", raw)
        assert r.status_code == 201, r.text
        mid = r.json()["id"]
        (att,) = c.get(f"/me/messages/{mid}/attachments").json()["value"]
        assert att["@odata.type"] == "#microsoft.graph.itemAttachment"
        assert att["name"] == "the old one" and att["contentType"] is None
        expand = {"$expand": "microsoft.graph.itemAttachment/item"}
        r = c.get(f"/me/messages/{mid}/attachments/{att['id']}", params=expand)
        item = r.json()["item"]
    assert item["from"]["emailAddress"] == {"name": "Old", "address": "old@example.org"}
    assert item["sentDateTime"] == "2021-02-28T07:15:00Z"
    assert item["body"]["content"].strip() == "old body"
