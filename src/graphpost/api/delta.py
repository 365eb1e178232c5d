"""Delta routes: ``mailFolders/{id}/messages/delta``, ``mailFolders/delta`` and
``mailFolders/{id}/childFolders/delta``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import msgspec

from graphpost.api import odata
from graphpost.api.context import Call
from graphpost.api.render import MESSAGE_PROPS, Renderer
from graphpost.asgi import Response
from graphpost.domain.query import Compare, check_access
from graphpost.domain.times import parse_iso
from graphpost.errors import QueryError
from graphpost.services.delta import CHANGE_TYPES, DEFAULT_PAGE, MAX_PAGE, DeltaQuery, DeltaService

_encode = msgspec.json.Encoder().encode
_MAX_PAGE_SIZE = re.compile(r"(?:^|[,;\s])odata\.maxpagesize\s*=\s*\"?(\d{1,9})\"?", re.IGNORECASE)
MESSAGE_TYPE = b'{"@odata.type":"#microsoft.graph.message",'
FOLDER_PROPS = {
    name.lower(): name
    for name in ("id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount",
                 "totalItemCount", "isHidden")
}  # fmt: skip
# the options that continue a round (a nextLink's or deltaLink's)
_TOKENS = ("$skiptoken", "$deltatoken")
# options a delta request takes (the others are refused, not ignored)
_MESSAGE_OPTIONS = {"$select", "$filter", "$orderby", "$top", *_TOKENS}
_FOLDER_OPTIONS = {"$select", "$top", *_TOKENS}


def _service(call: Call) -> DeltaService:
    service = call.services.delta
    if service is None:  # pragma: no cover - the runtime always wires it
        raise QueryError("Delta queries are not available.")
    return service


def _page_size(call: Call) -> int:
    """``Prefer: odata.maxpagesize`` (answered with Preference-Applied), else ``$top``."""
    found = _MAX_PAGE_SIZE.search(call.request.headers.get("prefer", ""))
    if found is not None and int(found.group(1)) >= 1:
        size = min(int(found.group(1)), MAX_PAGE)
        call.preference_applied.append(f"odata.maxpagesize={size}")
        return size
    return odata.parse_int(call.request.query, "$top", DEFAULT_PAGE, 1, MAX_PAGE)


def _token(call: Call) -> str | None:
    q = call.request.query
    given = [q[name] for name in _TOKENS if name in q]
    if len(given) > 1:
        raise QueryError("Give either $skiptoken or $deltatoken, not both.")
    return given[0] if given else None


def _check_options(call: Call, allowed: set[str]) -> None:
    for name in call.request.query:
        if name.startswith("$") and name not in allowed:
            raise QueryError(
                f"The query option '{name}' is not supported with delta; a delta query takes "
                f"{', '.join(sorted(allowed))}."
            )


def _since(text: str) -> tuple[int, bool]:
    """The one $filter delta takes: ``receivedDateTime ge|gt <DateTimeOffset>``."""
    node = odata.parse_filter(text)
    if (
        isinstance(node, Compare)
        and node.left.path == ("receiveddatetime",)
        and node.op in ("ge", "gt")
        and node.right.kind == "datetime"
        and isinstance(node.right.value, str)
    ):
        try:
            return parse_iso(node.right.value), node.op == "ge"
        except (ValueError, OverflowError):
            pass
    raise QueryError(
        "The only $filter a delta query takes is 'receivedDateTime ge <date>' or "
        "'receivedDateTime gt <date>'."
    )


def _change_type(call: Call) -> str | None:
    for key, value in call.request.query.items():
        if key.lower() == "changetype":
            if value.lower() not in CHANGE_TYPES:
                raise QueryError(
                    f"changeType '{value[:40]}' is not supported; use created, updated or deleted."
                )
            return value.lower()
    return None


def _link(call: Call, name: str, token: str) -> str:
    return f"{call.services.render.base}{call.request.raw_path}?{name}={quote(token, safe='')}"


Parts = tuple[bytes | memoryview, ...]


def _body(render: Renderer, kind: str, call: Call, items: list[Parts], next_token: str | None,
          delta_token: str | None) -> bytes:  # fmt: skip
    """The page: context, link, then the items (one join: a page of 1,000 messages is copied
    once)."""
    parts: list[bytes | memoryview] = [
        b'{"@odata.context":',
        _encode(render.context(f"Collection({kind})")),
    ]
    if next_token is not None:
        parts += [b',"@odata.nextLink":', _encode(_link(call, "$skiptoken", next_token))]
    if delta_token is not None:
        parts += [b',"@odata.deltaLink":', _encode(_link(call, "$deltatoken", delta_token))]
    parts.append(b',"value":[')
    for n, item in enumerate(items):
        if n:
            parts.append(b",")
        parts.extend(item)
    parts.append(b"]}")
    return b"".join(parts)


async def messages(call: Call, folder_key: str) -> Response:
    q = call.request.query
    token = _token(call)
    size = _page_size(call)
    if token is not None:
        query = DeltaQuery(token=token, page_size=size)
    else:
        _check_options(call, _MESSAGE_OPTIONS)
        order = q.get("$orderby")
        if order is not None and " ".join(order.lower().split()) != "receiveddatetime desc":
            raise QueryError("The only $orderby a delta query takes is 'receivedDateTime desc'.")
        raw_filter = q.get("$filter")
        query = DeltaQuery(
            page_size=size,
            select=odata.select_list(q, MESSAGE_PROPS),
            since=_since(raw_filter) if raw_filter is not None else None,
            change_type=_change_type(call),
        )
        if raw_filter is not None:
            check_access(
                odata.message_query({"$filter": raw_filter}),
                basic_only=call.mailbox.principal.basic_only,
            )
    page = await _service(call).messages_page(call.mailbox, folder_key, query)
    render = call.services.render
    basic = call.mailbox.principal.basic_only
    # the stored document as it is (the common case): its bytes after the type and etag
    whole = page.select is None and not basic and not call.text_body
    items: list[Parts] = []
    for removed, n in page.order:
        if removed:
            items.append(_removed("message", page.removed[n]))
            continue
        stored = page.messages[n]
        if whole:
            items.append((
                MESSAGE_TYPE, b'"@odata.etag":', _encode(f'W/"{stored.change_key}"'), b",",
                memoryview(stored.document)[1:],
            ))  # fmt: skip
            continue
        doc = render.message(
            stored, context=None, select=page.select, basic_only=basic, text_body=call.text_body
        )
        items.append((MESSAGE_TYPE, memoryview(doc)[1:]))
    return Response(200, _body(render, "message", call, items, page.next_token, page.delta_token))


def _removed(type_name: str, item_id: str) -> Parts:
    """A page's entry for an item deleted or moved out since the token."""
    return (
        _encode(
            {"@odata.type": f"#microsoft.graph.{type_name}", "id": item_id,
             "@removed": {"reason": "deleted"}}
        ),
    )  # fmt: skip


async def child_folders(call: Call, folder_key: str) -> Response:
    """``mailFolders/{id}/childFolders/delta``: the folder's direct children."""
    return await folders(call, folder_key)


async def folders(call: Call, parent_key: str | None = None) -> Response:
    q = call.request.query
    token = _token(call)
    size = _page_size(call)
    if token is not None:
        query = DeltaQuery(token=token, page_size=size)
    else:
        _check_options(call, _FOLDER_OPTIONS)
        query = DeltaQuery(
            page_size=size, select=odata.select_list(q, FOLDER_PROPS, "microsoft.graph.mailFolder")
        )
    page = await _service(call).folders_page(call.mailbox, query, parent_key)
    render = call.services.render
    items: list[Parts] = []
    for removed, n in page.order:
        if removed:
            items.append(_removed("mailFolder", page.removed[n]))
            continue
        doc: dict[str, Any] = render.folder_dict(page.folders[n])
        if page.select is not None:
            doc = {"id": doc["id"], **{k: doc[k] for k in page.select if k in doc}}
        items.append((_encode(doc),))
    return Response(
        200, _body(render, "mailFolder", call, items, page.next_token, page.delta_token)
    )
