"""Create Message end to end: real server, real HTTP, real tokens (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import re

from tests.conftest import RunningServer
from tests.mail_api import ME, user_id

EXAMPLE_1 = {
    "subject": "Did you see last night's game?",
    "importance": "Low",
    "body": {"contentType": "HTML", "content": "They were <b>awesome</b>!"},
    "toRecipients": [{"emailAddress": {"address": "AdeleV@contoso.onmicrosoft.com"}}],
}
WRAPPED = (
    '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n'
    '<meta content="text/html; charset=us-ascii">\r\n</head>\r\n<body>\r\n'
    "They were <b>awesome</b>!\r\n</body>\r\n</html>\r\n"
)
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_seed_example_1_matches_property_for_property(server: RunningServer) -> None:
    with server.client() as c:
        r = c.post("/me/messages", json=EXAMPLE_1)
        drafts = c.get("/me/mailFolders/drafts").json()
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/json")
    m = r.json()
    oid = user_id(server)
    assert m["@odata.context"].endswith(f"/v1.0/$metadata#users('{oid}')/messages/$entity")
    assert m["@odata.etag"] == f'W/"{m["changeKey"]}"'
    for prop in ("createdDateTime", "lastModifiedDateTime", "receivedDateTime", "sentDateTime"):
        assert DATE.match(m[prop]), prop
    assert m["receivedDateTime"] == m["sentDateTime"] == m["createdDateTime"]
    assert m["categories"] == []
    assert m["hasAttachments"] is False
    assert re.match(r"^<[^<>@]+@[^<>@]+>$", m["internetMessageId"])
    assert m["subject"] == "Did you see last night's game?"
    assert m["bodyPreview"] == "They were awesome!"
    assert m["importance"] == "low"
    assert m["parentFolderId"] == drafts["id"]
    assert m["conversationId"] and m["id"] and "/" not in m["id"] and "+" not in m["id"]
    assert len(base64.b64decode(m["conversationIndex"])) == 22
    assert m["isDeliveryReceiptRequested"] is False
    assert m["isReadReceiptRequested"] is False
    assert m["isRead"] is True
    assert m["isDraft"] is True
    assert m["webLink"] == (
        f"{server.base}/owa/?ItemID={m['id']}&exvsurl=1&viewmodel=ReadMessageItem"
    )
    assert m["inferenceClassification"] == "focused"
    assert m["body"] == {"contentType": "html", "content": WRAPPED}
    assert m["toRecipients"] == [
        {"emailAddress": {"name": "Adele Vance", "address": "AdeleV@contoso.onmicrosoft.com"}}
    ]
    assert m["ccRecipients"] == [] and m["bccRecipients"] == [] and m["replyTo"] == []
    assert m["flag"] == {"flagStatus": "notFlagged"}
    owner = {"emailAddress": {"name": "Adele Vance", "address": ME}}
    assert m["from"] == owner and m["sender"] == owner
    assert "internetMessageHeaders" not in m


def test_seed_example_2_headers_kept_but_not_echoed(server: RunningServer) -> None:
    body = {
        "subject": "9/8/2018: concert",
        "body": {"contentType": "HTML", "content": "The group represents Washington."},
        "toRecipients": [{"emailAddress": {"address": "AlexW@contoso.OnMicrosoft.com"}}],
        "internetMessageHeaders": [
            {"name": "x-custom-header-group-name", "value": "Washington"},
            {"name": "x-custom-header-group-id", "value": "WA001"},
        ],
    }
    with server.client() as c:
        r = c.post("/me/messages", json=body)
        assert r.status_code == 201
        m = r.json()
        assert "internetMessageHeaders" not in m
        assert m["importance"] == "normal"
        assert m["bodyPreview"] == "The group represents Washington."
        assert m["flag"] == {"flagStatus": "notFlagged"}
        assert m["toRecipients"][0]["emailAddress"] == {
            "name": "Alex Wilber",
            "address": "AlexW@contoso.OnMicrosoft.com",
        }
        got = c.get(f"/me/messages/{m['id']}?$select=internetMessageHeaders")
        assert got.status_code == 200
        sel = got.json()
        assert sel["@odata.context"].endswith("/messages(internetMessageHeaders)/$entity")
        assert sel["internetMessageHeaders"] == body["internetMessageHeaders"]
        assert set(sel) == {"@odata.context", "@odata.etag", "id", "internetMessageHeaders"}
        assert "internetMessageHeaders" not in c.get(f"/me/messages/{m['id']}").json()


def test_every_create_path(server: RunningServer) -> None:
    oid = user_id(server)
    with server.client() as c:
        inbox = c.get("/me/mailFolders/inbox").json()["id"]
        drafts = c.get("/me/mailFolders/drafts").json()["id"]
        for path, folder in (
            (f"/users/{ME}/messages", drafts),
            (f"/users/{oid}/messages", drafts),
            ("/me/mailFolders/InBox/messages", inbox),
            (f"/users/{oid}/mailFolders/{inbox}/messages", inbox),
            (f"/users('{ME}')/mailFolders('inbox')/messages", inbox),
        ):
            r = c.post(path, json={"subject": path})
            assert r.status_code == 201, (path, r.text)
            m = r.json()
            assert m["parentFolderId"] == folder, path
            assert m["isDraft"] is True
            assert f"users('{oid}')" in m["@odata.context"]
            assert c.get(f"/users/{oid}/messages/{m['id']}").json()["subject"] == path
            assert c.get(f"/me/messages/{m['id']}").status_code == 200


def test_text_body_kept_and_preview_cut(server: RunningServer) -> None:
    long_text = "word " * 200 + "\n\nsecond   line"
    with server.client() as c:
        m = c.post(
            "/me/messages", json={"body": {"contentType": "Text", "content": long_text}}
        ).json()
    assert m["body"] == {"contentType": "text", "content": long_text}
    assert len(m["bodyPreview"]) <= 255
    assert m["bodyPreview"].startswith("word word")
    assert m["subject"] is None


def test_read_only_ignored_and_unknown_properties_refused(server: RunningServer) -> None:
    with server.client() as c:
        refused = c.post("/me/messages", json={"subject": "x", "someAppProperty": {"x": 1}})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == "RequestBodyRead"
        r = c.post(
            "/me/messages",
            json={
                "subject": "open type",
                "@odata.type": "#microsoft.graph.message",
                "isDraft": False,
                "id": "AAMkADNlNYjSAAA=",
                "categories": ["Red category"],
                "ccRecipients": [{"emailAddress": {"address": "nobody@example.com"}}],
            },
        )
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["isDraft"] is True and m["id"] != "AAMkADNlNYjSAAA="
    assert m["categories"] == ["Red category"]
    assert m["ccRecipients"] == [
        {"emailAddress": {"name": "nobody@example.com", "address": "nobody@example.com"}}
    ]


def test_extensions_in_the_same_post(server: RunningServer) -> None:
    ext = {
        "@odata.type": "microsoft.graph.openTypeExtension",
        "extensionName": "Com.Contoso.Referral",
        "companyName": "Wingtip Toys",
        "dealValue": 500050,
        "expirationDate": "2015-12-03T10:00:00.000Z",
    }
    with server.client() as c:
        r = c.post("/me/messages", json={"subject": "ext", "extensions": [ext]})
        assert r.status_code == 201
        m = r.json()
        assert m["extensions@odata.context"].endswith(f"/messages('{m['id']}')/extensions")
        (got,) = m["extensions"]
        assert got["@odata.type"] == "#microsoft.graph.openTypeExtension"
        assert got["id"] == "microsoft.graph.openTypeExtension.Com.Contoso.Referral"
        assert got["companyName"] == "Wingtip Toys" and got["dealValue"] == 500050
        assert "extensions" not in c.get(f"/me/messages/{m['id']}").json()
        expanded = c.get(f"/me/messages/{m['id']}?$expand=extensions").json()
        assert expanded["extensions"][0]["extensionName"] == "Com.Contoso.Referral"
        one = c.get(
            f"/me/messages/{m['id']}?$expand=extensions($filter=id eq "
            "'Microsoft.OutlookServices.OpenTypeExtension.Com.Contoso.Referral')"
        ).json()
        assert len(one["extensions"]) == 1
        named = c.get(f"/me/messages/{m['id']}/extensions/Com.Contoso.Referral")
        assert named.status_code == 200 and named.json()["dealValue"] == 500050


def test_file_attachments_stored_and_listed(server: RunningServer) -> None:
    data = b"hello attachment" * 10
    attachment = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "hello.txt",
        "contentBytes": base64.b64encode(data).decode(),
    }
    inline = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "logo.png",
        "contentType": "image/png",
        "contentBytes": base64.b64encode(b"\x89PNG fake").decode(),
        "isInline": True,
        "contentId": "logo",
    }
    with server.client() as c:
        m = c.post("/me/messages", json={"subject": "att", "attachments": [attachment]}).json()
        assert m["hasAttachments"] is True
        listed = c.get(f"/me/messages/{m['id']}/attachments").json()["value"]
        assert len(listed) == 1
        a = listed[0]
        assert a["name"] == "hello.txt" and a["size"] == len(data)
        assert a["contentType"] == "text/plain" and a["isInline"] is False
        assert base64.b64decode(a["contentBytes"]) == data
        one = c.get(f"/me/messages/{m['id']}/attachments/{a['id']}").json()
        assert one["@odata.type"] == "#microsoft.graph.fileAttachment"
        expanded = c.get(f"/me/messages/{m['id']}?$expand=attachments").json()
        assert expanded["attachments"][0]["id"] == a["id"]
        only_inline = c.post("/me/messages", json={"attachments": [inline]}).json()
        assert only_inline["hasAttachments"] is False
        assert len(c.get(f"/me/messages/{only_inline['id']}/attachments").json()["value"]) == 1
