"""The official Python SDK's ``LargeFileUploadTask`` (msgraph-core), unchanged, attaching large
files to a draft through an upload session on both engines: the session is made by the SDK's
``createUploadSession`` request builder, the parts are PUT by the task, and the attachment's
bytes are read back by ``…/attachments/{id}/$value``."""

from __future__ import annotations

import hashlib
import io
import os

import httpx
import pytest
from msgraph.generated.models.attachment_item import AttachmentItem
from msgraph.generated.models.attachment_type import AttachmentType
from msgraph.generated.models.message import Message
from msgraph.generated.users.item.messages.item.attachments.create_upload_session.create_upload_session_post_request_body import (  # noqa: E501
    CreateUploadSessionPostRequestBody,
)
from msgraph_core.tasks.large_file_upload import LargeFileUploadTask

from tests.conftest import RunningServer
from tests.mail_api import unique
from tests.sdk_client import client_for

pytestmark = pytest.mark.anyio

KIB = 1024
MIB = 1024 * KIB


async def upload_with_the_sdk(
    server: RunningServer, data: bytes, max_chunk_size: int, name: str = "large.bin"
) -> tuple[str, str]:
    """Draft, session and task as the Graph docs' Python example does; (message id, name).

    The task (msgraph-core 1.5.2) sends its first part of ``max_chunk_size`` bytes and the
    others one byte larger; it reads the end of the camelCase ``nextExpectedRanges``
    (``"{start}-{end}"``), and once it has sent the last part it sends it once more (graphpost
    answers the same 201). Its result names the upload URL, not the attachment."""
    client = client_for(server, server.token())
    draft = await client.me.messages.post(Message(subject=unique("sdk large attachment")))
    session = await client.me.messages.by_message_id(
        draft.id
    ).attachments.create_upload_session.post(
        CreateUploadSessionPostRequestBody(
            attachment_item=AttachmentItem(
                attachment_type=AttachmentType.File, name=name, size=len(data)
            )
        )
    )
    task = LargeFileUploadTask(
        session, client.request_adapter, io.BytesIO(data), max_chunk_size=max_chunk_size
    )
    progress: list[list[object]] = []
    result = await task.upload(progress.append)
    assert result.location == session.upload_url
    assert progress  # its callback ran (its ranges are its own arithmetic)
    return draft.id, name


@pytest.mark.parametrize(
    ("size", "chunk"),
    [
        (3 * MIB + 1, 320 * KIB),  # the docs' slice size
        (4 * MIB + 17, 12 * 320 * KIB),
        (5 * MIB, MIB),  # a whole number of slices
        (5 * MIB + 700 * KIB, MIB),  # a last slice over half a slice
        (9 * MIB, 4 * MIB - 1),  # the largest slice: its parts of 4 MiB are the cap
    ],
)
async def test_large_file_upload_task(server: RunningServer, size: int, chunk: int) -> None:
    data = os.urandom(size)
    message_id, name = await upload_with_the_sdk(server, data, chunk)
    with server.client() as c:
        listed = c.get(f"/me/messages/{message_id}/attachments").json()["value"]
        [att] = [a for a in listed if a["name"] == name]
        assert att["size"] == size
        got = c.get(f"/me/messages/{message_id}/attachments/{att['id']}/$value")
    assert got.status_code == 200
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_a_slice_over_the_request_cap(server: RunningServer) -> None:
    """The task's default slice (5 MiB) is over the 4 MiB a part may have (Graph: up to 4 MB
    per PUT): a clear 413, and nothing of it kept."""
    from kiota_abstractions.api_error import APIError

    data = os.urandom(6 * MIB)
    client = client_for(server, server.token())
    draft = await client.me.messages.post(Message(subject=unique("sdk default slice")))
    session = await client.me.messages.by_message_id(
        draft.id
    ).attachments.create_upload_session.post(
        CreateUploadSessionPostRequestBody(
            attachment_item=AttachmentItem(
                attachment_type=AttachmentType.File, name="big.bin", size=len(data)
            )
        )
    )
    task = LargeFileUploadTask(session, client.request_adapter, io.BytesIO(data))
    with pytest.raises(APIError) as caught:
        await task.upload()
    assert caught.value.response_status_code == 413
    async with httpx.AsyncClient(verify=server.verify) as http:
        state = (await http.get(session.upload_url)).json()
    assert state["NextExpectedRanges"] == ["0"]
    with server.client() as c:
        assert c.get(f"/me/messages/{draft.id}/attachments").json()["value"] == []


async def test_a_file_in_one_slice(server: RunningServer) -> None:
    """A file no larger than one slice: the task's first part makes the attachment, then it
    sends the part again from the end of its stream (no seek): an empty body for the whole
    range, which is a 400 (its bug, not graphpost's: no server could take it); the
    attachment is whole all the same."""
    from kiota_abstractions.api_error import APIError

    data = os.urandom(3 * MIB + 5)
    client = client_for(server, server.token())
    draft = await client.me.messages.post(Message(subject=unique("sdk one slice")))
    session = await client.me.messages.by_message_id(
        draft.id
    ).attachments.create_upload_session.post(
        CreateUploadSessionPostRequestBody(
            attachment_item=AttachmentItem(
                attachment_type=AttachmentType.File, name="one.bin", size=len(data)
            )
        )
    )
    task = LargeFileUploadTask(
        session, client.request_adapter, io.BytesIO(data), max_chunk_size=4 * MIB - 1
    )
    with pytest.raises(APIError) as caught:
        await task.upload()
    assert caught.value.response_status_code == 400
    with server.client() as c:
        [att] = c.get(f"/me/messages/{draft.id}/attachments").json()["value"]
        got = c.get(f"/me/messages/{draft.id}/attachments/{att['id']}/$value")
    assert got.content == data
