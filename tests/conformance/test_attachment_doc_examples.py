"""Replay the Graph docs' attachment examples (Add attachment, Get attachment, List
attachments) against the real server, on both engines.

Sample ids, sizes and bytes are the docs' own: the attachments are made by the test and the
sample ids mapped onto them; shapes, server-set fields and normalisations are compared as in
test_graph_doc_examples.py. Where an example cannot be replayed as written, the test says why
and checks what this server answers instead.
"""

from __future__ import annotations

import base64
import json
import re
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx

from tests.conformance import shapes
from tests.conftest import RunningServer
from tests.mail_api import assert_error

DATA = json.loads((Path(__file__).parent / "data" / "attachment-doc-examples.json").read_text())
EXAMPLES = {e["name"]: e for e in DATA["examples"]}
VOLATILE = {"id", "lastModifiedDateTime", "@odata.context", "item@odata.context",
            "createdDateTime", "receivedDateTime", "sentDateTime", "internetMessageId",
            "conversationId", "conversationIndex", "webLink"}  # fmt: skip
# a GIF whose first bytes are the docs' sample "R0lGODdh…" (GIF87a): the sample itself is cut
# short (15 characters are not base64), as its size (1008) says
GIF87 = b"GIF87a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00"
GIF87 += b"\x01\x00\x00\x02\x02D\x01\x00;"


def check_shape(got: Any, expected: Any) -> None:
    shapes.check_shape(got, expected, VOLATILE)


def path_of(example: dict[str, Any], message_id: str, attachment_id: str = "") -> str:
    """The example's path with its message (and attachment) id replaced by ours; an example
    without sample keys has its ids after messages/ (and attachments/)."""
    path = str(example["path"])
    keys = example.get("sample_keys")
    if not keys:
        return re.sub(r"(/messages/)[^/]+", lambda m: m.group(1) + message_id, path)
    path = path.replace(keys[0], message_id)
    if len(keys) > 1:
        path = path.replace(keys[1], attachment_id)
    return path


