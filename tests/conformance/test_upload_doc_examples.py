"""Replay the Graph docs' upload session examples (attachment: createUploadSession, and the
"Attach large files to Outlook messages" walkthrough) against the real server: the request
bodies as the docs give them, the answers' shapes, statuses and headers. The docs' message id
and upload URL are theirs: a draft of ours and the URL we answer stand in for them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.mail_api import unique

DATA = json.loads((Path(__file__).parent / "data" / "upload-doc-examples.json").read_text())
EXAMPLES = {e["name"]: e for e in DATA["examples"]}
CREATES = ["attachment_createuploadsession", "walkthrough_create_uploadsession_message"]


def a_draft(c: httpx.Client) -> str:
    r = c.post("/me/messages", json={"subject": unique("doc upload")})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def create(server: RunningServer, example: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The docs' createUploadSession request on a draft of ours; (message id, answer)."""
    with server.client() as c:
        message_id = a_draft(c)
        path = example["path"].replace(example["sample_keys"][0], message_id)
        r = c.request(
            example["method"],
            path.removeprefix("/"),
            json=example["request_body"],
            headers=example["request_headers"],
        )
    assert r.status_code == example["expected_status"], r.text
    return message_id, dict(r.json())


@pytest.mark.parametrize("name", CREATES)
def test_create_upload_session(server: RunningServer, name: str) -> None:
    example = EXAMPLES[name]
    _, body = create(server, example)
    expected = example["response_body"]
    assert set(expected) <= set(body)  # every property the docs show, and the same kinds
    assert body["@odata.context"] == f"{server.base}/v1.0/$metadata#microsoft.graph.uploadSession"
    assert body["nextExpectedRanges"] == expected["nextExpectedRanges"] == ["0-"]
    assert body["uploadUrl"].startswith(f"{server.base}/") and "authtoken=" in body["uploadUrl"]
    assert body["expirationDateTime"].endswith("Z")


def test_final_upload_answers_201_with_location(server: RunningServer) -> None:
    """The walkthrough's final PUT: its headers (Content-Range of the last 1,386,170 bytes of
    3,483,322) after the first 2 MiB; the answer is 201, empty, with a Location of the form
    …/Messages('{id}')/Attachments('{attachment id}')."""
    example = EXAMPLES["outlook-large-attachments#5"]
    total = int(example["request_headers"]["Content-Range"].rsplit("/", 1)[1])
    first = int(example["request_headers"]["Content-Range"].split(" ")[1].split("-")[0])
    message_id, session = create(server, EXAMPLES["walkthrough_create_uploadsession_message"])
    data = os.urandom(total)
    url = session["uploadUrl"]
    head = httpx.put(
        url,
        content=data[:first],
        headers={"Content-Type": "application/octet-stream",
                 "Content-Range": f"bytes 0-{first - 1}/{total}"},
    )  # fmt: skip
    assert head.status_code == 200, head.text
    assert head.json()["NextExpectedRanges"] == [str(first)]  # as the walkthrough shows
    r = httpx.put(url, content=data[first:], headers=example["request_headers"])
    assert r.status_code == example["expected_status"], r.text
    assert (
        r.content == b""
        and r.headers["content-length"] == example["response_headers"]["Content-Length"]
    )
    location = r.headers["location"]
    assert f"/messages('{message_id}')/attachments('" in location
    attachment_id = location.rsplit("('", 1)[1].rstrip("')")
    with server.client() as c:
        got = c.get(f"/me/messages/{message_id}/attachments/{attachment_id}/$value")
    assert got.content == data


def test_cancel_answers_204(server: RunningServer) -> None:
    example = EXAMPLES["outlook-large-attachments#9"]
    _, session = create(server, EXAMPLES["attachment_createuploadsession"])
    r = httpx.request(example["method"], session["uploadUrl"], headers=example["request_headers"])
    assert r.status_code == example["expected_status"] == 204
    assert r.content == b""
