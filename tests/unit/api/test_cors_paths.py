"""Which paths the CORS wrapper covers (by shape) and how origins are read."""

from __future__ import annotations

import pytest

from graphpost.api.cors import covered, parse_origins


@pytest.mark.parametrize(
    "path",
    [
        "/v1.0/me", "/V1.0/users/$count", "/v1.0/$batch", "/common/discovery/instance",
        "/common/oauth2/v2.0/token", "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "/organizations/oauth2/v2.0/devicecode", "/t/v2.0/.well-known/openid-configuration",
        "/t/discovery/v2.0/keys", "/t/discovery/keys",
    ],
)  # fmt: skip
def test_covered(path: str) -> None:
    assert covered(path)


@pytest.mark.parametrize(
    "path",
    [
        "/", "", "/t/oauth2/v2.0/authorize", "/t/oauth2/v2.0/token/extra", "/t/oauth2/token",
        "/v1.00/me", "/beta/me", "/t/v2.0/.well-known/other", "/static/app.js",
        "/.well-known/jwks.json",
    ],
)  # fmt: skip
def test_not_covered(path: str) -> None:
    assert not covered(path)


def test_origins() -> None:
    assert parse_origins("") == ()
    assert parse_origins(" , ") == ()
    assert parse_origins("*") == ("*",)
    assert parse_origins("https://a.example/, http://localhost:3000") == (
        "https://a.example", "http://localhost:3000",
    )  # fmt: skip
