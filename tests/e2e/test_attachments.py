"""The attachments API over real HTTP on both engines: POST and DELETE …/attachments, the three
attachment types (file, item, reference), $expand and $select, the limits, hostile input, and
what a sent message with file, inline and item attachments looks like at the SMTP sink and in
a local recipient's Inbox."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.mail_api import ALEX, MEGAN, assert_error, inbox_items, unique, user_id
from tests.sink import Sink, wait_for

FILE = "#microsoft.graph.fileAttachment"
ITEM = "#microsoft.graph.itemAttachment"
REFERENCE = "#microsoft.graph.referenceAttachment"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def file_att(name: str = "a.txt", data: bytes = b"hello", **over: Any) -> dict[str, Any]:
    return {"@odata.type": FILE, "name": name, "contentBytes": b64(data), **over}


def item_att(subject: str = "attached", **item: Any) -> dict[str, Any]:
    return {
        "@odata.type": ITEM,
        "name": subject,
        "item": {
            "@odata.type": "microsoft.graph.message",
            "subject": subject,
            "body": {"contentType": "text", "content": "inside the attached message"},
            "from": {"emailAddress": {"address": MEGAN, "name": "Megan Bowen"}},
            "toRecipients": [{"emailAddress": {"address": ALEX}}],
            **item,
        },
    }


def draft(c: httpx.Client, **props: Any) -> dict[str, Any]:
    r = c.post("/me/messages", json={"subject": unique("att"), **props})
    assert r.status_code == 201, r.text
    return dict(r.json())


def add(c: httpx.Client, message_id: str, body: Any, path: str = "/me/messages") -> httpx.Response:
    return c.post(f"{path}/{message_id}/attachments", json=body)


def listed(c: httpx.Client, message_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/me/messages/{message_id}/attachments")
    assert r.status_code == 200, r.text
    return list(r.json()["value"])


def mime(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# ---------------------------------------------------------------- adding and deleting


def test_add_a_file_attachment(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        r = add(c, made["id"], {"@odata.type": FILE, "name": "smile.gif", "contentBytes": b64(GIF)})
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["@odata.type"] == FILE
        assert got["@odata.context"].endswith(
            f"/messages('{made['id']}')/attachments/$entity"
        )  # fmt: skip
        assert got["name"] == "smile.gif" and got["contentType"] == "image/gif"  # from the name
        assert got["size"] == len(GIF) and got["contentBytes"] == b64(GIF)
        assert got["isInline"] is False and got["contentId"] is None
        assert got["contentLocation"] is None and got["lastModifiedDateTime"].endswith("Z")
        assert r.headers["location"].endswith(f"/attachments('{got['id']}')")
        after = c.get(f"/me/messages/{made['id']}").json()
        assert after["hasAttachments"] is True
        assert after["changeKey"] != made["changeKey"]
        assert after["@odata.etag"] == f'W/"{after["changeKey"]}"'
        assert [a["id"] for a in listed(c, made["id"])] == [got["id"]]
        value = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}/$value")
        assert value.content == GIF and value.headers["content-type"] == "image/gif"


def test_every_path_form(server: RunningServer) -> None:
    me = user_id(server)
    with server.client() as c:
        made = draft(c)
        forms = [
            "/me/messages",
            f"/users/{me}/messages",
            "/users/AdeleV@contoso.onmicrosoft.com/messages",
            "/me/mailFolders/drafts/messages",
            f"/users/{me}/mailFolders('drafts')/messages",
        ]
        for n, path in enumerate(forms):
            r = add(c, made["id"], file_att(f"{n}.txt"), path=path)
            assert r.status_code == 201, (path, r.text)
        names = [a["name"] for a in listed(c, made["id"])]
        assert names == [f"{n}.txt" for n in range(len(forms))]  # in the order added
        first = listed(c, made["id"])[0]["id"]
        r = c.delete(f"/me/mailFolders/drafts/messages/{made['id']}/attachments/{first}")
        assert r.status_code == 204 and r.content == b""
        assert len(listed(c, made["id"])) == len(forms) - 1


def test_inline_attachments_do_not_count_for_has_attachments(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c, body={"contentType": "html", "content": "<img src='cid:logo'>"})
        inline = add(c, made["id"], file_att("logo.gif", GIF, isInline=True, contentId="logo"))
        assert inline.status_code == 201, inline.text
        assert inline.json()["isInline"] is True and inline.json()["contentId"] == "logo"
        assert c.get(f"/me/messages/{made['id']}").json()["hasAttachments"] is False
        plain = add(c, made["id"], file_att("report.txt")).json()
        assert c.get(f"/me/messages/{made['id']}").json()["hasAttachments"] is True
        found = c.get("/me/messages", params={
            "$filter": f"hasAttachments eq true and subject eq '{made['subject']}'"
        }).json()["value"]  # fmt: skip
        assert [m["id"] for m in found] == [made["id"]]  # the column follows the document
        assert c.delete(f"/me/messages/{made['id']}/attachments/{plain['id']}").status_code == 204
        after = c.get(f"/me/messages/{made['id']}").json()
        assert after["hasAttachments"] is False
        assert [a["name"] for a in listed(c, made["id"])] == ["logo.gif"]


def test_adding_to_a_received_message(server: RunningServer) -> None:
    """Graph adds attachments to any message of one's mailbox, not only drafts; the change
    key changes."""
    subject = unique("received")
    with server.client() as c:
        sent = c.post(
            "/me/sendMail",
            json={
                "message": {
                    "subject": subject,
                    "toRecipients": [{"emailAddress": {"address": ALEX}}],
                }
            },
        )
        assert sent.status_code == 202
    [item] = wait_for(lambda: inbox_items(server, ALEX, subject))
    with server.client(server.token(ALEX)) as c:
        r = add(c, item["id"], file_att("note.txt"))
        assert r.status_code == 201, r.text
        after = c.get(f"/me/messages/{item['id']}").json()
        assert after["hasAttachments"] is True and after["isDraft"] is False
        assert after["changeKey"] != item["changeKey"]


def test_delete_refusals(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c, attachments=[file_att()])
        [a] = listed(c, made["id"])
        assert c.delete(f"/me/messages/{made['id']}/attachments/{a['id']}").status_code == 204
        again = c.delete(f"/me/messages/{made['id']}/attachments/{a['id']}")
        assert_error(again, 404, "ErrorItemNotFound")
        assert_error(c.get(f"/me/messages/{made['id']}/attachments/{a['id']}"), 404,
                     "ErrorItemNotFound")  # fmt: skip
        gone = c.delete(f"/me/messages/AAMkADhMGAAA=/attachments/{a['id']}")
        assert_error(gone, 404, "ErrorItemNotFound")
        assert_error(add(c, "AAMkADhMGAAA=", file_att()), 404, "ErrorItemNotFound")
        assert_error(add(c, "abc", file_att()), 400, "ErrorInvalidIdMalformed")


def test_permissions(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c, attachments=[file_att("kept.txt")])
    [a] = listed(server.client(), made["id"])
    with server.client(server.token(scopes="Mail.Read")) as c:
        assert_error(add(c, made["id"], file_att()), 403, "ErrorAccessDenied")
        r = c.delete(f"/me/messages/{made['id']}/attachments/{a['id']}")
        assert_error(r, 403, "ErrorAccessDenied")
        assert len(listed(c, made["id"])) == 1  # reading is allowed
    with server.client(server.token(MEGAN)) as c:  # not her mailbox, no grant
        r = add(c, made["id"], file_att(), path="/users/AdeleV@contoso.onmicrosoft.com/messages")
        assert r.status_code == 403, r.text
    with server.client() as c:
        after = c.get(f"/me/messages/{made['id']}").json()
        assert after["changeKey"] == made["changeKey"]
        assert [x["name"] for x in listed(c, made["id"])] == ["kept.txt"]


def test_a_shared_mailbox(server: RunningServer) -> None:
    """A delegate adds and deletes with Mail.ReadWrite.Shared and a readwrite grant; a read
    grant or a read-only scope is 403."""
    owner, editor, reader = (f"{unique(n)}@contoso.onmicrosoft.com" for n in ("own", "ed", "rd"))
    for upn in (owner, editor, reader):
        server.cli("users", "add", "--name", upn.split("@")[0], "--mail", upn)
    server.cli("mailbox", "grant", owner, editor, "--rights", "readwrite")
    server.cli("mailbox", "grant", owner, reader, "--rights", "read")
    with server.client(server.token(owner)) as c:
        made = draft(c)
    path = f"/users/{owner}/messages"
    for who, scopes in ((reader, "Mail.ReadWrite.Shared"), (editor, "Mail.Read.Shared")):
        with server.client(server.token(who, scopes)) as c:
            assert_error(add(c, made["id"], file_att(), path=path), 403, "ErrorAccessDenied")
    with server.client(server.token(editor, "Mail.ReadWrite.Shared")) as c:
        r = add(c, made["id"], file_att("shared.txt"), path=path)
        assert r.status_code == 201, r.text
        assert r.json()["@odata.context"].endswith("/attachments/$entity")
        gone = c.delete(f"{path}/{made['id']}/attachments/{r.json()['id']}")
        assert gone.status_code == 204
    with server.client(server.token(owner)) as c:
        assert listed(c, made["id"]) == []


def test_an_application_may_add_and_delete(server: RunningServer) -> None:
    token = server.app_token()
    with server.client() as c:
        made = draft(c)
    with server.client(token) as c:
        r = add(c, made["id"], file_att("app.txt"), path=f"/users/{user_id(server)}/messages")
        assert r.status_code == 201, r.text
        r = c.delete(f"/users/{user_id(server)}/messages/{made['id']}/attachments/{r.json()['id']}")
        assert r.status_code == 204


# ---------------------------------------------------------------- the types


@pytest.mark.parametrize(
    "kind",
    ["#microsoft.graph.fileAttachment", "microsoft.graph.fileAttachment",
     "#Microsoft.Graph.FileAttachment", "MICROSOFT.GRAPH.FILEATTACHMENT"],
)  # fmt: skip
def test_the_type_is_read_without_case_or_hash(server: RunningServer, kind: str) -> None:
    with server.client() as c:
        made = draft(c)
        r = add(c, made["id"], {"@odata.type": kind, "name": "a.txt", "contentBytes": "aGk="})
        assert r.status_code == 201, r.text
        assert r.json()["@odata.type"] == FILE


@pytest.mark.parametrize(
    "body",
    [{"name": "a.txt", "contentBytes": "aGk="},
     {"@odata.type": "", "name": "a.txt", "contentBytes": "aGk="},
     {"@odata.type": "#microsoft.graph.attachment", "name": "a.txt", "contentBytes": "aGk="}],
)  # fmt: skip
def test_an_attachment_needs_its_type(server: RunningServer, body: dict[str, Any]) -> None:
    with server.client() as c:
        made = draft(c)
        error = assert_error(add(c, made["id"], body), 422, "UnprocessableType")
        assert (
            "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'"
            in str(error["message"])
        )
        inline = c.post("/me/messages", json={"attachments": [body]})
        assert_error(inline, 422, "UnprocessableType")
        sent = c.post(
            "/me/sendMail",
            json={
                "message": {
                    "toRecipients": [{"emailAddress": {"address": ALEX}}],
                    "attachments": [body],
                }
            },
        )
        assert_error(sent, 422, "UnprocessableType")
        assert listed(c, made["id"]) == []


@pytest.mark.parametrize(
    ("body", "words"),
    [({"@odata.type": FILE, "name": "a", "contentBytes": "not base64!"}, "not valid base64"),
     ({"@odata.type": FILE, "name": "a", "contentBytes": "aGk"}, "not valid base64"),
     ({"@odata.type": FILE, "name": "a"}, "contentBytes"),
     ({"@odata.type": FILE, "contentBytes": "aGk="}, "name"),
     ({"@odata.type": FILE, "name": "a", "contentBytes": 5}, "contentBytes"),
     ({"@odata.type": FILE, "name": "a", "contentBytes": "aGk=", "colour": "red"},
      "The property 'colour' does not exist on type 'microsoft.graph.fileAttachment'"),
     ({"@odata.type": FILE, "name": "a", "contentBytes": "aGk=", "isInline": "yes"}, "isInline"),
     ({"@odata.type": "#microsoft.graph.event", "name": "a"}, "is not an attachment type"),
     ({"@odata.type": 5, "name": "a"}, "must be a string"),
     ({"@odata.type": REFERENCE, "name": "link"}, "sourceUrl"),
     ({"@odata.type": REFERENCE, "name": "l", "sourceUrl": "https://x/\r\nX-Evil: 1"}, "URL"),
     ({"@odata.type": REFERENCE, "name": "l", "sourceUrl": "https://x/", "permission": "own"},
      "permission"),
     ({"@odata.type": ITEM, "name": "no item"}, "needs an 'item'"),
     ({"@odata.type": ITEM, "name": "event", "item": {"@odata.type": "#microsoft.graph.event"}},
      "Only messages"),
     ({"@odata.type": ITEM, "name": "x", "item": {"@odata.type": "#microsoft.graph.message",
                                                  "subjekt": "typo"}},
      "The property 'subjekt' does not exist on type 'microsoft.graph.message'"),
     ({"@odata.type": ITEM, "name": "x", "contentType": "message/rfc822",
       "item": {"@odata.type": "#microsoft.graph.message"}}, "contentType")],
)  # fmt: skip
def test_bad_attachments(server: RunningServer, body: dict[str, Any], words: str) -> None:
    with server.client() as c:
        made = draft(c)
        error = assert_error(add(c, made["id"], body), 400, "RequestBodyRead")
        assert words in str(error["message"]), error
        inline = c.post("/me/messages", json={"subject": "never", "attachments": [body]})
        assert_error(inline, 400, "RequestBodyRead")
        assert listed(c, made["id"]) == []
        assert c.get(f"/me/messages/{made['id']}").json()["changeKey"] == made["changeKey"]


def test_an_item_without_its_type(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        body = {"@odata.type": ITEM, "name": "x", "item": {"subject": "untyped"}}
        assert_error(add(c, made["id"], body), 422, "UnprocessableType")


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b"", b'{"@odata.type": "#microsoft.graph.fileAttachment"'],
)  # fmt: skip
def test_bodies_that_are_not_an_object(server: RunningServer, raw: bytes) -> None:
    with server.client() as c:
        made = draft(c)
        r = c.post(f"/me/messages/{made['id']}/attachments", content=raw,
                   headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] in ("UnableToDeserializePostBody", "RequestBodyRead")
        assert listed(c, made["id"]) == []


def test_item_attachment(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        body = item_att(
            "Reminder - please bring laptop",
            ccRecipients=[{"emailAddress": {"address": ADELE_ADDRESS}}],
            internetMessageHeaders=[{"name": "x-inner", "value": "yes"}],
            attachments=[file_att("inner.txt", b"inner bytes")],
        )
        r = add(c, made["id"], body)
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["@odata.type"] == ITEM and got["contentType"] is None
        assert got["name"] == "Reminder - please bring laptop" and got["size"] > 0
        assert "item" not in got and "contentBytes" not in got
        plain = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}").json()
        assert "item" not in plain
        r = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}",
                  params={"$expand": "microsoft.graph.itemattachment/item"})  # fmt: skip
        assert r.status_code == 200, r.text
        expanded = r.json()
        assert expanded["item@odata.context"].endswith(
            f"/attachments('{got['id']}')/microsoft.graph.itemAttachment/item/$entity"
        )
        item = expanded["item"]
        assert item["@odata.type"] == "#microsoft.graph.message"
        assert item["subject"] == "Reminder - please bring laptop"
        assert item["from"]["emailAddress"]["address"] == MEGAN
        assert item["ccRecipients"][0]["emailAddress"]["address"] == ADELE_ADDRESS
        assert item["isDraft"] is False and item["hasAttachments"] is True
        assert item["internetMessageHeaders"] == [{"name": "x-inner", "value": "yes"}]
        [inner] = item["attachments"]
        assert inner["name"] == "inner.txt"
        assert base64.b64decode(inner["contentBytes"]) == b"inner bytes"
        value = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}/$value")
        assert value.status_code == 200
        assert value.headers["content-type"] == "message/rfc822"
        as_mime = mime(value.content)
        assert as_mime["Subject"] == "Reminder - please bring laptop"
        assert MEGAN.lower() in as_mime["From"].lower() and as_mime["x-inner"] == "yes"
        [part] = list(as_mime.iter_attachments())
        assert (
            part.get_filename() == "inner.txt" and part.get_payload(decode=True) == b"inner bytes"
        )
        bad = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}",
                    params={"$expand": "somethingElse"})  # fmt: skip
        assert_error(bad, 400, "BadRequest")


ADELE_ADDRESS = "AdeleV@contoso.onmicrosoft.com"


def _nested(levels: int) -> dict[str, Any]:
    """An item attachment holding an item attachment … ``levels`` items deep."""
    inner: dict[str, Any] = file_att("bottom.txt", b"at the bottom")
    for n in range(levels):
        inner = item_att(f"level {levels - n}", attachments=[inner])
    return inner


def test_nested_items_to_thirty_levels(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        r = add(c, made["id"], _nested(30))
        assert r.status_code == 201, r.text
        value = c.get(f"/me/messages/{made['id']}/attachments/{r.json()['id']}/$value")
        part = mime(value.content)
        for _ in range(29):
            [attached] = list(part.iter_attachments())
            assert attached.get_content_type() == "message/rfc822"
            part = attached.get_content()
        [bottom] = list(part.iter_attachments())
        assert bottom.get_payload(decode=True) == b"at the bottom"
        deeper = add(c, made["id"], _nested(31))
        error = assert_error(deeper, 400, "RequestBodyRead")
        assert "at most 30 levels" in str(error["message"])
        assert len(listed(c, made["id"])) == 1


def test_reference_attachment(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        body = {"@odata.type": "#microsoft.graph.referenceAttachment",
                "name": "Sales Invoice Template.docx",
                "sourceUrl": "https://contoso.sharepoint.com/docs/invoice.docx",
                "providerType": "oneDriveBusiness", "permission": "Edit", "isFolder": False,
                "contentType": "application/vnd.openxmlformats-officedocument."
                               "wordprocessingml.document"}  # fmt: skip
        r = add(c, made["id"], body)
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["@odata.type"] == REFERENCE and got["size"] > 0
        assert got["sourceUrl"] == body["sourceUrl"] and got["contentType"] == body["contentType"]
        assert got["providerType"] == "oneDriveBusiness" and got["permission"] == "edit"
        assert "contentBytes" not in got
        assert c.get(f"/me/messages/{made['id']}").json()["hasAttachments"] is True
        value = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}/$value")
        assert_error(value, 405, "MethodNotAllowed")
        one = c.get(f"/me/messages/{made['id']}/attachments/{got['id']}").json()
        assert one["sourceUrl"] == body["sourceUrl"] and one["name"] == body["name"]


# ---------------------------------------------------------------- reading


def test_expand_and_select(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c, attachments=[file_att("one.txt", b"1"), file_att("two.txt", b"22")])
        r = c.get(f"/me/messages/{made['id']}",
                  params={"$expand": "attachments($select=name,size)"})  # fmt: skip
        assert r.status_code == 200, r.text
        got = r.json()["attachments"]
        assert [(a["name"], a["size"]) for a in got] == [("one.txt", 1), ("two.txt", 2)]
        assert all(set(a) == {"@odata.type", "@odata.mediaContentType", "id", "name", "size"}
                   for a in got)  # fmt: skip
        full = c.get(f"/me/messages/{made['id']}?$expand=attachments").json()["attachments"]
        assert base64.b64decode(full[1]["contentBytes"]) == b"22"
        selected = c.get(f"/me/messages/{made['id']}/attachments?$select=name").json()["value"]
        assert [a["name"] for a in selected] == ["one.txt", "two.txt"]
        assert all("contentBytes" not in a and "size" not in a for a in selected)
        # $filter is ignored on attachments, as Graph ignores it
        filtered = c.get(f"/me/messages/{made['id']}/attachments",
                         params={"$filter": "name eq 'one.txt'"})  # fmt: skip
        assert filtered.status_code == 200 and len(filtered.json()["value"]) == 2
        unknown = c.get(f"/me/messages/{made['id']}/attachments?$select=colour")
        assert_error(unknown, 400, "RequestBroker--ParseUri")
        bad = c.get(f"/me/messages/{made['id']}", params={"$expand": "attachments($top=1)"})
        assert_error(bad, 400, "BadRequest")


def test_patch_does_not_take_attachments(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        r = c.patch(f"/me/messages/{made['id']}", json={"attachments": [file_att()]})
        error = assert_error(r, 400, "ErrorInvalidRequest")
        assert "POST" in str(error["message"])
        assert listed(c, made["id"]) == []


# ---------------------------------------------------------------- limits


def test_the_request_cap_is_the_size_gate(server: RunningServer) -> None:
    """Graph documents "under 3 MB" for one POST and caps every request at 4 MB; a file of
    3 MB is more than 4 MB as base64 JSON, so the request cap decides (413)."""
    with server.client() as c:
        made = draft(c)
        near = bytes(range(256)) * (2_900_000 // 256)
        r = add(c, made["id"], file_att("near.bin", near))
        assert r.status_code == 201, r.text
        assert r.json()["size"] == len(near)
        value = c.get(f"/me/messages/{made['id']}/attachments/{r.json()['id']}/$value")
        assert value.content == near
        over = add(c, made["id"], file_att("three.bin", b"\x00" * 3 * 1024 * 1024))
        assert_error(over, 413, "RequestEntityTooLarge")
        assert len(listed(c, made["id"])) == 1


def test_zero_bytes_and_duplicate_names(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        empty = add(c, made["id"], file_att("empty.txt", b""))
        assert empty.status_code == 201, empty.text
        assert empty.json()["size"] == 0 and empty.json()["contentBytes"] == ""
        value = c.get(f"/me/messages/{made['id']}/attachments/{empty.json()['id']}/$value")
        assert value.status_code == 200 and value.content == b""
        twins = [add(c, made["id"], file_att("same.txt", data)).json() for data in (b"a", b"b")]
        assert twins[0]["id"] != twins[1]["id"]
        found = [(a["name"], a["contentBytes"]) for a in listed(c, made["id"])]
        assert found == [("empty.txt", ""), ("same.txt", b64(b"a")), ("same.txt", b64(b"b"))]


def test_concurrent_adds_lose_nothing(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)

    def one(n: int) -> int:
        with server.client() as c:
            return add(c, made["id"], file_att(f"{n}.txt", str(n).encode())).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(16)))
    assert set(codes) <= {201, 412}, codes
    with server.client() as c:
        names = sorted(a["name"] for a in listed(c, made["id"]))
        assert len(names) == codes.count(201) and codes.count(201) > 0
        assert c.get(f"/me/messages/{made['id']}").json()["hasAttachments"] is True


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    "over",
    [{"name": "a\r\nX-Evil: 1.txt"}, {"name": "a\x00.txt"}, {"name": "a\u2028.txt"},
     {"contentType": "text/plain\r\nX-Evil: 1"}, {"contentType": "text/plain\x0b"},
     {"contentId": "c1>\r\nX-Evil: 1", "isInline": True}, {"contentId": "c\x7f"}],
)  # fmt: skip
def test_header_breaking_values_are_refused(server: RunningServer, over: dict[str, Any]) -> None:
    with server.client() as c:
        made = draft(c)
        r = add(c, made["id"], file_att(**over))
        assert r.status_code == 400, r.text
        assert listed(c, made["id"]) == []


def test_a_huge_name_round_trips(server: RunningServer, sink: Sink) -> None:
    name = "ü" * 5000 + ".txt"
    subject = unique("huge name")
    with server.client() as c:
        made = draft(
            c, subject=subject, toRecipients=[{"emailAddress": {"address": "far@example.net"}}]
        )
        r = add(c, made["id"], file_att(name, b"x"))
        assert r.status_code == 201, r.text
        assert listed(c, made["id"])[0]["name"] == name
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [got] = wait_for(lambda: sink.with_subject(subject))
    assert all(len(line) <= 998 for line in got.data.split(b"\r\n"))
    [part] = list(got.message.iter_attachments())
    assert part.get_filename() == name


def test_an_item_cannot_inject_headers(server: RunningServer, sink: Sink) -> None:
    """Every text of an attached item reaches the wire on its own line: CR, LF and other
    controls in its subject, names and header values cannot start a header, outside or inside
    the attached message."""
    subject = unique("item injection")
    evil = "hi\r\nBcc: evil@example.net\r\nX-Injected: 1\r\n\r\nbody"
    body = item_att(
        evil,
        **{"from": {"emailAddress": {"address": MEGAN, "name": "M\r\nX-Injected: 2"}}},
    )
    body["name"] = "inner.eml"
    with server.client() as c:
        made = draft(c, subject=subject,
                      toRecipients=[{"emailAddress": {"address": "far@example.net"}}])  # fmt: skip
        assert add(c, made["id"], body).status_code == 201
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [got] = wait_for(lambda: sink.with_subject(subject))
    assert got.rcpt_tos == ["far@example.net"]
    outer = got.message
    assert outer["X-Injected"] is None and outer["Bcc"] is None
    [attached] = list(outer.iter_attachments())
    inner = attached.get_content()
    assert inner["X-Injected"] is None and inner["Bcc"] is None
    assert "X-Injected" in inner["Subject"] and "\n" not in inner["Subject"]


def test_a_bad_address_in_an_item_is_refused_when_given(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c)
        body = item_att(toRecipients=[{"emailAddress": {"address": "not an address"}}])
        assert_error(add(c, made["id"], body), 400, "ErrorInvalidRecipients")
        assert listed(c, made["id"]) == []


# ---------------------------------------------------------------- sending


def test_sent_with_file_inline_item_and_reference(server: RunningServer, sink: Sink) -> None:
    """A draft with every kind of attachment, sent to a remote and a local recipient: parsed
    back at the SMTP sink and read in the local recipient's Inbox."""
    subject = unique("all kinds")
    payload = bytes(range(256)) * 4
    with server.client() as c:
        made = draft(
            c,
            subject=subject,
            body={"contentType": "html", "content": "<p>see <img src='cid:logo'></p>"},
            toRecipients=[{"emailAddress": {"address": "far@example.net"}},
                          {"emailAddress": {"address": ALEX}}],
            attachments=[file_att("data.bin", payload, contentType="application/x-test")],
        )  # fmt: skip
        for body in (
            file_att("logo.gif", GIF, isInline=True, contentId="logo"),
            item_att("the attached one", attachments=[file_att("deep.txt", b"deep")]),
            {"@odata.type": REFERENCE, "name": "plan.docx",
             "sourceUrl": "https://contoso.sharepoint.com/plan.docx"},
        ):  # fmt: skip
            assert add(c, made["id"], body).status_code == 201
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [got] = wait_for(lambda: sink.with_subject(subject))
    mail = got.message
    html = mail.get_body(preferencelist=("html",))
    assert html is not None and "cid:logo" in html.get_content()
    parts = {p.get_filename(): p for p in mail.walk() if p.get_filename()}
    assert parts["data.bin"].get_payload(decode=True) == payload
    assert parts["data.bin"].get_content_type() == "application/x-test"
    assert parts["logo.gif"]["Content-ID"] == "<logo>"
    assert parts["logo.gif"].get_payload(decode=True) == GIF
    attached = parts["the attached one"]
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_content()
    assert inner["Subject"] == "the attached one"
    [deep] = list(inner.iter_attachments())
    assert deep.get_payload(decode=True) == b"deep"
    link = parts["plan.docx"]
    assert link.get_content_type() == "text/uri-list"
    assert link.get_payload(decode=True).strip() == b"https://contoso.sharepoint.com/plan.docx"

    [local] = wait_for(lambda: inbox_items(server, ALEX, subject))
    assert local["hasAttachments"] is True
    with server.client(server.token(ALEX)) as c:
        found = {a["name"]: a for a in listed(c, local["id"])}
    assert base64.b64decode(found["data.bin"]["contentBytes"]) == payload
    assert found["logo.gif"]["isInline"] is True and found["logo.gif"]["contentId"] == "logo"
    # a received message/rfc822 part is an item attachment again (as Exchange shows it)
    kept = found["the attached one"]
    assert kept["@odata.type"] == ITEM and kept["contentType"] is None
    with server.client(server.token(ALEX)) as c:
        r = c.get(f"/me/messages/{local['id']}/attachments/{kept['id']}",
                  params={"$expand": "microsoft.graph.itemAttachment/item"})  # fmt: skip
        assert r.status_code == 200, r.text
        inner = r.json()["item"]
        assert inner["subject"] == "the attached one"
        value = c.get(f"/me/messages/{local['id']}/attachments/{kept['id']}/$value")
    assert value.status_code == 200
    again = mime(value.content)
    assert again["Subject"] == "the attached one"
    [deep_part] = list(again.iter_attachments())
    assert deep_part.get_payload(decode=True) == b"deep"


