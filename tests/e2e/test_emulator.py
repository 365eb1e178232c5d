"""The emulator's test controls (/_graphpost/…) on a real `graphpost serve` in emulator mode, on
both engines, relaying to a real SMTP sink; and their absence (404) with emulator mode off."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphpost.domain import times
from graphpost.testing import ControlError, GraphpostClient, InProcessServer
from tests.conftest import ROOT, RunningServer, drop_pg_database, make_pg_database
from tests.delivery_checks import engine_server
from tests.mail_api import ADELE, ALEX, MEGAN, assert_error, unique
from tests.sink import Sink

EXTERNAL = "someone@example.net"
# a retry an hour away: only the controllable clock brings it forward within a test
SLOW_RETRY = {
    "GRAPHPOST_EMULATOR": "true",
    "GRAPHPOST_RETRY_BASE_SECONDS": "3600",
    "GRAPHPOST_RETRY_MAX_SECONDS": "3600",
    "GRAPHPOST_RETRY_WINDOW_SECONDS": "86400",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sink: Sink
) -> Iterator[RunningServer]:
    data_dir = tmp_path_factory.mktemp(f"emulator-{request.param}")
    with engine_server(
        request.param, data_dir, request, relay=sink.url, args=(), **SLOW_RETRY
    ) as s:
        yield s


@pytest.fixture
def gp(emulator: RunningServer) -> Iterator[GraphpostClient]:
    client = GraphpostClient(emulator.base)
    client.reset()
    yield client
    client.clear_faults()


def graph(gp: GraphpostClient, user: str = ADELE) -> httpx.Client:
    """A Graph client with a token from the controls (signed by the server's own clock)."""
    return httpx.Client(
        base_url=gp.graph_url, headers={"Authorization": f"Bearer {gp.token(user)}"}, timeout=30
    )


def send(c: httpx.Client, subject: str, *to: str) -> httpx.Response:
    message = {"subject": subject, "toRecipients": [{"emailAddress": {"address": a}} for a in to]}
    return c.post("/me/sendMail", json={"message": message})


def controls(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=f"{server.base}/_graphpost", timeout=30)


# ------------------------------------------------------------------------------ off: 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_graphpost"),
        ("GET", "/_graphpost/"),
        ("POST", "/_graphpost/reset"),
        ("GET", "/_graphpost/messages?wait=5"),
        ("POST", "/_graphpost/clock"),
        ("POST", "/_graphpost/token"),
        ("DELETE", "/_graphpost/faults"),
        ("GET", "/_GRAPHPOST/faults"),
        ("PUT", "/_graphpost/anything/at/all"),
    ],
)
def test_without_emulator_mode_every_control_is_404(
    server: RunningServer, method: str, path: str
) -> None:
    body = {"advanceSeconds": 86400, "user": ADELE}
    r = httpx.request(method, f"{server.base}{path}", json=body, timeout=30)
    assert_error(r, 404, "ErrorItemNotFound")
    assert "emulator mode" in r.json()["error"]["message"]
    # nothing ran: the clock did not move, so a token of now still works
    with server.client() as c:
        assert c.get("/me/mailFolders/inbox").status_code == 200


SPELLINGS = [
    "/_graphpost/reset", "//_graphpost//reset/", "/%5Fgraphpost/reset", "/_graphpost%2Freset",
    "/v1.0/../_graphpost/reset", "/_GraphPost/Reset",
]  # fmt: skip
MEMBER_URLS = [
    "/_graphpost/clock", "../_graphpost/clock", "/../../_graphpost/clock",
    "%2F..%2F_graphpost%2Fclock", "_graphpost/clock",
]  # fmt: skip


def batch_member(member_id: str, url: str) -> dict[str, Any]:
    return {
        "id": member_id, "method": "POST", "url": url, "body": {"advanceSeconds": 86400},
        "headers": {"Content-Type": "application/json"},
    }  # fmt: skip


