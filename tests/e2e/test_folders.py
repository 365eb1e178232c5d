"""Mail folders: list, hidden folders, get by well-known name, childFolders, rename, delete."""

from __future__ import annotations

import uuid

from tests.conftest import RunningServer
from tests.mail_api import assert_error, make

TOP_LEVEL = {"Archive", "Conversation History", "Deleted Items", "Drafts", "Inbox",
             "Junk Email", "Outbox", "Sent Items"}  # fmt: skip


def test_list_and_get_folders(server: RunningServer) -> None:
    user = "MeganB@contoso.onmicrosoft.com"
    with server.client(server.token(user)) as c:
        r = c.get("/me/mailFolders?$top=100")
        assert r.status_code == 200
        body = r.json()
        assert body["@odata.context"].endswith("/mailFolders")
        names = {f["displayName"] for f in body["value"]}
        assert names == TOP_LEVEL
        root = c.get("/me/mailFolders/msgfolderroot").json()
        for f in body["value"]:
            assert set(f) == {"id", "displayName", "parentFolderId", "childFolderCount",
                              "unreadItemCount", "totalItemCount", "isHidden"}  # fmt: skip
            assert f["parentFolderId"] == root["id"] and f["isHidden"] is False
        hidden = c.get("/me/mailFolders?includeHiddenFolders=true&$top=100").json()["value"]
        assert len(hidden) > len(body["value"])
        assert any(f["isHidden"] for f in hidden)
        inbox = c.get("/me/mailFolders/Inbox").json()
        assert inbox["displayName"] == "Inbox"
        assert c.get(f"/me/mailFolders/{inbox['id']}").json() == inbox
        assert c.get("/me/mailFolders('inbox')").json()["id"] == inbox["id"]
        paged = c.get("/me/mailFolders?$top=3").json()
        assert len(paged["value"]) == 3 and "@odata.nextLink" in paged


def test_child_folders_rename_and_delete(server: RunningServer) -> None:
    name = f"Projects {uuid.uuid4().hex[:6]}"
    with server.client() as c:
        before = c.get("/me/mailFolders/inbox").json()["childFolderCount"]
        r = c.post("/me/mailFolders/inbox/childFolders", json={"displayName": name})
        assert r.status_code == 201, r.text
        child = r.json()
        assert child["@odata.context"].endswith("/mailFolders('inbox')/childFolders/$entity")
        assert child["childFolderCount"] == 0 and child["totalItemCount"] == 0
        assert c.get("/me/mailFolders/inbox").json()["childFolderCount"] == before + 1
        assert_error(c.post("/me/mailFolders/inbox/childFolders", json={"displayName": name}),
                     409, "ErrorFolderExists")  # fmt: skip
        assert_error(c.post("/me/mailFolders", json={"displayName": ""}), 400,
                     "ErrorInvalidRequest")  # fmt: skip
        kids = c.get("/me/mailFolders/inbox/childFolders").json()["value"]
        assert child["id"] in {k["id"] for k in kids}
        grand = c.post(f"/me/mailFolders/{child['id']}/childFolders",
                       json={"displayName": "Deep"}).json()  # fmt: skip
        nested = c.get(f"/me/mailFolders/inbox/childFolders/{child['id']}/childFolders")
        assert [f["id"] for f in nested.json()["value"]] == [grand["id"]]
        m = make(c, grand["id"], subject="deep")
        renamed = c.patch(f"/me/mailFolders/{child['id']}", json={"displayName": name + " 2"})
        assert renamed.status_code == 200 and renamed.json()["displayName"] == name + " 2"
        assert renamed.json()["id"] == child["id"]
        assert_error(c.patch("/me/mailFolders/inbox", json={"displayName": "x"}), 403,
                     "ErrorDeleteDistinguishedFolder")  # fmt: skip
        assert_error(c.delete("/me/mailFolders/drafts"), 403, "ErrorDeleteDistinguishedFolder")
        # delete: into Deleted Items, then gone with everything in it
        assert c.delete(f"/me/mailFolders/{child['id']}").status_code == 204
        moved = c.get(f"/me/mailFolders/{child['id']}").json()
        trash = c.get("/me/mailFolders/deleteditems").json()
        assert moved["parentFolderId"] == trash["id"]
        assert c.get("/me/mailFolders/inbox").json()["childFolderCount"] == before
        assert c.delete(f"/me/mailFolders/{child['id']}").status_code == 204
        assert_error(c.get(f"/me/mailFolders/{child['id']}"), 404, "ErrorItemNotFound")
        assert_error(c.get(f"/me/mailFolders/{grand['id']}"), 404, "ErrorItemNotFound")
        assert_error(c.get(f"/me/messages/{m['id']}"), 404, "ErrorItemNotFound")


def test_hidden_folder_created(server: RunningServer) -> None:
    with server.client(server.token("LeeG@contoso.onmicrosoft.com")) as c:
        r = c.post("/me/mailFolders", json={"displayName": "Clutter", "isHidden": True})
        assert r.status_code == 201 and r.json()["isHidden"] is True
        visible = c.get("/me/mailFolders?$top=100").json()["value"]
        assert r.json()["id"] not in {f["id"] for f in visible}


def test_is_hidden_is_set_at_creation_only(server: RunningServer) -> None:
    """Graph: isHidden can be set only when the folder is created. A PATCH that would change
    it is 400 naming it, and changes nothing (nor the name given with it); the value the
    folder has, echoed back, is accepted."""
    with server.client() as c:
        name = f"hid-{uuid.uuid4().hex[:8]}"
        made = c.post("/me/mailFolders", json={"displayName": name, "isHidden": True}).json()
        for value in (False, "false", 0, "yes"):
            r = c.patch(f"/me/mailFolders/{made['id']}", json={"displayName": "x" + name,
                                                              "isHidden": value})  # fmt: skip
            error = assert_error(r, 400, "ErrorInvalidRequest")
            assert error.get("target") == "isHidden" and "created" in str(error["message"])
        got = c.get(f"/me/mailFolders/{made['id']}").json()
        assert got["isHidden"] is True and got["displayName"] == name
        r = c.patch(f"/me/mailFolders/{made['id']}", json={"displayName": "y" + name,
                                                          "isHidden": True})  # fmt: skip
        assert r.status_code == 200 and r.json()["isHidden"] is True, r.text
        assert r.json()["displayName"] == "y" + name
        visible = c.post("/me/mailFolders", json={"displayName": "v" + name}).json()
        r = c.patch(f"/me/mailFolders/{visible['id']}", json={"isHidden": True})
        assert_error(r, 400, "ErrorInvalidRequest")
        assert c.get(f"/me/mailFolders/{visible['id']}").json()["isHidden"] is False
