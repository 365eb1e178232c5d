"""Routes of the message resource: create, get, list, update, delete, permanentDelete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from graphpost.api import odata
from graphpost.api.context import COUNT_TYPE, Call
from graphpost.api.render import MESSAGE_PROPS, encode
from graphpost.asgi import Response
from graphpost.domain.message import FILE, Attachment, MessageInput, extension_key
from graphpost.domain.query import check_access
from graphpost.errors import MethodNotAllowedError, NotFoundError
from graphpost.ports.messages import StoredMessage
from graphpost.services.folders import NOT_FOUND


def _collection_path(call: Call, folder_key: str | None) -> str:
    if folder_key is None:
        return f"{call.user_path}/messages"
    return f"{call.user_path}/mailFolders('{folder_key}')/messages"


async def create(call: Call, folder_key: str | None) -> Response:
    svc = call.services.messages
    if call.request.is_mime():  # a base64 MIME message (Content-Type: text/plain)
        created = await svc.create_draft_from_mime(
            call.mailbox, call.request.mime(), folder_key=folder_key
        )
    else:
        inp = call.request.json(MessageInput, allow_empty=True)
        created = await svc.create_draft(call.mailbox, inp, folder_key=folder_key)
    render = call.services.render
    path = _collection_path(call, folder_key)
    stored = created.message
    body = render.message(
        stored,
        context=render.context(f"{path}/$entity"),
        extensions=created.extensions if created.extensions else None,
        extensions_context=render.context(
            f"{call.user_path}/messages('{quote(stored.id, safe='')}')/extensions"
        ),
    )
    location = f"{render.base}/v1.0/{call.user_path}/messages('{stored.id}')".encode()
    return Response(201, body, headers=[(b"location", location)])


async def _render_one(call: Call, stored: StoredMessage, context: str | None) -> bytes:
    q = call.request.query
    select = odata.select_list(q, MESSAGE_PROPS)
    expand = odata.parse_expand(q)
    svc = call.services.messages
    basic = call.mailbox.principal.basic_only
    extensions: list[dict[str, Any]] | None = None
    if expand.extensions:
        extensions = await svc.extensions(stored)
        if expand.extension_ids:
            wanted = {_ext_key(i) for i in expand.extension_ids}
            extensions = [e for e in extensions if _ext_key_of(e) & wanted]
    attachments = await svc.attachments(stored) if expand.attachments else None
    more: dict[str, Any] = {}
    for name, ids in (
        ("singleValueExtendedProperties", expand.single_values),
        ("multiValueExtendedProperties", expand.multi_values),
    ):
        found = await svc.extended_properties(stored, ids) if ids and not basic else []
        if found:  # Graph leaves the property out when none of the ids is on the message
            more[f"{name}@odata.context"] = call.services.render.context(
                f"users('{stored.mailbox_id}')/messages('{quote(stored.id, safe='')}')/{name}"
            )
            more[name] = [p.wire() for p in found]
    return call.services.render.message(
        stored,
        context=context,
        select=select,
        basic_only=basic,
        text_body=call.text_body,
        extensions=extensions,
        extensions_context=None,
        attachments=attachments,
        attachment_select=expand.attachment_select,
        more=more or None,
    )


_ext_key = extension_key


def _ext_key_of(doc: dict[str, Any]) -> set[str]:
    return {_ext_key(str(doc.get("extensionName", ""))), _ext_key(str(doc.get("id", "")))}


def _select_suffix(call: Call) -> str:
    select = odata.select_list(call.request.query, MESSAGE_PROPS)
    return f"({','.join(select)})" if select else ""


async def get(call: Call, message_id: str) -> Response:
    stored = await call.services.messages.get(call.mailbox, message_id)
    context = call.services.render.context(
        f"{call.user_path}/messages{_select_suffix(call)}/$entity"
    )
    return Response(200, await _render_one(call, stored, context))


async def list_(call: Call, folder_key: str | None) -> Response:
    query = odata.message_query(call.request.query)
    query.top = call.page_size(query.top)
    check_access(query, basic_only=call.mailbox.principal.basic_only)
    found, count, more = await call.services.messages.list_messages(
        call.mailbox, query, folder_key=folder_key
    )
    items = [await _render_one(call, stored, None) for stored in found]
    render = call.services.render
    context = render.context(_collection_path(call, folder_key) + _select_suffix(call))
    next_link = None
    if more:
        top = query.top if call.max_page_size() is not None else None
        next_link = call.next_link(query.skip + query.top, top)
    return Response(
        200, render.collection(context=context, items=items, count=count, next_link=next_link)
    )


async def count(call: Call, folder_key: str | None) -> Response:
    """``GET …/messages/$count`` (of the mailbox or a folder, with ``$filter``): the number
    alone, as text."""
    query = odata.message_query(call.request.query)
    check_access(query, basic_only=call.mailbox.principal.basic_only)
    total = await call.services.messages.count(call.mailbox, query, folder_key=folder_key)
    return Response(200, str(total).encode(), content_type=COUNT_TYPE)


async def update(call: Call, message_id: str) -> Response:
    inp = call.request.json(MessageInput)
    stored = await call.services.messages.update(
        call.mailbox, message_id, inp, if_match=call.request.headers.get("if-match")
    )
    context = call.services.render.context(f"{call.user_path}/messages/$entity")
    return Response(200, call.services.render.message(stored, context=context))


async def delete(call: Call, message_id: str) -> Response:
    await call.services.messages.delete(
        call.mailbox, message_id, if_match=call.request.headers.get("if-match")
    )
    return Response(204, content_type=None)


async def permanent_delete(call: Call, message_id: str) -> Response:
    await call.services.messages.permanent_delete(call.mailbox, message_id)
    return Response(204, content_type=None)


def _attachments_path(call: Call, stored: StoredMessage) -> str:
    return f"{call.user_path}/messages('{quote(stored.id, safe='')}')/attachments"


async def list_attachments(call: Call, message_id: str) -> Response:
    """GET …/attachments; ``$select`` as on any collection, ``$filter`` ignored as Graph
    ignores it on attachments."""
    svc = call.services.messages
    stored = await svc.get(call.mailbox, message_id)
    render = call.services.render
    select = odata.select_list(call.request.query, odata.ATTACHMENT_PROPS, odata.ATTACHMENT_TYPE)
    if call.mailbox.principal.basic_only:
        found = []
    elif _with_bytes(select):
        found = await svc.attachments(stored)
    else:  # no contentBytes asked for: a file's bytes are not read
        found = await svc.attachment_refs(stored)
    items = [encode(render.attachment(a, select=select)) for a in found]
    context = render.context(_attachments_path(call, stored))
    return Response(200, render.collection(context=context, items=items))


async def add_attachment(call: Call, message_id: str) -> Response:
    """POST …/attachments: one file, item or reference attachment → 201 and the attachment."""
    raw = call.request.json(dict[str, Any])
    stored, a = await call.services.messages.add_attachment(call.mailbox, message_id, raw)
    render = call.services.render
    path = _attachments_path(call, stored)
    body = encode({"@odata.context": render.context(f"{path}/$entity"), **render.attachment(a)})
    location = f"{render.base}/v1.0/{path}('{quote(a.id, safe='')}')".encode()
    return Response(201, body, headers=[(b"location", location)])


async def delete_attachment(call: Call, message_id: str, attachment_id: str) -> Response:
    await call.services.messages.delete_attachment(call.mailbox, message_id, attachment_id)
    return Response(204, content_type=None)


def _with_bytes(select: list[str] | None) -> bool:
    return select is None or "contentBytes" in select


async def _attachment(
    call: Call, message_id: str, attachment_id: str, *, with_bytes: bool = True
) -> tuple[StoredMessage, Attachment]:
    """The message and its attachment ``attachment_id`` (none under Mail.ReadBasic); a
    file's bytes are read only when ``with_bytes``, and only that file's."""
    svc = call.services.messages
    stored = await svc.get(call.mailbox, message_id)
    refs = [] if call.mailbox.principal.basic_only else await svc.attachment_refs(stored)
    a = next((r for r in refs if r.id == attachment_id), None)
    if a is None:
        raise NotFoundError(NOT_FOUND)
    if with_bytes and a.kind == FILE and a.blob is not None:
        found = await svc.blob(a.blob)
        if found is None:
            raise NotFoundError(NOT_FOUND)
        a = msgspec.structs.replace(a, content=b"".join([c async for c in found[1]()]))
    return stored, a


async def get_attachment(call: Call, message_id: str, attachment_id: str) -> Response:
    """GET …/attachments/{id}, with ``$expand=microsoft.graph.itemAttachment/item``."""
    expand = odata.expands_item(call.request.query)
    select = odata.select_list(call.request.query, odata.ATTACHMENT_PROPS, odata.ATTACHMENT_TYPE)
    stored, a = await _attachment(call, message_id, attachment_id, with_bytes=_with_bytes(select))
    render = call.services.render
    path = _attachments_path(call, stored)
    out = {
        "@odata.context": render.context(f"{path}/$entity"),
        **render.attachment(a, select=select),
    }
    if expand and a.item is not None:
        item_path = f"{path}('{quote(a.id, safe='')}')/microsoft.graph.itemAttachment/item"
        out["item@odata.context"] = render.context(f"{item_path}/$entity")
        out["item"] = render.item(a.item)
    return Response(200, encode(out))


async def get_mime(call: Call, message_id: str) -> Response:
    """GET …/messages/{id}/$value: the message as MIME, ``text/plain`` as Graph sends it."""
    raw = await call.services.messages.mime(call.mailbox, message_id)
    return Response(200, raw, content_type=b"text/plain")


def _media_type(value: str) -> bytes:
    """An attachment's content type as a header value: printable ASCII, else octet-stream."""
    if value and value.isascii() and value.isprintable():
        return value.encode("ascii")
    return b"application/octet-stream"


