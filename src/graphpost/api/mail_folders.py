"""Routes of the mailFolder resource: list, get, childFolders, create, rename, delete."""

from __future__ import annotations

import msgspec

from graphpost.api import delta, odata
from graphpost.api.context import Call
from graphpost.asgi import Response
from graphpost.domain.folders import MailFolderInput


def _body(call: Call) -> MailFolderInput:
    return call.request.json(MailFolderInput)


async def list_(call: Call, parent_key: str | None) -> Response:
    q = call.request.query
    top = odata.parse_int(q, "$top", odata.DEFAULT_TOP, 1, odata.MAX_TOP)
    skip = odata.parse_int(q, "$skip", 0, 0, 2**31 - 1)
    hidden = odata.parse_bool(q, "includehiddenfolders") or odata.parse_bool(
        q, "includeHiddenFolders"
    )
    folders, total = await call.services.folders.children(
        call.mailbox, parent_key, include_hidden=hidden, top=top, skip=skip
    )
    render = call.services.render
    if parent_key is None:
        path = f"{call.user_path}/mailFolders"
    else:
        path = f"{call.user_path}/mailFolders('{parent_key}')/childFolders"
    items = [msgspec.json.encode(render.folder_dict(f)) for f in folders]
    next_link = call.next_link(skip + top) if skip + top < total else None
    count = total if odata.parse_bool(q, "$count") else None
    return Response(
        200,
        render.collection(
            context=render.context(path), items=items, count=count, next_link=next_link
        ),
    )


async def get(call: Call, key: str) -> Response:
    if key.lower() == "delta":  # the folders' delta function, not a folder of that name
        return await delta.folders(call)
    folder = await call.services.folders.get(call.mailbox, key)
    render = call.services.render
    return Response(
        200, render.folder(folder, context=render.context(f"{call.user_path}/mailFolders/$entity"))
    )


async def create(call: Call, parent_key: str | None) -> Response:
    data = _body(call)
    folder = await call.services.folders.create(
        call.mailbox, parent_key, name=data.display_name, hidden=data.is_hidden
    )
    render = call.services.render
    if parent_key is None:
        path = f"{call.user_path}/mailFolders/$entity"
    else:
        path = f"{call.user_path}/mailFolders('{parent_key}')/childFolders/$entity"
    return Response(201, render.folder(folder, context=render.context(path)))


async def update(call: Call, key: str) -> Response:
    data = _body(call)
    folder = await call.services.folders.rename(call.mailbox, key, name=data.display_name)
    render = call.services.render
    return Response(
        200, render.folder(folder, context=render.context(f"{call.user_path}/mailFolders/$entity"))
    )


async def delete(call: Call, key: str) -> Response:
    await call.services.folders.delete(call.mailbox, key)
    return Response(204, content_type=None)
