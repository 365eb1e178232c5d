"""CORS for browser apps (SPAs calling Graph with MSAL.js): an ASGI wrapper that answers
preflights and adds the CORS headers to the Graph API (``/v1.0/...``) and to the identity
platform's paths (token, device code, discovery, ``/common/...``), matched by their shape."""

from __future__ import annotations

import re

from graphpost.asgi import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
EXPOSE_HEADERS = (
    b"ETag, Location, Preference-Applied, Content-Range, request-id, client-request-id, "
    b"Retry-After, WWW-Authenticate, Allow, RateLimit-Limit, RateLimit-Remaining, "
    b"RateLimit-Reset"
)
MAX_AGE = b"3600"
# what a preflight may ask to send: header names, commas and spaces (echoed back)
_HEADER_LIST = re.compile(rb"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_MAX_REQUESTED = 4096
_IDENTITY_ENDPOINTS = frozenset({"token", "devicecode"})


def covered(path: str) -> bool:
    """The Graph API, or an identity platform endpoint a browser calls."""
    parts = [p.lower() for p in path.split("/") if p]
    if not parts:
        return False
    if parts[0] in ("v1.0", "common"):
        return True
    rest = parts[1:]
    if rest[:1] == ["discovery"]:
        return True
    if len(rest) == 3 and rest[:2] == ["oauth2", "v2.0"] and rest[2] in _IDENTITY_ENDPOINTS:
        return True
    return rest == ["v2.0", ".well-known", "openid-configuration"]


def parse_origins(value: str) -> tuple[str, ...]:
    """``GRAPHPOST_CORS_ORIGINS``: comma-separated origins, ``*`` for any; empty: none."""
    return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())


class Cors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.any = "*" in origins
        self.origins = frozenset(o.lower() for o in origins if o != "*")

    def _allowed(self, origin: bytes) -> bytes | None:
        """The Access-Control-Allow-Origin value for this origin, or None."""
        if self.any:
            return b"*"
        try:
            text = origin.decode("ascii")
        except UnicodeDecodeError:
            return None
        return origin if text.lower() in self.origins else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not covered(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin")
        allow = self._allowed(origin) if origin else None
        if allow is None:
            await self.app(scope, receive, send)
            return
        common = [(b"access-control-allow-origin", allow)]
        if not self.any:
            common.append((b"vary", b"Origin"))
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            answer = [
                *common,
                (b"access-control-allow-methods", ALLOW_METHODS),
                (b"access-control-max-age", MAX_AGE),
                (b"content-length", b"0"),
            ]
            requested = headers.get(b"access-control-request-headers", b"").strip()
            if requested and len(requested) <= _MAX_REQUESTED and _HEADER_LIST.match(requested):
                answer.append((b"access-control-allow-headers", requested))
            await send({"type": "http.response.start", "status": 204, "headers": answer})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [*common, (b"access-control-expose-headers", EXPOSE_HEADERS)]

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_cors)
