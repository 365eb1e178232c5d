"""A minimal request/response pair over raw ASGI, shared by the HTTP edges (api, identity, web)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote

import msgspec

from graphpost.errors import (
    BodyNotReadableError,
    PropertyValueError,
    RequestTimeoutError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)

T = TypeVar("T")
JSON_TYPE = (
    b"application/json;odata.metadata=minimal;odata.streaming=true;"
    b"IEEE754Compatible=false;charset=utf-8"
)


@dataclass(slots=True)
class Request:
    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> Request:
        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        query: dict[str, str] = {}
        qs = scope.get("query_string", b"")
        if qs:
            for key, value in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                # system query options are matched case-insensitively ($Filter, $TOP)
                query[key.lower() if key.startswith("$") else key] = value
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1").split("?", 1)[0]
        return cls(scope["method"], raw_path, query, headers)

    def segments(self) -> list[str]:
        """Path segments, each percent-decoded on its own (an id may hold an encoded /)."""
        return [unquote(s) for s in self.raw_path.split("/") if s != ""]

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
        try:
            return msgspec.json.decode(body, type=kind)
        except msgspec.ValidationError as exc:
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
            raise BodyNotReadableError(
                f"The request body could not be read as JSON: {exc}."
            ) from None


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: bytes | None = JSON_TYPE
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def body_deadline(
    receive: Callable[[], Awaitable[dict[str, Any]]], seconds: float
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` for ``read_body``: the whole body must arrive within ``seconds`` of the first
    read, else ``RequestTimeoutError`` (408): a stalled or trickling body never holds a request."""
    deadline: float | None = None

    async def timed() -> dict[str, Any]:
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


async def read_body(receive: Any, limit: int, declared: str | None) -> bytes:
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