async def get_attachment_value(call: Call, message_id: str, attachment_id: str) -> Response:
    """GET …/attachments/{id}/$value: a file's bytes with its content type, an attached
    message as RFC 822 MIME; a reference attachment has none (405, as Graph)."""
    svc = call.services.messages
    _, a = await _attachment(call, message_id, attachment_id, with_bytes=False)
    if a.item is not None:
        raw = await svc.attachment_mime(a.item)
        return Response(200, raw, content_type=b"message/rfc822")
    if a.kind != FILE:
        raise MethodNotAllowedError(
            "A reference attachment has no raw contents ($value); its sourceUrl is the file."
        )
    found = await svc.blob(a.blob) if a.blob is not None else None
    if found is None:
        raise NotFoundError(NOT_FOUND)
    # streamed from storage, 1 MiB at a time: a 150 MB file is never whole in memory
    size, stream = found
    content_type = _media_type(a.content_type or "")
    return Response(200, content_type=content_type, stream=stream, length=size)


async def list_extensions(call: Call, message_id: str, name: str | None) -> Response:
    svc = call.services.messages
    stored = await svc.get(call.mailbox, message_id)
    if call.mailbox.principal.basic_only:
        docs: list[dict[str, Any]] = []
    else:
        docs = await svc.extensions(stored)
    render = call.services.render
    base = f"{call.user_path}/messages('{quote(stored.id, safe='')}')/extensions"
    if name is None:
        items = [encode(render.extension(d)) for d in docs]
        return Response(200, render.collection(context=render.context(base), items=items))
    key = _ext_key(name)
    for doc in docs:
        if key in _ext_key_of(doc):
            return Response(200, _extension_body(call, stored, doc))
    raise NotFoundError(NOT_FOUND)


