"""Access and ID tokens as the Microsoft identity platform issues them, signed RS256 by our
keys (``auth/keys.py``) and verified against them by key id.

Every token's issuer is ``{base_url}/{tenant_id}/v2.0``, the issuer of the OpenID discovery
document. Verification is cached per token string until it expires (PyJWT costs ~150 µs a
decode).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import jwt

from graphpost.auth.claims import decode_claims
from graphpost.auth.external import ExternalIssuers
from graphpost.auth.keys import LEEWAY_SECONDS, KeySet, SigningKey
from graphpost.auth.principal import Principal
from graphpost.domain import times
from graphpost.errors import AuthenticationError, NoPermissionsError

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
GRAPHPOST_APP_ID = "2e7a1f57-5cc7-4f5a-9d1c-6a9b6f0c1e01"  # the CLI's own client id
DEFAULT_BASE = "http://127.0.0.1:8765"
_CACHE_LIMIT = 50_000
_NO_PERMISSIONS = "The token contains no permissions, or permissions can not be understood."


def issuer_for(base_url: str, tenant_id: str) -> str:
    """The issuer of this server's tokens for a tenant (as ``login.microsoftonline.com``'s
    v2.0 endpoint names it: ``https://login.microsoftonline.com/{tenant}/v2.0``)."""
    return f"{base_url.rstrip('/')}/{tenant_id}/v2.0"


class TokenService:
    """Issues and verifies graphpost's tokens."""

    def __init__(
        self,
        keys: KeySet | SigningKey,
        *,
        base_url: str = DEFAULT_BASE,
        audiences: tuple[str, ...] = GRAPH_AUDIENCES,
        max_lifetime: int | None = None,
        clock: Callable[[], float] = times.wall,
        external: ExternalIssuers | None = None,
    ) -> None:
        self.keys = keys if isinstance(keys, KeySet) else KeySet.of(keys)
        self.base_url = base_url.rstrip("/")
        self.external = external  # GRAPHPOST_TRUSTED_ISSUERS
        self.audiences = audiences
        self.max_lifetime = max_lifetime or self.keys.max_lifetime
        self._clock = clock
        self._cache: dict[str, Principal] = {}

    @property
    def key(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self.keys.current

    def issuer(self, tenant_id: str) -> str:
        return issuer_for(self.base_url, tenant_id)

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

    def issue_id_token(
        self,
        *,
        tenant_id: str,
        client_id: str,
        user_id: str,
        upn: str,
        name: str,
        nonce: str | None,
        lifetime: int = 3600,
    ) -> str:
        """An OpenID Connect ID token for ``client_id`` (v2.0 shape)."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + min(lifetime, self.max_lifetime),
            "ver": "2.0",
            "tid": tenant_id,
            "oid": user_id,
            "sub": user_id,
            "preferred_username": upn,
            "name": name,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        key = self.keys.current
        return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})

    def _sign(self, tenant_id: str, app_id: str, extra: dict[str, Any], lifetime: int) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "aud": self.audiences[0],
            "iss": self.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + min(lifetime, self.max_lifetime),
            "ver": "2.0",
            "tid": tenant_id,
            "appid": app_id,
            "azp": app_id,
            "appidacr": "1",
            "uti": uuid.uuid4().hex[:22],
            **extra,
        }
        key = self.keys.current
        headers = {"kid": key.kid, "typ": "JWT"}
        return jwt.encode(claims, key.private, algorithm="RS256", headers=headers)

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
            if cached.expires + LEEWAY_SECONDS > now:
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
        claims = self._verified_claims(token)
        return self._principal(claims)

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """The claims of a token signed by one of our keys, for Graph, from our issuer, and
        within its lifetime."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError(
                "CompactToken parsing failed with error code: 80049217"
            ) from None
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise AuthenticationError(
                "Access token validation failure: the token was not signed by this server."
            )
        public = self.keys.public_key(kid)
        if public is None:
            raise AuthenticationError(
                "IDX10503: Signature validation failed. The token's kid is not one of this "
                "server's signing keys."
            )
        claims = decode_claims(
            token, public, algorithms=["RS256"], audiences=list(self.audiences),
            require=["exp", "nbf", "iss", "aud", "tid"],
        )  # fmt: skip
        if claims.get("iss") != self.issuer(str(claims["tid"])):
            raise AuthenticationError("Access token validation failure. Invalid issuer.")
        return claims

    @staticmethod
    def _principal(claims: dict[str, Any]) -> Principal:
        tenant = str(claims["tid"])
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        scp = claims.get("scp")
        roles = claims.get("roles")
        exp = claims["exp"]
        if not isinstance(exp, int):
            raise AuthenticationError("Access token validation failure: exp is not a number.")
        if scp:
            if not isinstance(scp, str) or not scp.split() or not claims.get("oid"):
                raise NoPermissionsError(_NO_PERMISSIONS)
            return Principal(tenant, app_id, str(claims["oid"]), frozenset(scp.split()), exp)
        if roles and isinstance(roles, list):
            return Principal(tenant, app_id, None, frozenset(map(str, roles)), exp)
        raise NoPermissionsError(_NO_PERMISSIONS)
