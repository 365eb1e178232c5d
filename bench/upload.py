"""Large attachments: a file uploaded in parts (one part cut off mid-body and resumed), sent to
an external recipient (the sink) and a local one (their Inbox), and the server's peak RSS during
each step. Run by ``python -m bench --only-upload``."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
ALEX = "AlexW@contoso.onmicrosoft.com"


Answer = tuple[int, dict[str, str], bytes]


def _request(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.netloc, timeout=600)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def api(method: str, url: str, token: str, body: object | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = _request(method, url, data, {
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})  # fmt: skip
    if status >= 300:
        raise RuntimeError(f"{method} {url}: {status} {raw[:300]!r}")
    return json.loads(raw) if raw else None


def part(url: str, data: bytes, first: int, total: int) -> Answer:
    return _request("PUT", url, data, {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {first}-{first + len(data) - 1}/{total}"})  # fmt: skip


def cut_off(url: str, data: bytes, first: int, total: int) -> None:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.netloc.split(":")
    head = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Length: {len(data)}\r\n"
        f"Content-Range: bytes {first}-{first + len(data) - 1}/{total}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(head + data[: len(data) // 2])
        s.shutdown(socket.SHUT_WR)
        s.settimeout(60)
        while s.recv(65536):
            pass


def upload_file(base: str, token: str, size: int, chunk: int, to: list[str]) -> tuple[str, float]:
    """Upload ``size`` random bytes in ``chunk`` parts into a new draft to ``to`` (one part cut
    off mid-body at half-way, then sent again); the draft's id and the seconds it took."""
    v1 = f"{base}/v1.0"
    draft = api("POST", f"{v1}/me/messages", token, {
        "subject": f"upload bench {time.time()}",
        "toRecipients": [{"emailAddress": {"address": a}} for a in to]})  # fmt: skip
    session = api("POST", f"{v1}/me/messages/{draft['id']}/attachments/createUploadSession",
                  token, {"AttachmentItem": {"attachmentType": "file", "name": "big.bin",
                                             "size": size}})  # fmt: skip
    url = session["uploadUrl"]
    t0 = time.perf_counter()
    first = 0
    broken = False
    while first < size:
        data = os.urandom(min(chunk, size - first))  # the client's memory, not the server's
        if not broken and first >= size // 2:
            cut_off(url, data, first, size)
            broken = True
        status, _, raw = part(url, data, first, size)
        if status not in (200, 201):
            raise RuntimeError(f"part at {first}: {status} {raw[:300]!r}")
        first += len(data)
    return str(draft["id"]), time.perf_counter() - t0


def download(base: str, token: str, message_id: str) -> tuple[int, float]:
    """GET the draft's one attachment's $value, read 1 MiB at a time; (bytes, seconds)."""
    v1 = f"{base}/v1.0/me/messages/{message_id}/attachments"
    [att] = api("GET", f"{v1}?$select=id", token)["value"]
    parts = urllib.parse.urlsplit(f"{v1}/{att['id']}/$value")
    conn = http.client.HTTPConnection(parts.netloc, timeout=600)
    t0 = time.perf_counter()
    try:
        conn.request("GET", parts.path, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        got = 0
        while block := r.read(MIB):
            got += len(block)
    finally:
        conn.close()
    return got, time.perf_counter() - t0


def send(base: str, token: str, message_id: str) -> None:
    api("POST", f"{base}/v1.0/me/messages/{message_id}/send", token)


def wait_until(check: Callable[[], bool], timeout: float = 900) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.2)
    return time.monotonic() - t0


def inbox_has(base: str, alex_token: str, subject_prefix: str) -> bool:
    q = urllib.parse.quote(f"startswith(subject,'{subject_prefix}')")
    found = api("GET", f"{base}/v1.0/me/mailFolders/inbox/messages?$filter={q}&$select=id",
                alex_token)  # fmt: skip
    return bool(found["value"])


__all__ = ["MIB", "download", "inbox_has", "send", "upload_file", "wait_until"]


if __name__ == "__main__":  # pragma: no cover - a manual run against a server
    print(Path(__file__).name)
