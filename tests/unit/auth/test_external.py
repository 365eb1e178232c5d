"""GRAPHPOST_TRUSTED_ISSUERS: what is accepted, and what stops the start (with the reason)."""

from __future__ import annotations

import pytest

from graphpost.auth.external import TrustedIssuer, parse_trusted_issuers


def test_defaults_and_forms() -> None:
    assert parse_trusted_issuers(None) == ()
    assert parse_trusted_issuers("  ") == ()
    (a, b) = parse_trusted_issuers(
        '[{"issuer": "https://idp.example/realms/x", "audience": "graphpost"},'
        ' {"issuer": "https://login.microsoftonline.com/t/v2.0", "audience": ["a", "b"],'
        '  "jwks_uri": "https://login.microsoftonline.com/t/discovery/v2.0/keys",'
        '  "user_claim": "upn", "tenant": "contoso.com", "scopes": "Mail.Read Mail.Send",'
        '  "roles_claim": "app_roles"}]'
    )
    assert a == TrustedIssuer("https://idp.example/realms/x", ("graphpost",))
    assert a.user_claim == "preferred_username" and a.roles_claim == "roles"
    assert a.jwks_uri is None and a.scopes is None and a.tenant is None
    assert b.audiences == ("a", "b") and b.user_claim == "upn" and b.tenant == "contoso.com"
    assert b.scopes == frozenset({"Mail.Read", "Mail.Send"}) and b.roles_claim == "app_roles"


@pytest.mark.parametrize(
    ("config", "why"),
    [
        ("not json", "not JSON"),
        ('{"issuer": "https://x"}', "JSON list"),
        ('[{"issuer": "https://x"}]', "audience"),
        ('[{"issuer": "ftp://x", "audience": "a"}]', "issuer must be an http"),
        ('[{"issuer": "https://x\\r\\nY", "audience": "a"}]', "control characters"),
        ('[{"issuer": "https://x", "audience": []}]', "audience"),
        ('[{"issuer": "https://x", "audience": ["a", 1]}]', "audience"),
        ('[{"issuer": "https://x", "audience": "a", "typo": 1}]', "unknown field"),
        (
            '[{"issuer": "https://x", "audience": "a", "jwks_uri": "file:///etc/passwd"}]',
            "jwks_uri must be an http",
        ),
        ('[{"issuer": "https://x", "audience": "a", "scopes": []}]', "scopes"),
        ('[{"issuer": "https://x", "audience": "a", "user_claim": ""}]', "user_claim"),
        (
            '[{"issuer": "https://x", "audience": "a"}, {"issuer": "https://x", "audience": "b"}]',
            "twice",
        ),
        ("[1]", "must be an object"),
    ],
)
def test_refused(config: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_trusted_issuers(config)


def test_settings_refuse_a_bad_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from graphpost.settings import Settings

    monkeypatch.setenv("GRAPHPOST_TRUSTED_ISSUERS", '[{"issuer": "https://x"}]')
    with pytest.raises(ValidationError, match="audience"):
        Settings()
