"""Access tokens of external identity providers (``GRAPHPOST_TRUSTED_ISSUERS``): an Entra ID
tenant, Keycloak, any OpenID Connect issuer whose tokens a gateway in front of graphpost
should accept.

A token is trusted when its ``iss`` is a configured issuer, its signature verifies with a key
of that issuer's JWKS (RS256 or ES256 only; the key's type must match the algorithm), its
``aud`` is one of the configured audiences and ``exp``/``nbf`` hold.

A token that names a user in any way (``scp``, ``idtyp`` other than "app", a user name claim,
Entra's ``oid`` differing from ``sub``) is a user's: its user is the local user whose
userPrincipalName or mail is the configured claim's value, and a token whose claim is missing,
unverified (``email`` without ``email_verified: true``) or does not map is refused (401). Only
a token that names no user is an application's, with the roles of ``roles_claim``. Every user
must be in the issuer's tenant; an issuer without one is trusted only while this server has a
single tenant (with several, the start is refused and its tokens are). Keys are fetched off the
event loop, kept, and fetched again when a token names a key id not yet seen, at most once
every ``REFETCH_SECONDS`` per issuer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from graphpost.auth.claims import INVALID, decode_claims
from graphpost.auth.principal import Principal
from graphpost.domain import times
from graphpost.errors import AuthenticationError, NoPermissionsError

log = logging.getLogger("graphpost.auth.external")

ALGORITHMS = ("RS256", "ES256")
REFETCH_SECONDS = 5.0  # an unknown key id fetches the JWKS again at most this often
FETCH_TIMEOUT_SECONDS = 10.0
MAX_DOCUMENT_BYTES = 1024 * 1024  # a discovery document or key set larger than this is refused
MAX_KEYS = 100
LEEWAY_SECONDS = 30
_CACHE_LIMIT = 50_000
_FIELDS = {
    "issuer", "jwks_uri", "audience", "user_claim", "tenant", "scopes", "roles_claim",
    "require_verified_email",
}  # fmt: skip
NO_PERMISSIONS = "The token contains no permissions, or permissions can not be understood."
# claims only a user's token carries: one of them present makes the token a user's
USER_CLAIMS = (
    "upn", "unique_name", "preferred_username", "email", "name", "given_name", "family_name",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One entry of ``GRAPHPOST_TRUSTED_ISSUERS``."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_uri: str | None = None  # None: from the issuer's /.well-known/openid-configuration
    user_claim: str = "preferred_username"  # mapped to a local user by UPN or mail
    tenant: str | None = None  # a local tenant (domain or id); None: the only one there is
    scopes: frozenset[str] | None = None  # delegated scopes for tokens without scp
    roles_claim: str = "roles"  # application permissions of a token without a user
    require_verified_email: bool = True  # user_claim "email": email_verified must be true


def _url(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"{what} must be an http(s) URL, not {value!r}")
    if any(ord(c) < 0x21 or c == "\x7f" for c in value):
        raise ValueError(f"{what} must not contain spaces or control characters")
    return value


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError(f"{what} must be a non-empty printable string, not {value!r}")
    return value.strip()


def _issuer(entry: object, index: int) -> TrustedIssuer:
    where = f"GRAPHPOST_TRUSTED_ISSUERS[{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {', '.join(unknown)}")
    issuer = _url(entry.get("issuer"), f"{where}.issuer")
    audience = entry.get("audience")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not audiences:
        raise ValueError(f"{where}.audience must be a string or a non-empty list of strings")
    checked = tuple(_name(a, f"{where}.audience") for a in audiences)
    jwks_uri = entry.get("jwks_uri")
    scopes = entry.get("scopes")
    fixed: frozenset[str] | None = None
    if scopes is not None:
        words = scopes.split() if isinstance(scopes, str) else scopes
        if not isinstance(words, list) or not words:
            raise ValueError(f"{where}.scopes must be a non-empty list (or space-separated)")
        fixed = frozenset(_name(s, f"{where}.scopes") for s in words)
    tenant = entry.get("tenant")
    verified = entry.get("require_verified_email", True)
    if not isinstance(verified, bool):
        raise ValueError(f"{where}.require_verified_email must be true or false")
    return TrustedIssuer(
        issuer=issuer,
        audiences=checked,
        jwks_uri=None if jwks_uri is None else _url(jwks_uri, f"{where}.jwks_uri"),
        user_claim=_name(entry.get("user_claim", "preferred_username"), f"{where}.user_claim"),
        tenant=None if tenant is None else _name(tenant, f"{where}.tenant"),
        scopes=fixed,
        roles_claim=_name(entry.get("roles_claim", "roles"), f"{where}.roles_claim"),
        require_verified_email=verified,
    )


def parse_trusted_issuers(text: str | None) -> tuple[TrustedIssuer, ...]:
    """The issuers of ``GRAPHPOST_TRUSTED_ISSUERS`` (a JSON list); ValueError saying what is
    wrong with it."""
    if text is None or not text.strip():
        return ()
    try:
        entries = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"GRAPHPOST_TRUSTED_ISSUERS is not JSON: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError("GRAPHPOST_TRUSTED_ISSUERS must be a JSON list of objects")
    issuers = tuple(_issuer(entry, i) for i, entry in enumerate(entries))
    seen = [i.issuer for i in issuers]
    if len(set(seen)) != len(seen):
        raise ValueError("GRAPHPOST_TRUSTED_ISSUERS names an issuer twice")
    return issuers


class Accounts(Protocol):
    """What verification needs of the directory."""

    async def user_of(self, key: str) -> tuple[str, str] | None:
        """(user id, tenant id) of the user whose userPrincipalName or mail is ``key``."""
        ...

    async def tenant_of(self, key: str | None) -> str | None:
        """The id of the tenant with this domain or id; for None, of the only tenant."""
        ...

    async def tenant_count(self) -> int:
        """How many tenants this server has."""
        ...


def fetch_json(url: str) -> dict[str, Any]:
    """GET a JSON object (blocking: run it in a thread), at most MAX_DOCUMENT_BYTES."""
    # http(s) only: checked when the setting is parsed (_url), and for a discovered jwks_uri
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return document


def _keys(document: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWKS we accept, by kid ("" for a key without one)."""
    out: dict[str, jwt.PyJWK] = {}
    listed = document.get("keys")
    for jwk in listed[:MAX_KEYS] if isinstance(listed, list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if jwk.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = jwt.PyJWK(jwk)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name not in ALGORITHMS:
            continue
        kid = jwk.get("kid")
        out[kid if isinstance(kid, str) else ""] = key
    return out


class IssuerKeys:
    """One issuer's signing keys, fetched when first needed and again for an unknown kid."""

    def __init__(
        self,
        issuer: TrustedIssuer,
        *,
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_uri = issuer.jwks_uri
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key(self, kid: str) -> jwt.PyJWK | None:
        found = self._keys.get(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._keys.get(kid)
            if found is not None:
                return found
            if self._fetched_at is not None and self._clock() - self._fetched_at < REFETCH_SECONDS:
                return None
            self._fetched_at = self._clock()
            try:
                self._keys = await asyncio.to_thread(self._load)
            except Exception as exc:  # the issuer is down or answers nonsense: refuse, log
                log.warning("keys of %s could not be fetched: %s", self.issuer.issuer, exc)
            return self._keys.get(kid)

    def _load(self) -> dict[str, jwt.PyJWK]:
        self.fetches += 1
        if self._jwks_uri is None:
            base = self.issuer.issuer.rstrip("/")
            discovery = self._fetch(f"{base}/.well-known/openid-configuration")
            if str(discovery.get("issuer", "")).rstrip("/") != base:
                raise ValueError("the discovery document names another issuer")
            self._jwks_uri = _url(discovery.get("jwks_uri"), "jwks_uri")
        return _keys(self._fetch(self._jwks_uri))


def _words(value: object) -> frozenset[str] | None:
    """A permission claim: a space-separated string or a list of strings; None if neither."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(w for v in value for w in v.split())
    return None


def names_user(claims: dict[str, Any], issuer: TrustedIssuer) -> bool:
    """Whether the token is a user's: it has ``scp``, an ``idtyp`` other than "app", the
    issuer's user claim or any claim naming a user, or (Entra) an ``oid`` that is not its
    ``sub`` (in an application's token both are the application's object id). Only a token
    that names no user in any of these ways is an application's."""
    if "scp" in claims or claims.get("idtyp", "app") != "app":
        return True
    if issuer.user_claim in claims or any(c in claims for c in USER_CLAIMS):
        return True
    oid, sub = claims.get("oid"), claims.get("sub")
    return oid is not None and sub is not None and oid != sub


def email_verified(claims: dict[str, Any], issuer: TrustedIssuer) -> bool:
    """Whether a token mapped by ``email`` may be: ``email_verified`` true (a JSON boolean,
    or the string "true" some issuers send); absent only when the issuer's
    ``require_verified_email`` is false (Entra ID never sends it); false never."""
    verified = claims.get("email_verified")
    if verified is None:
        return not issuer.require_verified_email
    return verified is True or verified == "true"


class ExternalIssuers:
    """Verifies tokens of the trusted external issuers; caches each until it expires."""

    def __init__(
        self,
        issuers: tuple[TrustedIssuer, ...],
        accounts: Accounts,
        *,
        fetch: Callable[[str], dict[str, Any]] = fetch_json,
        clock: Callable[[], float] = times.wall,
    ) -> None:
        self.accounts = accounts
        self._clock = clock
        self.keys = {i.issuer: IssuerKeys(i, fetch=fetch) for i in issuers}
        self._cache: dict[str, Principal] = {}

    def owns(self, token: str) -> bool:
        """Whether the token says it comes from one of these issuers (not verified yet)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return isinstance(claims.get("iss"), str) and claims["iss"] in self.keys

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires > self._clock():
                return cached
            del self._cache[token]
            raise AuthenticationError("Lifetime validation failed, the token is expired.")
        principal = await self._verify(token)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[token] = principal
        return principal

    async def _verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationError(
                "CompactToken parsing failed with error code: 80049217"
            ) from None
        keys = self.keys.get(str(unverified.get("iss")))
        if keys is None:
            raise AuthenticationError(f"{INVALID} Invalid issuer.")
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthenticationError(f"{INVALID} The token's algorithm is not accepted.")
        kid = header.get("kid")
        key = await keys.key(kid if isinstance(kid, str) else "")
        if key is None or key.algorithm_name != alg:
            raise AuthenticationError(f"{INVALID} The token was not signed by a key of its issuer.")
        issuer = keys.issuer
        claims = decode_claims(
            token, key.key, algorithms=[alg], audiences=list(issuer.audiences),
            require=["exp", "iss", "aud"], issuer=issuer.issuer,
        )  # fmt: skip
        return await self._principal(issuer, claims)

    async def _principal(self, issuer: TrustedIssuer, claims: dict[str, Any]) -> Principal:
        expires = int(claims["exp"])
        app_id = next(
            (
                str(claims[c])
                for c in ("azp", "appid", "client_id")
                if isinstance(claims.get(c), str)
            ),
            "external",
        )[:36]
        if names_user(claims, issuer):
            return await self._user(issuer, claims, app_id, expires)
        roles = _words(claims.get(issuer.roles_claim))
        if not roles:
            raise NoPermissionsError(NO_PERMISSIONS)
        tenant = await self.accounts.tenant_of(issuer.tenant)
        if tenant is None:
            raise AuthenticationError(
                f"{INVALID} No tenant for this issuer's application tokens: set its 'tenant'."
            )
        return Principal(tenant, app_id, None, roles, expires)

    async def _user(
        self, issuer: TrustedIssuer, claims: dict[str, Any], app_id: str, expires: int
    ) -> Principal:
        claim = issuer.user_claim
        who = claims.get(claim)
        if not isinstance(who, str) or not who.strip():
            raise AuthenticationError(
                f"{INVALID} The token is a user's but has no '{claim}' claim to map it by."
            )
        if claim == "email" and not email_verified(claims, issuer):
            raise AuthenticationError(f"{INVALID} The token's email is not verified.")
        found = await self.accounts.user_of(who.strip())
        if found is None:
            raise AuthenticationError(
                f"{INVALID} The token's user (claim '{claim}') is not a user of this server."
            )
        user_id, tenant_id = found
        tenant = await self.accounts.tenant_of(issuer.tenant)
        if tenant is None and issuer.tenant is None:
            raise AuthenticationError(
                f"{INVALID} This server has several tenants: set this issuer's 'tenant'."
            )
        if tenant != tenant_id:
            raise AuthenticationError(
                f"{INVALID} The token's user is not in the tenant this issuer is trusted for."
            )
        scopes = _words(claims.get("scp"))
        if not scopes:
            scopes = issuer.scopes
        if not scopes:
            raise NoPermissionsError(NO_PERMISSIONS)
        return Principal(tenant_id, app_id, user_id, scopes, expires)

    async def check_tenants(self) -> None:
        """Refuse (ValueError) an issuer without a 'tenant' on a server with several tenants:
        its users would be those of every tenant. Called at the start of `serve`."""
        untied = [i.issuer for k in self.keys.values() if (i := k.issuer).tenant is None]
        if untied and await self.accounts.tenant_count() > 1:
            raise ValueError(
                f"GRAPHPOST_TRUSTED_ISSUERS: {', '.join(untied)} has no 'tenant' and this "
                "server has several tenants; set each issuer's 'tenant' (a domain or id)"
            )