def a_draft(c: httpx.Client) -> str:
    r = c.post("/me/messages", json={"subject": "attachment examples"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_every_copied_example_is_replayed() -> None:
    replayed = {
        "create_file_attachment_from_message_v1", "create_item_attachment_from_message_v1",
        "get_and_expand_item_attachment", "get_reference_attachment", "get_value_file_attachment",
        "get_value_message_attachment", "message_get_attachments_v1",
    }  # fmt: skip
    assert set(EXAMPLES) == replayed


def test_add_file_attachment(server: RunningServer) -> None:
    example = EXAMPLES["create_file_attachment_from_message_v1"]
    with server.client() as c:
        draft = a_draft(c)
        path = path_of(example, draft)
        # as written, the sample bytes are not base64: a clear 400, nothing stored
        as_written = c.post(path, json=example["request_body"])
        error = assert_error(as_written, 400, "RequestBodyRead")
        assert "not valid base64" in str(error["message"])
        body = dict(example["request_body"], contentBytes=base64.b64encode(GIF87).decode())
        r = c.post(path, json=body)
    assert r.status_code == example["expected_status"], r.text
    got = r.json()
    expected = dict(example["response_body"])
    assert expected.pop("size") and got["size"] == len(GIF87)
    assert expected.pop("contentBytes").startswith("R0lGODdh")
    assert got["contentBytes"] == body["contentBytes"]
    check_shape(got, expected)  # contentType image/gif: from the bytes, the name has no type
    assert got["@odata.type"] == "#" + example["response_odata_type"]


def test_add_item_attachment(server: RunningServer) -> None:
    """The docs attach an event; events are not a resource of this server: a clear 400. The
    same request with a message as its item is answered as the example shows."""
    example = EXAMPLES["create_item_attachment_from_message_v1"]
    with server.client() as c:
        draft = a_draft(c)
        path = path_of(example, draft)
        refused = c.post(path, json=example["request_body"])
        error = assert_error(refused, 400, "RequestBodyRead")
        assert "Only messages" in str(error["message"])
        item = {k: v for k, v in example["request_body"]["item"].items()
                if k not in ("start", "end")}  # fmt: skip
        item["@odata.type"] = "microsoft.graph.message"
        body = dict(example["request_body"], item=item)
        r = c.post(path, json=body)
    assert r.status_code == example["expected_status"], r.text
    expected = dict(example["response_body"])
    assert expected.pop("size") and r.json()["size"] > 0
    check_shape(r.json(), expected)


def test_get_and_expand_item_attachment(server: RunningServer) -> None:
    example = EXAMPLES["get_and_expand_item_attachment"]
    shown = example["response_body"]
    sample = shown["item"]
    writable = ("subject", "importance", "isDeliveryReceiptRequested", "isReadReceiptRequested",
                "isRead", "sender", "from", "toRecipients", "ccRecipients", "flag")  # fmt: skip
    item = {"@odata.type": "microsoft.graph.message", **{k: sample[k] for k in writable}}
    with server.client() as c:
        draft = a_draft(c)
        made = c.post(f"/me/messages/{draft}/attachments", json={
            "@odata.type": "#microsoft.graph.itemAttachment", "name": shown["name"],
            "item": item}).json()  # fmt: skip
        r = c.get(path_of(example, draft, made["id"]))
    assert r.status_code == example["expected_status"], r.text
    got = r.json()
    expected = json.loads(json.dumps(shown))
    assert expected.pop("size") and got["size"] > 0
    for prop in ("body", "bodyPreview"):  # the sample's preview is not of its (empty) body
        expected["item"].pop(prop)
    check_shape(got, expected)
    assert got["@odata.context"].endswith(f"/messages('{draft}')/attachments/$entity")
    assert got["item@odata.context"].endswith(
        f"/attachments('{made['id']}')/microsoft.graph.itemAttachment/item/$entity"
    )


def test_get_reference_attachment(server: RunningServer) -> None:
    example = EXAMPLES["get_reference_attachment"]
    shown = example["response_body"]
    with server.client() as c:
        draft = a_draft(c)
        made = c.post(f"/me/messages/{draft}/attachments", json={
            "@odata.type": "#microsoft.graph.referenceAttachment", "name": shown["name"],
            "contentType": shown["contentType"], "isInline": shown["isInline"],
            "sourceUrl": "https://contoso.sharepoint.com/Shared Documents/invoice.docx"
            .replace(" ", "%20")}).json()  # fmt: skip
        r = c.get(path_of(example, draft, made["id"]))
        value = c.get(path_of(example, draft, made["id"]) + "/$value")
    assert r.status_code == example["expected_status"], r.text
    expected = dict(shown)
    assert expected.pop("size") and r.json()["size"] > 0
    check_shape(r.json(), expected)
    assert_error(value, 405, "MethodNotAllowed")  # "returns HTTP 405", as the page says


def test_get_value_file_attachment(server: RunningServer) -> None:
    example = EXAMPLES["get_value_file_attachment"]
    data = bytes(range(256))
    with server.client() as c:
        draft = a_draft(c)
        made = c.post(f"/me/messages/{draft}/attachments", json={
            "@odata.type": "#microsoft.graph.fileAttachment", "name": "raw.bin",
            "contentType": "application/x-raw",
            "contentBytes": base64.b64encode(data).decode()}).json()  # fmt: skip
        r = c.get(path_of(example, draft, made["id"]))
    assert r.status_code == example["expected_status"]
    assert r.content == data and r.headers["content-type"] == "application/x-raw"


def test_get_value_message_attachment(server: RunningServer) -> None:
    example = EXAMPLES["get_value_message_attachment"]
    shown = message_from_bytes(example["response_body"].encode(), policy=policy.default)
    item = {
        "@odata.type": "microsoft.graph.message",
        "subject": shown["Subject"],
        "from": {"emailAddress": {"name": "Megan Bowen",
                                  "address": "MeganB@contoso.onmicrosoft.com"}},
        "toRecipients": [{"emailAddress": {"name": "Adele Vance",
                                           "address": "AdeleV@contoso.onmicrosoft.com"}}],
        "body": {"contentType": "html", "content": "Does mid month work for you?"},
    }  # fmt: skip
    with server.client() as c:
        draft = a_draft(c)
        made = c.post(f"/me/messages/{draft}/attachments", json={
            "@odata.type": "#microsoft.graph.itemAttachment", "name": "lunch",
            "item": item}).json()  # fmt: skip
        r = c.get(path_of(example, draft, made["id"]))
    assert r.status_code == example["expected_status"], r.text
    got = message_from_bytes(r.content, policy=policy.default)
    for header in ("From", "To", "Subject", "Thread-Index", "Date", "Message-ID", "MIME-Version"):
        assert got[header], header
    assert got["Subject"] == shown["Subject"]
    assert "meganb@contoso.onmicrosoft.com" in got["From"].lower()
    assert got.get_content_type() == shown.get_content_type() == "multipart/alternative"
    text = got.get_body(preferencelist=("plain",))
    assert text is not None and "Does mid month work for you?" in text.get_content()


def test_list_attachments(server: RunningServer) -> None:
    example = EXAMPLES["message_get_attachments_v1"]
    [sample] = example["response_body"]["value"]
    with server.client() as c:
        draft = a_draft(c)
        c.post(f"/me/messages/{draft}/attachments", json={
            "@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt",
            "contentBytes": "aGk="})  # fmt: skip
        r = c.get(path_of(example, draft))
    assert r.status_code == example["expected_status"], r.text
    [got] = r.json()["value"]
    assert set(sample) <= set(got)  # the sample's values are placeholders ("name-value", 99)
    assert got["@odata.type"] == "#" + sample["@odata.type"]
    assert got["isInline"] is sample["isInline"] and got["contentId"] is None
