"""Tokens of an external OpenID Connect issuer (GRAPHPOST_TRUSTED_ISSUERS): a second issuer
runs here on 127.0.0.1 (discovery + JWKS, its own RSA and EC keys, its own tokens) and a real
`graphpost serve` trusts it. On both engines (the token's user is looked up in the directory)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from graphpost.auth.external import REFETCH_SECONDS
from tests.conftest import RunningServer, start_server
from tests.delivery_checks import engine_server
from tests.mail_api import ADELE, ALEX, MEGAN, assert_error

AUDIENCE = "api://graphpost"


@dataclass
class Issuer:
    """A tiny OIDC issuer: /a (found by discovery) and /b (jwks_uri configured)."""

    base: str = ""
    keys: dict[str, Any] = field(default_factory=dict)  # kid → private key, published
    requests: list[str] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, private in self.keys.items():
            if isinstance(private, rsa.RSAPrivateKey):
                jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
            else:
                jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def add_key(self, kind: str = "rsa") -> str:
        kid = uuid.uuid4().hex[:12]
        if kind == "rsa":
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        return kid

    def token(self, path: str = "/a", *, kid: str | None = None, alg: str | None = None,
              key: Any = None, lifetime: int = 600, **claims: Any) -> str:  # fmt: skip
        kid = kid or next(iter(self.keys))
        private = key if key is not None else self.keys[kid]
        alg = alg or ("RS256" if isinstance(private, rsa.RSAPrivateKey) else "ES256")
        now = int(time.time())
        body = {
            "iss": self.base + path,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "azp": "gateway-client",
            "preferred_username": ADELE,
            "scp": "Mail.Read",
            **claims,
        }
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})


def serve_issuer() -> Issuer:
    issuer = Issuer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.requests.append(self.path)
            if self.path in ("/a/.well-known/openid-configuration",):
                body = {"issuer": issuer.base + "/a", "jwks_uri": issuer.base + "/a/keys"}
            elif self.path in ("/a/keys", "/b/jwks"):
                body = issuer.jwks()
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    issuer.httpd = httpd
    issuer.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    running = serve_issuer()
    running.add_key("rsa")
    running.add_key("ec")
    yield running
    assert running.httpd is not None
    running.httpd.shutdown()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def trusting(
    request: pytest.FixtureRequest, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server trusting /a (discovery, user by preferred_username, app tokens by roles) and
    /b (jwks_uri given, user by email, fixed scopes, the demo tenant)."""
    config = [
        {"issuer": issuer.base + "/a", "audience": [AUDIENCE, "https://graph.microsoft.com"]},
        {
            "issuer": issuer.base + "/b",
            "jwks_uri": issuer.base + "/b/jwks",
            "audience": AUDIENCE,
            "user_claim": "email",
            "scopes": ["Mail.Read"],
            "tenant": "contoso.onmicrosoft.com",
        },
    ]
    data_dir = tmp_path_factory.mktemp(f"idp-{request.param}")
    with engine_server(request.param, Path(data_dir), request, relay=None,
                       GRAPHPOST_TRUSTED_ISSUERS=json.dumps(config)) as server:  # fmt: skip
        yield server


def get(server: RunningServer, token: str, path: str = "/me/messages") -> Any:
    with server.client(token) as c:
        return c.get(path)


def test_rs256_and_es256_tokens_open_the_mapped_users_mailbox(
    trusting: RunningServer, issuer: Issuer
) -> None:
    rsa_kid, ec_kid = list(issuer.keys)[:2]
    for kid in (rsa_kid, ec_kid):
        r = get(trusting, issuer.token(kid=kid))
        assert r.status_code == 200, r.text
        assert "users('" in r.json()["@odata.context"]
    # the user claim maps by mail too, and case does not matter
    assert get(trusting, issuer.token(preferred_username=ADELE.upper())).status_code == 200
    # another audience of the list
    assert get(trusting, issuer.token(aud="https://graph.microsoft.com")).status_code == 200


def test_scopes_decide_what_the_token_may_do(trusting: RunningServer, issuer: Issuer) -> None:
    with trusting.client(issuer.token()) as c:  # scp Mail.Read
        assert_error(c.post("/me/messages", json={"subject": "x"}), 403, "ErrorAccessDenied")
        # a plain scope does not reach another user's mailbox
        r = c.get("/users/AlexW@contoso.onmicrosoft.com/messages")
        assert_error(r, 403, "ErrorAccessDenied")
    with trusting.client(issuer.token(scp="Mail.ReadWrite")) as c:
        assert c.post("/me/messages", json={"subject": "external"}).status_code == 201


