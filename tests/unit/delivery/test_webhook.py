"""The webhook client against real sockets on loopback: what URLs it takes, redirects not
followed, answers read up to a cap, deadlines, https verified (with a CA file to trust); and
the validation handshake's deadline."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from graphpost.cli.tls import tls_files
from graphpost.delivery.webhook import MAX_ANSWER, WebhookClient
from graphpost.errors import ValidationTimeoutError
from graphpost.ports.subscriptions import WebhookError
from graphpost.runtime import Runtime
from graphpost.settings import Settings
from tests.unit.wiring import add_mailbox, subscription_input

pytestmark = pytest.mark.anyio
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.mark.parametrize(
    ("url", "anywhere", "ok"),
    [
        ("https://example.com/hook?a=1", False, True),
        ("http://127.0.0.1:8080/hook", False, True),
        ("http://[::1]:8080/hook", False, True),
        ("http://localhost/hook", False, True),
        ("http://example.com/hook", False, False),
        ("http://example.com/hook", True, True),  # emulator mode
        ("ftp://127.0.0.1/hook", True, False),
        ("file:///etc/passwd", True, False),
        ("https://user:pw@example.com/", False, False),
        ("https://example.com/#frag", False, False),
        ("https://example.com/a b", False, False),
        ("https://example.com/\u00e9", False, False),
        ("https://example.com:0/", False, False),
        ("https://example.com:99999/", False, False),
        ("https:///nohost", False, False),
        ("https://example.com/" + "a" * 3000, False, False),
    ],
)
def test_urls(url: str, anywhere: bool, ok: bool) -> None:
    client = WebhookClient(plain_http_anywhere=anywhere)
    assert (client.check_url(url) is None) == ok, client.check_url(url)


async def serve(handler: Handler, tls: ssl.SSLContext | None = None) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0, ssl=tls)


def url_of(server: asyncio.Server, scheme: str = "http") -> str:
    port = server.sockets[0].getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}/hook"


async def answer_with(raw: bytes) -> asyncio.Server:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    return await serve(handler)


async def test_redirects_are_answers_and_bodies_are_capped() -> None:
    client = WebhookClient()
    redirect = await answer_with(
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/\r\nContent-Length: 0\r\n\r\n"
    )
    huge = await answer_with(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n"
        + b"x" * 1_000_000
    )
    async with redirect, huge:
        got = await client.post(url_of(redirect), b"{}", content_type="application/json",
                                seconds=5)  # fmt: skip
        assert got.status == 302
        got = await client.post(url_of(huge), b"", content_type="text/plain", seconds=5)
        assert got.status == 200 and len(got.body) == MAX_ANSWER


async def test_deadlines_and_broken_answers() -> None:
    client = WebhookClient()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    hangs = await serve(silent)
    closes = await answer_with(b"")
    garbage = await answer_with(b"SMTP 220 hello\r\n\r\n")
    gone = url_of(closes)
    async with hangs, closes, garbage:
        with pytest.raises(WebhookError, match="timed out"):
            await client.post(url_of(hangs), b"", content_type="text/plain", seconds=0.3)
        for server in (closes, garbage):
            with pytest.raises(WebhookError):
                await client.post(url_of(server), b"", content_type="text/plain", seconds=2)
    with pytest.raises(WebhookError):  # nothing listens
        await client.post(gone, b"", content_type="text/plain", seconds=2)
    with pytest.raises(WebhookError):  # refused before any connection
        await client.post("http://example.com/", b"", content_type="text/plain", seconds=2)


async def test_https_is_verified(tmp_path: Path) -> None:
    files = tls_files(Settings(data_dir=tmp_path))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(files.cert, files.key)
    ok = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ok)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await serve(handler, tls)
    async with server:
        url = url_of(server, "https")
        with pytest.raises(WebhookError):  # a certificate nobody vouches for
            await WebhookClient().post(url, b"", content_type="text/plain", seconds=3)
        trusted = WebhookClient(ca_file=files.cert)
        got = await trusted.post(url, b"", content_type="text/plain", seconds=3)
        assert got.status == 204


async def test_a_handshake_without_answer_is_graphs_timeout(runtime: Runtime) -> None:
    box = await add_mailbox(runtime, "slow@example.com")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await serve(silent)
    async with server:
        runtime.subscriptions.handshake_seconds = 0.3
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        data = subscription_input(
            changeType="created", notificationUrl=url_of(server), resource="me/messages",
            expirationDateTime=soon,
        )  # fmt: skip
        with pytest.raises(ValidationTimeoutError, match="timed out"):
            await runtime.subscriptions.create(box.principal, data)


async def test_connections_to_one_host_are_capped() -> None:
    """Of five posts at once to a host that never answers, two (the cap) connect; another
    host is not held up by them."""
    client = WebhookClient(per_host=2)
    connected = 0
    release = asyncio.Event()

    async def hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connected
        connected += 1
        await release.wait()
        writer.close()

    ok = await answer_with(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
    black = await serve(hole)
    async with black, ok:
        hanging = [
            asyncio.create_task(
                client.post(url_of(black), b"", content_type="text/plain", seconds=1)
            )
            for _ in range(5)
        ]
        other = url_of(ok).replace("127.0.0.1", "localhost")  # another host name
        got = await client.post(other, b"", content_type="text/plain", seconds=1)
        assert got.status == 202
        results = await asyncio.gather(*hanging, return_exceptions=True)
        assert all(isinstance(r, WebhookError) for r in results)
        assert connected == 2
        assert client._hosts == {}  # nothing kept for hosts no longer posted to
        release.set()
