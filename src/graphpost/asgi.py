"""A minimal request/response pair over raw ASGI, shared by the HTTP edges (api, identity, web)."""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

import msgspec

from graphpost.domain import reader
from graphpost.errors import (
    BodyNotReadableError,
    InvalidInputError,
    MimeContentError,
    PropertyValueError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

T = TypeVar("T")

# The ASGI interface, typed as Starlette types it (``starlette.types``).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_TYPE = (
    b"application/json;odata.metadata=minimal;odata.streaming=true;"
    b"IEEE754Compatible=false;charset=utf-8"
)
# Headers the API reads; each must be printable (it is stored, echoed or parsed).
CHECKED_HEADERS = ("client-request-id", "prefer", "if-match", "idempotency-key")

TOO_DEEP = "The request body nests arrays and objects too deeply to be read."
# A \u0000 escape: a backslash run of odd length before "u0000" (an escaped backslash
# followed by the text u0000 is legal and does not match).
# Possessive (*+): a run of backslashes is never re-split, so the search stays linear.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*+\\u0000")
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*+\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Graph's answer to a MIME body that is not base64 (the create, sendMail and reply pages)
INVALID_BASE64 = "Invalid base64 string for MIME content."
_BASE64_SPACE = re.compile(rb"[ \t\r\n]+")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")


