"""The access service called directly, on the real store (a SQLite file): who opens which
mailbox, what a grant allows, and what the management calls refuse."""

from __future__ import annotations

import time

import pytest

from graphpost.auth.principal import Principal
from graphpost.errors import (
    AccessDeniedError,
    InvalidInputError,
    SendAsDeniedError,
    UnknownUserError,
)
from graphpost.runtime import Runtime
from graphpost.services.access import ODATA_DISABLED, rights_from
from graphpost.services.directory import Mailbox
from graphpost.types import Right
from tests.unit.wiring import add_mailbox, message_input, open_as, to

pytestmark = pytest.mark.anyio

OWNER, DELEGATE, OUTSIDER = "owner@contoso.test", "delegate@contoso.test", "x@fabrikam.test"
SHARED = frozenset({"Mail.ReadWrite.Shared", "Mail.Send.Shared"})


@pytest.fixture
async def owner(runtime: Runtime) -> Mailbox:
    return await add_mailbox(runtime, OWNER, "Owner")


@pytest.fixture
async def delegate(runtime: Runtime) -> Mailbox:
    return await add_mailbox(runtime, DELEGATE, "Delegate", scopes=SHARED)


async def as_delegate(runtime: Runtime, delegate: Mailbox, key: str = OWNER) -> Mailbox:
    return await open_as(runtime, delegate.id, delegate.user.tenant_id, key, scopes=SHARED)


def test_rights_from() -> None:
    assert rights_from("READ") == {Right.READ}
    assert rights_from("readwrite", send_as=True, send_on_behalf=True) == {
        Right.READWRITE, Right.SEND_AS, Right.SEND_ON_BEHALF,
    }  # fmt: skip
    for bad in ("", "write", "send_as", "re\x00ad"):
        with pytest.raises(InvalidInputError):
            rights_from(bad)


async def test_grant_then_open_then_revoke(
    runtime: Runtime, owner: Mailbox, delegate: Mailbox
) -> None:
    with pytest.raises(AccessDeniedError):
        await as_delegate(runtime, delegate)
    await runtime.access.grant(OWNER, DELEGATE, frozenset({Right.READ}))
    opened = await as_delegate(runtime, delegate)  # this process sees its own change at once
    assert opened.id == owner.id and opened.rights == frozenset({Right.READ})
    assert opened.principal.permissions == {"Mail.Read", "Mail.Send"}
    await runtime.access.grant(OWNER, DELEGATE, frozenset({Right.READWRITE, Right.SEND_AS}))
    assert (await as_delegate(runtime, delegate)).principal.permissions == {
        "Mail.Read", "Mail.ReadWrite", "Mail.Send",
    }  # fmt: skip
    (listed,) = await runtime.access.grants(OWNER)
    assert listed.delegate.id == delegate.id
    assert await runtime.access.revoke(OWNER, DELEGATE) is True
    assert await runtime.access.revoke(OWNER, DELEGATE) is False
    with pytest.raises(AccessDeniedError):
        await as_delegate(runtime, delegate)


async def test_grant_refusals(runtime: Runtime, owner: Mailbox, delegate: Mailbox) -> None:
    await add_mailbox(runtime, OUTSIDER)
    read = frozenset({Right.READ})
    with pytest.raises(InvalidInputError, match="own mailbox"):
        await runtime.access.grant(OWNER, OWNER, read)
    with pytest.raises(InvalidInputError, match="different tenants"):
        await runtime.access.grant(OWNER, OUTSIDER, read)
    with pytest.raises(InvalidInputError, match="read"):
        await runtime.access.grant(OWNER, DELEGATE, frozenset({Right.SEND_AS}))
    with pytest.raises(UnknownUserError) as caught:
        await runtime.access.grant(OWNER, "nobody\r\n@contoso.test", read)
    assert "\r" not in caught.value.message and "\\x0d" in caught.value.message


async def test_send_rights_decide_from_and_sender(
    runtime: Runtime, owner: Mailbox, delegate: Mailbox
) -> None:
    inp = message_input(subject="s", toRecipients=to("someone@elsewhere.test"))
    await runtime.access.grant(OWNER, DELEGATE, frozenset({Right.READWRITE}))
    with pytest.raises(SendAsDeniedError):
        await runtime.sending.send_mail(await as_delegate(runtime, delegate), inp)
    await runtime.access.grant(OWNER, DELEGATE, frozenset({Right.READWRITE, Right.SEND_ON_BEHALF}))
    shared = await as_delegate(runtime, delegate)
    sent = await runtime.sending.send_mail(shared, inp)
    msg = (await runtime.messages.get(shared, sent.message_id)).message()
    assert msg.from_ is not None and msg.sender is not None
    assert (msg.from_.email_address.address, msg.sender.email_address.address) == (OWNER, DELEGATE)
    # a sender the client names must be one of the two
    odd = message_input(subject="s", toRecipients=to("a@elsewhere.test"),
                        sender={"emailAddress": {"address": "x@contoso.test"}})  # fmt: skip
    with pytest.raises(SendAsDeniedError):
        await runtime.sending.send_mail(shared, odd)


async def test_app_tokens_and_policies(runtime: Runtime, owner: Mailbox) -> None:
    tenant = await runtime.directory.tenant(owner.user.tenant_id)
    assert tenant is not None
    app = await runtime.directory.ensure_app(tenant, "daemon")
    other = await add_mailbox(runtime, "other@contoso.test")
    caller = Principal(tenant.id, app.id, None, frozenset({"Mail.Read"}), int(time.time()) + 60)
    assert (await runtime.directory.open_mailbox(caller, "other@contoso.test")).id == other.id
    await runtime.access.restrict_app(app.id, [OWNER])
    assert (await runtime.directory.open_mailbox(caller, OWNER)).id == owner.id
    with pytest.raises(AccessDeniedError) as caught:
        await runtime.directory.open_mailbox(caller, "other@contoso.test")
    assert caught.value.message == ODATA_DISABLED
    outsider = await add_mailbox(runtime, OUTSIDER)
    with pytest.raises(InvalidInputError, match="not in the tenant"):
        await runtime.access.restrict_app("daemon", [OUTSIDER])
    with pytest.raises(UnknownUserError):  # another tenant's user is not even found by an app
        await runtime.directory.open_mailbox(caller, outsider.user.mail)
    app_, removed = await runtime.access.unrestrict_app("daemon")
    assert app_.id == app.id and removed == 1
    assert (await runtime.directory.open_mailbox(caller, "other@contoso.test")).id == other.id
