"""Delta queries over real HTTP, on both engines: a folder's messages and a mailbox's folders,
every path form, tokens, change types, filters, permissions, and a sync client that runs
rounds while another client writes."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.delta_sync import DeltaSync, server_view
from tests.mail_api import ALEX, assert_error, make, unique, user_id
from tests.sink import wait_for


def a_folder(c: httpx.Client) -> str:
    r = c.post("/me/mailFolders", json={"displayName": unique("delta")})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def start(folder: str, query: str = "") -> str:
    return f"/me/mailFolders/{folder}/messages/delta{query}"


def test_a_round_then_the_changes(server: RunningServer) -> None:
    with server.client() as c:
        folder, other = a_folder(c), a_folder(c)
        made = [make(c, folder, subject=f"m{n}") for n in range(5)]
        sync = DeltaSync(c, start(folder, "?$select=subject,isRead"))
        first = sync.round()
        assert sorted(m["id"] for m in first) == sorted(m["id"] for m in made)
        assert sync.pages == 3  # 2 + 2 + 1
        for item in first:
            assert set(item) == {"@odata.type", "@odata.etag", "id", "subject", "isRead"}
            assert item["@odata.type"] == "#microsoft.graph.message"
        # nothing changed: an empty round that ends at once
        assert sync.round() == []
        # updated, moved out, deleted (into Deleted Items), created, moved in
        a, b, d = made[0]["id"], made[1]["id"], made[2]["id"]
        assert c.patch(f"/me/messages/{a}", json={"isRead": False}).status_code == 200
        assert c.post(f"/me/messages/{b}/move", json={"destinationId": other}).status_code == 201
        assert c.delete(f"/me/messages/{d}").status_code == 204
        new = make(c, folder, subject="new")
        elsewhere = make(c, other, subject="comes in")
        moved = c.post(f"/me/messages/{elsewhere['id']}/move", json={"destinationId": folder})
        assert moved.status_code == 201
        second = sync.round()
        removed = {m["id"] for m in second if "@removed" in m}
        present = {m["id"]: m for m in second if "@removed" not in m}
        assert removed == {b, d}
        assert set(present) == {a, new["id"], elsewhere["id"]}
        assert present[a]["isRead"] is False and set(present[a]) >= {"subject", "@odata.etag"}
        for item in second:
            if "@removed" in item:
                assert set(item) == {"@odata.type", "id", "@removed"}
        assert set(sync.items) == set(server_view(c, folder))
        # the folder it moved to sees it arrive
        other_sync = DeltaSync(c, start(other))
        assert {m["id"] for m in other_sync.round()} == {b}


def test_every_path_form(server: RunningServer) -> None:
    me = user_id(server)
    with server.client() as c:
        folder = a_folder(c)
        make(c, folder, subject="p")
        for path in (
            f"/me/mailFolders/{folder}/messages/delta",
            f"/me/mailFolders('{folder}')/messages/delta()",
            f"/me/mailFolders/{folder}/messages/microsoft.graph.delta()",
            f"/users/{me}/mailFolders/{folder}/messages/delta",
            f"/users/AdeleV@contoso.onmicrosoft.com/mailFolders/{folder}/messages/delta",
            "/me/mailFolders/inbox/messages/delta",
            "/me/mailFolders('Inbox')/messages/delta",
        ):
            r = c.get(path, headers={"Prefer": "odata.maxpagesize=1000"})
            assert r.status_code == 200, (path, r.text)
            body = r.json()
            assert body["@odata.context"].endswith("/$metadata#Collection(message)")
            assert "@odata.deltaLink" in body, path
            link = body["@odata.deltaLink"]
            assert "$deltatoken=" in link
            again = c.get(link)
            assert again.status_code == 200 and again.json()["value"] == [], path
        for path in ("/me/mailFolders/delta", "/me/mailFolders/delta()",
                     f"/users/{me}/mailFolders/microsoft.graph.delta()"):  # fmt: skip
            r = c.get(path)
            assert r.status_code == 200, (path, r.text)
            assert r.json()["@odata.context"].endswith("/$metadata#Collection(mailFolder)")


def test_change_type_filter_and_order(server: RunningServer) -> None:
    with server.client() as c:
        folder = a_folder(c)
        kept = make(c, folder, subject="kept")
        gone = make(c, folder, subject="gone")
        rounds = {ct: DeltaSync(c, start(folder, f"?changeType={ct}")) for ct in
                  ("created", "updated", "deleted")}  # fmt: skip
        for sync in rounds.values():  # the first round returns every message
            assert {m["id"] for m in sync.round()} == {kept["id"], gone["id"]}
        assert c.patch(f"/me/messages/{kept['id']}", json={"subject": "k2"}).status_code == 200
        assert c.post(f"/me/messages/{gone['id']}/permanentDelete").status_code == 204
        born = make(c, folder, subject="born")
        assert [m["id"] for m in rounds["created"].round()] == [born["id"]]
        assert [m["id"] for m in rounds["updated"].round()] == [kept["id"]]
        assert [(m["id"], "@removed" in m) for m in rounds["deleted"].round()] == [
            (gone["id"], True)
        ]
        # $filter on receivedDateTime, and the one $orderby
        r = c.get(start(folder, "?$filter=receivedDateTime ge 2000-01-01T00:00:00Z"
                                "&$orderby=receivedDateTime desc"))  # fmt: skip
        assert r.status_code == 200, r.text
        assert {m["id"] for m in r.json()["value"]} == {kept["id"], born["id"]}
        future = c.get(start(folder, "?$filter=receivedDateTime gt 2999-01-01T00:00:00Z"))
        assert future.json()["value"] == []
        for bad in ("?$filter=subject eq 'x'", "?$filter=receivedDateTime lt 2020-01-01",
                    "?$orderby=subject", "?$search=\"x\"", "?changeType=moved", "?$skip=2",
                    "?$select=nope", "?$top=0", "?$top=100000"):  # fmt: skip
            r = c.get(start(folder, bad))
            assert r.status_code == 400, (bad, r.text)


def token_of(link: str) -> str:
    return link.split("token=", 1)[1]


def forged(token: str, **change: Any) -> str:
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw.update(change)
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()


def test_tokens_are_checked(server: RunningServer) -> None:
    with server.client() as c:
        folder, other = a_folder(c), a_folder(c)
        make(c, folder, subject="t")
        sync = DeltaSync(c, start(folder))
        sync.round()
        token = token_of(sync.link)
        # a token of another folder, another mailbox, or in another path
        assert_error(c.get(start(other, f"?$deltatoken={token}")), 410, "SyncStateNotFound")
        assert_error(c.get(f"/me/mailFolders/delta?$deltatoken={token}"), 410,
                     "SyncStateNotFound")  # fmt: skip
        with server.client(server.token(ALEX)) as alex:
            alex_folder = a_folder(alex)
            assert_error(alex.get(start(alex_folder, f"?$deltatoken={token}")), 410,
                         "SyncStateNotFound")  # fmt: skip
        # garbage, forged shapes, positions the log never reached
        assert_error(c.get(start(folder, "?$deltatoken=%00%0d%0a")), 400, "ErrorInvalidRequest")
        for bad in (
            "x",
            "A" * 5000,
            "e30",
            forged(token, v=2),
            forged(token, s=-1),
            forged(token, s=10**12),
            forged(token, ct="moved"),
            forged(token, extra=1),
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        ):
            assert_error(c.get(start(folder, f"?$deltatoken={bad}")), 410, "SyncStateInvalid")
        assert_error(c.get(start(folder, f"?$deltatoken={token}&$skiptoken={token}")), 400,
                     "BadRequest")  # fmt: skip
        # the token still works after all that
        r = c.get(start(folder, f"?$deltatoken={token}"))
        assert r.status_code == 200 and r.json()["value"] == []


def test_read_basic_gets_no_body(server: RunningServer) -> None:
    with server.client() as c:
        folder = a_folder(c)
        make(c, folder, subject="secret", body={"contentType": "text", "content": "hidden"})
    with server.client(server.token(scopes="Mail.ReadBasic")) as basic:
        r = basic.get(start(folder))
        assert r.status_code == 200, r.text
        [item] = r.json()["value"]
        assert item["subject"] == "secret"
        assert "body" not in item and "bodyPreview" not in item
    with server.client(server.token(scopes="User.Read")) as nobody:
        assert nobody.get(start(folder)).status_code == 403


def test_folder_delta(server: RunningServer) -> None:
    with server.client() as c:
        sync = DeltaSync(c, "/me/mailFolders/delta", page_size=3)
        first = sync.round()
        names = {f["displayName"] for f in first}
        assert {"Inbox", "Drafts", "Sent Items", "Deleted Items"} <= names
        assert "Top of Information Store" not in names
        for f in first:
            assert {"id", "displayName", "parentFolderId", "childFolderCount",
                    "unreadItemCount", "totalItemCount"} <= set(f)  # fmt: skip
        made = a_folder(c)
        child = c.post(f"/me/mailFolders/{made}/childFolders", json={"displayName": "kid"})
        assert child.status_code == 201
        second = {f["id"]: f for f in sync.round()}
        assert made in second and child.json()["id"] in second
        assert second[made]["childFolderCount"] == 1
        # a message written: its folder's counts changed, so the folder is in the next round
        make(c, made, subject="counts")
        third = {f["id"]: f for f in sync.round()}
        assert set(third) == {made} and third[made]["totalItemCount"] == 1
        # a delete moves it into Deleted Items; a second one deletes it and its child
        trash = c.get("/me/mailFolders/deleteditems").json()["id"]
        assert c.delete(f"/me/mailFolders/{made}").status_code == 204
        fourth = {f["id"]: f for f in sync.round()}
        assert fourth[made]["parentFolderId"] == trash and trash in fourth
        assert c.delete(f"/me/mailFolders/{made}").status_code == 204
        fifth = sync.round()
        assert {f["id"] for f in fifth if "@removed" in f} == {made, child.json()["id"]}
        selected = c.get("/me/mailFolders/delta?$select=displayName").json()["value"]
        assert all(set(f) == {"id", "displayName"} for f in selected)


def test_sync_client_ends_with_the_servers_view(server: RunningServer) -> None:
    """One client writes (creates, updates, moves in and out, deletes) while another runs
    delta rounds; after the writer stops, one more round leaves the syncing client with
    exactly what the server lists."""
    with server.client() as c:
        folder, other = a_folder(c), a_folder(c)
        for n in range(6):
            make(c, folder, subject=f"seed {n}")
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with server.client() as w:
                n = 0
                while not stop.is_set() and n < 60:
                    n += 1
                    m = make(w, folder, subject=f"w{n}")
                    w.patch(f"/me/messages/{m['id']}", json={"isRead": n % 2 == 0})
                    if n % 3 == 0:
                        w.post(f"/me/messages/{m['id']}/move", json={"destinationId": other})
                    if n % 4 == 0:
                        w.delete(f"/me/messages/{m['id']}")
                    if n % 5 == 0:
                        back = make(w, other, subject=f"back{n}")
                        w.post(f"/me/messages/{back['id']}/move", json={"destinationId": folder})
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    with server.client() as c:
        sync = DeltaSync(c, start(folder, "?$select=subject,isRead"), page_size=3)
        thread.start()
        rounds = 0
        while thread.is_alive() and rounds < 200:
            sync.round()
            rounds += 1
        thread.join(60)
        stop.set()
        assert not errors, errors
        sync.round()
        view = server_view(c, folder)
        assert set(sync.items) == set(view)
        assert {i: m["@odata.etag"] for i, m in sync.items.items()} == view
        assert rounds >= 1


def test_sends_and_deliveries_reach_the_rounds(server: RunningServer) -> None:
    """What the outbox and the delivery worker write is in the log too: a send's draft leaves
    Drafts for Sent Items, and the recipient's Inbox gets the local copy."""
    subject = unique("delta send")
    with server.client() as c, server.client(server.token(ALEX)) as alex:
        drafts = DeltaSync(c, "/me/mailFolders/drafts/messages/delta", page_size=1000)
        sent = DeltaSync(c, "/me/mailFolders/sentitems/messages/delta", page_size=1000)
        inbox = DeltaSync(alex, "/me/mailFolders/inbox/messages/delta", page_size=1000)
        for sync in (drafts, sent, inbox):
            sync.round()
        to = [{"emailAddress": {"address": ALEX}}]
        draft = c.post("/me/messages", json={"subject": subject, "toRecipients": to}).json()
        assert [m["id"] for m in drafts.round()] == [draft["id"]]
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
        assert drafts.round() == [
            {"@odata.type": "#microsoft.graph.message", "id": draft["id"],
             "@removed": {"reason": "deleted"}}
        ]  # fmt: skip
        assert [m["id"] for m in sent.round()] == [draft["id"]]
        arrived = wait_for(lambda: [m for m in inbox.round() if m.get("subject") == subject],
                           what="the local copy in Alex's Inbox delta")  # fmt: skip
        assert len(arrived) == 1 and arrived[0]["id"] != draft["id"]


