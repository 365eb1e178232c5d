"""Change notifications end to end, both engines: a real server, a real webhook receiver on
loopback, real changes through the API. Every change of a burst arrives at least once with no
gap in the sequence numbers, also across a kill -9 of the server."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, server_env, start_server
from tests.mail_api import unique
from tests.webhook import Receiver, dispatched_twice, sequence_gaps, start_receiver

BURST = 1000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = start_receiver()
    yield r
    r.stop()


def in_minutes(n: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + n * 60))


def subscribe(c: httpx.Client, receiver: Receiver, resource: str, change_type: str,
              state: str) -> str:  # fmt: skip
    r = c.post(
        "/subscriptions",
        json={
            "changeType": change_type,
            "notificationUrl": f"{receiver.url}?{state}",
            "resource": resource,
            "expirationDateTime": in_minutes(120),
            "clientState": state,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def of(receiver: Receiver, sub: str) -> list[dict[str, Any]]:
    return [n for n in receiver.notifications() if n["subscriptionId"] == sub]


def test_message_changes(server: RunningServer, receiver: Receiver) -> None:
    with server.client() as c:
        inbox_sub = subscribe(
            c, receiver, "me/mailFolders('inbox')/messages", "created,updated,deleted", "inbox"
        )
        all_sub = subscribe(c, receiver, "/me/messages", "created,updated,deleted", "all")
        created = c.post("/me/mailFolders/inbox/messages", json={"subject": unique("n")})
        assert created.status_code == 201, created.text
        mid = created.json()["id"]
        assert c.patch(f"/me/messages/{mid}", json={"isRead": True}).status_code == 200
        moved = c.post(f"/me/messages/{mid}/move", json={"destinationId": "archive"})
        assert moved.status_code == 201, moved.text
        assert c.delete(f"/me/messages/{mid}").status_code == 204

        def kinds(sub: str) -> list[str]:
            return [n["changeType"] for n in of(receiver, sub) if n["resourceData"]["id"] == mid]

        assert receiver.wait_for(lambda: kinds(inbox_sub) == ["created", "updated", "deleted"])
        assert receiver.wait_for(lambda: len(kinds(all_sub)) >= 4)
        assert kinds(all_sub)[:3] == ["created", "updated", "updated"]  # a move: updated
        first = of(receiver, inbox_sub)[0]
        assert first["clientState"] == "inbox"
        assert first["resourceData"]["@odata.type"] == "#Microsoft.Graph.Message"
        assert first["resource"].endswith(f"/Messages/{mid}")
        assert first["subscriptionExpirationDateTime"].endswith("Z")
        for sub in (inbox_sub, all_sub):
            assert sequence_gaps(of(receiver, sub), sub) == []
            c.delete(f"/subscriptions/{sub}")


def create_burst(server: RunningServer, count: int, stop: threading.Event | None = None,
                 tag: str = "burst") -> list[str]:  # fmt: skip
    """``count`` creates from 8 threads; the ids of those answered 201 (a create cut off by a
    kill is not counted: it was never acknowledged)."""

    local = threading.local()
    clients: list[httpx.Client] = []

    def one(n: int) -> str | None:
        if stop is not None and stop.is_set():
            return None
        if not hasattr(local, "client"):  # one keep-alive connection per thread
            local.client = server.client()
            clients.append(local.client)
        try:
            r = local.client.post("/me/messages", json={"subject": f"{tag}-{n}"})
        except httpx.HTTPError:
            return None
        return str(r.json()["id"]) if r.status_code == 201 else None

    try:
        with ThreadPoolExecutor(8) as pool:
            return [i for i in pool.map(one, range(count)) if i is not None]
    finally:
        for c in clients:
            c.close()


def received_ids(receiver: Receiver, sub: str) -> set[str]:
    return {n["resourceData"]["id"] for n in of(receiver, sub)}


def test_a_burst_arrives_whole_and_in_sequence(server: RunningServer, receiver: Receiver) -> None:
    with server.client() as c:
        sub = subscribe(c, receiver, "me/messages", "created", unique("burst"))
    t0 = time.monotonic()
    ids = create_burst(server, BURST)
    made = time.monotonic() - t0
    assert len(ids) == BURST
    assert receiver.wait_for(lambda: set(ids) <= received_ids(receiver, sub), 120)
    print(
        f"{BURST} creates in {made:.1f} s, all notified {time.monotonic() - t0 - made:.1f} s later"
    )
    got = of(receiver, sub)
    assert sequence_gaps(got, sub) == [] and dispatched_twice(got, sub) == []
    assert {n["sequenceNumber"] for n in got} == set(range(1, BURST + 1))
    # batched: fewer posts than notifications
    assert len([p for p in receiver.posts if p.path == "/hook"]) < BURST
    with server.client() as c:
        c.delete(f"/subscriptions/{sub}")


@pytest.fixture(params=["sqlite", "postgresql"])
def own_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str | None]]:
    url = request.getfixturevalue("pg_database_fresh") if request.param == "postgresql" else None
    yield tmp_path / "data", url


@pytest.fixture
def pg_database_fresh(pg_admin_url: str) -> Iterator[str]:
    from tests.conftest import drop_pg_database, make_pg_database

    name, url = make_pg_database(pg_admin_url)
    yield url
    drop_pg_database(pg_admin_url, name)


def test_nothing_lost_across_kill_9(
    own_server: tuple[Path, str | None], receiver: Receiver
) -> None:
    data_dir, url = own_server
    server = start_server(data_dir, url)
    try:
        with server.client() as c:
            sub = subscribe(c, receiver, "me/messages", "created", "kill")
        stop = threading.Event()
        acknowledged: list[str] = []
        burst = threading.Thread(
            target=lambda: acknowledged.extend(create_burst(server, BURST, stop, "kill"))
        )
        burst.start()
        # kill once some notifications have gone out and more are being made
        assert receiver.wait_for(lambda: len(of(receiver, sub)) >= 100, 60)
        server.process.kill()  # SIGKILL
        server.process.wait(10)
        stop.set()
        burst.join(60)
        assert len(acknowledged) >= 100
        server = start_server(data_dir, url, port=int(server.base.rsplit(":", 1)[1]))
        after = create_burst(server, 100, tag="after")
        want = set(acknowledged) | set(after)
        assert receiver.wait_for(lambda: want <= received_ids(receiver, sub), 120), (
            f"missing {len(want - received_ids(receiver, sub))} of {len(want)}"
        )
        assert sequence_gaps(of(receiver, sub), sub) == []
        assert dispatched_twice(of(receiver, sub), sub) == []
    finally:
        server.stop()


def test_folder_changes(server: RunningServer, receiver: Receiver) -> None:
    with server.client() as c:
        sub = subscribe(c, receiver, "me/mailFolders", "created,updated,deleted", "folders")
        r = c.post("/me/mailFolders", json={"displayName": unique("f")})
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        assert c.patch(f"/me/mailFolders/{fid}", json={"displayName": unique("g")}).is_success
        assert c.delete(f"/me/mailFolders/{fid}").status_code == 204  # into Deleted Items
        assert c.delete(f"/me/mailFolders/{fid}").status_code == 204  # for good

        def kinds() -> list[str]:
            return [n["changeType"] for n in of(receiver, sub) if n["resourceData"]["id"] == fid]

        assert receiver.wait_for(lambda: len(kinds()) >= 4), kinds()
        assert kinds()[0] == "created" and kinds()[-1] == "deleted"
        first = of(receiver, sub)[0]
        assert first["resourceData"]["@odata.type"] == "#Microsoft.Graph.MailFolder"
        assert first["resource"].endswith(f"/MailFolders/{fid}")
        c.delete(f"/subscriptions/{sub}")


@pytest.mark.postgres
def test_several_workers_never_dispatch_twice(
    tmp_path: Path, pg_database_fresh: str, receiver: Receiver
) -> None:
    """PostgreSQL, an API process without a worker and two `graphpost worker` processes (one
    killed mid-burst, a third started): every change once in the sequence, no gap."""
    server = start_server(tmp_path / "srv", pg_database_fresh, args=("--no-worker",))
    workers: list[subprocess.Popen[bytes]] = []

    def worker() -> subprocess.Popen[bytes]:
        env = server_env(pg_database_fresh, None)
        log = open(server.data_dir / "worker.log", "ab")  # noqa: SIM115 - lives with it
        return subprocess.Popen(
            [sys.executable, "-m", "graphpost.cli.main", "worker", "--data-dir",
             str(server.data_dir)], stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip

    try:
        with server.client() as c:
            sub = subscribe(c, receiver, "me/messages", "created", "workers")
        workers = [worker(), worker()]
        stop = threading.Event()
        ids: list[str] = []
        burst = threading.Thread(target=lambda: ids.extend(create_burst(server, 500, stop, "w")))
        burst.start()
        assert receiver.wait_for(lambda: len(of(receiver, sub)) >= 50, 60)
        workers[0].kill()
        workers[0].wait(10)
        workers.append(worker())
        burst.join(120)
        assert len(ids) == 500
        assert receiver.wait_for(lambda: set(ids) <= received_ids(receiver, sub), 120)
        got = of(receiver, sub)
        assert sequence_gaps(got, sub) == [] and dispatched_twice(got, sub) == []
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(10)
        server.stop()


def test_a_black_hole_webhook_does_not_delay_the_others(
    own_server: tuple[Path, str | None], receiver: Receiver
) -> None:
    """One subscription's webhook accepts the connection and never answers (with an 8 s
    delivery deadline); another subscription of the same mailbox gets every change within
    seconds all the while, and the black hole is tried again once its post timed out."""
    data_dir, url = own_server
    server = start_server(data_dir, url, GRAPHPOST_WEBHOOK_TIMEOUT_SECONDS="8")
    hole = start_receiver()
    try:
        with server.client() as c:
            healthy = subscribe(c, receiver, "me/messages", "created", "healthy")
            subscribe(c, hole, "me/messages", "created", "hole")
            hole.behaviour.hang = True  # validated; from now on every post hangs
            first = c.post("/me/messages", json={"subject": unique("bh")}).json()["id"]
            assert receiver.wait_for(lambda: first in received_ids(receiver, healthy), 10)
            assert hole.wait_for(lambda: len(hole.hung) == 1, 10)
            for n in range(3):  # while the black hole's post hangs
                started = time.monotonic()
                mid = c.post("/me/messages", json={"subject": unique(f"bh{n}")}).json()["id"]

                def arrived(m: str = mid) -> bool:
                    return m in received_ids(receiver, healthy)

                assert receiver.wait_for(arrived, 4), n
                assert time.monotonic() - started < 4
            assert len(hole.hung) == 1  # still the first post, hanging
            assert hole.wait_for(lambda: len(hole.hung) >= 2, 20)  # retried after its deadline
            assert hole.hung[1] - hole.hung[0] >= 8
            assert sequence_gaps(of(receiver, healthy), healthy) == []
    finally:
        hole.stop()
        server.stop()


def test_access_revoked_removes_the_subscription(server: RunningServer, receiver: Receiver) -> None:
    """An app's subscription to a mailbox its access policy no longer lists: Graph removes it;
    here too (within the access cache's seconds), with a subscriptionRemoved to its lifecycle
    URL, and no change of the mailbox is notified after."""
    upn = f"{unique('watched')}@contoso.onmicrosoft.com"
    other = f"{unique('kept')}@contoso.onmicrosoft.com"
    server.cli("users", "add", "--name", "Watched", "--mail", upn)
    server.cli("users", "add", "--name", "Kept", "--mail", other)
    app = unique("watcher")
    token = server.app_token(app, "Mail.ReadWrite")
    with server.client(token) as c:
        r = c.post("/subscriptions", json={
            "changeType": "created", "notificationUrl": f"{receiver.url}?revoked",
            "lifecycleNotificationUrl": receiver.url.replace("/hook", "/life"),
            "resource": f"users/{upn}/messages", "expirationDateTime": in_minutes(120),
        })  # fmt: skip
        assert r.status_code == 201, r.text
        sub = r.json()["id"]
        first = c.post(f"/users/{upn}/messages", json={"subject": "before"}).json()["id"]
        assert receiver.wait_for(lambda: first in received_ids(receiver, sub))
        server.cli("mailbox", "restrict-app", app, other)  # the watched mailbox is out

        def removed() -> bool:
            return any(
                n.get("lifecycleEvent") == "subscriptionRemoved" and n["subscriptionId"] == sub
                for n in receiver.notifications("/life")
            )

        assert receiver.wait_for(removed, 30)
        assert c.get(f"/subscriptions/{sub}").status_code == 404
    with server.client(server.app_token("tests")) as c:  # a change the app may no longer see
        after = c.post(f"/users/{upn}/messages", json={"subject": "after"}).json()["id"]
    time.sleep(2)  # rounds run every 0.1 s: time enough for a notification to arrive
    assert after not in received_ids(receiver, sub)
