"""Regressions found by a hostile review of delta queries, subscriptions and the folder query
surface (branch attack2), each on a real `graphpost serve`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.delta_sync import DeltaSync
from tests.mail_api import assert_error, make, unique
from tests.webhook import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.stop()


def _forged(token: str, **change: Any) -> str:
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw.update(change)
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()


def _in_minutes(n: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + n * 60))


def test_delta_token_numbers_out_of_range_are_410_not_500(server: RunningServer) -> None:
    """A token's integers beyond a 64-bit column (seq, keyset, since) were passed to the
    database before the token was checked: SQLite's OverflowError, PostgreSQL's range error."""
    with server.client() as c:
        r = c.post("/me/mailFolders", json={"displayName": unique("dtok")})
        folder = r.json()["id"]
        for n in range(3):
            make(c, folder, subject=f"t{n}")
        start = f"/me/mailFolders/{folder}/messages/delta"
        first = c.get(start, headers={"Prefer": "odata.maxpagesize=1"}).json()
        skip = first["@odata.nextLink"].split("token=", 1)[1]
        sync = DeltaSync(c, start)
        sync.round()
        delta = sync.link.split("token=", 1)[1]
        huge = 2**64 + 5
        for bad in (
            _forged(skip, p=[huge, 1]),
            _forged(skip, p=[1, huge]),
            _forged(skip, p=[-huge, 1]),
            _forged(skip, s=huge),
            _forged(skip, since=[huge, True]),
            _forged(skip, since=[-huge, True]),
            _forged(delta, s=2**63),
            _forged(delta, s=huge),
            _forged(delta, since=[huge, False]),
        ):
            r = c.get(f"{start}?$skiptoken={bad}")
            assert r.status_code in (200, 410), (r.status_code, r.text[-300:])
        fr = c.get("/me/mailFolders/delta").json()
        ftoken = (fr.get("@odata.deltaLink") or fr["@odata.nextLink"]).split("token=", 1)[1]
        for bad in (_forged(ftoken, s=huge), _forged(ftoken, s=2**63)):
            r = c.get(f"/me/mailFolders/delta?$deltatoken={bad}")
            assert r.status_code == 410, (bad, r.status_code, r.text)


@pytest.mark.parametrize("state", ["a\x00b", "\x00", "tab\there", "\x1b[31m", "\ud800"])
def test_client_state_with_control_chars_is_stored_or_refused(
    server: RunningServer, receiver: Receiver, state: str
) -> None:
    with server.client() as c:
        body = {
            "changeType": "created",
            "notificationUrl": receiver.url,
            "resource": "me/mailFolders('Inbox')/messages",
            "expirationDateTime": _in_minutes(120),
            "clientState": state,
        }
        r = c.post(
            "/subscriptions",
            content=json.dumps(body, ensure_ascii=True),
            headers={"content-type": "application/json"},
        )
        assert r.status_code in (201, 400), r.text
        if r.status_code == 400:
            assert_error(r, 400, r.json()["error"]["code"])
        else:
            sub = r.json()
            assert sub["clientState"] == state
            assert c.delete(f"/subscriptions/{sub['id']}").status_code == 204


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00-23:59",
        "2030-01-01T00:00:00+99:00",
        "2030-01-01\x00",
        "+002030-01-01T00:00:00Z",
        "2030-W01-1",
        "1e308",
    ],
)
def test_hostile_expiry_is_400(server: RunningServer, receiver: Receiver, when: str) -> None:
    with server.client() as c:
        body = {
            "changeType": "created",
            "notificationUrl": receiver.url,
            "resource": "me/messages",
            "expirationDateTime": when,
        }
        r = c.post("/subscriptions", json=body)
        assert r.status_code == 400, r.text


def _chain(c: Any, depth: int) -> list[str]:
    """A top-level folder and ``depth - 1`` folders each inside the last: their ids, top
    first."""
    r = c.post("/me/mailFolders", json={"displayName": unique("deep")})
    assert r.status_code == 201, r.text
    chain = [r.json()["id"]]
    for n in range(depth - 1):
        r = c.post(f"/me/mailFolders/{chain[-1]}/childFolders", json={"displayName": f"d{n}"})
        assert r.status_code == 201, r.text
        chain.append(r.json()["id"])
    return chain


def test_a_folder_is_not_copied_into_its_own_deep_subtree(server: RunningServer) -> None:
    """The copy's check walked 64 levels up from the destination: below that, a folder was
    copied into its own subtree."""
    with server.client() as c:
        chain = _chain(c, 70)
        r = c.post(f"/me/mailFolders/{chain[0]}/copy", json={"destinationId": chain[-1]})
        assert_error(r, 400, "ErrorMoveCopyFailed")
        r = c.post(f"/me/mailFolders/{chain[0]}/move", json={"destinationId": chain[-1]})
        assert_error(r, 400, "ErrorMoveCopyFailed")
        assert c.get(f"/me/mailFolders/{chain[-1]}").json()["childFolderCount"] == 0


def test_a_folder_is_not_moved_into_its_own_very_deep_subtree(server: RunningServer) -> None:
    """The move's check in its transaction walked 300 levels: a deeper destination made a
    loop of folders, cut off from the mailbox's root."""
    with server.client() as c:
        chain = _chain(c, 305)
        r = c.post(f"/me/mailFolders/{chain[0]}/move", json={"destinationId": chain[-1]})
        assert r.status_code == 400, r.text
        top = c.get(f"/me/mailFolders/{chain[0]}").json()
        root = c.get("/me/mailFolders/msgfolderroot").json()["id"]
        assert top["parentFolderId"] == root
        r = c.post(f"/me/mailFolders/{chain[0]}/copy", json={"destinationId": chain[-1]})
        assert r.status_code == 400, r.text
        assert c.get(f"/me/mailFolders/{chain[-1]}").json()["childFolderCount"] == 0
        assert c.post(f"/me/mailFolders/{chain[0]}/permanentDelete").status_code == 204
        assert c.get(f"/me/mailFolders/{chain[-1]}").status_code == 404


