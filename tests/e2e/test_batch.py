"""JSON batching against a real server: POST /v1.0/$batch answers each member as the same
request on its own would be answered, honours dependsOn, refuses malformed batches whole, and
counts every member against throttling."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, drop_pg_database, make_pg_database, start_server
from tests.mail_api import assert_error, unique

EVERYTHING = "User.Read Mail.ReadWrite Mail.Send"
JSON = {"Content-Type": "application/json"}


def batch(server: RunningServer, requests: Any, token: str | None = None,
          **headers: str) -> httpx.Response:  # fmt: skip
    auth = {"Authorization": f"Bearer {token or server.token(scopes=EVERYTHING)}"}
    return httpx.post(f"{server.base}/v1.0/$batch", json={"requests": requests},
                      headers={**auth, **headers}, timeout=60)  # fmt: skip


def by_id(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    answers = r.json()["responses"]
    out = {a["id"]: a for a in answers}
    assert len(out) == len(answers)
    return out


def test_members_are_answered_as_direct_requests(server: RunningServer) -> None:
    subject = unique("batched")
    token = server.token(scopes=EVERYTHING)
    with server.client(token) as c:
        direct_me = c.get("/me", params={"$select": "id,displayName"}).json()
        direct_inbox = c.get("/me/mailFolders/inbox").json()
    got = by_id(batch(server, [
        {"id": "me", "method": "GET", "url": "/me?$select=id,displayName"},
        {"id": "inbox", "method": "GET", "url": "me/mailFolders/inbox"},
        {"id": "create", "method": "POST", "url": "/me/messages", "headers": JSON,
         "body": {"subject": subject}},
        {"id": "nope", "method": "GET", "url": "/me/nothingHere"},
        {"id": "prefixed", "method": "GET", "url": "/v1.0/me"},
        {"id": "method", "method": "DELETE", "url": "/me/mailFolders"},
    ], token))  # fmt: skip
    assert got["me"]["status"] == 200 and got["me"]["body"] == direct_me
    assert got["inbox"]["body"] == direct_inbox
    assert got["me"]["headers"]["Content-Type"].startswith("application/json")
    created = got["create"]
    assert created["status"] == 201 and created["body"]["subject"] == subject
    assert created["headers"]["Location"].endswith(f"/messages('{created['body']['id']}')")
    with server.client(token) as c:
        assert c.get(f"/me/messages/{created['body']['id']}").json()["subject"] == subject
    assert got["nope"]["status"] == 400
    assert got["nope"]["body"]["error"]["code"] == "BadRequest"
    # relative to /v1.0: a /v1.0 prefix is a segment of its own, as Graph answers it
    assert got["prefixed"]["status"] == 400
    assert got["prefixed"]["body"]["error"]["message"] == (
        "Resource not found for the segment 'v1.0'."
    )
    assert got["method"]["status"] == 405 and got["method"]["headers"]["Allow"] == "GET, POST"


def test_members_carry_the_batchs_client_request_id(server: RunningServer) -> None:
    got = by_id(batch(server, [{"id": "1", "method": "GET", "url": "/me/messages/bad="}],
                      **{"client-request-id": "batch-42"}))  # fmt: skip
    assert got["1"]["headers"]["Client-Request-Id"] == "batch-42"
    assert got["1"]["body"]["error"]["innerError"]["client-request-id"] == "batch-42"


def test_each_member_has_its_own_permissions_check(server: RunningServer) -> None:
    got = by_id(batch(server, [
        {"id": "read", "method": "GET", "url": "/me/mailFolders"},
        {"id": "write", "method": "POST", "url": "/me/messages", "headers": JSON,
         "body": {"subject": "x"}},
        {"id": "profile", "method": "GET", "url": "/me"},
        {"id": "other", "method": "GET", "url": "/users/AlexW@contoso.onmicrosoft.com/messages"},
    ], server.token(scopes="Mail.Read")))  # fmt: skip
    assert got["read"]["status"] == 200
    assert got["write"]["status"] == 403
    assert got["write"]["body"]["error"]["code"] == "ErrorAccessDenied"
    assert got["profile"]["body"]["error"]["code"] == "Authorization_RequestDenied"
    assert got["other"]["status"] == 403


def test_the_batch_itself_needs_a_token(server: RunningServer) -> None:
    r = httpx.post(f"{server.base}/v1.0/$batch",
                   json={"requests": [{"id": "1", "method": "GET", "url": "/me"}]})  # fmt: skip
    assert_error(r, 401, "InvalidAuthenticationToken")
    with server.client(server.token(scopes=EVERYTHING)) as c:
        r = c.get("/$batch")
        assert_error(r, 405, "MethodNotAllowed")
        assert r.headers["allow"] == "POST"


def test_depends_on_runs_in_order_and_fails_dependents(server: RunningServer) -> None:
    name = unique("folder")
    folder = {"displayName": name}
    got = by_id(batch(server, [
        {"id": "1", "method": "POST", "url": "/me/mailFolders", "headers": JSON, "body": folder},
        {"id": "2", "method": "POST", "url": "/me/mailFolders", "headers": JSON, "body": folder,
         "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/me/mailFolders", "dependsOn": ["2"]},
        {"id": "4", "method": "GET", "url": "/me/mailFolders/inbox", "dependsOn": ["1"]},
        # the Python SDK's spelling: not Graph's, so ignored as Graph ignores it
        {"id": "5", "method": "GET", "url": "/me/mailFolders/inbox", "depends_on": ["2"]},
    ]))  # fmt: skip
    # 1 ran before 2 (else 2 would have made the folder and 1 met the conflict)
    assert got["1"]["status"] == 201 and got["2"]["status"] == 409
    assert got["3"]["status"] == 424
    assert got["3"]["body"]["error"]["code"] == "FailedDependency"
    assert "'2'" in got["3"]["body"]["error"]["message"]
    assert got["4"]["status"] == 200 and got["5"]["status"] == 200


def test_bodies_json_or_base64(server: RunningServer) -> None:
    subject = unique("base64")
    encoded = base64.b64encode(json.dumps({"subject": subject}).encode()).decode()
    mime = base64.b64encode(b"Subject: hi\r\n\r\nhello").decode()
    got = by_id(batch(server, [
        {"id": "b64", "method": "POST", "url": "/me/messages", "headers": JSON, "body": encoded},
        {"id": "text", "method": "POST", "url": "/me/messages",
         "headers": {"Content-Type": "text/plain"}, "body": mime},
        {"id": "count", "method": "GET", "url": "/users/$count",
         "headers": {"ConsistencyLevel": "eventual"}},
    ], server.token(scopes=f"{EVERYTHING} User.Read.All")))  # fmt: skip
    assert got["b64"]["status"] == 201 and got["b64"]["body"]["subject"] == subject
    # text/plain is MIME, whose request body is base64: the member's body is base64 of that
    # (tests/e2e/test_mime_in.py), so MIME encoded once is not base64 MIME once decoded
    assert got["text"]["status"] == 400
    assert got["text"]["body"]["error"]["code"] == "ErrorMimeContentInvalidBase64String"
    # a body that is not JSON comes back base64, with its Content-Type
    assert got["count"]["headers"]["Content-Type"].startswith("text/plain")
    assert int(base64.b64decode(got["count"]["body"])) >= 20


def test_malformed_batches_are_refused_whole(server: RunningServer) -> None:
    ok = {"id": "1", "method": "GET", "url": "/me/mailFolders"}
    refused: list[tuple[Any, str]] = [
        ([{**ok, "id": str(i)} for i in range(21)], "exceeds the limit"),
        ([ok, {**ok, "id": "1"}], "more than one request"),
        ([{"id": "a", "method": "GET", "url": "/me"}, {"id": "A", "method": "GET", "url": "/me"}],
         "more than one request"),
        ([{"method": "GET", "url": "/me"}], "'id'"),
        ([{"id": "", "method": "GET", "url": "/me"}], "'id'"),
        ([{"id": 1, "method": "GET", "url": "/me"}], "'id'"),
        ([{"id": "1", "url": "/me"}], "'method'"),
        ([{"id": "1", "method": "TRACE", "url": "/me"}], "'method'"),
        ([{"id": "1", "method": "GET"}], "'url'"),
        ([{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/me"}],
         "Invalid batch payload format."),
        ([{"id": "1", "method": "GET", "url": "//evil.example/v1.0/me"}],
         "Invalid batch payload format."),
        ([{"id": "1", "method": "POST", "url": "/$batch", "headers": JSON,
           "body": {"requests": []}}], "nested"),
        ([{"id": "1", "method": "POST", "url": "%24Batch", "headers": JSON,
           "body": {"requests": []}}], "nested"),
        ([{**ok, "dependsOn": ["9"]}], "Invalid dependency for request Id '1'"),
        ([{**ok, "dependsOn": ["1"]}], "Invalid dependency"),
        ([{**ok, "id": "a", "dependsOn": ["b"]}, {**ok, "id": "b"}], "Invalid dependency"),
        ([{**ok, "id": "a", "dependsOn": ["b"]}, {**ok, "id": "b", "dependsOn": ["a"]}],
         "Invalid dependency"),
        ([{**ok, "dependsOn": "x"}], "dependsOn"),
        ([{"id": "1", "method": "POST", "url": "/me/messages", "body": {"subject": "x"}}],
         "Content-Type"),
        ([{"id": "1", "method": "POST", "url": "/me/messages", "headers": JSON,
           "body": "not base64!"}], "base64"),
        ([{**ok, "headers": {"Prefer": 5}}], "headers"),
        ([{**ok, "headers": ["x"]}], "headers"),
        ([], "no requests"),
        ("everything", "Invalid batch payload format."),
        ([7], "Invalid batch payload format."),
    ]  # fmt: skip
    for requests, words in refused:
        err = assert_error(batch(server, requests), 400, "BadRequest")
        assert words in str(err["message"]), (requests, err)
    token = server.token(scopes=EVERYTHING)
    url = f"{server.base}/v1.0/$batch"
    auth = {"Authorization": f"Bearer {token}"}
    assert_error(httpx.post(url, content=b"{not json", headers={**auth, **JSON}), 400,
                 "UnableToDeserializePostBody")  # fmt: skip
    assert_error(httpx.post(url, content=b"[]", headers={**auth, **JSON}), 400,
                 "UnableToDeserializePostBody")  # fmt: skip
    assert_error(httpx.post(url, content=b'{"requests": [\xff]}', headers={**auth, **JSON}),
                 400, "UnableToDeserializePostBody")  # fmt: skip
    huge = {"id": "1", "method": "POST", "url": "/me/messages", "headers": JSON,
            "body": {"subject": "x" * (5 * 1024 * 1024)}}  # fmt: skip
    assert_error(batch(server, [huge]), 413, "RequestEntityTooLarge")


def test_hostile_members_get_graphs_answers(server: RunningServer) -> None:
    got = by_id(batch(server, [
        {"id": "nul", "method": "GET", "url": "/me/messages/a%00b"},
        {"id": "crlf", "method": "GET", "url": "/me/mailFolders",
         "headers": {"client-request-id": "a\r\nSet-Cookie: x=1"}},
        {"id": "query", "method": "GET", "url": "/me/messages?$top=abc"},
        {"id": "utf8", "method": "GET", "url": "/me/mailFolders/%C3%A9t%C3%A9"},
    ]))  # fmt: skip
    assert got["nul"]["status"] == 400
    assert got["crlf"]["status"] == 400
    assert "\r" not in json.dumps(got["crlf"]["headers"])
    assert got["query"]["status"] == 400
    with server.client(server.token(scopes=EVERYTHING)) as c:
        direct = c.get("/me/mailFolders/%C3%A9t%C3%A9")
    assert got["utf8"]["status"] == direct.status_code == 400  # not an id of ours
    assert got["utf8"]["body"]["error"]["code"] == direct.json()["error"]["code"]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def throttled(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server of its own (its own database) that throttles after 5 requests per window."""
    url, name, admin = None, "", ""
    if request.param == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
    server = start_server(
        Path(tmp_path_factory.mktemp("batch-throttled")),
        url,
        GRAPHPOST_THROTTLING="on",
        GRAPHPOST_THROTTLE_REQUESTS="5",
        GRAPHPOST_THROTTLE_WINDOW_SECONDS="600",
    )
    yield server
    server.stop()
    if url:
        drop_pg_database(admin, name)


def test_every_member_counts_against_throttling(throttled: RunningServer) -> None:
    reads = [{"id": str(i), "method": "GET", "url": "/me/mailFolders/inbox"} for i in range(8)]
    got = by_id(batch(throttled, reads))
    statuses = sorted(a["status"] for a in got.values())
    assert statuses == [200] * 5 + [429] * 3
    for answer in got.values():
        if answer["status"] == 429:
            assert answer["body"]["error"]["code"] == "TooManyRequests"
            assert int(answer["headers"]["Retry-After"]) >= 1
    with throttled.client(throttled.token(scopes=EVERYTHING)) as c:
        assert_error(c.get("/me/mailFolders/inbox"), 429, "TooManyRequests")


def test_directory_members_count_too(throttled: RunningServer) -> None:
    token = throttled.token(scopes="User.Read.All")
    reads = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(7)]
    got = by_id(batch(throttled, reads, token))
    assert sorted(a["status"] for a in got.values()) == [200] * 5 + [429] * 2
    with throttled.client(token) as c:
        assert_error(c.get("/me"), 429, "TooManyRequests")  # the tenant's directory calls
