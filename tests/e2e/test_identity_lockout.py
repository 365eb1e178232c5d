"""Lock-out is counted in the database: it holds across API processes."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import drop_pg_database, make_pg_database, start_server
from tests.identity_pages import DEMO, DEMO_CLIENT, DEMO_PASSWORD, MAIL_READ


def test_lock_out_holds_across_processes(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two API processes on one PostgreSQL database: failures counted by either lock the user
    out on both (the count is in the database, not in a process)."""
    name, url = make_pg_database(pg_admin_url)
    server = start_server(tmp_path_factory.mktemp("pw-workers"), url, args=("--workers", "2"))
    try:
        form = {"grant_type": "password", "client_id": DEMO_CLIENT, "scope": MAIL_READ,
                "username": f"AllanD@{DEMO}"}  # fmt: skip
        token_url = f"{server.base}/{DEMO}/oauth2/v2.0/token"
        codes = []
        for _ in range(8):  # new connections: spread over both processes
            with httpx.Client(timeout=30) as c:
                r = c.post(token_url, data={**form, "password": "wrong"})
                codes.append(r.json()["error_codes"][0])
        assert codes[:5] == [50126] * 5 and set(codes[5:]) == {50053}
        for _ in range(4):
            with httpx.Client(timeout=30) as c:
                r = c.post(token_url, data={**form, "password": DEMO_PASSWORD})
                assert r.json()["error_codes"] == [50053]
    finally:
        server.stop()
        drop_pg_database(pg_admin_url, name)
