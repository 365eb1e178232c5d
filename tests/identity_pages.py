"""Helpers for the identity platform's tests: the demo tenant's sign-in values, a sign-in
page's form read as a person's browser would (hidden fields, action), and grants expired in
the database as time would."""

from __future__ import annotations

import asyncio
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import asyncpg

from tests.mail_api import DEMO_TENANT

DEMO = DEMO_TENANT
DEMO_CLIENT = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"  # the demo tenant's public client
DEMO_PASSWORD = "graphpost-demo"  # every demo user's
MAIL_READ = "https://graph.microsoft.com/Mail.Read"


class FormReader(HTMLParser):
    """The first form of a page: its action and the values of its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
            self._in_form = True
        elif tag == "input" and self._in_form and "name" in values:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def read_form(html: str) -> tuple[str, dict[str, str]]:
    reader = FormReader()
    reader.feed(html)
    assert reader.action is not None, html[:500]
    return reader.action, reader.fields


def expire_grants(data_dir: Path, database_url: str | None, kind: str) -> None:
    """Move every grant of ``kind`` past its expiry (as the clock would, ten minutes on)."""
    sql = "UPDATE identity_grants SET expires_at = 1 WHERE kind = "
    if database_url is None:
        with sqlite3.connect(data_dir / "graphpost.sqlite3") as db:
            db.execute(sql + "?", (kind,))
        return

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(sql + "$1", kind)
        finally:
            await conn.close()

    asyncio.run(run())
