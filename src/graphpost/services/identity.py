"""The identity platform's use cases: app registration, the token endpoint's grants
(client credentials, password, refresh token, authorization code with PKCE, device code),
sign-in with lock-out, and the codes a person carries between a page and an app.

Every refusal is a ``SignInError`` carrying the identity platform's OAuth error and AADSTS
number; ``identity/`` renders it. Secrets, passwords, codes and tokens are never logged nor
put in an error message; they are stored only as SHA-256 digests (passwords: argon2id).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from graphpost.auth.passwords import check_password, digest, hash_password, new_secret, same_digest
from graphpost.auth.tokens import TokenService
from graphpost.domain import ids, times
from graphpost.errors import AlreadyExistsError, InvalidInputError, NotFoundError, SignInError
from graphpost.ports.directory import Tenant, User
from graphpost.ports.identity import AppRegistration, Grant, IdentityStore
from graphpost.services.cache import ExpiringCache
from graphpost.services.directory import DirectoryService

GRAPH_RESOURCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
# what `.default` grants a user signing in through an app: there is no consent store, so an
# app asking for its "default" permissions gets the standard mail set
DEFAULT_DELEGATED = ("User.Read", "Mail.ReadWrite", "Mail.Send")
MULTI_TENANT = frozenset({"common", "organizations", "consumers"})
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

# the demo tenant's documented sign-in: every demo user's password, and a public client
DEMO_PASSWORD = "graphpost-demo"  # noqa: S105 - documented, demo tenant only
DEMO_CLIENT_ID = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"
MAILBOX_PAGE_CLIENT = "graphpost-mailbox-page"  # the client sign-ins on the web page count against
DEMO_CLIENT_NAME = "graphpost demo client"
DEMO_REDIRECT_URI = "http://localhost"

CODE_SECONDS = 600  # an authorization code lives 10 minutes
DEVICE_SECONDS = 900  # a device code 15 minutes, as Entra's
DEVICE_INTERVAL = 1  # seconds between polls the client is asked to wait
REFRESH_SECONDS = 90 * 24 * 3600  # a refresh token 90 days, as Entra's
FAILURE_WINDOW_MS = 60_000
MAX_USER_FAILURES = 5  # per user in a minute, then locked out (50053) for the minute
MAX_CLIENT_FAILURES = 20  # per client in a minute, for users of the app's tenant
# per client in a minute, for user names that are nobody of the app's tenant: counted apart,
# so that made-up names cannot lock a client for its real users
MAX_CLIENT_UNKNOWN_FAILURES = 200
MAX_PASSWORD_CHECKS = 4  # argon2 checks running at once in a process
MAX_PASSWORD_WAITING = 64  # sign-ins waiting for one; beyond, refused at once
MAX_SCOPE_CHARS = 2048  # a scope parameter's length
MAX_SCOPES = 50  # and its number of scopes
MAX_PENDING_DEVICE_CODES = 100  # live device codes per client
_APP_CACHE_SECONDS = 5.0
_PURGE_EVERY_MS = 60_000  # expired grants and old failures are deleted at most this often
_PERMISSION = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels (no words), no look-alike digits
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def _missing(name: str) -> SignInError:
    return SignInError(
        "invalid_request", 900144, f"The request body must contain the following parameter: "
        f"'{name}'."
    )  # fmt: skip


def _redirect_mismatch(app: AppRegistration, uri: str) -> SignInError:
    shown = "".join(c if 32 < ord(c) < 127 else "?" for c in uri[:300])
    return SignInError(
        "invalid_request", 50011, f"The redirect URI '{shown}' specified in the request does "
        f"not match the redirect URIs configured for the application '{app.id}'.",
    )  # fmt: skip


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def client_info(user: User) -> str:
    """MSAL's ``client_info``: base64url JSON of the user's and tenant's ids."""
    return _b64url(json.dumps({"uid": user.id, "utid": user.tenant_id}).encode())


@dataclass(frozen=True, slots=True)
class Scopes:
    """A delegated scope request, split: Graph permissions and OpenID Connect scopes."""

    graph: tuple[str, ...]
    oidc: frozenset[str]

    @property
    def all(self) -> tuple[str, ...]:
        return self.graph + tuple(sorted(self.oidc))

    def shown(self) -> str:
        """The ``scope`` of a token response (Graph's permissions by their short names)."""
        order = ("openid", "profile", "email", "offline_access")
        return " ".join(self.graph + tuple(s for s in order if s in self.oidc))


