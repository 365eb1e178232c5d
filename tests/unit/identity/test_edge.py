"""The identity edge in process: the real runtime on a SQLite file, called through ASGI (every
grant, the sign-in and device pages, the error shapes). The same flows run against a real
server with MSAL in tests/e2e/test_identity_*.py; these are quick and traced by coverage."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from graphpost.runtime import Runtime
from graphpost.services.identity import DEMO_CLIENT_ID, DEMO_PASSWORD
from tests.identity_pages import read_form

pytestmark = pytest.mark.anyio
BASE = "http://graphpost.test"
DEMO = "contoso.onmicrosoft.com"
TOKEN = f"/{DEMO}/oauth2/v2.0/token"


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    tenant = await runtime.directory.seed_demo()
    await runtime.identity.seed_demo(tenant)
    transport = httpx.ASGITransport(app=runtime.app())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


def _claims(token: str) -> dict[str, object]:
    out: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return out


async def test_client_credentials_and_graph(client: httpx.AsyncClient, runtime: Runtime) -> None:
    app, secret = await runtime.identity.register_app(
        "daemon", roles=["Mail.Read"], tenant_key=None, redirect_uris=[], public=False
    )
    form = {"grant_type": "client_credentials", "client_id": app.id, "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default"}  # fmt: skip
    r = await client.post(TOKEN, data=form)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert _claims(token)["roles"] == ["Mail.Read"]
    r = await client.get(f"/v1.0/users/AdeleV@{DEMO}/messages",
                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 200
    basic = base64.b64encode(f"{app.id}:{secret}".encode()).decode()
    r = await client.post(TOKEN, data={"grant_type": "client_credentials",
                                       "scope": "https://graph.microsoft.com/.default"},
                          headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    assert r.status_code == 200
    r = await client.post(TOKEN, data={**form, "client_id": "other"},
                          headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    assert r.json()["error"] == "invalid_request"
    r = await client.post(TOKEN, data={**form, "client_secret": "x"})
    assert r.status_code == 401 and r.json()["error_codes"] == [7000215]
    assert r.headers["www-authenticate"].startswith("Basic")


async def test_password_refresh_and_userinfo(client: httpx.AsyncClient) -> None:
    form = {"grant_type": "password", "client_id": DEMO_CLIENT_ID, "username": f"AdeleV@{DEMO}",
            "password": DEMO_PASSWORD, "scope": "Mail.Read openid profile offline_access",
            "client_info": "1"}  # fmt: skip
    r = await client.post(TOKEN, data=form)
    assert r.status_code == 200, r.text
    body = r.json()
    assert _claims(body["id_token"])["aud"] == DEMO_CLIENT_ID
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info["uid"] == _claims(body["access_token"])["oid"]
    me = await client.get(f"/{DEMO}/openid/userinfo",
                          headers={"Authorization": f"Bearer {body['access_token']}"})  # fmt: skip
    assert me.json()["preferred_username"] == f"AdeleV@{DEMO}"
    refresh = {"grant_type": "refresh_token", "client_id": DEMO_CLIENT_ID,
               "refresh_token": body["refresh_token"], "scope": "Mail.Read openid"}  # fmt: skip
    r = await client.post(TOKEN, data=refresh)
    assert r.status_code == 200 and r.json()["refresh_token"] != body["refresh_token"]
    assert (await client.post(TOKEN, data=refresh)).json()["error_codes"] == [70008]
    for _ in range(5):
        r = await client.post(TOKEN, data={**form, "password": "nope"})
        assert r.json()["error_codes"] == [50126]
    assert (await client.post(TOKEN, data=form)).json()["error_codes"] == [50053]


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def test_authorization_code_with_pkce(client: httpx.AsyncClient) -> None:
    verifier, challenge = _pkce()
    params = {"client_id": DEMO_CLIENT_ID, "redirect_uri": "http://localhost:8400/cb",
              "response_type": "code", "scope": "Mail.Read openid", "state": "st<>",
              "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256",
              "login_hint": f"AdeleV@{DEMO}"}  # fmt: skip
    page = await client.get(f"/{DEMO}/oauth2/v2.0/authorize", params=params)
    assert page.status_code == 200 and "st&lt;&gt;" in page.text
    action, fields = read_form(page.text)
    assert fields["username"] == f"AdeleV@{DEMO}"
    fields["password"] = "wrong"
    again = await client.post(action, data=fields)
    assert again.status_code == 400 and "incorrect" in again.text
    action, fields = read_form(again.text)
    fields["password"] = DEMO_PASSWORD
    done = await client.post(action, data=fields)
    assert done.status_code == 302, done.text
    answer = {k: v[0] for k, v in parse_qs(urlsplit(done.headers["location"]).query).items()}
    assert answer["state"] == "st<>"
    redeem = {"grant_type": "authorization_code", "client_id": DEMO_CLIENT_ID,
              "code": answer["code"], "redirect_uri": "http://localhost:8400/cb",
              "code_verifier": verifier}  # fmt: skip
    r = await client.post(TOKEN, data=redeem)
    assert r.status_code == 200, r.text
    assert _claims(r.json()["id_token"])["nonce"] == "n1"
    assert (await client.post(TOKEN, data=redeem)).json()["error_codes"] == [70000]
    # errors: shown, or sent back to a valid redirect URI
    r = await client.get(f"/{DEMO}/oauth2/v2.0/authorize",
                         params={**params, "redirect_uri": "https://evil.example/"})  # fmt: skip
    assert r.status_code == 400 and "AADSTS50011" in r.text
    r = await client.get(f"/{DEMO}/oauth2/v2.0/authorize",
                         params={**params, "response_type": "token"})  # fmt: skip
    assert r.status_code == 302 and "error=unsupported_response_type" in r.headers["location"]


async def test_device_code(client: httpx.AsyncClient) -> None:
    start = await client.post(f"/{DEMO}/oauth2/v2.0/devicecode",
                              data={"client_id": DEMO_CLIENT_ID, "scope": "Mail.Read"})  # fmt: skip
    assert start.status_code == 200, start.text
    flow = start.json()
    poll = {"grant_type": "device_code", "client_id": DEMO_CLIENT_ID,
            "device_code": flow["device_code"]}  # fmt: skip
    assert (await client.post(TOKEN, data=poll)).json()["error"] == "authorization_pending"
    page = await client.get("/devicelogin", params={"otc": flow["user_code"]})
    action, fields = read_form(page.text)
    assert fields["user_code"] == flow["user_code"]
    fields.update(username=f"AlexW@{DEMO}", password=DEMO_PASSWORD, action="allow")
    done = await client.post(urlsplit(action).path, data=fields)
    assert done.status_code == 200 and "signed in" in done.text
    r = await client.post(TOKEN, data=poll)
    assert r.status_code == 200 and _claims(r.json()["access_token"])["scp"] == "Mail.Read"
    assert (await client.post(TOKEN, data=poll)).json()["error"] == "bad_verification_code"
    no_cookie = await client.post("/devicelogin", data={**fields, "csrf_token": "forged"})
    assert no_cookie.status_code == 400 and "expired" in no_cookie.text


async def test_the_identity_shape_for_everything_else(client: httpx.AsyncClient) -> None:
    for method, path, kwargs in (
        ("POST", TOKEN, {"content": b"\xff", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}),
        ("POST", TOKEN, {"json": {"grant_type": "client_credentials"}}),
        ("POST", TOKEN, {"content": b"a=1&a=2", "headers": {
            "content-type": "application/x-www-form-urlencoded"}}),
        ("GET", TOKEN, {}),
        ("GET", "/nowhere.example/v2.0/.well-known/openid-configuration", {}),
        ("POST", f"/{DEMO}/oauth2/v2.0/devicecode", {"data": {"scope": "Mail.Read"}}),
    ):  # fmt: skip
        r = await client.request(method, path, **kwargs)
        assert r.status_code == 400, (path, r.text)
        body = r.json()
        assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    keys = (await client.get(f"/{DEMO}/discovery/v2.0/keys")).json()["keys"]
    assert keys and keys[0]["kty"] == "RSA"
    realm = await client.get(f"/common/userrealm/AdeleV@{DEMO}?api-version=1.0")
    assert realm.json()["account_type"] == "Managed"
