"""Replay the Graph docs' delta examples against the real server
(``data/delta-doc-examples.json``): example 1 of "Get incremental changes to messages in a
folder" (a round of three pages over five messages, then a round after one was deleted and
another marked read) and "mailFolder: delta".

The docs' folder id is mapped onto a folder the test makes, and their tokens onto the links the
server gives: a client copies the links, so the tokens themselves are the server's own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import unique

DATA = json.loads((Path(__file__).parent / "data" / "delta-doc-examples.json").read_text())
EXAMPLES = {e["name"]: e for e in DATA["examples"]}
SAMPLE_FOLDER = "AQMkADNkNAAAgEMAAAA"
# the five messages of example 1, in the order its pages return them (newest first)
MESSAGES = [
    ("Holiday hours update", False, "Dana Swope", "danas"),
    ("Holiday promotion sale", True, "Samantha Booth", "samanthab"),
    ("Microsoft Virtual Academy at Contoso", True, "Elliot Hyde", "elliot-hyde"),
    ("New or modified user account information", True, "Randi Welch", "randiw"),
    ("Fabric CDN now available", True, "Jodie Sharp", "Jodie.Sharp"),
]


def test_every_copied_example_is_replayed() -> None:
    assert set(EXAMPLES) == {"mailfolder_delta", "get_messages_delta_1", "get_messages_delta_2",
                             "get_messages_delta_3", "get_messages_delta_next"}  # fmt: skip


def shape_of(item: dict[str, Any]) -> set[str]:
    return set(item)


def request(c: httpx.Client, name: str, path: str) -> dict[str, Any]:
    example = EXAMPLES[name]
    r = c.request(example["method"], path, headers=example["request_headers"])
    assert r.status_code == example["expected_status"], (name, r.text)
    assert r.headers["preference-applied"] == "odata.maxpagesize=2"
    body: dict[str, Any] = r.json()
    expected = example["response_body"]
    assert set(body) == set(expected), name
    assert body["@odata.context"].endswith("/v1.0/$metadata#Collection(message)")
    assert len(body["value"]) == len(expected["value"]), name
    for got, want in zip(body["value"], expected["value"], strict=True):
        assert shape_of(got) == shape_of(want), (name, got)
        assert got["@odata.type"] == want["@odata.type"]
        if "@removed" in want:
            assert got["@removed"] == want["@removed"]
    return body


def relative(link: str) -> str:
    """A link's path below /v1.0 (the client is based there)."""
    return link.split("/v1.0", 1)[1]


def test_synchronize_messages_in_a_folder(server: RunningServer) -> None:
    domain = "contoso.onmicrosoft.com"
    with server.client() as c:
        folder = c.post("/me/mailFolders", json={"displayName": unique("docs")}).json()["id"]
        made: list[str] = []
        for subject, read, name, local in reversed(MESSAGES):  # the newest last
            sender = {"emailAddress": {"name": name, "address": f"{local}@{domain}"}}
            r = c.post(f"/me/mailFolders/{folder}/messages", json={
                "subject": subject, "isRead": read, "from": sender, "sender": sender})  # fmt: skip
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        first = EXAMPLES["get_messages_delta_1"]["path"].replace(SAMPLE_FOLDER, folder)
        pages = [request(c, "get_messages_delta_1", first)]
        assert "$skiptoken=" in pages[0]["@odata.nextLink"]
        pages.append(request(c, "get_messages_delta_2", relative(pages[0]["@odata.nextLink"])))
        pages.append(request(c, "get_messages_delta_3", relative(pages[1]["@odata.nextLink"])))
        assert "$deltatoken=" in pages[2]["@odata.deltaLink"]
        seen = [m for page in pages for m in page["value"]]
        assert [(m["subject"], m["isRead"], m["sender"]["emailAddress"]["name"]) for m in seen] == [
            (subject, read, name) for subject, read, name, _ in MESSAGES
        ]
        # the docs' next round: one message deleted, another marked read (the docs' answer
        # shows it with isRead "true", a string: a slip of the page; a boolean here)
        deleted, updated = seen[4]["id"], seen[0]["id"]
        assert c.post(f"/me/messages/{deleted}/permanentDelete").status_code == 204
        assert c.patch(f"/me/messages/{updated}", json={"isRead": True}).status_code == 200
        following = request(c, "get_messages_delta_next", relative(pages[2]["@odata.deltaLink"]))
        by_id = {m["id"]: m for m in following["value"]}
        assert by_id[deleted] == {"@odata.type": "#microsoft.graph.message", "id": deleted,
                                  "@removed": {"reason": "deleted"}}  # fmt: skip
        assert by_id[updated]["isRead"] is True
        assert by_id[updated]["subject"] == "Holiday hours update"


def test_mail_folder_delta(server: RunningServer) -> None:
    example = EXAMPLES["mailfolder_delta"]
    with server.client() as c:
        r = c.request(example["method"], example["path"], headers=example["request_headers"])
    assert r.status_code == example["expected_status"], r.text
    assert r.headers["preference-applied"] == "odata.maxpagesize=2"
    body = r.json()
    expected = example["response_body"]
    assert set(expected) <= set(body)
    assert re.search(r"/v1\.0/me/mailFolders/delta\?\$skiptoken=[A-Za-z0-9_-]+$",
                     body["@odata.nextLink"])  # fmt: skip
    assert len(body["value"]) == 2
    for folder in body["value"]:
        assert set(expected["value"][0]) <= set(folder)
        assert isinstance(folder["childFolderCount"], int)
