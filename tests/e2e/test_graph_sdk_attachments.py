"""msgraph-sdk's attachment calls, unchanged, against graphpost: add a file, an item and a
reference attachment to a draft, list, get, delete, send; the recipient reads them back."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.item_attachment import ItemAttachment
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.reference_attachment import ReferenceAttachment

from tests.conftest import RunningServer
from tests.mail_api import ALEX, inbox_items, unique
from tests.sdk_client import client_for
from tests.sink import wait_for

pytestmark = pytest.mark.anyio


def to(address: str) -> Recipient:
    return Recipient(email_address=EmailAddress(address=address))


async def test_the_sdk_adds_lists_gets_deletes_and_sends_attachments(
    server: RunningServer,
) -> None:
    client = client_for(server, server.token())
    subject = unique("sdk attachments")
    draft = await client.me.messages.post(
        Message(subject=subject, body=ItemBody(content="see attached"), to_recipients=[to(ALEX)])
    )
    attachments = client.me.messages.by_message_id(draft.id).attachments
    data = os.urandom(100_000)
    added = await attachments.post(
        FileAttachment(name="random.bin", content_type="application/octet-stream",
                       content_bytes=data)
    )  # fmt: skip
    assert isinstance(added, FileAttachment)
    assert added.name == "random.bin" and added.size == len(data)
    assert added.content_bytes == data
    inline = await attachments.post(
        FileAttachment(name="logo.png", content_bytes=b"\x89PNG\r\n\x1a\n", is_inline=True,
                       content_id="logo")
    )  # fmt: skip
    assert inline.is_inline is True and inline.content_id == "logo"
    item = await attachments.post(
        ItemAttachment(name="the original", item=Message(subject="embedded",
                       body=ItemBody(content="inside")))
    )  # fmt: skip
    assert isinstance(item, ItemAttachment)
    doomed = await attachments.post(FileAttachment(name="doomed.txt", content_bytes=b"bye"))

    listed = await attachments.get()
    assert [a.name for a in listed.value] == [
        "random.bin",
        "logo.png",
        "the original",
        "doomed.txt",
    ]
    await attachments.by_attachment_id(doomed.id).delete()
    with pytest.raises(ODataError) as gone:
        await attachments.by_attachment_id(doomed.id).get()
    assert gone.value.response_status_code == 404
    got = await attachments.by_attachment_id(added.id).get()
    assert isinstance(got, FileAttachment) and got.content_bytes == data

    with pytest.raises(ODataError) as untyped:  # the abstract type, as Graph refuses it
        await attachments.post(ReferenceAttachment(name="x", odata_type=None))
    assert untyped.value.response_status_code == 422

    message = await client.me.messages.by_message_id(draft.id).get()
    assert message.has_attachments is True
    await client.me.messages.by_message_id(draft.id).send.post()

    found = wait_for(lambda: inbox_items(server, ALEX, subject))
    alex = client_for(server, server.token(ALEX)).me.messages.by_message_id(found[0]["id"])
    received = await alex.attachments.get()
    by_name = {a.name: a for a in received.value}
    assert set(by_name) == {"random.bin", "logo.png", "the original"}
    file = by_name["random.bin"]
    assert isinstance(file, FileAttachment)
    assert hashlib.sha256(file.content_bytes).digest() == hashlib.sha256(data).digest()
    assert base64.b64encode(by_name["logo.png"].content_bytes) == base64.b64encode(
        b"\x89PNG\r\n\x1a\n"
    )
    assert isinstance(by_name["the original"], ItemAttachment)
