"""The identity service's rules: delegated scopes, redirect URIs (pure), and app registration
on the real store (a SQLite file)."""

from __future__ import annotations

import pytest

from graphpost.errors import AlreadyExistsError, InvalidInputError, NotFoundError, SignInError
from graphpost.ports.identity import AppRegistration
from graphpost.runtime import Runtime
from graphpost.services.identity import DEFAULT_DELEGATED, parse_scopes, redirect_allowed
from tests.unit.wiring import add_mailbox


def test_scopes() -> None:
    s = parse_scopes("https://graph.microsoft.com/Mail.Read openid Profile offline_access")
    assert s.graph == ("Mail.Read",) and s.oidc == {"openid", "profile", "offline_access"}
    assert s.shown() == "Mail.Read openid profile offline_access"
    assert parse_scopes("https://graph.microsoft.com/.default").graph == DEFAULT_DELEGATED
    assert parse_scopes(".default Mail.Read").graph == (*DEFAULT_DELEGATED, "Mail.Read")
    assert parse_scopes("00000003-0000-0000-c000-000000000000/Mail.Send").graph == ("Mail.Send",)
    assert parse_scopes("Mail.Read Mail.Read").graph == ("Mail.Read",)
    assert parse_scopes("openid").graph == ("User.Read",)
    for bad in ("https://outlook.office.com/Mail.Read", "api://x/.default", "Mail.Read'--",
                "x" * 65, "<b>"):  # fmt: skip
        with pytest.raises(SignInError) as caught:
            parse_scopes(bad)
        assert caught.value.aadsts == 70011 and caught.value.error == "invalid_scope"


def _app(*uris: str, public: bool) -> AppRegistration:
    return AppRegistration("c", "t", "n", None, (), uris, public)


def test_redirect_uris() -> None:
    web = _app("https://app.example/cb", public=False)
    assert redirect_allowed(web, "https://app.example/cb")
    for other in ("https://app.example/cb/", "https://app.example/cb?x=1", "http://localhost",
                  "https://app.example.evil/cb"):  # fmt: skip
        assert not redirect_allowed(web, other)
    native = _app("http://localhost", public=True)
    for ok in ("http://localhost", "http://localhost:53117/cb", "http://127.0.0.1:9/"):
        assert redirect_allowed(native, ok)
    for bad in ("https://localhost:1/", "http://localhost.evil.example/", "http://[::1",
                "http://evil.example/?http://localhost"):  # fmt: skip
        assert not redirect_allowed(native, bad)
    assert not redirect_allowed(_app("https://app.example/cb", public=True), "http://localhost")


@pytest.mark.anyio
async def test_register_app_needs_a_tenant_when_there_are_several(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError, match="no tenant"):
        await runtime.identity.register_app("a", roles=[], tenant_key=None, redirect_uris=[],
                                            public=False)  # fmt: skip
    await add_mailbox(runtime, "adele@contoso.test", "Adele Vance")
    app, secret = await runtime.identity.register_app(
        "a", roles=["Mail.Read"], tenant_key=None, redirect_uris=[], public=False
    )
    assert secret and app.secret_digest and secret not in app.secret_digest
    await add_mailbox(runtime, "bob@fabrikam.test", "Bob")
    with pytest.raises(InvalidInputError, match="--tenant"):
        await runtime.identity.register_app("b", roles=[], tenant_key=None, redirect_uris=[],
                                            public=False)  # fmt: skip
    other, none = await runtime.identity.register_app(
        "b", roles=[], tenant_key="fabrikam.test", redirect_uris=["http://localhost"],
        public=True,
    )  # fmt: skip
    assert none is None and other.public_client
    with pytest.raises(AlreadyExistsError):
        await runtime.identity.register_app("b", roles=[], tenant_key="fabrikam.test",
                                            redirect_uris=[], public=True)  # fmt: skip
    for bad in (["javascript:alert(1)"], ["https://a.example/\r\nx"], ["relative/path"]):
        with pytest.raises(InvalidInputError):
            await runtime.identity.register_app("c", roles=[], tenant_key="fabrikam.test",
                                                redirect_uris=bad, public=True)  # fmt: skip
    with pytest.raises(InvalidInputError):
        await runtime.identity.register_app("c\n", roles=["Mail Read"], tenant_key=None,
                                            redirect_uris=[], public=True)  # fmt: skip
    with pytest.raises(NotFoundError):
        await runtime.identity.register_app("c", roles=[], tenant_key="nowhere.test",
                                            redirect_uris=[], public=True)  # fmt: skip
    assert (await runtime.identity.remove_app("b")).id == other.id
    with pytest.raises(NotFoundError):
        await runtime.identity.remove_app("b")
