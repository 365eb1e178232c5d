"""The identity service's rules: delegated scopes, redirect URIs (pure), and app registration
on the real store (a SQLite file)."""

from __future__ import annotations

import pytest

from graphpost.errors import AlreadyExistsError, InvalidInputError, NotFoundError, SignInError
from graphpost.ports.identity import AppRegistration
from graphpost.runtime import Runtime
from graphpost.services import identity as identity_module
from graphpost.services.identity import (
    DEFAULT_DELEGATED,
    failure_name_key,
    parse_scopes,
    redirect_allowed,
)
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


def test_redirect_uris_a_browser_reads_otherwise_never_match() -> None:
    """A backslash, user info, a fragment, whitespace, control or non-ASCII characters, or a
    URI that does not read back the same: refused even where the registered host is matched
    loosely (a public client's localhost) and even when registered so."""
    native = _app("http://localhost", public=True)
    for bad in (
        "http://evil.example\\@localhost/cb", "http://evil.example@localhost/cb",
        "http://user:pw@localhost/cb", "http://localhost/cb#frag", "http://localhost/cb\u2028",
        "http://localhost /cb", "http://localhost/\tcb", "http://l\u00f6calhost/",
        "http://localhost:80x/", "http://localhost:/cb", "http://localhost:0080/",
        "http:localhost/cb", "http://localhost/cb?", "HTTP://localhost/cb",
    ):  # fmt: skip
        assert not redirect_allowed(native, bad), bad
        assert not redirect_allowed(_app(bad, public=False), bad), bad
    assert redirect_allowed(native, "http://127.0.0.1:8400/auth?x=1")
    pathed = _app("http://localhost/cb", public=True)
    assert redirect_allowed(pathed, "http://localhost:5000/cb")
    assert not redirect_allowed(pathed, "http://localhost:5000/other")


def test_scope_parameters_are_capped() -> None:
    for bad in (" ".join(f"Mail.Read{i}" for i in range(51)), "Mail.Read " + " " * 2100):
        with pytest.raises(SignInError) as caught:
            parse_scopes(bad)
        assert caught.value.error == "invalid_scope"
    assert len(parse_scopes(" ".join(f"P{i}" for i in range(50))).graph) == 50


@pytest.mark.anyio
async def test_a_public_client_cannot_hold_roles(runtime: Runtime) -> None:
    await add_mailbox(runtime, "adele@contoso.test", "Adele Vance")
    with pytest.raises(InvalidInputError, match="public client"):
        await runtime.identity.register_app("p", roles=["Mail.Read"], tenant_key=None,
                                            redirect_uris=[], public=True)  # fmt: skip


@pytest.mark.anyio
async def test_unknown_names_do_not_lock_a_client_for_its_users(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures for names that are nobody of the app's tenant count apart (a higher limit);
    the client's lock-out does not speak of "your account"; a name is stored as a digest."""
    monkeypatch.setattr(identity_module, "MAX_CLIENT_FAILURES", 3)
    monkeypatch.setattr(identity_module, "MAX_CLIENT_UNKNOWN_FAILURES", 4)
    await add_mailbox(runtime, "adele@contoso.test", "Adele Vance")
    await runtime.identity.set_password("adele@contoso.test", "a good passphrase")
    await add_mailbox(runtime, "bob@fabrikam.test", "Bob")
    await runtime.identity.set_password("bob@fabrikam.test", "a good passphrase")
    app, _ = await runtime.identity.register_app(
        "p", roles=[], tenant_key="contoso.test", redirect_uris=[], public=True
    )
    names = ["Nobody1@contoso.test", "nobody2@contoso.test", "bob@fabrikam.test", "x@y.test"]
    for name in names:
        with pytest.raises(SignInError) as caught:
            await runtime.identity.sign_in(app, name, "a good passphrase")
        assert caught.value.aadsts == 50126
    user = await runtime.identity.sign_in(app, "adele@contoso.test", "a good passphrase")
    assert user.mail == "adele@contoso.test"
    store = runtime.identity.store
    assert await store.count_failures("name:nobody1@contoso.test", 0) == 0
    assert await store.count_failures(failure_name_key("nobody1@CONTOSO.test"), 0) == 1
    with pytest.raises(SignInError) as caught:  # the unknown-name limit reached
        await runtime.identity.sign_in(app, "nobody5@contoso.test", "x")
    assert caught.value.aadsts == 50053 and "your account" not in caught.value.message.lower()


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
