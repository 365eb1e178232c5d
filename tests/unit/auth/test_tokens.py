from __future__ import annotations

from pathlib import Path

import pytest

from graphpost.auth.keys import load_or_create
from graphpost.auth.tokens import TokenService
from graphpost.errors import AuthenticationError, NoPermissionsError
from graphpost.types import Access


def test_round_trip_and_claims(tmp_path: Path) -> None:
    key = load_or_create(tmp_path)
    assert load_or_create(tmp_path).kid == key.kid  # kept on disk
    assert (tmp_path / "signing-key.pem").stat().st_mode & 0o077 == 0
    tokens = TokenService(key)
    t = tokens.issue_delegated(tenant_id="t1", user_id="u1", upn="a@b.c", name="A",
                               scopes=["Mail.Read", "Mail.Send"])  # fmt: skip
    p = tokens.verify(t)
    assert p.delegated and p.user_id == "u1" and p.tenant_id == "t1"
    assert p.grants(Access.READ) and p.grants(Access.SEND) and not p.grants(Access.WRITE)
    assert tokens.verify(t) is p  # cached
    app = tokens.verify(tokens.issue_application(tenant_id="t1", app_id="a1",
                                                 roles=["Mail.ReadBasic.All"]))  # fmt: skip
    assert not app.delegated and app.basic_only and app.grants(Access.READ)
    assert app.may_open(mailbox_id="anyone", mailbox_tenant="t1")
    assert not app.may_open(mailbox_id="anyone", mailbox_tenant="t2")


def test_rejections(tmp_path: Path) -> None:
    tokens = TokenService(load_or_create(tmp_path))
    with pytest.raises(AuthenticationError, match="empty"):
        tokens.verify("")
    with pytest.raises(AuthenticationError):
        tokens.verify("a.b.c")
    old = TokenService(tokens.key, clock=lambda: 1_000_000.0)
    expired = old.issue_delegated(
        tenant_id="t", user_id="u", upn="u", name="u", scopes=["Mail.Read"]
    )
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(expired)
    with pytest.raises(NoPermissionsError):
        tokens.verify(tokens.issue_application(tenant_id="t", app_id="a", roles=[]))
