"""Delta sync: a full initial sync of a large Inbox in pages of 1,000 (messages a second), then
incremental rounds after 100 changes (the time of the round). The client reads each page as a
sync client that keeps the items' JSON by id: every byte received, decoded into ids, removals
and links (a typed decode), not into a dict per message. Run by ``python -m bench
--only-delta``."""

from __future__ import annotations

import http.client
import json
import statistics
import time
import urllib.parse
from typing import Any

import msgspec

PAGE = 1000


class Item(msgspec.Struct):
    id: str
    removed: dict[str, str] | None = msgspec.field(default=None, name="@removed")


class Page(msgspec.Struct):
    value: list[Item]
    next_link: str | None = msgspec.field(default=None, name="@odata.nextLink")
    delta_link: str | None = msgspec.field(default=None, name="@odata.deltaLink")


_page = msgspec.json.Decoder(Page).decode
CHANGES = 100
ROUNDS = 5


class Client:
    """One keep-alive HTTP connection, as a sync client holds."""

    def __init__(self, base: str, token: str) -> None:
        self.netloc = urllib.parse.urlsplit(base).netloc
        self.conn = http.client.HTTPConnection(self.netloc, timeout=600)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request(self, method: str, url: str, body: object | None = None,
                prefer: str | None = None, page: bool = False) -> Any:  # fmt: skip
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = dict(self.headers)
        if prefer:
            headers["Prefer"] = prefer
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {url}: {r.status} {raw[:300]!r}")
        if page:
            return _page(raw)
        return msgspec.json.decode(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def sync_round(client: Client, link: str) -> tuple[int, str, int]:
    """Every page of a round: items seen, the deltaLink, pages."""
    seen = pages = 0
    url = link
    while True:
        body = client.request("GET", url, prefer=f"odata.maxpagesize={PAGE}", page=True)
        pages += 1
        seen += len(body.value)
        if body.delta_link is not None:
            return seen, body.delta_link, pages
        url = body.next_link


def run(base: str, token: str, expected: int) -> dict[str, Any]:
    """The initial sync of the Inbox, then ROUNDS incremental rounds each after CHANGES
    changes (read state flipped on messages across the folder)."""
    client = Client(base, token)
    try:
        start = f"{base}/v1.0/me/mailFolders/inbox/messages/delta"
        t0 = time.perf_counter()
        seen, link, pages = sync_round(client, start)
        initial = time.perf_counter() - t0
        if seen < expected:
            raise RuntimeError(f"the initial sync saw {seen} of {expected} messages")
        listing = f"{base}/v1.0/me/mailFolders/inbox/messages?$select=id&$top=1000"
        ids = [m["id"] for m in client.request("GET", listing)["value"]]
        times: list[float] = []
        for n in range(ROUNDS):
            for i in range(CHANGES):
                target = ids[(n * CHANGES + i) % len(ids)]
                client.request("PATCH", f"{base}/v1.0/me/messages/{target}",
                               {"isRead": n % 2 == 0})  # fmt: skip
            t1 = time.perf_counter()
            got, link, _ = sync_round(client, link)
            times.append(time.perf_counter() - t1)
            if got != CHANGES:
                raise RuntimeError(f"an incremental round saw {got} of {CHANGES} changes")
        return {
            "messages": seen,
            "pages": pages,
            "initial_s": initial,
            "rate": seen / initial,
            "incremental_ms": [1000 * t for t in times],
            "incremental_median_ms": 1000 * statistics.median(times),
        }
    finally:
        client.close()
