"""createReply/createReplyAll/createForward, reply/replyAll/forward, move and copy."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import ADELE, ALEX, MEGAN, assert_error, inbox_items, unique
from tests.sink import Sink, wait_for


def received_by_alex(server: RunningServer, subject: str, **extra: Any) -> dict[str, Any]:
    """Adele sends Alex a message (Megan in cc); Alex's copy."""
    with server.client() as c:
        r = c.post("/me/sendMail", json={"message": {
            "subject": subject,
            "body": {"contentType": "html", "content": "<p>Original <b>text</b></p>"},
            "toRecipients": [{"emailAddress": {"address": ALEX}}],
            "ccRecipients": [{"emailAddress": {"address": MEGAN}}],
            **extra,
        }})  # fmt: skip
        assert r.status_code == 202, r.text
    (got,) = wait_for(lambda: inbox_items(server, ALEX, subject))
    return dict(got)


def test_create_reply_reply_all_and_forward(server: RunningServer) -> None:
    subject = unique("thread")
    original = received_by_alex(server, subject)
    with server.client(server.token(ALEX)) as c:
        r = c.post(f"/me/messages/{original['id']}/createReply",
                   json={"comment": "Sounds good"})  # fmt: skip
        assert r.status_code == 201, r.text
        reply = r.json()
        assert reply["subject"] == f"RE: {subject}" and reply["isDraft"] is True
        assert [x["emailAddress"]["address"] for x in reply["toRecipients"]] == [ADELE]
        assert reply["ccRecipients"] == []
        assert reply["conversationId"] == original["conversationId"]
        assert "Sounds good" in reply["body"]["content"]
        assert "Original <b>text</b>" in reply["body"]["content"]
        drafts = c.get("/me/mailFolders/drafts").json()["id"]
        assert reply["parentFolderId"] == drafts
        headers = c.get(f"/me/messages/{reply['id']}?$select=internetMessageHeaders").json()
        by = {h["name"]: h["value"] for h in headers["internetMessageHeaders"]}
        assert by["In-Reply-To"] == original["internetMessageId"]
        assert original["internetMessageId"] in by["References"]

        everyone = c.post(f"/me/messages/{original['id']}/createReplyAll").json()
        assert [x["emailAddress"]["address"] for x in everyone["toRecipients"]] == [ADELE]
        assert [x["emailAddress"]["address"] for x in everyone["ccRecipients"]] == [MEGAN]

        fwd = c.post(
            f"/me/messages/{original['id']}/createForward",
            json={
                "comment": "FYI",
                "toRecipients": [{"emailAddress": {"address": "x@example.net"}}],
            },
        )
        assert fwd.status_code == 201
        assert fwd.json()["subject"] == f"FW: {subject}"
        assert fwd.json()["toRecipients"][0]["emailAddress"]["address"] == "x@example.net"
        assert_error(c.post(f"/me/messages/{original['id']}/createReply",
                            json={"comment": "a", "message": {"body": {"content": "b"}}}),
                     400, "ErrorInvalidRequest")  # fmt: skip
        assert_error(c.post(f"/me/messages/{original['id']}/createForward", json={
            "toRecipients": [{"emailAddress": {"address": "a@example.net"}}],
            "message": {"toRecipients": [{"emailAddress": {"address": "b@example.net"}}]}}),
            400, "ErrorInvalidRequest")  # fmt: skip
        # the SDKs' PascalCase parameter names
        pascal = c.post(f"/me/messages/{original['id']}/createReply", json={"Comment": "Hi"})
        assert pascal.status_code == 201 and "Hi" in pascal.json()["body"]["content"]
        # the reply is a draft like any other: send it
        assert c.post(f"/me/messages/{reply['id']}/send").status_code == 202
    (back,) = wait_for(lambda: inbox_items(server, ADELE, f"RE: {subject}"))
    assert back["conversationId"] == original["conversationId"]


def test_reply_all_and_forward_send_at_once(server: RunningServer, sink: Sink) -> None:
    subject = unique("instant")
    pdf = base64.b64encode(b"%PDF attached").decode()
    original = received_by_alex(server, subject, attachments=[{
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "a.pdf",
        "contentBytes": pdf}])  # fmt: skip
    outside = f"{unique('fw')}@example.net"
    with server.client(server.token(ALEX)) as c:
        r = c.post(f"/me/messages/{original['id']}/replyAll", json={"comment": "Thanks all"})
        assert r.status_code == 202 and r.content == b""
        assert "location" in r.headers
        r = c.post(
            f"/me/messages/{original['id']}/forward",
            json={"comment": "see below", "toRecipients": [{"emailAddress": {"address": outside}}]},
        )
        assert r.status_code == 202
    wait_for(lambda: inbox_items(server, ADELE, f"RE: {subject}"))
    wait_for(lambda: inbox_items(server, MEGAN, f"RE: {subject}"))
    (out,) = wait_for(lambda: sink.with_subject(f"FW: {subject}"))
    m = out.message
    assert m["In-Reply-To"] == original["internetMessageId"]
    html = m.get_body(("html",))
    assert html is not None and "see below" in html.get_content()
    names = [p.get_filename() for p in m.iter_attachments()]
    assert names == ["a.pdf"]


def test_move_and_copy(server: RunningServer) -> None:
    with server.client() as c:
        m = c.post("/me/messages", json={"subject": unique("mv"), "isRead": False}).json()
        archive = c.get("/me/mailFolders/archive").json()
        r = c.post(f"/me/messages/{m['id']}/move", json={"DestinationId": "archive"})
        assert r.status_code == 201, r.text
        moved = r.json()
        assert moved["parentFolderId"] == archive["id"] and moved["id"] == m["id"]
        after = c.get("/me/mailFolders/archive").json()
        assert after["totalItemCount"] == archive["totalItemCount"] + 1
        assert after["unreadItemCount"] == archive["unreadItemCount"] + 1
        r = c.post(f"/me/messages/{m['id']}/copy", json={"destinationId": "inbox"})
        assert r.status_code == 201
        copy = r.json()
        assert copy["id"] != m["id"] and copy["subject"] == m["subject"]
        assert copy["parentFolderId"] == c.get("/me/mailFolders/inbox").json()["id"]
        assert c.get(f"/me/messages/{m['id']}").json()["parentFolderId"] == archive["id"]
        assert_error(c.post(f"/me/messages/{m['id']}/move", json={}), 400, "RequestBodyRead")
        nowhere = {"destinationId": "AQMkADhMGAAAAAA="}
        assert_error(c.post(f"/me/messages/{m['id']}/move", json=nowhere), 404, "ErrorItemNotFound")


def test_delivery_status_of_unsent(server: RunningServer) -> None:
    with server.client() as c:
        m = c.post("/me/messages", json={"subject": "never sent"}).json()
        assert_error(c.get(f"/me/messages/{m['id']}/deliveryStatus"), 404, "ErrorItemNotFound")
        r = httpx.get(f"{server.base}/v1.0/me/messages/{m['id']}/deliveryStatus")
        assert r.status_code == 401
