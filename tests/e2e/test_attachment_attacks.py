"""The attachment surface attacked as a hostile user, over real HTTP on both engines: upload
URLs, blob storage, streamed sends. Kept: the attacks that found a bug (regressions) and a few
strong ones that found none."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import unique
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
        assert r.status_code == 503, r.text
