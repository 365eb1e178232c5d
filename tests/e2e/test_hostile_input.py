"""Hostile input at the HTTP edge: refused with a Graph 4xx, the same on SQLite and PostgreSQL,
before anything is stored or queued. Each test is named after what it protects."""

from __future__ import annotations

import base64
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer, start_server
from tests.mail_api import ALEX, assert_error, drafts_count, unique
from tests.sink import Sink, wait_for

JSON = {"Content-Type": "application/json"}
DEEP = 100_000
UNREADABLE = "UnableToDeserializePostBody"
INVALID = "ErrorInvalidRequest"
# Bodies no JSON endpoint may answer with anything but a 400 (never a 500, never stored).
MALFORMED: list[tuple[bytes, str]] = [
    (b'{"subject":"\xff"}', UNREADABLE),  # a non-UTF-8 byte inside a string
    (b'{"\xff":1}', UNREADABLE),  # ... inside a key no one reads
    (b'{"subject":"\xed\xa0\x80"}', UNREADABLE),  # a surrogate written as UTF-8
    (b"[" * DEEP + b"]" * DEEP, UNREADABLE),
    (b'{"a":' * DEEP + b"1" + b"}" * DEEP, UNREADABLE),
    (b'{"extensions":[{"extensionName":"x","v":' + b"[" * DEEP + b"]" * DEEP + b"}]}",
     UNREADABLE),
    (b'{"attachments":[{"name":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}]}", UNREADABLE),
    (b'{"message":{"extensions":[' + b"[" * DEEP + b"]" * DEEP + b"]}}", UNREADABLE),
    (b'{"subject":"a\x01b"}', UNREADABLE),  # a raw control byte
    (b'{"subject":"\\ud800"}', INVALID),  # an unpaired surrogate escape
    (b'{"subject":"\\udc00\\ud800"}', INVALID),
    (b'{"subject":"a\\u0000b"}', INVALID),  # NUL
    (b'{"displayName":"a\\u0000b","destinationId":"x\\u0000","comment":"\\u0000"}', INVALID),
    (b'{"message":{"toRecipients":[{"emailAddress":{"name":"\\u0000","address":"a@b.c"}}]}}',
     INVALID),
]  # fmt: skip


@pytest.fixture
def draft_id(server: RunningServer) -> Iterator[str]:
    with server.client() as c:
        to = [{"emailAddress": {"address": ALEX}}]
        r = c.post("/me/messages", json={"subject": unique("target"), "toRecipients": to})
        assert r.status_code == 201, r.text
        yield r.json()["id"]


def _endpoints(mid: str) -> list[tuple[str, str]]:
    return [
        ("POST", "/me/messages"), ("POST", "/me/mailFolders/drafts/messages"),
        ("PATCH", f"/me/messages/{mid}"), ("POST", f"/me/messages/{mid}/send"),
        ("POST", "/me/sendMail"), ("POST", f"/me/messages/{mid}/createReply"),
        ("POST", f"/me/messages/{mid}/createReplyAll"), ("POST", f"/me/messages/{mid}/forward"),
        ("POST", f"/me/messages/{mid}/reply"), ("POST", f"/me/messages/{mid}/move"),
        ("POST", f"/me/messages/{mid}/copy"), ("POST", "/me/mailFolders"),
        ("PATCH", "/me/mailFolders/drafts"), ("POST", "/me/mailFolders/inbox/childFolders"),
    ]  # fmt: skip


def _counts(server: RunningServer) -> tuple[int, int, int]:
    with server.client() as c:
        folders = c.get("/me/mailFolders", params={"$top": "100"}).json()["value"]
        sent = c.get("/me/mailFolders/sentitems").json()["totalItemCount"]
    return drafts_count(server), int(sent), len(folders)


def test_malformed_json_is_a_400_on_every_json_endpoint(
    server: RunningServer, draft_id: str
) -> None:
    before = _counts(server)
    with server.client() as c:
        for method, path in _endpoints(draft_id):
            for body, code in MALFORMED:
                r = c.request(method, path, content=body, headers=JSON)
                assert_error(r, 400, code)
        draft = c.get(f"/me/messages/{draft_id}")
        assert draft.status_code == 200 and draft.json()["isDraft"] is True
    assert _counts(server) == before


def test_nul_is_refused_in_every_part_of_a_request_alike_on_both_engines(
    server: RunningServer, draft_id: str
) -> None:
    """PostgreSQL cannot store U+0000 and SQLite did: both now answer the same 400."""
    before = _counts(server)
    with server.client() as c:
        for path in (
            "/users/Adele%00V@contoso.onmicrosoft.com/messages", f"/me/messages/{draft_id}%00",
            "/me/mailFolders('in%00box')/messages", "/me/mailFolders/%00",
            f"/me/messages/{draft_id}/attachments/%00",
        ):  # fmt: skip
            error = assert_error(c.get(path), 400, INVALID)
            assert "URL path" in str(error["message"])
        for query in ("$filter=subject eq 'a\x00'", "$select=subject\x00", "$top=\x00",
                      "$search=\x00", "$orderby=subject\x00", "x\x00=1"):  # fmt: skip
            key, _, value = query.partition("=")
            assert_error(c.get("/me/messages", params={key: value}), 400, INVALID)
        r = c.post("/me/sendMail", headers={**JSON, "Idempotency-Key": "k"},
                   content=b'{"message":{"subject":"\\u0000","toRecipients":'
                           b'[{"emailAddress":{"address":"a@example.com"}}]}}')  # fmt: skip
        assert "message.subject" in str(assert_error(r, 400, INVALID)["message"])
        for prop in ("subject", "categories", "internetMessageId"):
            bad: Any = ["a\x00"] if prop == "categories" else "a\x00"
            assert_error(c.post("/me/messages", json={prop: bad}), 400, INVALID)
            assert_error(c.patch(f"/me/messages/{draft_id}", json={prop: bad}), 400, INVALID)
        assert_error(c.post("/me/mailFolders", json={"displayName": "x\x00"}), 400, INVALID)
        body = {"extensions": [{"@odata.type": "microsoft.graph.openTypeExtension",
                                "extensionName": "e", "v\x00": "1"}]}  # fmt: skip
        assert_error(c.post("/me/messages", json=body), 400, INVALID)
    assert _counts(server) == before


def test_escaped_backslash_before_u0000_is_stored_as_text(server: RunningServer) -> None:
    subject = unique("lit") + "\\u0000"
    with server.client() as c:
        raw = ('{"subject":"' + subject.replace("\\", "\\\\") + '"}').encode()
        r = c.post("/me/messages", content=raw, headers=JSON)
        assert r.status_code == 201, r.text
        assert r.json()["subject"] == subject
        assert c.get(f"/me/messages/{r.json()['id']}").json()["subject"] == subject


def _raw_get(server: RunningServer, header: str, value: bytes) -> tuple[bytes, bytes]:
    port = int(server.base.rsplit(":", 1)[1])
    request = (
        (
            f"GET /v1.0/me/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token()}"
            f"\r\nConnection: close\r\n{header}: "
        ).encode()
        + value
        + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("header", ["client-request-id", "prefer", "if-match", "idempotency-key"])
def test_control_characters_in_read_headers_never_reach_the_store_or_the_answer(
    server: RunningServer, header: str
) -> None:
    """The HTTP parser refuses controls in header values before the app sees them (the app
    refuses them too: tests/unit/api/test_request_edge.py); nothing is echoed back."""
    for value in (b"a\x00b", b"a\x7fb", b"a\x1b[31m", b"a\rX-Evil: 1", b"a\r\n X-Evil: 1"):
        head, _ = _raw_get(server, header, value)
        assert head.startswith(b"HTTP/1.1 400"), head
        assert b"X-Evil" not in head and b"\x1b" not in head and b"\x00" not in head
    head, _ = _raw_get(server, "client-request-id", b"tab\there")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nclient-request-id: tab\there\r\n" in head


BAD_ADDRESSES = [
    "b\x00b@example.com", "b\x7fb@example.com", "b\x08b@example.com", "a b@example.com",
    "<a@example.com>", "a@example.com>", "a\r\nRCPT TO:<victim@example.com>", "a\u2028@example.com",
    "a..b@example.com", "a@-bad.example", "a@exa mple.com", "x" * 65 + "@example.com",
    "a@" + "b" * 250 + ".com", "no-at-sign", "a@[999.1.1.1]",
]  # fmt: skip


def test_unsendable_addresses_are_refused_before_the_202(
    server: RunningServer, sink: Sink, draft_id: str
) -> None:
    subject = unique("badaddr")
    before = _counts(server)
    with server.client() as c:
        for address in BAD_ADDRESSES:
            to = [{"emailAddress": {"address": "ok@example.com"}},
                  {"emailAddress": {"address": address}}]  # fmt: skip
            r = c.post("/me/sendMail", json={"message": {"subject": subject, "toRecipients": to}})
            # NUL is refused first, as in any string; every other address names the recipient
            code = "ErrorInvalidRequest" if "\x00" in address else "ErrorInvalidRecipients"
            message = str(assert_error(r, 400, code)["message"])
            assert "\x00" not in message and "\r" not in message and "\x7f" not in message
            if "\x00" in address:
                continue
            for kind in ("ccRecipients", "bccRecipients"):
                r = c.post("/me/sendMail", json={"message": {"subject": subject, kind: to}})
                assert r.status_code == 400, r.text
            assert c.patch(f"/me/messages/{draft_id}", json={"toRecipients": to}).status_code in (
                200, 400,
            )  # fmt: skip
            assert_error(c.post(f"/me/messages/{draft_id}/send"), 400, "ErrorInvalidRecipients")
            assert_error(
                c.post(f"/me/messages/{draft_id}/forward", json={"toRecipients": to}),
                400,
                "ErrorInvalidRecipients",
            )
            assert_error(
                c.post(f"/me/messages/{draft_id}/reply", json={"message": {"ccRecipients": to}}),
                400,
                "ErrorInvalidRecipients",
            )
        shown = c.post("/me/sendMail", json={"message": {"toRecipients": [
            {"emailAddress": {"address": "b\x01b@example.com"}}]}}).json()  # fmt: skip
        assert "b\\x01b@example.com" in shown["error"]["message"]
    drafts, sent, folders = _counts(server)
    assert (sent, folders) == before[1:]
    assert drafts >= before[0]  # reply/forward leave their drafts in Drafts, as Graph does
    assert sink.with_subject(subject) == []


def test_smtputf8_addresses_are_accepted(tmp_path: Path) -> None:
    """Accepted before the 202 (delivery to a relay without SMTPUTF8 is the transport's to
    fail cleanly). The address rule is the domain's, the same on both engines: a server
    without a relay keeps the mail queued, so this test sends nothing anywhere."""
    server = start_server(tmp_path / "utf8")
    try:
        with server.client() as c:
            for address in ("bøb@example.com", "用户@例子.广告", '"a..b"@example.com',
                            "a@[192.0.2.1]", "a@[IPv6:2001:db8::1]"):  # fmt: skip
                message = {"subject": unique("utf8"),
                           "toRecipients": [{"emailAddress": {"address": address}}]}  # fmt: skip
                r = c.post("/me/sendMail", json={"message": message})
                assert r.status_code == 202, (address, r.text)
    finally:
        server.stop()


@pytest.mark.parametrize(
    "name", ["x-a b", "x-a\x0bb", "x-a:b", "x-ä", "x-a\tb", "x-a\x7f", "x-\r\nBcc", "x-a\x00b"]
)
def test_header_names_are_rfc5322_field_names(server: RunningServer, name: str) -> None:
    before = _counts(server)
    headers = [{"name": name, "value": "v"}]
    with server.client() as c:
        for path, body in (
            ("/me/messages", {"internetMessageHeaders": headers}),
            ("/me/sendMail", {"message": {"internetMessageHeaders": headers,
                              "toRecipients": [{"emailAddress": {"address": "a@b.example"}}]}}),
        ):  # fmt: skip
            code = "ErrorInvalidRequest" if "\x00" in name else "InvalidInternetMessageHeader"
            assert_error(c.post(path, json=body), 400, code)
    assert _counts(server) == before


@pytest.mark.parametrize("value", ["a\r\nBcc: x@y.z", "a\rb", "a\nb", "a\x00b", "a\u2028b"])
def test_header_values_stay_on_one_line(server: RunningServer, value: str) -> None:
    with server.client() as c:
        r = c.post("/me/messages",
                   json={"internetMessageHeaders": [{"name": "x-a", "value": value}]})  # fmt: skip
        assert r.status_code == 400, r.text


def _attachment(**over: Any) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt",
            "contentBytes": base64.b64encode(b"hello").decode(), **over}  # fmt: skip


@pytest.mark.parametrize(
    "attachment",
    [
        _attachment(contentType="text/plain\r\nX-Evil: 1\r\n\r\nbody"),
        _attachment(contentType="text/plain; name=\"a\r\nX-Evil: 1\""),
        _attachment(contentType="text/plain\x0b"), _attachment(contentType="text"),
        _attachment(contentType="text/plain; charset"), _attachment(contentType="a/b/c"),
        _attachment(contentType="téxt/plain"), _attachment(contentType=5),
        _attachment(name="a\r\nX-Evil: 1.txt"), _attachment(name="a\x00.txt"),
        _attachment(contentId="c1>\r\nX-Evil: 1", isInline=True),
        _attachment(contentId="c\x7f", isInline=True),
    ],
)  # fmt: skip
def test_part_headers_cannot_be_injected(
    server: RunningServer, sink: Sink, attachment: dict[str, Any]
) -> None:
    subject = unique("part")
    before = _counts(server)
    with server.client() as c:
        message = {"subject": subject, "attachments": [attachment],
                   "toRecipients": [{"emailAddress": {"address": "part@example.com"}}]}  # fmt: skip
        assert c.post("/me/sendMail", json={"message": message}).status_code == 400
        assert c.post("/me/messages", json=message).status_code == 400
    assert _counts(server) == before
    assert sink.with_subject(subject) == []


def test_well_formed_part_headers_reach_the_relay_intact(server: RunningServer, sink: Sink) -> None:
    subject = unique("partok")
    attachment = _attachment(contentType='Text/Plain; charset="utf-8"; format=flowed',
                             name="résumé.txt")  # fmt: skip
    with server.client() as c:
        message = {
            "subject": subject,
            "attachments": [attachment],
            "internetMessageHeaders": [{"name": "X-Trace~!#", "value": "ok\tok"}],
            "toRecipients": [{"emailAddress": {"address": "partok@example.com"}}],
        }
        assert c.post("/me/sendMail", json={"message": message}).status_code == 202
    received = wait_for(lambda: sink.with_subject(subject), what="the message")[0].message
    assert received["X-Trace~!#"] == "ok\tok"
    parts = list(received.iter_attachments())
    assert [(p.get_content_type(), p.get_filename(), p.get_content()) for p in parts] == [
        ("text/plain", "résumé.txt", "hello")
    ]
    assert all(not k.lower().startswith("x-evil") for p in parts for k in p)


def test_read_basic_cannot_use_the_body_as_an_oracle(server: RunningServer) -> None:
    secret = unique("password=hunter2")
    with server.client() as c:
        r = c.post("/me/messages", json={"subject": secret, "body": {"content": secret}})
        assert r.status_code == 201
    tokens = [
        server.token(scopes="Mail.ReadBasic"),
        server.app_token("basic-reader", roles="Mail.ReadBasic.All"),
    ]
    for token in tokens:
        base = (
            "/me/messages"
            if token == tokens[0]
            else "/users/AdeleV@contoso.onmicrosoft.com/messages"
        )
        with server.client(token) as c:
            for params in (
                {"$filter": "contains(bodyPreview,'password=h')"},
                {"$filter": "startswith(body/content,'p')"},
                {"$filter": "uniqueBody/content eq 'x'"},
                {"$filter": f"subject eq '{secret}' and contains(BodyPreview,'hunter')"},
                {"$filter": "toRecipients/any(r: contains(bodyPreview,'p'))"},
                {"$orderby": "bodyPreview desc"},
                {"$filter": "bodyPreview ne 'x'", "$orderby": "bodyPreview"},
            ):
                assert_error(c.get(base, params=params), 403, "ErrorAccessDenied")
            ok = c.get(base, params={"$filter": f"subject eq '{secret}'"})
            assert ok.status_code == 200 and len(ok.json()["value"]) == 1
            assert "bodyPreview" not in ok.json()["value"][0]
    with server.client(server.token(scopes="Mail.Read")) as c:
        r = c.get("/me/messages", params={"$filter": f"contains(bodyPreview,'{secret}')"})
        assert r.status_code == 200 and len(r.json()["value"]) == 1


@pytest.mark.parametrize("terms", [100, 200, 500])
def test_long_or_filters_are_answered_on_both_engines(server: RunningServer, terms: int) -> None:
    """~100 `or` terms overflowed SQLite's parser stack (503); both engines now answer."""
    mark = unique("or")
    wanted = [f"{mark}-{i}" for i in range(3)]
    with server.client() as c:
        for subject in wanted:
            assert c.post("/me/messages", json={"subject": subject}).status_code == 201
        names = [f"{mark}-{i}" for i in range(terms)]
        random.Random(terms).shuffle(names)
        text = " or ".join(f"subject eq '{n}'" for n in names)
        r = c.get("/me/messages", params={"$filter": text, "$top": "50"})
        assert r.status_code == 200, r.text[:300]
        assert sorted(m["subject"] for m in r.json()["value"]) == wanted
        mixed = " and ".join(
            f"not(subject eq 'zz{i}' or isRead eq false)" for i in range(terms // 2)
        )
        assert c.get("/me/messages", params={"$filter": mixed}).status_code == 200


def test_filters_past_the_limits_get_a_clear_400(server: RunningServer) -> None:
    with server.client() as c:
        many = " or ".join(["isRead"] * 501)
        error = assert_error(c.get("/me/messages", params={"$filter": many}), 400, "BadRequest")
        assert "500 conditions" in str(error["message"])
        deep = "not(" * 40 + "isRead" + ")" * 40
        assert_error(c.get("/me/messages", params={"$filter": deep}), 400, "BadRequest")
        many_sorts = ",".join(["subject"] * 3000)  # SQLite: "too many terms in ORDER BY"
        assert_error(c.get("/me/messages", params={"$orderby": many_sorts}), 400, "BadRequest")
        long = "subject eq '" + "x" * 40_000 + "'"
        assert_error(c.get("/me/messages", params={"$filter": long}), 400, "BadRequest")


def test_values_postgresql_cannot_index_are_refused_alike_on_both_engines(
    server: RunningServer, draft_id: str
) -> None:
    """A long random internetMessageId overflowed PostgreSQL's index row and a long
    extensionName its varchar(255): 503 there, stored on SQLite. Both now answer 400."""
    rng = random.Random(5)
    junk = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(3000))
    ascii_junk = "".join(chr(rng.randrange(0x21, 0x7F)) for _ in range(999))
    before = _counts(server)
    with server.client() as c:
        for imid in (junk, ascii_junk, "<a b@c>", "<ø@x>", "<a@b>\t"):
            assert_error(c.post("/me/messages", json={"internetMessageId": imid}), 400,
                         "RequestBodyRead")  # fmt: skip
            r = c.patch(f"/me/messages/{draft_id}", json={"internetMessageId": imid})
            assert_error(r, 400, "RequestBodyRead")
        for name in ("e" * 256, junk, "a\tb"):
            ext = {"@odata.type": "microsoft.graph.openTypeExtension", "extensionName": name}
            assert_error(c.post("/me/messages", json={"extensions": [ext]}), 400,
                         "RequestBodyRead")  # fmt: skip
        twice = {"@odata.type": "microsoft.graph.openTypeExtension", "extensionName": "twice"}
        r = c.post("/me/messages", json={"extensions": [twice, twice]})
        assert "twice" in str(assert_error(r, 400, "RequestBodyRead")["message"])
        longest = {"@odata.type": "microsoft.graph.openTypeExtension", "extensionName": "e" * 255}
        ok = {"internetMessageId": ascii_junk[:998], "extensions": [longest]}
        r = c.post("/me/messages", json=ok)
        assert r.status_code == 201, r.text
        assert r.json()["internetMessageId"] == ascii_junk[:998]
    assert _counts(server)[0] == before[0] + 1


_PIECES = ["a", "Z", " ", "'", '"', "\\", "/", "\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f",
           "\x85", "\r", "\n", "\t", "\u2028", "\u2029", "\u200b", "\ufeff", "ø", "用",
           "\U0001f600", "\ufffd", "\\u0000", "%00", "<", ">", "@"]  # fmt: skip


def _hostile_text(rng: random.Random) -> str:
    text = "".join(rng.choice(_PIECES) for _ in range(rng.choice([0, 1, 4, 20, 200])))
    return text + ("x" * 20_000 if rng.random() < 0.03 else "")


def _raw_json(value: Any, rng: random.Random) -> bytes:
    """JSON text, sometimes with an unpaired surrogate escape spliced into a string."""
    import json

    raw = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    if rng.random() < 0.1 and '"' in raw[1:]:
        at = raw.index('"', raw.index('"') + 1)
        raw = raw[:at] + rng.choice(["\\ud800", "\\udfff", "\\ud83d"]) + raw[at:]
    return raw.encode("utf-8", "surrogatepass")


def test_random_hostile_strings_are_refused_or_stored_faithfully(server: RunningServer) -> None:
    """Any string in any field: a 400 (the same on both engines) or a 201 whose read-back is
    exactly what was sent. Never a 5xx, never a silently changed value."""
    rng = random.Random(20261202)
    outcomes: dict[str, int] = {}
    with server.client() as c:
        for _ in range(150):
            sent: dict[str, Any] = {
                "subject": _hostile_text(rng),
                "body": {"contentType": "text", "content": _hostile_text(rng)},
                "categories": [_hostile_text(rng) for _ in range(rng.randint(0, 2))],
                "toRecipients": [{"emailAddress": {"name": _hostile_text(rng) or "n",
                                                   "address": _hostile_text(rng) or "a@b.c"}}],
            }  # fmt: skip
            r = c.post("/me/messages", content=_raw_json(sent, rng), headers=JSON)
            outcomes[str(r.status_code)] = outcomes.get(str(r.status_code), 0) + 1
            assert r.status_code in (201, 400), r.text[:300]
            if r.status_code == 400:
                assert r.json()["error"]["code"] in (INVALID, UNREADABLE, "ErrorInvalidRecipients")
                continue
            back = c.get(f"/me/messages/{r.json()['id']}").json()
            assert back["subject"] == sent["subject"]
            assert back["body"]["content"] == sent["body"]["content"]
            assert back["categories"] == sent["categories"]
            given, got = sent["toRecipients"][0]["emailAddress"], back["toRecipients"][0]
            # a draft's address is trimmed (str.strip), nothing else
            assert got["emailAddress"] == {**given, "address": given["address"].strip()}
            for key in ("$filter", "$search", "$select", "$orderby"):
                q = c.get("/me/messages", params={key: f"subject eq '{sent['subject'][:50]}'"})
                assert q.status_code in (200, 400, 403), q.text[:300]
    assert outcomes.get("201") and outcomes.get("400"), outcomes  # both branches were taken
