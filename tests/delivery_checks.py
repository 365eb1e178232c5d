"""Checks shared by the delivery-safety tests: a server with a short retry policy on either
engine, final delivery states, copies per recipient, open file descriptors and log storms."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, drop_pg_database, make_pg_database, start_server

ADELE = "AdeleV@contoso.onmicrosoft.com"
ALEX = "AlexW@contoso.onmicrosoft.com"
FINAL = frozenset({"delivered", "failed"})
TRACEBACK = "Traceback (most recent call last)"

# A short retry policy: a 4xx is retried after 0.2 s, 0.4 s, 0.5 s, … and fails after 3 s.
RETRY_BASE, RETRY_MAX, RETRY_WINDOW = 0.2, 0.5, 3.0
SHORT_RETRY = {
    "GRAPHPOST_RETRY_BASE_SECONDS": str(RETRY_BASE),
    "GRAPHPOST_RETRY_MAX_SECONDS": str(RETRY_MAX),
    "GRAPHPOST_RETRY_WINDOW_SECONDS": str(RETRY_WINDOW),
}


def attempts_allowed(
    base: float = RETRY_BASE, longest: float = RETRY_MAX, window: float = RETRY_WINDOW
) -> int:
    """The most attempts one delivery can make under the retry policy (first try included)."""
    attempts, elapsed = 1, 0.0
    while True:
        elapsed += min(base * 2 ** (attempts - 1), longest)
        if elapsed > window:
            return attempts
        attempts += 1


@contextmanager
def engine_server(
    engine: str,
    data_dir: Path,
    request: pytest.FixtureRequest,
    *,
    relay: str | None,
    args: tuple[str, ...] = (),
    **extra_env: str,
) -> Iterator[RunningServer]:
    """A fresh `graphpost serve` on ``engine`` ("sqlite" or "postgresql": a database of its
    own) with the short retry policy; stopped (and its database dropped) afterwards."""
    url = name = admin = None
    if engine == "postgresql":
        admin = request.getfixturevalue("pg_admin_url")
        name, url = make_pg_database(admin)
    try:
        env: dict[str, Any] = {**SHORT_RETRY, **extra_env}
        server = start_server(data_dir, url, relay=relay, args=args, **env)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if admin is not None and name is not None:
            drop_pg_database(admin, name)


def location_id(location: str) -> str:
    """The message id in the ``Location`` of a send's 202 (also ``…/deliveryStatus``)."""
    return location.split("messages('", 1)[1].split("'", 1)[0]


def delivery_status(server: RunningServer, message_id: str, user: str = ADELE) -> dict[str, Any]:
    with server.client(server.token(user)) as c:
        r = c.get(f"/me/messages/{message_id}/deliveryStatus")
    assert r.status_code == 200, r.text
    return dict(r.json())


def is_final(status: dict[str, Any]) -> bool:
    return all(r["status"] in FINAL for r in status["recipients"])


def wait_final(
    server: RunningServer, message_ids: Iterable[str], timeout: float = 30.0
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Poll the delivery status of every message until all its recipients are final.

    Returns (the last status of each message, the ids still not final at the timeout): the
    caller asserts, so that a failure can say what it saw.
    """
    pending = list(dict.fromkeys(message_ids))
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while True:
        still = []
        for mid in pending:
            seen[mid] = delivery_status(server, mid)
            if not is_final(seen[mid]):
                still.append(mid)
        pending = still
        if not pending or time.monotonic() > deadline:
            return seen, pending
        time.sleep(0.1)


def inbox_copies(server: RunningServer, user: str, internet_message_id: str) -> int:
    """How many messages with this internetMessageId are in ``user``'s Inbox."""
    quoted = internet_message_id.replace("'", "''")
    with server.client(server.token(user)) as c:
        r = c.get(
            "/me/mailFolders/inbox/messages",
            params={"$filter": f"internetMessageId eq '{quoted}'", "$count": "true", "$top": "5"},
        )
    assert r.status_code == 200, r.text
    return int(r.json()["@odata.count"])


def inbox_subjects(server: RunningServer, user: str, prefix: str) -> list[dict[str, Any]]:
    quoted = prefix.replace("'", "''")
    with server.client(server.token(user)) as c:
        r = c.get(
            "/me/mailFolders/inbox/messages",
            params={"$filter": f"startswith(subject,'{quoted}')", "$top": "100"},
        )
    assert r.status_code == 200, r.text
    return list(r.json()["value"])


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class FdWatch:
    """The server process's open file descriptors, against a baseline taken when warm.

    Pools (relay connections, database connections) may open a few more later: ``slack``
    allows for them; a leak of one socket per attempt grows far past it.
    """

    pid: int
    baseline: int = 0
    slack: int = 40  # up to 16 pooled relay connections and 10 database connections

    def __post_init__(self) -> None:
        self.baseline = open_fds(self.pid)

    def settled(self, timeout: float = 10.0) -> int:
        """The count once back within the slack (or the last count seen at the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            count = open_fds(self.pid)
            if count <= self.baseline + self.slack or time.monotonic() > deadline:
                return count
            time.sleep(0.2)


@dataclass
class LogWatch:
    """What the server wrote to its log since this watch was made."""

    path: Path
    start: int = 0

    def __post_init__(self) -> None:
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> str:
        with self.path.open("rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace")

    def tracebacks(self) -> int:
        return self.text().count(TRACEBACK)

    def storm(self, most: int) -> str | None:
        """None if the log holds at most ``most`` tracebacks, else what to report (an error
        repeated faster than the retry policy allows, a loop, writes hundreds)."""
        text = self.text()
        count = text.count(TRACEBACK)
        if count <= most:
            return None
        at = text.find(TRACEBACK)
        last = text.find("\n2", at)  # the next log record starts with the date
        first = text[at : last if last > 0 else at + 2000][-1200:]
        return f"{count} tracebacks in the server log (at most {most}); the first ends:\n{first}"


def nested_multipart(depth: int) -> bytes:
    """A text part inside ``depth`` nested multiparts (deeper than the stdlib can recurse)."""
    part = b"Content-Type: text/plain\r\n\r\nthe innermost text"
    for i in range(depth):
        b = b"b%d" % i
        part = (
            b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
            + part + b"\r\n--" + b + b"--\r\n"
        )  # fmt: skip
    return part
