"""N API processes over one PostgreSQL (`graphpost serve --workers 2`): every process serves
the same mailboxes, and counts stay exact whichever process took the request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import start_server


def test_two_api_processes(tmp_path: Path, pg_database: str) -> None:
    server = start_server(tmp_path / "srv", pg_database, args=("--workers", "2"))
    try:
        user = "DiegoS@contoso.onmicrosoft.com"
        token = server.token(user)
        with server.client(token) as c:
            folder = c.post("/me/mailFolders", json={"displayName": "scale-out"}).json()["id"]

        def create(n: int) -> int:
            with server.client(token) as c:
                r = c.post(f"/me/mailFolders/{folder}/messages",
                           json={"subject": f"n{n}", "isRead": n % 2 == 0})  # fmt: skip
                return r.status_code

        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(create, range(60)))
        assert codes == [201] * 60
        with server.client(token) as c:
            f = c.get(f"/me/mailFolders/{folder}").json()
            assert (f["totalItemCount"], f["unreadItemCount"]) == (60, 30)
            listed = c.get(f"/me/mailFolders/{folder}/messages?$count=true&$top=1").json()
            assert listed["@odata.count"] == 60
    finally:
        server.stop()
