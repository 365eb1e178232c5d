"""Passwords and refresh tokens over HTTPS: MSAL Python's username/password flow against the
demo tenant's documented password and demo client, ID tokens and client_info, refresh token
rotation and reuse, lock-out after repeated failures, `graphpost users passwd`."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import msal  # type: ignore[import-untyped]
import pytest
import requests

from tests.conftest import RunningServer
from tests.identity_pages import DEMO, DEMO_CLIENT, DEMO_PASSWORD, MAIL_READ
from tests.mail_api import DEMO_TENANT

pytestmark = pytest.mark.usefixtures("trust_tls")


class PortKeeping(requests.Session):
    """MSAL asks for the user realm at ``https://{host}/common/userrealm/…``, dropping the
    authority's port (it assumes 443): put the port back, as a proxy on 443 would."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.host = "https://" + urlsplit(base).hostname + "/"  # type: ignore[operator]

    def request(self, method: str, url: str | bytes, *args: Any, **kw: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        if text.startswith(self.host):
            text = self.base + "/" + text[len(self.host) :]
        return super().request(method, text, *args, **kw)


def _public(server: RunningServer, client_id: str = DEMO_CLIENT) -> Any:
    return msal.PublicClientApplication(
        client_id, authority=f"{server.base}/{DEMO}", instance_discovery=False,
        http_client=PortKeeping(server.base),
    )  # fmt: skip


def _token(server: RunningServer, **form: str) -> httpx.Response:
    data = {"grant_type": "password", "client_id": DEMO_CLIENT, "scope": MAIL_READ, **form}
    return httpx.post(f"{server.base}/{DEMO}/oauth2/v2.0/token", data=data,
                      verify=server.verify, timeout=30)  # fmt: skip


def test_msal_username_password_then_silent_refresh(tls: RunningServer) -> None:
    pca = _public(tls)
    result = pca.acquire_token_by_username_password(
        f"MeganB@{DEMO}", DEMO_PASSWORD, scopes=[MAIL_READ]
    )
    assert "access_token" in result, result
    assert result["scope"].split()[0] == "Mail.Read"
    assert "refresh_token" in result  # MSAL asks for offline_access
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["scp"] == "Mail.Read" and claims["appid"] == DEMO_CLIENT
    user_oid = claims["oid"]
    id_claims = result["id_token_claims"]
    assert id_claims["aud"] == DEMO_CLIENT and id_claims["oid"] == user_oid
    assert id_claims["preferred_username"] == f"MeganB@{DEMO}"
    assert id_claims["iss"] == f"{tls.base}/{id_claims['tid']}/v2.0"
    accounts = pca.get_accounts()
    assert accounts[0]["username"] == f"MeganB@{DEMO}"
    assert accounts[0]["home_account_id"] == f"{user_oid}.{id_claims['tid']}"  # client_info
    with tls.client(result["access_token"]) as c:
        assert c.get("/me/messages").status_code == 200
        assert c.post("/me/messages", json={"subject": "x"}).status_code == 403  # Mail.Read
    again = pca.acquire_token_silent([MAIL_READ], account=accounts[0], force_refresh=True)
    assert again and "access_token" in again, again
    assert again["access_token"] != result["access_token"]
    with tls.client(again["access_token"]) as c:
        assert c.get("/me/messages").status_code == 200


def test_refresh_tokens_rotate_and_a_used_one_is_refused(tls: RunningServer) -> None:
    first = _token(tls, username=f"AlexW@{DEMO}", password=DEMO_PASSWORD,
                   scope=f"{MAIL_READ} openid profile offline_access", client_info="1")  # fmt: skip
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) >= {"access_token", "refresh_token", "id_token", "client_info", "scope"}
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert set(info) == {"uid", "utid"}
    assert body["scope"] == "Mail.Read openid profile offline_access"
    url = f"{tls.base}/{DEMO}/oauth2/v2.0/token"
    refresh = {"grant_type": "refresh_token", "client_id": DEMO_CLIENT,
               "refresh_token": body["refresh_token"]}  # fmt: skip
    second = httpx.post(url, data=refresh, verify=tls.verify)
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != body["refresh_token"]
    reused = httpx.post(url, data=refresh, verify=tls.verify)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant" and reused.json()["error_codes"] == [70008]
    assert body["refresh_token"] not in reused.text
    # the new one works; a refresh asking for more than was granted does not
    more = {**refresh, "refresh_token": second.json()["refresh_token"], "scope": "Mail.Send"}
    r = httpx.post(url, data=more, verify=tls.verify)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # without offline_access there is no refresh token
    plain = _token(tls, username=f"AlexW@{DEMO}", password=DEMO_PASSWORD)
    assert plain.status_code == 200 and "refresh_token" not in plain.json()
    assert "id_token" not in plain.json()