def test_fixed_scopes_and_email_claim(trusting: RunningServer, issuer: Issuer) -> None:
    token = issuer.token("/b", scp=None, preferred_username=None, email=ADELE, email_verified=True)
    assert get(trusting, token).status_code == 200
    with trusting.client(token) as c:
        assert_error(c.post("/me/messages", json={"subject": "x"}), 403, "ErrorAccessDenied")


def test_application_token_by_roles(trusting: RunningServer, issuer: Issuer) -> None:
    token = issuer.token(scp=None, preferred_username=None, roles=["Mail.Read"])
    r = get(trusting, token, f"/users/{ADELE}/messages")
    assert r.status_code == 200, r.text
    assert_error(get(trusting, token, "/me/messages"), 400, "BadRequest")


def forged(issuer: Issuer) -> str:
    """Signed by a key the issuer never published, under the kid of one it did."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return issuer.token(kid=next(iter(issuer.keys)), key=other)


def hs256_with_public_key(issuer: Issuer) -> str:
    """The algorithm-confusion attack: HS256 keyed with the issuer's public key (PEM), built
    by hand (PyJWT refuses to sign it)."""
    kid = next(iter(issuer.keys))
    public = issuer.keys[kid].public_key()
    secret = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    body = jwt.decode(issuer.token(kid=kid), options={"verify_signature": False})

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{part(body)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def unsigned(issuer: Issuer) -> str:
    body = jwt.decode(issuer.token(), options={"verify_signature": False})
    return jwt.encode(body, "", algorithm="none", headers={"kid": next(iter(issuer.keys))})


# (name, make the token, status, code, words in the message)
REFUSED = [
    ("expired", lambda i: i.token(lifetime=-120), 401, "InvalidAuthenticationToken", "expired"),
    ("not yet valid", lambda i: i.token(nbf=int(time.time()) + 600), 401,
     "InvalidAuthenticationToken", "not yet valid"),
    ("other audience", lambda i: i.token(aud="api://other"), 401, "InvalidAuthenticationToken",
     "audience"),
    ("no exp", lambda i: i.token(exp=None), 401, "InvalidAuthenticationToken", "claims"),
    ("unknown user", lambda i: i.token(preferred_username="nobody@contoso.onmicrosoft.com"),
     401, "InvalidAuthenticationToken", "not a user"),
    ("no user, no scp and no roles", lambda i: i.token(preferred_username=None, scp=None), 401,
     "NoPermissionsInAccessToken", "no permissions"),
    ("scp but no user claim", lambda i: i.token(preferred_username=None), 401,
     "InvalidAuthenticationToken", "no 'preferred_username' claim"),
    ("b's email not verified", lambda i: i.token("/b", email=ADELE, email_verified=False), 401,
     "InvalidAuthenticationToken", "email is not verified"),
    ("b's email_verified absent", lambda i: i.token("/b", email=ADELE), 401,
     "InvalidAuthenticationToken", "email is not verified"),
    ("forged signature", forged, 401, "InvalidAuthenticationToken", "signature"),
    ("HS256 with the public key", hs256_with_public_key, 401, "InvalidAuthenticationToken",
     "algorithm"),
    ("alg none", unsigned, 401, "InvalidAuthenticationToken", "algorithm"),
    ("unknown kid", lambda i: i.token(kid="nope", key=next(iter(i.keys.values()))), 401,
     "InvalidAuthenticationToken", "not signed by a key"),
    ("RS256 header on an EC key", lambda i: i.token(kid=list(i.keys)[1], alg="RS256",
     key=next(iter(i.keys.values()))), 401, "InvalidAuthenticationToken", "not signed by a key"),
    ("no scp and no fixed scopes", lambda i: i.token(scp=None), 401,
     "NoPermissionsInAccessToken", "no permissions"),
    ("empty scp", lambda i: i.token(scp=" "), 401, "NoPermissionsInAccessToken",
     "no permissions"),
    ("b's user outside its tenant", lambda i: i.token("/b", scp=None, email="x@elsewhere.example",
     email_verified=True), 401, "InvalidAuthenticationToken", "not a user"),
    ("issuer not trusted", lambda i: i.token("/c"), 401, "InvalidAuthenticationToken", ""),
    ("user claim with CR LF", lambda i: i.token(preferred_username="a\r\nX-Injected: 1"), 401,
     "InvalidAuthenticationToken", "not a user"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "status", "code", "words"), [pytest.param(*r[1:], id=r[0]) for r in REFUSED]
)
def test_refused(
    trusting: RunningServer, issuer: Issuer, make: Any, status: int, code: str, words: str
) -> None:
    r = get(trusting, make(issuer))
    err = assert_error(r, status, code)
    assert words in str(err["message"]).lower()
    assert "\n" not in r.headers["www-authenticate"]
    assert "x-injected" not in {k.lower() for k in r.headers}


def test_a_users_token_without_its_user_claim_is_no_application_token(
    trusting: RunningServer, issuer: Issuer
) -> None:
    """An Entra v1.0-shaped user token (upn, no email) with roles assigned to the user: /b
    maps users by email, so it is refused, never taken for an application's token that would
    open every mailbox of the tenant."""
    token = issuer.token(
        "/b", preferred_username=None, upn=ALEX, unique_name=ALEX, scp="Mail.Read",
        roles=["Mail.ReadWrite"], idtyp="user",
    )  # fmt: skip
    with trusting.client(token) as c:
        for r in (
            c.get(f"/users/{MEGAN}/messages"),
            c.post(f"/users/{MEGAN}/messages", json={"subject": "written by Alex's token"}),
            c.get("/me"),
        ):
            err = assert_error(r, 401, "InvalidAuthenticationToken")
            assert "no 'email' claim" in str(err["message"])


EVE = "eve@fabrikam.example"


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_an_issuer_without_tenant_on_a_server_with_several(
    engine: str, issuer: Issuer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An issuer without 'tenant' maps users while the server has one tenant; once there are
    two, its tokens are refused, and the next start is refused, saying which issuer."""
    untied = json.dumps([{"issuer": issuer.base + "/a", "audience": AUDIENCE}])

    def fresh(user: str) -> str:  # never a token verified (and cached) before
        return issuer.token(preferred_username=user, jti=uuid.uuid4().hex)

    with engine_server(engine, tmp_path, request, relay=None,
                       GRAPHPOST_TRUSTED_ISSUERS=untied) as server:  # fmt: skip
        assert get(server, fresh(ADELE)).status_code == 200
        server.cli("users", "add", "--name", "Eve", "--mail", EVE)  # a second tenant
        for user in (ADELE, EVE):
            err = assert_error(get(server, fresh(user)), 401, "InvalidAuthenticationToken")
            assert "several tenants" in str(err["message"])
        server.stop()
        url = server.env.get("GRAPHPOST_DATABASE_URL")
        with pytest.raises(AssertionError, match=f"{issuer.base}/a has no 'tenant'"):
            start_server(tmp_path, url, GRAPHPOST_TRUSTED_ISSUERS=untied).stop()
        tied = json.dumps(
            [{"issuer": issuer.base + "/a", "audience": AUDIENCE, "tenant": "fabrikam.example"}]
        )
        again = start_server(tmp_path, url, GRAPHPOST_TRUSTED_ISSUERS=tied)
        try:
            assert get(again, fresh(EVE)).status_code == 200
            err = assert_error(get(again, fresh(ADELE)), 401, "InvalidAuthenticationToken")
            assert "not in the tenant" in str(err["message"])
        finally:
            again.stop()


