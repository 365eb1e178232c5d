"""Replay the Graph docs' subscription examples (create, update, list, delete) against the real
server, both engines: the request bodies as the docs give them, with a receiver on loopback for
their webhook URLs and future dates for their past ones; the answers' statuses and shapes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.mail_api import user_id
from tests.webhook import Receiver, start_receiver

DATA = json.loads((Path(__file__).parent / "data" / "subscription-doc-examples.json").read_text())
EXAMPLES = {e["name"]: e for e in DATA["examples"]}
CREATES = [n for n, e in EXAMPLES.items() if e["method"] == "POST"]
UPDATES = [n for n, e in EXAMPLES.items() if e["method"] == "PATCH"]
DELETES = [n for n, e in EXAMPLES.items() if e["method"] == "DELETE"]
_USERS: dict[str, str] = {}  # the demo user's id, per server


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.stop()


def in_minutes(n: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(time.time() + n * 60))


def localised(server: RunningServer, receiver: Receiver, body: dict[str, Any]) -> dict[str, Any]:
    """The docs' body with our receiver for their URLs, a future date for theirs, and the
    demo user for ``{id}``."""
    out = dict(body)
    for key in ("notificationUrl", "lifecycleNotificationUrl"):
        if key in out:
            out[key] = f"{receiver.url}?{key}"
    if "expirationDateTime" in out:
        out["expirationDateTime"] = in_minutes(2 * 24 * 60)
    if "{id}" in out.get("resource", ""):
        if server.base not in _USERS:
            _USERS[server.base] = user_id(server)
        out["resource"] = out["resource"].replace("{id}", _USERS[server.base])
    return out


def create(server: RunningServer, receiver: Receiver, name: str) -> dict[str, Any]:
    example = EXAMPLES[name]
    with server.client() as c:
        r = c.post(
            example["path"].lstrip("/"), json=localised(server, receiver, example["request_body"])
        )
    assert r.status_code == example["expected_status"], r.text
    return dict(r.json())


@pytest.mark.parametrize("name", CREATES)
def test_create(server: RunningServer, receiver: Receiver, name: str) -> None:
    body = create(server, receiver, name)
    example = EXAMPLES[name]
    expected = example.get("response_body") or EXAMPLES[CREATES[0]]["response_body"]
    assert set(expected) <= set(body)  # every property the docs show
    assert body["@odata.context"] == f"{server.base}/v1.0/$metadata#subscriptions/$entity"
    sent = example["request_body"]
    assert body["resource"] == localised(server, receiver, sent)["resource"]
    assert body["changeType"] == sent["changeType"]
    assert body["clientState"] == sent["clientState"]
    assert body["notificationContentType"] == "application/json"
    assert body["latestSupportedTlsVersion"] == sent.get("latestSupportedTlsVersion", "v1_2")
    if "lifecycleNotificationUrl" in sent:
        assert body["lifecycleNotificationUrl"] == f"{receiver.url}?lifecycleNotificationUrl"
    assert receiver.validations, "the notification URL was validated"


@pytest.mark.parametrize("name", UPDATES)
def test_update(server: RunningServer, receiver: Receiver, name: str) -> None:
    created = create(server, receiver, CREATES[0])
    example = EXAMPLES[name]
    later = in_minutes(2 * 24 * 60 + 30)
    with server.client() as c:
        r = c.patch(f"subscriptions/{created['id']}", json={"expirationDateTime": later})
    assert r.status_code == example["expected_status"], r.text
    body = r.json()
    assert set(EXAMPLES["update_subscription"]["response_body"]) <= set(body)
    assert body["expirationDateTime"][:19] == later[:19]
    assert body["id"] == created["id"]


def test_list(server: RunningServer, receiver: Receiver) -> None:
    created = create(server, receiver, CREATES[0])
    example = EXAMPLES["get_subscriptions"]
    with server.client() as c:
        r = c.get(example["path"].lstrip("/"))
    assert r.status_code == example["expected_status"], r.text
    body = r.json()
    assert body["@odata.context"] == f"{server.base}/v1.0/$metadata#subscriptions"
    mine = [s for s in body["value"] if s["id"] == created["id"]]
    assert len(mine) == 1
    assert set(example["response_body"]["value"][0]) <= set(mine[0])
    assert mine[0]["clientState"] is None  # not returned, as the docs note


@pytest.mark.parametrize("name", DELETES)
def test_delete(server: RunningServer, receiver: Receiver, name: str) -> None:
    created = create(server, receiver, CREATES[0])
    example = EXAMPLES[name]
    path = example["path"].replace("7f105c7d-2dc5-4530-97cd-4e7ae6534c07", "{id}")
    with server.client() as c:
        r = c.delete(path.lstrip("/").replace("{id}", created["id"]))
        assert r.status_code == example["expected_status"], r.text
        assert r.content == b""
        assert c.get(f"subscriptions/{created['id']}").status_code == 404
