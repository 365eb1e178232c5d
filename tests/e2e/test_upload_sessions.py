"""Upload sessions (``createUploadSession`` and its upload URL) over real HTTP on both engines:
parts in order, a part cut off mid-body, a resent range, cancel, Graph's errors, and the file
sent to the SMTP sink and a local recipient intact."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import ALEX, assert_error, inbox_items, unique
from tests.sink import Sink, wait_for

MIB = 1024 * 1024


def draft(c: httpx.Client, subject: str, *to: str) -> dict[str, Any]:
    r = c.post(
        "/me/messages",
        json={"subject": subject, "toRecipients": [{"emailAddress": {"address": a}} for a in to]},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def create(c: httpx.Client, message_id: str, size: object, **item: Any) -> httpx.Response:
    body = {"AttachmentItem": {"attachmentType": "file", "name": "big.bin", "size": size, **item}}
    return c.post(f"/me/messages/{message_id}/attachments/createUploadSession", json=body)


def session(c: httpx.Client, message_id: str, size: int, **item: Any) -> dict[str, Any]:
    r = create(c, message_id, size, **item)
    assert r.status_code == 201, r.text
    return dict(r.json())


def put(url: str, data: bytes, first: int, total: int, **headers: str) -> httpx.Response:
    """A part, without any Authorization header."""
    h = {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"bytes {first}-{first + len(data) - 1}/{total}",
        **headers,
    }
    return httpx.put(url, content=data, headers=h, timeout=60)


def upload(url: str, data: bytes, chunk: int = 2 * MIB, start: int = 0) -> httpx.Response:
    r: httpx.Response | None = None
    for first in range(start, len(data), chunk):
        r = put(url, data[first : first + chunk], first, len(data))
        expected = 201 if first + chunk >= len(data) else 200
        assert r.status_code == expected, r.text
    assert r is not None
    return r


def cut_off(url: str, data: bytes, first: int, total: int) -> None:
    """A part whose connection closes after half of its body."""
    parts = urlsplit(url)
    head = (
        f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n"
        f"Content-Range: bytes {first}-{first + len(data) - 1}/{total}\r\n\r\n"
    ).encode()
    host, port = parts.netloc.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(head + data[: len(data) // 2])
        s.shutdown(socket.SHUT_WR)
        s.settimeout(30)
        while s.recv(65536):  # the server's answer (if any), then the close
            pass


def attachment_id(location: str) -> str:
    return location.rsplit("attachments('", 1)[1].rstrip("')")


def test_a_file_in_parts(server: RunningServer) -> None:
    data = os.urandom(3 * MIB + 123_457)
    with server.client() as c:
        made = draft(c, unique("upload"), ALEX)
        s = session(c, made["id"], len(data), contentType="application/x-big")
        assert s["@odata.context"].endswith("$metadata#microsoft.graph.uploadSession")
        assert s["nextExpectedRanges"] == ["0-"]
        assert s["expirationDateTime"].endswith("Z")
        url = s["uploadUrl"]
        assert "authtoken=" in url
        first = put(url, data[: 2 * MIB], 0, len(data))
        assert first.status_code == 200, first.text
        state = first.json()
        # Graph's SDKs read the camelCase "start-end" form; the doc example's PascalCase pair
        # has the single offset
        assert state["nextExpectedRanges"] == [f"{2 * MIB}-{len(data) - 1}"]
        assert state["NextExpectedRanges"] == [str(2 * MIB)]
        assert state["ExpirationDateTime"] == state["expirationDateTime"] == s["expirationDateTime"]
        last = put(url, data[2 * MIB :], 2 * MIB, len(data))
        assert last.status_code == 201, last.text
        assert last.content == b"" and last.headers["content-length"] == "0"
        location = last.headers["location"]
        assert f"/messages('{made['id']}')/attachments('" in location
        aid = attachment_id(location)
        got = c.get(f"/me/messages/{made['id']}/attachments/{aid}/$value")
        assert got.status_code == 200
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
        assert got.headers["content-type"].startswith("application/x-big")
        meta = c.get(
            f"/me/messages/{made['id']}/attachments/{aid}", params={"$select": "name,size"}
        )
        assert meta.json()["size"] == len(data) and meta.json()["name"] == "big.bin"
        # a streamed $value inside a JSON batch is read whole and given as base64
        batch = c.post(
            "/$batch",
            json={"requests": [{"id": "1", "method": "GET",
                                "url": f"/me/messages/{made['id']}/attachments/{aid}/$value"}]},
        )  # fmt: skip
        [member] = batch.json()["responses"]
        assert member["status"] == 200 and base64.b64decode(member["body"]) == data
        msg = c.get(f"/me/messages/{made['id']}").json()
        assert msg["hasAttachments"] is True
        assert msg["changeKey"] != made["changeKey"]
        # PUT is idempotent: the last part sent again (its answer lost, say) answers the same
        # 201 and Location, and attaches nothing more
        again = put(url, data[2 * MIB :], 2 * MIB, len(data))
        assert again.status_code == 201, again.text
        assert again.headers["location"] == location
        assert [
            a["id"] for a in c.get(f"/me/messages/{made['id']}/attachments").json()["value"]
        ] == [aid]
        # otherwise the session is over
        assert_error(put(url, data[:10], 0, len(data)), 404, "ErrorItemNotFound")
        assert_error(httpx.get(url), 404, "ErrorItemNotFound")
        assert_error(httpx.delete(url), 404, "ErrorItemNotFound")
        assert c.get(f"/me/messages/{made['id']}/attachments/{aid}/$value").content == data


def test_a_part_cut_off_and_a_resent_range(server: RunningServer) -> None:
    data = os.urandom(4 * MIB + 5)
    with server.client() as c:
        made = draft(c, unique("resume"), ALEX)
        url = session(c, made["id"], len(data))["uploadUrl"]
    assert put(url, data[: 2 * MIB], 0, len(data)).status_code == 200
    cut_off(url, data[2 * MIB : 4 * MIB], 2 * MIB, len(data))
    # nothing of the broken part was kept: the session still waits at 2 MiB
    state = httpx.get(url, timeout=30)
    assert state.status_code == 200, state.text
    assert state.json()["nextExpectedRanges"] == [f"{2 * MIB}-{len(data) - 1}"]
    assert state.json()["NextExpectedRanges"] == [str(2 * MIB)]
    # the first part again (its answer was lost, say): refused, nothing changes
    again = put(url, data[: 2 * MIB], 0, len(data))
    assert_error(again, 416, "InvalidRange")
    assert str(2 * MIB) in again.json()["error"]["message"]
    # a part beyond the next expected offset
    assert_error(put(url, data[3 * MIB : 4 * MIB], 3 * MIB, len(data)), 416, "InvalidRange")
    done = upload(url, data, start=2 * MIB)
    with server.client() as c:
        got = c.get(
            f"/me/messages/{made['id']}/attachments/{attachment_id(done.headers['location'])}/$value"
        )
    assert got.content == data


def test_bad_parts(server: RunningServer) -> None:
    size = 3 * MIB
    with server.client() as c:
        made = draft(c, unique("bad parts"), ALEX)
        url = session(c, made["id"], size)["uploadUrl"]
    chunk = os.urandom(MIB)
    # a total that is not the session's size
    assert_error(put(url, chunk, 0, size + 1), 400, "ErrorInvalidRequest")
    # past the end of the file (overlong)
    r = httpx.put(
        url,
        content=chunk,
        headers={"Content-Range": f"bytes {size - 10}-{size - 10 + MIB - 1}/{size}"},
    )
    assert_error(r, 400, "ErrorInvalidRequest")
    # a range that does not match the body
    r = httpx.put(url, content=chunk, headers={"Content-Range": f"bytes 0-{2 * MIB - 1}/{size}"})
    assert_error(r, 400, "ErrorInvalidRequest")
    # no or a malformed Content-Range
    assert_error(httpx.put(url, content=chunk), 400, "ErrorInvalidRequest")
    for bad in ("bytes 0-x/3", "bytes=0-1/3", "bytes 0-1/3 x", "items 0-1/3", "bytes -1-1/3"):
        r = httpx.put(url, content=b"ab", headers={"Content-Range": bad})
        assert_error(r, 400, "ErrorInvalidRequest")
    # a part larger than a request may be
    r = put(url, os.urandom(4 * MIB + 1), 0, size)
    assert_error(r, 413, "RequestEntityTooLarge")
    assert str(4 * MIB) in r.json()["error"]["message"]
    # nothing was kept
    assert httpx.get(url).json()["NextExpectedRanges"] == ["0"]
    assert httpx.get(url).json()["nextExpectedRanges"] == [f"0-{size - 1}"]


def test_the_url_is_the_credential(server: RunningServer) -> None:
    with server.client() as c:
        a = draft(c, unique("token a"), ALEX)
        b = draft(c, unique("token b"), ALEX)
        url_a = session(c, a["id"], 3 * MIB)["uploadUrl"]
        url_b = session(c, b["id"], 3 * MIB)["uploadUrl"]
    token_b = url_b.split("authtoken=", 1)[1]
    forged = url_a.split("authtoken=", 1)[0] + "authtoken=" + token_b
    assert_error(httpx.get(forged), 401, "InvalidAuthenticationToken")
    assert_error(httpx.get(url_a.split("?", 1)[0]), 401, "InvalidAuthenticationToken")
    assert_error(httpx.get(url_a[:-3] + "AAA"), 401, "InvalidAuthenticationToken")
    # the session of message b named under message a's URL
    sid_b = url_b.split("attachmentSessions('", 1)[1].split("'", 1)[0]
    sid_a = url_a.split("attachmentSessions('", 1)[1].split("'", 1)[0]
    moved = url_b.replace(f"messages('{b['id']}')", f"messages('{a['id']}')")
    assert_error(httpx.get(moved), 401, "InvalidAuthenticationToken")
    unknown = url_a.replace(sid_a, sid_b[:-4] + "0000")
    assert_error(httpx.get(unknown), 404, "ErrorItemNotFound")
    r = httpx.post(url_a, content=b"x")
    assert_error(r, 405, "MethodNotAllowed")


def test_cancel(server: RunningServer) -> None:
    data = os.urandom(3 * MIB)
    with server.client() as c:
        made = draft(c, unique("cancel"), ALEX)
        url = session(c, made["id"], len(data))["uploadUrl"]
    assert put(url, data[:MIB], 0, len(data)).status_code == 200
    r = httpx.delete(url)
    assert r.status_code == 204 and r.content == b""
    assert_error(put(url, data[MIB:], MIB, len(data)), 404, "ErrorItemNotFound")
    assert_error(httpx.delete(url), 404, "ErrorItemNotFound")
    with server.client() as c:
        assert c.get(f"/me/messages/{made['id']}/attachments").json()["value"] == []


def test_session_errors(server: RunningServer) -> None:
    with server.client() as c:
        made = draft(c, unique("errors"), ALEX)
        mid = made["id"]
        assert_error(
            create(c, mid, 3 * MIB - 1), 400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
        )
        assert_error(create(c, mid, 150 * MIB + 1), 400, "ErrorMessageSizeExceeded")
        assert_error(create(c, mid, -1), 400, "RequestBodyRead")
        assert_error(create(c, mid, "many"), 400, "RequestBodyRead")
        assert_error(create(c, mid, 3 * MIB, attachmentType="reference"), 400, "RequestBodyRead")
        assert_error(create(c, mid, 3 * MIB, name="a\r\nb"), 400, "RequestBodyRead")
        assert_error(create(c, mid, 3 * MIB, colour="red"), 400, "RequestBodyRead")
        r = c.post(f"/me/messages/{mid}/attachments/createUploadSession", json={"Item": {}})
        assert_error(r, 400, "RequestBodyRead")
        r = c.post(f"/me/messages/{mid}/attachments/createUploadSession", json={})
        assert_error(r, 400, "RequestBodyRead")
        assert_error(create(c, "AAMkAGI2THVSAAA=", 3 * MIB), 404, "ErrorItemNotFound")
    # a token that may only read
    with server.client(server.token(scopes="Mail.Read")) as c:
        assert_error(create(c, mid, 3 * MIB), 403, "ErrorAccessDenied")
    # the camelCase parameter name is accepted too
    with server.client() as c:
        r = c.post(
            f"/me/messages/{mid}/attachments/createUploadSession",
            json={"attachmentItem": {"attachmentType": "file", "name": "x.bin", "size": 3 * MIB}},
        )
        assert r.status_code == 201, r.text


def test_sent_intact_to_the_relay_and_a_local_inbox(server: RunningServer, sink: Sink) -> None:
    data = os.urandom(3 * MIB + 77)
    subject = unique("upload sent")
    outside = f"{unique('far')}@example.net"
    with server.client() as c:
        made = draft(c, subject, ALEX, outside)
        url = session(c, made["id"], len(data), name="report.pdf")["uploadUrl"]
        upload(url, data)
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [received] = wait_for(lambda: sink.messages_for(outside), what="the relayed copy")
    [part] = list(received.message.iter_attachments())
    assert part.get_filename() == "report.pdf"
    assert (
        hashlib.sha256(part.get_payload(decode=True)).hexdigest()
        == hashlib.sha256(data).hexdigest()
    )
    [item] = wait_for(lambda: inbox_items(server, ALEX, subject), what="the local copy")
    with server.client(server.token(ALEX)) as c:
        [att] = c.get(
            f"/me/messages/{item['id']}/attachments", params={"$select": "id,name"}
        ).json()["value"]
        got = c.get(f"/me/messages/{item['id']}/attachments/{att['id']}/$value")
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("n", [3])
def test_the_same_file_twice_is_stored_once(server: RunningServer, n: int) -> None:
    """Content addressing seen from outside: three messages, one file, each readable; deleting
    two leaves the third intact."""
    data = os.urandom(3 * MIB)
    ids: list[str] = []
    with server.client() as c:
        for _ in range(n):
            made = draft(c, unique("dedup"), ALEX)
            upload(session(c, made["id"], len(data))["uploadUrl"], data)
            ids.append(made["id"])
        for mid in ids[:-1]:
            assert c.delete(f"/me/messages/{mid}").status_code == 204
        # Deleted Items still holds them: delete them there for good
        for mid in ids[:-1]:
            assert c.post(f"/me/messages/{mid}/permanentDelete").status_code == 204
        [att] = c.get(f"/me/messages/{ids[-1]}/attachments").json()["value"]
        got = c.get(f"/me/messages/{ids[-1]}/attachments/{att['id']}/$value")
    assert got.content == data


@pytest.mark.parametrize("save", [True, False])
def test_a_large_file_is_streamed_to_the_relay_and_shared_locally(
    server: RunningServer, sink: Sink, save: bool
) -> None:
    """Over 4 MiB of attachments: the message is written part by part into a blob and
    streamed to the relay; the local copy refers to the same blob (intact either way, also
    when the draft is not kept in Sent Items)."""
    data = os.urandom(5 * MIB + 3)
    subject = unique("streamed")
    outside = f"{unique('far')}@example.net"
    with server.client() as c:
        made = draft(c, subject, ALEX, outside)
        r = c.patch(
            f"/me/messages/{made['id']}",
            json={"body": {"contentType": "text", "content": ".dot\n..two"}},
        )
        assert r.status_code == 200, r.text
        upload(session(c, made["id"], len(data), name="video.mp4")["uploadUrl"], data)
        r = c.post(f"/me/messages/{made['id']}/send", json={"saveToSentItems": save})
        assert r.status_code == 202, r.text
    [received] = wait_for(lambda: sink.messages_for(outside), what="the relayed copy")
    mail = received.message
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "video.mp4"
    assert (
        hashlib.sha256(part.get_payload(decode=True)).hexdigest()
        == hashlib.sha256(data).hexdigest()
    )
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n").startswith(".dot\n..two")
    [item] = wait_for(lambda: inbox_items(server, ALEX, subject), what="the local copy")
    with server.client(server.token(ALEX)) as c:
        [att] = c.get(f"/me/messages/{item['id']}/attachments").json()["value"]
        assert att["name"] == "video.mp4" and att["size"] == len(data)
        got = c.get(f"/me/messages/{item['id']}/attachments/{att['id']}/$value")
        assert got.content == data
        assert c.get(f"/me/messages/{item['id']}").json()["hasAttachments"] is True
        # a forward of it carries the same file (a reference, not a copy)
        fwd = c.post(f"/me/messages/{item['id']}/createForward", json={})
        assert fwd.status_code == 201, fwd.text
        [copied] = c.get(f"/me/messages/{fwd.json()['id']}/attachments").json()["value"]
        again = c.get(f"/me/messages/{fwd.json()['id']}/attachments/{copied['id']}/$value")
        assert again.content == data


# ---------------------------------------------------------------- servers of their own


@pytest.fixture(scope="module")
def big_sink() -> Iterator[Sink]:
    running = Sink(max_bytes=400 * MIB).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def blob_dir_server(
    tmp_path_factory: pytest.TempPathFactory, big_sink: Sink
) -> Iterator[tuple[RunningServer, Path]]:
    """SQLite, attachment bytes in GRAPHPOST_BLOB_DIR, and room for a 150 MB message."""
    data_dir = tmp_path_factory.mktemp("uploads-dir")
    blobs = data_dir / "blobs"
    running = start_server(
        data_dir,
        relay=big_sink.url,
        GRAPHPOST_BLOB_DIR=str(blobs),
        GRAPHPOST_MAX_MESSAGE_BYTES=str(220 * MIB),
    )
    yield running, blobs
    running.stop()


def test_an_expired_session(tmp_path: Path) -> None:
    server = start_server(tmp_path / "expiry", GRAPHPOST_UPLOAD_SESSION_SECONDS="2")
    try:
        data = os.urandom(3 * MIB)
        with server.client() as c:
            made = draft(c, unique("expiry"), ALEX)
            url = session(c, made["id"], len(data))["uploadUrl"]
            done = draft(c, unique("expiry, finished"), ALEX)
            finished = session(c, done["id"], len(data))["uploadUrl"]
        assert put(url, data[:MIB], 0, len(data)).status_code == 200
        location = upload(finished, data).headers["location"]
        time.sleep(2)
        expired = wait_for(
            lambda: (r := httpx.get(url)).status_code == 404 and r,
            timeout=20,
            what="the session to expire",
        )
        assert_error(expired, 404, "ErrorItemNotFound")
        # a finished session expires too; its attachment's bytes stay
        last = put(finished, data[2 * MIB :], 2 * MIB, len(data))
        assert_error(last, 404, "ErrorItemNotFound")
        with server.client() as c:
            assert c.get(f"/me/messages/{made['id']}/attachments").json()["value"] == []
            aid = attachment_id(location)
            got = c.get(f"/me/messages/{done['id']}/attachments/{aid}/$value")
            assert got.status_code == 200 and got.content == data
    finally:
        server.stop()


def test_a_blob_directory(blob_dir_server: tuple[RunningServer, Path], big_sink: Sink) -> None:
    """The bytes live in files named by their SHA-256; a streamed send and local copy read
    them; deleting every message that uses a file removes it."""
    server, blobs = blob_dir_server
    data = os.urandom(5 * MIB)
    digest = hashlib.sha256(data).hexdigest()
    subject = unique("blob dir")
    outside = f"{unique('far')}@example.net"
    with server.client() as c:
        made = draft(c, subject, ALEX, outside)
        upload(session(c, made["id"], len(data))["uploadUrl"], data)
        assert (blobs / digest[:2] / digest).read_bytes() == data
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    [received] = wait_for(lambda: big_sink.messages_for(outside), what="the relayed copy")
    [part] = list(received.message.iter_attachments())
    assert part.get_payload(decode=True) == data
    [item] = wait_for(lambda: inbox_items(server, ALEX, subject), what="the local copy")
    with server.client(server.token(ALEX)) as c:
        [att] = c.get(f"/me/messages/{item['id']}/attachments").json()["value"]
        assert c.get(f"/me/messages/{item['id']}/attachments/{att['id']}/$value").content == data
        assert c.delete(f"/me/messages/{item['id']}").status_code == 204
        assert c.post(f"/me/messages/{item['id']}/permanentDelete").status_code == 204
    with server.client() as c:
        assert c.post(f"/me/messages/{made['id']}/permanentDelete").status_code == 204
    # the last user is gone (the submission let go once delivered): the file goes
    wait_for(
        lambda: not (blobs / digest[:2] / digest).exists(), timeout=90, what="the file removed"
    )


def _attachment_digest(raw: bytes, name: bytes) -> str:
    """The SHA-256 of a base64 attachment part's bytes, read off the raw message (the email
    package would hold several copies of 200 MB)."""
    at = raw.index(b'filename="' + name + b'"')
    start = raw.index(b"\r\n\r\n", at) + 4
    end = raw.index(b"\r\n--", start)
    sha = hashlib.sha256()
    step = 76 * 20_000 + 2 * 20_000  # whole lines with their CRLFs
    for i in range(start, end, step):
        sha.update(base64.b64decode(raw[i : min(i + step, end)].replace(b"\r\n", b"")))
    return sha.hexdigest()


@pytest.mark.large
def test_150_mb_in_parts_survives_a_cut_and_arrives_intact(
    blob_dir_server: tuple[RunningServer, Path], big_sink: Sink
) -> None:
    """The issue's goal: 150 MB in 4 MiB parts, one part cut off and resumed, sent, and the
    same bytes (SHA-256) at the SMTP sink and in a local recipient's Inbox. (Its peak memory
    is measured by `python -m bench --only-upload`, not here.)"""
    server, _ = blob_dir_server
    size, chunk = 150 * MIB, 4 * MIB
    seed = os.urandom(chunk)
    sha = hashlib.sha256()
    subject = unique("150 MB")
    outside = f"{unique('far')}@example.net"
    with server.client() as c:
        made = draft(c, subject, ALEX, outside)
        url = session(c, made["id"], size, name="big.bin")["uploadUrl"]
        for n, first in enumerate(range(0, size, chunk)):
            # every part different, none held twice
            data = (bytes([n % 251]) + seed[1:])[: size - first]
            if n == 20:
                cut_off(url, data, first, size)
            r = put(url, data, first, size)
            assert r.status_code == (201 if first + chunk >= size else 200), r.text
            sha.update(data)
        assert c.post(f"/me/messages/{made['id']}/send").status_code == 202
    expected = sha.hexdigest()
    [received] = wait_for(lambda: big_sink.messages_for(outside), timeout=300, what="relayed")
    assert _attachment_digest(received.data, b"big.bin") == expected
    [item] = wait_for(lambda: inbox_items(server, ALEX, subject), timeout=120, what="local copy")
    with server.client(server.token(ALEX)) as c:
        [att] = c.get(
            f"/me/messages/{item['id']}/attachments", params={"$select": "id,size"}
        ).json()["value"]
        assert att["size"] == size
        with c.stream("GET", f"/me/messages/{item['id']}/attachments/{att['id']}/$value") as r:
            local = hashlib.sha256()
            for block in r.iter_bytes():
                local.update(block)
    assert local.hexdigest() == expected


def test_the_same_range_twice_at_once(server: RunningServer) -> None:
    """Two requests for the same range at the same moment (two API processes could take
    them): one is kept, the other is 416, and the file comes out whole and once."""
    from concurrent.futures import ThreadPoolExecutor

    data = os.urandom(3 * MIB)
    with server.client() as c:
        made = draft(c, unique("race"), ALEX)
        url = session(c, made["id"], len(data))["uploadUrl"]
    first = data[: 2 * MIB]
    other = os.urandom(2 * MIB)  # different bytes for the same range: only one may win
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda b: put(url, b, 0, len(data)), [first, other]))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200, 416], [r.text for r in answers]
    won = first if answers[0].status_code == 200 else other
    done = put(url, data[2 * MIB :], 2 * MIB, len(data))
    assert done.status_code == 201, done.text
    with server.client() as c:
        got = c.get(
            f"/me/messages/{made['id']}/attachments/{attachment_id(done.headers['location'])}/$value"
        )
    assert got.content == won + data[2 * MIB :]


def test_parts_are_throttled_like_the_app_that_made_the_session(tmp_path: Path) -> None:
    """The upload URL skips authentication, not the limits: its parts count as requests of
    the app that created the session, in its mailbox (here 4 per window)."""
    server = start_server(
        tmp_path / "throttled", GRAPHPOST_THROTTLING="on", GRAPHPOST_THROTTLE_REQUESTS="4"
    )
    try:
        data = os.urandom(3 * MIB)
        with server.client() as c:
            made = draft(c, unique("throttled"), ALEX)  # 1
            url = session(c, made["id"], len(data))["uploadUrl"]  # 2
        assert put(url, data[:MIB], 0, len(data)).status_code == 200  # 3
        assert put(url, data[MIB : 2 * MIB], MIB, len(data)).status_code == 200  # 4
        r = put(url, data[2 * MIB :], 2 * MIB, len(data))
        assert_error(r, 429, "TooManyRequests")
        assert int(r.headers["retry-after"]) > 0
        assert httpx.get(url).status_code == 429  # the session's state is not read either
    finally:
        server.stop()