def test_key_rotation_and_refetch_limit(trusting: RunningServer, issuer: Issuer) -> None:
    """A new key is fetched when a token names it; unknown kids do not hammer the issuer."""
    assert get(trusting, issuer.token()).status_code == 200  # keys fetched by now
    kid = issuer.add_key("rsa")
    try:
        deadline = time.monotonic() + 30
        while get(trusting, issuer.token(kid=kid)).status_code != 200:
            assert time.monotonic() < deadline, "the rotated key was never fetched"
            time.sleep(0.5)
        fetched = len([p for p in issuer.requests if p == "/a/keys"])
        started = time.monotonic()
        stranger = next(iter(issuer.keys.values()))
        for n in range(30):
            r = get(trusting, issuer.token(kid=f"unknown-{n}", key=stranger))
            assert_error(r, 401, "InvalidAuthenticationToken")
        elapsed = time.monotonic() - started
        more = len([p for p in issuer.requests if p == "/a/keys"]) - fetched
        # at most one fetch per REFETCH_SECONDS (one more for the window already open)
        assert more <= math.ceil(elapsed / REFETCH_SECONDS) + 1, (more, elapsed)
    finally:
        del issuer.keys[kid]


def test_own_tokens_still_work(trusting: RunningServer) -> None:
    assert get(trusting, trusting.token()).status_code == 200
