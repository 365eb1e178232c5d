"""The query surface on mail folders ($filter, $orderby, $select, $top, $skip, $count,
$expand=childFolders), $count segments, Prefer: odata.maxpagesize, folder move, copy and
permanentDelete, and mailSearchFolder: both engines, over HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import assert_error, make, unique

USER = "PattiF@contoso.onmicrosoft.com"  # a mailbox no other e2e test counts folders in


def _folder(c: httpx.Client, parent: str | None, name: str, **more: Any) -> dict[str, Any]:
    path = "/me/mailFolders" if parent is None else f"/me/mailFolders/{parent}/childFolders"
    r = c.post(path, json={"displayName": name, **more})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [f["displayName"] for f in r.json()["value"]]


def test_filter_finds_the_one_folder_not_the_first(server: RunningServer) -> None:
    """The issue: displayName eq 'Projects' returned every folder, Archive first."""
    name = unique("Projects")
    with server.client(server.token(USER)) as c:
        made = _folder(c, None, name)
        r = c.get("/me/mailFolders", params={"$filter": f"displayName eq '{name}'"})
        assert [f["id"] for f in r.json()["value"]] == [made["id"]]
        # any case, as Graph compares strings
        r = c.get("/me/mailFolders", params={"$filter": f"displayName eq '{name.upper()}'"})
        assert _names(r) == [name]
        r = c.get("/me/mailFolders", params={"$filter": "displayName eq 'No such folder'"})
        assert _names(r) == []
        assert c.post(f"/me/mailFolders/{made['id']}/permanentDelete").status_code == 204


def test_filter_orderby_select_paging_count_on_child_folders(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        parent = _folder(c, "inbox", unique("Q"))
        pid = parent["id"]
        alpha = _folder(c, pid, "alpha")
        beta = _folder(c, pid, "Beta")
        _folder(c, pid, "gamma", isHidden=True)
        _folder(c, alpha["id"], "alpha child")
        make(c, beta["id"], subject="one", isRead=False)
        make(c, beta["id"], subject="two")
        kids = f"/me/mailFolders/{pid}/childFolders"
        assert _names(c.get(kids)) == ["alpha", "Beta"]  # by name, any case
        assert _names(c.get(kids, params={"includeHiddenFolders": "true"})) == [
            "alpha",
            "Beta",
            "gamma",
        ]
        cases = {
            "startswith(displayName, 'al')": ["alpha"],
            "contains(displayName, 'ET')": ["Beta"],
            "displayName ne 'alpha'": ["Beta"],
            "totalItemCount gt 1": ["Beta"],
            "childFolderCount eq 1 or totalItemCount eq 2": ["alpha", "Beta"],
            "not (childFolderCount eq 1) and isHidden eq false": ["Beta"],
            f"parentFolderId eq '{pid}' and unreadItemCount le 0": ["alpha"],
            f"id eq '{beta['id']}'": ["Beta"],
        }
        for text, expected in cases.items():
            assert _names(c.get(kids, params={"$filter": text})) == expected, text
        hidden = c.get(kids, params={"includeHiddenFolders": "true", "$filter": "isHidden"})
        assert _names(hidden) == ["gamma"]
        r = c.get(kids, params={"$orderby": "displayName desc"})
        assert _names(r) == ["Beta", "alpha"]
        r = c.get(kids, params={"$orderby": "totalItemCount desc,displayName"})
        assert _names(r) == ["Beta", "alpha"]
        r = c.get(kids, params={"$select": "displayName,totalItemCount"})
        body = r.json()
        assert body["@odata.context"].endswith("/childFolders(displayName,totalItemCount)")
        assert all(set(f) == {"id", "displayName", "totalItemCount"} for f in body["value"])
        r = c.get(kids, params={"$top": "1", "$count": "true"})
        body = r.json()
        assert body["@odata.count"] == 2 and len(body["value"]) == 1
        follow = c.get(body["@odata.nextLink"].split("/v1.0", 1)[1])
        assert _names(follow) == ["Beta"] and "@odata.nextLink" not in follow.json()
        r = c.get(kids, params={"$skip": "1"})
        assert _names(r) == ["Beta"]
        # $expand=childFolders, one level, with options inside
        r = c.get(f"/me/mailFolders/{pid}", params={"$expand": "childFolders"})
        assert [k["displayName"] for k in r.json()["childFolders"]] == ["alpha", "Beta"]
        r = c.get(kids, params={"$expand": "childFolders($select=displayName)"})
        first = r.json()["value"][0]
        assert first["childFolders"] == [
            {"id": first["childFolders"][0]["id"], "displayName": "alpha child"}
        ]
        r = c.get(
            f"/me/mailFolders/{pid}",
            params={"$expand": "childFolders($filter=displayName eq 'Beta';$select=id)"},
        )
        assert r.json()["childFolders"] == [{"id": beta["id"]}]


def test_folder_query_errors(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        for params, status, code in (
            ({"$filter": "subject eq 'x'"}, 400, "RequestBroker--ParseUri"),
            ({"$filter": "toRecipients/any(r: r eq 'x')"}, 400, "RequestBroker--ParseUri"),
            ({"$filter": "totalItemCount gt 'many'"}, 400, "BadRequest"),
            ({"$filter": "displayName eq 3"}, 400, "BadRequest"),
            ({"$filter": "startswith(totalItemCount, '1')"}, 400, "BadRequest"),
            ({"$filter": "displayName eq"}, 400, "BadRequest"),
            ({"$filter": "isHidden gt true"}, 400, "BadRequest"),
            ({"$orderby": "subject"}, 400, "RequestBroker--ParseUri"),
            ({"$select": "subject"}, 400, "RequestBroker--ParseUri"),
            ({"$expand": "messages"}, 400, "BadRequest"),
            ({"$expand": "childFolders($search=x)"}, 400, "BadRequest"),
            ({"$top": "0"}, 400, "BadRequest"),
            ({"$filter": "displayName eq '\u0001\u00e9'"}, 200, ""),
        ):
            r = c.get("/me/mailFolders", params=params)
            if status == 200:
                assert _names(r) == []
            else:
                assert_error(r, status, code)


def test_count_segments(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        folder = _folder(c, "inbox", unique("Counted"))
        fid = folder["id"]
        make(c, fid, subject="a")
        make(c, fid, subject="b")
        made = make(c, fid, subject="c")
        c.patch(f"/me/messages/{made['id']}", json={"isRead": False})
        r = c.get(f"/me/mailFolders/{fid}/messages/$count")
        assert r.status_code == 200, r.text
        assert r.text == "3" and r.headers["content-type"].startswith("text/plain")
        r = c.get(f"/me/mailFolders/{fid}/messages/$count", params={"$filter": "isRead eq false"})
        assert r.text == "1"
        everything = int(c.get("/me/messages/$count").text)
        assert everything >= 3
        listed = c.get("/me/messages", params={"$count": "true", "$top": "1"}).json()
        assert listed["@odata.count"] == everything
        _folder(c, fid, "k1")
        _folder(c, fid, "k2")
        assert c.get(f"/me/mailFolders/{fid}/childFolders/$count").text == "2"
        r = c.get(
            f"/me/mailFolders/{fid}/childFolders/$count", params={"$filter": "displayName eq 'k1'"}
        )
        assert r.text == "1"
        top = c.get("/me/mailFolders", params={"$top": "1000"}).json()["value"]
        assert c.get("/me/mailFolders/$count").text == str(len(top))
        # through the childFolders path of a nested folder, too
        assert (
            c.get(f"/me/mailFolders/msgfolderroot/childFolders/{fid}/messages/$count").text == "3"
        )
        assert_error(
            c.get("/me/messages/$count", params={"$filter": "nope eq 1"}),
            400,
            "RequestBroker--ParseUri",
        )
        assert_error(c.post("/me/messages/$count"), 405, "MethodNotAllowed")


def test_prefer_maxpagesize(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        folder = _folder(c, "inbox", unique("Paged"))
        fid = folder["id"]
        for n in range(5):
            make(c, fid, subject=f"m{n}")
        prefer = {"Prefer": "odata.maxpagesize=2"}
        r = c.get(f"/me/mailFolders/{fid}/messages", headers=prefer)
        assert len(r.json()["value"]) == 2
        assert "odata.maxpagesize=2" in r.headers["preference-applied"]
        seen = [m["id"] for m in r.json()["value"]]
        link = r.json()["@odata.nextLink"]
        while link:
            page = c.get(link.split("/v1.0", 1)[1], headers=prefer).json()
            assert len(page["value"]) <= 2
            seen += [m["id"] for m in page["value"]]
            link = page.get("@odata.nextLink")
        assert len(seen) == len(set(seen)) == 5
        # $top smaller than the preference wins; a bigger one is cut to it
        r = c.get(f"/me/mailFolders/{fid}/messages", params={"$top": "1"}, headers=prefer)
        assert len(r.json()["value"]) == 1
        r = c.get(f"/me/mailFolders/{fid}/messages", params={"$top": "4"}, headers=prefer)
        assert len(r.json()["value"]) == 2
        # folders too; nonsense is ignored (a preference, not an order)
        for n in range(3):
            _folder(c, fid, f"f{n}")
        r = c.get(f"/me/mailFolders/{fid}/childFolders", headers=prefer)
        assert len(r.json()["value"]) == 2 and "@odata.nextLink" in r.json()
        r = c.get(f"/me/mailFolders/{fid}/childFolders", headers={"Prefer": "odata.maxpagesize=x"})
        assert len(r.json()["value"]) == 3 and "preference-applied" not in r.headers
        r = c.get(
            f"/me/mailFolders/{fid}/messages",
            headers={"Prefer": 'odata.maxpagesize=5000, outlook.body-content-type="text"'},
        )
        assert "odata.maxpagesize=1000" in r.headers["preference-applied"]


def test_move_folder(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        a = _folder(c, "inbox", unique("MoveA"))
        b = _folder(c, "inbox", unique("MoveB"))
        child = _folder(c, a["id"], "child")
        msg = make(c, child["id"], subject="travels along")
        r = c.post(f"/me/mailFolders/{a['id']}/move", json={"destinationId": b["id"]})
        assert r.status_code == 200, r.text
        moved = r.json()
        assert moved["id"] == a["id"] and moved["parentFolderId"] == b["id"]
        assert c.get(f"/me/mailFolders/{b['id']}").json()["childFolderCount"] == 1
        assert c.get(f"/me/messages/{msg['id']}").json()["parentFolderId"] == child["id"]
        assert_error(
            c.post(f"/me/mailFolders/{b['id']}/move", json={"destinationId": child["id"]}),
            400,
            "ErrorMoveCopyFailed",
        )
        assert_error(
            c.post(f"/me/mailFolders/{a['id']}/move", json={"destinationId": a["id"]}),
            400,
            "ErrorMoveCopyFailed",
        )
        assert_error(
            c.post("/me/mailFolders/inbox/move", json={"destinationId": b["id"]}),
            403,
            "ErrorMoveDistinguishedFolder",
        )
        assert_error(
            c.post(f"/me/mailFolders/{a['id']}/move", json={"destinationId": "nope"}),
            400,
            "ErrorInvalidIdMalformed",
        )
        assert_error(
            c.post(f"/me/mailFolders/{a['id']}/move", json={"DestinationId": 5}),
            400,
            "ErrorInvalidRequest",
        )
        assert_error(
            c.post(f"/me/mailFolders/{a['id']}/move", json={"to": "inbox"}),
            400,
            "ErrorInvalidRequest",
        )
        clash = _folder(c, "inbox", "child")
        assert_error(
            c.post(f"/me/mailFolders/{child['id']}/move", json={"destinationId": "inbox"}),
            409,
            "ErrorFolderExists",
        )
        # well-known names as destination, and back
        r = c.post(f"/me/mailFolders/{a['id']}/move", json={"DestinationId": "archive"})
        assert r.json()["parentFolderId"] == c.get("/me/mailFolders/archive").json()["id"]
        assert c.delete(f"/me/mailFolders/{clash['id']}").status_code == 204


def test_copy_folder_deep(server: RunningServer) -> None:
    data = b"attached bytes \x00\xff" * 50
    with server.client(server.token(USER)) as c:
        src = _folder(c, "inbox", unique("CopySrc"))
        sub = _folder(c, src["id"], "sub")
        one = make(
            c,
            src["id"],
            subject="top",
            isRead=False,
            attachments=[
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "a.bin",
                    "contentBytes": base64.b64encode(data).decode(),
                }
            ],
        )
        make(c, sub["id"], subject="below")
        many = _folder(c, sub["id"], "many")  # more than one copy step (100 a transaction)
        for n in range(105):
            make(c, many["id"], subject=f"many {n}")
        dest = _folder(c, "inbox", unique("CopyDest"))
        r = c.post(f"/me/mailFolders/{src['id']}/copy", json={"destinationId": dest["id"]})
        assert r.status_code == 200, r.text
        copy = r.json()
        assert copy["id"] != src["id"] and copy["parentFolderId"] == dest["id"]
        assert copy["displayName"] == src["displayName"]
        assert copy["totalItemCount"] == 1 and copy["unreadItemCount"] == 1
        assert copy["childFolderCount"] == 1
        msgs = c.get(
            f"/me/mailFolders/{copy['id']}/messages", params={"$expand": "attachments"}
        ).json()["value"]
        assert [m["subject"] for m in msgs] == ["top"] and msgs[0]["id"] != one["id"]
        assert base64.b64decode(msgs[0]["attachments"][0]["contentBytes"]) == data
        kids = c.get(f"/me/mailFolders/{copy['id']}/childFolders").json()["value"]
        assert [k["displayName"] for k in kids] == ["sub"] and kids[0]["id"] != sub["id"]
        below = c.get(f"/me/mailFolders/{kids[0]['id']}/messages").json()["value"]
        assert [m["subject"] for m in below] == ["below"]
        grand = c.get(f"/me/mailFolders/{kids[0]['id']}/childFolders").json()["value"]
        copied = c.get(f"/me/mailFolders/{grand[0]['id']}/messages", params={"$top": "200"})
        subjects = sorted(m["subject"] for m in copied.json()["value"])
        assert subjects == sorted(f"many {n}" for n in range(105)) == sorted(set(subjects))
        assert grand[0]["totalItemCount"] == 105
        # the original is untouched; deleting it leaves the copy's attachment readable
        assert c.get(f"/me/mailFolders/{src['id']}").json()["totalItemCount"] == 1
        assert c.post(f"/me/mailFolders/{src['id']}/permanentDelete").status_code == 204
        a = c.get(f"/me/messages/{msgs[0]['id']}/attachments").json()["value"][0]
        raw = c.get(f"/me/messages/{msgs[0]['id']}/attachments/{a['id']}/$value")
        assert raw.content == data
        assert_error(
            c.post(f"/me/mailFolders/{copy['id']}/copy", json={"destinationId": kids[0]["id"]}),
            400,
            "ErrorMoveCopyFailed",
        )
        assert_error(
            c.post(f"/me/mailFolders/{copy['id']}/copy", json={"destinationId": dest["id"]}),
            409,
            "ErrorFolderExists",
        )
        assert_error(
            c.post("/me/mailFolders/msgfolderroot/copy", json={"destinationId": dest["id"]}),
            400,
            "ErrorMoveCopyFailed",
        )
        # a well-known folder may be copied: the copy is a plain folder
        r = c.post("/me/mailFolders/outbox/copy", json={"destinationId": dest["id"]})
        assert r.status_code == 200 and r.json()["displayName"] == "Outbox"


def test_permanent_delete(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        before = c.get("/me/mailFolders/deleteditems").json()["childFolderCount"]
        top = _folder(c, "inbox", unique("Gone"))
        sub = _folder(c, top["id"], "sub")
        m1 = make(c, top["id"], subject="x")
        m2 = make(c, sub["id"], subject="y")
        root = c.get("/me/mailFolders/inbox").json()["childFolderCount"]
        assert c.post(f"/me/mailFolders/{top['id']}/permanentDelete").status_code == 204
        for path in (
            f"/me/mailFolders/{top['id']}",
            f"/me/mailFolders/{sub['id']}",
            f"/me/messages/{m1['id']}",
            f"/me/messages/{m2['id']}",
        ):
            assert_error(c.get(path), 404, "ErrorItemNotFound")
        assert c.get("/me/mailFolders/inbox").json()["childFolderCount"] == root - 1
        assert c.get("/me/mailFolders/deleteditems").json()["childFolderCount"] == before
        assert_error(
            c.post("/me/mailFolders/inbox/permanentDelete"), 403, "ErrorDeleteDistinguishedFolder"
        )
        assert_error(
            c.post(f"/me/mailFolders/{top['id']}/permanentDelete"), 404, "ErrorItemNotFound"
        )


def test_mail_search_folder(server: RunningServer) -> None:
    with server.client(server.token(USER)) as c:
        src = _folder(c, "inbox", unique("Digests"))
        nested = _folder(c, src["id"], "nested")
        tag = unique("weekly digest")
        hit = make(c, src["id"], subject=f"{tag} 1", isRead=False)
        make(c, nested["id"], subject=f"{tag} 2")
        make(c, src["id"], subject="something else")
        body = {
            "@odata.type": "microsoft.graph.mailSearchFolder",
            "displayName": "Weekly digests",
            "includeNestedFolders": True,
            "sourceFolderIds": [src["id"]],
            "filterQuery": f"contains(subject, '{tag}')",
        }
        r = c.post(f"/me/mailFolders/{src['id']}/childFolders", json=body)
        assert r.status_code == 201, r.text
        sf = r.json()
        assert sf["@odata.type"] == "#microsoft.graph.mailSearchFolder"
        assert sf["@odata.context"].endswith(f"/mailFolders('{src['id']}')/childFolders/$entity")
        assert sf["isSupported"] is True and sf["includeNestedFolders"] is True
        assert sf["sourceFolderIds"] == [src["id"]] and sf["filterQuery"] == body["filterQuery"]
        assert sf["totalItemCount"] == 2 and sf["unreadItemCount"] == 1
        listed = c.get(f"/me/mailFolders/{sf['id']}/messages").json()["value"]
        assert sorted(m["subject"] for m in listed) == [f"{tag} 1", f"{tag} 2"]
        # evaluated live: a new match shows up, with $filter, $select, paging, $count
        make(c, nested["id"], subject=f"{tag} 3")
        assert c.get(f"/me/mailFolders/{sf['id']}/messages/$count").text == "3"
        r = c.get(
            f"/me/mailFolders/{sf['id']}/messages",
            params={"$filter": "isRead eq false", "$select": "subject"},
        )
        assert [m["subject"] for m in r.json()["value"]] == [hit["subject"]]
        page = c.get(f"/me/mailFolders/{sf['id']}/messages", params={"$top": "2", "$count": "true"})
        assert len(page.json()["value"]) == 2 and page.json()["@odata.count"] == 3
        kids = c.get(f"/me/mailFolders/{src['id']}/childFolders").json()["value"]
        assert {k.get("@odata.type") for k in kids} == {None, "#microsoft.graph.mailSearchFolder"}
        assert c.get(f"/me/mailFolders/{sf['id']}").json()["totalItemCount"] == 3
        # shallow: only the source folder itself
        r = c.patch(f"/me/mailFolders/{sf['id']}", json={"includeNestedFolders": False})
        assert r.status_code == 200, r.text
        assert r.json()["totalItemCount"] == 1 and r.json()["filterQuery"] == body["filterQuery"]
        r = c.patch(
            f"/me/mailFolders/{sf['id']}",
            json={"filterQuery": "subject eq 'something else'", "displayName": "Else"},
        )
        assert r.json()["displayName"] == "Else" and r.json()["totalItemCount"] == 1
        # nothing goes into a search folder
        assert_error(
            c.post(f"/me/mailFolders/{sf['id']}/messages", json={"subject": "x"}),
            400,
            "ErrorInvalidRequest",
        )
        assert_error(
            c.post(f"/me/messages/{hit['id']}/move", json={"destinationId": sf["id"]}),
            400,
            "ErrorInvalidRequest",
        )
        assert_error(
            c.post(f"/me/messages/{hit['id']}/copy", json={"destinationId": sf["id"]}),
            400,
            "ErrorInvalidRequest",
        )
        assert_error(
            c.post(f"/me/mailFolders/{sf['id']}/childFolders", json={"displayName": "k"}),
            400,
            "ErrorInvalidRequest",
        )
        # a bad definition is a 400 (or 404 for a folder that is not there), nothing made
        for bad, status, code in (
            ({"filterQuery": "contains(subject"}, 400, "BadRequest"),
            ({"filterQuery": "nosuch eq 'x'"}, 400, "RequestBroker--ParseUri"),
            ({"filterQuery": ""}, 400, "ErrorInvalidRequest"),
            ({"filterQuery": None}, 400, "ErrorInvalidRequest"),
            ({"sourceFolderIds": []}, 400, "ErrorInvalidRequest"),
            ({"sourceFolderIds": "inbox"}, 400, "ErrorInvalidRequest"),
            (
                {"sourceFolderIds": ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]},
                404,
                "ErrorItemNotFound",
            ),
            ({"sourceFolderIds": [sf["id"]]}, 400, "ErrorInvalidRequest"),
            ({"includeNestedFolders": "yes"}, 400, "ErrorInvalidRequest"),
        ):
            r = c.post("/me/mailFolders", json={**body, "displayName": unique("bad"), **bad})
            assert_error(r, status, code)
        assert_error(
            c.post(
                "/me/mailFolders",
                json={"displayName": unique("p"), "filterQuery": "isRead eq true"},
            ),
            400,
            "ErrorInvalidRequest",
        )
        # well-known names as sources; a plain folder's PATCH refuses search properties
        r = c.post(
            "/me/mailFolders/searchfolders/childFolders",
            json={
                **body,
                "displayName": unique("Unread"),
                "sourceFolderIds": ["inbox"],
                "filterQuery": "isRead eq false",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["sourceFolderIds"] == [c.get("/me/mailFolders/inbox").json()["id"]]
        assert_error(
            c.patch(f"/me/mailFolders/{src['id']}", json={"filterQuery": "isRead eq true"}),
            400,
            "ErrorInvalidRequest",
        )
        # a source folder deleted since: the search folder shows nothing of it, and its
        # other properties can still change
        gone = _folder(c, "inbox", unique("Gone"))
        make(c, gone["id"], subject=f"{tag} gone")
        r = c.post(
            "/me/mailFolders/searchfolders/childFolders",
            json={**body, "displayName": unique("Orphan"), "sourceFolderIds": [gone["id"]]},
        )
        orphan = r.json()
        assert r.status_code == 201 and orphan["totalItemCount"] == 1
        assert c.post(f"/me/mailFolders/{gone['id']}/permanentDelete").status_code == 204
        r = c.patch(f"/me/mailFolders/{orphan['id']}", json={"displayName": unique("Renamed")})
        assert r.status_code == 200, r.text
        assert r.json()["totalItemCount"] == 0 and r.json()["sourceFolderIds"] == [gone["id"]]
        assert c.get(f"/me/mailFolders/{orphan['id']}/messages").json()["value"] == []
        # a search folder goes for good alone; the messages it showed stay where they are
        assert (
            c.post(f"/me/mailFolders/{src['id']}/move", json={"destinationId": "inbox"}).status_code
            == 200
        )
        assert c.post(f"/me/mailFolders/{sf['id']}/permanentDelete").status_code == 204
        assert_error(c.get(f"/me/mailFolders/{sf['id']}"), 404, "ErrorItemNotFound")
        assert c.get(f"/me/messages/{hit['id']}").status_code == 200
