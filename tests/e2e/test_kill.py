"""Nothing lost: kill -9 while delivering, start again, and every acknowledged message reaches
the sink — exactly once, or with the few duplicates SMTP cannot rule out (counted here).

A duplicate can only happen to a message whose end of DATA reached the relay in the last
instant before the kill: the relay keeps it, but its 250 was never recorded. Each duplicate's
first copy must have arrived within LAST_INSTANT of the kill; one that arrived earlier means
an outcome was recorded late or not at all. The relay here is slow before DATA (RCPT takes
0.3 s), as real relays are, so that only a few transactions are past DATA at any moment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import RunningServer, server_env, start_server
from tests.sink import Sink, wait_for

COUNT = 120
IN_FLIGHT = 16  # the worker's concurrency: the most messages that can be mid-DATA at a kill
LAST_INSTANT = 2.0  # seconds before the kill in which a 250 may not have been recorded yet
RCPT_SECONDS = 0.3


def send_all(server: RunningServer, tag: str, count: int = COUNT) -> list[str]:
    subjects = [f"{tag}-{n:04d}" for n in range(count)]

    def one(subject: str) -> int:
        with server.client() as c:
            r = c.post(
                "/me/sendMail",
                json={
                    "message": {
                        "subject": subject,
                        "toRecipients": [{"emailAddress": {"address": f"{subject}@example.net"}}],
                    }
                },
            )
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, subjects))
    assert codes == [202] * count
    return subjects


def check_all_arrived(sink: Sink, subjects: list[str], killed_at: float, restarted: float,
                      engine: str) -> int:  # fmt: skip
    def arrived() -> bool:
        got = {r.message["subject"] for r in sink.handler.received}
        return set(subjects) <= got

    wait_for(arrived, timeout=120, what="every message at the sink")
    recovery = time.time() - restarted
    first: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for r in sink.handler.received:
        subject = str(r.message["subject"])
        counts[subject] += 1
        first[subject] = min(first.get(subject, r.at), r.at)
    duplicates = [s for s in subjects if counts[s] > 1]
    print(
        f"kill test ({engine}): {COUNT} messages, {len(duplicates)} duplicate(s) at the sink, "
        f"every message delivered {recovery:.1f} s after the restart"
    )
    late = [s for s in duplicates if first[s] < killed_at - LAST_INSTANT]
    assert late == [], f"sent again although accepted long before the kill: {late}"
    assert len(duplicates) <= IN_FLIGHT
    return len(duplicates)


def kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def test_kill_during_delivery_sqlite(tmp_path: Path) -> None:
    """The restarted server takes over the dead process's deliveries at once: the leases are
    600 s here, so waiting for them to run out would time the test out."""
    sink = Sink().start()
    sink.handler.rcpt_delay = RCPT_SECONDS
    data = tmp_path / "srv"
    try:
        server = start_server(data, relay=sink.url, GRAPHPOST_LEASE_SECONDS="600")
        subjects = send_all(server, "k-sqlite")
        wait_for(lambda: len(sink.handler.received) >= 10, what="some deliveries")
        killed_at = time.time()
        kill(server.process)
        assert len(sink.handler.received) < COUNT, "everything went out before the kill"
        server = start_server(data, relay=sink.url, GRAPHPOST_LEASE_SECONDS="600")
        try:
            check_all_arrived(sink, subjects, killed_at, time.time(), "sqlite")
        finally:
            server.stop()
    finally:
        sink.stop()


def test_a_second_server_on_one_sqlite_database_is_refused(tmp_path: Path) -> None:
    """Taking over every lease at start is only safe because no second process can deliver
    from the same SQLite database."""
    data = tmp_path / "srv"
    server = start_server(data)
    try:
        with pytest.raises(AssertionError, match="another graphpost process"):
            start_server(data)
    finally:
        server.stop()


def start_worker(server: RunningServer, relay: str, **extra: str) -> subprocess.Popen[bytes]:
    env = server_env(server.env["GRAPHPOST_DATABASE_URL"], relay, **extra)
    log = open(server.data_dir / "worker.log", "ab")  # noqa: SIM115 - lives with the worker
    return subprocess.Popen(
        [sys.executable, "-m", "graphpost.cli.main", "worker", "--data-dir", str(server.data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


@pytest.mark.postgres
def test_kill_a_worker_postgres(tmp_path: Path, pg_admin_url: str) -> None:
    from tests.conftest import drop_pg_database, make_pg_database

    name, url = make_pg_database(pg_admin_url)
    sink = Sink().start()
    sink.handler.rcpt_delay = RCPT_SECONDS
    workers: list[subprocess.Popen[bytes]] = []
    server = start_server(tmp_path / "srv", url, relay=sink.url, args=("--no-worker",))
    try:
        subjects = send_all(server, "k-pg")
        assert sink.handler.received == []  # the API process delivers nothing itself
        workers = [start_worker(server, sink.url) for _ in range(2)]
        wait_for(lambda: len(sink.handler.received) >= 10, what="some deliveries")
        killed_at = time.time()
        kill(workers[0])
        assert len(sink.handler.received) < COUNT, "everything went out before the kill"
        workers.append(start_worker(server, sink.url))
        check_all_arrived(sink, subjects, killed_at, time.time(), "postgresql")
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(10)
        server.stop()
        sink.stop()
        drop_pg_database(pg_admin_url, name)


@pytest.mark.postgres
def test_a_slow_relay_never_lets_a_live_workers_lease_run_out(
    tmp_path: Path, pg_admin_url: str
) -> None:
    """Two workers, 1 s leases, a relay that takes 0.5 s per RCPT: a worker holds more work
    (64 messages, 16 at a time: 2 s) than it can send in one lease, so it must renew its
    leases, or the other worker would claim and send the same messages again. No kill here:
    no duplicate is excusable."""
    from tests.conftest import drop_pg_database, make_pg_database

    name, url = make_pg_database(pg_admin_url)
    sink = Sink().start()
    sink.handler.rcpt_delay = 0.5
    workers: list[subprocess.Popen[bytes]] = []
    server = start_server(tmp_path / "srv", url, relay=sink.url, args=("--no-worker",))
    try:
        subjects = send_all(server, "lease", 64)
        workers = [start_worker(server, sink.url, GRAPHPOST_LEASE_SECONDS="1") for _ in range(2)]
        wait_for(
            lambda: {r.message["subject"] for r in sink.handler.received} >= set(subjects),
            timeout=120,
            what="every message at the sink",
        )
        time.sleep(2)  # a late duplicate would arrive now
        counts = Counter(str(r.message["subject"]) for r in sink.handler.received)
        assert [s for s in subjects if counts[s] > 1] == []
    finally:
        for w in workers:
            w.terminate()
            w.wait(10)
        server.stop()
        sink.stop()
        drop_pg_database(pg_admin_url, name)
