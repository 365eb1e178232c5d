"""A delta sync client over real HTTP: rounds of a folder's messages (or a mailbox's folders),
applied to a local copy the way a mail client keeps one."""

from __future__ import annotations

from typing import Any

import httpx


class DeltaSync:
    """Follows ``@odata.nextLink`` to the ``@odata.deltaLink`` each round, keeping ``items``
    (id → the last state seen) and the link the next round starts from."""

    def __init__(self, client: httpx.Client, start: str, *, page_size: int = 2) -> None:
        self.client = client
        self.link = start
        self.page_size = page_size
        self.items: dict[str, dict[str, Any]] = {}
        self.pages = 0

    def page(self, url: str) -> dict[str, Any]:
        r = self.client.get(url, headers={"Prefer": f"odata.maxpagesize={self.page_size}"})
        assert r.status_code == 200, r.text
        assert r.headers["preference-applied"] == f"odata.maxpagesize={self.page_size}"
        body: dict[str, Any] = r.json()
        assert len(body["value"]) <= self.page_size
        assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body), body
        self.pages += 1
        return body

    def round(self) -> list[dict[str, Any]]:
        """One round: every page until the deltaLink; what it returned, in order."""
        seen: list[dict[str, Any]] = []
        url = self.link
        for _ in range(10_000):
            body = self.page(url)
            for item in body["value"]:
                seen.append(item)
                if "@removed" in item:
                    assert item["@removed"] == {"reason": "deleted"}
                    self.items.pop(item["id"], None)
                else:
                    self.items[item["id"]] = item
            if "@odata.deltaLink" in body:
                self.link = body["@odata.deltaLink"]
                return seen
            url = body["@odata.nextLink"]
        raise AssertionError("a round that never ends")


def server_view(client: httpx.Client, folder: str) -> dict[str, str]:
    """id → change key of every message in the folder, as the server lists them now."""
    found: dict[str, str] = {}
    url: str | None = f"/me/mailFolders/{folder}/messages?$select=id&$top=1000"
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        found.update((m["id"], m["@odata.etag"]) for m in body["value"])
        url = body.get("@odata.nextLink")
    return found
