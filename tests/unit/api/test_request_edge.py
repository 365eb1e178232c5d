"""The request edge: every malformed body is a Graph 4xx error, NUL never gets past it."""

from __future__ import annotations

from typing import Any

import pytest

from graphpost.api.errors import status_and_code
from graphpost.asgi import Request
from graphpost.domain.message import MessageInput
from graphpost.errors import GraphpostError


def request(body: bytes = b"", *, path: str = "/v1.0/me/messages", query: bytes = b"",
            headers: list[tuple[bytes, bytes]] | None = None) -> Request:  # fmt: skip
    scope = {"method": "POST", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": [(b"content-type", b"application/json"), *(headers or [])]}  # fmt: skip
    req = Request.from_scope(scope)
    req.body = body
    return req


def refused(fn: Any) -> tuple[int, str, str]:
    with pytest.raises(GraphpostError) as info:
        fn()
    status, code = status_and_code(info.value)
    return status, code, info.value.message


DEEP = 100_000


@pytest.mark.parametrize(
    "body",
    [
        b'{"subject":"\xff"}', b'{"\xff":1}', b'{"subject":"\xed\xa0\x80"}', b"\xff\xfe{}",
        b'{"extensions":[{"extensionName":"x","v":' + b"[" * DEEP + b"]" * DEEP + b"}]}",
        b'{"attachments":[' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"]}",
        b"[" * DEEP, b"{" * DEEP, b'{"a":' * DEEP, b'{"subject":"a\x01b"}', b'{"subject":"\tb"}',
        b"{" * 200, b'{"a":1,}', b"",
    ],
)  # fmt: skip
@pytest.mark.parametrize("kind", [MessageInput, dict[str, Any]])
def test_malformed_json_is_unreadable_never_500(body: bytes, kind: type) -> None:
    status, code, _ = refused(lambda: request(body).json(kind))
    assert (status, code) == (400, "UnableToDeserializePostBody")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"subject":"a\\u0000b"}', "subject"),
        (b'{"toRecipients":[{"emailAddress":{"name":"\\u0000"}}]}',
         "toRecipients[0].emailAddress.name"),
        (b'{"extensions":[{"extensionName":"x","k\\u0000":1}]}', "extensions[0]"),
        (b'{"subject":"\\\\\\u0000"}', "subject"),  # escaped backslash, then a real \u0000
    ],
)  # fmt: skip
def test_nul_is_refused_with_its_place(body: bytes, where: str) -> None:
    status, code, message = refused(lambda: request(body).json(MessageInput))
    assert (status, code) == (400, "ErrorInvalidRequest")
    assert f"'{where}'" in message and "NUL" in message


def test_escaped_backslash_before_u0000_is_text() -> None:
    got = request(b'{"subject":"a\\\\u0000b"}').json(MessageInput)
    assert got.subject == "a\\u0000b"
    pair = request(b'{"subject":"\\ud83d\\ude00"}').json(MessageInput)
    assert pair.subject == "\U0001f600"


@pytest.mark.parametrize(
    "body", [b'{"subject":"\\ud800"}', b'{"subject":"\\udc00x"}', b'{"subject":"\\ud83dx"}']
)
def test_unpaired_surrogates_are_refused(body: bytes) -> None:
    status, code, message = refused(lambda: request(body).json(MessageInput))
    assert (status, code) == (400, "ErrorInvalidRequest") and "surrogate" in message


@pytest.mark.parametrize(
    ("path", "query", "what"),
    [
        ("/v1.0/users/a%00b/messages", b"", "URL path"),
        ("/v1.0/me/messages/AAMk%00", b"", "URL path"),
        ("/v1.0/me/mailFolders('in%00box')", b"", "URL path"),
        ("/v1.0/me/messages", b"$filter=subject%20eq%20'a%00'", "$filter"),
        ("/v1.0/me/messages", b"$select=subject%00", "$select"),
        ("/v1.0/me/messages", b"$top=1%00", "$top"),
        ("/v1.0/me/messages", b"x%00=1", "query string"),
    ],
)
def test_nul_in_path_or_query_is_refused(path: str, query: bytes, what: str) -> None:
    status, code, message = refused(lambda: request(path=path, query=query).check())
    assert (status, code) == (400, "ErrorInvalidRequest")
    assert what in message


@pytest.mark.parametrize("name", [b"client-request-id", b"prefer", b"if-match", b"idempotency-key"])
@pytest.mark.parametrize("value", [b"a\x00b", b"a\rb", b"a\nb", b"a\x7f", b"\x1b[31m"])
def test_control_characters_in_read_headers_are_refused(name: bytes, value: bytes) -> None:
    status, code, message = refused(lambda: request(headers=[(name, value)]).check())
    assert (status, code) == (400, "ErrorInvalidRequest") and name.decode() in message


def test_clean_requests_pass_and_utf8_query_is_read_as_utf8() -> None:
    req = request(query="$filter=subject eq 'grüße'".encode(),
                  headers=[(b"client-request-id", b"abc\tdef")])  # fmt: skip
    req.check()
    assert req.query["$filter"] == "subject eq 'grüße'"


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    assert request(b'\xef\xbb\xbf{"subject":"x"}').json(MessageInput).subject == "x"
