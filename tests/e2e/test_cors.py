"""CORS against a real server: preflights and the headers of actual answers on the Graph API
and the identity platform's paths, for any origin (the default), listed origins, or none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, start_server

APP = "https://app.example"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type,client-request-id",
}
TENANT = "contoso.onmicrosoft.com"


def cors_server(factory: pytest.TempPathFactory, origins: str | None) -> RunningServer:
    if origins is None:
        return start_server(Path(factory.mktemp("cors")))
    return start_server(Path(factory.mktemp("cors")), GRAPHPOST_CORS_ORIGINS=origins)


@pytest.fixture(scope="module")
def anyone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = cors_server(tmp_path_factory, None)  # the default: *
    yield server
    server.stop()


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = cors_server(tmp_path_factory, f"{APP}, https://other.example/")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = cors_server(tmp_path_factory, "")
    yield server
    server.stop()


def cors_headers(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k.startswith("access-control-") or k == "vary"}


def test_preflight_on_the_graph_api(anyone: RunningServer) -> None:
    r = httpx.options(f"{anyone.base}/v1.0/me/messages", headers=PREFLIGHT)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "PATCH", "PUT", "DELETE"} <= methods
    assert r.headers["access-control-allow-headers"] == PREFLIGHT["Access-Control-Request-Headers"]
    assert int(r.headers["access-control-max-age"]) > 0
    assert "vary" not in r.headers


def test_actual_answers_carry_cors_headers_errors_too(anyone: RunningServer) -> None:
    token = anyone.token()
    ok = httpx.get(f"{anyone.base}/v1.0/me/mailFolders",
                   headers={"Origin": APP, "Authorization": f"Bearer {token}"})  # fmt: skip
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in ok.headers["access-control-expose-headers"].split(",")}
    assert {"location", "request-id", "client-request-id", "retry-after", "etag"} <= exposed
    denied = httpx.get(f"{anyone.base}/v1.0/me/messages", headers={"Origin": APP})
    assert denied.status_code == 401  # a browser app can read why
    assert denied.headers["access-control-allow-origin"] == "*"
    # no Origin: not a cross-origin request, no CORS headers
    assert cors_headers(httpx.get(f"{anyone.base}/v1.0/me/messages")) == {}


def test_identity_paths_by_shape(anyone: RunningServer) -> None:
    for path in (
        f"/{TENANT}/oauth2/v2.0/token",
        f"/{TENANT}/oauth2/v2.0/devicecode",
        "/common/oauth2/v2.0/token",
        f"/{TENANT}/v2.0/.well-known/openid-configuration",
        f"/{TENANT}/discovery/v2.0/keys",
        "/common/discovery/instance",
    ):
        r = httpx.options(f"{anyone.base}{path}", headers=PREFLIGHT)
        assert r.status_code == 204, path
        assert r.headers["access-control-allow-origin"] == "*", path
    got = httpx.get(f"{anyone.base}/{TENANT}/v2.0/.well-known/openid-configuration",
                    headers={"Origin": APP})  # fmt: skip
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == "*"
    keys = httpx.get(f"{anyone.base}/{TENANT}/discovery/v2.0/keys", headers={"Origin": APP})
    assert keys.headers["access-control-allow-origin"] == "*"
    # the token endpoint's errors reach a browser app too
    token = httpx.post(f"{anyone.base}/{TENANT}/oauth2/v2.0/token",
                       data={"grant_type": "nonsense"}, headers={"Origin": APP})  # fmt: skip
    assert token.status_code == 400 and "error" in token.json()
    assert token.headers["access-control-allow-origin"] == "*"
    # the mailbox page and other paths are not part of the API: no CORS
    for path in ("/", f"/{TENANT}/oauth2/v2.0/authorize", "/other/thing"):
        assert cors_headers(httpx.get(f"{anyone.base}{path}", headers={"Origin": APP})) == {}
        assert cors_headers(httpx.options(f"{anyone.base}{path}", headers=PREFLIGHT)) == {}


def test_requested_headers_are_echoed_only_when_they_are_header_names(
    anyone: RunningServer,
) -> None:
    for bad in (b"a b", b"x;y", b"x,,y", "é".encode(), b"a" * 5000):
        headers = {k.encode(): v.encode() for k, v in PREFLIGHT.items()}
        headers[b"Access-Control-Request-Headers"] = bad
        r = httpx.options(f"{anyone.base}/v1.0/me", headers=headers)
        assert r.status_code == 204
        assert "access-control-allow-headers" not in r.headers
    plain = {k: v for k, v in PREFLIGHT.items() if k != "Access-Control-Request-Headers"}
    assert (
        "access-control-allow-headers"
        not in httpx.options(f"{anyone.base}/v1.0/me", headers=plain).headers
    )


def test_listed_origins_only(listed: RunningServer) -> None:
    r = httpx.options(f"{listed.base}/v1.0/me", headers=PREFLIGHT)
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["vary"] == "Origin"
    other = httpx.get(f"{listed.base}/v1.0/me", headers={"Origin": "https://OTHER.example"})
    assert other.headers["access-control-allow-origin"] == "https://OTHER.example"
    for stranger in ("https://evil.example", "https://app.example.evil", "null", "*"):
        preflight = httpx.options(
            f"{listed.base}/v1.0/me", headers={**PREFLIGHT, "Origin": stranger}
        )
        assert cors_headers(preflight) == {}, stranger
        actual = httpx.get(f"{listed.base}/v1.0/me", headers={"Origin": stranger})
        assert actual.status_code == 401 and cors_headers(actual) == {}, stranger


def test_empty_origins_turn_cors_off(off: RunningServer) -> None:
    assert cors_headers(httpx.options(f"{off.base}/v1.0/me", headers=PREFLIGHT)) == {}
    assert cors_headers(httpx.get(f"{off.base}/v1.0/me", headers={"Origin": APP})) == {}
