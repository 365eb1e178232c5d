"""The attachment surface attacked as a hostile user, over real HTTP on both engines: upload
URLs, blob storage, streamed sends. Kept: the attacks that found a bug (regressions) and a few
strong ones that found none."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import assert_error, unique
from tests.sink import Sink, wait_for

MIB = 1024 * 1024
_BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")


def draft(c: httpx.Client, subject: str, *to: str) -> dict[str, Any]:
    r = c.post(
        "/me/messages",
        json={"subject": subject, "toRecipients": [{"emailAddress": {"address": a}} for a in to]},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def upload_url(c: httpx.Client, message_id: str, size: int, **item: Any) -> str:
    body = {"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": size, **item}}
    r = c.post(f"/me/messages/{message_id}/attachments/createUploadSession", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["uploadUrl"])


def upload(url: str, data: bytes, chunk: int = 2 * MIB) -> httpx.Response:
    r: httpx.Response | None = None
    for first in range(0, len(data), chunk):
        part = data[first : first + chunk]
        r = httpx.put(
            url,
            content=part,
            headers={"Content-Range": f"bytes {first}-{first + len(part) - 1}/{len(data)}"},
            timeout=60,
        )
        assert r.status_code == (201 if first + chunk >= len(data) else 200), r.text
    assert r is not None
    return r


def test_a_streamed_send_never_gives_the_relay_a_bare_line_end(
    server: RunningServer, sink: Sink
) -> None:
    """SMTP smuggling: a file attached as ``message/rfc822`` goes out as it is (not base64),
    and a message over 4 MiB is streamed to the relay. Its bytes held ``<CR>.<CR><LF>`` and
    ``<LF>.<LF>`` followed by SMTP commands, which a lenient relay reads as the end of DATA and
    a second, forged message. Every line end must reach the relay as CRLF (the small path,
    aiosmtplib's ``data``, always did so)."""
    smuggled = (
        b"\r.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
        b"Subject: forged\r\n\r\nwire the money\r\n.\r\n"
        b"\n.\nMAIL FROM:<ceo@bank.example>\n"
    )
    data = b"Subject: inner\r\nFrom: a@b.example\r\n\r\n" + smuggled
    data += (b"filler line\r\n" * (5 * MIB // 13))[: 5 * MIB - len(data)]
    subject = unique("smuggle")
    outside = f"{unique('far')}@example.net"
    with server.client() as c:
        made = draft(c, subject, outside)
        upload(upload_url(c, made["id"], len(data), contentType="message/rfc822"), data)
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [received] = wait_for(lambda: sink.messages_for(outside), what="the relayed copy")
    assert _BARE_LINE_END.search(received.data) is None
    # the bytes arrived, as lines of the attached message (the sink removed the stuffing)
    assert b"\r\n.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:" in received.data


# ---------------------------------------------------------------- a blob directory of its own


@pytest.fixture(scope="module")
def dir_server(
    tmp_path_factory: pytest.TempPathFactory, sink: Sink
) -> Iterator[tuple[RunningServer, Path]]:
    data_dir = tmp_path_factory.mktemp("attack-blobs")
    blobs = data_dir / "blobs"
    running = start_server(data_dir, relay=sink.url, GRAPHPOST_BLOB_DIR=str(blobs))
    yield running, blobs
    running.stop()


def _uploaded(server: RunningServer, data: bytes, *to: str) -> tuple[str, str]:
    """A draft with ``data`` uploaded as its one attachment: (message id, attachment id)."""
    with server.client() as c:
        made = draft(c, unique("blob"), *to)
        done = upload(upload_url(c, made["id"], len(data)), data)
    return made["id"], done.headers["location"].rsplit("attachments('", 1)[1].rstrip("')")


def _read_whole(server: RunningServer, path: str) -> tuple[int, bytes] | None:
    """Status and body of a GET, or None when the server cut the body short."""
    with server.client() as c:
        try:
            r = c.get(path)
        except httpx.HTTPError:
            return None
    return r.status_code, r.content


def test_a_corrupted_blob_file_is_never_served_as_the_attachment(
    dir_server: tuple[RunningServer, Path],
) -> None:
    """A file in GRAPHPOST_BLOB_DIR whose bytes changed (same length) is not served whole as
    if it were the attachment: the read checks the SHA-256 its name promises."""
    server, blobs = dir_server
    data = os.urandom(3 * MIB + 11)
    digest = hashlib.sha256(data).hexdigest()
    mid, aid = _uploaded(server, data)
    path = blobs / digest[:2] / digest
    assert path.read_bytes() == data
    bad = bytearray(data)
    bad[2 * MIB + 5] ^= 0xFF
    path.write_bytes(bytes(bad))
    got = _read_whole(server, f"/me/messages/{mid}/attachments/{aid}/$value")
    assert got is None or got[0] != 200, "corrupted bytes served as the attachment"
    assert got is None or bytes(bad) != got[1]
    # the server is fine otherwise, and the file restored reads again
    path.write_bytes(data)
    assert _read_whole(server, f"/me/messages/{mid}/attachments/{aid}/$value") == (200, data)


def test_a_removed_blob_file(dir_server: tuple[RunningServer, Path]) -> None:
    """A file removed under the server: reading the attachment is a clear error (never a 200
    of nothing), sending it is refused or deferred, never relayed without it."""
    server, blobs = dir_server
    data = os.urandom(3 * MIB + 13)
    digest = hashlib.sha256(data).hexdigest()
    mid, aid = _uploaded(server, data)
    (blobs / digest[:2] / digest).unlink()
    got = _read_whole(server, f"/me/messages/{mid}/attachments/{aid}/$value")
    assert got is None or got[0] == 503, got
    with server.client() as c:
        r = c.get(f"/me/messages/{mid}/attachments/{aid}", params={"$select": "contentBytes"})
        assert_error(r, 503, "ServiceUnavailable")
        # a send of it (a small message: built in memory) is refused; the draft stays a draft
        assert (
            c.patch(
                f"/me/messages/{mid}",
                json={
                    "toRecipients": [{"emailAddress": {"address": f"{unique('far')}@example.net"}}]
                },
            ).status_code
            == 200
        )
        assert_error(c.post(f"/me/messages/{mid}/send"), 503, "ServiceUnavailable")
        assert c.get(f"/me/messages/{mid}").json()["isDraft"] is True
    # a large one (streamed from the blob into a staged MIME): the same, nothing staged is kept
    big = os.urandom(5 * MIB)
    mid, _ = _uploaded(server, big, f"{unique('far')}@example.net")
    _file(blobs, big).unlink()
    with server.client() as c:
        assert_error(c.post(f"/me/messages/{mid}/send"), 503, "ServiceUnavailable")
        assert c.get(f"/me/messages/{mid}").json()["isDraft"] is True
    assert [p.name for p in (blobs / "uploads").iterdir() if p.name.endswith(".whole")] == []


def _file(blobs: Path, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return blobs / digest[:2] / digest


def test_shared_bytes_are_freed_by_the_last_delete_and_no_earlier(
    dir_server: tuple[RunningServer, Path],
) -> None:
    """The same bytes attached to four messages (three POSTs, a copy), then let go one way
    after another (attachment DELETE, message delete into Deleted Items and for good, the
    copy's own delete): the file stays, and reads whole, until the last user is gone."""
    server, blobs = dir_server
    data = os.urandom(2 * MIB)
    b64 = base64.b64encode(data).decode()
    with server.client() as c:
        users: list[tuple[str, str]] = []
        for _ in range(3):
            m = draft(c, unique("shared"))
            r = c.post(
                f"/me/messages/{m['id']}/attachments",
                json={"@odata.type": "#microsoft.graph.fileAttachment", "name": "s.bin",
                      "contentBytes": b64},
            )  # fmt: skip
            assert r.status_code == 201, r.text
            users.append((m["id"], r.json()["id"]))
        r = c.post(f"/me/messages/{users[0][0]}/copy", json={"destinationId": "drafts"})
        assert r.status_code == 201, r.text
        [copied] = c.get(f"/me/messages/{r.json()['id']}/attachments").json()["value"]
        users.append((r.json()["id"], copied["id"]))
        path = _file(blobs, data)

        def still_whole(left: list[tuple[str, str]]) -> None:
            assert path.exists()
            for mid, aid in left:
                got = c.get(f"/me/messages/{mid}/attachments/{aid}/$value")
                assert got.status_code == 200 and got.content == data

        still_whole(users)
        assert c.delete(f"/me/messages/{users[0][0]}/attachments/{users[0][1]}").status_code == 204
        still_whole(users[1:])
        assert c.delete(f"/me/messages/{users[1][0]}").status_code == 204  # Deleted Items
        still_whole(users[1:])
        assert c.post(f"/me/messages/{users[1][0]}/permanentDelete").status_code == 204
        still_whole(users[2:])
        assert c.post(f"/me/messages/{users[2][0]}/permanentDelete").status_code == 204
        still_whole(users[3:])
        assert c.delete(f"/me/messages/{users[3][0]}/attachments/{users[3][1]}").status_code == 204
    wait_for(lambda: not path.exists(), timeout=90, what="the file removed after the last user")


def test_deleting_a_message_while_it_is_sent_keeps_its_bytes_until_delivered(
    dir_server: tuple[RunningServer, Path], sink: Sink
) -> None:
    """A large message accepted for sending, then its Sent Items copy deleted for good while
    the relay still refuses it for now: the delivery that follows carries the whole file, and
    only then does the file go."""
    server, blobs = dir_server
    data = os.urandom(5 * MIB + 1)
    outside = f"{unique('far')}@example.net"
    for _ in range(4):
        sink.answer(outside, "451 4.3.0 try again later")
    mid, _ = _uploaded(server, data, outside)
    with server.client() as c:
        assert c.post(f"/me/messages/{mid}/send").status_code == 202
        assert c.delete(f"/me/messages/{mid}").status_code == 204
        assert c.post(f"/me/messages/{mid}/permanentDelete").status_code == 204
    assert sink.messages_for(outside) == [], "delivered before the delete: no attack"
    [received] = wait_for(lambda: sink.messages_for(outside), timeout=60, what="the delivery")
    [part] = list(received.message.iter_attachments())
    assert part.get_payload(decode=True) == data
    wait_for(lambda: not _file(blobs, data).exists(), timeout=90, what="the file removed")


def test_a_message_deleted_mid_upload(dir_server: tuple[RunningServer, Path]) -> None:
    """The last part after the message was deleted for good: 404, nothing staged is left
    behind, the URL is over."""
    server, blobs = dir_server
    data = os.urandom(3 * MIB)
    with server.client() as c:
        made = draft(c, unique("gone"))
        url = upload_url(c, made["id"], len(data))
        r = httpx.put(
            url, content=data[:MIB], headers={"Content-Range": f"bytes 0-{MIB - 1}/{len(data)}"}
        )
        assert r.status_code == 200, r.text
        assert c.delete(f"/me/messages/{made['id']}").status_code == 204
        assert c.post(f"/me/messages/{made['id']}/permanentDelete").status_code == 204
    rest = data[MIB:]
    r = httpx.put(
        url, content=rest, headers={"Content-Range": f"bytes {MIB}-{len(data) - 1}/{len(data)}"}
    )
    assert_error(r, 404, "ErrorItemNotFound")
    assert_error(httpx.get(url), 404, "ErrorItemNotFound")
    sid = url.split("attachmentSessions('", 1)[1].split("'", 1)[0]
    assert [p.name for p in (blobs / "uploads").iterdir() if sid in p.name] == []
    assert not _file(blobs, data).exists()


@pytest.mark.parametrize("blob_dir", [True, False])
def test_kill_9_mid_upload_then_resume(tmp_path: Path, blob_dir: bool) -> None:
    """kill -9 with one part taken and the next one half sent; after the restart the session
    stands where its last whole part left it, and the file comes out whole."""

    def start(port: int | None = None) -> RunningServer:
        if blob_dir:
            return start_server(tmp_path / "srv", port=port, GRAPHPOST_BLOB_DIR=str(tmp_path / "b"))
        return start_server(tmp_path / "srv", port=port)

    data = os.urandom(5 * MIB + 7)
    server = start()
    port = int(server.base.rsplit(":", 1)[1])
    try:
        with server.client() as c:
            made = draft(c, unique("kill"))
            url = upload_url(c, made["id"], len(data))
        r = httpx.put(
            url,
            content=data[: 2 * MIB],
            headers={"Content-Range": f"bytes 0-{2 * MIB - 1}/{len(data)}"},
        )
        assert r.status_code == 200, r.text
        # the next part's head and half its body, then the kill
        parts = urlsplit(url)
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Length: {2 * MIB}\r\n"
            f"Content-Range: bytes {2 * MIB}-{4 * MIB - 1}/{len(data)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(head + data[2 * MIB : 3 * MIB])
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(10)
    finally:
        server.stop()
    server = start(port)
    try:
        state = httpx.get(url, timeout=30)
        assert state.status_code == 200, state.text
        assert state.json()["NextExpectedRanges"] == [str(2 * MIB)]
        first = 2 * MIB
        for first in range(2 * MIB, len(data), 2 * MIB):
            part = data[first : first + 2 * MIB]
            r = httpx.put(
                url,
                content=part,
                headers={"Content-Range": f"bytes {first}-{first + len(part) - 1}/{len(data)}"},
                timeout=60,
            )
        assert r.status_code == 201, r.text
        aid = r.headers["location"].rsplit("attachments('", 1)[1].rstrip("')")
        with server.client() as c:
            got = c.get(f"/me/messages/{made['id']}/attachments/{aid}/$value")
        assert got.status_code == 200 and got.content == data
    finally:
        server.stop()


def test_cancel_during_parts(server: RunningServer) -> None:
    """DELETE of the URL while parts are being PUT, at the same time, again and again: every
    answer is one of the documented ones (never a 500), and at the end the session is gone
    and the message has no attachment."""
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(3 * MIB)
    with server.client() as c:
        made = draft(c, unique("cancel race"))
        for _ in range(4):
            url = upload_url(c, made["id"], len(data))

            def part(n: int, url: str = url) -> int:
                first = n * MIB
                return httpx.put(
                    url,
                    content=data[first : first + MIB],
                    headers={"Content-Range": f"bytes {first}-{first + MIB - 1}/{len(data)}"},
                    timeout=60,
                ).status_code

            with ThreadPoolExecutor(3) as pool:
                puts = [pool.submit(part, n) for n in range(3)]

                def cancel_it(url: str = url) -> int:
                    return httpx.delete(url, timeout=60).status_code

                cancel = pool.submit(cancel_it)
                codes = [f.result() for f in puts]
                assert cancel.result() in (204, 404)
            assert set(codes) <= {200, 201, 404, 416}, codes
            if 201 not in codes:
                assert httpx.get(url).status_code == 404
        done = c.get(f"/me/messages/{made['id']}/attachments").json()["value"]
        # a session that finished before its cancel made its attachment, whole
        for a in done:
            got = c.get(f"/me/messages/{made['id']}/attachments/{a['id']}/$value")
            assert got.content == data


def test_the_last_part_sent_many_times_at_once(
    server: RunningServer, dir_server: tuple[RunningServer, Path]
) -> None:
    """The last part PUT by eight clients at the same moment (a client retrying on a timeout
    while the first try is still being finished): one makes the attachment, the others answer
    the same 201 or 416 (never a 500), and the message has exactly one whole file."""
    from concurrent.futures import ThreadPoolExecutor

    for srv in (server, dir_server[0]):
        for _ in range(3):
            data = os.urandom(3 * MIB + 1)
            with srv.client() as c:
                made = draft(c, unique("last part race"))
                url = upload_url(c, made["id"], len(data))
            head = httpx.put(
                url,
                content=data[: 2 * MIB],
                headers={"Content-Range": f"bytes 0-{2 * MIB - 1}/{len(data)}"},
            )
            assert head.status_code == 200, head.text
            rest = data[2 * MIB :]

            def last(_: int, url: str = url, rest: bytes = rest) -> httpx.Response:
                total = 2 * MIB + len(rest)
                return httpx.put(
                    url,
                    content=rest,
                    headers={"Content-Range": f"bytes {2 * MIB}-{total - 1}/{total}"},
                    timeout=60,
                )

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(last, range(8)))
            codes = sorted(r.status_code for r in answers)
            # a last part sent again answers the same 201 and Location (PUT is idempotent)
            assert 201 in codes and set(codes) <= {201, 416}, [
                r.text for r in answers if r.status_code not in (201, 416)
            ]
            assert len({r.headers["location"] for r in answers if r.status_code == 201}) == 1
            with srv.client() as c:
                [att] = c.get(f"/me/messages/{made['id']}/attachments").json()["value"]
                got = c.get(f"/me/messages/{made['id']}/attachments/{att['id']}/$value")
            assert got.content == data


def test_odd_upload_urls_and_headers_are_refused_cleanly(server: RunningServer) -> None:
    """Path traversal, injection and junk in every part of the upload URL and its headers:
    each is a 4xx in Graph's envelope (never a 500), and the session is untouched."""
    size = 3 * MIB
    with server.client() as c:
        made = draft(c, unique("odd urls"))
        url = upload_url(c, made["id"], size)
    base, token = url.split("?authtoken=", 1)
    sid = base.split("attachmentSessions('", 1)[1].split("'", 1)[0]
    odd = [
        base.replace(sid, "..%2F..%2F..%2Fetc%2Fpasswd") + f"?authtoken={token}",
        base.replace(sid, "x' OR '1'='1") + f"?authtoken={token}",
        base.replace(sid, "ü" * 300) + f"?authtoken={token}",
        base.replace(sid, "a" * 20000) + f"?authtoken={token}",
        base.replace(sid, "%00") + f"?authtoken={token}",
        f"{base}?authtoken=%00{token}",
        f"{base}?authtoken=%ED%A0%80",  # a lone surrogate's UTF-8
        f"{base}?authtoken=%FF%FE",  # not UTF-8
        f"{base}?authtoken=",
        f"{base}?authtoken={'A' * 10000}",
    ]
    for bad in odd:
        r = httpx.put(bad, content=b"x", headers={"Content-Range": f"bytes 0-0/{size}"})
        assert 400 <= r.status_code < 500 and r.status_code != 413, (bad[:120], r.text)
        if r.status_code != 431 and r.headers.get("content-type", "").startswith(
            "application/json"
        ):
            assert r.json()["error"]["code"]
    headers: list[dict[bytes, bytes] | dict[str, str]] = [
        {"Content-Range": f"bytes 0-0/{size}", "Content-Length": "abc"},
        {"Content-Range": f"bytes 0-{10**15}/{10**15}"},
        {"Content-Range": f"bytes 0-{10**16}/{10**16}"},
        {"Content-Range": f"bytes 1-0/{size}"},
        {"Content-Range": f"bytes 0-0/-{size}"},
        {"Content-Range": f"bytes 0-0/{size}, bytes 1-1/{size}"},
        {b"Content-Range": "bytes ٠-٠/٣".encode()},  # Arabic-Indic digits, as UTF-8
        {"Content-Range": f"bytes 0-0/{size}\t"},
        {"Content-Range": f"bytes */{size}"},
    ]
    for h in headers:
        try:
            r = httpx.put(url, content=b"x", headers=h)
        except httpx.HTTPError:
            continue  # the client would not send it
        assert r.status_code in (400, 416), (h, r.text)
        assert r.json()["error"]["code"]
    state = httpx.get(url)
    assert state.status_code == 200 and state.json()["NextExpectedRanges"] == ["0"]


def test_blob_storage_that_cannot_be_written(tmp_path: Path) -> None:
    """GRAPHPOST_BLOB_DIR broken under the server (its uploads directory or a fan-out
    directory replaced by a file: what a full or read-only disk looks like to the writer):
    a part, a JSON attachment and a send are a clear 503 (nothing half-written), and once the
    directory is back the same requests succeed."""
    blobs = tmp_path / "blobs"
    server = start_server(tmp_path / "srv", GRAPHPOST_BLOB_DIR=str(blobs))
    try:
        data = os.urandom(3 * MIB)
        with server.client() as c:
            made = draft(c, unique("broken dir"))
            url = upload_url(c, made["id"], len(data))
            (blobs / "uploads").rmdir()
            (blobs / "uploads").write_bytes(b"not a directory")
            part = {"Content-Range": f"bytes 0-{MIB - 1}/{len(data)}"}
            assert_error(
                httpx.put(url, content=data[:MIB], headers=part), 503, "ServiceUnavailable"
            )
            (blobs / "uploads").unlink()
            (blobs / "uploads").mkdir()
            assert httpx.get(url).json()["NextExpectedRanges"] == ["0"]
            assert httpx.put(url, content=data[:MIB], headers=part).status_code == 200

            small = os.urandom(1000)
            digest = hashlib.sha256(small).hexdigest()
            (blobs / digest[:2]).write_bytes(b"in the way")
            att = {"@odata.type": "#microsoft.graph.fileAttachment", "name": "s.bin",
                   "contentBytes": base64.b64encode(small).decode()}  # fmt: skip
            r = c.post(f"/me/messages/{made['id']}/attachments", json=att)
            assert_error(r, 503, "ServiceUnavailable")
            assert c.get(f"/me/messages/{made['id']}/attachments").json()["value"] == []
            (blobs / digest[:2]).unlink()
            r = c.post(f"/me/messages/{made['id']}/attachments", json=att)
            assert r.status_code == 201, r.text
            got = c.get(f"/me/messages/{made['id']}/attachments/{r.json()['id']}/$value")
            assert got.content == small
    finally:
        server.stop()


def _staged_rows(server: RunningServer, session_id: str) -> int:
    import sqlite3

    db = sqlite3.connect(server.data_dir / "graphpost.sqlite3")
    try:
        return int(
            db.execute(
                "SELECT count(*) FROM blob_chunks WHERE location = ?", (f"u:{session_id}",)
            ).fetchone()[0]
        )
    finally:
        db.close()


@pytest.mark.parametrize("blob_dir", [True, False])
def test_removing_a_user_drops_the_bytes_of_their_upload_sessions(
    tmp_path: Path, blob_dir: bool
) -> None:
    """A user removed (``graphpost users remove``) while an upload session of theirs holds
    staged parts: the session rows went with the user, so nothing would ever drop the bytes
    (the expiry sweep looks at session rows); they must go with the user."""
    if blob_dir:
        server = start_server(tmp_path / "srv", GRAPHPOST_BLOB_DIR=str(tmp_path / "b"))
    else:
        server = start_server(tmp_path / "srv")
    try:
        upn = f"{unique('leaver')}@contoso.onmicrosoft.com"
        server.cli("users", "add", "--name", "Leaver", "--mail", upn)
        data = os.urandom(3 * MIB)
        with server.client(server.token(upn)) as c:
            made = draft(c, unique("leaver"))
            url = upload_url(c, made["id"], len(data))
        r = httpx.put(
            url,
            content=data[: 2 * MIB],
            headers={"Content-Range": f"bytes 0-{2 * MIB - 1}/{len(data)}"},
        )
        assert r.status_code == 200, r.text
        sid = url.split("attachmentSessions('", 1)[1].split("'", 1)[0]
        uploads = tmp_path / "b" / "uploads"

        def staged() -> int:
            if blob_dir:
                return len([p for p in uploads.iterdir() if sid in p.name])
            return _staged_rows(server, sid)

        assert staged() > 0
        # a finished session of theirs, whose bytes (its blob) Adele's message uses too
        shared = os.urandom(3 * MIB)
        with server.client(server.token(upn)) as c:
            done = upload(upload_url(c, draft(c, unique("leaver"))["id"], len(shared)), shared)
            assert done.status_code == 201
        mid, aid = _uploaded(server, shared)
        server.cli("users", "remove", upn)
        assert staged() == 0
        with server.client() as c:
            got = c.get(f"/me/messages/{mid}/attachments/{aid}/$value")
        assert got.status_code == 200 and got.content == shared
    finally:
        server.stop()
