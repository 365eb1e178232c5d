"""Open extensions on messages (POST, GET, PATCH, DELETE under …/extensions, $filter and
$expand), over real HTTP on both engines."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import ALEX, assert_error, unique

OPEN = "microsoft.graph.openTypeExtension"


def ext(name: str, **data: Any) -> dict[str, Any]:
    return {"@odata.type": OPEN, "extensionName": name, **data}


def a_draft(c: httpx.Client, subject: str = "ext") -> dict[str, Any]:
    r = c.post("/me/messages", json={"subject": unique(subject)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_an_extension_is_created_read_changed_and_deleted(server: RunningServer) -> None:
    name = unique("Com.Contoso.Referral")
    with server.client() as c:
        m = a_draft(c)
        base = f"/me/messages/{m['id']}/extensions"
        r = c.post(base, json=ext(name, companyName="Wingtip Toys", dealValue=500050))
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["@odata.context"].endswith(f"/messages('{m['id']}')/extensions/$entity")
        assert made["@odata.type"] == "#microsoft.graph.openTypeExtension"
        assert made["id"] == f"{OPEN}.{name}" and made["extensionName"] == name
        assert (made["companyName"], made["dealValue"]) == ("Wingtip Toys", 500050)

        for ref in (name, name.upper(), f"{OPEN}.{name}",
                    f"Microsoft.OutlookServices.OpenTypeExtension.{name}"):  # fmt: skip
            got = c.get(f"{base}/{ref}")
            assert got.status_code == 200, got.text
            assert got.json()["companyName"] == "Wingtip Toys"

        # the same name again, in any case: 409
        assert_error(c.post(base, json=ext(name.lower())), 409, "NameAlreadyExists")

        # PATCH: given properties are written, new ones added, those left out removed
        r = c.patch(
            f"{base}/{OPEN}.{name}",
            json=ext(name, companyName="Wingtip Toys (USA)", updated="2015-10-29"),
        )
        assert r.status_code == 200, r.text
        whole = r.json()
        assert whole["@odata.context"].endswith("/extensions/$entity")
        assert {k: v for k, v in whole.items() if not k.startswith("@")} == {
            "id": f"{OPEN}.{name}", "extensionName": name,
            "companyName": "Wingtip Toys (USA)", "updated": "2015-10-29",
        }  # fmt: skip
        assert c.get(f"{base}/{name}").json()["updated"] == "2015-10-29"
        # the name cannot change
        assert_error(c.patch(f"{base}/{name}", json=ext("Com.Other")), 400, "ErrorInvalidRequest")

        listed = c.get(base).json()["value"]
        assert [e["extensionName"] for e in listed] == [name]

        r = c.delete(f"{base}/{name}")
        assert r.status_code == 204 and r.content == b""
        assert_error(c.get(f"{base}/{name}"), 404, "ErrorItemNotFound")
        assert_error(c.delete(f"{base}/{name}"), 404, "ErrorItemNotFound")
        assert_error(c.patch(f"{base}/{name}", json=ext(name)), 404, "ErrorItemNotFound")
        assert c.get(base).json()["value"] == []
        # an unknown message
        assert_error(c.post("/me/messages/AAAAnope/extensions", json=ext("x")), 404,
                     "ErrorItemNotFound")  # fmt: skip


def test_filter_and_expand_find_messages_by_extension(server: RunningServer) -> None:
    name = unique("Com.Contoso.Find")
    with server.client() as c:
        tagged = a_draft(c, "tagged")
        plain = a_draft(c, "plain")
        r = c.post(f"/me/messages/{tagged['id']}/extensions", json=ext(name, v=1))
        assert r.status_code == 201, r.text
        for path in ("/me/messages", "/me/mailFolders/drafts/messages"):
            r = c.get(path, params={
                "$filter": f"Extensions/any(f:f/id eq '{name}')",
                "$expand": f"Extensions($filter=id eq '{name}')",
            })  # fmt: skip
            assert r.status_code == 200, r.text
            [found] = r.json()["value"]
            assert found["id"] == tagged["id"]
            assert [e["v"] for e in found["extensions"]] == [1]
        # by the fully qualified id too, and in any case
        r = c.get("/me/messages", params={
            "$filter": f"extensions/any(f:f/id eq '{OPEN}.{name.upper()}')"})  # fmt: skip
        assert [m["id"] for m in r.json()["value"]] == [tagged["id"]]
        r = c.get("/me/messages", params={
            "$filter": f"not extensions/any(f:f/id eq '{name}') and "
                       f"subject eq '{plain['subject']}'"})  # fmt: skip
        assert [m["id"] for m in r.json()["value"]] == [plain["id"]]
        bad = c.get("/me/messages", params={"$filter": f"extensions/any(f:f/name eq '{name}')"})
        assert bad.status_code == 400, bad.text


def test_bad_extensions_are_refused_with_graph_errors(server: RunningServer) -> None:
    with server.client() as c:
        m = a_draft(c)
        base = f"/me/messages/{m['id']}/extensions"
        assert_error(c.post(base, json={"extensionName": "Com.NoType"}), 422, "UnprocessableType")
        assert_error(c.post(base, json={"@odata.type": OPEN}), 400, "RequestBodyRead")
        assert_error(c.post(base, json={"@odata.type": "#microsoft.graph.fileAttachment",
                                        "extensionName": "x"}), 400, "RequestBodyRead")  # fmt: skip
        assert_error(c.post(base, json=ext("Com.Nested", v={"a": 1})), 400, "RequestBodyRead")
        assert_error(c.post(base, json=ext("Com.Nested", v=[[1]])), 400, "RequestBodyRead")
        assert_error(c.post(base, json=ext("Com.Ctl", **{"a\u0007": 1})), 400, "RequestBodyRead")
        assert_error(c.post(base, json=ext("Com.\nName")), 400, "RequestBodyRead")
        assert_error(c.post(base, json=[ext("Com.Array")]), 400, "UnableToDeserializePostBody")
        huge = c.post(base, json=ext("Com.Huge", v="x" * 40_000))
        assert_error(huge, 400, "ErrorInvalidRequest")
        assert "32768 bytes" in huge.json()["error"]["message"]
        deep = b'{"@odata.type":"' + OPEN.encode() + b'","extensionName":"d","v":'
        deep += b"[" * 100_000 + b"]" * 100_000 + b"}"
        r = c.post(base, content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text
        nul = c.post(base, content=json.dumps(ext("Com.Nul", v="a\u0000b")).encode(),
                     headers={"content-type": "application/json"})  # fmt: skip
        assert nul.status_code == 400, nul.text
        # control characters (but NUL) are data in a value
        r = c.post(base, json=ext("Com.Ctl", v="tab\there\u0001"))
        assert r.status_code == 201, r.text
        assert c.get(f"{base}/Com.Ctl").json()["v"] == "tab\there\u0001"
        assert c.get(base).json()["value"][0]["extensionName"] == "Com.Ctl"
        # at most 50 extensions on one message
        for i in range(49):
            assert c.post(base, json=ext(f"Com.Many{i}")).status_code == 201
        over = c.post(base, json=ext("Com.OneTooMany"))
        assert_error(over, 400, "ErrorInvalidRequest")
        assert len(c.get(base).json()["value"]) == 50
        # and in a create
        many = [ext(f"Com.C{i}") for i in range(51)]
        assert_error(c.post("/me/messages", json={"extensions": many}), 400,
                     "ErrorInvalidRequest")  # fmt: skip


def test_concurrent_patches_of_one_extension_never_mix(server: RunningServer) -> None:
    name = unique("Com.Race")
    with server.client() as c:
        m = a_draft(c)
        base = f"/me/messages/{m['id']}/extensions"
        assert c.post(base, json=ext(name, n=-1)).status_code == 201

    def patch(n: int) -> int:
        with server.client() as c:
            body = ext(name, n=n, **{f"k{n}": n})
            return c.patch(f"{base}/{name}", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(patch, range(24)))
    assert codes == [200] * 24
    with server.client() as c:
        final = c.get(f"{base}/{name}").json()
    n = final["n"]
    # one whole writer's document: its n and its own key, nobody else's
    assert final[f"k{n}"] == n
    assert not [k for k in final if k.startswith("k") and k != f"k{n}"]


def test_permissions_copies_and_change_keys(server: RunningServer) -> None:
    name = unique("Com.Perm")
    with server.client() as c:
        m = a_draft(c)
        base = f"/me/messages/{m['id']}/extensions"
        assert c.post(base, json=ext(name, v=1)).status_code == 201
        after = c.get(f"/me/messages/{m['id']}").json()
        # open extensions are not the message's properties: its change key stays
        assert after["changeKey"] == m["changeKey"]
        copied = c.post(f"/me/messages/{m['id']}/copy", json={"destinationId": "inbox"}).json()
        got = c.get(f"/me/messages/{copied['id']}/extensions/{name}")
        assert got.status_code == 200 and got.json()["v"] == 1
        reply = c.post(f"/me/messages/{m['id']}/createReply", json={}).json()
        assert c.get(f"/me/messages/{reply['id']}/extensions").json()["value"] == []
        moved = c.post(f"/me/messages/{m['id']}/move", json={"destinationId": "archive"})
        assert moved.status_code == 201, moved.text
        assert c.get(f"{base}/{name}").status_code == 200

    with server.client(server.token(scopes="Mail.Read")) as c:
        assert c.get(f"{base}/{name}").json()["v"] == 1
        assert_error(c.post(base, json=ext("Com.Read")), 403, "ErrorAccessDenied")
        assert_error(c.patch(f"{base}/{name}", json=ext(name)), 403, "ErrorAccessDenied")
        assert_error(c.delete(f"{base}/{name}"), 403, "ErrorAccessDenied")
    with server.client(server.token(scopes="Mail.ReadBasic")) as c:
        assert c.get(base).json()["value"] == []
        assert_error(c.get(f"{base}/{name}"), 404, "ErrorItemNotFound")
        r = c.get("/me/messages", params={"$filter": f"extensions/any(f:f/id eq '{name}')"})
        assert_error(r, 403, "ErrorAccessDenied")
    # another user's mailbox is not reachable
    with server.client(server.token(ALEX)) as c:
        assert c.get(f"/me/messages/{m['id']}/extensions").status_code == 404


def test_patch_of_the_message_does_not_take_extensions(server: RunningServer) -> None:
    """Extensions change through their own URLs: a PATCH naming them is a 400, never a 200
    that drops them."""
    with server.client() as c:
        draft = a_draft(c)
        r = c.patch(
            f"/me/messages/{draft['id']}",
            json={"subject": "changed", "extensions": [ext("Com.Contoso.Patched", a=1)]},
        )
        assert_error(r, 400, "ErrorInvalidRequest")
        again = c.get(f"/me/messages/{draft['id']}?$expand=extensions").json()
    assert again["subject"] == draft["subject"]
    assert again.get("extensions", []) == []
