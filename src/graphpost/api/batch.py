"""JSON batching: ``POST /v1.0/$batch`` with up to 20 requests, each answered by the app's one
internal entry point (the same routing, authentication, permissions, limits, throttling and
errors as a request of its own), independent ones a few at a time, ``dependsOn`` in order."""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import msgspec

from graphpost.api.errors import envelope
from graphpost.asgi import Receive, Request, Response
from graphpost.errors import BatchFormatError

MAX_REQUESTS = 20
CONCURRENCY = 4  # Graph's per-app, per-mailbox concurrency: more at once would only be throttled
METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})
INVALID = "Invalid batch payload format."
_MAX_ID = 256
_MAX_URL = 32768  # a batch is also the way around URL length limits
_encode = msgspec.json.Encoder().encode
_JSON_TYPES = ("application/json", "text/json")
# set while a batch's members run: a member that reaches $batch by any spelling is refused
_IN_BATCH: ContextVar[bool] = ContextVar("graphpost_in_batch", default=False)
NESTED = "Batches cannot be nested: a request of a batch may not be a $batch."
# a batch member's own headers never override these (the batch's token is every member's)
_DROPPED = frozenset({"authorization", "content-length", "host", "transfer-encoding"})


class Responder(Protocol):
    async def respond(self, request: Request, receive: Receive | None = None) -> Response: ...


@dataclass
class Member:
    id: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    depends_on: list[str]
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 0
    answer: dict[str, Any] = field(default_factory=dict)


def _refuse(message: str = INVALID) -> BatchFormatError:
    return BatchFormatError(message)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";")[0].strip().lower()
    return media in _JSON_TYPES or media.endswith("+json")


def _member(raw: Any) -> Member:
    if not isinstance(raw, dict):
        raise _refuse()
    rid, method, url = raw.get("id"), raw.get("method"), raw.get("url")
    if not isinstance(rid, str) or not rid.strip() or len(rid) > _MAX_ID:
        raise _refuse("Every request in a batch needs an 'id': a non-empty string.")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _refuse(f"Request '{rid}' needs a 'method': one of {', '.join(sorted(METHODS))}.")
    if not isinstance(url, str) or not url.strip() or len(url) > _MAX_URL:
        raise _refuse(f"Request '{rid}' needs a 'url', relative to /v1.0 (e.g. /me/messages).")
    parts = urlsplit(url.strip())
    if parts.scheme or parts.netloc or url.strip().startswith("//"):
        raise _refuse()  # an absolute URL: Graph refuses the batch whole
    segments = [unquote(p) for p in parts.path.split("/") if p]  # as the router reads them
    if segments and segments[0].lower() == "$batch":
        raise _refuse(f"Request '{rid}' is a $batch. {NESTED}")
    headers_raw = raw.get("headers", {})
    if headers_raw is None:
        headers_raw = {}
    if not isinstance(headers_raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers_raw.items()
    ):
        raise _refuse(f"The 'headers' of request '{rid}' must be an object of strings.")
    headers = {k.lower(): v for k, v in headers_raw.items() if k.lower() not in _DROPPED}
    body = b""
    if "body" in raw and raw["body"] is not None:
        content_type = headers.get("content-type")
        if not content_type:
            raise _refuse(f"Request '{rid}' has a body but no Content-Type in its 'headers'.")
        value = raw["body"]
        if isinstance(value, (dict, list)):
            body = _encode(value)
        elif isinstance(value, str):
            try:
                body = base64.b64decode(
                    value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4),
                    validate=True,
                )
            except (binascii.Error, ValueError):
                raise _refuse(
                    f"The 'body' of request '{rid}' is neither a JSON object nor base64."
                ) from None
        else:
            raise _refuse(f"The 'body' of request '{rid}' is neither a JSON object nor base64.")
    depends = raw.get("dependsOn", [])
    if depends is None:
        depends = []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        raise _refuse(f"The 'dependsOn' of request '{rid}' must be a list of request ids.")
    return Member(rid, method.upper(), url.strip(), headers, body, depends)


