"""The official Microsoft Graph SDK for Python (msgraph-sdk), unchanged, against graphpost:
only its base URL and its credential point here."""

from __future__ import annotations

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.importance import Importance
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.open_type_extension import OpenTypeExtension
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty,
)
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
    MailFoldersRequestBuilder,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)

from tests.conftest import RunningServer
from tests.mail_api import ALEX, inbox_items, unique
from tests.sdk_client import client_for
from tests.sink import wait_for

pytestmark = pytest.mark.anyio


def to(address: str) -> Recipient:
    return Recipient(email_address=EmailAddress(address=address))


async def test_the_sdk_creates_reads_and_sends(server: RunningServer) -> None:
    client = client_for(server, server.token())
    draft = Message(
        subject="Did you see last night's game?",
        importance=Importance.Low,
        body=ItemBody(content_type=BodyType.Html, content="They were <b>awesome</b>!"),
        to_recipients=[to("AdeleV@contoso.onmicrosoft.com")],
    )
    created = await client.me.messages.post(draft)
    assert created.is_draft is True and created.importance == Importance.Low
    assert created.body_preview == "They were awesome!"
    assert created.to_recipients[0].email_address.name == "Adele Vance"
    got = await client.me.messages.by_message_id(created.id).get()
    assert got.change_key == created.change_key
    page = await client.me.mail_folders.by_mail_folder_id("drafts").messages.get()
    assert created.id in {m.id for m in page.value}

    await client.me.messages.by_message_id(created.id).send.post()
    sent = await client.me.messages.by_message_id(created.id).get()
    assert sent.is_draft is False

    subject = unique("sdk sendMail")
    body = SendMailPostRequestBody(
        message=Message(subject=subject, to_recipients=[to(ALEX)]), save_to_sent_items=False
    )
    await client.me.send_mail.post(body)
    wait_for(lambda: inbox_items(server, ALEX, subject))

    # a list is paged at 10 as in Graph (other tests add folders to this mailbox): filtered
    named = MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(
        filter="displayName eq 'Inbox'"
    )
    folders = await client.me.mail_folders.get(
        request_configuration=RequestConfiguration(query_parameters=named)
    )
    assert [f.display_name for f in folders.value] == ["Inbox"]
    with pytest.raises(ODataError) as caught:
        await client.me.messages.by_message_id("AAMkADhMGAAA=").get()
    assert caught.value.response_status_code == 404
    assert caught.value.error.code == "ErrorItemNotFound"


async def test_the_sdk_uses_extensions_and_extended_properties(server: RunningServer) -> None:
    """Open extensions and an extended property through msgraph-sdk's own models: mark a
    draft, send it, find it again in Sent Items by the mark."""
    client = client_for(server, server.token())
    prop_id = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name SdkMark"
    mark = unique("sdk-mark")
    draft = Message(
        subject=unique("sdk extensions"),
        to_recipients=[to(ALEX)],
        single_value_extended_properties=[
            SingleValueLegacyExtendedProperty(id=prop_id, value=mark)
        ],
    )
    created = await client.me.messages.post(draft)
    message = client.me.messages.by_message_id(created.id)
    made = await message.extensions.post(
        OpenTypeExtension(extension_name="Com.Contoso.Sdk", additional_data={"dealValue": 10})
    )
    assert isinstance(made, OpenTypeExtension)
    assert made.id == "microsoft.graph.openTypeExtension.Com.Contoso.Sdk"
    one = message.extensions.by_extension_id("Com.Contoso.Sdk")
    await one.patch(
        OpenTypeExtension(extension_name="Com.Contoso.Sdk", additional_data={"dealValue": 11})
    )
    got = await one.get()
    assert got.additional_data["dealValue"] == 11
    await message.send.post()

    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        filter=f"singleValueExtendedProperties/any(ep: ep/id eq '{prop_id}' and "
        f"ep/value eq '{mark}')",
        expand=[f"singleValueExtendedProperties($filter=id eq '{prop_id}')"],
    )
    page = await client.me.mail_folders.by_mail_folder_id("sentitems").messages.get(
        request_configuration=RequestConfiguration(query_parameters=query)
    )
    [sent] = page.value
    assert sent.id == created.id and sent.is_draft is False
    assert [(p.id, p.value) for p in sent.single_value_extended_properties] == [(prop_id, mark)]
    await one.delete()
    assert (await message.extensions.get()).value == []


async def test_the_sdk_adds_reads_and_deletes_attachments(server: RunningServer) -> None:
    """The SDK's own attachment models (fileAttachment, itemAttachment with a message,
    referenceAttachment) posted to …/attachments, read back typed, expanded and deleted."""
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.models.file_attachment import FileAttachment
    from msgraph.generated.models.item_attachment import ItemAttachment
    from msgraph.generated.models.reference_attachment import ReferenceAttachment
    from msgraph.generated.users.item.messages.item.attachments.item.attachment_item_request_builder import (  # noqa: E501
        AttachmentItemRequestBuilder,
    )

    client = client_for(server, server.token())
    created = await client.me.messages.post(Message(subject=unique("sdk attachments")))
    attachments = client.me.messages.by_message_id(created.id).attachments
    added = await attachments.post(FileAttachment(name="smile.gif", content_bytes=b"GIF89a-ish"))
    assert isinstance(added, FileAttachment)
    assert added.content_type == "image/gif" and added.size == len(b"GIF89a-ish")
    assert added.content_bytes == b"GIF89a-ish"
    inner = Message(subject="attached", to_recipients=[to(ALEX)],
                    body=ItemBody(content_type=BodyType.Text, content="inside"))  # fmt: skip
    item = await attachments.post(ItemAttachment(name="attached", item=inner))
    assert isinstance(item, ItemAttachment) and item.content_type is None
    with pytest.raises(ODataError) as caught:  # v1.0's model has no sourceUrl: a clear 400
        await attachments.post(ReferenceAttachment(name="plan.docx"))
    assert caught.value.response_status_code == 400
    assert "sourceUrl" in str(caught.value.error.message)
    url = "https://contoso.sharepoint.com/plan.docx"
    link = await attachments.post(
        ReferenceAttachment(name="plan.docx", additional_data={"sourceUrl": url})
    )
    assert isinstance(link, ReferenceAttachment)
    assert link.additional_data["sourceUrl"] == url
    listed = await attachments.get()
    kinds = [type(a).__name__ for a in listed.value]
    assert kinds == ["FileAttachment", "ItemAttachment", "ReferenceAttachment"]
    query = AttachmentItemRequestBuilder.AttachmentItemRequestBuilderGetQueryParameters(
        expand=["microsoft.graph.itemAttachment/item"]
    )
    expanded = await attachments.by_attachment_id(item.id).get(
        request_configuration=RequestConfiguration(query_parameters=query)
    )
    assert isinstance(expanded, ItemAttachment) and isinstance(expanded.item, Message)
    assert expanded.item.subject == "attached"
    await attachments.by_attachment_id(added.id).delete()
    after = await client.me.messages.by_message_id(created.id).get()
    assert after.has_attachments is True  # the item is still there
    assert [a.id for a in (await attachments.get()).value] == [item.id, link.id]