def _extension_body(call: Call, stored: StoredMessage, doc: dict[str, Any]) -> bytes:
    render = call.services.render
    base = f"{call.user_path}/messages('{quote(stored.id, safe='')}')/extensions"
    entity = (
        f"{render.base}/v1.0/users('{stored.mailbox_id}')/messages('{quote(stored.id, safe='')}')"
        f"/extensions('{quote(str(doc['id']), safe='')}')"
    )
    return encode(
        {"@odata.context": render.context(f"{base}/$entity"), "@odata.id": entity,
         **render.extension(doc)}
    )  # fmt: skip


def _json_object(call: Call) -> dict[str, Any]:
    """An open extension's body: a JSON object (an open type: read by its own builder)."""
    return call.request.json(dict[str, Any])


async def create_extension(call: Call, message_id: str) -> Response:
    """POST …/messages/{id}/extensions: 201 and the new open extension."""
    stored, doc = await call.services.messages.add_extension(
        call.mailbox, message_id, _json_object(call)
    )
    return Response(201, _extension_body(call, stored, doc))


async def update_extension(call: Call, message_id: str, name: str) -> Response:
    """PATCH …/extensions/{name or id}: 200 and the whole extension as it now is."""
    stored, doc = await call.services.messages.update_extension(
        call.mailbox, message_id, name, _json_object(call)
    )
    return Response(200, _extension_body(call, stored, doc))


async def delete_extension(call: Call, message_id: str, name: str) -> Response:
    await call.services.messages.delete_extension(call.mailbox, message_id, name)
    return Response(204, content_type=None)