def test_a_search_folder_is_not_synchronised_or_subscribed_empty(
    server: RunningServer, receiver: Receiver
) -> None:
    """A search folder's messages are its sources' (none has it as its folder): its delta
    answered an empty round and a subscription to it never fired, while the folder listed
    messages. Both are refused, as what graphpost does not do."""
    with server.client() as c:
        source = c.post("/me/mailFolders", json={"displayName": unique("src")}).json()["id"]
        make(c, source, subject="seen through the search folder")
        r = c.post(
            "/me/mailFolders/searchfolders/childFolders",
            json={
                "@odata.type": "#microsoft.graph.mailSearchFolder",
                "displayName": unique("sf"),
                "sourceFolderIds": [source],
                "filterQuery": "startswith(subject, 'seen')",
            },
        )
        assert r.status_code == 201, r.text
        search = r.json()["id"]
        assert len(c.get(f"/me/mailFolders/{search}/messages").json()["value"]) == 1
        r = c.get(f"/me/mailFolders/{search}/messages/delta")
        assert_error(r, 400, "ErrorInvalidRequest")
        assert "search folder" in r.json()["error"]["message"]
        r = c.post(
            "/subscriptions",
            json={
                "changeType": "created",
                "notificationUrl": receiver.url,
                "resource": f"me/mailFolders('{search}')/messages",
                "expirationDateTime": _in_minutes(120),
            },
        )
        assert_error(r, 400, "ErrorInvalidRequest")
        assert "search folder" in r.json()["error"]["message"]


def test_writes_into_a_folder_deleted_at_the_same_time_are_404(server: RunningServer) -> None:
    """A move, copy or new message into a folder that a permanentDelete removes at the same
    moment: the insert's foreign key failed, answered as a 503 (the database's fault);
    the destination is gone, a 404."""
    from concurrent.futures import ThreadPoolExecutor

    seen: dict[str, set[int]] = {"move": set(), "copy": set(), "message": set(), "delete": set()}
    with server.client() as c, ThreadPoolExecutor(4) as pool:
        for _ in range(12):
            dest = c.post("/me/mailFolders", json={"displayName": unique("dest")}).json()["id"]
            moving = c.post("/me/mailFolders", json={"displayName": unique("mv")}).json()["id"]
            copied = c.post("/me/mailFolders", json={"displayName": unique("cp")}).json()["id"]
            make(c, copied, subject="copied")
            jobs: dict[str, tuple[str, dict[str, str] | None]] = {
                "move": (f"/me/mailFolders/{moving}/move", {"destinationId": dest}),
                "copy": (f"/me/mailFolders/{copied}/copy", {"destinationId": dest}),
                "message": (f"/me/mailFolders/{dest}/messages", {"subject": "into it"}),
                "delete": (f"/me/mailFolders/{dest}/permanentDelete", None),
            }
            futures = {
                name: pool.submit(c.post, path, json=body) for name, (path, body) in jobs.items()
            }
            for name, future in futures.items():
                r = future.result()
                seen[name].add(r.status_code)
                assert r.status_code in (200, 201, 204, 404), (name, r.status_code, r.text)
            assert c.get(f"/me/mailFolders/{dest}").status_code == 404
            assert c.get(f"/me/mailFolders/{copied}/messages").json()["value"]
    assert seen["delete"] == {204}


def test_folder_delta_converges_after_moves_renames_and_deletes(server: RunningServer) -> None:
    """A folders' sync client, after a round of creates, renames, moves, deletes into Deleted
    Items and for good, holds exactly what a fresh initial sync sees."""
    with server.client() as c:
        sync = DeltaSync(c, "/me/mailFolders/delta", page_size=3)
        sync.round()
        top = c.post("/me/mailFolders", json={"displayName": unique("top")}).json()["id"]
        kid = c.post(f"/me/mailFolders/{top}/childFolders", json={"displayName": "kid"}).json()
        grandkid = c.post(
            f"/me/mailFolders/{kid['id']}/childFolders", json={"displayName": "gk"}
        ).json()
        gone = c.post("/me/mailFolders", json={"displayName": unique("gone")}).json()["id"]
        sync.round()
        assert {top, kid["id"], grandkid["id"], gone} <= set(sync.items)
        assert c.patch(f"/me/mailFolders/{top}", json={"displayName": unique("re")}).is_success
        moved = c.post(f"/me/mailFolders/{kid['id']}/move", json={"destinationId": "inbox"})
        assert moved.status_code == 200, moved.text
        assert c.delete(f"/me/mailFolders/{top}").status_code == 204
        assert c.post(f"/me/mailFolders/{gone}/permanentDelete").status_code == 204
        copied = c.post(f"/me/mailFolders/{kid['id']}/copy", json={"destinationId": "drafts"})
        assert copied.status_code == 200, copied.text
        sync.round()
        fresh = DeltaSync(c, "/me/mailFolders/delta", page_size=50)
        fresh.round()
        assert set(sync.items) == set(fresh.items)
        for folder_id, item in fresh.items.items():
            mine = sync.items[folder_id]
            for name in ("displayName", "parentFolderId", "childFolderCount", "totalItemCount"):
                assert mine[name] == item[name], (name, mine, item)