def parse(request: Request) -> list[Member]:
    """The batch's members, checked whole: any fault refuses the batch (400)."""
    document = request.json(dict[str, Any])
    raw = document.get("requests")
    if not isinstance(raw, list):
        raise _refuse()
    if not raw:
        raise _refuse("The batch has no requests.")
    if len(raw) > MAX_REQUESTS:
        raise _refuse("Number of requests inside batch exceeds the limit.")
    members = [_member(item) for item in raw]
    by_id: dict[str, Member] = {}
    for m in members:
        for dep in m.depends_on:  # Graph: a dependency comes earlier in the array
            if dep.lower() not in by_id:
                raise _refuse(
                    f"Invalid dependency for request Id '{m.id}': '{dep[:_MAX_ID]}' is not a "
                    "request that comes before it in the batch."
                )
        key = m.id.lower()  # ids are not case-sensitive
        if key in by_id:
            raise _refuse(f"The batch has more than one request with the id '{m.id}'.")
        by_id[key] = m
    return members


def _title(name: bytes) -> str:
    return "-".join(p.capitalize() for p in name.decode("latin-1").split("-"))


def _answer(member: Member, response: Response) -> dict[str, Any]:
    headers = {_title(k): v.decode("latin-1") for k, v in response.headers}
    out: dict[str, Any] = {"id": member.id, "status": response.status, "headers": headers}
    if response.content_type is not None:
        content_type = response.content_type.decode("latin-1")
        headers["Content-Type"] = content_type
        if response.body:
            if _is_json(content_type):
                out["body"] = msgspec.json.decode(response.body)
            else:
                out["body"] = base64.b64encode(response.body).decode("ascii")
    return out


def _failed_dependency(member: Member, failed: str) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    body = envelope(
        "FailedDependency",
        f"The request depends on request '{failed}', which failed.",
        request_id=request_id,
        client_request_id=request_id,
    )
    return {
        "id": member.id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": msgspec.json.decode(body),
    }


async def run(app: Responder, request: Request) -> Response:
    if _IN_BATCH.get():
        raise _refuse(NESTED)
    members = parse(request)
    by_id = {m.id.lower(): m for m in members}
    gate = asyncio.Semaphore(CONCURRENCY)
    authorization = request.headers.get("authorization", "")
    # members carry the batch's client-request-id (as Graph's do) unless they set their own
    outer_id = request.headers.get("client-request-id")

    async def one(member: Member) -> None:
        try:
            for dep in member.depends_on:
                before = by_id[dep.lower()]
                await before.done.wait()
                if before.status >= 400:
                    member.status = 424
                    member.answer = _failed_dependency(member, before.id)
                    return
            path, _, query = member.url.split("#", 1)[0].lstrip("/").partition("?")
            raw_path = f"/v1.0/{path}"  # relative to /v1.0, whatever it says (as Graph)
            headers = {**member.headers, "authorization": authorization}
            if outer_id and "client-request-id" not in headers:
                headers["client-request-id"] = outer_id
            scope = {
                "type": "http",
                "method": member.method,
                "path": raw_path,
                "raw_path": raw_path.encode("utf-8"),
                "query_string": query.encode("utf-8"),
                "headers": [
                    (k.encode("latin-1", "replace"), v.encode("latin-1", "replace"))
                    for k, v in headers.items()
                ],
            }
            sub = Request.from_scope(scope)
            sub.body = member.body
            async with gate:
                response = await app.respond(sub)
                if response.stream is not None:
                    response.body, response.stream = await response.read(), None
            member.status = response.status
            member.answer = _answer(member, response)
        finally:
            member.done.set()

    entered = _IN_BATCH.set(True)  # the members' tasks copy this context
    try:
        await asyncio.gather(*(one(m) for m in members))
    finally:
        _IN_BATCH.reset(entered)
    body = {"responses": [m.answer for m in members]}
    return Response(200, _encode(body))