def test_send_mail_with_an_item_attachment(server: RunningServer, sink: Sink) -> None:
    subject = unique("sendMail item")
    message = {
        "subject": subject,
        "toRecipients": [{"emailAddress": {"address": "far@example.net"}}],
        "attachments": [item_att("forwarded inside"),
                        {"@odata.type": "microsoft.graph.FILEattachment", "name": "a.txt",
                         "contentBytes": b64(b"aaa")}],
    }  # fmt: skip
    with server.client() as c:
        r = c.post("/me/sendMail", json={"message": message})
        assert r.status_code == 202, r.text
    [got] = wait_for(lambda: sink.with_subject(subject))
    kinds = sorted(p.get_content_type() for p in got.message.iter_attachments())
    assert kinds == ["message/rfc822", "text/plain"]
    with server.client() as c:
        [sent] = c.get("/me/mailFolders/sentitems/messages",
                       params={"$filter": f"subject eq '{subject}'"}).json()["value"]  # fmt: skip
        kinds_kept = sorted(a["@odata.type"] for a in listed(c, sent["id"]))
    assert kinds_kept == [FILE, ITEM]


def test_a_created_draft_with_every_type_inline(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c, attachments=[
            file_att("f.txt"), item_att("i"),
            {"@odata.type": REFERENCE, "name": "r", "sourceUrl": "https://example.com/r"},
        ])  # fmt: skip
        assert made["hasAttachments"] is True
        kinds = [a["@odata.type"] for a in listed(c, made["id"])]
        assert kinds == [FILE, ITEM, REFERENCE]
        copied = c.post(f"/me/messages/{made['id']}/copy", json={"destinationId": "inbox"}).json()
        assert [a["@odata.type"] for a in listed(c, copied["id"])] == kinds
        forward = c.post(f"/me/messages/{made['id']}/createForward", json={}).json()
        assert [a["@odata.type"] for a in listed(c, forward["id"])] == kinds


def test_json_of_an_item_attachment_is_stable(server: RunningServer) -> None:
    """What an SDK reads back can be echoed: the attachment JSON it got is accepted again."""
    with server.client() as c:
        made = draft(c, attachments=[item_att("echo")])
        [a] = listed(c, made["id"])
        again = {k: v for k, v in a.items() if k != "@odata.context"}
        path = f"/me/messages/{made['id']}/attachments/{a['id']}"
        expanded = c.get(path, params={"$expand": "microsoft.graph.itemAttachment/item"}).json()
        again["item"] = {k: v for k, v in expanded["item"].items() if k != "attachments"}
        r = add(c, made["id"], json.loads(json.dumps(again)))
        assert r.status_code == 201, r.text
