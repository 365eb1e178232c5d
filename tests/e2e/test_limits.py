"""Limits that protect the server, tried with real sockets as a hostile client would: slow
headers, stalled bodies, too many connections, a client that never reads; private files."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.conftest import RunningServer, start_server

MAX_CONNECTIONS = 8


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """SQLite, with short HTTP deadlines and a small connection cap."""
    running = start_server(
        tmp_path_factory.mktemp("limits"),
        GRAPHPOST_HTTP_HEADER_TIMEOUT_SECONDS="1",
        GRAPHPOST_HTTP_BODY_TIMEOUT_SECONDS="1",
        GRAPHPOST_HTTP_IDLE_TIMEOUT_SECONDS="1",
        GRAPHPOST_HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    )
    yield running
    running.stop()


def connect(server: RunningServer) -> socket.socket:
    host, port = server.base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server writes until it closes (socket timeout: the test fails)."""
    data = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return bytes(data)
        if not chunk:
            return bytes(data)
        data += chunk


def open_fds(server: RunningServer) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def still_serves(server: RunningServer) -> None:
    with server.client() as c:
        assert c.get("/me/mailFolders/inbox").status_code == 200


def test_half_a_request_line_is_disconnected(strict_server: RunningServer) -> None:
    with connect(strict_server) as sock:
        sock.sendall(b"GET /v1.0/me/mes")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert msgspec.json.decode(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == (
        "RequestTimeout"
    )
    still_serves(strict_server)


def test_silent_connection_is_closed(strict_server: RunningServer) -> None:
    with connect(strict_server) as sock:
        assert read_until_closed(sock) == b""


def test_headers_trickled_byte_by_byte_are_cut_off(strict_server: RunningServer) -> None:
    """Each byte resets no timer: the whole head has one deadline."""
    head = b"GET /v1.0/me/messages HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
    with connect(strict_server) as sock:
        closed = False
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)  # 200+ bytes: ten times the deadline if nothing cut it
        if not closed:
            sock.settimeout(5)
            assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_oversized_headers_get_431(strict_server: RunningServer) -> None:
    """Megabytes of headers sent fast (within the deadline) are not all kept: 431 at 64 KB."""
    before = open_fds(strict_server)
    with connect(strict_server) as sock:
        sock.sendall(b"GET /v1.0/me HTTP/1.1\r\nHost: x\r\n")
        with contextlib.suppress(OSError):  # the server closes while we still send
            for i in range(500):
                sock.sendall(b"X-%d: %s\r\n" % (i, b"a" * 20_000))
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert open_fds(strict_server) <= before + 1
    # a request with a large but reasonable head (a long token, many headers) still works
    with strict_server.client() as c:
        extra = {f"x-h{i}": "v" * 500 for i in range(60)}
        assert c.get("/me/mailFolders/inbox", headers=extra).status_code == 200


def test_stalled_body_gets_408(strict_server: RunningServer) -> None:
    token = strict_server.token()
    head = (
        f"POST /v1.0/me/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    with connect(strict_server) as sock:
        sock.sendall(head.encode() + b'{"subject": "st')
        answer = read_until_closed(sock)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    error = msgspec.json.decode(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "RequestTimeout" and "request-id" in error["innerError"]
    # nothing half-written: no draft with that subject
    with strict_server.client() as c:
        drafts = c.get("/me/mailFolders/drafts/messages", params={"$top": "1000"}).json()
        assert not [m for m in drafts["value"] if m["subject"].startswith("st")]


def test_trickled_body_gets_408(strict_server: RunningServer) -> None:
    """A body sent a byte at a time, faster than any per-read timeout, still ends."""
    token = strict_server.token()
    body = b'{"subject": "' + b"s" * 200 + b'"}'
    head = (
        f"POST /v1.0/me/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with connect(strict_server) as sock:
        sock.sendall(head.encode())
        for byte in body:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.05)
        sock.settimeout(5)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_connection_cap_refuses_extra_connections(strict_server: RunningServer) -> None:
    held = [connect(strict_server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.2)  # let the server accept them all
        with connect(strict_server) as extra:
            answer = read_until_closed(extra)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1" in answer.lower()
    finally:
        for sock in held:
            sock.close()
    # once they are gone (closed by us or by the deadline) the server answers again
    deadline = time.monotonic() + 10
    while True:
        try:
            still_serves(strict_server)
            break
        except (AssertionError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_slowloris_flood_leaves_no_descriptors(strict_server: RunningServer) -> None:
    still_serves(strict_server)
    before = open_fds(strict_server)
    socks = []
    for _ in range(200):
        sock = connect(strict_server)
        with contextlib.suppress(OSError):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        socks.append(sock)
    assert open_fds(strict_server) <= before + MAX_CONNECTIONS + 64  # accepted, then refused
    for sock in socks:
        sock.settimeout(10)
        read_until_closed(sock)  # every one is closed by the server
        sock.close()
    deadline = time.monotonic() + 10
    while open_fds(strict_server) > before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_fds(strict_server) <= before
    still_serves(strict_server)


def test_client_that_never_reads_is_dropped(strict_server: RunningServer) -> None:
    """A client that stops reading large answers does not hold its connection: the server
    drops it instead of waiting forever to write."""
    token = strict_server.token()
    request = (
        f"GET /v1.0/me/messages?$top=1000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
        "\r\n\r\n"
    ).encode()
    with strict_server.client() as c:  # enough mail that the answers fill the socket buffers
        for _ in range(40):
            r = c.post("/me/messages", json={"subject": "big", "body": {"content": "x" * 60_000}})
            assert r.status_code == 201
    host, port = strict_server.base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(15)
    sock.connect((host, int(port)))
    with sock:
        for _ in range(50):  # pipelined, about 100 MB of answers
            sock.sendall(request)
        time.sleep(4)  # the idle deadline is 1 s; meanwhile we read nothing
        got = read_until_closed(sock)  # ends: the server gave up (without it: socket timeout)
    assert got.count(b"HTTP/1.1 200 OK") < 50
    still_serves(strict_server)


def test_data_directory_files_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "private"
    old = os.umask(0o022)  # a usual umask: without care the files would be 0644
    try:
        server = start_server(data_dir)
    finally:
        os.umask(old)
    try:
        with server.client() as c:
            assert c.post("/me/messages", json={"subject": "x"}).status_code == 201
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        names = {"graphpost.sqlite3", "graphpost.sqlite3-wal", "graphpost.sqlite3-shm"}
        names.add("signing-key.pem")
        for name in names:
            path = data_dir / name
            assert path.exists(), name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    finally:
        server.stop()
