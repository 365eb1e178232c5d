"""Tokens and permissions: 401 for bad tokens, 403 for missing rights or other mailboxes."""

from __future__ import annotations

import time

import httpx

from graphpost.auth.keys import load_or_create
from graphpost.auth.tokens import TokenService
from tests.conftest import RunningServer
from tests.mail_api import ME, assert_error, user_id


def test_bad_tokens_are_401(server: RunningServer, tmp_path: object) -> None:
    url = f"{server.base}/v1.0/me/messages"
    r = httpx.get(url)
    err = assert_error(r, 401, "InvalidAuthenticationToken")
    assert "empty" in str(err["message"])
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(httpx.get(url, headers={"Authorization": "Bearer nonsense"}), 401,
                 "InvalidAuthenticationToken")  # fmt: skip
    assert_error(httpx.get(url, headers={"Authorization": "Basic abc"}), 401,
                 "InvalidAuthenticationToken")  # fmt: skip

    ours = TokenService(load_or_create(server.data_dir), base_url=server.base,
                        clock=lambda: time.time() - 7200)  # fmt: skip
    oid = user_id(server)
    tenant = ours.verify(server.token()).tenant_id
    expired = ours.issue_delegated(tenant_id=tenant, user_id=oid, upn=ME, name="Adele",
                                   scopes=["Mail.Read"], lifetime=600)  # fmt: skip
    err = assert_error(httpx.get(url, headers={"Authorization": f"Bearer {expired}"}), 401,
                       "InvalidAuthenticationToken")  # fmt: skip
    assert "expired" in str(err["message"])

    foreign = TokenService(load_or_create(server.data_dir / "other-key"), base_url=server.base)
    forged = foreign.issue_delegated(tenant_id=tenant, user_id=oid, upn=ME, name="Adele",
                                     scopes=["Mail.Read"])  # fmt: skip
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {forged}"}), 401,
                 "InvalidAuthenticationToken")  # fmt: skip

    wrong_audience = TokenService(load_or_create(server.data_dir), base_url=server.base,
                                  audiences=("api://other",))  # fmt: skip
    other = wrong_audience.issue_delegated(tenant_id=tenant, user_id=oid, upn=ME, name="A",
                                           scopes=["Mail.Read"])  # fmt: skip
    err = assert_error(httpx.get(url, headers={"Authorization": f"Bearer {other}"}), 401,
                       "InvalidAuthenticationToken")  # fmt: skip
    assert "audience" in str(err["message"])

    no_scopes = TokenService(load_or_create(server.data_dir), base_url=server.base).issue_delegated(
        tenant_id=tenant, user_id=oid, upn=ME, name="A", scopes=[]
    )
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {no_scopes}"}), 401,
                 "NoPermissionsInAccessToken")  # fmt: skip


def test_permissions_per_endpoint(server: RunningServer) -> None:
    read_only = server.token(scopes="Mail.Read")
    with server.client(read_only) as c:
        assert c.get("/me/messages").status_code == 200
        assert_error(c.post("/me/messages", json={"subject": "x"}), 403, "ErrorAccessDenied")
        assert_error(c.post("/me/mailFolders", json={"displayName": "x"}), 403,
                     "ErrorAccessDenied")  # fmt: skip
    send_only = server.token(scopes="Mail.Send")
    with server.client(send_only) as c:
        assert_error(c.get("/me/messages"), 403, "ErrorAccessDenied")
        assert_error(c.post("/me/messages", json={"subject": "x"}), 403, "ErrorAccessDenied")


def test_read_basic_hides_body(server: RunningServer) -> None:
    with server.client() as c:
        m = c.post("/me/messages", json={"subject": "basic", "body": {"content": "secret"}}).json()
    with server.client(server.token(scopes="Mail.ReadBasic")) as c:
        got = c.get(f"/me/messages/{m['id']}").json()
        assert got["subject"] == "basic"
        assert "body" not in got and "bodyPreview" not in got
        listed = c.get("/me/messages?$filter=subject eq 'basic'").json()["value"]
        assert listed and all("body" not in item for item in listed)


def test_mailbox_access(server: RunningServer) -> None:
    alex = "AlexW@contoso.onmicrosoft.com"
    with server.client() as c:
        assert_error(c.get(f"/users/{alex}/messages"), 403, "ErrorAccessDenied")
        assert_error(c.post(f"/users/{alex}/messages", json={}), 403, "ErrorAccessDenied")
        assert c.get(f"/users/{ME}/messages").status_code == 200
    app = server.app_token()
    with server.client(app) as c:
        r = c.post(f"/users/{alex}/messages", json={"subject": "from an app"})
        assert r.status_code == 201
        assert r.json()["from"]["emailAddress"]["address"] == alex
        assert c.get(f"/users/{user_id(server, alex)}/messages/{r.json()['id']}").status_code == 200
        assert_error(c.get("/me/messages"), 400, "BadRequest")
    with server.client(server.app_token("reader", "Mail.Read")) as c:
        assert c.get(f"/users/{alex}/messages").status_code == 200
        assert_error(c.post(f"/users/{alex}/messages", json={}), 403, "ErrorAccessDenied")


def test_jwks_published(server: RunningServer) -> None:
    keys = httpx.get(f"{server.base}/common/discovery/v2.0/keys").json()["keys"]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256"
    header_kid = TokenService(load_or_create(server.data_dir)).key.kid
    assert keys[0]["kid"] == header_kid