def parse_scopes(raw: str) -> Scopes:
    """``Mail.Read``, ``https://graph.microsoft.com/Mail.Read``, ``…/.default``, plus
    ``openid profile email offline_access``."""
    graph: list[str] = []
    oidc: set[str] = set()
    items = raw.split()
    if len(raw) > MAX_SCOPE_CHARS or len(items) > MAX_SCOPES:
        raise SignInError(
            "invalid_scope", 70011, "The provided value for the input parameter 'scope' is "
            f"not valid: at most {MAX_SCOPES} scopes in {MAX_SCOPE_CHARS} characters.",
        )  # fmt: skip
    for item in items:
        if item.lower() in OIDC_SCOPES:
            oidc.add(item.lower())
            continue
        name = item
        if "/" in item:
            resource, _, name = item.rpartition("/")
            if resource.lower().rstrip("/") not in GRAPH_RESOURCES:
                raise SignInError(
                    "invalid_scope", 70011, "The provided value for the input parameter "
                    "'scope' is not valid: graphpost issues tokens for Microsoft Graph only "
                    f"(https://graph.microsoft.com/...), not for '{resource[:100]}'."
                )  # fmt: skip
        if name == ".default":
            for default in DEFAULT_DELEGATED:
                if default not in graph:
                    graph.append(default)
            continue
        if not _PERMISSION.match(name):
            raise SignInError(
                "invalid_scope", 70011, "The provided value for the input parameter 'scope' "
                "is not valid: a scope is a permission name such as Mail.Read."
            )  # fmt: skip
        if name not in graph:
            graph.append(name)
    if not graph:  # only OpenID scopes: a token for Graph's profile read, as Entra gives
        graph.append("User.Read")
    return Scopes(tuple(graph), frozenset(oidc))


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    """A checked ``/authorize`` request (everything the sign-in page carries along)."""

    tenant_segment: str
    app: AppRegistration
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    response_mode: str
    login_hint: str | None


@dataclass(frozen=True, slots=True)
class DeviceStart:
    device_code: str
    user_code: str
    expires_in: int
    interval: int


_LOOPBACK = ("localhost", "127.0.0.1")


def parse_redirect(uri: str) -> SplitResult | None:
    """A redirect URI's parts, or None when a browser might read it otherwise than we do:
    printable ASCII only (no backslash, whitespace or control character), an absolute
    http(s) URI without user info or fragment, a valid port, and one that reads back
    unchanged."""
    if not 0 < len(uri) <= 2000 or any(not 33 <= ord(c) <= 126 for c in uri):
        return None
    if "\\" in uri or "@" in uri or "#" in uri:
        return None
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or urlunsplit(parts) != uri
        or parts.netloc.lower() != _netloc(parts.hostname, port)
        or (parts.path and not parts.path.startswith("/"))
    ):
        return None
    return parts


def _netloc(host: str, port: int | None) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return bracketed if port is None else f"{bracketed}:{port}"


def failure_name_key(username: str) -> str:
    """The failure key of a user name that is nobody's: its digest, never the name."""
    return "name:" + hashlib.sha256(username.lower().encode("utf-8", "replace")).hexdigest()


def redirect_allowed(app: AppRegistration, uri: str) -> bool:
    """An exact match with a registered URI; for a public client, ``http://localhost`` (or
    127.0.0.1) on any port matches a registered ``http://localhost`` as Entra allows for
    native apps (on any path when the registered one has none, else on that path). A URI a
    browser might read otherwise than we do (``parse_redirect``) never matches."""
    given = parse_redirect(uri)
    if given is None:
        return False
    if uri in app.redirect_uris:
        return True
    if not app.public_client or given.scheme != "http" or given.hostname not in _LOOPBACK:
        return False
    for registered in app.redirect_uris:
        r = parse_redirect(registered)
        if r is None or r.scheme != "http" or r.hostname not in _LOOPBACK:
            continue
        if r.path in ("", "/") or r.path == given.path:
            return True
    return False


