"""Routes of the message actions: send, sendMail, createReply/…, reply/…, move, copy, and
graphpost's deliveryStatus. Action parameter names are matched case-insensitively."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from graphpost.api.context import Call
from graphpost.asgi import TOO_DEEP, Response
from graphpost.domain.compose import ReplyRequest
from graphpost.domain.message import MessageInput, RecipientIn
from graphpost.domain.reader import convert, unknown_property
from graphpost.domain.times import iso
from graphpost.errors import BodyNotReadableError, PropertyValueError
from graphpost.services.sending import Sent

_encode = msgspec.json.Encoder().encode


# Each action's parameters (Graph's names); a body naming another is refused, as Graph does.
ACTION_PARAMETERS: dict[str, tuple[str, ...]] = {
    "send": ("saveToSentItems",),  # beyond Graph: keep no Sent Items copy of a draft's send
    "sendMail": ("message", "saveToSentItems"),
    "reply": ("comment", "message"),
    "replyAll": ("comment", "message"),
    "forward": ("comment", "toRecipients", "message"),
    "createReply": ("comment", "message"),
    "createReplyAll": ("comment", "message"),
    "createForward": ("comment", "toRecipients", "message"),
    "move": ("destinationId",),
    "copy": ("destinationId",),
}
_ACTION_NAMES = {"reply": "reply", "replyall": "replyAll", "forward": "forward"}


def parameters(call: Call, action: str, *, optional: bool) -> dict[str, Any]:
    """The action's JSON object with lower-case keys (``Message`` = ``message``); a parameter
    the action does not have is a 400, never silently dropped."""
    if not call.request.body.strip():
        if optional:
            return {}
        raise BodyNotReadableError("The request body is empty; a JSON object is required.")
    data = call.request.json(dict[str, Any])
    known = {name.lower() for name in ACTION_PARAMETERS[action]}
    for key in data:
        if key.lower() not in known and not key.startswith("@"):
            raise PropertyValueError(
                f"The parameter '{key}' in the request payload is not a valid parameter for "
                f"the operation '{action}'. Its parameters are: "
                f"{', '.join(ACTION_PARAMETERS[action])}.",
                target=key,
            )
    return {str(k).lower(): v for k, v in data.items() if not k.startswith("@")}


def _boolean(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name.lower(), default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value is None:
        return default
    raise PropertyValueError(f"'{name}' must be true or false.", target=name)


def _message(params: dict[str, Any], *, required: bool) -> MessageInput | None:
    raw = params.get("message")
    if raw is None:
        if required:
            raise PropertyValueError("The 'message' parameter is required.", target="message")
        return None
    if not isinstance(raw, dict):
        raise PropertyValueError("'message' must be a JSON object.", target="message")
    try:
        return convert(raw, MessageInput)
    except msgspec.ValidationError as exc:
        unknown = unknown_property(exc, MessageInput, within="message")
        if unknown is not None:
            raise unknown from None
        raise PropertyValueError(f"Invalid value in 'message': {exc}.", target="message") from None
    except RecursionError:
        raise BodyNotReadableError(TOO_DEEP) from None


def _recipients(params: dict[str, Any]) -> list[RecipientIn] | None:
    raw = params.get("torecipients")
    if raw is None:
        return None
    try:
        return convert(raw, list[RecipientIn])
    except msgspec.ValidationError as exc:
        unknown = unknown_property(exc, list[RecipientIn], within="toRecipients")
        if unknown is not None:
            raise unknown from None
        raise PropertyValueError(f"Invalid 'toRecipients': {exc}.", target="toRecipients") from None
    except RecursionError:
        raise BodyNotReadableError(TOO_DEEP) from None


def _comment(params: dict[str, Any]) -> str | None:
    value = params.get("comment")
    if value is not None and not isinstance(value, str):
        raise PropertyValueError("'comment' must be a string.", target="comment")
    return value


def accepted(call: Call, sent: Sent) -> Response:
    """202, empty, and (beyond Graph) a Location naming the Sent Items copy."""
    base = (
        f"{call.services.render.base}/v1.0/users('{sent.mailbox_id}')/messages('{sent.message_id}')"
    )
    location = base if sent.saved else f"{base}/deliveryStatus"
    return Response(202, b"", content_type=None, headers=[(b"location", location.encode())])


async def send(call: Call, message_id: str) -> Response:
    params = parameters(call, "send", optional=True)
    save = _boolean(params, "saveToSentItems", True)
    sent = await call.services.sending.send_draft(call.mailbox, message_id, save=save)
    return accepted(call, sent)


async def send_mail(call: Call) -> Response:
    key = call.request.headers.get("idempotency-key")
    if call.request.is_mime():  # a base64 MIME message (Content-Type: text/plain)
        sent = await call.services.sending.send_mail_mime(
            call.mailbox, call.request.mime(), idempotency_key=key[:255] if key else None
        )
        return accepted(call, sent)
    params = parameters(call, "sendMail", optional=False)
    message = _message(params, required=True)
    assert message is not None
    sent = await call.services.sending.send_mail(
        call.mailbox,
        message,
        save=_boolean(params, "saveToSentItems", True),
        idempotency_key=key[:255] if key else None,
    )
    return accepted(call, sent)


def _reply_request(call: Call, kind: str, *, create: bool) -> ReplyRequest:
    action = _ACTION_NAMES[kind]
    if create:
        action = "create" + action[0].upper() + action[1:]
    params = parameters(call, action, optional=True)
    return ReplyRequest(
        kind=kind,
        comment=_comment(params),
        message=_message(params, required=False),
        to_recipients=_recipients(params) if kind == "forward" else None,
    )


async def create_response(call: Call, message_id: str, kind: str) -> Response:
    sending = call.services.sending
    if call.request.is_mime():  # a base64 MIME message (Content-Type: text/plain)
        draft = await sending.create_response_mime(
            call.mailbox, message_id, kind, call.request.mime()
        )
    else:
        draft = await sending.create_response(
            call.mailbox, message_id, _reply_request(call, kind, create=True)
        )
    render = call.services.render
    context = render.context(f"{call.user_path}/messages/$entity")
    return Response(201, render.message(draft, context=context))


async def respond(call: Call, message_id: str, kind: str) -> Response:
    sending = call.services.sending
    if call.request.is_mime():  # a base64 MIME message (Content-Type: text/plain)
        sent = await sending.respond_mime(call.mailbox, message_id, kind, call.request.mime())
    else:
        sent = await sending.respond(
            call.mailbox, message_id, _reply_request(call, kind, create=False)
        )
    return accepted(call, sent)


def _destination(call: Call, action: str) -> str:
    params = parameters(call, action, optional=False)
    value = params.get("destinationid")
    if not isinstance(value, str) or not value:
        raise PropertyValueError("'destinationId' is required.", target="destinationId")
    return value


async def move(call: Call, message_id: str) -> Response:
    moved = await call.services.messages.move(call.mailbox, message_id, _destination(call, "move"))
    render = call.services.render
    return Response(201, render.message(moved, context=render.context("message")))


async def copy(call: Call, message_id: str) -> Response:
    copied = await call.services.messages.copy(call.mailbox, message_id, _destination(call, "copy"))
    render = call.services.render
    return Response(201, render.message(copied, context=render.context("message")))


async def delivery_status(call: Call, message_id: str) -> Response:
    submission, deliveries, attempts = await call.services.sending.delivery_status(
        call.mailbox, message_id
    )
    by_delivery: dict[int, list[dict[str, Any]]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_seq, []).append(
            {
                "dateTime": _ms(a.at_ms),
                "outcome": a.outcome,
                "statusCode": a.code,
                "enhancedStatusCode": a.enhanced,
                "response": a.response,
            }
        )
    recipients = []
    for d in deliveries:
        tries = by_delivery.get(d.seq, [])
        recipients.append(
            {
                "emailAddress": {"address": d.recipient},
                "transport": d.route,
                "status": d.state,
                "attemptCount": d.attempts,
                "lastAttemptDateTime": tries[-1]["dateTime"] if tries else None,
                "nextAttemptDateTime": (None if d.state.final else _ms(d.next_attempt_ms)),
                "statusCode": d.last_code,
                "enhancedStatusCode": d.last_enhanced,
                "response": d.last_response,
                "attempts": tries,
            }
        )
    states = {d.state for d in deliveries}
    overall = (
        states.pop()
        if len(states) == 1
        else ("pending" if any(not s.final for s in states) else "partiallyFailed")
    )
    render = call.services.render
    body = {
        "@odata.context": render.context(
            f"{call.user_path}/messages('{quote(message_id, safe='')}')/deliveryStatus/$entity"
        ),
        "id": submission.id,
        "messageId": submission.message_id,
        "internetMessageId": submission.internet_message_id,
        "submittedDateTime": _ms(submission.created_ms),
        "savedToSentItems": submission.saved,
        "status": overall,
        "recipients": recipients,
    }
    return Response(200, _encode(body))


def _ms(value: int) -> str:
    return iso(value // 1000)
