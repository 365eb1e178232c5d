"""Nothing lost: kill -9 while delivering, start again, and every acknowledged message reaches
the sink — exactly once, or with the few duplicates SMTP cannot rule out (counted here).

A duplicate can only happen to a message the sink accepted in the instant between its 250
and the worker recording it: at most the messages in flight when the process died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import RunningServer, server_env, start_server
from tests.sink import Sink, wait_for

COUNT = 120
IN_FLIGHT = 16  # the worker's concurrency: the most messages that can be mid-DATA at a kill


def send_all(server: RunningServer, tag: str) -> list[str]:
    subjects = [f"{tag}-{n:04d}" for n in range(COUNT)]

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
    assert codes == [202] * COUNT
    return subjects


def check_all_arrived(sink: Sink, subjects: list[str]) -> int:
    def arrived() -> bool:
        got = {r.message["subject"] for r in sink.handler.received}
        return set(subjects) <= got

    wait_for(arrived, timeout=120, what="every message at the sink")
    counts = Counter(r.message["subject"] for r in sink.handler.received)
    duplicates = sum(counts[s] - 1 for s in subjects)
    print(f"kill test: {COUNT} messages, {duplicates} duplicate(s) at the sink")
    assert duplicates <= IN_FLIGHT
    return duplicates


def kill(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def test_kill_during_delivery_sqlite(tmp_path: Path) -> None:
    sink = Sink().start()
    sink.handler.delay = 0.02
    data = tmp_path / "srv"
    try:
        server = start_server(data, relay=sink.url)
        subjects = send_all(server, "k-sqlite")
        wait_for(lambda: len(sink.handler.received) >= 10, what="some deliveries")
        kill(server.process)
        assert len(sink.handler.received) < COUNT, "everything went out before the kill"
        server = start_server(data, relay=sink.url)
        try:
            check_all_arrived(sink, subjects)
        finally:
            server.stop()
    finally:
        sink.stop()


def start_worker(server: RunningServer, relay: str) -> subprocess.Popen[bytes]:
    env = server_env(server.env["GRAPHPOST_DATABASE_URL"], relay)
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
    sink.handler.delay = 0.02
    workers: list[subprocess.Popen[bytes]] = []
    server = start_server(tmp_path / "srv", url, relay=sink.url, args=("--no-worker",))
    try:
        subjects = send_all(server, "k-pg")
        assert sink.handler.received == []  # the API process delivers nothing itself
        workers = [start_worker(server, sink.url) for _ in range(2)]
        wait_for(lambda: len(sink.handler.received) >= 10, what="some deliveries")
        kill(workers[0])
        assert len(sink.handler.received) < COUNT, "everything went out before the kill"
        workers.append(start_worker(server, sink.url))
        check_all_arrived(sink, subjects)
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(10)
        server.stop()
        sink.stop()
        drop_pg_database(pg_admin_url, name)
