"""Bad input gets Graph's envelope, the right status and code, and leaves nothing behind."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from tests.conftest import RunningServer
from tests.mail_api import assert_error, drafts_count


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"internetMessageHeaders": [{"name": "In-Reply-To", "value": "<a@b>"}]},
            "InvalidInternetMessageHeader",
        ),
        ({"internetMessageHeaders": [{"name": "x-bad", "value": "a\r\nBcc: x"}]},
         "InvalidInternetMessageHeader"),
        ({"subject": 5}, "RequestBodyRead"),
        ({"importance": "urgent"}, "RequestBodyRead"),
        ({"body": {"contentType": "markdown", "content": "x"}}, "RequestBodyRead"),
        ({"toRecipients": {"emailAddress": {"address": "a@b.c"}}}, "RequestBodyRead"),
        ({"toRecipients": [{"name": "no emailAddress"}]}, "RequestBodyRead"),
        ({"isRead": "yes"}, "RequestBodyRead"),
        ({"extensions": [{"companyName": "no name"}]}, "RequestBodyRead"),
        ({"attachments": [{"name": "a.txt", "contentBytes": "aGk="}]}, "UnprocessableType"),
        (
            {"attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a",
                              "contentBytes": "not base64!"}]},
            "RequestBodyRead",
        ),
        ({"flag": {"flagStatus": "maybe"}}, "RequestBodyRead"),
    ],
)  # fmt: skip
def test_bad_message_bodies(server: RunningServer, body: dict[str, object], code: str) -> None:
    before = drafts_count(server)
    with server.client() as c:
        r = c.post("/me/messages", json={"subject": "must not be stored", **body})
    status = 422 if code == "UnprocessableType" else 400
    assert_error(r, status, code)
    assert drafts_count(server) == before
    with server.client() as c:
        listed = c.get("/me/messages?$filter=subject eq 'must not be stored'").json()
    assert listed["value"] == []


def test_unreadable_bodies(server: RunningServer) -> None:
    before = drafts_count(server)
    headers = {"Content-Type": "application/json"}
    with server.client() as c:
        assert_error(
            c.post("/me/messages", content=b'{"subject": ', headers=headers),
            400,
            "UnableToDeserializePostBody",
        )
        assert_error(
            c.post("/me/messages", content=b"[1, 2]", headers=headers),
            400,
            "UnableToDeserializePostBody",
        )
        assert_error(
            c.post("/me/messages", content=b"<xml/>", headers={"Content-Type": "application/xml"}),
            415,
            "UnsupportedMediaType",
        )
        big = b'{"subject": "' + b"x" * (4 * 1024 * 1024) + b'"}'
        assert_error(
            c.post("/me/messages", content=big, headers=headers), 413, "RequestEntityTooLarge"
        )
    assert drafts_count(server) == before


def test_ids_and_routes(server: RunningServer) -> None:
    with server.client() as c:
        assert_error(c.get("/me/messages/AAMkADhMGAAA="), 404, "ErrorItemNotFound")
        assert_error(c.get("/me/messages/not-an-id!"), 400, "ErrorInvalidIdMalformed")
        assert_error(c.get("/me/messages/abc"), 400, "ErrorInvalidIdMalformed")
        assert_error(c.get("/me/mailFolders/AQMkADhMGAAAAAA="), 404, "ErrorItemNotFound")
        assert_error(c.get("/me/mailFolders/nope!"), 400, "ErrorInvalidIdMalformed")
        assert_error(c.get("/me/contacts"), 400, "BadRequest")
        assert_error(c.get("/me/messages/AAMkADhMGAAA=/bogus"), 400, "BadRequest")
        assert_error(c.put("/me/messages", json={}), 405, "MethodNotAllowed")
        assert_error(c.get("/users/nobody@contoso.onmicrosoft.com/messages"), 404,
                     "ErrorInvalidUser")  # fmt: skip
        assert_error(c.patch("/me/messages/AAMkADhMGAAA=", json={"subject": "x"}), 404,
                     "ErrorItemNotFound")  # fmt: skip
        assert_error(c.delete("/me/messages/AAMkADhMGAAA="), 404, "ErrorItemNotFound")
    r = httpx.get(f"{server.base}/nothing/here")
    assert_error(r, 400, "BadRequest")


def test_wrong_method_names_the_allowed_ones(server: RunningServer) -> None:
    with server.client() as c:
        draft = c.post("/me/messages", json={"subject": "methods"}).json()["id"]
        for method, path, allowed in [
            ("PUT", "/me/messages", "GET, POST"),
            ("GET", "/me/sendMail", "POST"),
            ("POST", f"/me/messages/{draft}", "DELETE, GET, PATCH"),
            ("PUT", f"/me/messages('{draft}')", "DELETE, GET, PATCH"),
            ("GET", f"/me/MailFolders('inbox')/messages/{draft}/send", "POST"),
            ("DELETE", f"/me/messages/{draft}/attachments", "GET, POST"),
            ("POST", f"/me/messages/{draft}/DeliveryStatus/", "GET"),
            ("PATCH", "/me/mailFolders/inbox/childFolders", "GET, POST"),
        ]:
            r = c.request(method, path, json={})
            error = assert_error(r, 405, "MethodNotAllowed")
            assert r.headers["allow"] == allowed, (method, path)
            assert f"allowed: {allowed}." in str(error["message"])
        # the draft was neither sent nor changed by any of them
        got = c.get(f"/me/messages/{draft}").json()
        assert got["isDraft"] is True and got["subject"] == "methods"
        # a right method has no Allow header
        assert "allow" not in c.get("/me/messages").headers


def test_request_ids(server: RunningServer) -> None:
    mine = str(uuid.uuid4())
    with server.client() as c:
        r = c.get("/me/mailFolders", headers={"client-request-id": mine})
        assert r.headers["client-request-id"] == mine
        assert uuid.UUID(r.headers["request-id"])
        r = c.get("/me/mailFolders")
        assert r.headers["client-request-id"] == r.headers["request-id"]
        err = c.get("/me/messages/AAMkADhMGAAA=", headers={"client-request-id": mine})
        assert err.json()["error"]["innerError"]["client-request-id"] == mine


def test_query_errors(server: RunningServer) -> None:
    with server.client() as c:
        assert_error(c.get("/me/messages?$top=0"), 400, "BadRequest")
        assert_error(c.get("/me/messages?$top=1001"), 400, "BadRequest")
        assert_error(c.get("/me/messages?$top=ten"), 400, "BadRequest")
        assert_error(c.get("/me/messages?$filter=subject eq"), 400, "BadRequest")
        assert_error(c.get("/me/messages?$filter=(subject eq 'a'"), 400, "BadRequest")
        assert_error(c.get("/me/messages?$filter=nosuch eq 'a'"), 400, "RequestBroker--ParseUri")
        assert_error(c.get("/me/messages?$select=subject,nosuch"), 400,
                     "RequestBroker--ParseUri")  # fmt: skip
        assert_error(c.get("/me/messages?$filter=isRead eq 'yes'"), 400, "BadRequest")
        assert_error(
            c.get("/me/messages?$filter=subject eq 'a'&$orderby=receivedDateTime desc"),
            400,
            "InefficientFilter",
        )


def test_base64_in_ids_is_not_confused_with_paths(server: RunningServer) -> None:
    encoded = base64.b64encode(b"\xfb\xff" * 8).decode()  # contains + and /
    with server.client() as c:
        r = c.get("/me/messages/" + encoded.replace("/", "%2F").replace("+", "%2B"))
    assert_error(r, 404, "ErrorItemNotFound")
