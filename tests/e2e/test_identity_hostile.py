"""The identity platform against hostile requests, on a real server on both engines: redirect
URIs a browser reads otherwise, parallel password guesses, grants a public client may not
use, refused refreshes, device code floods and answers, malformed discovery, userinfo's
challenge."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import RunningServer
from tests.identity_pages import DEMO, DEMO_CLIENT, DEMO_PASSWORD, MAIL_READ, read_form
from tests.mail_api import DEMO_TENANT

CHALLENGE = "x" * 43
BAD_REDIRECTS = (
    "http://evil.example\\@localhost/cb",
    "http://evil.example@localhost/cb",
    "http://localhost/cb\u2028",
    "http://localhost /cb",
    "http://l\u00f6calhost/cb",
    "http://[::1",
)


def _token_url(server: RunningServer) -> str:
    return f"{server.base}/{DEMO}/oauth2/v2.0/token"


def test_redirect_uris_a_browser_reads_otherwise_are_refused(tls: RunningServer) -> None:
    """Never a redirect: the error page (AADSTS50011), on the authorize page, and the token
    endpoint refuses them too."""
    url = f"{tls.base}/{DEMO}/oauth2/v2.0/authorize"
    with httpx.Client(verify=tls.verify, timeout=30, follow_redirects=False) as c:
        for bad in BAD_REDIRECTS:
            # response_type=token would be sent back to an accepted redirect URI
            params = {"client_id": DEMO_CLIENT, "redirect_uri": bad, "response_type": "token",
                      "scope": MAIL_READ, "code_challenge": CHALLENGE, "state": "s"}  # fmt: skip
            r = c.get(url, params=params)
            assert r.status_code == 400 and "location" not in r.headers, (bad, r.headers)
            assert "AADSTS50011" in r.text and "evil.example" not in r.headers.get("location", "")
            r = c.post(url, data={**params, "username": f"MiriamG@{DEMO}", "password": "x"})
            assert r.status_code == 400 and "location" not in r.headers, bad
            r = c.post(_token_url(tls), data={
                "grant_type": "authorization_code", "client_id": DEMO_CLIENT, "code": "c",
                "redirect_uri": bad, "code_verifier": CHALLENGE,
            })  # fmt: skip
            assert r.status_code == 400 and r.json()["error_codes"] == [50011], bad
        ok = {"client_id": DEMO_CLIENT, "redirect_uri": "http://localhost:9/cb",
              "response_type": "token", "scope": MAIL_READ, "state": "s\u2028"}  # fmt: skip
        r = c.get(url, params=ok)  # an error sent back, the Location percent-encoded
        assert r.status_code == 302
        assert r.headers["location"].startswith("http://localhost:9/cb?error=")
        location = dict(r.headers.raw)[b"location"]
        assert all(33 <= b <= 126 for b in location) and b"%E2%80%A8" in location


def test_parallel_wrong_passwords_check_at_most_the_limit(tls: RunningServer) -> None:
    form = {"grant_type": "password", "client_id": DEMO_CLIENT, "scope": MAIL_READ,
            "username": f"IsaiahL@{DEMO}", "password": "wrong"}  # fmt: skip

    def attempt(_: int) -> int:
        with httpx.Client(verify=tls.verify, timeout=60) as c:
            r = c.post(_token_url(tls), data=form)
            return int(r.json()["error_codes"][0])

    with ThreadPoolExecutor(24) as pool:
        codes = list(pool.map(attempt, range(24)))
    assert codes.count(50126) <= 5 and set(codes) <= {50126, 50053, 90033}, codes
    r = httpx.post(_token_url(tls), data={**form, "password": DEMO_PASSWORD}, verify=tls.verify)
    assert r.json()["error_codes"] == [50053]


def test_a_public_client_gets_no_application_token(tls: RunningServer) -> None:
    r = httpx.post(_token_url(tls), verify=tls.verify, data={
        "grant_type": "client_credentials", "client_id": DEMO_CLIENT,
        "scope": "https://graph.microsoft.com/.default",
    })  # fmt: skip
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.json()["error_codes"] == [7000218] and "access_token" not in r.json()
    done = subprocess.run(
        [sys.executable, "-m", "graphpost.cli.main", "apps", "add", "--tenant", DEMO_TENANT,
         "pub-roles", "--public", "--roles", "Mail.Read", "--data-dir", str(tls.data_dir)],
        capture_output=True, text=True, env=tls.env, check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "public client" in done.stderr


def test_a_refused_refresh_does_not_use_the_token_up(tls: RunningServer) -> None:
    r = httpx.post(_token_url(tls), verify=tls.verify, data={
        "grant_type": "password", "client_id": DEMO_CLIENT, "username": f"MiriamG@{DEMO}",
        "password": DEMO_PASSWORD, "scope": f"{MAIL_READ} offline_access",
    })  # fmt: skip
    refresh = r.json()["refresh_token"]
    other = json.loads(tls.cli("apps", "add", "--tenant", DEMO_TENANT, "other-public",
                               "--public", "--json"))  # fmt: skip
    form = {"grant_type": "refresh_token", "client_id": DEMO_CLIENT, "refresh_token": refresh}
    r = httpx.post(_token_url(tls), verify=tls.verify,
                   data={**form, "scope": "https://graph.microsoft.com/Mail.Send"})  # fmt: skip
    assert r.json()["error_codes"] == [65001]
    r = httpx.post(_token_url(tls), verify=tls.verify,
                   data={**form, "client_id": other["client_id"]})  # fmt: skip
    assert r.json()["error_codes"] == [70000]
    r = httpx.post(_token_url(tls), verify=tls.verify, data=form)
    assert r.status_code == 200 and r.json()["refresh_token"] != refresh
    r = httpx.post(_token_url(tls), verify=tls.verify, data=form)  # now it is used
    assert r.json()["error_codes"] == [70008]


def test_device_codes_are_capped(tls: RunningServer) -> None:
    app = json.loads(tls.cli("apps", "add", "--tenant", DEMO_TENANT, "device-flood",
                             "--public", "--json"))  # fmt: skip
    url = f"{tls.base}/{DEMO}/oauth2/v2.0/devicecode"
    with httpx.Client(verify=tls.verify, timeout=30) as c:
        r = c.post(url, data={"client_id": app["client_id"], "scope": "Mail.Read " * 400})
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
        for _ in range(100):
            r = c.post(url, data={"client_id": app["client_id"], "scope": "Mail.Read"})
            assert r.status_code == 200, r.text
        r = c.post(url, data={"client_id": app["client_id"], "scope": "Mail.Read"})
        assert r.status_code == 503 and r.json()["error"] == "temporarily_unavailable"


def test_declining_a_device_code_needs_a_sign_in(tls: RunningServer) -> None:
    r = httpx.post(f"{tls.base}/{DEMO}/oauth2/v2.0/devicecode", verify=tls.verify,
                   data={"client_id": DEMO_CLIENT, "scope": "Mail.Read"})  # fmt: skip
    flow = r.json()
    poll = {"grant_type": "device_code", "client_id": DEMO_CLIENT,
            "device_code": flow["device_code"]}  # fmt: skip
    with httpx.Client(verify=tls.verify, timeout=30) as browser:
        page = browser.get(f"{tls.base}/devicelogin", params={"otc": flow["user_code"]})
        assert "graphpost demo client" in page.text  # the app is named before the sign-in
        target, fields = read_form(page.text)
        fields.update(user_code=flow["user_code"], action="decline")
        r = browser.post(target, data=fields)
        assert "graphpost demo client" in r.text and "declined" not in r.text.lower()
        assert httpx.post(_token_url(tls), data=poll, verify=tls.verify).json()["error"] == (
            "authorization_pending"
        )
        target, fields = read_form(r.text)
        fields.update(user_code=flow["user_code"], action="decline",
                      username=f"HenriettaM@{DEMO}", password=DEMO_PASSWORD)  # fmt: skip
        r = browser.post(target, data=fields)
        assert r.status_code == 200 and "declined" in r.text.lower()
    assert httpx.post(_token_url(tls), data=poll, verify=tls.verify).json()["error"] == (
        "authorization_declined"
    )


def test_malformed_discovery_and_userinfo_challenge(tls: RunningServer) -> None:
    with httpx.Client(verify=tls.verify, timeout=30) as c:
        r = c.get(f"{tls.base}/common/discovery/instance",
                  params={"authorization_endpoint": "http://[::1"})  # fmt: skip
        assert r.status_code == 400 and r.json()["error"] == "invalid_request"
        r = c.get(f"{tls.base}/{DEMO}/openid/userinfo")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
