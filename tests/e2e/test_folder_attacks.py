"""Attacks on the folder query surface, move, copy, permanentDelete and search folders: hostile
queries and bodies are Graph errors (never a 500), racing writes leave a consistent tree."""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import assert_error, make, unique

USER = "PattiF@contoso.onmicrosoft.com"


def _folder(c: httpx.Client, parent: str, name: str) -> dict[str, Any]:
    r = c.post(f"/me/mailFolders/{parent}/childFolders", json={"displayName": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_hostile_folder_queries(server: RunningServer) -> None:
    many = " or ".join(f"displayName eq 'n{i}'" for i in range(501))
    deep = "(" * 40 + "isHidden" + ")" * 40
    with server.client(server.token(USER)) as c:
        for params in (
            {"$filter": many},
            {"$filter": deep},
            {"$filter": "displayName eq '" + "x" * 40000 + "'"},
            {"$filter": "childFolderCount gt 99999999999999999999999999999999"},
            {"$filter": "childFolderCount gt 2147483648"},
            {"$filter": "totalItemCount gt 1.5"},
            {"$filter": "totalItemCount eq -0"},
            {"$filter": "displayName eq 'a' and"},
            {"$filter": "cast(displayName, 'x') eq 'a'"},
            {"$orderby": "displayName sideways"},
            {"$orderby": ",".join(["displayName"] * 40)},
            {"$expand": "childFolders("},
            {"$expand": "childFolders($top=0)"},
            {"$expand": "childFolders($filter=nosuch eq 1)"},
            {"$expand": "childFolders,childFolders"},
            {"$select": "displayName,,"},
            {"$skip": "-1"},
            {"includeHiddenFolders": "maybe"},
            {"$search": "inbox"},
        ):
            r = c.get("/me/mailFolders", params=params)
            assert r.status_code in (200, 400), (params, r.text)
            if r.status_code == 400:
                assert r.json()["error"]["code"] in ("BadRequest", "RequestBroker--ParseUri")
        assert (
            c.get("/me/mailFolders", params={"$filter": "displayName eq 'a;b'"}).status_code == 200
        )
        r = c.get(
            "/me/mailFolders/inbox",
            params={"$expand": "childFolders($filter=displayName eq 'a;b')"},
        )
        assert r.status_code == 200 and r.json()["childFolders"] == []
        r = c.get("/me/mailFolders/$count", params={"$filter": many})
        assert_error(r, 400, "BadRequest")


def test_hostile_action_and_search_folder_bodies(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        f = _folder(c, "inbox", unique("Hostile"))
        move = f"/me/mailFolders/{f['id']}/move"
        for body in (
            {},
            {"destinationId": None},
            {"destinationId": ["inbox"]},
            {"destinationId": ""},
            {"destinationId": "inbox", "extra": 1},
        ):
            assert_error(c.post(move, json=body), 400, "ErrorInvalidRequest")
        assert_error(
            c.post(move, content=b"[1]", headers={"content-type": "application/json"}),
            400,
            "UnableToDeserializePostBody",
        )
        assert_error(
            c.post(move, json={"destinationId": "../../x"}), 400, "ErrorInvalidIdMalformed"
        )
        search = {
            "@odata.type": "#microsoft.graph.mailSearchFolder",
            "displayName": unique("S"),
            "sourceFolderIds": ["inbox"],
            "filterQuery": "isRead eq false",
        }
        for bad in (
            {"filterQuery": "subject eq '" + "y" * 40000 + "'"},
            {"filterQuery": " or ".join(["isRead eq true"] * 600)},
            {"filterQuery": 5},
            {"sourceFolderIds": ["inbox"] * 101},
            {"sourceFolderIds": [5]},
            {"displayName": "a\u0007b"},
            {"isSupported": False, "filterQuery": "nope("},
        ):
            r = c.post(f"/me/mailFolders/{f['id']}/childFolders", json={**search, **bad})
            assert r.status_code == 400, (bad, r.text)
        # the same source twice is once; a body-property filter needs more than ReadBasic
        r = c.post(
            f"/me/mailFolders/{f['id']}/childFolders",
            json={**search, "sourceFolderIds": ["inbox", "Inbox"]},
        )
        assert r.status_code == 201 and len(r.json()["sourceFolderIds"]) == 1
        assert (
            c.get("/me/mailFolders/inbox/childFolders", params={"$top": "1000"}).status_code == 200
        )


def test_racing_moves_never_make_a_loop(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        for _ in range(5):
            x = _folder(c, "inbox", unique("X"))
            y = _folder(c, "inbox", unique("Y"))

            def move(a: dict[str, Any], b: dict[str, Any]) -> int:
                with server.client(server.token(USER)) as own:
                    r = own.post(f"/me/mailFolders/{a['id']}/move", json={"destinationId": b["id"]})
                    assert r.status_code in (200, 400), r.text
                    return r.status_code

            with ThreadPoolExecutor(2) as pool:
                codes = sorted(pool.map(lambda ab: move(*ab), [(x, y), (y, x)]))
            assert codes == [200, 400], codes
            inbox = c.get("/me/mailFolders/inbox").json()["id"]
            parents = {c.get(f"/me/mailFolders/{f['id']}").json()["parentFolderId"] for f in (x, y)}
            assert inbox in parents  # one of them is still where it was: no detached loop
            c.post(f"/me/mailFolders/{x['id']}/permanentDelete")
            c.post(f"/me/mailFolders/{y['id']}/permanentDelete")


def test_copy_racing_a_permanent_delete(server: RunningServer) -> None:
    data = b"racing bytes" * 100
    with server.client(server.token(USER)) as c:
        dest = _folder(c, "inbox", unique("RaceDest"))
        for _ in range(3):
            src = _folder(c, "inbox", unique("RaceSrc"))
            for n in range(30):
                make(
                    c,
                    src["id"],
                    subject=f"m{n}",
                    attachments=[
                        {
                            "@odata.type": "#microsoft.graph.fileAttachment",
                            "name": "r.bin",
                            "contentBytes": base64.b64encode(data + bytes([n])).decode(),
                        }
                    ],
                )

            def copy(src: dict[str, Any] = src) -> httpx.Response:
                with server.client(server.token(USER)) as own:
                    return own.post(
                        f"/me/mailFolders/{src['id']}/copy", json={"destinationId": dest["id"]}
                    )

            def delete(src: dict[str, Any] = src) -> httpx.Response:
                with server.client(server.token(USER)) as own:
                    return own.post(f"/me/mailFolders/{src['id']}/permanentDelete")

            with ThreadPoolExecutor(2) as pool:
                copied, deleted = pool.submit(copy), pool.submit(delete)
                r, d = copied.result(), deleted.result()
            assert d.status_code == 204, d.text
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                # every message the copy holds is whole: its attachment reads back
                for m in c.get(
                    f"/me/mailFolders/{r.json()['id']}/messages",
                    params={"$top": "100", "$expand": "attachments"},
                ).json()["value"]:
                    assert base64.b64decode(m["attachments"][0]["contentBytes"])[:-1] == data
                c.post(f"/me/mailFolders/{r.json()['id']}/permanentDelete")
            assert (
                c.get("/me/mailFolders/inbox/childFolders/" + dest["id"]).json()["childFolderCount"]
                == 0
            )
