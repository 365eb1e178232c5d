"""msgraph-sdk's delta request builders, unchanged, against graphpost: a folder's messages
synchronised in rounds (its own query parameters, Prefer header and links), and the folders'
delta."""

from __future__ import annotations

from typing import Any

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.message import Message
from msgraph.generated.users.item.mail_folders.item.messages.delta.delta_request_builder import (
    DeltaRequestBuilder,
)

from tests.conftest import RunningServer
from tests.mail_api import make, unique
from tests.sdk_client import client_for

pytestmark = pytest.mark.anyio


async def sdk_round(builder: Any, link: str | None, config: Any) -> tuple[list[Any], str]:
    """Every page of one round through the SDK; what came, and the deltaLink."""
    items: list[Any] = []
    page = await (builder.with_url(link) if link else builder).get(request_configuration=config)
    for _ in range(100):
        items.extend(page.value)
        if page.odata_delta_link:
            return items, page.odata_delta_link
        page = await builder.with_url(page.odata_next_link).get(request_configuration=config)
    raise AssertionError("a round that never ends")


async def test_the_sdk_syncs_a_folder(server: RunningServer) -> None:
    with server.client() as c:
        folder = c.post("/me/mailFolders", json={"displayName": unique("sdk delta")}).json()["id"]
        made = [make(c, folder, subject=f"sdk {n}")["id"] for n in range(5)]
    client = client_for(server, server.token())
    builder = client.me.mail_folders.by_mail_folder_id(folder).messages.delta
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["subject", "isRead"])
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", "odata.maxpagesize=2")
    first, link = await sdk_round(builder, None, config)
    assert sorted(m.id for m in first) == sorted(made)
    assert all(isinstance(m, Message) and m.subject.startswith("sdk ") for m in first)
    assert all(m.body is None for m in first)  # $select kept by the links

    await client.me.messages.by_message_id(made[0]).patch(Message(is_read=False))
    await client.me.messages.by_message_id(made[1]).permanent_delete.post()
    later = RequestConfiguration()
    later.headers.add("Prefer", "odata.maxpagesize=2")
    second, _ = await sdk_round(builder, link, later)
    removed = [m.id for m in second if (m.additional_data or {}).get("@removed")]
    changed = [m for m in second if not (m.additional_data or {}).get("@removed")]
    assert removed == [made[1]]
    assert [(m.id, m.is_read) for m in changed] == [(made[0], False)]


async def test_the_sdk_syncs_the_folders(server: RunningServer) -> None:
    client = client_for(server, server.token())
    page = await client.me.mail_folders.delta.get()
    names: set[str] = set()
    for _ in range(100):
        names.update(f.display_name for f in page.value)
        if page.odata_delta_link:
            break
        page = await client.me.mail_folders.delta.with_url(page.odata_next_link).get()
    assert {"Inbox", "Drafts", "Sent Items"} <= names
    name = unique("sdk folder")
    with server.client() as c:
        assert c.post("/me/mailFolders", json={"displayName": name}).status_code == 201
    after = await client.me.mail_folders.delta.with_url(page.odata_delta_link).get()
    assert name in {f.display_name for f in after.value}
