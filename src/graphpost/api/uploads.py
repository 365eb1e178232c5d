"""Upload sessions over HTTP: ``createUploadSession`` (a Graph route) and the upload URL it
answers (``PUT`` a part, ``GET`` where it stands, ``DELETE`` to cancel), which needs no token:
``GraphApp`` hands it here before authentication, and still throttles it per app and mailbox."""

from __future__ import annotations

from typing import Any

import msgspec

from graphpost.api.context import Call
from graphpost.asgi import Request, Response
from graphpost.errors import AuthenticationError, InvalidInputError, NotFoundError
from graphpost.ports.blobs import UploadSession
from graphpost.services.uploads import GONE, UploadService, session_json

_encode = msgspec.json.Encoder().encode


def is_upload_path(segments: list[str]) -> bool:
    """``v1.0/users/{mailbox}/messages/{id}/attachmentSessions/{session}`` (keys split)."""
    return (
        len(segments) == 7
        and segments[1].lower() == "users"
        and segments[3].lower() == "messages"
        and segments[5].lower() == "attachmentsessions"
    )


def _uploads(call: Call) -> UploadService:
    uploads = call.services.uploads
    if uploads is None:
        raise NotFoundError("Upload sessions are not available on this server.")
    return uploads


async def create_session(call: Call, message_id: str) -> Response:
    """POST …/messages/{id}/attachments/createUploadSession → 201 uploadSession."""
    body: dict[str, Any] = call.request.json(dict[str, Any])
    created = await _uploads(call).create(
        call.mailbox, message_id, call.mailbox.principal.app_id, body
    )
    out = {"@odata.context": call.services.render.context("microsoft.graph.uploadSession")}
    out.update(session_json(created.session, url=created.url))
    return Response(201, _encode(out))


async def open_session(
    uploads: UploadService, request: Request, segments: list[str]
) -> UploadSession:
    token = request.query.get("authtoken")
    if not token:
        raise AuthenticationError("The upload URL has no authtoken.")
    return await uploads.open(segments[6], segments[2], segments[4], token)


async def answer(
    uploads: UploadService, base: str, request: Request, session: UploadSession
) -> Response:
    """The upload URL's methods, for an opened session (a finished one answers only its last
    part sent again)."""
    if session.finished and request.method != "PUT":
        raise NotFoundError(GONE)
    if request.method == "DELETE":
        await uploads.cancel(session)
        return Response(204, b"", content_type=None)
    if request.method == "GET":
        return Response(200, _encode(session_json(session)))
    declared = request.headers.get("content-length")
    try:
        length = int(declared) if declared is not None else None
    except ValueError:
        raise InvalidInputError("The Content-Length header is not a number.") from None
    progress = await uploads.put(
        session, request.headers.get("content-range"), request.body, length
    )
    if progress.session is not None:
        return Response(200, _encode(session_json(progress.session)))
    location = (
        f"{base}/v1.0/users('{session.mailbox_id}')/messages('{session.message_id}')"
        f"/attachments('{progress.attachment_id}')"
    )
    return Response(201, b"", content_type=None, headers=[(b"location", location.encode())])
