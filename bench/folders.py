"""Whole-folder operations over HTTP (``python -m bench --only-folders``): a deep copy and a
permanentDelete of a folder of N messages (rate, and the slowest draft another client created
meanwhile: the bounded transactions leave the writer to others), a search folder over 2N
messages (list and counts), and a $filter over a folder's 500 children."""

from __future__ import annotations

import base64
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

ATTACHMENT = base64.b64encode(b"x" * 100_000).decode()


def client(base: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base}/v1.0", headers={"Authorization": f"Bearer {token}"}, timeout=600
    )


def folder(c: httpx.Client, parent: str, name: str, **more: Any) -> dict[str, Any]:
    r = c.post(f"/me/mailFolders/{parent}/childFolders", json={"displayName": name, **more})
    r.raise_for_status()
    return dict(r.json())


def fill(base: str, token: str, folder_id: str, count: int) -> None:
    """``count`` drafts in the folder, one in ten with a 100 KB attachment (16 clients, each
    on one connection)."""
    local = threading.local()

    def one(n: int) -> None:
        if not hasattr(local, "c"):
            local.c = client(base, token)
        body: dict[str, Any] = {"subject": f"bench {n} {'digest' if n % 4 == 0 else ''}"}
        if n % 10 == 0:
            body["attachments"] = [{"@odata.type": "#microsoft.graph.fileAttachment",
                                    "name": f"{n}.bin", "contentBytes": ATTACHMENT}]  # fmt: skip
        local.c.post(f"/me/mailFolders/{folder_id}/messages", json=body).raise_for_status()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))


def while_writing(base: str, token: str, work: Callable[[], None]) -> tuple[float, float, int]:
    """Run ``work``; meanwhile another client creates drafts one after another. Its seconds,
    the slowest draft's and the median draft's milliseconds, and how many were made."""
    done = threading.Event()
    latencies: list[float] = []

    def drafts() -> None:
        with client(base, token) as c:
            while not done.is_set():
                t = time.perf_counter()
                c.post("/me/messages", json={"subject": "beside"}).raise_for_status()
                latencies.append((time.perf_counter() - t) * 1000)

    side = threading.Thread(target=drafts)
    side.start()
    t0 = time.perf_counter()
    try:
        work()
    finally:
        elapsed = time.perf_counter() - t0
        done.set()
        side.join()
    return elapsed, max(latencies or [0.0]), len(latencies)


def median_ms(c: httpx.Client, path: str, params: dict[str, str], runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        c.get(path, params=params).raise_for_status()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def run(base: str, token: str, count: int) -> list[tuple[str, float, str]]:
    """(scenario, value, unit/note) rows."""
    rows: list[tuple[str, float, str]] = []
    with client(base, token) as c:
        src = folder(c, "inbox", "bench source")
        dest = folder(c, "inbox", "bench copies")
        t = time.perf_counter()
        fill(base, token, src["id"], count)
        rows.append(
            ("fill: drafts created, 16 clients", count / (time.perf_counter() - t), "messages/s")
        )
        copied: dict[str, Any] = {}

        def copy() -> None:
            r = c.post(f"/me/mailFolders/{src['id']}/copy", json={"destinationId": dest["id"]})
            r.raise_for_status()
            copied.update(r.json())

        seconds, slowest, made = while_writing(base, token, copy)
        assert copied["totalItemCount"] == count, copied
        rows.append(
            (
                f"copy a folder of {count:,} messages",
                count / seconds,
                f"messages/s; {seconds:.1f} s",
            )
        )
        rows.append(
            ("  a draft created meanwhile: slowest", slowest, f"ms; {made} drafts during the copy")
        )
        sf = c.post(
            f"/me/mailFolders/{dest['id']}/childFolders",
            json={
                "@odata.type": "microsoft.graph.mailSearchFolder",
                "displayName": "bench digests",
                "sourceFolderIds": [src["id"], copied["id"]],
                "includeNestedFolders": True,
                "filterQuery": "contains(subject, 'digest')",
            },
        ).json()
        rows.append(
            (
                f"search folder over {2 * count:,}: GET (live counts)",
                median_ms(c, f"/me/mailFolders/{sf['id']}", {}),
                "ms, median of 20",
            )
        )
        rows.append(
            (
                f"search folder over {2 * count:,}: messages $top=50",
                median_ms(c, f"/me/mailFolders/{sf['id']}/messages", {"$top": "50"}),
                "ms, median of 20",
            )
        )
        rows.append(
            (
                f"messages/$count of a {count:,}-message folder, $filter",
                median_ms(
                    c,
                    f"/me/mailFolders/{src['id']}/messages/$count",
                    {"$filter": "hasAttachments eq true"},
                ),
                "ms, median of 20",
            )
        )
        many = folder(c, "inbox", "bench many")

        for n in range(500):
            folder(c, many["id"], f"child {n:03}")
        rows.append(
            (
                "childFolders of 500: $filter displayName eq",
                median_ms(
                    c,
                    f"/me/mailFolders/{many['id']}/childFolders",
                    {"$filter": "displayName eq 'child 250'"},
                ),
                "ms, median of 20",
            )
        )

        def purge() -> None:
            c.post(f"/me/mailFolders/{copied['id']}/permanentDelete").raise_for_status()

        seconds, slowest, made = while_writing(base, token, purge)
        rows.append(
            (
                f"permanentDelete a folder of {count:,} messages",
                count / seconds,
                f"messages/s; {seconds:.1f} s",
            )
        )
        rows.append(
            (
                "  a draft created meanwhile: slowest",
                slowest,
                f"ms; {made} drafts during the delete",
            )
        )
    return rows
