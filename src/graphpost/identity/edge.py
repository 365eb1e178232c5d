"""The identity platform's HTTP edge, in front of the Graph app: the paths of
``login.microsoftonline.com`` (``/{tenant}/oauth2/v2.0/…``, ``/{tenant}/v2.0/.well-known/…``,
``/{tenant}/discovery/v2.0/keys``, ``/common/discovery/instance``, ``/common/userrealm/…``,
``/devicelogin``) are answered here, in the identity platform's shapes (its errors are never
Graph's); every other request goes on to the Graph app untouched. Nothing here is counted by
Graph's throttling."""

from __future__ import annotations

import logging
import secrets
from html import escape
from typing import Any
from urllib.parse import quote, unquote, urlencode

from graphpost.asgi import ASGIApp, Receive, Request, Response, Scope, Send, read_body
from graphpost.auth.keys import KeySet
from graphpost.auth.tokens import TokenService
from graphpost.errors import (
    AuthenticationError,
    GraphpostError,
    RequestTimeoutError,
    RequestTooLargeError,
    SignInError,
)
from graphpost.identity import discovery, pages
from graphpost.identity.forms import basic_credentials, form_body, malformed, parse_pairs
from graphpost.identity.responses import (
    correlation_id,
    error_document,
    error_response,
    json_response,
)
from graphpost.services.directory import DirectoryService
from graphpost.services.identity import AuthorizeRequest, IdentityService, RedirectableError

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
        identity: IdentityService,
        base_url: str,
    ) -> None:
        self.inner = inner
        self.keys = keys
        self.tokens = tokens
        self.directory = directory
        self.identity = identity
        self.base = base_url.rstrip("/")
        self.secure = self.base.startswith("https://")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_identity_path(scope.get("path", "")):
            await self.inner(scope, receive, send)
            return
        request = Request.from_scope(scope)
        correlation = correlation_id(request.headers)
        try:
            response = await self._answer(request, scope, receive)
        except SignInError as exc:
            response = error_response(exc, correlation)
        except GraphpostError as exc:  # the database did not answer
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

    async def _body(self, request: Request, receive: Receive) -> bytes:
        try:
            return await read_body(receive, MAX_FORM_BYTES, request.headers.get("content-length"))
        except RequestTooLargeError:
            raise malformed(f"The request body is larger than {MAX_FORM_BYTES} bytes.") from None
        except RequestTimeoutError:
            raise malformed("The request body did not arrive in time.") from None

    async def _form(self, request: Request, receive: Receive) -> dict[str, str]:
        return form_body(request.headers.get("content-type"), await self._body(request, receive))

    async def _answer(self, request: Request, scope: Scope, receive: Receive) -> Response:
        parts = [unquote(p) for p in request.raw_path.split("/") if p]
        lowered = [p.lower() for p in parts]
        if any("\x00" in p for p in parts):
            raise malformed("The request path contains a NUL character.")
        method = request.method
        query = parse_pairs(scope.get("query_string", b""), "query string")
        if method in ("GET", "HEAD"):
            found = await self._public(parts, lowered, query, request)
            if found is not None:
                return found
        if lowered == ["devicelogin"]:
            if method == "GET":
                return await self._device_start(query.get("otc", ""))
            if method == "POST":
                return await self._device_post(request, await self._form(request, receive))
        if len(lowered) == 4 and lowered[1:3] == ["oauth2", "v2.0"]:
            tenant, endpoint = parts[0], lowered[3]
            if endpoint == "token" and method == "POST":
                form = await self._form(request, receive)
                basic = basic_credentials(request.headers.get("authorization"))
                return json_response(await self.identity.token(tenant, form, basic), no_store=True)
            if endpoint == "devicecode" and method == "POST":
                return await self._device_code(tenant, await self._form(request, receive))
            if endpoint == "authorize" and method == "GET":
                return await self._authorize(tenant, query, request, None)
            if endpoint == "authorize" and method == "POST":
                return await self._authorize(
                    tenant, await self._form(request, receive), request, True
                )
            if endpoint == "logout" and method in ("GET", "POST"):
                return pages.page("You signed out", "<p>You can close this window.</p>")
        raise SignInError(
            "invalid_request", 900561,
            f"The endpoint {request.raw_path[:100]!r} does not exist or does not accept "
            f"{method[:10]} requests.",
        )  # fmt: skip

    async def _public(
        self, parts: list[str], lowered: list[str], query: dict[str, str], request: Request
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
                discovery.instance_discovery(self.base, query.get("authorization_endpoint"))
            )
        if len(lowered) == 3 and lowered[:2] == ["common", "userrealm"]:
            login = parts[2]
            domain = login.rsplit("@", 1)[-1] if "@" in login else ""
            known = 0 < len(domain) < 256 and await self.directory.tenant(domain) is not None
            return json_response(discovery.user_realm(login, known, domain))
        if len(lowered) == 3 and lowered[1:] == ["openid", "userinfo"]:
            return await self._userinfo(request)
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

    async def _userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise AuthenticationError("Access token is empty.")
            principal = self.tokens.verify(token.strip())
        except AuthenticationError as exc:
            raise SignInError("invalid_token", 50058, exc.message, status=401) from None
        user = await self.directory.user(principal.user_id) if principal.user_id else None
        if user is None:
            raise SignInError("invalid_token", 50058, "The token names no user.", status=401)
        return json_response({
            "sub": user.id, "oid": user.id, "tid": user.tenant_id, "name": user.display_name,
            "preferred_username": user.upn, "email": user.mail,
        })  # fmt: skip

    # ------------------------------------------------------------ device code

    async def _device_code(self, tenant: str, form: dict[str, str]) -> Response:
        start = await self.identity.start_device(tenant, form)
        uri = f"{self.base}/devicelogin"
        return json_response(
            {
                "user_code": start.user_code,
                "device_code": start.device_code,
                "verification_uri": uri,
                "expires_in": start.expires_in,
                "interval": start.interval,
                "message": f"To sign in, use a web browser to open the page {uri} and enter "
                f"the code {start.user_code} to authenticate.",
            },
            no_store=True,
        )

    async def _device_start(self, code: str) -> Response:
        """The page, with the app's name when the code given (``otc``) is a pending one."""
        grant = await self.identity.device_grant(code) if code else None
        app = await self.identity.app(grant.client_id) if grant else None
        return self._device_page(code, "", None, app_name=app.name if app else None)

    def _device_page(self, code: str, username: str, error: str | None,
                     status: int = 200, *, app_name: str | None = None) -> Response:  # fmt: skip
        csrf = pages.new_csrf()
        body = pages.device_form(action=f"{self.base}/devicelogin", csrf=csrf, code=code,
                                 username=username, error=error, app_name=app_name)  # fmt: skip
        response = pages.page("Enter code", body, status=status)
        response.headers.append(pages.csrf_cookie(csrf, self.secure))
        return response

    def _csrf_ok(self, request: Request, form: dict[str, str]) -> bool:
        cookie = pages.cookie_value(request.headers.get("cookie"), pages.CSRF_COOKIE)
        given = form.get("csrf_token", "")
        return bool(cookie) and bool(given) and secrets.compare_digest(cookie or "", given)

    async def _device_post(self, request: Request, form: dict[str, str]) -> Response:
        """A person's answer to a device code: allowing and declining both need them signed
        in (nobody else may answer for their device); until they are, the page names the app
        that asks."""
        code, username = form.get("user_code", ""), form.get("username", "")
        if not self._csrf_ok(request, form):
            return self._device_page(code, username, _CSRF_FAILED, 400)
        grant = await self.identity.device_grant(code)
        if grant is None:
            return self._device_page("", username, "That code is not valid, or has expired. "
                                     "Check the code and try again.", 400)  # fmt: skip
        app = await self.identity.app(grant.client_id)
        if app is None:
            return self._device_page("", username, "The app of this code no longer exists.", 400)
        password = form.get("password", "")
        if not username or not password:
            return self._device_page(code, username, None, app_name=app.name)
        try:
            user = await self.identity.sign_in(app, username, password)
        except SignInError as exc:
            return self._device_page(code, username, _sign_in_problem(exc), 400,
                                     app_name=app.name)  # fmt: skip
        declined = form.get("action") == "decline"
        if not await self.identity.settle_device(grant, None if declined else user):
            return self._device_page("", username, "That code was already used.", 400)
        if declined:
            return pages.page("Declined", "<p>You declined; you can close this window.</p>")
        return pages.page(
            "You're signed in",
            f"<p>You have signed in to <b>{escape(app.name)}</b> on your device. "
            "You can close this window.</p>",
        )

    # ------------------------------------------------------------ authorization code

    async def _authorize(
        self, tenant: str, params: dict[str, str], request: Request, posted: bool | None
    ) -> Response:
        carried = {k: v for k, v in params.items() if k in _AUTHORIZE_PARAMS}
        try:
            checked = await self.identity.check_authorize(tenant, carried)
        except RedirectableError as exc:
            return self._redirect(exc.redirect_uri, exc.mode, _error_fields(exc.error, exc.state,
                                  correlation_id(request.headers)))  # fmt: skip
        except SignInError as exc:  # no redirect URI we may trust: the error is shown here
            return pages.page(
                "Sign-in failed",
                f"<p class=error>AADSTS{exc.aadsts}: {escape(exc.message)}</p>",
                status=400,
            )
        if not posted:
            return self._sign_in_page(tenant, checked, carried, checked.login_hint or "", None)
        username = params.get("username", "")
        if not self._csrf_ok(request, params):
            return self._sign_in_page(tenant, checked, carried, username, _CSRF_FAILED, 400)
        try:
            user = await self.identity.sign_in(checked.app, username, params.get("password", ""))
        except SignInError as exc:
            return self._sign_in_page(tenant, checked, carried, username,
                                      _sign_in_problem(exc), 400)  # fmt: skip
        code = await self.identity.issue_code(checked, user)
        fields = {"code": code}
        if checked.state is not None:
            fields["state"] = checked.state
        return self._redirect(checked.redirect_uri, checked.response_mode, fields)

    def _sign_in_page(
        self, tenant: str, checked: AuthorizeRequest, carried: dict[str, str], username: str,
        error: str | None, status: int = 200,
    ) -> Response:  # fmt: skip
        csrf = pages.new_csrf()
        body = pages.sign_in_form(
            action=f"{self.base}/{quote(tenant, safe='')}/oauth2/v2.0/authorize",
            app_name=checked.app.name, carried=carried, csrf=csrf, username=username,
            error=error,
        )  # fmt: skip
        response = pages.page("Sign in", body, status=status)
        response.headers.append(pages.csrf_cookie(csrf, self.secure))
        return response

    def _redirect(self, uri: str, mode: str, fields: dict[str, str]) -> Response:
        if mode == "form_post":
            return pages.form_post(uri, fields)
        joiner = "&" if "?" in uri else "?"
        location = f"{uri.split('#', 1)[0]}{joiner}{urlencode(fields)}"
        # the URI was checked (printable ASCII); anything else is percent-encoded all the same
        location = quote(location, safe=_URI_SAFE)
        return Response(302, b"", content_type=None, headers=[
            (b"location", location.encode("utf-8")), (b"cache-control", b"no-store"),
        ])  # fmt: skip


_URI_SAFE = "!#$%&'()*+,-./:;=?@[]_~"
_CSRF_FAILED = "The sign-in form expired or was not sent by this page. Try again."
_AUTHORIZE_PARAMS = frozenset({
    "client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
    "code_challenge_method", "response_mode", "prompt", "login_hint", "domain_hint",
    "client_info", "claims",
})  # fmt: skip


def _sign_in_problem(error: SignInError) -> str:
    if error.aadsts == 50053 and error.message.startswith("Your account"):
        return "Your account is temporarily locked to prevent unauthorized use. Try again later."
    if error.aadsts == 50053:
        return "Sign-ins through this app are paused after too many failed attempts. Try later."
    if error.status == 503:
        return "Too many sign-ins at once. Try again in a few seconds."
    return "Your account or password is incorrect."


def _error_fields(error: SignInError, state: str | None, correlation: str) -> dict[str, Any]:
    doc = error_document(error, correlation)
    fields = {"error": doc["error"], "error_description": doc["error_description"]}
    if state is not None:
        fields["state"] = state
    return fields