def test_child_folders_delta_is_that_folders_children(server: RunningServer) -> None:
    """mailFolders/{id}/childFolders/delta: the folder's direct children only (not the
    mailbox, not grandchildren); a child moved out, or deleted, is @removed; a folder moved
    in appears; a change elsewhere in the mailbox is not in it."""
    with server.client() as c:
        top = a_folder(c)
        kids = [
            c.post(f"/me/mailFolders/{top}/childFolders", json={"displayName": f"k{n}"}).json()
            for n in range(3)
        ]
        grandchild = c.post(f"/me/mailFolders/{kids[0]['id']}/childFolders",
                            json={"displayName": "gk"}).json()  # fmt: skip
        sync = DeltaSync(c, f"/me/mailFolders/{top}/childFolders/delta", page_size=2)
        first = sync.round()
        assert sorted(f["id"] for f in first) == sorted(k["id"] for k in kids)
        assert all(f["parentFolderId"] == top for f in first)
        elsewhere = a_folder(c)  # a change elsewhere: not in this sync
        assert sync.round() == []
        # moved out, moved in, deleted, a grandchild's message (its own folder is not a child)
        moved = c.post(f"/me/mailFolders/{kids[1]['id']}/move", json={"destinationId": elsewhere})
        assert moved.status_code == 200, moved.text
        assert c.post(f"/me/mailFolders/{elsewhere}/move",
                      json={"destinationId": top}).status_code == 200  # fmt: skip
        make(c, grandchild["id"], subject="deep")
        assert c.delete(f"/me/mailFolders/{kids[2]['id']}").status_code == 204
        second = {f["id"]: f for f in sync.round()}
        assert "@removed" in second[kids[1]["id"]] and "@removed" in second[kids[2]["id"]]
        assert second[elsewhere]["parentFolderId"] == top
        assert grandchild["id"] not in second
        assert set(sync.items) == {kids[0]["id"], elsewhere}
        # the token is this folder's: another folder's childFolders/delta refuses it
        other = a_folder(c)
        token = sync.link.split("$deltatoken=", 1)[1]
        r = c.get(f"/me/mailFolders/{other}/childFolders/delta?$deltatoken={token}")
        assert_error(r, 410, "SyncStateNotFound")
        r = c.get(f"/me/mailFolders/delta?$deltatoken={token}")
        assert_error(r, 410, "SyncStateNotFound")
        for bad in ("$expand=childFolders", "$skip=1", "$filter=isHidden eq false"):
            r = c.get(f"/me/mailFolders/{top}/childFolders/delta?{bad}")
            assert r.status_code == 400, (bad, r.text)
        # a path below a child reaches the same
        nested = c.get(f"/me/mailFolders/{top}/childFolders/{kids[0]['id']}/childFolders/delta")
        assert [f["id"] for f in nested.json()["value"]] == [grandchild["id"]]
