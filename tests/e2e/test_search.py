"""``$search`` on messages over HTTP, on both engines: every KQL form, Graph's rules and
errors, paging, folders, Mail.ReadBasic, and an index that follows every change."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.delivery_checks import wait_final
from tests.mail_api import DEMO_TENANT, assert_error, send_mail, sent_id_of


def word() -> str:
    """A word no other message has (letters only: one indexed word)."""
    return "zq" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


@pytest.fixture(scope="module")
def owner(server: RunningServer) -> str:
    upn = f"finder-{uuid.uuid4().hex[:8]}@{DEMO_TENANT}"
    server.cli("users", "add", "--name", "Fiona Finder", "--mail", upn)
    return upn


@pytest.fixture
def c(server: RunningServer, owner: str) -> httpx.Client:
    return server.client(server.token(owner))


def draft(c: httpx.Client, subject: str, folder: str | None = None, **props: Any) -> str:
    path = f"/me/mailFolders/{folder}/messages" if folder else "/me/messages"
    r = c.post(path, json={"subject": subject, **props})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def subjects(c: httpx.Client, kql: str, path: str = "/me/messages", **params: str) -> list[str]:
    r = c.get(path, params={"$search": f'"{kql}"', "$top": "100", **params})
    assert r.status_code == 200, r.text
    return [m["subject"] for m in r.json()["value"]]


def test_kql_forms(c: httpx.Client) -> None:
    w = word()
    draft(
        c,
        f"{w} alpha report",
        body={"contentType": "text", "content": "quarterly numbers"},
        toRecipients=[{"emailAddress": {"address": "xavier@fabrikam.com", "name": "Xavier"}}],
    )
    draft(c, f"{w} beta", body={"contentType": "html", "content": "<b>Numbers</b> déjà vu"},
          ccRecipients=[{"emailAddress": {"address": "yolanda@fabrikam.com"}}],
          importance="low")  # fmt: skip
    draft(c, f"{w} gamma", bccRecipients=[{"emailAddress": {"address": "zed@fabrikam.com"}}])
    newest_first = [f"{w} gamma", f"{w} beta", f"{w} alpha report"]
    assert subjects(c, w) == newest_first
    assert subjects(c, f"{w} numbers") == [f"{w} beta", f"{w} alpha report"]
    assert subjects(c, f"{w} AND body:deja") == [f"{w} beta"]
    assert subjects(c, f"subject:{w} AND to:xavier") == [f"{w} alpha report"]
    assert subjects(c, f"{w} cc:yolanda@fabrikam.com") == [f"{w} beta"]
    assert subjects(c, f"{w} bcc:zed") == [f"{w} gamma"]
    assert subjects(c, f"{w} (to:xavier OR bcc:zed)") == [f"{w} gamma", f"{w} alpha report"]
    assert subjects(c, f"{w} NOT numbers") == [f"{w} gamma"]
    assert subjects(c, f"{w} -importance:low") == [f"{w} gamma", f"{w} alpha report"]
    assert subjects(c, f'{w} subject:\\"alpha report\\"') == [f"{w} alpha report"]
    assert subjects(c, f'{w} subject:\\"report alpha\\"') == []
    assert subjects(c, f"{w} received:today hasattachments:false") == newest_first
    assert subjects(c, f"{w} received<2000-01-01") == []
    assert subjects(c, f"{w} received:2000-01-01..2999-12-31") == newest_first
    # without Graph's quotes around the whole value, and with ConsistencyLevel (not needed)
    r = c.get("/me/messages", params={"$search": w}, headers={"ConsistencyLevel": "eventual"})
    assert [m["subject"] for m in r.json()["value"]] == newest_first


def test_graphs_rules_and_errors(c: httpx.Client) -> None:
    base = {"$search": '"pizza"'}
    r = c.get("/me/messages", params={**base, "$orderby": "receivedDateTime desc"})
    error = assert_error(r, 400, "SearchWithOrderBy")
    assert error["message"] == "The query parameter '$orderBy' is not supported with '$search'."
    r = c.get("/me/messages", params={**base, "$filter": "isRead eq false"})
    error = assert_error(r, 400, "SearchWithFilter")
    assert error["message"] == "The query parameter '$filter' is not supported with '$search'."
    assert_error(c.get("/me/messages", params={**base, "$top": "1001"}), 400, "BadRequest")
    for bad in ['"(pizza"', '"pizza OR"', '"received:someday"', '"category:red"', '""',
                '"' + "(" * 40 + "x" + ")" * 40 + '"', '"' + "x " * 3000 + '"',
                '"size:\u00b2"', '"size>1..\u2460"']:  # fmt: skip
        error = assert_error(c.get("/me/messages", params={"$search": bad}), 400, "BadRequest")
        assert "$search" in str(error["message"])
    r = c.get("/me/messages", params={**base, "$count": "true"})
    assert r.status_code == 200 and "@odata.count" not in r.json()  # as Graph: no count
    for hostile in ['"pizza\') OR 1=1 --"', '"x\\" OR \\"y"', '"NEAR(a b)"', '"a:*"',
                    '"\u2028\u0007bell"', '"\\\\"']:  # fmt: skip
        r = c.get("/me/messages", params={"$search": hostile})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert r.json()["error"]["code"] == "BadRequest"


def test_paging_folders_and_select(c: httpx.Client) -> None:
    w = word()
    r = c.post("/me/mailFolders", json={"displayName": f"f-{w}"})
    folder = r.json()["id"]
    made = [draft(c, f"{w} {n:02d}", folder) for n in range(12)]
    draft(c, f"{w} elsewhere")
    path = f"/me/mailFolders/{folder}/messages"
    r = c.get(path, params={"$search": f'"{w}"', "$top": "5", "$select": "subject"})
    page = r.json()
    assert page["@odata.context"].endswith(f"/mailFolders('{folder}')/messages(subject)")
    seen = [m["id"] for m in page["value"]]
    assert [m["subject"] for m in page["value"]] == [f"{w} {n:02d}" for n in range(11, 6, -1)]
    while "@odata.nextLink" in page:
        page = httpx.get(page["@odata.nextLink"], headers=c.headers).json()
        seen += [m["id"] for m in page["value"]]
    assert seen == made[::-1]
    assert len(subjects(c, w)) == 13  # the whole mailbox
    # Graph stops at 1000 results: a page past them is empty, and one that reaches it ends
    r = c.get("/me/messages", params={"$search": f'"{w}"', "$skip": "1000"})
    assert r.status_code == 200 and r.json()["value"] == []
    r = c.get("/me/messages", params={"$search": f'"{w}"', "$skip": "995", "$top": "10"})
    assert "@odata.nextLink" not in r.json()


def test_index_follows_changes(server: RunningServer, c: httpx.Client, owner: str) -> None:
    w, v = word(), word()
    mid = draft(c, f"{w} first")
    r = c.patch(f"/me/messages/{mid}", json={"subject": f"{v} second"})
    assert r.status_code == 200, r.text
    assert subjects(c, w) == [] and subjects(c, v) == [f"{v} second"]
    r = c.post(f"/me/messages/{mid}/attachments", json={
        "@odata.type": "#microsoft.graph.fileAttachment", "name": f"{w}-plan.txt",
        "contentBytes": "aGk="})  # fmt: skip
    assert r.status_code == 201, r.text
    assert subjects(c, f"attachment:{w}") == [f"{v} second"]
    assert subjects(c, f"{v} hasattachments:true") == [f"{v} second"]
    assert c.delete(f"/me/messages/{mid}/attachments/{r.json()['id']}").status_code == 204
    assert subjects(c, w) == []
    assert c.delete(f"/me/messages/{mid}").status_code == 204  # into Deleted Items
    assert subjects(c, v) == [f"{v} second"]
    assert c.post(f"/me/messages/{mid}/permanentDelete").status_code == 204
    assert subjects(c, v) == []
    # mail delivered here goes through ingest: Adele writes to the owner
    u = word()
    sent = send_mail(server, f"{u} delivered", owner)
    statuses, pending = wait_final(server, [sent_id_of(sent)])
    assert not pending, statuses
    assert subjects(c, f"{u} from:adelev", "/me/mailFolders/inbox/messages") == [f"{u} delivered"]
    assert subjects(c, f"{u} participants:fiona") == [f"{u} delivered"]


def test_mail_readbasic_searches_no_body(server: RunningServer, owner: str) -> None:
    w = word()
    with server.client(server.token(owner)) as full:
        draft(full, f"{w} visible", body={"contentType": "text", "content": f"secret{w}"})
        mid = draft(full, f"{w} other")
        r = full.post(f"/me/messages/{mid}/attachments", json={
            "@odata.type": "#microsoft.graph.fileAttachment", "name": f"hidden{w}.txt",
            "contentBytes": "aGk="})  # fmt: skip
        assert r.status_code == 201
        assert subjects(full, f"secret{w}") == [f"{w} visible"]
        assert subjects(full, f"hidden{w}") == [f"{w} other"]
    with server.client(server.token(owner, scopes="Mail.ReadBasic")) as basic:
        assert subjects(basic, w) == [f"{w} other", f"{w} visible"]  # the subject: fine
        assert subjects(basic, f"secret{w}") == []
        assert subjects(basic, f"hidden{w}") == []
        # size: counts the body's and the attachments' bytes: a binary search on it would
        # tell the body's length, one request at a time
        for kql in (f"body:secret{w}", f"attachment:hidden{w}", f"{w} OR NOT body:x",
                    f"{w} size>100", f"{w} NOT (size:1..500)"):  # fmt: skip
            r = basic.get("/me/messages", params={"$search": f'"{kql}"'})
            assert_error(r, 403, "ErrorAccessDenied")


def test_a_body_of_a_million_distinct_letters_is_kept_and_found(c: httpx.Client) -> None:
    """A body of 16,000 different 60-letter words (under 1 MiB) is a message like any other
    on both engines (PostgreSQL's tsvector holds at most 1 MiB: the index keeps what fits)."""
    w = word()
    body = " ".join(f"{w}{n:05d}".translate(str.maketrans("0123456789", "ghijklmnop")) + "x" * 40
                    for n in range(16000))  # fmt: skip
    mid = draft(c, f"{w} huge", body={"contentType": "text", "content": body})
    assert subjects(c, f"subject:{w}") == [f"{w} huge"]
    assert subjects(c, f"body:{w}gggggx") == [f"{w} huge"]  # the body's first word
    r = c.patch(
        f"/me/messages/{mid}", json={"body": {"contentType": "text", "content": body[::-1]}}
    )
    assert r.status_code == 200, r.text
    assert subjects(c, f"body:{w}gggggx") == []
