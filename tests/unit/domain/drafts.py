"""A draft built the way the API builds one, for the domain unit tests."""

from __future__ import annotations

import msgspec

from graphpost.domain.message import DraftContext, EmailAddress, Message, MessageInput, new_draft

OWNER = EmailAddress(name="Adele Vance", address="adele@contoso.com")


def draft(**props: object) -> Message:
    ctx = DraftContext(message_id="AAMkAGx", folder_id="f", now=1_700_000_000,
                       web_base="http://x", domain="contoso.com", owner=OWNER)  # fmt: skip
    inp = msgspec.convert(props, MessageInput)
    return new_draft(inp, ctx, {})
