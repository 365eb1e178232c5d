"""The Graph route table: every route reachable, none shadowing another, Graph's answers for
paths and methods it does not have."""

from __future__ import annotations

import inspect
import itertools

import pytest

from graphpost.api.app import ROUTES, Route, resolve
from graphpost.errors import MethodNotAllowedError, UnknownSegmentError


def overlap(a: Route, b: Route) -> bool:
    """Some path matches both patterns."""
    return len(a.parts) == len(b.parts) and all(
        x is None or y is None or x == y for x, y in zip(a.parts, b.parts, strict=True)
    )


def example(route: Route) -> list[str]:
    """A path the route matches: each {name} filled with a value of its own."""
    return [f"v{i}" if p is None else p for i, p in enumerate(route.parts)]


def test_no_route_shadows_another() -> None:
    for a, b in itertools.combinations(ROUTES, 2):
        assert not (a.method == b.method and overlap(a, b)), (a.pattern, b.pattern, a.method)


def test_every_route_is_reached_with_its_segments() -> None:
    for route in ROUTES:
        path = example(route)
        found, taken = resolve(route.method, path)
        assert found is route, route.pattern
        assert taken == [s for s, p in zip(path, route.parts, strict=True) if p is None]


def test_every_handler_takes_what_its_pattern_gives() -> None:
    for route in ROUTES:
        taken = ["x"] * route.parts.count(None)
        inspect.signature(route.handler).bind(object(), *taken)  # TypeError if not


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "messages", ("GET", "POST")),
        ("GET", "sendMail", ("POST",)),
        ("POST", "Messages/abc", ("DELETE", "GET", "PATCH")),
        ("GET", "mailFolders/inbox/messages/abc/createReplyAll", ("POST",)),
        ("HEAD", "mailFolders/a/childFolders/b/childFolders", ("GET", "POST")),
        ("PUT", "messages/abc/extensions/com.contoso.x", ("DELETE", "GET", "PATCH")),
        ("DELETE", "messages/abc/extensions", ("GET", "POST")),
    ],
)
def test_wrong_method(method: str, path: str, allowed: tuple[str, ...]) -> None:
    with pytest.raises(MethodNotAllowedError) as info:
        resolve(method, path.split("/"))
    assert info.value.allowed == allowed
    assert info.value.message.endswith(f"allowed: {', '.join(allowed)}.")


@pytest.mark.parametrize(
    ("path", "segment"),
    [
        ("", ""),
        ("contacts", "contacts"),
        ("sendMail/x", "sendMail"),
        ("messages/abc/bogus", "bogus"),
        ("messages/abc/send/x", "send"),
        ("messages/abc/attachments/a/b", "b"),
        ("messages/abc/attachments/a/$value/x", "$value"),
        ("mailFolders/inbox/rules", "rules"),
        ("mailFolders/a/childFolders/b/rules/x", "rules"),
        ("mailFolders/a/messages/abc/Bogus", "Bogus"),
    ],
)
def test_unknown_path_names_its_segment(path: str, segment: str) -> None:
    with pytest.raises(UnknownSegmentError) as info:
        resolve("GET", path.split("/") if path else [])
    assert info.value.message == f"Resource not found for the segment '{segment}'."


def test_child_folders_and_folder_messages_resolve_to_the_item() -> None:
    route, taken = resolve("GET", ["mailFolders", "a", "childFolders", "b", "childFolders"])
    assert route.pattern == "mailFolders/{folder}/childFolders" and taken == ["b"]
    route, taken = resolve("POST", ["MAILFOLDERS", "a", "Messages", "m", "move"])
    assert route.pattern == "messages/{id}/move" and taken == ["m"]
    route, taken = resolve("GET", ["mailFolders", "a", "messages"])
    assert route.pattern == "mailFolders/{folder}/messages" and taken == ["a"]
