"""The official Python SDK's batch helpers (msgraph-core's BatchRequestContent and
BatchRequestItem, sent by GraphServiceClient.batch.post), unchanged, against graphpost."""

from __future__ import annotations

import pytest
from msgraph.generated.models.message import Message
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from tests.conftest import RunningServer
from tests.mail_api import unique
from tests.sdk_client import client_for

pytestmark = pytest.mark.anyio


async def test_the_sdk_batches_requests(server: RunningServer) -> None:
    token = server.token(scopes="User.Read Mail.ReadWrite Mail.Send")
    client = client_for(server, token)
    subject = unique("sdk batch")

    me = BatchRequestItem(client.me.to_get_request_information(), id="me")
    inbox = BatchRequestItem(
        client.me.mail_folders.by_mail_folder_id("inbox").to_get_request_information(), id="inbox"
    )
    create = BatchRequestItem(
        client.me.messages.to_post_request_information(Message(subject=subject)), id="create"
    )
    missing = BatchRequestItem(
        client.me.messages.by_message_id("AAMkADhMGAAA=").to_get_request_information(),
        id="missing",
    )
    content = BatchRequestContent({"me": me, "inbox": inbox, "create": create, "missing": missing})
    answer = await client.batch.post(batch_request_content=content)

    assert answer.get_response_status_codes() == {
        "me": 200, "inbox": 200, "create": 201, "missing": 404,
    }  # fmt: skip
    headers = answer.get_response_by_id("create").headers
    assert headers["Content-Type"].startswith("application/json")
    page = await client.me.messages.get()
    assert subject in {m.subject for m in page.value}
