"""Sending for real: drafts, sendMail, local delivery, the relay (a real aiosmtpd sink),
retries, bounces and delivery status, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import time
import uuid

import httpx

from tests.conftest import RunningServer
from tests.mail_api import (
    ADELE,
    ALEX,
    MEGAN,
    assert_error,
    inbox_items,
    send_mail,
    sent_id_of,
    status_of,
    unique,
)
from tests.sink import Sink, wait_for


def test_send_a_draft_locally_and_to_the_relay(server: RunningServer, sink: Sink) -> None:
    subject = unique("seed send")
    external = f"{unique('ext')}@example.net"
    with server.client() as c:
        draft = c.post("/me/messages", json={
            "subject": subject,
            "body": {"contentType": "HTML", "content": "They were <b>awesome</b>!"},
            "toRecipients": [{"emailAddress": {"address": ALEX}}],
            "ccRecipients": [{"emailAddress": {"address": external, "name": "Ext Ernal"}}],
            "internetMessageHeaders": [{"name": "x-custom-header", "value": "kept"}],
        }).json()  # fmt: skip
        drafts_before = c.get("/me/mailFolders/drafts").json()["totalItemCount"]
        r = c.post(f"/me/messages/{draft['id']}/send", headers={"Content-Length": "0"})
        assert r.status_code == 202, r.text
        assert r.content == b""
        assert r.headers["content-length"] == "0"
        assert r.headers["location"].endswith(f"/messages('{draft['id']}')")
        sent = c.get(f"/me/messages/{draft['id']}").json()
        sent_items = c.get("/me/mailFolders/sentitems").json()
        assert sent["parentFolderId"] == sent_items["id"]
        assert sent["isDraft"] is False and sent["sentDateTime"] >= draft["sentDateTime"]
        assert sent["from"]["emailAddress"]["address"] == ADELE
        assert sent["sender"] == sent["from"]
        assert c.get("/me/mailFolders/drafts").json()["totalItemCount"] == drafts_before - 1
    (got,) = wait_for(lambda: inbox_items(server, ALEX, subject), what="Alex's copy")
    assert got["isRead"] is False and got["isDraft"] is False
    assert got["internetMessageId"] == sent["internetMessageId"]
    assert got["conversationId"] == sent["conversationId"]
    assert got["from"]["emailAddress"] == {"name": "Adele Vance", "address": ADELE}
    assert got["bodyPreview"] == "They were awesome!"
    (out,) = wait_for(lambda: sink.with_subject(subject), what="the sink")
    assert out.rcpt_tos == [external] and out.mail_from == ADELE
    m = out.message
    assert m["Message-ID"] == sent["internetMessageId"]
    assert m["From"].addresses[0].addr_spec == ADELE
    assert m["From"].addresses[0].display_name == "Adele Vance"
    assert [a.addr_spec for a in m["To"].addresses] == [ALEX]
    assert m["Cc"].addresses[0].display_name == "Ext Ernal"
    assert m["x-custom-header"] == "kept"
    assert m["Date"] and m["Bcc"] is None and m["Sender"] is None
    assert m.get_content_type() == "multipart/alternative"
    html = m.get_body(("html",))
    text = m.get_body(("plain",))
    assert html is not None and "They were <b>awesome</b>!" in html.get_content()
    assert text is not None and "They were awesome!" in text.get_content()
    status = wait_for(lambda: (s := status_of(server, draft["id"]))["status"] == "delivered" and s)
    assert {r["emailAddress"]["address"] for r in status["recipients"]} == {ALEX, external}
    assert {r["transport"] for r in status["recipients"]} == {"local", "smtp"}


def test_send_twice_sends_once_and_bad_sends(server: RunningServer, sink: Sink) -> None:
    subject = unique("twice")
    external = f"{unique('t')}@example.net"
    with server.client() as c:
        draft = c.post("/me/messages", json={
            "subject": subject, "toRecipients": [{"emailAddress": {"address": external}}]
        }).json()  # fmt: skip
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
        wait_for(lambda: sink.with_subject(subject))
        empty = c.post("/me/messages", json={"subject": "nobody"}).json()
        assert_error(c.post(f"/me/messages/{empty['id']}/send"), 400, "ErrorInvalidRecipients")
        assert c.get(f"/me/messages/{empty['id']}").json()["isDraft"] is True
        bad = c.post(
            "/me/messages", json={"toRecipients": [{"emailAddress": {"address": "not an address"}}]}
        ).json()
        assert_error(c.post(f"/me/messages/{bad['id']}/send"), 400, "ErrorInvalidRecipients")
        other = c.post(
            "/me/messages",
            json={
                "from": {"emailAddress": {"address": MEGAN}},
                "toRecipients": [{"emailAddress": {"address": ALEX}}],
            },
        ).json()
        assert_error(c.post(f"/me/messages/{other['id']}/send"), 403, "ErrorSendAsDenied")
        assert_error(c.post("/me/messages/AAMkADhMGAAA=/send"), 404, "ErrorItemNotFound")
    with server.client(server.token(scopes="Mail.ReadWrite")) as c:
        assert_error(c.post(f"/me/messages/{empty['id']}/send"), 403, "ErrorAccessDenied")
    time.sleep(0.5)
    assert len(sink.with_subject(subject)) == 1


def test_send_mail_as_the_sdks_send_it(server: RunningServer, sink: Sink) -> None:
    subject = unique("Grüße ✉ sendMail")
    external = f"{unique('sm')}@example.net"
    hidden = f"{unique('bcc')}@example.org"
    pdf = b"%PDF-1.4 fake pdf bytes"
    logo = b"\x89PNG\r\n\x1a\nfake"
    body = {
        "Message": {
            "subject": subject,
            "body": {"contentType": "HTML",
                     "content": 'Hi <img src="cid:logo1"> see <i>attached</i>'},
            "toRecipients": [{"emailAddress": {"address": external, "name": "Zoë Ext"}}],
            "bccRecipients": [{"emailAddress": {"address": hidden}}],
            "replyTo": [{"emailAddress": {"address": MEGAN}}],
            "internetMessageHeaders": [{"name": "X-Campaign", "value": "c-42"}],
            "attachments": [
                {"@odata.type": "#microsoft.graph.fileAttachment", "name": "report.pdf",
                 "contentType": "application/pdf", "contentBytes": base64.b64encode(pdf).decode()},
                {"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
                 "contentType": "image/png", "isInline": True, "contentId": "logo1",
                 "contentBytes": base64.b64encode(logo).decode()},
            ],
        },
        "SaveToSentItems": "false",
    }  # fmt: skip
    with server.client() as c:
        sent_before = c.get("/me/mailFolders/sentitems").json()["totalItemCount"]
        r = c.post("/me/sendMail", json=body)
        assert r.status_code == 202, r.text
        assert r.content == b"" and r.headers["location"].endswith("/deliveryStatus")
        assert c.get("/me/mailFolders/sentitems").json()["totalItemCount"] == sent_before
    (out,) = wait_for(lambda: sink.with_subject(subject), what="sendMail at the sink")
    assert sorted(out.rcpt_tos) == sorted([external, hidden])
    m = out.message
    assert m["Bcc"] is None and hidden not in out.data.decode("latin-1")
    assert b"=?utf-8?" in out.data  # the subject went out as encoded words
    assert m["To"].addresses[0].display_name == "Zoë Ext"
    assert m["Reply-To"].addresses[0].addr_spec == MEGAN
    assert m["X-Campaign"] == "c-42"
    assert m.get_content_type() == "multipart/mixed"
    parts = {p.get_content_type(): p for p in m.walk()}
    assert "multipart/alternative" in parts and "multipart/related" in parts
    assert parts["application/pdf"].get_filename() == "report.pdf"
    assert parts["application/pdf"].get_content() == pdf
    assert parts["image/png"]["Content-ID"] == "<logo1>"
    assert parts["image/png"].get_content() == logo
    status = wait_for(lambda: (s := status_of(server, sent_id_of(r)))
                      ["status"] == "delivered" and s)  # fmt: skip
    assert status["savedToSentItems"] is False


def test_send_mail_saves_and_is_idempotent(server: RunningServer, sink: Sink) -> None:
    subject = unique("idem")
    external = f"{unique('i')}@example.net"
    to = [{"emailAddress": {"address": external}}]
    msg = {"message": {"subject": subject, "toRecipients": to}, "saveToSentItems": True}
    key = uuid.uuid4().hex
    with server.client() as c:
        first = c.post("/me/sendMail", json=msg, headers={"Idempotency-Key": key})
        again = c.post("/me/sendMail", json=msg, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 202
        assert first.headers["location"] == again.headers["location"]
        saved = httpx.get(first.headers["location"], headers=c.headers).json()
        assert saved["subject"] == subject and saved["isDraft"] is False
        assert_error(c.post("/me/sendMail", json={"message": {"subject": "x"}}), 400,
                     "ErrorInvalidRecipients")  # fmt: skip
        assert_error(c.post("/me/sendMail", json={"saveToSentItems": True}), 400,
                     "RequestBodyRead")  # fmt: skip
        too_many = [{"emailAddress": {"address": f"r{n}@example.net"}} for n in range(501)]
        assert_error(c.post("/me/sendMail", json={"message": {"toRecipients": too_many}}), 400,
                     "ErrorInvalidRecipients")  # fmt: skip
    wait_for(lambda: sink.with_subject(subject))
    time.sleep(0.5)
    assert len(sink.with_subject(subject)) == 1


def test_permanent_failure_bounces(server: RunningServer, sink: Sink) -> None:
    subject = unique("bounce")
    gone = f"{unique('gone')}@example.net"
    sink.answer(gone, f"550 5.1.1 <{gone}>: user unknown")
    r = send_mail(server, subject, gone)
    sent_id = sent_id_of(r)
    (ndr,) = wait_for(lambda: inbox_items(server, ADELE, f"Undeliverable: {subject}"),
                      what="the non-delivery report")  # fmt: skip
    assert ndr["hasAttachments"] is True and ndr["isRead"] is False
    with server.client() as c:
        full = c.get(f"/me/messages/{ndr['id']}").json()
        assert gone in full["body"]["content"] and "5.1.1" in full["body"]["content"]
        atts = c.get(f"/me/messages/{ndr['id']}/attachments").json()["value"]
        # the original is an item attachment, as Exchange shows it in a report
        (original,) = [a for a in atts if a["name"] == "original message.eml"]
        assert original["@odata.type"] == "#microsoft.graph.itemAttachment"
        assert original["contentType"] is None
        expand = {"$expand": "microsoft.graph.itemAttachment/item"}
        r = c.get(f"/me/messages/{ndr['id']}/attachments/{original['id']}", params=expand)
        item = r.json()["item"]
    assert item["subject"] == subject and item["from"]["emailAddress"]["address"] == ADELE
    status = status_of(server, sent_id)
    (rcpt,) = status["recipients"]
    assert rcpt["status"] == "failed" and rcpt["statusCode"] == 550
    assert rcpt["enhancedStatusCode"] == "5.1.1" and rcpt["attemptCount"] == 1
    assert sink.with_subject(subject) == []


def test_temporary_failures_are_retried(server: RunningServer, sink: Sink) -> None:
    subject = unique("retry")
    slow = f"{unique('slow')}@example.net"
    flaky = f"{unique('drop')}@example.net"
    sink.answer(slow, "451 4.7.1 greylisted, try later")
    sink.answer(flaky, "drop")
    with server.client() as c:
        r = c.post("/me/sendMail", json={"message": {
            "subject": subject,
            "toRecipients": [{"emailAddress": {"address": slow}},
                             {"emailAddress": {"address": flaky}}]}})  # fmt: skip
        assert r.status_code == 202
    wait_for(lambda: len(sink.with_subject(subject)) >= 1 and
             {a for m in sink.with_subject(subject) for a in m.rcpt_tos} == {slow, flaky},
             what="both recipients after retries")  # fmt: skip
    sent_id = sent_id_of(r)
    status = wait_for(lambda: (s := status_of(server, sent_id))["status"] == "delivered" and s)
    by = {x["emailAddress"]["address"]: x for x in status["recipients"]}
    assert by[slow]["attemptCount"] >= 2
    assert by[slow]["attempts"][0]["outcome"] == "deferred"
    assert by[slow]["attempts"][0]["statusCode"] == 451
    assert by[slow]["attempts"][-1]["outcome"] == "delivered"
    assert by[flaky]["attemptCount"] >= 2


def test_unknown_local_recipient_bounces(server: RunningServer) -> None:
    subject = unique("nobody local")
    with server.client() as c:
        r = c.post(
            "/me/sendMail",
            json={
                "message": {
                    "subject": subject,
                    "toRecipients": [
                        {"emailAddress": {"address": "nobody-here@contoso.onmicrosoft.com"}}
                    ],
                }
            },
        )
        assert r.status_code == 202
    wait_for(lambda: inbox_items(server, ADELE, f"Undeliverable: {subject}"))


def test_patch_on_a_sent_message(server: RunningServer) -> None:
    """Once sent, only what Graph allows may change: flags, categories, read state."""
    with server.client() as c:
        draft = c.post("/me/messages", json={
            "subject": unique("frozen"), "toRecipients": [{"emailAddress": {"address": ALEX}}]
        }).json()  # fmt: skip
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
        for prop, value in (("subject", "changed"), ("body", {"content": "x"}),
                            ("replyTo", []), ("internetMessageId", "<x@y>")):  # fmt: skip
            assert_error(c.patch(f"/me/messages/{draft['id']}", json={prop: value}), 400,
                         "ErrorInvalidRequest")  # fmt: skip
        r = c.patch(f"/me/messages/{draft['id']}", json={
            "isRead": False, "categories": ["Done"], "flag": {"flagStatus": "complete"},
            "importance": "high"})  # fmt: skip
        assert r.status_code == 200, r.text
        m = r.json()
        assert (m["isRead"], m["categories"], m["flag"]["flagStatus"], m["importance"]) == (
            False, ["Done"], "complete", "high")  # fmt: skip
        assert m["subject"] == draft["subject"] and m["isDraft"] is False
