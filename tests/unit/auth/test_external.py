"""GRAPHPOST_TRUSTED_ISSUERS: what is accepted, and what stops the start (with the reason);
whose a verified token is (a user's or an application's), with a fake directory."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from graphpost.auth.external import ExternalIssuers, TrustedIssuer, parse_trusted_issuers
from graphpost.auth.principal import Principal
from graphpost.errors import AuthenticationError, NoPermissionsError


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


def test_require_verified_email_is_a_boolean_defaulting_to_true() -> None:
    (a,) = parse_trusted_issuers('[{"issuer": "https://x", "audience": "a"}]')
    assert a.require_verified_email is True
    (b,) = parse_trusted_issuers(
        '[{"issuer": "https://x", "audience": "a", "require_verified_email": false}]'
    )
    assert b.require_verified_email is False
    with pytest.raises(ValueError, match="require_verified_email must be true or false"):
        parse_trusted_issuers(
            '[{"issuer": "https://x", "audience": "a", "require_verified_email": "no"}]'
        )


# ---------------------------------------------------------------- whose token it is

ISS = "https://idp.example/t"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CONTOSO, FABRIKAM = "tenant-contoso", "tenant-fabrikam"
USERS = {
    "alexw@contoso.example": ("alex-id", CONTOSO),
    "meganb@contoso.example": ("megan-id", CONTOSO),
    "eve@fabrikam.example": ("eve-id", FABRIKAM),
}


class FakeAccounts:
    def __init__(self, *tenants: str) -> None:
        self.tenants = {"contoso.example": CONTOSO, "fabrikam.example": FABRIKAM}
        self.tenants = {k: v for k, v in self.tenants.items() if v in tenants}

    async def user_of(self, key: str) -> tuple[str, str] | None:
        found = USERS.get(key.lower())
        return found if found is not None and found[1] in self.tenants.values() else None

    async def tenant_of(self, key: str | None) -> str | None:
        if key is not None:
            return self.tenants.get(key)
        return next(iter(self.tenants.values())) if len(self.tenants) == 1 else None

    async def tenant_count(self) -> int:
        return len(self.tenants)


def jwks(url: str) -> dict[str, Any]:
    assert url == f"{ISS}/keys"
    jwk = RSAAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
    return {"keys": [{**jwk, "kid": "k1", "use": "sig"}]}


def verifier(accounts: FakeAccounts | None = None, **entry: Any) -> ExternalIssuers:
    config = {"issuer": ISS, "jwks_uri": f"{ISS}/keys", "audience": "graphpost", **entry}
    issuers = parse_trusted_issuers(json.dumps([config]))
    return ExternalIssuers(issuers, accounts or FakeAccounts(CONTOSO), fetch=jwks)


def token(**claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": "graphpost", "exp": now + 600, "nbf": now, **claims}
    return jwt.encode(body, KEY, algorithm="RS256", headers={"kid": "k1"})


def verify(ext: ExternalIssuers, **claims: Any) -> Principal:
    return asyncio.run(ext.verify(token(**claims)))


def refused(ext: ExternalIssuers, words: str, **claims: Any) -> None:
    with pytest.raises(AuthenticationError) as caught:
        verify(ext, **claims)
    assert words in str(caught.value), caught.value


# An Entra v1.0 access token of a user: upn and unique_name, no preferred_username or email;
# roles assigned to the user beside its scp
ENTRA_V1_USER = {
    "upn": "AlexW@contoso.example", "unique_name": "AlexW@contoso.example",
    "oid": "user-object-id", "sub": "pairwise-subject", "appid": "client-app",
    "scp": "Mail.Read", "roles": ["Mail.ReadWrite"], "idtyp": "user",
}  # fmt: skip


def test_a_users_token_without_the_user_claim_is_refused_not_an_app_token() -> None:
    ext = verifier(user_claim="email", tenant="contoso.example")
    refused(ext, "no 'email' claim", **ENTRA_V1_USER)
    # each sign of a user alone is enough to refuse it as an application token
    roles = {"roles": ["Mail.ReadWrite"]}
    refused(ext, "no 'email' claim", scp="Mail.Read", **roles)
    refused(ext, "no 'email' claim", idtyp="user", **roles)
    refused(ext, "no 'email' claim", idtyp="device", **roles)
    refused(ext, "no 'email' claim", upn="AlexW@contoso.example", **roles)
    refused(ext, "no 'email' claim", preferred_username="AlexW@contoso.example", **roles)
    refused(ext, "no 'email' claim", unique_name="AlexW@contoso.example", **roles)
    refused(ext, "no 'email' claim", name="Alex Wilber", **roles)
    refused(ext, "no 'email' claim", oid="user-object-id", sub="pairwise-subject", **roles)
    # an empty or non-string user claim is no user either
    refused(ext, "no 'email' claim", email=" ", email_verified=True, **roles)
    refused(ext, "no 'email' claim", email=["AlexW@contoso.example"], **roles)
    # idtyp "app" does not hide a user the token names
    refused(ext, "no 'email' claim", idtyp="app", upn="AlexW@contoso.example", **roles)


def test_the_same_user_token_maps_by_its_user_claim() -> None:
    principal = verify(verifier(user_claim="upn"), **ENTRA_V1_USER)
    assert principal.user_id == "alex-id" and principal.tenant_id == CONTOSO
    assert principal.permissions == frozenset({"Mail.Read"})  # scp, never the user's roles
    refused(verifier(), "no 'preferred_username' claim", **ENTRA_V1_USER)


def test_only_a_token_naming_no_user_is_an_application_token() -> None:
    ext = verifier(tenant="contoso.example")
    for claims in (
        {"roles": ["Mail.Read"]},
        {"roles": "Mail.Read", "idtyp": "app", "azp": "daemon"},
        {"roles": ["Mail.Read"], "oid": "sp-object-id", "sub": "sp-object-id"},  # Entra
    ):
        principal = verify(ext, **claims)
        assert principal.user_id is None and principal.tenant_id == CONTOSO, claims
        assert principal.permissions == frozenset({"Mail.Read"})
    with pytest.raises(NoPermissionsError):
        verify(ext, idtyp="app")


def test_email_maps_only_when_verified() -> None:
    ext = verifier(user_claim="email")
    alex = {"email": "AlexW@contoso.example", "scp": "Mail.Read"}
    assert verify(ext, email_verified=True, **alex).user_id == "alex-id"
    assert verify(ext, email_verified="true", **alex).user_id == "alex-id"
    refused(ext, "email is not verified", email_verified=False, **alex)
    refused(ext, "email is not verified", email_verified="false", **alex)
    refused(ext, "email is not verified", email_verified=1, **alex)
    refused(ext, "email is not verified", **alex)  # absent: refused by default
    # an issuer that never sends it (Entra ID) when the operator says so; false still refused
    lax = verifier(user_claim="email", require_verified_email=False)
    assert verify(lax, **alex).user_id == "alex-id"
    refused(lax, "email is not verified", email_verified=False, **alex)
    # another user claim is not concerned
    assert verify(verifier(user_claim="upn"), upn="AlexW@contoso.example", **alex).user_id


def test_an_issuer_without_tenant_is_trusted_only_on_a_server_with_one() -> None:
    alex = {"preferred_username": "AlexW@contoso.example", "scp": "Mail.Read"}
    eve = {"preferred_username": "eve@fabrikam.example", "scp": "Mail.Read"}
    assert verify(verifier(FakeAccounts(FABRIKAM)), **eve).tenant_id == FABRIKAM
    both = FakeAccounts(CONTOSO, FABRIKAM)
    untied = verifier(both)
    refused(untied, "several tenants", **alex)
    refused(untied, "several tenants", **eve)
    refused(untied, "set its 'tenant'", roles=["Mail.Read"])
    with pytest.raises(ValueError, match=f"{ISS} has no 'tenant'"):
        asyncio.run(untied.check_tenants())
    tied = verifier(both, tenant="contoso.example")
    asyncio.run(tied.check_tenants())
    assert verify(tied, **alex).tenant_id == CONTOSO
    refused(tied, "not in the tenant", **eve)
    asyncio.run(verifier(FakeAccounts(CONTOSO)).check_tenants())  # one tenant: fine
