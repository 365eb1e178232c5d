"""The sign-in page and the authorization code flow with PKCE, and the device code flow, over
HTTPS with MSAL Python's PublicClientApplication; a test HTTP client plays the person at the
browser (fills the real pages, keeps their cookie)."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msal  # type: ignore[import-untyped]
import pytest

from tests.conftest import RunningServer
from tests.identity_pages import (
    DEMO,
    DEMO_CLIENT,
    DEMO_PASSWORD,
    MAIL_READ,
    expire_grants,
    read_form,
)
from tests.mail_api import DEMO_TENANT

pytestmark = pytest.mark.usefixtures("trust_tls")


def _pca(server: RunningServer) -> Any:
    return msal.PublicClientApplication(
        DEMO_CLIENT, authority=f"{server.base}/{DEMO}", instance_discovery=False
    )


def _browser(server: RunningServer) -> httpx.Client:
    return httpx.Client(verify=server.verify, timeout=30, follow_redirects=False)


def _sign_in(browser: httpx.Client, auth_uri: str, user: str, password: str) -> httpx.Response:
    page = browser.get(auth_uri)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    action, fields = read_form(page.text)
    fields.update(username=user, password=password)
    return browser.post(action, data=fields)


def _query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_msal_auth_code_flow_with_pkce(tls: RunningServer) -> None:
    pca = _pca(tls)
    flow = pca.initiate_auth_code_flow([MAIL_READ], redirect_uri="http://localhost:53117/cb")
    assert flow["auth_uri"].startswith(f"{tls.base}/{DEMO}/oauth2/v2.0/authorize?")
    with _browser(tls) as browser:
        # a wrong password: the page again, with the error, no redirect
        wrong = _sign_in(browser, flow["auth_uri"], f"JoniS@{DEMO}", "not it")
        assert wrong.status_code == 400 and "incorrect" in wrong.text
        assert "not it" not in wrong.text
        done = _sign_in(browser, flow["auth_uri"], f"JoniS@{DEMO}", DEMO_PASSWORD)
    assert done.status_code == 302, done.text
    location = done.headers["location"]
    assert location.startswith("http://localhost:53117/cb?")
    answer = _query(location)
    assert answer["state"] == flow["state"] and answer["code"]
    result = pca.acquire_token_by_auth_code_flow(flow, answer)
    assert "access_token" in result, result
    # MSAL sends the SHA-256 of its nonce, and checks that the ID token echoes it
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert result["id_token_claims"]["preferred_username"] == f"JoniS@{DEMO}"
    assert (
        jwt.decode(result["access_token"], options={"verify_signature": False})["scp"]
        == "Mail.Read"
    )
    with tls.client(result["access_token"]) as c:
        assert c.get("/me/messages").status_code == 200
    # the code is single use
    again = httpx.post(
        f"{tls.base}/{DEMO}/oauth2/v2.0/token", verify=tls.verify,
        data={"grant_type": "authorization_code", "client_id": DEMO_CLIENT,
              "code": answer["code"], "redirect_uri": "http://localhost:53117/cb",
              "code_verifier": flow["code_verifier"]},
    )  # fmt: skip
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def _code(tls: RunningServer, **extra: str) -> tuple[str, dict[str, str]]:
    pca = _pca(tls)
    flow = pca.initiate_auth_code_flow([MAIL_READ], redirect_uri="http://localhost/", **extra)
    with _browser(tls) as browser:
        done = _sign_in(browser, flow["auth_uri"], f"NestorW@{DEMO}", DEMO_PASSWORD)
    assert done.status_code == 302, done.text
    return _query(done.headers["location"])["code"], flow


def _redeem(tls: RunningServer, **form: str) -> httpx.Response:
    return httpx.post(
        f"{tls.base}/{DEMO}/oauth2/v2.0/token", verify=tls.verify,
        data={"grant_type": "authorization_code", "client_id": DEMO_CLIENT, **form},
    )  # fmt: skip


def test_codes_are_bound_to_verifier_redirect_client_and_time(tls: RunningServer) -> None:
    code, flow = _code(tls)
    good = {"code": code, "redirect_uri": "http://localhost/",
            "code_verifier": flow["code_verifier"]}  # fmt: skip
    r = _redeem(tls, **{**good, "code_verifier": "x" * 43})
    assert r.status_code == 400 and r.json()["error_codes"] == [501481]
    code, flow = _code(tls)
    good = {"code": code, "redirect_uri": "http://localhost/",
            "code_verifier": flow["code_verifier"]}  # fmt: skip
    r = _redeem(tls, **{**good, "redirect_uri": "http://localhost/other"})
    assert r.status_code == 400 and r.json()["error_codes"] == [70000]
    code, flow = _code(tls)
    app = json.loads(tls.cli("apps", "add", "--tenant", DEMO_TENANT, "other-native", "--public",
                             "--redirect-uri", "http://localhost", "--json"))  # fmt: skip
    r = _redeem(tls, code=code, redirect_uri="http://localhost/",
                code_verifier=flow["code_verifier"], client_id=app["client_id"])  # fmt: skip
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code, flow = _code(tls)
    expire_grants(tls.data_dir, tls.env.get("GRAPHPOST_DATABASE_URL"), "code")
    r = _redeem(tls, code=code, redirect_uri="http://localhost/",
                code_verifier=flow["code_verifier"])  # fmt: skip
    assert r.status_code == 400 and r.json()["error_codes"] == [70008]


def test_authorize_errors(tls: RunningServer) -> None:
    base = f"{tls.base}/{DEMO}/oauth2/v2.0/authorize"
    good = {"client_id": DEMO_CLIENT, "redirect_uri": "http://localhost:9/cb",
            "response_type": "code", "scope": "Mail.Read", "state": "s1",
            "code_challenge": "a" * 43, "code_challenge_method": "S256"}  # fmt: skip
    with _browser(tls) as browser:
        # a redirect URI the app does not have: shown here, never redirected to
        r = browser.get(base, params={**good, "redirect_uri": "https://evil.example/cb"})
        assert r.status_code == 400 and "AADSTS50011" in r.text and "location" not in r.headers
        r = browser.get(base, params={**good, "client_id": "nope"})
        assert r.status_code == 400 and "AADSTS700016" in r.text
        # a valid redirect URI: the error goes back to the app, with the state
        for change, error in (
            ({"response_type": "token"}, "unsupported_response_type"),
            ({"code_challenge_method": "S512"}, "invalid_request"),
            ({"code_challenge": None}, "invalid_request"),  # public clients need PKCE
            ({"scope": None}, "invalid_request"),
            ({"prompt": "none"}, "interaction_required"),
        ):
            params = {k: v for k, v in {**good, **change}.items() if v is not None}
            r = browser.get(base, params=params)
            assert r.status_code == 302, (change, r.text)
            answer = _query(r.headers["location"])
            assert answer["error"] == error and answer["state"] == "s1"
            assert answer["error_description"].startswith("AADSTS")
        # hostile values are escaped in the page
        hint = '"><script>alert(1)</script>'
        r = browser.get(base, params={**good, "login_hint": hint, "state": "<b>x</b>"})
        assert r.status_code == 200 and "<script>alert" not in r.text
        assert "&lt;script&gt;" in r.text
        # the form without its cookie (another site posting it) is refused
        action, fields = read_form(r.text)
        fields.update(username=f"NestorW@{DEMO}", password=DEMO_PASSWORD)
        with _browser(tls) as stranger:
            r = stranger.post(action, data=fields)
        assert r.status_code == 400 and "location" not in r.headers
        # form_post: the answer is a form posting to the redirect URI
        page = browser.get(base, params={**good, "response_mode": "form_post"})
        action, fields = read_form(page.text)
        fields.update(username=f"NestorW@{DEMO}", password=DEMO_PASSWORD)
        r = browser.post(action, data=fields)
        assert r.status_code == 200
        target, answer = read_form(r.text)
        assert target == "http://localhost:9/cb" and answer["state"] == "s1" and answer["code"]


# ---------------------------------------------------------------- device code


def _approve(tls: RunningServer, user_code: str, action: str = "allow",
             password: str = DEMO_PASSWORD) -> httpx.Response:  # fmt: skip
    with _browser(tls) as browser:
        page = browser.get(f"{tls.base}/devicelogin")
        assert page.status_code == 200
        target, fields = read_form(page.text)
        fields.update(user_code=user_code.lower(), username=f"DiegoS@{DEMO}",
                      password=password, action=action)  # fmt: skip
        return browser.post(target, data=fields)


def test_msal_device_flow(tls: RunningServer) -> None:
    pca = _pca(tls)
    flow = pca.initiate_device_flow(scopes=[MAIL_READ])
    assert "user_code" in flow, flow
    assert flow["verification_uri"] == f"{tls.base}/devicelogin"
    assert flow["user_code"] in flow["message"]
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": DEMO_CLIENT, "device_code": flow["device_code"]}  # fmt: skip
    url = f"{tls.base}/{DEMO}/oauth2/v2.0/token"
    pending = httpx.post(url, data=poll, verify=tls.verify)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    bad = httpx.post(url, data={**poll, "device_code": "nope"}, verify=tls.verify)
    assert bad.json()["error"] == "bad_verification_code"
    wrong = _approve(tls, flow["user_code"], password="wrong")
    assert wrong.status_code == 400 and "incorrect" in wrong.text
    # the person signs in while MSAL polls
    result: dict[str, Any] = {}
    poller = threading.Thread(target=lambda: result.update(pca.acquire_token_by_device_flow(flow)))
    poller.start()
    assert _approve(tls, flow["user_code"]).status_code == 200
    poller.join(60)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == f"DiegoS@{DEMO}"
    with tls.client(result["access_token"]) as c:
        assert c.get("/me/messages").status_code == 200
    # redeemed once: polling again is refused, and the code cannot be typed again
    assert httpx.post(url, data=poll, verify=tls.verify).json()["error"] == (
        "bad_verification_code"
    )
    assert _approve(tls, flow["user_code"]).status_code == 400


def test_device_flow_declined_and_expired(tls: RunningServer) -> None:
    pca = _pca(tls)
    url = f"{tls.base}/{DEMO}/oauth2/v2.0/token"
    flow = pca.initiate_device_flow(scopes=[MAIL_READ])
    assert _approve(tls, flow["user_code"], action="decline").status_code == 200
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": DEMO_CLIENT, "device_code": flow["device_code"]}  # fmt: skip
    r = httpx.post(url, data=poll, verify=tls.verify)
    assert r.json()["error"] == "authorization_declined"
    flow = pca.initiate_device_flow(scopes=[MAIL_READ])
    expire_grants(tls.data_dir, tls.env.get("GRAPHPOST_DATABASE_URL"), "device")
    r = httpx.post(url, data={**poll, "device_code": flow["device_code"]}, verify=tls.verify)
    assert r.json()["error"] == "expired_token"
    assert _approve(tls, flow["user_code"]).status_code == 400
    # a devicecode request without a client, or for an unknown one
    r = httpx.post(f"{tls.base}/{DEMO}/oauth2/v2.0/devicecode", data={"scope": "Mail.Read"},
                   verify=tls.verify)  # fmt: skip
    assert r.status_code == 400 and r.json()["error_codes"] == [900144]
