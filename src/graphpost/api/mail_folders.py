"""Routes of the mailFolder resource: list and query (childFolders too), get, $count, create
(a mailSearchFolder too), update, delete, move, copy, permanentDelete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from graphpost.api import delta, odata
from graphpost.api.context import COUNT_TYPE, Call
from graphpost.api.render import FOLDER_PROPS, encode
from graphpost.asgi import Response
from graphpost.domain.folders import MailFolderInput, is_search_type
from graphpost.errors import InvalidInputError, QueryError
from graphpost.ports.folders import Folder, FolderQuery

FOLDER_TYPE = "microsoft.graph.mailFolder"
_SEARCH_FIELDS = ("include_nested_folders", "source_folder_ids", "filter_query")


def _body(call: Call) -> MailFolderInput:
    return call.request.json(MailFolderInput)


def _hidden(q: Mapping[str, str]) -> bool:
    return odata.parse_bool(q, "includehiddenfolders") or odata.parse_bool(
        q, "includeHiddenFolders"
    )


def folder_query(q: Mapping[str, str], *, include_hidden: bool) -> FolderQuery:
    """$filter, $orderby, $top, $skip and $count of a folder collection (the $filter parser
    and tree are the messages'; the store compiles them over the folder properties)."""
    query = FolderQuery(
        include_hidden=include_hidden,
        top=odata.parse_int(q, "$top", odata.DEFAULT_TOP, 1, odata.MAX_TOP),
        skip=odata.parse_int(q, "$skip", 0, 0, 2**31 - 1),
        count=odata.parse_bool(q, "$count"),
    )
    if (text := q.get("$filter")) is not None:
        query.filter = odata.parse_filter(text)
    if (text := q.get("$orderby")) is not None:
        query.orderby = odata.parse_orderby(text)
    if "$search" in q:
        raise QueryError("$search is not supported on mail folders; use $filter.")
    return query


def _select(q: Mapping[str, str]) -> list[str] | None:
    return odata.select_list(q, FOLDER_PROPS, FOLDER_TYPE)


@dataclass
class _Expand:
    query: FolderQuery
    select: list[str] | None


def _split_options(inner: str) -> list[str]:
    """``$select=a,b;$filter=x eq 'a;b'`` → its options (a ';' inside quotes is text)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in inner:
        if ch == "'":
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _expand(q: Mapping[str, str], include_hidden: bool) -> _Expand | None:
    """``$expand=childFolders`` (one level), with nested $select, $filter, $orderby, $top and
    $skip; nothing else expands on a folder."""
    raw = q.get("$expand")
    if raw is None:
        return None
    name, paren, inner = raw.strip().partition("(")
    if name.strip().lower() != "childfolders" or (paren and not inner.rstrip().endswith(")")):
        raise QueryError(
            f"Expanding '{raw.strip()[:100]}' is not supported on mail folders; "
            "$expand=childFolders is (with $select, $filter, $orderby, $top or $skip inside "
            "parentheses)."
        )
    nested: dict[str, str] = {}
    for option in _split_options(inner.rstrip()[:-1] if paren else ""):
        key, _, value = option.partition("=")
        key = key.strip().lower()
        if key not in ("$select", "$filter", "$orderby", "$top", "$skip"):
            raise QueryError(
                f"'{key[:40]}' is not supported inside $expand=childFolders(…); $select, "
                "$filter, $orderby, $top and $skip are."
            )
        nested[key] = value.strip()
    query = folder_query({"$top": str(odata.MAX_TOP), **nested}, include_hidden=include_hidden)
    return _Expand(query, _select(nested))


async def _item(
    call: Call, folder: Folder, select: list[str] | None, expand: _Expand | None
) -> dict[str, Any]:
    out = call.services.render.folder_dict(folder, select)
    if expand is not None:
        kids = await call.services.folders.children_of(call.mailbox, folder, expand.query)
        out["childFolders@odata.context"] = call.services.render.context(
            f"{call.user_path}/mailFolders('{folder.id}')/childFolders"
        )
        out["childFolders"] = [call.services.render.folder_dict(k, expand.select) for k in kids]
    return out


def _collection_path(call: Call, parent_key: str | None) -> str:
    if parent_key is None:
        return f"{call.user_path}/mailFolders"
    return f"{call.user_path}/mailFolders('{parent_key}')/childFolders"


async def list_(call: Call, parent_key: str | None) -> Response:
    q = call.request.query
    query = folder_query(q, include_hidden=_hidden(q))
    query.top = call.page_size(query.top)
    select = _select(q)
    expand = _expand(q, query.include_hidden)
    folders, count, more = await call.services.folders.query(call.mailbox, parent_key, query)
    render = call.services.render
    items = [encode(await _item(call, f, select, expand)) for f in folders]
    suffix = f"({','.join(select)})" if select else ""
    next_link = None
    if more:
        top = query.top if call.max_page_size() is not None else None
        next_link = call.next_link(query.skip + query.top, top)
    return Response(
        200,
        render.collection(
            context=render.context(_collection_path(call, parent_key) + suffix),
            items=items,
            count=count,
            next_link=next_link,
        ),
    )


async def count(call: Call, parent_key: str | None) -> Response:
    """``GET …/mailFolders/$count``, ``…/childFolders/$count``: how many folders (with
    ``$filter``) are there, as text."""
    q = call.request.query
    query = folder_query(q, include_hidden=_hidden(q))
    query.count, query.top, query.skip, query.orderby = True, 1, 0, []
    _, total, _ = await call.services.folders.query(call.mailbox, parent_key, query)
    return Response(200, str(total or 0).encode(), content_type=COUNT_TYPE)


def _entity(call: Call, select: list[str] | None) -> str:
    suffix = f"({','.join(select)})" if select else ""
    return call.services.render.context(f"{call.user_path}/mailFolders{suffix}/$entity")


async def get(call: Call, key: str) -> Response:
    if key.lower() == "delta":  # the folders' delta function, not a folder of that name
        return await delta.folders(call)
    q = call.request.query
    select = _select(q)
    expand = _expand(q, _hidden(q))
    folder = await call.services.folders.get(call.mailbox, key)
    body = {"@odata.context": _entity(call, select), **await _item(call, folder, select, expand)}
    return Response(200, encode(body))


async def create(call: Call, parent_key: str | None) -> Response:
    data = _body(call)
    svc = call.services.folders
    if is_search_type(data.odata_type):
        folder = await svc.create_search(call.mailbox, parent_key, **_search_fields(data))
    else:
        _no_search_fields(data)
        folder = await svc.create(
            call.mailbox, parent_key, name=data.display_name, hidden=data.is_hidden
        )
    render = call.services.render
    if parent_key is None:
        path = f"{call.user_path}/mailFolders/$entity"
    else:
        path = f"{call.user_path}/mailFolders('{parent_key}')/childFolders/$entity"
    return Response(201, render.folder(folder, context=render.context(path)))


def _given(value: object) -> object:
    """A property the client left out is None (msgspec's UNSET)."""
    return None if value is msgspec.UNSET else value


def _search_fields(data: MailFolderInput) -> dict[str, Any]:
    """A mailSearchFolder's properties as given (None: left out), for create and update."""
    return {
        "name": data.display_name,
        "filter_query": _given(data.filter_query),
        "sources": _given(data.source_folder_ids),
        "nested": _given(data.include_nested_folders),
    }


def _no_search_fields(data: MailFolderInput) -> None:
    for name in _SEARCH_FIELDS:
        if getattr(data, name) is not msgspec.UNSET:
            prop = "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
            raise InvalidInputError(
                f"'{prop}' belongs to a mailSearchFolder: create one with "
                '"@odata.type": "microsoft.graph.mailSearchFolder".',
                target=prop,
            )


async def update(call: Call, key: str) -> Response:
    data = _body(call)
    svc = call.services.folders
    current = await svc.resolve(call.mailbox, key)
    hidden = data.is_hidden
    # Graph: isHidden is set when a folder is created, never after; the value it has (a client
    # echoing what it read) is accepted
    if hidden is not None and (not isinstance(hidden, bool) or hidden != current.is_hidden):
        raise InvalidInputError(
            "'isHidden' can be set only when a folder is created; to change it, create a new "
            "folder and move the messages into it.",
            target="isHidden",
        )
    if current.search is not None:
        folder = await svc.update_search(call.mailbox, current.id, **_search_fields(data))
    else:
        _no_search_fields(data)
        folder = await svc.rename(call.mailbox, key, name=data.display_name)
    render = call.services.render
    return Response(
        200, render.folder(folder, context=render.context(f"{call.user_path}/mailFolders/$entity"))
    )


async def delete(call: Call, key: str) -> Response:
    await call.services.folders.delete(call.mailbox, key)
    return Response(204, content_type=None)


async def permanent_delete(call: Call, key: str) -> Response:
    await call.services.folders.permanent_delete(call.mailbox, key)
    return Response(204, content_type=None)


def _destination(call: Call) -> str:
    raw = call.request.json(dict[str, Any])
    unknown = [k for k in raw if k.lower() != "destinationid"]
    if unknown:
        raise InvalidInputError(
            f"The action takes one parameter, 'destinationId'; '{unknown[0][:100]}' is not one.",
            target=unknown[0][:100],
        )
    value = next((v for k, v in raw.items() if k.lower() == "destinationid"), None)
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            "'destinationId' must be a folder id or a well-known folder name.",
            target="destinationId",
        )
    return value


async def move(call: Call, key: str) -> Response:
    """POST …/move: 200 and the folder where it now is (its id does not change)."""
    destination = _destination(call)
    folder = await call.services.folders.move(call.mailbox, key, destination)
    render = call.services.render
    return Response(
        200, render.folder(folder, context=render.context(f"{call.user_path}/mailFolders/$entity"))
    )


async def copy(call: Call, key: str) -> Response:
    """POST …/copy: 200 and the new folder (a deep copy: its messages and subfolders)."""
    destination = _destination(call)
    folder = await call.services.messages.copy_folder(call.mailbox, key, destination)
    render = call.services.render
    return Response(
        200, render.folder(folder, context=render.context(f"{call.user_path}/mailFolders/$entity"))
    )