class IdentityService:
    def __init__(
        self,
        store: IdentityStore,
        directory: DirectoryService,
        tokens: TokenService,
        *,
        access_lifetime: int = 3600,
        clock: Callable[[], float] = times.wall,
    ) -> None:
        self.store = store
        self.directory = directory
        self.tokens = tokens
        self.access_lifetime = min(access_lifetime, tokens.max_lifetime)
        self._clock = clock
        self._apps: ExpiringCache[AppRegistration | None] = ExpiringCache(
            seconds=_APP_CACHE_SECONDS, size=10_000
        )
        self._tenants: ExpiringCache[Tenant | None] = ExpiringCache(
            seconds=_APP_CACHE_SECONDS, size=10_000
        )
        self._purged_ms = 0
        self._attempts: dict[str, list[Any]] = {}  # key -> [its lock, attempts holding it]
        self._checks = asyncio.Semaphore(MAX_PASSWORD_CHECKS)
        self._checks_waiting = 0

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _add_grant(self, grant: Grant) -> None:
        """Store a grant; now and then, forget the expired ones and old failures first."""
        now = self._now_ms()
        if now - self._purged_ms >= _PURGE_EVERY_MS:
            self._purged_ms = now
            await self.store.purge(now, now - 3_600_000)
        await self.store.add_grant(grant)

    # ------------------------------------------------------------------ apps

    async def register_app(
        self,
        name: str,
        *,
        roles: list[str],
        tenant_key: str | None,
        redirect_uris: list[str],
        public: bool,
        client_id: str | None = None,
    ) -> tuple[AppRegistration, str | None]:
        """A new app and its secret (shown once; None for a public client)."""
        name = name.strip()
        if not name or len(name) > 255 or any(ord(c) < 32 for c in name):
            raise InvalidInputError("An app needs a name of 1 to 255 printable characters.")
        tenant = await self._tenant_for_app(tenant_key)
        for uri in redirect_uris:
            if parse_redirect(uri) is None:
                raise InvalidInputError(
                    f"'{uri[:200]!r}' is not an absolute http(s) URI of printable ASCII "
                    "without user info or fragment."
                )
        if public and roles:
            raise InvalidInputError(
                "A public client has no secret, so it cannot hold application roles: "
                "register a confidential app for --roles."
            )
        for role in roles:
            if not _PERMISSION.match(role):
                raise InvalidInputError(f"'{role[:80]}' is not a permission name.")
        secret = None if public else new_secret()
        app = AppRegistration(
            id=client_id or ids.guid(),
            tenant_id=tenant.id,
            name=name,
            secret_digest=None if secret is None else digest(secret),
            roles=tuple(dict.fromkeys(roles)),
            redirect_uris=tuple(dict.fromkeys(redirect_uris)),
            public_client=public,
        )
        try:
            await self.store.add_app(app)
        except AlreadyExistsError:
            raise AlreadyExistsError(
                f"The tenant {tenant.domain} already has an app named '{name}'."
            ) from None
        return app, secret

    async def _tenant_for_app(self, key: str | None) -> Tenant:
        if key is not None:
            tenant = await self.directory.tenant(key)
            if tenant is None:
                raise NotFoundError(f"No tenant '{key}'.")
            return tenant
        tenants = await self.directory.tenants()
        if len(tenants) != 1:
            raise InvalidInputError(
                "There are several tenants: name one with --tenant."
                if tenants
                else "There is no tenant yet: add a user or run `graphpost demo`."
            )
        return tenants[0]

    async def apps(self) -> list[AppRegistration]:
        return await self.store.list_apps()

    async def remove_app(self, key: str) -> AppRegistration:
        """Remove an app by client id or name."""
        apps = [a for a in await self.store.list_apps() if key in (a.id, a.name)]
        if not apps:
            raise NotFoundError(f"No app '{key}'.")
        if len(apps) > 1:
            raise InvalidInputError(f"Several apps are named '{key}': remove one by client id.")
        await self.store.remove_app(apps[0].id)
        self._apps.clear()
        return apps[0]

    async def app(self, client_id: str) -> AppRegistration | None:
        """An app by client id (cached a few seconds: the token endpoint's hot path)."""
        known, cached = self._apps.get(client_id)
        if known:
            return cached
        found = await self.store.find_app(client_id) if len(client_id) <= 64 else None
        self._apps.put(client_id, found)
        return found

    # ------------------------------------------------------------------ passwords

    async def set_password(self, user_key: str, password: str) -> User:
        user = await self.directory.user(user_key)
        if user is None:
            raise NotFoundError(f"No user '{user_key}'.")
        if not 8 <= len(password) <= 256 or "\x00" in password:
            raise InvalidInputError("A password has 8 to 256 characters (no NUL).")
        hashed = await asyncio.to_thread(hash_password, password)
        await self.store.set_password_hash(user.id, hashed)
        return user

    async def seed_demo(self, tenant: Tenant) -> None:
        """The demo users' documented password (for those without one yet: a password changed
        since is kept) and the demo public client."""
        hashed: str | None = None
        for user in await self.directory.users(tenant.id):
            if await self.store.password_hash(user.id) is None:
                if hashed is None:  # one hash for all: the password is public anyway
                    hashed = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
                await self.store.set_password_hash(user.id, hashed)
        if await self.store.find_app(DEMO_CLIENT_ID) is None:
            app = AppRegistration(
                id=DEMO_CLIENT_ID, tenant_id=tenant.id, name=DEMO_CLIENT_NAME,
                secret_digest=None, roles=(), redirect_uris=(DEMO_REDIRECT_URI,),
                public_client=True,
            )  # fmt: skip
            with contextlib.suppress(AlreadyExistsError):  # another process, this instant
                await self.store.add_app(app)

    async def sign_in(self, app: AppRegistration, username: str, password: str) -> User:
        """The user behind a user name and password, for ``app``; lock-out after repeated
        failures (per user and per client, across processes).

        Attempts for one user (or user name) are taken one at a time in a process, each
        counted before its password is checked, so that concurrent guesses check at most
        ``MAX_USER_FAILURES`` passwords a minute; at most ``MAX_PASSWORD_CHECKS`` argon2
        checks run at once (beyond ``MAX_PASSWORD_WAITING`` waiting, 503 at once)."""
        user = await self.directory.user(username) if 0 < len(username) <= 320 else None
        known = user is not None and user.tenant_id == app.tenant_id
        user_key = f"user:{user.id}" if user else failure_name_key(username)
        client_key = f"client:{app.id}" if known else f"client-unknown:{app.id}"
        client_limit = MAX_CLIENT_FAILURES if known else MAX_CLIENT_UNKNOWN_FAILURES
        async with self._attempt_lock(user_key):
            since = self._now_ms() - FAILURE_WINDOW_MS
            if await self.store.count_failures(user_key, since) >= MAX_USER_FAILURES:
                raise SignInError(
                    "invalid_grant", 50053, "Your account is locked because you've tried to "
                    "sign in too many times with an incorrect user ID or password. Wait a "
                    "minute.",
                )  # fmt: skip
            if await self.store.count_failures(client_key, since) >= client_limit or (
                not known
                and await self.store.count_failures(f"client:{app.id}", since)
                >= MAX_CLIENT_FAILURES
            ):
                raise SignInError(
                    "invalid_grant", 50053, "Sign-ins through this application are paused "
                    "after too many failed attempts with incorrect user IDs or passwords. "
                    "Wait a minute.",
                )  # fmt: skip
            stored = await self.store.password_hash(user.id) if user else None
            ok = await self._check_password(stored, password)
            if not known or not ok:
                await self.store.record_failure([user_key, client_key], self._now_ms())
                raise SignInError(
                    "invalid_grant", 50126,
                    "Error validating credentials due to invalid username or password.",
                )  # fmt: skip
        assert user is not None
        return user

    async def sign_in_page(self, username: str, password: str) -> User:
        """The user behind a user name and password on graphpost's own mailbox page: the
        same checks and lock-out as ``sign_in``, counted against the page as the client (one
        per tenant)."""
        user = await self.directory.user(username) if 0 < len(username) <= 320 else None
        page = AppRegistration(
            id=MAILBOX_PAGE_CLIENT, tenant_id=user.tenant_id if user else "", name="mailbox page",
            secret_digest=None, public_client=True,
        )  # fmt: skip
        return await self.sign_in(page, username, password)

    @contextlib.asynccontextmanager
    async def _attempt_lock(self, key: str) -> AsyncIterator[None]:
        """One sign-in attempt at a time for ``key`` in this process."""
        entry = self._attempts.get(key)
        if entry is None:
            entry = self._attempts[key] = [asyncio.Lock(), 0]
        lock: asyncio.Lock = entry[0]
        entry[1] += 1
        try:
            async with lock:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._attempts.pop(key, None)

    async def _check_password(self, stored: str | None, password: str) -> bool:
        """argon2 in a thread, a few at a time; refused at once when too many are waiting."""
        if self._checks_waiting >= MAX_PASSWORD_WAITING:
            raise SignInError(
                "temporarily_unavailable", 90033, "Too many sign-ins at once. Try again in "
                "a few seconds.", status=503,
            )  # fmt: skip
        self._checks_waiting += 1
        try:
            await self._checks.acquire()
        finally:
            self._checks_waiting -= 1
        try:
            return await asyncio.to_thread(check_password, stored, password)
        finally:
            self._checks.release()

    # ------------------------------------------------------------------ the token endpoint

    async def _tenant_id(self, segment: str) -> str | None:
        if segment.lower() in MULTI_TENANT:
            return None
        known, tenant = self._tenants.get(segment)
        if not known:
            tenant = await self.directory.tenant(segment) if len(segment) <= 255 else None
            self._tenants.put(segment, tenant)
        if tenant is None:
            raise SignInError(
                "invalid_tenant", 90002, f"Tenant '{segment[:80]}' not found. Check to make "
                "sure you have the correct tenant ID and are signing into the correct cloud."
            )  # fmt: skip
        return tenant.id

    async def client(
        self, tenant_segment: str, client_id: str | None, secret: str | None, *,
        authenticate: bool = True, confidential: bool = False,
    ) -> AppRegistration:  # fmt: skip
        """The app calling, authenticated by its secret when it is a confidential client;
        ``confidential``: a grant only a confidential client may use (a public one has no
        secret to prove who it is)."""
        tenant_id = await self._tenant_id(tenant_segment)
        if not client_id:
            raise _missing("client_id")
        app = await self.app(client_id)
        if app is None or (tenant_id is not None and app.tenant_id != tenant_id):
            raise SignInError(
                "unauthorized_client", 700016, f"Application with identifier "
                f"'{client_id[:64]}' was not found in the directory '{tenant_segment[:80]}'. "
                "This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You "
                "may have sent your authentication request to the wrong tenant.",
            )  # fmt: skip
        if not authenticate:
            return app
        if confidential and app.public_client:
            raise SignInError(
                "invalid_client", 7000218, "The request body must contain the following "
                "parameter: 'client_assertion' or 'client_secret'. A public client cannot "
                "use this grant.", status=401,
            )  # fmt: skip
        if app.public_client:
            if secret is not None:
                raise SignInError(
                    "invalid_client", 700025, "Client is public so neither "
                    "'client_assertion' nor 'client_secret' should be presented.", status=401,
                )  # fmt: skip
            return app
        if secret is None:
            raise SignInError(
                "invalid_client", 7000218, "The request body must contain the following "
                "parameter: 'client_assertion' or 'client_secret'.", status=401,
            )  # fmt: skip
        if not same_digest(app.secret_digest, secret):
            raise SignInError(
                "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                "secret being sent in the request is the client secret value, not the client "
                f"secret ID, for a secret added to app '{app.id}'.", status=401,
            )  # fmt: skip
        return app

    async def token(
        self, tenant_segment: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        """The token endpoint: the response document for a form-encoded request."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise _missing("grant_type")
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        if basic is not None:
            if (client_id and client_id != basic[0]) or (secret and secret != basic[1]):
                raise SignInError(
                    "invalid_request", 90014, "The client credentials in the Authorization "
                    "header and in the request body differ.",
                )  # fmt: skip
            client_id, secret = basic
        if grant_type == "client_credentials":
            app = await self.client(tenant_segment, client_id, secret, confidential=True)
            return self._client_credentials(app, form)
        if grant_type == "device_code":  # MSAL for Node's name for it; Entra takes both
            grant_type = DEVICE_CODE_GRANT
        if grant_type not in (
            "password", "refresh_token", "authorization_code", DEVICE_CODE_GRANT,
        ):  # fmt: skip
            raise SignInError(
                "unsupported_grant_type", 70003,
                f"The app requested an unsupported grant type '{grant_type[:60]}'.",
            )  # fmt: skip
        app = await self.client(tenant_segment, client_id, secret)
        if grant_type == "password":
            return await self._password(app, form)
        if grant_type == "refresh_token":
            return await self._refresh(app, form)
        if grant_type == "authorization_code":
            return await self._authorization_code(app, form)
        return await self._device_code(app, form)

    def _client_credentials(self, app: AppRegistration, form: dict[str, str]) -> dict[str, Any]:
        scope = form.get("scope")
        if not scope:
            raise _missing("scope")
        resource, _, name = scope.strip().rpartition("/")
        if name != ".default" or resource.lower().rstrip("/") not in GRAPH_RESOURCES:
            raise SignInError(
                "invalid_scope", 70011, "The provided value for the input parameter 'scope' "
                "is not valid. The client credentials flow takes one scope, the resource's "
                "'/.default': https://graph.microsoft.com/.default.",
            )  # fmt: skip
        token = self.tokens.issue_application(
            tenant_id=app.tenant_id, app_id=app.id, roles=list(app.roles),
            lifetime=self.access_lifetime,
        )  # fmt: skip
        return {
            "token_type": "Bearer",
            "expires_in": self.access_lifetime - 1,
            "ext_expires_in": self.access_lifetime - 1,
            "access_token": token,
        }

    async def _password(self, app: AppRegistration, form: dict[str, str]) -> dict[str, Any]:
        for name in ("username", "password", "scope"):
            if not form.get(name):
                raise _missing(name)
        scopes = parse_scopes(form["scope"])
        user = await self.sign_in(app, form["username"], form["password"])
        return await self._user_tokens(app, user, scopes, nonce=None, form=form)

    async def _refresh(self, app: AppRegistration, form: dict[str, str]) -> dict[str, Any]:
        presented = form.get("refresh_token")
        if not presented:
            raise _missing("refresh_token")
        # checked before it is taken: a refused request does not use the token up
        grant = await self.store.peek_grant(digest(presented), "refresh")
        if grant is None or grant.expires_at <= self._now_ms():
            raise SignInError(
                "invalid_grant", 70008, "The provided authorization code or refresh token "
                "has expired due to inactivity, or was already used (refresh tokens are "
                "rotated: use the one returned with your last token). Send a new interactive "
                "authorization request for this user and resource.",
            )  # fmt: skip
        if grant.client_id != app.id:
            raise SignInError(
                "invalid_grant", 70000, "The refresh token was issued to a different client.",
            )  # fmt: skip
        granted = Scopes(
            tuple(s for s in grant.scopes if s not in OIDC_SCOPES),
            frozenset(s for s in grant.scopes if s in OIDC_SCOPES),
        )
        asked = form.get("scope")
        if asked:
            wanted = parse_scopes(asked)
            extra = set(wanted.graph) - set(granted.graph) - {"User.Read"}
            if extra:
                raise SignInError(
                    "invalid_grant", 65001, "The user or administrator has not consented to "
                    f"use the application with the scopes: {' '.join(sorted(extra))[:200]}.",
                )  # fmt: skip
            granted = Scopes(
                tuple(s for s in granted.graph if s in wanted.graph) or granted.graph,
                (wanted.oidc | {"offline_access"}) & (granted.oidc | {"offline_access"}),
            )
        if await self.store.take_grant(grant.handle, "refresh") is None:  # redeemed meanwhile
            raise SignInError(
                "invalid_grant", 70008, "The provided refresh token was already used "
                "(refresh tokens are rotated: use the one returned with your last token).",
            )  # fmt: skip
        user = await self.directory.user(grant.user_id or "")
        if user is None:
            raise SignInError("invalid_grant", 50034, "The user account no longer exists.")
        return await self._user_tokens(app, user, granted, nonce=None, form=form)

    async def _user_tokens(
        self, app: AppRegistration, user: User, scopes: Scopes, *, nonce: str | None,
        form: dict[str, str],
    ) -> dict[str, Any]:  # fmt: skip
        """The response for a signed-in user: access token, and the refresh token, ID token
        and client_info their scopes and request ask for."""
        access = self.tokens.issue_delegated(
            tenant_id=user.tenant_id, user_id=user.id, upn=user.upn, name=user.display_name,
            scopes=list(scopes.graph), app_id=app.id, lifetime=self.access_lifetime,
        )  # fmt: skip
        out: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scopes.shown(),
            "expires_in": self.access_lifetime - 1,
            "ext_expires_in": self.access_lifetime - 1,
            "access_token": access,
        }
        if "offline_access" in scopes.oidc:
            refresh = secrets.token_urlsafe(48)
            await self._add_grant(
                Grant(
                    handle=digest(refresh), kind="refresh", tenant_id=user.tenant_id,
                    client_id=app.id, user_id=user.id, scopes=scopes.all,
                    expires_at=self._now_ms() + REFRESH_SECONDS * 1000,
                )
            )  # fmt: skip
            out["refresh_token"] = refresh
        if "openid" in scopes.oidc:
            out["id_token"] = self.tokens.issue_id_token(
                tenant_id=user.tenant_id, client_id=app.id, user_id=user.id, upn=user.upn,
                name=user.display_name, nonce=nonce, lifetime=self.access_lifetime,
            )  # fmt: skip
        if form.get("client_info") == "1":
            out["client_info"] = client_info(user)
        return out

    # ------------------------------------------------------------------ authorization code

    async def check_authorize(
        self, tenant_segment: str, params: dict[str, str]
    ) -> AuthorizeRequest:
        """A checked ``/authorize`` request. A ``SignInError`` whose ``redirect`` is safe is
        raised as ``RedirectableError`` (the caller sends it back to the redirect URI)."""
        app = await self.client(tenant_segment, params.get("client_id"), None, authenticate=False)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            if len(app.redirect_uris) != 1:
                raise _missing("redirect_uri")
            redirect_uri = app.redirect_uris[0]
        if not redirect_allowed(app, redirect_uri):
            raise _redirect_mismatch(app, redirect_uri)
        state = params.get("state")
        try:
            if params.get("response_type") != "code":
                raise SignInError(
                    "unsupported_response_type", 700054,
                    "The response_type must be 'code' (graphpost implements the authorization "
                    "code flow).",
                )  # fmt: skip
            scope = params.get("scope")
            if not scope:
                raise _missing("scope")
            parse_scopes(scope)
            method = params.get("code_challenge_method")
            challenge = params.get("code_challenge")
            if challenge is not None:
                method = method or "plain"
                if method not in ("S256", "plain"):
                    raise SignInError(
                        "invalid_request", 501491,
                        "Invalid code_challenge_method: use S256 or plain.",
                    )  # fmt: skip
                if not 43 <= len(challenge) <= 128:
                    raise SignInError(
                        "invalid_request", 501491, "Invalid size of code_challenge parameter."
                    )
            elif app.public_client:
                raise SignInError(
                    "invalid_request", 9002325,
                    "Proof Key for Code Exchange is required for cross-origin authorization "
                    "code redemption: send code_challenge.",
                )  # fmt: skip
            mode = params.get("response_mode") or "query"
            if mode not in ("query", "form_post"):
                raise SignInError(
                    "invalid_request", 900144,
                    "response_mode must be 'query' or 'form_post'.",
                )  # fmt: skip
            if params.get("prompt") not in (None, "login", "select_account", "consent", "none"):
                raise SignInError("invalid_request", 90023, "Unsupported 'prompt' value.")
            if params.get("prompt") == "none":
                raise SignInError(
                    "interaction_required", 50058,
                    "A silent sign-in request was sent but no user is signed in.",
                )  # fmt: skip
        except SignInError as exc:
            raise RedirectableError(exc, redirect_uri, state,
                                    params.get("response_mode") or "query") from None  # fmt: skip
        return AuthorizeRequest(
            tenant_segment=tenant_segment, app=app, redirect_uri=redirect_uri, scope=scope,
            state=state, nonce=params.get("nonce"), code_challenge=challenge,
            code_challenge_method=method, response_mode=mode,
            login_hint=params.get("login_hint"),
        )  # fmt: skip

    async def issue_code(self, request: AuthorizeRequest, user: User) -> str:
        code = secrets.token_urlsafe(48)
        data = {"redirect_uri": request.redirect_uri}
        if request.code_challenge is not None:
            data["code_challenge"] = request.code_challenge
            data["code_challenge_method"] = request.code_challenge_method or "plain"
        if request.nonce is not None:
            data["nonce"] = request.nonce
        await self._add_grant(
            Grant(
                handle=digest(code), kind="code", tenant_id=user.tenant_id,
                client_id=request.app.id, user_id=user.id,
                scopes=parse_scopes(request.scope).all,
                expires_at=self._now_ms() + CODE_SECONDS * 1000, data=data,
            )
        )  # fmt: skip
        return code

    async def _authorization_code(
        self, app: AppRegistration, form: dict[str, str]
    ) -> dict[str, Any]:
        code = form.get("code")
        if not code:
            raise _missing("code")
        given_redirect = form.get("redirect_uri")
        if given_redirect is not None and not redirect_allowed(app, given_redirect):
            raise _redirect_mismatch(app, given_redirect)
        grant = await self.store.take_grant(digest(code), "code")
        if grant is None:
            raise SignInError(
                "invalid_grant", 70000, "The provided value for the 'code' parameter is not "
                "valid, or the code was already redeemed.",
            )  # fmt: skip
        if grant.expires_at <= self._now_ms():
            raise SignInError(
                "invalid_grant", 70008, "The provided authorization code or refresh token "
                "has expired due to inactivity. Send a new interactive authorization request "
                "for this user and resource.",
            )  # fmt: skip
        if grant.client_id != app.id:
            raise SignInError("invalid_grant", 70000, "The code was issued to a different client.")
        if form.get("redirect_uri") != grant.data.get("redirect_uri"):
            raise SignInError(
                "invalid_grant", 70000, "The redirect_uri does not match the one the "
                "authorization code was issued for.",
            )  # fmt: skip
        challenge = grant.data.get("code_challenge")
        if challenge is not None:
            verifier = form.get("code_verifier") or ""
            if not _PKCE_VERIFIER.match(verifier):
                raise SignInError(
                    "invalid_grant", 501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )  # fmt: skip
            if grant.data.get("code_challenge_method") == "S256":
                computed = _b64url(hashlib.sha256(verifier.encode()).digest())
            else:
                computed = verifier
            if not secrets.compare_digest(computed, challenge):
                raise SignInError(
                    "invalid_grant", 501481,
                    "The Code_Verifier does not match the code_challenge supplied in the "
                    "authorization request.",
                )  # fmt: skip
        user = await self.directory.user(grant.user_id or "")
        if user is None:
            raise SignInError("invalid_grant", 50034, "The user account no longer exists.")
        scopes = Scopes(
            tuple(s for s in grant.scopes if s not in OIDC_SCOPES),
            frozenset(s for s in grant.scopes if s in OIDC_SCOPES),
        )
        return await self._user_tokens(app, user, scopes, nonce=grant.data.get("nonce"),
                                       form=form)  # fmt: skip

    # ------------------------------------------------------------------ device code

    async def start_device(self, tenant_segment: str, form: dict[str, str]) -> DeviceStart:
        app = await self.client(tenant_segment, form.get("client_id"), None, authenticate=False)
        scope = form.get("scope")
        if not scope:
            raise _missing("scope")
        scopes = parse_scopes(scope)
        if (
            await self.store.count_live_grants(app.id, "device", self._now_ms())
            >= MAX_PENDING_DEVICE_CODES
        ):
            raise SignInError(
                "temporarily_unavailable", 90033, f"This application has "
                f"{MAX_PENDING_DEVICE_CODES} device codes waiting for a person already: let "
                "some be used or expire, then try again.", status=503,
            )  # fmt: skip
        device_code = secrets.token_urlsafe(48)
        for _ in range(5):
            user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
            try:
                await self._add_grant(
                    Grant(
                        handle=digest(device_code), kind="device", tenant_id=app.tenant_id,
                        client_id=app.id, user_id=None, scopes=scopes.all,
                        expires_at=self._now_ms() + DEVICE_SECONDS * 1000,
                        data={"state": "pending"}, user_code=user_code,
                    )
                )  # fmt: skip
            except AlreadyExistsError:
                continue
            return DeviceStart(device_code, user_code, DEVICE_SECONDS, DEVICE_INTERVAL)
        raise SignInError("temporarily_unavailable", 90033, "Try again.", status=503)

    async def device_grant(self, user_code: str) -> Grant | None:
        """The pending device code a person typed (any case, dashes and spaces ignored)."""
        typed = re.sub(r"[\s-]", "", user_code).upper()
        if not 0 < len(typed) <= 16:
            return None
        grant = await self.store.grant_by_user_code(typed)
        if (
            grant is None
            or grant.expires_at <= self._now_ms()
            or grant.data.get("state", "pending") != "pending"
        ):
            return None
        return grant

    async def settle_device(self, grant: Grant, user: User | None) -> bool:
        """A person's answer: signed in (``user``) or declined (None)."""
        state = "approved" if user is not None else "declined"
        return await self.store.settle_device(
            grant.handle, user_id=user.id if user else None, state=state
        )

    async def _device_code(self, app: AppRegistration, form: dict[str, str]) -> dict[str, Any]:
        code = form.get("device_code") or form.get("code")
        if not code:
            raise _missing("device_code")
        grant = await self.store.peek_grant(digest(code), "device")
        if grant is None or grant.client_id != app.id:
            raise SignInError(
                "bad_verification_code", 70018, "The provided value for the input parameter "
                "'device_code' is not valid.",
            )  # fmt: skip
        if grant.expires_at <= self._now_ms():
            await self.store.take_grant(grant.handle, "device")
            raise SignInError(
                "expired_token", 70019, "Verification code expired. Start a new device flow."
            )
        state = grant.data.get("state", "pending")
        if state == "pending":
            raise SignInError(
                "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization "
                "is pending. Continue polling.",
            )  # fmt: skip
        taken = await self.store.take_grant(grant.handle, "device")
        if taken is None:  # another poll redeemed it this instant
            raise SignInError(
                "bad_verification_code", 70018, "The provided value for the input parameter "
                "'device_code' is not valid.",
            )  # fmt: skip
        if state != "approved" or taken.user_id is None:
            raise SignInError(
                "authorization_declined", 70000, "The end user declined the authorization "
                "request.",
            )  # fmt: skip
        user = await self.directory.user(taken.user_id)
        if user is None:
            raise SignInError("invalid_grant", 50034, "The user account no longer exists.")
        scopes = Scopes(
            tuple(s for s in taken.scopes if s not in OIDC_SCOPES),
            frozenset(s for s in taken.scopes if s in OIDC_SCOPES),
        )
        return await self._user_tokens(app, user, scopes, nonce=None, form=form)


class RedirectableError(Exception):
    """An ``/authorize`` error to send back to the app's (checked) redirect URI."""

    def __init__(self, error: SignInError, redirect_uri: str, state: str | None, mode: str):
        super().__init__(error.message)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state
        self.mode = mode
