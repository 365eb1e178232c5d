"""The identity platform's HTTP edge, in front of the Graph app: the paths of
``login.microsoftonline.com`` (``/{tenant}/oauth2/v2.0/…``, ``/{tenant}/v2.0/.well-known/…``,
``/{tenant}/discovery/v2.0/keys``, ``/common/discovery/instance``, ``/common/userrealm/…``,
``/devicelogin``) are answered here, in the identity platform's shapes (its errors are never
Graph's); every other request goes on to the Graph app untouched. Nothing here is counted by
Graph's throttling."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from graphpost.asgi import ASGIApp, Receive, Request, Response, Scope, Send
from graphpost.auth.keys import KeySet
from graphpost.auth.tokens import TokenService
from graphpost.errors import GraphpostError, SignInError
from graphpost.identity import discovery
from graphpost.identity.responses import (
    correlation_id,
    error_response,
    json_response,
)
from graphpost.services.directory import DirectoryService

log = logging.getLogger("graphpost.identity")
# second path segments that are the identity platform's, after /{tenant}
_TENANT_AREAS = frozenset({"oauth2", "v2.0", "discovery", "userrealm", ".well-known", "openid"})
MAX_FORM_BYTES = 64 * 1024  # Entra refuses far smaller bodies than Graph's 4 MB


def is_identity_path(path: str) -> bool:
    parts = [p for p in path.split("/") if p]
    if not parts:
        return False
    head = parts[0].lower()
    if head in (".well-known", "devicelogin"):
        return True
    return head != "v1.0" and len(parts) >= 2 and parts[1].lower() in _TENANT_AREAS


def _unknown_tenant(name: str) -> SignInError:
    return SignInError(
        "invalid_tenant",
        90002,
        f"Tenant '{name[:80]}' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud.",
    )


class IdentityEdge:
    """ASGI: the identity platform's endpoints, then ``inner`` for everything else."""

    def __init__(
        self,
        inner: ASGIApp,
        *,
        keys: KeySet,
        tokens: TokenService,
        directory: DirectoryService,
        base_url: str,
    ) -> None:
        self.inner = inner
        self.keys = keys
        self.tokens = tokens
        self.directory = directory
        self.base = base_url.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_identity_path(scope.get("path", "")):
            await self.inner(scope, receive, send)
            return
        request = Request.from_scope(scope)
        correlation = correlation_id(request.headers)
        try:
            response = await self._answer(request, receive)
        except SignInError as exc:
            response = error_response(exc, correlation)
        except GraphpostError as exc:  # a store failure, a body that did not arrive
            log.warning("identity request failed: %s", type(exc).__name__)
            response = error_response(
                SignInError("temporarily_unavailable", 90033, "The service is unavailable.",
                            status=503),
                correlation,
            )  # fmt: skip
        except Exception:
            log.exception("identity request failed (correlation %s)", correlation)
            response = error_response(
                SignInError("server_error", 90033, "An unexpected error occurred.", status=500),
                correlation,
            )
        headers = [
            (b"content-length", str(len(response.body)).encode()),
            (b"client-request-id", correlation.encode()),
            (b"x-ms-request-id", correlation.encode()),
            *response.headers,
        ]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _answer(self, request: Request, receive: Receive) -> Response:
        parts = [unquote(p) for p in request.raw_path.split("/") if p]
        lowered = [p.lower() for p in parts]
        if any("\x00" in p for p in parts):
            raise SignInError("invalid_request", 900144, "The request path contains NUL.")
        if request.method in ("GET", "HEAD"):
            found = await self._public(parts, lowered, request)
            if found is not None:
                return found
        raise SignInError(
            "invalid_request",
            900561,
            f"The endpoint only accepts {'POST' if request.method == 'GET' else 'GET'} "
            "requests, or does not exist.",
        )

    async def _public(
        self, parts: list[str], lowered: list[str], request: Request
    ) -> Response | None:
        if lowered == [".well-known", "jwks.json"] or (
            len(lowered) in (3, 4) and lowered[1] == "discovery" and lowered[-1] == "keys"
        ):
            return json_response(discovery.jwks(self.keys))
        if lowered[-2:] == [".well-known", "openid-configuration"] and len(lowered) in (3, 4):
            tenant_id = await self._tenant_id(parts[0])
            return json_response(discovery.openid_configuration(self.base, parts[0], tenant_id))
        if lowered[:3] == ["common", "discovery", "instance"] and len(lowered) == 3:
            return json_response(
                discovery.instance_discovery(self.base, request.query.get("authorization_endpoint"))
            )
        if len(lowered) == 3 and lowered[:2] == ["common", "userrealm"]:
            login = parts[2]
            domain = login.rsplit("@", 1)[-1] if "@" in login else ""
            known = bool(domain) and await self.directory.tenant(domain) is not None
            return json_response(discovery.user_realm(login, known, domain))
        return None

    async def _tenant_id(self, segment: str) -> str | None:
        """The tenant's id for a path's tenant segment (None: common or organizations)."""
        if segment.lower() in discovery.MULTI_TENANT:
            return None
        if len(segment) > 255:
            raise _unknown_tenant(segment)
        tenant = await self.directory.tenant(segment)
        if tenant is None:
            raise _unknown_tenant(segment)
        return tenant.id
