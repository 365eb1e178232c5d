"""The webhook client: one bounded HTTP/1.1 POST on asyncio streams and h11.

Written here rather than taken from an HTTP library (docs/architecture.md says why): the
runtime dependencies hold no HTTP client, and a webhook needs few things, all bounded: one
request per connection, no redirects (a 3xx is an answer like any other), http and https
only, a deadline over the whole exchange, the answer's body read up to a cap. https verifies
the certificate (the system's trust store, plus ``ca_file``); plain http goes only to
loopback addresses, or anywhere in emulator mode. The host is resolved once and the
connection made to the address checked, so a name cannot turn into another address between
the check and the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import h11

from graphpost.ports.subscriptions import WebhookAnswer, WebhookError

MAX_URL = 2048
MAX_ANSWER = 64 * 1024  # of an answer's body; the rest is not read
PER_HOST = 8  # connections at once to one host (a host that hangs holds only these)
_USER_AGENT = b"graphpost-webhooks/1"


def _loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
_DOTTED = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


def literal_address(host: str) -> IP | None:
    """The address a URL's host names without DNS: an IPv6 or dotted IPv4 literal, or one of
    the forms the C library reads as IPv4 too (``2130706433``, ``0177.0.0.1``, ``0x7f.1``)."""
    host = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _DOTTED.fullmatch(host.rstrip(".")):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError:
            return None
    return None


def internal_rule(ip: IP) -> str | None:
    """Which rule refuses ``ip`` as a webhook's address (not reachable from the internet: an
    internal service's), or None. An IPv6 address carrying an IPv4 one (mapped, compatible,
    6to4, NAT64) is judged by that one too."""
    inner: list[IP] = []  # the IPv4 address inside first: the more telling rule
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            inner.append(ip.ipv4_mapped)
        if ip.sixtofour is not None:
            inner.append(ip.sixtofour)
        if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
            inner.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    inner.append(ip)
    for a in inner:
        if a.is_loopback:
            return "a loopback address"
        if a.is_link_local:
            return "a link-local address (cloud metadata services such as 169.254.169.254)"
        if a.is_unspecified:
            return "the unspecified address"
        if a.is_multicast:
            return "a multicast address"
        if isinstance(a, ipaddress.IPv6Address) and a.is_site_local:
            return "a site-local address"
        if a.is_private or a.is_reserved or not a.is_global:
            return "a private or reserved address (RFC 1918, unique local, shared, ...)"
    return None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def parse_allow_list(value: str) -> tuple[tuple[Network, ...], frozenset[str]]:
    """``GRAPHPOST_WEBHOOK_ALLOW_HOSTS``: comma-separated CIDRs (or addresses) and host names;
    ValueError naming a bad entry."""
    networks: list[Network] = []
    names: set[str] = set()
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = entry.lower().rstrip(".")
        if not _HOST_NAME.fullmatch(name):
            raise ValueError(f"{entry!r} is neither a CIDR, an address nor a host name")
        names.add(name)
    return tuple(networks), frozenset(names)


class WebhookClient:
    """``ports.subscriptions.Webhooks`` over asyncio streams.

    Internal addresses (``internal_rule``) are refused unless ``internal_allowed`` (emulator
    mode) or the host is on the operator's ``allow`` list (CIDRs and host names): at create
    and renew (``check_target`` resolves the name), and again at every connection, which is
    made to the address just checked (a name that resolves elsewhere the second time, DNS
    rebinding, is caught there)."""

    def __init__(
        self,
        *,
        plain_http_anywhere: bool = False,
        ca_file: Path | None = None,
        per_host: int = PER_HOST,
        internal_allowed: bool = False,
        allow: str = "",
    ) -> None:
        self.plain_http_anywhere = plain_http_anywhere
        self.internal_allowed = internal_allowed
        self.allow_networks, self.allow_names = parse_allow_list(allow)
        self.tls = ssl.create_default_context()
        if ca_file is not None:
            self.tls.load_verify_locations(cafile=str(ca_file))
        self.concurrency = asyncio.Semaphore(256)  # connections at once
        self.per_host = per_host
        self._hosts: dict[str, tuple[asyncio.Semaphore, int]] = {}  # host: (slots, users)

    def _refused(self, host: str, ip: IP) -> str | None:
        """Why the connection to ``ip`` (what ``host`` resolved to) is refused, or None."""
        if self.internal_allowed or host.lower().rstrip(".") in self.allow_names:
            return None
        rule = internal_rule(ip)
        if rule is None or any(ip in n for n in self.allow_networks):
            return None
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None and any(mapped in n for n in self.allow_networks):
            return None
        shown = host if len(host) <= 100 else host[:100] + "…"
        return (
            f"{shown} is {rule if ip == literal_address(host) else f'{ip}, {rule}'}: "
            "notification URLs must be reachable from the internet (an operator allows an "
            "internal receiver with GRAPHPOST_WEBHOOK_ALLOW_HOSTS)."
        )

    def check_url(self, url: str) -> str | None:
        if len(url) > MAX_URL:
            return f"The URL is longer than {MAX_URL} characters."
        if any(ord(c) < 0x21 or ord(c) == 0x7F or ord(c) > 0x7E for c in url):
            return "The URL must be ASCII without spaces or control characters."
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return "The URL is not a valid absolute URL."
        if parts.scheme not in ("https", "http") or not parts.hostname:
            return "The URL must be an absolute https URL."
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return "The URL must not carry a user name or password."
        if parts.fragment or "#" in url:
            return "The URL must not have a fragment."
        if port == 0:
            return "The URL's port is not valid."
        if parts.scheme == "http" and not (self.plain_http_anywhere or _loopback(parts.hostname)):
            return (
                "The URL must use https (plain http is accepted only for loopback addresses, "
                "or in emulator mode)."
            )
        return None

    async def check_target(self, url: str) -> str | None:
        """Why the host of ``url`` (a URL ``check_url`` accepts) may not receive webhooks:
        an internal address, given or resolved to; None also when the name does not resolve
        (the validation request then fails)."""
        host = urlsplit(url).hostname or ""
        try:
            await self._addresses(host, 443)
        except WebhookError as exc:
            return str(exc) if "must be reachable" in str(exc) else None
        return None

    async def post(
        self, url: str, body: bytes, *, content_type: str, seconds: float
    ) -> WebhookAnswer:
        why = self.check_url(url)
        if why is not None:
            raise WebhookError(why)
        host = (urlsplit(url).hostname or "").lower()
        try:  # the wait for a free connection counts in the deadline
            return await asyncio.wait_for(self._post_slotted(host, url, body, content_type),
                                          seconds)  # fmt: skip
        except TimeoutError:
            raise WebhookError("the request timed out") from None
        except (OSError, ssl.SSLError, h11.ProtocolError, UnicodeError) as exc:
            raise WebhookError(f"the request failed: {exc}") from exc

    async def _post_slotted(
        self, host: str, url: str, body: bytes, content_type: str
    ) -> WebhookAnswer:
        slots, users = self._hosts.get(host) or (asyncio.Semaphore(self.per_host), 0)
        self._hosts[host] = (slots, users + 1)
        try:
            async with slots, self.concurrency:
                return await self._post(url, body, content_type)
        finally:
            slots, users = self._hosts[host]
            if users <= 1:
                del self._hosts[host]
            else:
                self._hosts[host] = (slots, users - 1)

    async def _addresses(self, host: str, port: int) -> list[str]:
        """Every address ``host`` resolves to (once), each checked: one internal address
        refuses them all."""
        literal = literal_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host.strip("[]"), port, type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError) as exc:
                raise WebhookError(f"{host} does not resolve: {exc}") from None
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not found:
            raise WebhookError(f"{host} has no address")
        for address in found:
            why = self._refused(host, ipaddress.ip_address(address.split("%")[0]))
            if why is not None:
                raise WebhookError(why)
        return found

    async def _resolve(self, host: str, port: int, scheme: str) -> str:
        address = (await self._addresses(host, port))[0]
        loopback = ipaddress.ip_address(address.split("%")[0]).is_loopback
        if scheme == "http" and not self.plain_http_anywhere and not loopback:
            raise WebhookError(f"{host} is not a loopback address: plain http refused")
        return address

    async def _post(self, url: str, body: bytes, content_type: str) -> WebhookAnswer:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self._resolve(host, port, parts.scheme)
        tls = self.tls if parts.scheme == "https" else None
        reader, writer = await asyncio.open_connection(
            address, port, ssl=tls, server_hostname=host if tls else None
        )
        try:
            conn = h11.Connection(h11.CLIENT)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            host_header = parts.netloc.rsplit("@", 1)[-1]
            request = h11.Request(
                method="POST",
                target=target.encode("ascii"),
                headers=[
                    (b"host", host_header.encode("ascii")),
                    (b"content-type", content_type.encode("ascii")),
                    (b"content-length", str(len(body)).encode()),
                    (b"user-agent", _USER_AGENT),
                    (b"connection", b"close"),
                ],
            )
            writer.write(conn.send(request) + conn.send(h11.Data(data=body)) + conn.send(
                h11.EndOfMessage()
            ))  # fmt: skip
            await writer.drain()
            status, answer_type, chunks, size = 0, "", [], 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    for name, value in event.headers:
                        if name == b"content-type":
                            answer_type = value.decode("latin-1")
                elif isinstance(event, h11.Data):
                    if size < MAX_ANSWER:
                        chunks.append(bytes(event.data[: MAX_ANSWER - size]))
                    size += len(event.data)
                    if size >= MAX_ANSWER:
                        break  # the rest is not read
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            if not status:
                raise WebhookError("the connection closed without an answer")
            return WebhookAnswer(status, answer_type, b"".join(chunks))
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
