"""The token endpoint and discovery over HTTPS, with the official MSAL Python and
azure-identity as clients, on both engines: client credentials, the identity platform's
errors, discovery documents, hostile input."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import jwt
import msal  # type: ignore[import-untyped]
import pytest
from azure.identity import ClientSecretCredential

from tests.conftest import RunningServer
from tests.identity_pages import DEMO
from tests.mail_api import DEMO_TENANT

GRAPH_DEFAULT = "https://graph.microsoft.com/.default"


pytestmark = pytest.mark.usefixtures("trust_tls")


def _cert(server: RunningServer) -> str:
    return str(server.data_dir / "tls" / "cert.pem")


def _app(server: RunningServer, name: str, *extra: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(
        server.cli("apps", "add", "--tenant", DEMO_TENANT, name, "--json", *extra)
    )
    return out


def _http(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.base, verify=server.verify, timeout=30)


def _assert_identity_error(r: httpx.Response, status: int, error: str, code: int) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error, body
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert body[key]


def test_msal_confidential_client_then_graph(tls: RunningServer) -> None:
    app = _app(tls, "daemon", "--roles", "Mail.ReadWrite Mail.Send")
    assert len(app["client_secret"]) >= 40
    authority = f"{tls.base}/{app['tenant_id']}"
    cca = msal.ConfidentialClientApplication(
        app["client_id"], client_credential=app["client_secret"], authority=authority,
        verify=_cert(tls), instance_discovery=False,
    )  # fmt: skip
    result = cca.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["Mail.ReadWrite", "Mail.Send"]
    assert claims["iss"] == f"{tls.base}/{app['tenant_id']}/v2.0"
    with tls.client(result["access_token"]) as c:
        r = c.get(f"/users/AdeleV@{DEMO}/messages")
        assert r.status_code == 200, r.text
    # by domain, and by the common authority too
    for tenant in (DEMO, "organizations"):
        other = msal.ConfidentialClientApplication(
            app["client_id"], client_credential=app["client_secret"],
            authority=f"{tls.base}/{tenant}", verify=_cert(tls), instance_discovery=False,
        )  # fmt: skip
        assert "access_token" in other.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    # a wrong secret, through MSAL: the identity platform's answer
    wrong = msal.ConfidentialClientApplication(
        app["client_id"], client_credential="not-the-secret", authority=authority,
        verify=_cert(tls), instance_discovery=False,
    )  # fmt: skip
    failed = wrong.acquire_token_for_client(scopes=[GRAPH_DEFAULT])
    assert failed["error"] == "invalid_client" and failed["error_codes"] == [7000215]
    assert "not-the-secret" not in json.dumps(failed)


def test_azure_identity_client_secret_credential(tls: RunningServer) -> None:
    app = _app(tls, "azure-daemon", "--roles", "Mail.Read")
    credential = ClientSecretCredential(
        app["tenant_id"], app["client_id"], app["client_secret"], authority=tls.base,
        disable_instance_discovery=True, connection_verify=_cert(tls),
    )  # fmt: skip
    token = credential.get_token(GRAPH_DEFAULT)
    with tls.client(token.token) as c:
        assert c.get(f"/users/AdeleV@{DEMO}/messages").status_code == 200
        assert c.post(f"/users/AdeleV@{DEMO}/messages", json={"subject": "x"}).status_code == 403


def test_token_endpoint_errors(tls: RunningServer) -> None:
    app = _app(tls, "errors", "--roles", "Mail.Read")
    url = f"/{app['tenant_id']}/oauth2/v2.0/token"
    good = {
        "grant_type": "client_credentials", "client_id": app["client_id"],
        "client_secret": app["client_secret"], "scope": GRAPH_DEFAULT,
    }  # fmt: skip
    with _http(tls) as c:
        ok = c.post(url, data=good)
        assert ok.status_code == 200
        assert set(ok.json()) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
        assert ok.headers["cache-control"].startswith("no-store")
        # HTTP Basic client authentication
        basic = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
        no_secret = {k: v for k, v in good.items() if k not in ("client_secret", "client_id")}
        r = c.post(url, data=no_secret, headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 200, r.text
        cases: list[tuple[dict[str, str], int, str, int]] = [
            ({**good, "client_secret": "wrong"}, 401, "invalid_client", 7000215),
            ({**good, "client_id": "00000000-0000-0000-0000-000000000000"}, 400,
             "unauthorized_client", 700016),
            ({k: v for k, v in good.items() if k != "client_secret"}, 401, "invalid_client",
             7000218),
            ({k: v for k, v in good.items() if k != "scope"}, 400, "invalid_request", 900144),
            ({k: v for k, v in good.items() if k != "grant_type"}, 400, "invalid_request",
             900144),
            ({**good, "grant_type": "implicit"}, 400, "unsupported_grant_type", 70003),
            ({**good, "scope": "Mail.Read"}, 400, "invalid_scope", 70011),
            ({**good, "scope": "https://outlook.office.com/.default"}, 400, "invalid_scope",
             70011),
        ]  # fmt: skip
        for form, status, error, code in cases:
            r = c.post(url, data=form)
            _assert_identity_error(r, status, error, code)
            assert app["client_secret"] not in r.text
        # an app of this tenant asked for through another tenant: not found there
        _assert_identity_error(
            c.post("/no-such-tenant.example/oauth2/v2.0/token", data=good), 400,
            "invalid_tenant", 90002,
        )  # fmt: skip


def test_hostile_input_gets_the_identity_shape(tls: RunningServer) -> None:
    url = "/common/oauth2/v2.0/token"
    form = "grant_type=client_credentials&client_id=x&scope=y"
    bodies: list[tuple[bytes | str, dict[str, str]]] = [
        ("x" * 200_000, {"content-type": "application/x-www-form-urlencoded"}),
        (form + "&client_secret=%00", {"content-type": "application/x-www-form-urlencoded"}),
        (b"grant_type=\xff\xfe", {"content-type": "application/x-www-form-urlencoded"}),
        (form + "&grant_type=password", {"content-type": "application/x-www-form-urlencoded"}),
        (json.dumps({"grant_type": "client_credentials"}), {"content-type": "application/json"}),
        (form, {}),
        (form + "&client_secret=a%0d%0aInjected: 1",
         {"content-type": "application/x-www-form-urlencoded"}),
        ("&".join(f"k{i}=v" for i in range(5000)),
         {"content-type": "application/x-www-form-urlencoded"}),
    ]  # fmt: skip
    with _http(tls) as c:
        for body, headers in bodies:
            r = c.post(url, content=body, headers=headers)
            assert r.status_code == 400, (body[:60], r.text)
            assert r.json()["error"] == "invalid_request", r.text
            assert r.json()["error_description"].startswith("AADSTS")
        r = c.post(url, data={"grant_type": "client_credentials"},
                    headers={"Authorization": "Basic !!!notbase64"})  # fmt: skip
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        # NUL in the path, an unknown identity endpoint, a wrong method
        for method, path in (("GET", "/common/oauth2/v2.0/to%00ken"),
                             ("GET", "/common/oauth2/v2.0/token"),
                             ("POST", "/common/oauth2/v2.0/nothing")):  # fmt: skip
            r = c.request(method, path)
            assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text


def test_discovery_documents_answer_with_absolute_urls(tls: RunningServer) -> None:
    with _http(tls) as c:
        for tenant in (DEMO, "common", "organizations"):
            doc = c.get(f"/{tenant}/v2.0/.well-known/openid-configuration").json()
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                        "device_authorization_endpoint", "end_session_endpoint",
                        "userinfo_endpoint"):  # fmt: skip
                assert doc[key].startswith(f"{tls.base}/{tenant}/"), (key, doc[key])
            assert c.get(doc["jwks_uri"]).json()["keys"]
            assert c.get(doc["end_session_endpoint"]).status_code == 200
            r = c.get(doc["authorization_endpoint"])  # no client: an error page, not a 500
            assert r.status_code == 400 and "AADSTS900144" in r.text
            r = c.get(doc["userinfo_endpoint"])
            assert r.status_code == 401 and r.json()["error"] == "invalid_token"
        tenant_id = c.get(f"/{DEMO}/v2.0/.well-known/openid-configuration").json()["issuer"]
        assert tenant_id.startswith(tls.base) and tenant_id.endswith("/v2.0")
        assert (
            "{tenantid}" in c.get("/common/v2.0/.well-known/openid-configuration").json()["issuer"]
        )
        r = c.get("/nowhere.example/v2.0/.well-known/openid-configuration")
        _assert_identity_error(r, 400, "invalid_tenant", 90002)
        instance = c.get(
            "/common/discovery/instance",
            params={"api-version": "1.1",
                    "authorization_endpoint": f"{tls.base}/{DEMO}/oauth2/v2.0/authorize"},
        ).json()  # fmt: skip
        assert instance["tenant_discovery_endpoint"] == (
            f"{tls.base}/{DEMO}/v2.0/.well-known/openid-configuration"
        )
        realm = c.get(f"/common/userrealm/AdeleV@{DEMO}", params={"api-version": "1.0"}).json()
        assert realm["ver"] == "1.0" and realm["account_type"] == "Managed"
        assert c.get("/common/userrealm/x@elsewhere.example").json()["account_type"] == "Unknown"


def test_msal_with_instance_discovery_against_this_server(tls: RunningServer) -> None:
    """MSAL's own instance discovery, pointed at this server, is answered as MSAL expects."""
    app = _app(tls, "discovering", "--roles", "Mail.Read")
    cca = msal.ConfidentialClientApplication(
        app["client_id"], client_credential=app["client_secret"],
        authority=f"{tls.base}/{DEMO}", verify=_cert(tls),
        instance_discovery=f"{tls.base}/common/discovery/instance",
    )  # fmt: skip
    assert "access_token" in cca.acquire_token_for_client(scopes=[GRAPH_DEFAULT])


def test_apps_cli(tls: RunningServer) -> None:
    public = _app(tls, "native", "--public", "--redirect-uri", "http://localhost")
    assert public["client_secret"] is None
    plain = tls.cli("apps", "add", "--tenant", DEMO_TENANT, "plain-output", "--roles", "Mail.Read")
    assert plain.startswith("client_id: ") and "\nclient_secret: " in plain
    listed = tls.cli("apps", "list")
    assert f"{public['client_id']}\tnative\tpublic" in listed
    assert "\tplain-output\tconfidential" in listed
    assert plain.split()[1] in listed
    assert "removed native" in tls.cli("apps", "remove", "native")
    assert public["client_id"] not in tls.cli("apps", "list")
    secret = plain.split("client_secret: ")[1].split()[0]
    assert secret not in listed  # only its digest is stored
