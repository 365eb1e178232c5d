"""Access tokens as Entra issues them for Graph (v1.0 shape), signed RS256 by our key.

Verification is cached per token string until it expires (PyJWT costs ~150 µs a decode).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt

from graphpost.auth.external import ExternalIssuers
from graphpost.auth.keys import SigningKey
from graphpost.auth.principal import Principal
from graphpost.errors import AuthenticationError, NoPermissionsError

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
GRAPHPOST_APP_ID = "2e7a1f57-5cc7-4f5a-9d1c-6a9b6f0c1e01"  # the CLI's own client id
_CACHE_LIMIT = 50_000


def issuer_for(tenant_id: str) -> str:
    return f"https://sts.windows.net/{tenant_id}/"


class TokenService:
    """Issues and verifies graphpost's access tokens."""

    def __init__(
        self,
        key: SigningKey,
        *,
        audiences: tuple[str, ...] = GRAPH_AUDIENCES,
        clock: Callable[[], float] = time.time,
        external: ExternalIssuers | None = None,
    ) -> None:
        self.key = key
        self.external = external  # GRAPHPOST_TRUSTED_ISSUERS
        self.audiences = audiences
        self._clock = clock
        self._cache: dict[str, Principal] = {}

    # ------------------------------------------------------------ issuing

    def issue_delegated(
        self,
        *,
        tenant_id: str,
        user_id: str,
        upn: str,
        name: str,
        scopes: list[str],
        app_id: str = GRAPHPOST_APP_ID,
        lifetime: int = 3600,
    ) -> str:
        claims = {
            "oid": user_id,
            "sub": user_id,
            "upn": upn,
            "unique_name": upn,
            "preferred_username": upn,
            "name": name,
            "scp": " ".join(scopes),
            "idtyp": "user",
        }
        return self._sign(tenant_id, app_id, claims, lifetime)

    def issue_application(
        self, *, tenant_id: str, app_id: str, roles: list[str], lifetime: int = 3600
    ) -> str:
        claims = {"oid": app_id, "sub": app_id, "roles": roles, "idtyp": "app"}
        return self._sign(tenant_id, app_id, claims, lifetime)

    def _sign(self, tenant_id: str, app_id: str, extra: dict[str, Any], lifetime: int) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "aud": self.audiences[0],
            "iss": issuer_for(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "ver": "1.0",
            "tid": tenant_id,
            "appid": app_id,
            "appidacr": "1",
            "uti": uuid.uuid4().hex[:22],
            **extra,
        }
        headers = {"kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(claims, self.key.private, algorithm="RS256", headers=headers)

    # ------------------------------------------------------------ verifying

    async def authenticate(self, token: str) -> Principal:
        """The caller behind a bearer token: a token whose ``iss`` is a trusted external issuer
        is verified by ``auth/external.py``, every other one by ``verify``."""
        if self.external is not None and self.external.owns(token):
            return await self.external.verify(token)
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        """The caller behind ``token``; AuthenticationError when it cannot be trusted."""
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires > now:
                return cached
            del self._cache[token]
            raise AuthenticationError("Lifetime validation failed, the token is expired.")
        principal = self._decode(token)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        if not token:
            raise AuthenticationError("Access token is empty.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError(
                "CompactToken parsing failed with error code: 80049217"
            ) from None
        if header.get("alg") != "RS256" or header.get("kid") != self.key.kid:
            raise AuthenticationError(
                "Access token validation failure: the token was not signed by this server."
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key.public,
                algorithms=["RS256"],
                audience=list(self.audiences),
                options={"require": ["exp", "nbf", "iss", "aud", "tid"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("Lifetime validation failed, the token is expired.") from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(
                "Access token validation failure. Invalid audience."
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"Access token validation failure: {exc}.") from None
        tenant = str(claims["tid"])
        if claims.get("iss") not in (
            issuer_for(tenant),
            f"https://login.microsoftonline.com/{tenant}/v2.0",
        ):
            raise AuthenticationError("Access token validation failure. Invalid issuer.")
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        scp = claims.get("scp")
        roles = claims.get("roles")
        if scp:
            if not isinstance(scp, str) or not scp.split() or not claims.get("oid"):
                raise NoPermissionsError(
                    "The token contains no permissions, or permissions can not be understood."
                )
            return Principal(
                tenant, app_id, str(claims["oid"]), frozenset(scp.split()), int(claims["exp"])
            )
        if roles and isinstance(roles, list):
            return Principal(tenant, app_id, None, frozenset(map(str, roles)), int(claims["exp"]))
        raise NoPermissionsError(
            "The token contains no permissions, or permissions can not be understood."
        )
