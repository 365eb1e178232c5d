"""Signing keys end to end: every forged or stale token is a 401, a rotated key keeps its
tokens valid, and a running server picks up a rotation made by the CLI without a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from graphpost.auth.keys import load_or_create
from graphpost.auth.tokens import GRAPH_AUDIENCES, TokenService
from tests.conftest import RunningServer, start_server
from tests.mail_api import ME, assert_error, user_id


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("keys"))
    yield running
    running.stop()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _claims(server: RunningServer, **changes: Any) -> dict[str, Any]:
    tenant = (
        TokenService(load_or_create(server.data_dir), base_url=server.base)
        .verify(server.token())
        .tenant_id
    )
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": GRAPH_AUDIENCES[0], "iss": f"{server.base}/{tenant}/v2.0", "iat": now,
        "nbf": now, "exp": now + 600, "tid": tenant, "oid": user_id(server), "scp": "Mail.Read",
    }  # fmt: skip
    claims.update(changes)
    return claims


def _signed(server: RunningServer, claims: dict[str, Any]) -> str:
    key = load_or_create(server.data_dir)
    return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": key.kid})


def _status(server: RunningServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.base}/v1.0/me/mailFolders/inbox",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_every_forgery_is_401(keyed: RunningServer) -> None:
    assert _status(keyed, _signed(keyed, _claims(keyed))).status_code == 200  # the control
    key = load_or_create(keyed.data_dir)
    good = _claims(keyed)
    # alg none, with our kid
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}).encode())
    none = f"{header}.{_b64(json.dumps(good).encode())}."
    # HS256 signed with our public key's PEM as the HMAC secret (the classic confusion)
    pem = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = f"{_b64(json.dumps({'alg': 'HS256', 'kid': key.kid}).encode())}." + _b64(
        json.dumps(good).encode()
    )
    hs256 = f"{body}.{_b64(hmac.new(pem, body.encode(), hashlib.sha256).digest())}"
    # our key, but a kid we never had
    unknown_kid = jwt.encode(good, key.private, algorithm="RS256", headers={"kid": "nope"})
    forged = {
        "alg none": none,
        "HS256 with the public key": hs256,
        "unknown kid": unknown_kid,
        "wrong audience": _signed(keyed, _claims(keyed, aud="api://someone-else")),
        "wrong issuer": _signed(keyed, _claims(keyed, iss="https://evil.example/x/v2.0")),
        "Entra's issuer": _signed(
            keyed, _claims(keyed, iss=f"https://login.microsoftonline.com/{good['tid']}/v2.0")
        ),
        "expired": _signed(keyed, _claims(keyed, exp=int(time.time()) - 300)),
        "not yet valid": _signed(keyed, _claims(keyed, nbf=int(time.time()) + 600)),
        "garbage": "not-a-token",
        "three garbage parts": "a.b.c",
        "huge": "x" * 20_000,
    }
    for what, token in forged.items():
        r = _status(keyed, token)
        assert r.status_code == 401, (what, r.text)
        assert_error(r, 401, "InvalidAuthenticationToken")


def test_rotation_is_seen_without_restart_and_old_tokens_stay_valid(
    keyed: RunningServer,
) -> None:
    before = keyed.cli("token", "--user", ME).strip()
    old_kid = jwt.get_unverified_header(before)["kid"]
    jwks = httpx.get(f"{keyed.base}/common/discovery/v2.0/keys").json()["keys"]
    assert [k["kid"] for k in jwks] == [old_kid]

    new_kid = keyed.cli("keys", "rotate").split()[0]
    assert new_kid != old_kid
    listed = keyed.cli("keys", "list")
    assert listed.splitlines()[0].startswith(f"{new_kid}\tcurrent")
    assert old_kid in listed and "accepted until" in listed
    assert (keyed.data_dir / "keys").is_dir()

    # a token of the new key, made by the CLI: the server has never seen that kid
    after = keyed.cli("token", "--user", ME).strip()
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    deadline = time.monotonic() + 10
    while _status(keyed, after).status_code != 200:  # re-read at most once a second
        assert time.monotonic() < deadline, "the server never picked up the rotated key"
        time.sleep(0.2)
    assert _status(keyed, before).status_code == 200  # the retired key still verifies
    published = [
        k["kid"] for k in httpx.get(f"{keyed.base}/common/discovery/v2.0/keys").json()["keys"]
    ]
    assert published[0] == new_kid and old_kid in published
    # and the running server now signs with the new key too: its banner-less path is the CLI;
    # the discovery document's jwks_uri serves the same set
    config = httpx.get(
        f"{keyed.base}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"
    ).json()
    assert [k["kid"] for k in httpx.get(config["jwks_uri"]).json()["keys"]] == published