def _find_nul(value: Any, path: str) -> str | None:
    """The path of the first string (or key) holding U+0000, or None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if "\x00" in key:
                    return where
                stack.append((inner, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))
    return None


def printable_header(value: str) -> bool:
    """A header value without control characters (safe to store and to echo)."""
    return _CONTROL.search(value) is None


def check_text(value: str, what: str) -> None:
    """Refuse U+0000 (PostgreSQL cannot store it, SQLite truncates it in places): both
    engines answer the same 400."""
    if "\x00" in value:
        raise InvalidInputError(
            f"The {what} contains a NUL character (U+0000), which is not allowed.",
            target=what,
        )


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        if not reader.has_annotation_key(exc):
            raise
    # an instance annotation the type does not declare (``@odata.etag``, ``x@odata.y``):
    # read again, skipping annotations as Graph's reader does (rare: the fast path is above)
    return reader.convert(msgspec.json.decode(body), kind)


def _unreadable(exc: msgspec.DecodeError, body: bytes) -> InvalidInputError:
    """The error for a body that is not JSON."""
    if (b"\\ud" in body or b"\\uD" in body) and _SURROGATE_ESCAPE.search(body):
        return InvalidInputError(
            "The request body contains an unpaired UTF-16 surrogate escape "
            "(\\ud800-\\udfff without its pair), which is not a character."
        )
    return BodyNotReadableError(f"The request body could not be read as JSON: {exc}.")


@dataclass(slots=True)
class Request:
    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    @classmethod
    def from_scope(cls, scope: Scope) -> Request:
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        query: dict[str, str] = {}
        qs = scope.get("query_string", b"")
        if qs:
            # UTF-8 (what a browser sends unescaped); a byte that is not becomes U+FFFD
            for key, value in parse_qsl(qs.decode("utf-8", "replace"), keep_blank_values=True):
                # system query options are matched case-insensitively ($Filter, $TOP)
                query[key.lower() if key.startswith("$") else key] = value
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("utf-8", "replace").split("?", 1)[0]
        return cls(scope["method"], raw_path, query, headers)

    def segments(self) -> list[str]:
        """Path segments, each percent-decoded on its own (an id may hold an encoded /)."""
        return [unquote(s) for s in self.raw_path.split("/") if s != ""]

    def check(self) -> None:
        """Refuse what no store keeps faithfully before anything reads it: U+0000 in a path
        segment or a query option, a control character in a header the API reads."""
        for segment in self.segments():
            check_text(segment, "URL path")
        for key, value in self.query.items():
            check_text(key, "query string")
            check_text(value, f"query option {key}" if key.startswith("$") else "query string")
        for name in CHECKED_HEADERS:
            header = self.headers.get(name)
            if header is not None and not printable_header(header):
                raise InvalidInputError(
                    f"The {name} header contains a control character.", target=name
                )

    def is_mime(self) -> bool:
        """Whether the body is MIME: ``Content-Type: text/plain`` (Graph's MIME requests)."""
        ctype = self.headers.get("content-type", "").split(";")[0].strip().lower()
        return ctype == "text/plain"

    def mime(self) -> bytes:
        """The MIME message of a ``text/plain`` body: base64 (line breaks and spaces between
        its characters allowed, padding optional), decoded; Graph's 400 otherwise."""
        text = _BASE64_SPACE.sub(b"", self.body)
        if not text:
            raise MimeContentError(f"{INVALID_BASE64} The request body is empty.")
        if _BASE64.fullmatch(text) is None or len(text) % 4 == 1:
            raise MimeContentError(INVALID_BASE64)
        try:
            return binascii.a2b_base64(text + b"=" * (-len(text) % 4), strict_mode=True)
        except binascii.Error:
            raise MimeContentError(INVALID_BASE64) from None

    def json(self, kind: type[T], *, allow_empty: bool = False) -> T:
        """The body decoded as ``kind``; Graph's errors for bad content."""
        ctype = self.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype not in ("application/json", "text/json", ""):
            raise UnsupportedMediaTypeError(
                f"Content-Type '{ctype}' is not supported here; send application/json."
            )
        body = self.body
        if not body.strip():
            if allow_empty:
                body = b"{}"
            else:
                raise BodyNotReadableError("The request body is empty; a JSON object is required.")
        if body.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark (RFC 8259 §8.1)
            body = body[3:]
        if not body.isascii():  # also in keys and values the typed decode would skip
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                raise BodyNotReadableError(
                    "The request body could not be read as JSON: it is not valid UTF-8."
                ) from None
        # the substring test runs at memory speed; the exact regex only when it hits
        if b"\\u0000" in body and _NUL_ESCAPE.search(body):
            try:
                nul_at = _find_nul(msgspec.json.decode(body), "")
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                nul_at = None  # the typed decode below reports it
            if nul_at is not None:
                raise InvalidInputError(
                    f"The request body contains a NUL character (\\u0000) in "
                    f"'{nul_at or '$'}', which is not allowed.",
                    target=nul_at or None,
                )
        try:
            return _decode(body, kind)
        except UnicodeDecodeError:
            raise BodyNotReadableError(
                "The request body could not be read as JSON: it is not valid UTF-8."
            ) from None
        except RecursionError:  # msgspec stops at the interpreter's limit: cheap and clean
            raise BodyNotReadableError(TOO_DEEP) from None
        except msgspec.ValidationError as exc:
            unknown = reader.unknown_property(exc, kind)
            if unknown is not None:
                try:  # msgspec stopped at the field: is the rest JSON at all?
                    msgspec.json.decode(body)
                except msgspec.DecodeError as syntax:
                    raise _unreadable(syntax, body) from None
                except RecursionError:
                    raise BodyNotReadableError(TOO_DEEP) from None
                raise unknown from None
            text = str(exc)
            where = text.rsplit(" - at `$.", 1)
            target = where[1].rstrip("`") if len(where) == 2 else None
            if target is None and "Expected `object`" in text:
                raise BodyNotReadableError("The request body must be a JSON object.") from None
            raise PropertyValueError(
                f"Invalid value in the request body: {where[0]}"
                + (f" (property '{target}')." if target else "."),
                target=target,
            ) from None
        except msgspec.DecodeError as exc:
            raise _unreadable(exc, body) from None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: bytes | None = JSON_TYPE
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # a large body (an attachment's bytes): sent as it is read, ``length`` bytes in all, in
    # place of ``body``
    stream: Callable[[], AsyncIterator[bytes]] | None = None
    length: int = 0

    async def read(self) -> bytes:
        """The whole body (a streamed one read into memory: a member of a JSON batch)."""
        if self.stream is None:
            return self.body
        return b"".join([chunk async for chunk in self.stream()])


def local_host_name(scope: Scope, named: frozenset[str] = frozenset()) -> bool:
    """Whether the request names this server (``Host``) as only a client of this machine or
    network would: an IP address, ``localhost`` (or a name under it), a name of one label (a
    container's, a hosts file's), or one of ``named`` (lower case: ``GRAPHPOST_PUBLIC_URL``'s
    host). A dotted public name may be a hostile site's that resolves to loopback once its
    page has loaded (DNS rebinding): such a browser reaches us from loopback, with that name as
    Host and as Origin, and must find neither the open web page nor the test controls."""
    host = ""
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            break
    if host.startswith("["):  # [v6]:port
        return host.find("]") > 0
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.rstrip(".")
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name.endswith(".localhost") or "." not in name or name in named


def local_client(
    scope: Scope,
    networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
    named: frozenset[str] = frozenset(),
) -> bool:
    """Whether an unauthenticated local surface (the test controls, the open web page) may
    answer: the client's address is in ``networks`` and it names this server by a local host
    name (``local_host_name``)."""
    if not local_host_name(scope, named):
        return False
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    return any(address in network for network in networks)


def body_deadline(receive: Receive, seconds: float) -> Receive:
    """``receive`` for ``read_body``: the whole body must arrive within ``seconds`` of the first
    read, else ``RequestTimeoutError`` (408): a stalled or trickling body never holds a request."""
    deadline: float | None = None

    async def timed() -> Message:
        nonlocal deadline
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + seconds
        try:
            async with asyncio.timeout_at(deadline):
                return await receive()
        except TimeoutError:
            raise RequestTimeoutError(
                f"The request body did not arrive within {seconds:g} seconds."
            ) from None

    return timed


async def read_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    if declared is not None:
        try:
            if int(declared) > limit:
                raise RequestTooLargeError(
                    f"Maximum request length exceeded: the limit is {limit} bytes."
                )
        except ValueError:
            pass
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(
                    f"Maximum request length exceeded: the limit is {limit} bytes."
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
