"""Around a draft: list with OData options, PATCH with If-Match, DELETE, permanentDelete."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import RunningServer
from tests.mail_api import assert_error, make


def fresh_folder(c: httpx.Client) -> str:
    r = c.post("/me/mailFolders", json={"displayName": f"t-{uuid.uuid4().hex[:10]}"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_list_select_top_skip_next_link(server: RunningServer) -> None:
    with server.client() as c:
        folder = fresh_folder(c)
        made = [make(c, folder, subject=f"m{n:02d}") for n in range(25)]
        page = c.get(f"/me/mailFolders/{folder}/messages?$select=subject,sender&$top=10").json()
        assert page["@odata.context"].endswith(f"/mailFolders('{folder}')/messages(subject,sender)")
        assert len(page["value"]) == 10
        item = page["value"][0]
        assert set(item) == {"@odata.etag", "id", "subject", "sender"}
        seen = [v["id"] for v in page["value"]]
        while "@odata.nextLink" in page:
            page = httpx.get(page["@odata.nextLink"], headers=c.headers).json()
            seen += [v["id"] for v in page["value"]]
        assert len(seen) == 25 and set(seen) == {m["id"] for m in made}
        default = c.get(f"/me/mailFolders/{folder}/messages").json()
        assert len(default["value"]) == 10  # default page size
        counted = c.get(f"/me/mailFolders/{folder}/messages?$count=true&$top=1").json()
        assert counted["@odata.count"] == 25
        ordered = c.get(f"/me/mailFolders/{folder}/messages?$orderby=subject desc&$top=3").json()
        assert [v["subject"] for v in ordered["value"]] == ["m24", "m23", "m22"]
        skipped = c.get(f"/me/mailFolders/{folder}/messages?$orderby=subject&$skip=20").json()
        assert [v["subject"] for v in skipped["value"]] == [f"m{n}" for n in range(20, 25)]


def test_filters(server: RunningServer) -> None:
    with server.client() as c:
        folder = fresh_folder(c)
        a = make(
            c,
            folder,
            subject="Alpha report",
            importance="high",
            categories=["Red"],
            toRecipients=[{"emailAddress": {"address": "AlexW@contoso.onmicrosoft.com"}}],
        )
        b = make(
            c,
            folder,
            subject="Beta's notes",
            isRead=False,
            ccRecipients=[{"emailAddress": {"address": "MeganB@contoso.onmicrosoft.com"}}],
        )
        base = f"/me/mailFolders/{folder}/messages?$filter="

        def ids(flt: str) -> set[str]:
            r = c.get(base + flt)
            assert r.status_code == 200, (flt, r.text)
            return {v["id"] for v in r.json()["value"]}

        assert ids("importance eq 'high'") == {a["id"]}
        assert ids("Importance eq 'HIGH'") == {a["id"]}
        assert ids("isRead eq false") == {b["id"]}
        assert ids("not (isRead eq false)") == {a["id"]}
        assert ids("subject eq 'Beta''s notes'") == {b["id"]}
        assert ids("startswith(subject, 'alpha')") == {a["id"]}
        assert ids("contains(subject,'NOTES')") == {b["id"]}
        assert ids("categories/any(c: c eq 'Red')") == {a["id"]}
        assert ids("toRecipients/any(r: r/emailAddress/address eq "
                   "'alexw@contoso.onmicrosoft.com')") == {a["id"]}  # fmt: skip
        assert ids("ccRecipients/any(r: r/emailAddress/name eq 'Megan Bowen')") == {b["id"]}
        assert ids("from/emailAddress/address eq 'AdeleV@contoso.onmicrosoft.com'") == {
            a["id"], b["id"]}  # fmt: skip
        assert ids("importance eq 'high' or isRead eq false") == {a["id"], b["id"]}
        assert ids("importance eq 'high' and isRead eq false") == set()
        assert ids(f"receivedDateTime ge {a['receivedDateTime']}") == {a["id"], b["id"]}
        assert ids("receivedDateTime lt 2000-01-01") == set()
        assert ids("hasAttachments eq false and isDraft eq true") == {a["id"], b["id"]}
        assert ids(f"internetMessageId eq '{a['internetMessageId']}'") == {a["id"]}
        assert ids("flag/flagStatus eq 'notFlagged'") == {a["id"], b["id"]}
        ordered = c.get(
            base + "importance eq 'high' or importance eq 'normal'&$orderby=importance"
        ).json()["value"]
        assert [v["id"] for v in ordered] == [a["id"], b["id"]]
        both = c.get(f"/me/messages?$filter=parentFolderId eq '{folder}'&$count=true").json()
        assert both["@odata.count"] == 2


def test_patch_and_etags(server: RunningServer) -> None:
    with server.client() as c:
        folder = fresh_folder(c)
        m = make(c, folder, subject="before")
        r = c.patch(
            f"/me/messages/{m['id']}",
            json={
                "subject": "after",
                "importance": "HIGH",
                "body": {"contentType": "html", "content": "<p>new <i>body</i></p>"},
                "toRecipients": [{"emailAddress": {"address": "MeganB@contoso.onmicrosoft.com"}}],
                "categories": ["Blue"],
                "flag": {"flagStatus": "flagged"},
                "isReadReceiptRequested": True,
                "inferenceClassification": "Other",
            },
        )
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["subject"] == "after" and p["importance"] == "high"
        assert p["bodyPreview"] == "new body"
        assert p["toRecipients"][0]["emailAddress"]["name"] == "Megan Bowen"
        assert p["categories"] == ["Blue"] and p["flag"] == {"flagStatus": "flagged"}
        assert p["inferenceClassification"] == "other" and p["isReadReceiptRequested"] is True
        assert p["changeKey"] != m["changeKey"]
        assert p["@odata.etag"] == f'W/"{p["changeKey"]}"'
        assert p["id"] == m["id"] and p["createdDateTime"] == m["createdDateTime"]
        stale = c.patch(
            f"/me/messages/{m['id']}", json={"subject": "lost"},
            headers={"If-Match": m["@odata.etag"]},
        )  # fmt: skip
        assert_error(stale, 412, "ErrorIrresolvableConflict")
        fresh = c.patch(
            f"/me/messages/{m['id']}", json={"subject": "won"},
            headers={"If-Match": p["@odata.etag"]},
        )  # fmt: skip
        assert fresh.status_code == 200 and fresh.json()["subject"] == "won"
        assert c.get(f"/me/messages/{m['id']}").json()["subject"] == "won"
        assert_error(
            c.patch(f"/me/messages/{m['id']}", json={"internetMessageHeaders": []}),
            400,
            "ErrorInvalidRequest",
        )
        assert_error(c.patch(f"/me/messages/{m['id']}", json={"importance": "x"}), 400,
                     "RequestBodyRead")  # fmt: skip
        assert c.get(f"/me/messages/{m['id']}").json()["subject"] == "won"


def test_unread_counts_follow_is_read(server: RunningServer) -> None:
    with server.client() as c:
        folder = fresh_folder(c)
        m = make(c, folder, isRead=False)
        make(c, folder)
        f = c.get(f"/me/mailFolders/{folder}").json()
        assert (f["totalItemCount"], f["unreadItemCount"]) == (2, 1)
        c.patch(f"/me/messages/{m['id']}", json={"isRead": True})
        f = c.get(f"/me/mailFolders/{folder}").json()
        assert (f["totalItemCount"], f["unreadItemCount"]) == (2, 0)


def test_delete_moves_to_deleted_items_then_gone(server: RunningServer) -> None:
    with server.client() as c:
        folder = fresh_folder(c)
        m = make(c, folder, isRead=False)
        trash = c.get("/me/mailFolders/deleteditems").json()
        assert c.delete(f"/me/messages/{m['id']}").status_code == 204
        moved = c.get(f"/me/messages/{m['id']}").json()
        assert moved["parentFolderId"] == trash["id"]
        after = c.get("/me/mailFolders/deleteditems").json()
        assert after["totalItemCount"] == trash["totalItemCount"] + 1
        assert after["unreadItemCount"] == trash["unreadItemCount"] + 1
        assert c.get(f"/me/mailFolders/{folder}").json()["totalItemCount"] == 0
        assert c.delete(f"/me/messages/{m['id']}").status_code == 204
        assert_error(c.get(f"/me/messages/{m['id']}"), 404, "ErrorItemNotFound")
        assert (
            c.get("/me/mailFolders/deleteditems").json()["totalItemCount"]
            == (trash["totalItemCount"])
        )
        gone = make(c, folder)
        r = c.post(f"/me/messages/{gone['id']}/permanentDelete")
        assert r.status_code == 204 and r.content == b""
        assert_error(c.get(f"/me/messages/{gone['id']}"), 404, "ErrorItemNotFound")
        assert c.get(f"/me/mailFolders/{folder}").json()["totalItemCount"] == 0
        stale = make(c, folder)
        c.patch(f"/me/messages/{stale['id']}", json={"subject": "changed"})
        assert_error(
            c.delete(f"/me/messages/{stale['id']}", headers={"If-Match": stale["@odata.etag"]}),
            412,
            "ErrorIrresolvableConflict",
        )


def test_prefer_text_body(server: RunningServer) -> None:
    with server.client() as c:
        m = c.post(
            "/me/messages",
            json={"body": {"contentType": "html", "content": "<p>Hi <b>there</b></p>"}},
        ).json()
        r = c.get(f"/me/messages/{m['id']}",
                  headers={"Prefer": 'outlook.body-content-type="text"'})  # fmt: skip
        assert r.headers["preference-applied"] == 'outlook.body-content-type="text"'
        assert r.json()["body"]["contentType"] == "text"
        assert "Hi there" in r.json()["body"]["content"]


def test_prefer_text_body_applied_once_where_honoured(server: RunningServer) -> None:
    prefer = {"Prefer": 'outlook.body-content-type=text, IdType="ImmutableId"'}
    with server.client() as c:
        for _ in range(2):
            c.post("/me/messages", json={"body": {"contentType": "html", "content": "<p>x</p>"}})
        r = c.get("/me/messages?$top=2", headers=prefer)
        assert [m["body"]["contentType"] for m in r.json()["value"]] == ["text", "text"]
        applied = 'IdType="ImmutableId", outlook.body-content-type="text"'
        assert r.headers["preference-applied"] == applied
        r = c.get("/me/mailFolders('drafts')/messages?$top=2", headers=prefer)
        assert r.headers["preference-applied"] == applied
        # folders have no bodies: only the id preference is applied there
        r = c.get("/me/mailFolders", headers=prefer)
        assert r.headers["preference-applied"] == 'IdType="ImmutableId"'