def test_without_emulator_mode_no_spelling_reaches_a_control(server: RunningServer) -> None:
    """Emulator mode off: neither another spelling of the path nor a JSON batch member
    reaches a control (the batch's members are Graph requests, answered by Graph's routing)."""
    for path in SPELLINGS:
        r = httpx.post(f"{server.base}{path}", json={}, timeout=30)
        assert 400 <= r.status_code < 500 and r.status_code != 403, (path, r.text)
    batch = {"requests": [batch_member(str(n), url) for n, url in enumerate(MEMBER_URLS)]}
    with server.client() as c:
        r = c.post("/$batch", json=batch)
        assert r.status_code == 200, r.text
        for answer in r.json()["responses"]:
            assert 400 <= answer["status"] < 500, answer
            assert "advanceSeconds" not in str(answer["body"])
        # nothing moved the clock: the token of now is still good
        assert c.get("/me/mailFolders/inbox").status_code == 200


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_controls_answer_only_their_networks(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Emulator mode on, but this client (loopback) is not in the networks given: 403, and
    nothing ran; the Graph API is unaffected."""
    with engine_server(
        engine, tmp_path / "srv", request, relay=None,
        GRAPHPOST_EMULATOR="true", GRAPHPOST_EMULATOR_CONTROLS_FROM="10.0.0.0/8",
    ) as s:  # fmt: skip
        with controls(s) as c:
            for method, path in (("POST", "/clock"), ("POST", "/reset"), ("GET", "/messages")):
                r = c.request(method, path, json={"advanceSeconds": 86400})
                assert_error(r, 403, "ErrorAccessDenied")
                assert "GRAPHPOST_EMULATOR_CONTROLS_FROM" in r.json()["error"]["message"]
        with s.client() as c:  # a token of the real time still works: the clock did not move
            assert c.get("/me/mailFolders/inbox").status_code == 200


CLAIMS_OF_LOOPBACK: list[dict[str, str]] = [
    {},
    {"X-Forwarded-For": "127.0.0.1"},
    {"Forwarded": "for=127.0.0.1"},
    {"X-Forwarded-For": "127.0.0.1, 127.0.0.1", "X-Real-IP": "127.0.0.1"},
]


def outward_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent), if not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.123", 9))
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_forwarded_headers_do_not_open_the_controls(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Listening on every interface with the default networks (loopback), a client on another
    address is refused whatever X-Forwarded-For or Forwarded claim (they are believed only
    from a proxy on loopback); the same client's Graph requests are served."""
    address = outward_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address to reach the server from")
    with engine_server(
        engine, tmp_path / "srv", request, relay=None,
        GRAPHPOST_EMULATOR="true", GRAPHPOST_HOST="0.0.0.0",
    ) as s:  # fmt: skip
        outside = s.base.replace("127.0.0.1", address)
        for claim in CLAIMS_OF_LOOPBACK:
            for method, path in (("POST", "/_graphpost/clock"), ("GET", "/_graphpost//")):
                r = httpx.request(method, f"{outside}{path}", headers=claim,
                                  json={"advanceSeconds": 86400}, timeout=30)  # fmt: skip
                assert_error(r, 403, "ErrorAccessDenied")
        r = httpx.get(f"{outside}/v1.0/me/mailFolders/inbox", timeout=30,
                      headers={"Authorization": f"Bearer {s.token()}"})  # fmt: skip
        assert r.status_code == 200, r.text  # the clock did not move: the token is good
        assert httpx.get(f"{s.base}/_graphpost/clock", timeout=30).json()["offsetSeconds"] == 0


def test_controls_are_not_open_to_a_rebound_host_name(emulator: RunningServer) -> None:
    """DNS rebinding: a hostile page whose name resolves to 127.0.0.1 once it has loaded
    reaches the server from loopback with its own name as Host. It must not mint tokens,
    read what was delivered or reset mailboxes; local names still reach the controls."""
    port = emulator.base.rsplit(":", 1)[1]
    for host in ("evil.example", "127.0.0.1.nip.io", "localhost.evil.example"):
        headers = {"host": f"{host}:{port}"}
        for method, path, body in (
            ("POST", "/_graphpost/token", {"user": "AdeleV@contoso.onmicrosoft.com"}),
            ("GET", "/_graphpost/messages", None),
            ("POST", "/_graphpost/reset", {}),
            ("POST", "/_graphpost/clock", {"advanceSeconds": 86400}),
        ):
            r = httpx.request(method, f"{emulator.base}{path}", headers=headers, json=body,
                              timeout=30)  # fmt: skip
            assert_error(r, 403, "ErrorAccessDenied")
    for host in ("127.0.0.1", "localhost", "app.localhost", "[::1]", "graphpost"):
        r = httpx.get(f"{emulator.base}/_graphpost/clock", headers={"host": f"{host}:{port}"},
                      timeout=30)  # fmt: skip
        assert r.status_code == 200 and r.json()["offsetSeconds"] == 0, (host, r.text)


# ------------------------------------------------------------------------------ delivered


def test_local_and_relay_deliveries_are_listed_and_awaited(gp: GraphpostClient, sink: Sink) -> None:
    subject = unique("Hello World")
    with graph(gp) as c:
        # the wait starts before the send: the worker's outcome wakes it, no sleep
        found: list[list[dict[str, Any]]] = []
        waiter = threading.Thread(
            target=lambda: found.append(gp.messages(subject=subject.lower(), wait=30))
        )
        waiter.start()
        assert send(c, subject, ALEX, EXTERNAL).status_code == 202
        waiter.join(60)
    assert found and found[0], "the wait ended without a delivery"
    both = gp.wait_for_message(subject=subject, to="example.net", timeout=30)
    assert both["route"] == "relay" and both["state"] == "delivered"
    assert both["lastCode"] == 250 and both["attempts"] == 1
    assert sink.messages_for(EXTERNAL)
    local = gp.wait_for_message(subject=subject, to="alexw@", timeout=30)
    assert local["route"] == "local" and local["state"] == "delivered"
    assert local["from"].lower() == ADELE.lower() and local["subject"] == subject
    # the copy is really in Alex's inbox, by the internet message id the listing gives
    with graph(gp, ALEX) as c:
        imid = local["internetMessageId"]
        r = c.get(
            "/me/mailFolders/inbox/messages", params={"$filter": f"internetMessageId eq '{imid}'"}
        )
        assert [m["subject"] for m in r.json()["value"]] == [subject]
    # filters: case-insensitive substrings, all of them must match
    assert gp.messages(subject=subject.upper(), sender="ADELEV")
    assert gp.messages(subject=subject, sender="meganb") == []
    assert gp.messages(subject=subject, state="failed") == []
    assert len(gp.messages(subject=subject, state="delivered,deferred")) == 2


def test_many_waits_at_once_each_get_theirs(gp: GraphpostClient) -> None:
    subjects = [unique("many") for _ in range(6)]
    found: dict[str, list[dict[str, Any]]] = {}

    def wait_for(subject: str) -> None:
        found[subject] = gp.messages(subject=subject, wait=30)

    waiters = [threading.Thread(target=wait_for, args=(s,)) for s in subjects]
    for w in waiters:
        w.start()
    with graph(gp) as c:
        for subject in subjects:
            assert send(c, subject, ALEX).status_code == 202
    for w in waiters:
        w.join(60)
    assert {s: [d["subject"] for d in found.get(s, [])] for s in subjects} == {
        s: [s] for s in subjects
    }


def test_a_reset_racing_deliveries_leaves_counts_true(gp: GraphpostClient) -> None:
    """Sends in flight while the mailboxes are emptied: every folder's count still matches
    its messages, and no answer is a 500."""
    subject = unique("race")
    with graph(gp) as c:
        sent = [send(c, subject, ALEX, MEGAN) for _ in range(10)]
        done = gp.reset()
        sent += [send(c, subject, ALEX, MEGAN) for _ in range(5)]
    assert {r.status_code for r in sent} == {202}
    assert done["mailboxes"] >= 2
    marker = unique("after the race")
    with graph(gp) as c:
        assert send(c, marker, ALEX, MEGAN).status_code == 202
    gp.wait_for_message(subject=marker, to="alexw", timeout=30)
    gp.wait_for_message(subject=marker, to="meganb", timeout=30)
    for user in (ALEX, MEGAN, ADELE):
        with graph(gp, user) as c:
            for folder in ("inbox", "sentitems"):
                counted = c.get(f"/me/mailFolders/{folder}").json()["totalItemCount"]
                listed = c.get(f"/me/mailFolders/{folder}/messages", params={"$top": 1000})
                assert counted == len(listed.json()["value"]), (user, folder)


def test_resets_racing_sends_and_drafts_leave_counts_true(
    gp: GraphpostClient, request: pytest.FixtureRequest
) -> None:
    """Drafts created and mail sent from several threads while the mailboxes are emptied
    again and again: afterwards every folder's count matches its messages."""
    if request.node.callspec.params.get("emulator") == "postgresql":
        # KNOWN BUG (not fixed): a write committed after the reset's DELETE of messages and
        # before its UPDATE of the counts to zero survives uncounted (totalItemCount 5 for 8
        # messages); locking the folders first makes the reset deadlock with writers that
        # hold other rows (503 "deadlock detected"), and so can today's reset, rarely
        request.applymarker(
            pytest.mark.xfail(
                reason="reset vs concurrent writes on PostgreSQL: counts and deadlocks",
                strict=False,
            )
        )
    stop = threading.Event()
    answers: list[int] = []

    def writer(n: int) -> None:
        with graph(gp) as c:
            while not stop.is_set():
                answers.append(c.post("/me/messages", json={"subject": f"d{n}"}).status_code)
                answers.append(send(c, unique("busy"), ALEX).status_code)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    try:
        for _ in range(15):
            gp.reset()
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    assert set(answers) <= {201, 202}, set(answers)
    marker = unique("after the resets")
    with graph(gp) as c:
        assert send(c, marker, ALEX).status_code == 202
    gp.wait_for_message(subject=marker, to="alexw", timeout=30)
    for user in (ALEX, ADELE):
        with graph(gp, user) as c:
            for folder in ("inbox", "sentitems", "drafts"):
                counted = c.get(f"/me/mailFolders/{folder}").json()
                listed = c.get(f"/me/mailFolders/{folder}/messages", params={"$top": 1000})
                got = listed.json()["value"]
                assert counted["totalItemCount"] == len(got), (user, folder)
                unread = sum(1 for m in got if not m["isRead"])
                assert counted["unreadItemCount"] == unread, (user, folder)


@pytest.mark.postgres
def test_a_wait_sees_a_worker_of_another_process(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """PostgreSQL, the API process delivering nothing (`serve --no-worker`) and a `graphpost
    worker` beside it: the wait, which no outcome of this process wakes, looks again each
    second and returns the delivery."""
    with engine_server(
        "postgresql", tmp_path / "srv", request, relay=None, args=("--no-worker",),
        GRAPHPOST_EMULATOR="true",
    ) as s:  # fmt: skip
        gp = GraphpostClient(s.base)
        subject = unique("elsewhere")
        with graph(gp) as c:
            assert send(c, subject, ALEX).status_code == 202
        assert gp.messages(subject=subject, wait=0) == []  # nobody delivers yet
        log = open(s.data_dir / "worker.log", "ab")  # noqa: SIM115 - closed below
        worker = subprocess.Popen(
            [sys.executable, "-m", "graphpost.cli.main", "worker", "--data-dir", str(s.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=s.env,
        )  # fmt: skip
        try:
            found = gp.messages(subject=subject, wait=30)
            assert [d["state"] for d in found] == ["delivered"]
        finally:
            worker.terminate()
            worker.wait(30)
            log.close()


def test_a_wait_with_no_match_ends_empty(gp: GraphpostClient) -> None:
    assert gp.messages(subject=unique("never sent"), wait=0.3) == []


def test_wait_for_message_takes_any_timeout(gp: GraphpostClient) -> None:
    """A control waits 60 s at most; the client's wait_for_message waits as long as it is
    told (in waits of 60 s), instead of failing on a timeout over 60."""
    subject = unique("patient")
    with graph(gp) as c:
        assert send(c, subject, ALEX).status_code == 202
    found = gp.wait_for_message(subject=subject, timeout=300)
    assert found["to"].lower() == ALEX.lower()
    # the id given to clear_faults is one path segment, whatever it holds: "{id}?x" is no
    # rule's id, and does not remove the rule {id}
    rule = gp.fault(503, path="/v1.0/nowhere")
    with pytest.raises(ControlError) as caught:
        gp.clear_faults(rule["id"] + "?x=1")
    assert caught.value.status == 404
    assert [r["id"] for r in gp.faults()] == [rule["id"]]


@pytest.mark.parametrize(
    "query",
    [
        {"wait": "abc"},
        {"wait": "-1"},
        {"wait": "61"},
        {"wait": "nan"},
        {"wait": "inf"},
        {"state": "queued"},
        {"bogus": "1"},
        {"to": "x" * 1001},
        {"subject": "a\x00b"},
    ],
)
def test_bad_listing_queries_are_400(emulator: RunningServer, query: dict[str, str]) -> None:
    with controls(emulator) as c:
        assert_error(c.get("/messages", params=query), 400, "ErrorInvalidRequest")


# ------------------------------------------------------------------------------ Graph faults


def test_a_request_without_a_good_token_meets_no_rule(gp: GraphpostClient) -> None:
    """Rules apply after authentication: a request Graph would refuse 401 gets its 401 and
    leaves the rule's count for the app's real requests."""
    gp.fault(429, path="/v1.0/me/messages", count=1)
    gp.fault(504, path="/v1.0/me/sendMail", count=1)
    with httpx.Client(base_url=gp.graph_url, timeout=30) as anonymous:
        for headers in ({}, {"Authorization": "Bearer garbage"}):
            assert_error(anonymous.get("/me/messages", headers=headers), 401,
                         "InvalidAuthenticationToken")  # fmt: skip
            r = anonymous.post("/me/sendMail", headers=headers, json={"message": {}})
            assert_error(r, 401, "InvalidAuthenticationToken")
    assert [rule["count"] for rule in gp.faults()] == [1, 1]
    with graph(gp) as c:
        assert_error(c.get("/me/messages"), 429, "TooManyRequests")
        assert c.get("/me/messages").status_code == 200


def test_a_429_rule_answers_the_next_requests_then_goes(gp: GraphpostClient) -> None:
    rule = gp.fault(429, path="/v1.0/me/sendMail", count=2, retry_after=7)
    assert rule["count"] == 2 and rule["status"] == 429
    subject = unique("throttled")
    with graph(gp) as c:
        for _ in range(2):
            r = send(c, subject, ALEX)
            assert_error(r, 429, "TooManyRequests")
            assert r.headers["retry-after"] == "7"
        # other paths are not touched meanwhile
        assert c.get("/me/mailFolders/inbox").status_code == 200
        assert send(c, subject, ALEX).status_code == 202
    assert gp.faults() == []
    # the two refused sends did nothing: one delivery
    assert len(gp.messages(subject=subject, wait=30)) == 1


def test_a_rule_for_one_user_and_method(gp: GraphpostClient) -> None:
    gp.fault(503, user=ALEX, method="GET", count=1, retry_after=3)
    with graph(gp, ADELE) as adele, graph(gp, ALEX) as alex:
        assert adele.get("/me/messages").status_code == 200
        assert alex.post("/me/messages", json={"subject": "x"}).status_code == 201
        r = alex.get(f"/users/{ALEX}/messages")
        assert_error(r, 503, "ServiceUnavailable")
        assert r.headers["retry-after"] == "3"
        assert alex.get("/me/messages").status_code == 200


def test_a_glob_and_a_share_of_requests(gp: GraphpostClient) -> None:
    gp.fault(503, path="/v1.0/me/mailFolders/*/messages", probability=1.0)
    with graph(gp) as c:
        for _ in range(3):
            assert_error(c.get("/me/mailFolders/inbox/messages"), 503, "ServiceUnavailable")
        assert c.get("/me/mailFolders/inbox").status_code == 200
    [rule] = gp.faults()
    assert rule["hits"] == 3 and rule["count"] is None
    gp.clear_faults(rule["id"])
    with graph(gp) as c:
        assert c.get("/me/mailFolders/inbox/messages").status_code == 200


def test_a_504_after_the_work_is_done(gp: GraphpostClient) -> None:
    """The send happened, the client was told it timed out: a retry sends it twice, which
    is what an app must be ready for (Graph gives no idempotency for sendMail)."""
    gp.fault(504, path="/v1.0/me/sendMail")
    subject = unique("timed out")
    with graph(gp) as c:
        assert_error(send(c, subject, ALEX), 504, "GatewayTimeout")
    [delivered] = gp.messages(subject=subject, wait=30)
    assert delivered["state"] == "delivered"


def test_batch_members_meet_the_rules(gp: GraphpostClient) -> None:
    gp.fault(429, path="/v1.0/me/mailFolders/inbox", count=1, retry_after=2)
    requests = [
        {"id": "1", "method": "GET", "url": "/me/mailFolders/inbox"},
        {"id": "2", "method": "GET", "url": "/me/mailFolders/drafts", "dependsOn": ["1"]},
    ]
    with graph(gp) as c:
        r = c.post("/$batch", json={"requests": requests})
    assert r.status_code == 200, r.text
    statuses = {m["id"]: m["status"] for m in r.json()["responses"]}
    assert statuses["1"] == 429


@pytest.mark.parametrize(
    "rule",
    [
        {"status": 500},
        {"status": 429, "count": 0},
        {"status": 429, "probability": 0},
        {"status": 429, "probability": 1.5},
        {"status": 429, "retryAfter": -1},
        {"status": 429, "method": "BREW"},
        {"status": 429, "path": "/v1.0/me\r\nX: y"},
        {"status": 429, "user": "nobody@nowhere.example"},
        {"status": 429, "colour": "red"},
        {"layer": "smtp", "recipient": "a@b.c", "code": 250},
        {"layer": "smtp", "recipient": "a@b.c"},
        {"layer": "smtp", "recipient": "a@b.c", "code": 550, "drop": True},
        {"layer": "smtp", "recipient": "a@b.c", "code": 550, "enhancedCode": "4.1.1"},
        {"layer": "smtp", "code": 550},
        {"layer": "ldap", "status": 429},
    ],
)
def test_bad_fault_rules_are_refused(emulator: RunningServer, rule: dict[str, Any]) -> None:
    with controls(emulator) as c:
        r = c.post("/faults", json=rule)
        assert r.status_code in (400, 404), r.text
        assert r.json()["error"]["code"] in (
            "ErrorInvalidRequest", "RequestBodyRead", "ErrorInvalidUser"
        )  # fmt: skip
        assert c.get("/faults").json()["value"] == []


# ------------------------------------------------------------------------------ SMTP faults


def test_smtp_fault_5xx_fails_the_recipient_alone(gp: GraphpostClient, sink: Sink) -> None:
    refused = f"refused-{unique()}@example.net"
    gp.smtp_fault(refused, code=550, enhanced_code="5.1.1", message="no such user")
    subject = unique("partly")
    with graph(gp) as c:
        assert send(c, subject, refused, EXTERNAL).status_code == 202
    failed = gp.wait_for_message(to=refused, state="failed", timeout=30)
    assert failed["lastCode"] == 550 and failed["lastEnhancedCode"] == "5.1.1"
    assert "no such user" in failed["lastResponse"]
    assert gp.wait_for_message(to=EXTERNAL, subject=subject, timeout=30)["state"] == "delivered"
    assert sink.messages_for(refused) == []
    # the sender gets the non-delivery report
    with graph(gp) as c:
        reports = c.get("/me/mailFolders/inbox/messages", params={"$top": 50}).json()["value"]
    assert any(subject in (m["subject"] or "") for m in reports)


def test_smtp_4xx_then_the_clock_brings_the_retry(gp: GraphpostClient, sink: Sink) -> None:
    """A 451 defers the delivery an hour (this server's retry policy); moving the clock an
    hour forward makes it due, and the worker, woken, delivers it."""
    later = f"later-{unique()}@example.net"
    gp.smtp_fault(later, code=451, enhanced_code="4.3.0", count=1)
    subject = unique("deferred")
    with graph(gp) as c:
        assert send(c, subject, later).status_code == 202
    deferred = gp.wait_for_message(to=later, state="deferred", timeout=30)
    assert deferred["attempts"] == 1 and deferred["lastCode"] == 451
    assert sink.messages_for(later) == []
    gp.advance_clock(3601)
    delivered = gp.wait_for_message(to=later, state="delivered", timeout=30)
    assert delivered["attempts"] == 2
    assert len(sink.messages_for(later)) == 1


def test_smtp_drop_cuts_the_whole_session(gp: GraphpostClient, sink: Sink) -> None:
    dropped = f"drop-{unique()}@example.net"
    other = f"other-{unique()}@example.net"
    gp.smtp_fault(dropped, drop=True)
    with graph(gp) as c:
        assert send(c, unique("dropped"), dropped, other).status_code == 202
    for address in (dropped, other):
        d = gp.wait_for_message(to=address, state="deferred", timeout=30)
        assert d["lastCode"] is None
    assert sink.messages_for(dropped) == [] and sink.messages_for(other) == []


# ------------------------------------------------------------------------------ reset and seed


def test_seed_then_reset_one_tenant(gp: GraphpostClient, tmp_path: Path) -> None:
    domain = f"{unique('t')}.example"
    seed: dict[str, Any] = {
        "users": [{"userPrincipalName": f"bob@{domain}", "displayName": "Bob",
                   "password": "correct horse"}],
        "messages": [
            {"user": f"bob@{domain}", "folder": "inbox",
             "message": {"subject": "seeded", "body": {"contentType": "text", "content": "hi"},
                         "toRecipients": [{"emailAddress": {"address": f"bob@{domain}"}}]}},
            {"user": ADELE, "message": {"subject": "seeded for Adele"}},
        ],
    }  # fmt: skip
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(seed))
    made = gp.seed(path)
    assert [u["userPrincipalName"] for u in made["users"]] == [f"bob@{domain}"]
    bob = made["users"][0]["id"]
    # seeding again keeps the user as it is
    assert gp.seed(users=seed["users"])["users"][0]["id"] == bob
    with graph(gp, f"bob@{domain}") as c:
        inbox = c.get("/me/mailFolders/inbox").json()
        listed = c.get("/me/mailFolders/inbox/messages").json()["value"]
        assert [m["subject"] for m in listed] == ["seeded"]
        assert listed[0]["body"]["content"] == "hi"
        root_before = c.get("/me/mailFolders/msgfolderroot").json()["childFolderCount"]
        made_folder = c.post("/me/mailFolders", json={"displayName": "Projects"})
        assert made_folder.status_code == 201
        sub = c.post(f"/me/mailFolders/{made_folder.json()['id']}/childFolders",
                     json={"displayName": "Sub"})  # fmt: skip
        assert sub.status_code == 201
    scopes = "MailboxSettings.ReadWrite Mail.ReadWrite"
    bob_settings = httpx.Client(base_url=gp.graph_url, timeout=30, headers={
        "Authorization": f"Bearer {gp.token(f'bob@{domain}', scopes)}"})  # fmt: skip
    with bob_settings as c:
        r = c.patch("/me/mailboxSettings", json={"automaticRepliesSetting": {
            "status": "alwaysEnabled", "internalReplyMessage": "away"}})  # fmt: skip
        assert r.status_code == 200, r.text
        r = c.post("/me/outlook/masterCategories", json={"displayName": "Bob's"})
        assert r.status_code == 201, r.text
    done = gp.reset(domain)
    assert done["tenants"] == [domain] and done["messages"] == 1
    with graph(gp, f"bob@{domain}") as c:
        after = c.get("/me/mailFolders/inbox").json()
        assert after["id"] == inbox["id"] and after["totalItemCount"] == 0
        names = [f["displayName"] for f in c.get("/me/mailFolders").json()["value"]]
        assert "Projects" not in names and "Inbox" in names
        root = c.get("/me/mailFolders/msgfolderroot").json()
        assert root["childFolderCount"] == root_before
    # the mailbox's settings and categories are back to none
    bob_settings = httpx.Client(base_url=gp.graph_url, timeout=30, headers={
        "Authorization": f"Bearer {gp.token(f'bob@{domain}', scopes)}"})  # fmt: skip
    with bob_settings as c:
        replies = c.get("/me/mailboxSettings/automaticRepliesSetting").json()
        assert replies["status"] == "disabled" and replies["internalReplyMessage"] == ""
        assert c.get("/me/outlook/masterCategories").json()["value"] == []
    # the other tenant's seeded message stays
    with graph(gp) as c:
        r = c.get("/me/messages", params={"$filter": "subject eq 'seeded for Adele'"})
        assert len(r.json()["value"]) == 1
    assert gp.reset()["messages"] >= 1


@pytest.mark.parametrize(
    "body",
    [
        {"users": [{"userPrincipalName": "bad\r\nname@x.example"}]},
        {"users": [{"userPrincipalName": "not an address"}]},
        {"users": [{"displayName": "no address"}]},
        {"users": [{"userPrincipalName": "p@x.example", "password": "short"}]},
        {"users": [{"userPrincipalName": "p@x.example", "colour": "red"}]},
        {"messages": [{"user": ADELE, "message": {"subject": "x", "nonsense": 1}}]},
        {"messages": [{"user": ADELE, "message": {"subject": "a\u0000b"}}]},
        {"messages": [{"user": "nobody@nowhere.example", "message": {}}]},
        {"messages": [{"user": ADELE, "folder": "no-such-folder", "message": {}}]},
        {"messages": [{"user": ADELE}]},
        [],
    ],
)
def test_bad_seeds_are_refused(emulator: RunningServer, body: Any) -> None:
    with controls(emulator) as c:
        r = c.post("/seed", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"]


def test_a_refused_seed_writes_no_message(gp: GraphpostClient) -> None:
    """A seed whose later message names an unknown user or folder is refused before any of
    its messages is written (not half of them)."""
    subject = unique("half")
    ok = {"user": ADELE, "message": {"subject": subject}}
    newcomer = f"{unique('new')}@contoso.onmicrosoft.com"
    for bad in ({"user": "nobody@nowhere.example", "message": {}},
                {"user": ADELE, "folder": "no-such-folder", "message": {}},
                {"user": newcomer, "folder": "AAMkAGnotafolder", "message": {}}):  # fmt: skip
        with pytest.raises(ControlError) as caught:
            gp.seed(users=[{"userPrincipalName": newcomer}], messages=[ok, ok, bad])
        assert 400 <= caught.value.status < 500
    with graph(gp) as c:
        r = c.get("/me/messages", params={"$filter": f"subject eq '{subject}'"})
        assert r.status_code == 200 and r.json()["value"] == [], r.text
    # a seeded user's messages may name it (made first), and a good seed writes them all
    theirs = {"user": newcomer, "folder": "archive", "message": {}}
    made = gp.seed(users=[{"userPrincipalName": newcomer}], messages=[ok, theirs])
    assert len(made["messages"]) == 2


def test_reset_of_an_unknown_tenant_is_400(emulator: RunningServer) -> None:
    with controls(emulator) as c:
        assert_error(c.post("/reset", json={"tenant": "nope.example"}), 400, "ErrorInvalidRequest")


def test_unknown_controls_and_methods(emulator: RunningServer) -> None:
    with controls(emulator) as c:
        assert_error(c.get("/nothing"), 404, "ErrorItemNotFound")
        assert_error(c.get("/faults/a/b"), 404, "ErrorItemNotFound")
        r = c.get("/reset")
        assert_error(r, 405, "MethodNotAllowed")
        assert r.headers["allow"] == "POST"
        assert_error(c.delete("/faults/no-such-rule"), 404, "ErrorItemNotFound")
        r = c.post("/seed", content=b"\xff\xfe", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = c.post("/seed", content=b"[" * 100_000)
        assert r.status_code == 400
        r = c.post("/seed", content=b"x" * (5 * 1024 * 1024))
        assert_error(r, 413, "RequestEntityTooLarge")
        assert c.get("").json()["controls"]


def test_tokens_from_the_controls(emulator: RunningServer) -> None:
    gp = GraphpostClient(emulator.base)
    with httpx.Client(base_url=gp.graph_url, timeout=30) as c:
        app = gp.app_token("emulator-tests")
        r = c.get(f"/users/{MEGAN}/messages", headers={"Authorization": f"Bearer {app}"})
        assert r.status_code == 200, r.text
    bads: list[dict[str, Any]] = [
        {"user": "nobody@nowhere.example"}, {"user": ADELE, "app": "x"}, {},
        {"app": "x", "tenant": "nope.example"}, {"user": ADELE, "lifetime": 10**9},
        {"app": "bad\nname"},
    ]  # fmt: skip
    for bad in bads:
        with pytest.raises(ControlError) as caught:
            gp._call("POST", "/token", bad)
        assert caught.value.status in (400, 404)


def test_the_examples_attach_to_a_running_server(emulator: RunningServer) -> None:
    """graphpost.testing's fixtures with GRAPHPOST_TEST_URL: the examples' tests run against
    this server instead of one in-process."""
    env = {**emulator.env, "GRAPHPOST_TEST_URL": emulator.base}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    # they ran here: their sender's mail is listed by this server
    assert GraphpostClient(emulator.base).messages(sender="welcome@shop.example")


# ------------------------------------------------------------------------------ in-process


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_in_process_servers_one_after_another_each_start_afresh(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """graphpost.testing's InProcessServer runs in the test's own process, whose clock it
    moves: stopping it puts that clock back (as a restart of `serve` forgets the offset), ends
    its thread and frees its port, so the next one (an app's next test) starts afresh."""
    url = None
    if engine == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
        request.addfinalizer(lambda: drop_pg_database(admin, name))
    before = times.offset()
    first = InProcessServer(tmp_path / "one", database_url=url)
    gp = GraphpostClient(first.start())
    try:
        assert gp.advance_clock(86400)["offsetSeconds"] == before + 86400
        gp.fault(503, path="/v1.0/me")
    finally:
        first.stop()
    assert times.offset() == before
    assert not [t for t in threading.enumerate() if t.name == "graphpost"]
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{first.base_url}/_graphpost", timeout=5)
    with InProcessServer(tmp_path / "two", database_url=url) as second:
        with pytest.raises(RuntimeError, match="already"):
            second.start()  # a second start of a running one (it would orphan the first)
        gp = GraphpostClient(second.base_url)
        assert gp.clock()["offsetSeconds"] == before
        assert gp.faults() == []
        with httpx.Client(base_url=gp.graph_url, timeout=30) as c:
            auth = {"Authorization": f"Bearer {gp.token(ADELE)}"}
            assert c.get("/me/mailFolders/inbox", headers=auth).status_code == 200
    assert times.offset() == before


# ------------------------------------------------------------------------------ the clock (last)


def test_the_clock_moves_forward_only_and_expires_tokens(emulator: RunningServer) -> None:
    gp = GraphpostClient(emulator.base)
    before = gp.clock()
    with pytest.raises(ControlError) as caught:
        gp.advance_clock(-1)
    assert caught.value.status == 400
    with controls(emulator) as c:
        for bad in (b'{"advanceSeconds": "nan"}', b'{"advanceSeconds": 1e400}', b"{}",
                    b'{"advance": 1}', b'{"advanceSeconds": NaN}',
                    # past year 9999 nothing could be dated: every later request would fail
                    b'{"advanceSeconds": 1e12}', b'{"advanceSeconds": 1e308}'):  # fmt: skip
            r = c.post("/clock", content=bad, headers={"content-type": "application/json"})
            assert r.status_code == 400, (bad, r.text)
        assert gp.clock()["offsetSeconds"] == before["offsetSeconds"]
    token = gp.token(ADELE)
    with httpx.Client(base_url=gp.graph_url, timeout=30) as c:
        auth = {"Authorization": f"Bearer {token}"}
        assert c.get("/me/mailFolders/inbox", headers=auth).status_code == 200
        moved = gp.advance_clock(2 * 3600)
        assert moved["offsetSeconds"] >= before["offsetSeconds"] + 7200
        r = c.get("/me/mailFolders/inbox", headers=auth)
        assert_error(r, 401, "InvalidAuthenticationToken")
        assert "expired" in r.json()["error"]["message"]
        # a token issued now (by the moved clock) is good
        fresh = {"Authorization": f"Bearer {gp.token(ADELE)}"}
        assert c.get("/me/mailFolders/inbox", headers=fresh).status_code == 200
        # an upload session's URL works until its expiry by this clock (6 h by default)
        draft = c.post("/me/messages", headers=fresh, json={"subject": "big"}).json()
        size = 4 * 1024 * 1024
        item = {"attachmentType": "file", "name": "big.bin", "size": size}
        r = c.post(
            f"/me/messages/{draft['id']}/attachments/createUploadSession",
            headers=fresh, json={"AttachmentItem": item},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        url = r.json()["uploadUrl"]
        part = {"Content-Range": f"bytes 0-1023/{size}", "Content-Type": "application/octet-stream"}
        assert httpx.put(url, content=b"x" * 1024, headers=part, timeout=30).status_code == 200
    gp.advance_clock(6 * 3600 + 1)
    rest = {"Content-Range": f"bytes 1024-2047/{size}", "Content-Type": "application/octet-stream"}
    r = httpx.put(url, content=b"x" * 1024, headers=rest, timeout=30)
    assert_error(r, 404, "ErrorItemNotFound")
    assert "expired" in r.json()["error"]["message"]
