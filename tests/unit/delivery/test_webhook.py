"""The webhook client against real sockets on loopback: what URLs it takes, redirects not
followed, answers read up to a cap, deadlines, https verified (with a CA file to trust); and
the validation handshake's deadline."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from graphpost.cli.tls import tls_files
from graphpost.delivery.webhook import MAX_ANSWER, WebhookClient, parse_allow_list
from graphpost.errors import ValidationTimeoutError
from graphpost.ports.subscriptions import WebhookError
from graphpost.runtime import Runtime
from graphpost.settings import Settings
from tests.unit.wiring import add_mailbox, subscription_input

pytestmark = pytest.mark.anyio
LOOPBACK = "127.0.0.0/8,::1,localhost"  # where the receivers here listen
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
    client = WebhookClient(allow=LOOPBACK)
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
    client = WebhookClient(allow=LOOPBACK)

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
            await WebhookClient(allow=LOOPBACK).post(url, b"", content_type="text/plain", seconds=3)
        trusted = WebhookClient(ca_file=files.cert, allow=LOOPBACK)
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
    client = WebhookClient(per_host=2, allow=LOOPBACK)
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


@pytest.mark.parametrize(
    ("host", "rule"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1", "loopback"),
        ("2130706433", "loopback"),  # decimal
        ("0177.0.0.1", "loopback"),  # octal
        ("0x7f.0.0.1", "loopback"),  # hex
        ("0x7f000001", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped
        ("[::ffff:a9fe:a9fe]", "link-local"),  # 169.254.169.254, mapped
        ("[64:ff9b::a9fe:a9fe]", "link-local"),  # NAT64
        ("[2002:a00:1::]", "private"),  # 6to4 of 10.0.0.1
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # shared address space
        ("0.0.0.0", "unspecified"),
        ("0", "unspecified"),
        ("[fd12:3456::1]", "private"),  # unique local
        ("[fe80::1%25eth0]", "link-local"),
        ("[fec0::1]", "site-local"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("localhost", "loopback"),  # a name, resolved
        ("8.8.8.8", None),
        ("[2606:4700:4700::1111]", None),
        ("134744072", None),  # 8.8.8.8 in decimal
    ],
)
async def test_internal_addresses_are_refused(host: str, rule: str | None) -> None:
    url = f"https://{host}/hook"
    why = await WebhookClient().check_target(url)
    if rule is None:
        assert why is None, why
    else:
        assert why is not None and rule in why, why
        assert "GRAPHPOST_WEBHOOK_ALLOW_HOSTS" in why
        with pytest.raises(WebhookError, match=rule):  # and at the connection
            await WebhookClient().post(url, b"", content_type="text/plain", seconds=2)
        # emulator mode, or the operator's allow-list, take them
        assert await WebhookClient(internal_allowed=True).check_target(url) is None


async def test_the_allow_list() -> None:
    client = WebhookClient(allow="10.0.0.0/8, fd00::/8 ,localhost,127.0.0.1")
    for url in ("https://10.9.8.7/", "https://[fd00::5]/", "https://localhost/",
                "https://127.0.0.1/", "https://[::ffff:10.0.0.1]/"):  # fmt: skip
        assert await client.check_target(url) is None, url
    for url in ("https://127.0.0.2/", "https://192.168.0.1/", "https://169.254.169.254/"):
        assert await client.check_target(url) is not None, url
    for bad in ("10.0.0.0/33", "exa mple", "a..b", "http://x"):
        with pytest.raises(ValueError, match="neither"):
            parse_allow_list(bad)


async def test_the_address_checked_is_the_one_connected_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: a name that resolved to a public address when the subscription was made
    and to loopback now. The connection is refused, and nothing reaches the receiver."""
    connected = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connected
        connected += 1
        writer.close()

    server = await serve(handler)
    port = server.sockets[0].getsockname()[1]
    answers = iter(["93.184.215.14", "127.0.0.1"])
    loop = asyncio.get_running_loop()

    async def rebinding(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    client = WebhookClient()
    url = f"https://rebind.example:{port}/hook"
    async with server:
        assert await client.check_target(url) is None  # the first answer: public
        with pytest.raises(WebhookError, match=r"127\.0\.0\.1, a loopback address"):
            await client.post(url, b"{}", content_type="application/json", seconds=2)
    assert connected == 0


async def test_a_renewal_checks_the_receivers_again(runtime: Runtime) -> None:
    """A subscription made while its loopback receiver was allowed is not renewed once the
    operator's allow-list no longer holds it (400 ValidationError, the rule named)."""
    from graphpost.errors import ValidationFailedError
    from tests.webhook import start_receiver

    box = await add_mailbox(runtime, "renew@example.com")
    receiver = start_receiver()
    try:
        soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200))
        made = await runtime.subscriptions.create(box.principal, subscription_input(
            changeType="created", notificationUrl=receiver.url, resource="me/messages",
            expirationDateTime=soon,
        ))  # fmt: skip
        client = runtime.subscriptions.webhooks
        assert isinstance(client, WebhookClient)
        client.allow_networks, client.allow_names = parse_allow_list("")
        with pytest.raises(ValidationFailedError, match="a loopback address") as raised:
            await runtime.subscriptions.update(
                box.principal, made.id, subscription_input(expirationDateTime=later)
            )
        assert raised.value.target == "notificationUrl"
    finally:
        receiver.stop()
