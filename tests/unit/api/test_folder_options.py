"""The edge's reading of folder queries, $count paths and Prefer: odata.maxpagesize."""

from __future__ import annotations

from typing import Any, cast

import pytest

from graphpost.api import mail_folders
from graphpost.api.app import resolve
from graphpost.api.context import Call
from graphpost.asgi import Request
from graphpost.domain.query import Compare, FunctionCall
from graphpost.errors import QueryError


@pytest.mark.parametrize(
    ("path", "handler", "taken"),
    [
        (["messages", "$count"], "count", []),
        (["mailFolders", "$count"], "count", []),
        (["mailFolders", "inbox", "messages", "$count"], "count", ["inbox"]),
        (["mailFolders", "a", "childFolders", "$count"], "count", ["a"]),
        (["mailFolders", "a", "childFolders", "b", "messages", "$Count"], "count", ["b"]),
        (["mailFolders", "a", "childFolders", "b", "childFolders", "$count"], "count", ["b"]),
        (["mailFolders", "a", "move"], "move", ["a"]),
        (["mailFolders", "a", "childFolders", "b", "copy"], "copy", ["b"]),
        (["mailFolders", "a", "permanentDelete"], "permanent_delete", ["a"]),
    ],
)
def test_count_and_folder_action_paths(path: list[str], handler: str, taken: list[str]) -> None:
    route, got = resolve("POST" if handler != "count" else "GET", path)
    name = getattr(route.handler, "__name__", "")
    assert name == handler or (name == "<lambda>" and handler == "count"), route.pattern
    assert got == taken


def test_folder_query_and_expand_options() -> None:
    q = mail_folders.folder_query(
        {"$filter": "startswith(displayName,'a') ", "$top": "5", "$count": "true"},
        include_hidden=True,
    )
    assert isinstance(q.filter, FunctionCall) and q.top == 5 and q.count and q.include_hidden
    expand = mail_folders._expand(
        {"$expand": "childFolders($select=displayName;$filter=displayName eq 'a;b';$top=2)"},
        False,
    )
    assert expand is not None and expand.select == ["displayName"] and expand.query.top == 2
    assert isinstance(expand.query.filter, Compare) and expand.query.filter.right.value == "a;b"
    default = mail_folders._expand({"$expand": "ChildFolders"}, True)
    assert default is not None and default.query.top == 1000 and default.query.include_hidden
    for bad in ("messages", "childFolders(", "childFolders($expand=childFolders)"):
        with pytest.raises(QueryError):
            mail_folders._expand({"$expand": bad}, False)
    with pytest.raises(QueryError):
        mail_folders.folder_query({"$search": "x"}, include_hidden=False)


def _call(prefer: str | None, query: dict[str, str]) -> Call:
    headers = {"prefer": prefer} if prefer is not None else {}
    request = Request("GET", "/v1.0/me/messages", query, headers)
    return Call(request, cast(Any, None), cast(Any, None), [])


@pytest.mark.parametrize(
    ("prefer", "query", "size", "applied"),
    [
        (None, {}, 10, []),
        ("odata.maxpagesize=3", {}, 3, ["odata.maxpagesize=3"]),
        ('odata.maxpagesize="3"', {"$top": "2"}, 2, ["odata.maxpagesize=3"]),
        ("odata.maxpagesize=30", {"$top": "20"}, 20, ["odata.maxpagesize=30"]),
        ("x=1, ODATA.MAXPAGESIZE = 7", {}, 7, ["odata.maxpagesize=7"]),
        ("odata.maxpagesize=99999", {}, 1000, ["odata.maxpagesize=1000"]),
        ("odata.maxpagesize=0", {}, 10, []),
        ("odata.maxpagesize=-4", {}, 10, []),
        ("odata.maxpagesize=abc", {}, 10, []),
        ("odata.maxpagesize=" + "9" * 5000, {}, 1000, ["odata.maxpagesize=1000"]),
        ("odata.maxpagesize=\u00b2", {}, 10, []),
        ("odata.maxpagesize=" + "0" * 20 + "5", {}, 5, ["odata.maxpagesize=5"]),
    ],
)
def test_maxpagesize(
    prefer: str | None, query: dict[str, str], size: int, applied: list[str]
) -> None:
    call = _call(prefer, query)
    top = int(query.get("$top", "10"))
    assert call.page_size(top) == size
    assert call.preference_applied == applied
