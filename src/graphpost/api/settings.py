"""Routes of a mailbox's settings: ``mailboxSettings`` (and each of its properties),
``outlook/masterCategories`` and ``inferenceClassification/overrides``."""

from __future__ import annotations

from typing import Any

import msgspec

from graphpost.api.context import Call
from graphpost.asgi import Response
from graphpost.domain.settings import CategoryInput, MailboxSettingsInput, OverrideInput
from graphpost.errors import UnknownSegmentError
from graphpost.services.mailbox import MailboxSettingsService

_encode = msgspec.json.Encoder().encode


def _service(call: Call) -> MailboxSettingsService:
    service = call.services.settings
    if service is None:
        raise UnknownSegmentError("Resource not found for the segment 'mailboxSettings'.")
    return service


def _answer(call: Call, fragment: str, body: dict[str, Any], status: int = 200) -> Response:
    context = call.services.render.context(f"{call.user_path}/{fragment}")
    return Response(status, _encode({"@odata.context": context, **body}))


# ------------------------------------------------------------------ mailboxSettings


async def get_settings(call: Call) -> Response:
    _, document = await _service(call).get(call.mailbox)
    return _answer(call, "mailboxSettings", document)


async def get_setting(call: Call, part: str) -> Response:
    name, value = await _service(call).get(call.mailbox, part)
    fragment = f"mailboxSettings/{name}"
    if isinstance(value, dict):
        return _answer(call, fragment, value)
    return _answer(call, fragment, {"value": value})


async def update_settings(call: Call) -> Response:
    given = call.request.json(MailboxSettingsInput)
    document, named = await _service(call).update(call.mailbox, given)
    return _answer(call, "mailboxSettings", {name: document[name] for name in named})


# ------------------------------------------------------------------ masterCategories


async def list_categories(call: Call) -> Response:
    found = await _service(call).categories(call.mailbox)
    return _answer(call, "outlook/masterCategories", {"value": [c.render() for c in found]})


async def get_category(call: Call, category_id: str) -> Response:
    found = await _service(call).category(call.mailbox, category_id)
    return _answer(call, "outlook/masterCategories/$entity", found.render())


async def create_category(call: Call) -> Response:
    made = await _service(call).add_category(call.mailbox, call.request.json(CategoryInput))
    return _answer(call, "outlook/masterCategories/$entity", made.render(), 201)


async def update_category(call: Call, category_id: str) -> Response:
    given = call.request.json(CategoryInput)
    changed = await _service(call).update_category(call.mailbox, category_id, given)
    return _answer(call, "outlook/masterCategories/$entity", changed.render())


async def delete_category(call: Call, category_id: str) -> Response:
    await _service(call).remove_category(call.mailbox, category_id)
    return Response(204, content_type=None)


# ------------------------------------------------------------------ Focused Inbox overrides


async def list_overrides(call: Call) -> Response:
    found = await _service(call).overrides(call.mailbox)
    return _answer(
        call, "inferenceClassification/overrides", {"value": [o.render() for o in found]}
    )


async def get_override(call: Call, override_id: str) -> Response:
    found = await _service(call).override(call.mailbox, override_id)
    return _answer(call, "inferenceClassification/overrides/$entity", found.render())


async def create_override(call: Call) -> Response:
    made = await _service(call).put_override(call.mailbox, call.request.json(OverrideInput))
    return _answer(call, "inferenceClassification/overrides/$entity", made.render(), 201)


async def update_override(call: Call, override_id: str) -> Response:
    given = call.request.json(OverrideInput)
    changed = await _service(call).update_override(call.mailbox, override_id, given)
    return _answer(call, "inferenceClassification/overrides/$entity", changed.render())


async def delete_override(call: Call, override_id: str) -> Response:
    await _service(call).remove_override(call.mailbox, override_id)
    return Response(204, content_type=None)
