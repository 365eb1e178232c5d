"""The strict request reader: a property the type does not define is Graph's 400
``RequestBodyRead`` on create, PATCH and every action body; read-only properties and instance
annotations are accepted and ignored, as Graph ignores them. No 2xx ever drops data."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.mail_api import assert_error, drafts_count

MESSAGE = "microsoft.graph.message"


def _unknown(r: Any, name: str, type_name: str) -> None:
    message = str(assert_error(r, 400, "RequestBodyRead")["message"])
    assert f"The property '{name}' does not exist on type '{type_name}'" in message, message


@pytest.mark.parametrize(
    ("body", "name", "type_name"),
    [
        ({"subjet": "typo"}, "subjet", MESSAGE),
        ({"Subject": "PascalCase is another name"}, "Subject", MESSAGE),
        ({"toRecipients": [{"emailAddress": {"address": "a@b.c", "nmae": "x"}}]}, "nmae",
         "microsoft.graph.emailAddress"),
        ({"toRecipients": [{"emailAddress": {"address": "a@b.c"}, "type": "to"}]}, "type",
         "microsoft.graph.recipient"),
        ({"body": {"contentType": "text", "content": "x", "charset": "utf-8"}}, "charset",
         "microsoft.graph.itemBody"),
        ({"flag": {"flagStatus": "flagged", "dueDate": "x"}}, "dueDate",
         "microsoft.graph.followupFlag"),
        ({"internetMessageHeaders": [{"name": "x-a", "value": "b", "kind": "c"}]}, "kind",
         "microsoft.graph.internetMessageHeader"),
        ({"OdataType": "#microsoft.graph.message"}, "OdataType", MESSAGE),
    ],
)  # fmt: skip
def test_unknown_properties_on_create(
    server: RunningServer, body: dict[str, Any], name: str, type_name: str
) -> None:
    before = drafts_count(server)
    with server.client() as c:
        _unknown(c.post("/me/messages", json={"subject": "strict", **body}), name, type_name)
    assert drafts_count(server) == before


def test_unknown_property_on_patch_changes_nothing(server: RunningServer) -> None:
    with server.client() as c:
        draft = c.post("/me/messages", json={"subject": "before"}).json()
        r = c.patch(f"/me/messages/{draft['id']}", json={"subject": "after", "colour": "red"})
        _unknown(r, "colour", MESSAGE)
        again = c.get(f"/me/messages/{draft['id']}").json()
    assert again["subject"] == "before"
    assert again["changeKey"] == draft["changeKey"]


def test_read_only_properties_and_annotations_are_ignored(server: RunningServer) -> None:
    """What an SDK or python-o365 echoes back (the whole object it read) is accepted."""
    with server.client() as c:
        draft = c.post("/me/messages", json={"subject": "echo"}).json()
        echoed = {k: v for k, v in draft.items() if k != "@odata.context"}
        echoed["subject"] = "echoed back"
        echoed["toRecipients"] = [
            {"@odata.type": "#microsoft.graph.recipient",
             "emailAddress": {"address": "a@example.com", "name": "A"}}
        ]  # fmt: skip
        echoed["subject@odata.type"] = "#String"
        r = c.patch(f"/me/messages/{draft['id']}", json=echoed)
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["subject"] == "echoed back"
        assert got["id"] == draft["id"]  # the echoed id did not change anything
        assert got["toRecipients"][0]["emailAddress"]["address"] == "a@example.com"
        created = c.post("/me/messages", json={**echoed, "id": "made-up", "isDraft": False})
        assert created.status_code == 201, created.text
        assert created.json()["id"] != "made-up"
        assert created.json()["isDraft"] is True


@pytest.mark.parametrize(
    ("path", "body", "parameter", "operation"),
    [
        ("/me/sendMail", {"message": {"subject": "x"}, "saveToSent": False}, "saveToSent",
         "sendMail"),
        ("/me/messages/{id}/send", {"saveToSentItem": False}, "saveToSentItem", "send"),
        ("/me/messages/{id}/createReply", {"comment": "x", "toRecipients": []}, "toRecipients",
         "createReply"),
        ("/me/messages/{id}/reply", {"comments": "x"}, "comments", "reply"),
        ("/me/messages/{id}/forward", {"comment": "x", "cc": []}, "cc", "forward"),
        ("/me/messages/{id}/move", {"destinationId": "drafts", "folder": "x"}, "folder", "move"),
        ("/me/messages/{id}/copy", {"destination": "drafts"}, "destination", "copy"),
    ],
)  # fmt: skip
def test_unknown_action_parameters(
    server: RunningServer, path: str, body: dict[str, Any], parameter: str, operation: str
) -> None:
    with server.client() as c:
        draft = c.post("/me/messages", json={"subject": "action"}).json()
        before = drafts_count(server)
        r = c.post(path.replace("{id}", draft["id"]), json=body)
    error = assert_error(r, 400, "RequestBodyRead")
    assert f"The parameter '{parameter}'" in str(error["message"]), error
    assert f"operation '{operation}'" in str(error["message"]), error
    assert drafts_count(server) == before


def test_unknown_property_inside_an_action_message(server: RunningServer) -> None:
    with server.client() as c:
        r = c.post(
            "/me/sendMail",
            json={"message": {"subject": "x", "toRecipients": [{"emailAddress": {
                "address": "a@example.com", "adress": "typo"}}]}},
        )  # fmt: skip
        error = assert_error(r, 400, "RequestBodyRead")
        assert error["target"] == "message.toRecipients.emailAddress.adress"
        _unknown(r, "adress", "microsoft.graph.emailAddress")
        draft = c.post("/me/messages", json={"subject": "reply to me"}).json()
        r = c.post(
            f"/me/messages/{draft['id']}/createReply",
            json={"message": {"subject": "x", "importance": "high", "priority": 1}},
        )
        _unknown(r, "priority", MESSAGE)


def test_action_parameters_keep_graph_case_insensitivity(server: RunningServer) -> None:
    with server.client() as c:
        draft = c.post("/me/messages", json={"subject": "case"}).json()
        r = c.post(f"/me/messages/{draft['id']}/copy", json={"DestinationId": "drafts"})
    assert r.status_code == 201, r.text


def test_unknown_folder_properties(server: RunningServer) -> None:
    with server.client() as c:
        r = c.post("/me/mailFolders", json={"displayName": "Strict", "colour": "blue"})
        _unknown(r, "colour", "microsoft.graph.mailFolder")
        assert c.get("/me/mailFolders?$filter=displayName eq 'Strict'").status_code in (200, 400)
        made = c.post(
            "/me/mailFolders",
            json={"@odata.type": "#microsoft.graph.mailFolder", "displayName": "Strict ok",
                  "isHidden": False, "totalItemCount": 5},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        assert made.json()["totalItemCount"] == 0
        r = c.patch(f"/me/mailFolders/{made.json()['id']}", json={"displayNam": "typo"})
        _unknown(r, "displayNam", "microsoft.graph.mailFolder")
        folders = [f["displayName"] for f in c.get("/me/mailFolders?$top=100").json()["value"]]
    assert "Strict" not in folders
    assert "Strict ok" in folders