def test_scopes_and_default(tls: RunningServer) -> None:
    for scope, scp in (
        ("Mail.Read", "Mail.Read"),
        ("https://graph.microsoft.com/.default", "User.Read Mail.ReadWrite Mail.Send"),
        ("00000003-0000-0000-c000-000000000000/Mail.Send openid", "Mail.Send"),
        ("openid profile", "User.Read"),
    ):
        r = _token(tls, username=f"LeeG@{DEMO}", password=DEMO_PASSWORD, scope=scope)
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        assert claims["scp"] == scp
    for bad in ("https://outlook.office.com/Mail.Read", "Mail.Read<script>"):
        r = _token(tls, username=f"LeeG@{DEMO}", password=DEMO_PASSWORD, scope=bad)
        assert r.status_code == 400 and r.json()["error_codes"] == [70011]


def test_wrong_passwords_lock_the_user_out(tls: RunningServer) -> None:
    user = f"PattiF@{DEMO}"
    for _ in range(5):
        r = _token(tls, username=user, password="wrong-password")
        assert r.status_code == 400 and r.json()["error_codes"] == [50126], r.text
        assert "wrong-password" not in r.text
    locked = _token(tls, username=user, password=DEMO_PASSWORD)  # even the right one
    assert locked.status_code == 400 and locked.json()["error_codes"] == [50053]
    # another user of the same client is not locked
    assert _token(tls, username=f"LidiaH@{DEMO}", password=DEMO_PASSWORD).status_code == 200
    # nobody by that name: the same answer as a wrong password
    r = _token(tls, username=f"nobody@{DEMO}", password=DEMO_PASSWORD)
    assert r.json()["error_codes"] == [50126]
    # missing parameters
    for missing in ("username", "password", "scope"):
        form = {"username": user, "password": "x", "scope": MAIL_READ}
        form.pop(missing)
        form.update(grant_type="password", client_id=DEMO_CLIENT)
        r = httpx.post(f"{tls.base}/{DEMO}/oauth2/v2.0/token", verify=tls.verify, data=form)
        assert r.json()["error_codes"] == [900144] and missing in r.json()["error_description"]
    log = (tls.data_dir / "server.log").read_text()
    assert "wrong-password" not in log and DEMO_PASSWORD not in log


def test_users_passwd_and_confidential_ropc(tls: RunningServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "graphpost.cli.main", "users", "passwd", f"GradyA@{DEMO}",
         "--password-stdin", "--data-dir", str(tls.data_dir)],
        input="a new passphrase\n", capture_output=True, text=True, env=tls.env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "a new passphrase" not in done.stdout + done.stderr
    old = _token(tls, username=f"GradyA@{DEMO}", password=DEMO_PASSWORD)
    assert old.json()["error_codes"] == [50126]
    assert _token(tls, username=f"GradyA@{DEMO}", password="a new passphrase").status_code == 200
    short = subprocess.run(
        [sys.executable, "-m", "graphpost.cli.main", "users", "passwd", f"GradyA@{DEMO}",
         "--password-stdin", "--data-dir", str(tls.data_dir)],
        input="short\n", capture_output=True, text=True, env=tls.env, check=False,
    )  # fmt: skip
    assert short.returncode == 1 and "8 to 256" in short.stderr
    # a confidential client must present its secret with the password grant too
    app = json.loads(tls.cli("apps", "add", "--tenant", DEMO_TENANT, "web-ropc", "--json"))
    form = {"username": f"LeeG@{DEMO}", "password": DEMO_PASSWORD, "client_id": app["client_id"]}
    r = _token(tls, **form)
    assert r.status_code == 401 and r.json()["error_codes"] == [7000218]
    r = _token(tls, **form, client_secret=app["client_secret"])
    assert r.status_code == 200, r.text
    # the demo client is public: a secret is refused
    r = _token(tls, username=f"LeeG@{DEMO}", password=DEMO_PASSWORD, client_secret="x")
    assert r.status_code == 401 and r.json()["error_codes"] == [700025]
