"""/subscriptions on a real server, both engines, with a real webhook receiver on loopback:
the validation handshake, the checks and their errors, ownership, renewal and deletion."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import ALEX, assert_error
from tests.ports import free_port
from tests.webhook import Receiver, start_receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.stop()


def in_minutes(n: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + n * 60))


def body(receiver: Receiver, **extra: Any) -> dict[str, Any]:
    return {
        "changeType": "created",
        "notificationUrl": receiver.url,
        "resource": "me/mailFolders('Inbox')/messages",
        "expirationDateTime": in_minutes(120),
        "clientState": "secretClientValue",
        **extra,
    }


def test_create_validates_the_url_and_answers_the_subscription(
    server: RunningServer, receiver: Receiver
) -> None:
    with server.client() as c:
        r = c.post("/subscriptions", json=body(receiver, latestSupportedTlsVersion="v1_2"))
        assert r.status_code == 201, r.text
        sub = r.json()
        assert sub["@odata.context"].endswith("/$metadata#subscriptions/$entity")
        assert sub["resource"] == "me/mailFolders('Inbox')/messages"
        assert sub["changeType"] == "created"
        assert sub["clientState"] == "secretClientValue"
        assert sub["notificationUrl"] == receiver.url
        assert sub["latestSupportedTlsVersion"] == "v1_2"
        assert sub["notificationContentType"] == "application/json"
        assert sub["expirationDateTime"].endswith("Z")
        # the token arrived URL-decoded and was echoed: Graph's own wording
        assert receiver.validations[-1].startswith(
            "Validation: Testing client application reachability for subscription Request-Id: "
        )
        assert c.get(f"/subscriptions/{sub['id']}").json()["id"] == sub["id"]
        listed = c.get("/subscriptions").json()["value"]
        mine = [s for s in listed if s["id"] == sub["id"]]
        assert len(mine) == 1 and mine[0]["clientState"] is None  # never listed
        r = c.patch(f"/subscriptions/{sub['id']}", json={"expirationDateTime": in_minutes(200)})
        assert r.status_code == 200, r.text
        assert r.json()["expirationDateTime"] > sub["expirationDateTime"]
        # a new notificationUrl is validated first; one that fails leaves the old one
        validated = len(receiver.validations)
        moved = receiver.url + "?moved=1"
        r = c.patch(f"/subscriptions/{sub['id']}", json={"notificationUrl": moved})
        assert r.status_code == 200 and r.json()["notificationUrl"] == moved, r.text
        assert len(receiver.validations) == validated + 1
        receiver.behaviour.token = "wrong"
        r = c.patch(f"/subscriptions/{sub['id']}", json={"notificationUrl": receiver.url})
        assert_error(r, 400, "ValidationError")
        receiver.behaviour.token = None
        assert c.get(f"/subscriptions/{sub['id']}").json()["notificationUrl"] == moved
        assert c.delete(f"/subscriptions/{sub['id']}").status_code == 204
        assert_error(c.get(f"/subscriptions/{sub['id']}"), 404, "ResourceNotFound")
        assert_error(c.delete(f"/subscriptions/{sub['id']}"), 404, "ResourceNotFound")


def test_failed_validation_is_graphs_400(server: RunningServer, receiver: Receiver) -> None:
    with server.client() as c:
        receiver.behaviour.token = "something else"
        error = assert_error(c.post("/subscriptions", json=body(receiver)), 400, "ValidationError")
        assert "Response must exactly match validationToken" in str(error["message"])
        receiver.behaviour.token, receiver.behaviour.validation_status = None, 500
        error = assert_error(c.post("/subscriptions", json=body(receiver)), 400, "ValidationError")
        assert "must respond with 200 OK" in str(error["message"])
        nobody = f"http://127.0.0.1:{free_port()}/hook"
        assert_error(
            c.post("/subscriptions", json=body(receiver, notificationUrl=nobody)),
            400,
            "ValidationError",
        )
        # the lifecycle URL is validated too
        receiver.behaviour.validation_status = 200
        r = c.post("/subscriptions", json=body(receiver, lifecycleNotificationUrl=nobody))
        assert_error(r, 400, "ValidationError")
        assert all(s["notificationUrl"] != nobody for s in c.get("/subscriptions").json()["value"])


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"notificationUrl": "http://example.com/hook"}, "notificationUrl"),  # https only
        ({"notificationUrl": "ftp://127.0.0.1/hook"}, "notificationUrl"),
        ({"notificationUrl": "https://user:pw@example.com/hook"}, "notificationUrl"),
        ({"notificationUrl": "https://example.com/h\r\nX: y"}, "notificationUrl"),
        ({"lifecycleNotificationUrl": "http://example.com/life"}, "lifecycleNotificationUrl"),
        ({"changeType": "created,read"}, "changeType"),
        ({"changeType": ""}, "changeType"),
        ({"resource": "me/events"}, "resource"),
        ({"resource": "me/messages?$filter=isRead eq false"}, "resource"),
        ({"resource": "users/x/messages/y/attachments"}, "resource"),
        ({"expirationDateTime": "2016-11-20T18:23:45.9356913Z"}, "expirationDateTime"),
        ({"expirationDateTime": in_minutes(4300)}, "expirationDateTime"),  # no lifecycle URL
        ({"expirationDateTime": "tomorrow"}, "expirationDateTime"),
        ({"clientState": "x" * 129}, "clientState"),
        ({"includeResourceData": True}, "includeResourceData"),
    ],
)
def test_bad_input_is_400(
    server: RunningServer, receiver: Receiver, change: dict[str, Any], target: str
) -> None:
    with server.client() as c:
        error = assert_error(
            c.post("/subscriptions", json=body(receiver, **change)), 400, "ErrorInvalidRequest"
        )
        assert error.get("target") == target, error


def test_limits_of_expiry(server: RunningServer, receiver: Receiver) -> None:
    with server.client() as c:
        life = receiver.url + "?life=1"
        long = body(receiver, expirationDateTime=in_minutes(10_000), lifecycleNotificationUrl=life)
        r = c.post("/subscriptions", json=long)
        assert r.status_code == 201, r.text
        r = c.post("/subscriptions", json=body(receiver, expirationDateTime=in_minutes(10_100)))
        assert_error(r, 400, "ErrorInvalidRequest")
        # under 45 minutes: 45 minutes, as Graph does
        r = c.post("/subscriptions", json=body(receiver, expirationDateTime=in_minutes(5)))
        assert r.status_code == 201, r.text
        assert r.json()["expirationDateTime"] >= in_minutes(44)


def test_unknown_property_and_methods(server: RunningServer, receiver: Receiver) -> None:
    with server.client() as c:
        r = c.post("/subscriptions", json=body(receiver, colour="blue"))
        assert_error(r, 400, "RequestBodyRead")
        assert_error(c.put("/subscriptions", json={}), 405, "MethodNotAllowed")
        assert_error(c.post("/subscriptions/x", json={}), 405, "MethodNotAllowed")
        assert_error(c.get("/subscriptions/x/y"), 400, "BadRequest")
        assert_error(c.get("/subscriptions/x/reauthorize"), 405, "MethodNotAllowed")
        assert_error(c.post("/subscriptions/x/reauthorize"), 404, "ResourceNotFound")
        r = c.post("/subscriptions", json=body(receiver))
        sub = r.json()["id"]
        r = c.patch(f"/subscriptions/{sub}", json={"resource": "me/messages"})
        assert_error(r, 400, "ErrorInvalidRequest")
        c.delete(f"/subscriptions/{sub}")


def test_permissions_and_ownership(server: RunningServer, receiver: Receiver) -> None:
    no_mail = server.token(scopes="User.Read")
    with server.client(no_mail) as c:
        assert_error(c.post("/subscriptions", json=body(receiver)), 403, "ErrorAccessDenied")
        assert_error(c.get("/subscriptions"), 403, "ErrorAccessDenied")
    basic = server.token(scopes="Mail.ReadBasic")
    with server.client(basic) as c:
        r = c.post("/subscriptions", json=body(receiver))
        assert r.status_code == 201, r.text
        adele_sub = r.json()["id"]
        # a delegated token subscribes to its own mailbox only
        r = c.post("/subscriptions", json=body(receiver, resource=f"users/{ALEX}/messages"))
        assert r.status_code in (403, 404), r.text
        assert c.post(f"/subscriptions/{adele_sub}/reauthorize").status_code == 204
    with server.client(server.token(ALEX, "Mail.Read")) as c:
        assert_error(c.get(f"/subscriptions/{adele_sub}"), 404, "ResourceNotFound")
        assert_error(c.delete(f"/subscriptions/{adele_sub}"), 404, "ResourceNotFound")
        r = c.post(f"/subscriptions/{adele_sub}/reauthorize")
        assert_error(r, 404, "ResourceNotFound")
        assert all(s["id"] != adele_sub for s in c.get("/subscriptions").json()["value"])
    app = server.app_token("subscriber", roles="Mail.Read")
    with server.client(app) as c:
        assert_error(c.post("/subscriptions", json=body(receiver)), 400, "BadRequest")  # /me
        r = c.post("/subscriptions", json=body(receiver, resource=f"users/{ALEX}/messages"))
        assert r.status_code == 201, r.text
        app_sub = r.json()
        assert app_sub["creatorId"] == app_sub["applicationId"]
        assert c.post(f"/subscriptions/{app_sub['id']}/reauthorize").status_code == 204
        listed = [s["id"] for s in c.get("/subscriptions").json()["value"]]
        assert app_sub["id"] in listed and adele_sub not in listed
    with server.client(basic) as c:
        assert c.delete(f"/subscriptions/{adele_sub}").status_code == 204


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def guarded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with the default webhook rules: no internal receiver allowed."""
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    running = start_server(
        tmp_path_factory.mktemp(f"guarded-{request.param}"), url, GRAPHPOST_WEBHOOK_ALLOW_HOSTS=""
    )
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("name", "url", "rule"),
    [
        ("notificationUrl", "RECEIVER", "a loopback address"),
        ("notificationUrl", "http://localhost:PORT/hook", "a loopback address"),
        ("notificationUrl", "https://169.254.169.254/latest/meta-data/", "link-local"),
        ("notificationUrl", "https://10.0.0.1/hook", "private"),
        ("notificationUrl", "https://[fd00::1]/hook", "private"),
        ("notificationUrl", "https://[::ffff:169.254.169.254]/hook", "link-local"),
        ("notificationUrl", "https://2130706433/hook", "a loopback address"),
        ("notificationUrl", "https://0251.0376.0251.0376/hook", "link-local"),  # octal
        ("lifecycleNotificationUrl", "RECEIVER", "a loopback address"),
    ],
)
def test_internal_receivers_are_refused(
    guarded: RunningServer, receiver: Receiver, name: str, url: str, rule: str
) -> None:
    """Outside emulator mode, and off the allow-list, a notification URL on an internal
    address is 400 ValidationError naming the rule, and not one request is made to it."""
    port = receiver.url.split(":")[2].split("/")[0]
    url = receiver.url if url == "RECEIVER" else url.replace("PORT", port)
    with guarded.client() as c:
        extra = {name: url}
        if name == "lifecycleNotificationUrl":  # the other URL is fine (and never asked)
            extra["notificationUrl"] = "https://93.184.215.14/hook"
        r = c.post("/subscriptions", json=body(receiver, **extra))
        error = assert_error(r, 400, "ValidationError")
        message = str(error["message"])
        assert rule in message and "GRAPHPOST_WEBHOOK_ALLOW_HOSTS" in message
        assert error.get("target") == name
        assert receiver.validations == [] and receiver.posts == []
        assert all(s["notificationUrl"] != url for s in c.get("/subscriptions").json()["value"])
