"""Helpers for the tests that use a running server's Graph API: the demo users, unique names,
Graph's error envelope, drafts, sends, delivery status and inbox look-ups."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.conftest import RunningServer

DEMO_TENANT = "contoso.onmicrosoft.com"  # the demo tenant's domain
ADELE = "AdeleV@contoso.onmicrosoft.com"
ALEX = "AlexW@contoso.onmicrosoft.com"
MEGAN = "MeganB@contoso.onmicrosoft.com"
ME = ADELE  # the user of server.token() by default


def unique(prefix: str = "s") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def user_id(server: RunningServer, upn: str = ME) -> str:
    for line in server.cli("users", "list").splitlines():
        oid, found, *_ = line.split("\t")
        if found.lower() == upn.lower():
            return oid
    raise AssertionError(f"no user {upn}")


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    body = r.json()
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    inner = error["innerError"]
    assert inner["request-id"] == r.headers["request-id"]
    assert inner["client-request-id"] == r.headers["client-request-id"]
    assert len(inner["date"]) == 19
    return dict(error)


def drafts_count(server: RunningServer) -> int:
    with server.client() as c:
        return int(c.get("/me/mailFolders/drafts").json()["totalItemCount"])


def make(c: httpx.Client, folder: str, **props: Any) -> dict[str, Any]:
    r = c.post(f"/me/mailFolders/{folder}/messages", json=props)
    assert r.status_code == 201, r.text
    return dict(r.json())


def inbox_items(server: RunningServer, user: str, subject: str) -> list[dict[str, Any]]:
    with server.client(server.token(user)) as c:
        r = c.get("/me/mailFolders/inbox/messages",
                  params={"$filter": f"subject eq '{subject}'"})  # fmt: skip
        assert r.status_code == 200, r.text
        return list(r.json()["value"])


def send_mail(server: RunningServer, subject: str, *to: str) -> httpx.Response:
    """sendMail from Adele to ``to``; the 202."""
    with server.client() as c:
        message = {
            "subject": subject,
            "toRecipients": [{"emailAddress": {"address": a}} for a in to],
        }
        r = c.post("/me/sendMail", json={"message": message})
    assert r.status_code == 202, r.text
    return r


def sent_id_of(r: httpx.Response) -> str:
    """The id in the Location header of a send's 202."""
    return r.headers["location"].split("'")[3]


def status_of(server: RunningServer, message_id: str, user: str = ADELE) -> dict[str, Any]:
    with server.client(server.token(user)) as c:
        r = c.get(f"/me/messages/{message_id}/deliveryStatus")
        assert r.status_code == 200, r.text
        return dict(r.json())
