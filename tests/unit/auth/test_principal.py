"""What each scope and role allows, in the caller's own mailbox and in one shared with them."""

from __future__ import annotations

import pytest

from graphpost.auth.principal import Principal
from graphpost.errors import AccessDeniedError
from graphpost.types import Access, Right

READ, RW = frozenset({Right.READ}), frozenset({Right.READWRITE})
SEND_AS = frozenset({Right.READ, Right.SEND_AS})


def user(*scopes: str) -> Principal:
    return Principal("t", "app", "u", frozenset(scopes), 0)


def app(*roles: str) -> Principal:
    return Principal("t", "app", None, frozenset(roles), 0)


def allowed(p: Principal) -> set[Access]:
    return {a for a in Access if p.grants(a)}


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (user("Mail.ReadBasic"), {Access.READ}),
        (user("Mail.Read"), {Access.READ}),
        (user("Mail.ReadWrite"), {Access.READ, Access.WRITE}),
        (user("Mail.Send"), {Access.SEND}),
        (user("Mail.Read.Shared"), {Access.READ}),
        (user("Mail.ReadWrite.Shared"), {Access.READ, Access.WRITE}),
        (user("Mail.Send.Shared"), {Access.SEND}),
        (user("User.Read"), set()),
        (app("Mail.Read"), {Access.READ}),
        (app("Mail.ReadBasic.All"), {Access.READ}),
        (app("Mail.ReadWrite", "Mail.Send"), {Access.READ, Access.WRITE, Access.SEND}),
        (app("Mail.Read.Shared"), set()),  # no such application role
    ],
)
def test_own_mailbox(principal: Principal, expected: set[Access]) -> None:
    assert allowed(principal) == expected


@pytest.mark.parametrize(
    ("scopes", "rights", "expected"),
    [
        (("Mail.Read",), RW, set()),  # plain scopes never reach another mailbox
        (("Mail.ReadWrite", "Mail.Send"), RW, set()),
        (("Mail.Read.Shared",), READ, {Access.READ}),
        (("Mail.Read.Shared",), RW, {Access.READ}),
        (("Mail.ReadWrite.Shared",), READ, {Access.READ}),
        (("Mail.ReadWrite.Shared",), RW, {Access.READ, Access.WRITE}),
        (("Mail.Send.Shared",), SEND_AS, {Access.SEND}),
        (
            ("Mail.ReadWrite.Shared", "Mail.Send.Shared"),
            RW,
            {Access.READ, Access.WRITE, Access.SEND},
        ),
    ],
)
def test_shared_mailbox(
    scopes: tuple[str, ...], rights: frozenset[Right], expected: set[Access]
) -> None:
    view = user(*scopes).in_shared(rights)
    assert allowed(view) == expected
    assert view.user_id == "u" and view.app_id == "app"
    for access in set(Access) - expected:
        with pytest.raises(AccessDeniedError):
            view.require(access)


def test_shares_and_sending_from_others() -> None:
    assert user("Mail.Read.Shared").shares and not user("Mail.Read").shares
    assert not app("Mail.Read.Shared").shares
    assert user("Mail.Send.Shared").may_send_from_others()
    assert not user("Mail.Send").may_send_from_others()
    assert not app("Mail.Send.Shared").may_send_from_others()


def test_basic_only() -> None:
    assert user("Mail.ReadBasic").basic_only
    assert not user("Mail.ReadBasic", "Mail.Read.Shared").basic_only
    assert not user("Mail.Read.Shared").basic_only
    assert app("Mail.ReadBasic.All").basic_only
