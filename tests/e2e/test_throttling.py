"""Graph's throttling under load (loopback, bounded): 429 from the 5th concurrent request to one
mailbox, none at 4; the rate limit with Retry-After; shared by processes on PostgreSQL."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, start_server

ROUNDS = 40


def hammer(
    server: RunningServer, token: str, threads: int
) -> tuple[Counter[int], list[httpx.Response]]:
    """``threads`` clients, each creating drafts back to back, ROUNDS each."""
    codes: Counter[int] = Counter()
    throttled: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def client() -> None:
        with server.client(token) as c:
            start.wait()
            for _ in range(ROUNDS):
                r = c.post(
                    "/me/messages", json={"subject": "load", "body": {"content": "x" * 2000}}
                )
                with lock:
                    codes[r.status_code] += 1
                    if r.status_code == 429:
                        throttled.append(r)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    return codes, throttled


@pytest.fixture(params=["sqlite", "postgresql"])
def throttled_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    running = start_server(tmp_path / "srv", url, GRAPHPOST_THROTTLING="on",
                           GRAPHPOST_THROTTLE_REQUESTS="100000")  # fmt: skip
    yield running
    running.stop()


def test_concurrency_limit(throttled_server: RunningServer) -> None:
    token = throttled_server.token("PattiF@contoso.onmicrosoft.com")
    codes, throttled = hammer(throttled_server, token, 4)
    assert codes == Counter({201: 4 * ROUNDS}), "no 429 at four concurrent requests"
    codes, throttled = hammer(throttled_server, token, 12)
    assert codes[429] > 0 and codes[201] > 0 and set(codes) == {201, 429}
    r = throttled[0]
    assert r.headers["retry-after"] == "1"
    error = r.json()["error"]
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its MailboxConcurrency limit."
    # another mailbox is not affected by this one's load
    with throttled_server.client(throttled_server.token("LeeG@contoso.onmicrosoft.com")) as c:
        assert c.get("/me/messages").status_code == 200


@pytest.mark.postgres
def test_simultaneous_reads_are_throttled_on_postgresql(tmp_path: Path, pg_database: str) -> None:
    """40 reads of one mailbox arriving together: some are over the limit of 4. (On SQLite a
    read never waits, and 40 such reads are mostly served one after another: not asserted.)
    The 40 connections are opened first and the 40 requests written back to back from one
    thread; a burst is tried up to three times."""
    throttled_server = start_server(tmp_path / "srv", pg_database, GRAPHPOST_THROTTLING="on",
                                    GRAPHPOST_THROTTLE_REQUESTS="100000")  # fmt: skip
    try:
        _simultaneous_reads(throttled_server)
    finally:
        throttled_server.stop()


def _simultaneous_reads(throttled_server: RunningServer) -> None:
    token = throttled_server.token("MeganB@contoso.onmicrosoft.com")
    host, port = throttled_server.base.removeprefix("http://").split(":")
    request = (
        f"GET /v1.0/me/mailFolders/inbox/messages?$top=5 HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    ).encode()

    def burst() -> Counter[int]:
        sockets = [socket.create_connection((host, int(port)), timeout=60) for _ in range(40)]
        try:
            for s in sockets:
                s.sendall(request)
            codes: Counter[int] = Counter()
            for s in sockets:
                head = s.recv(64)
                codes[int(head.split(b" ", 2)[1])] += 1
            return codes
        finally:
            for s in sockets:
                s.close()

    seen = []
    for _ in range(3):
        codes = burst()
        seen.append(codes)
        assert set(codes) <= {200, 429} and sum(codes.values()) == 40, codes
        if codes[429]:
            break
    assert seen[-1][429] > 0, seen


@pytest.fixture(params=["sqlite", "postgresql"])
def rate_limited_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    """Five requests per ten seconds (counted in one-second tenths)."""
    url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    running = start_server(tmp_path / "srv", url, GRAPHPOST_THROTTLING="on",
                           GRAPHPOST_THROTTLE_REQUESTS="5",
                           GRAPHPOST_THROTTLE_WINDOW_SECONDS="10")  # fmt: skip
    yield running
    running.stop()


def test_retry_after_is_honest(rate_limited_server: RunningServer) -> None:
    """Waiting Retry-After (+1 s) after a 429 for the rate gets a 2xx; the 429s a client
    collects meanwhile do not push its turn further away."""
    with rate_limited_server.client() as c:
        assert [c.get("/me/mailFolders").status_code for _ in range(5)] == [200] * 5
        r = c.get("/me/mailFolders")
        assert r.status_code == 429 and r.json()["error"]["code"] == "TooManyRequests"
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 10
        for _ in range(20):  # an impatient client: refused, and not counted
            assert c.get("/me/mailFolders").status_code == 429
        time.sleep(wait + 1)
        assert c.get("/me/mailFolders").status_code == 200


def test_rate_limit(tmp_path: Path) -> None:
    server = start_server(tmp_path / "srv", GRAPHPOST_THROTTLING="on",
                          GRAPHPOST_THROTTLE_REQUESTS="5")  # fmt: skip
    try:
        with server.client() as c:
            codes = [c.get("/me/mailFolders").status_code for _ in range(5)]
            assert codes == [200] * 5
            r = c.get("/me/mailFolders")
            assert r.status_code == 429
            error = r.json()["error"]
            assert error["code"] == "TooManyRequests"
            assert error["innerError"]["code"] == "429" and error["innerError"]["status"] == "429"
            assert 1 <= int(r.headers["retry-after"]) <= 600
        # the limit is per app: another app on the same mailbox still gets through
        with server.client(server.app_token("other-app")) as c:
            assert c.get("/users/AdeleV@contoso.onmicrosoft.com/mailFolders").status_code == 200
    finally:
        server.stop()


def test_off_switch_and_shared_counters(tmp_path: Path, pg_database: str) -> None:
    """Two API processes on one PostgreSQL share one budget. Behind one name, as an operator
    runs them: the public URL is the tokens' issuer."""
    public = "https://mail.example.test"
    a = start_server(tmp_path / "a", pg_database, GRAPHPOST_THROTTLING="on",
                     GRAPHPOST_THROTTLE_REQUESTS="6", GRAPHPOST_PUBLIC_URL=public)  # fmt: skip
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    (b_dir / "signing-key.pem").write_bytes((tmp_path / "a" / "signing-key.pem").read_bytes())
    b = start_server(b_dir, pg_database, GRAPHPOST_THROTTLING="on",
                     GRAPHPOST_THROTTLE_REQUESTS="6", GRAPHPOST_PUBLIC_URL=public)  # fmt: skip
    try:
        token = a.token("JoniS@contoso.onmicrosoft.com")
        seen = []
        for n in range(8):
            server = a if n % 2 else b
            with server.client(token) as c:
                seen.append(c.get("/me/mailFolders").status_code)
            time.sleep(0.01)
        assert seen[:6] == [200] * 6 and seen[6:] == [429, 429]
    finally:
        a.stop()
        b.stop()
