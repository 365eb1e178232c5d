"""Legacy extended properties (singleValueExtendedProperties, multiValueExtendedProperties) on
messages: create, PATCH, $expand, $filter, send, copy; over real HTTP on both engines."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.conftest import RunningServer
from tests.mail_api import ALEX, assert_error, unique
from tests.sink import Sink, wait_for

GUID = "66f5a359-4659-4830-9070-00047ec6ac6e"
COLOR = f"String {{{GUID}}} Name Color"
PALETTE = f"StringArray {{{GUID}}} Name Palette"
HEADERS_NS = "{00020386-0000-0000-C000-000000000046}"


def svep(prop_id: str) -> str:
    return f"singleValueExtendedProperties($filter=id eq '{prop_id}')"


def find(c: httpx.Client, path: str, prop_id: str, value: str, op: str = "eq") -> list[str]:
    cond = f"ep/value eq '{value}'" if op == "eq" else f"contains(ep/value, '{value}')"
    r = c.get(
        path,
        params={
            "$filter": f"singleValueExtendedProperties/any(ep: ep/id eq '{prop_id}' and {cond})"
        },
    )
    assert r.status_code == 200, r.text
    return [m["id"] for m in r.json()["value"]]


def make(c: httpx.Client, **props: Any) -> dict[str, Any]:
    r = c.post("/me/messages", json={"subject": unique("xp"), **props})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_properties_are_created_expanded_and_patched(server: RunningServer) -> None:
    mark = unique("green")
    with server.client() as c:
        m = make(
            c,
            singleValueExtendedProperties=[{"id": COLOR, "value": mark}],
            multiValueExtendedProperties=[{"id": PALETTE, "value": ["Green", "Aqua"]}],
        )
        assert "singleValueExtendedProperties" not in m
        plain = c.get(f"/me/messages/{m['id']}").json()
        assert "singleValueExtendedProperties" not in plain
        # any spelling of the id finds it; the answer spells it canonically
        spelled = f"string {{{GUID.upper()}}} NAME Color"
        r = c.get(f"/me/messages/{m['id']}", params={"$expand": svep(spelled)})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["singleValueExtendedProperties@odata.context"].endswith(
            f"/messages('{m['id']}')/singleValueExtendedProperties"
        )
        assert got["singleValueExtendedProperties"] == [{"id": COLOR, "value": mark}]
        assert got["subject"] == m["subject"]
        both = c.get(f"/me/messages/{m['id']}", params={
            "$select": "subject",
            "$expand": f"{svep(COLOR)},multiValueExtendedProperties($filter=id eq '{PALETTE}')",
        }).json()  # fmt: skip
        assert both["multiValueExtendedProperties"] == [{"id": PALETTE, "value": ["Green", "Aqua"]}]
        assert set(both) >= {"subject", "singleValueExtendedProperties"} and "body" not in both
        # names compare with case: another name is another property, not on this message
        other = c.get(f"/me/messages/{m['id']}", params={"$expand": svep(COLOR.lower())}).json()
        assert "singleValueExtendedProperties" not in other

        # PATCH adds and replaces by id; the message's change key changes
        r = c.patch(f"/me/messages/{m['id']}", json={"singleValueExtendedProperties": [
            {"id": spelled, "value": "Blue"},
            {"id": f"Integer {{{GUID}}} Id 0x8012", "value": "12"},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["changeKey"] != m["changeKey"]
        two = f"{svep(COLOR)[:-1]} or id eq 'Integer {{{GUID}}} Id 0x08012')"
        got = c.get(f"/me/messages/{m['id']}", params={"$expand": two}).json()
        assert sorted(got["singleValueExtendedProperties"], key=lambda p: p["id"]) == [
            {"id": f"Integer {{{GUID}}} Id 0x8012", "value": "12"},
            {"id": COLOR, "value": "Blue"},
        ]
        # a list also expands, per message
        r = c.get("/me/messages", params={"$filter": f"subject eq '{m['subject']}'",
                                          "$expand": svep(COLOR)})  # fmt: skip
        [listed] = r.json()["value"]
        assert listed["singleValueExtendedProperties"] == [{"id": COLOR, "value": "Blue"}]


def test_filter_finds_messages_by_property(server: RunningServer) -> None:
    mark = unique("Mark")
    with server.client() as c:
        tagged = make(c, singleValueExtendedProperties=[{"id": COLOR, "value": mark}])
        make(c, singleValueExtendedProperties=[{"id": COLOR, "value": unique("other")}])
        for path in ("/me/messages", "/me/mailFolders/drafts/messages"):
            assert find(c, path, COLOR, mark) == [tagged["id"]]
            assert find(c, path, COLOR, mark.upper()) == [tagged["id"]]  # values: any case
            assert find(c, path, COLOR, mark[3:], op="contains") == [tagged["id"]]
        assert find(c, "/me/mailFolders/inbox/messages", COLOR, mark) == []
        # the docs' spelling: Any, ep/Id, ep/Value
        r = c.get("/me/messages", params={"$filter": "singleValueExtendedProperties/Any(ep: "
                  f"ep/Id eq '{COLOR}' and ep/Value eq '{mark}')"})  # fmt: skip
        assert [x["id"] for x in r.json()["value"]] == [tagged["id"]]
        # a malformed id in a filter or an expand is Graph's ErrorInvalidProperty
        bad = c.get("/me/messages", params={
            "$filter": "singleValueExtendedProperties/any(ep: ep/id eq 'Test')"})  # fmt: skip
        assert_error(bad, 400, "ErrorInvalidProperty")
        bad = c.get(f"/me/messages/{tagged['id']}", params={"$expand": svep("Test")})
        assert_error(bad, 400, "ErrorInvalidProperty")
        # no list of every property: an expand needs its filter
        bad = c.get(f"/me/messages/{tagged['id']}",
                    params={"$expand": "singleValueExtendedProperties"})  # fmt: skip
        assert_error(bad, 400, "BadRequest")


def test_a_draft_is_found_again_in_sent_items_after_sending(
    server: RunningServer, sink: Sink
) -> None:
    """The way apps find a message they sent: a property on the draft, then a filter on Sent
    Items. The property also travels as an internet header when it is one."""
    mark = str(uuid.uuid4())
    header = f"String {HEADERS_NS} Name X-Tracking-Id"
    outside = f"{unique('ext')}@example.net"
    with server.client() as c:
        draft = make(c, toRecipients=[{"emailAddress": {"address": outside}}],
                     singleValueExtendedProperties=[{"id": COLOR, "value": mark},
                                                    {"id": header, "value": mark}])  # fmt: skip
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
        found = find(c, "/me/mailFolders/sentitems/messages", COLOR, mark)
        assert found == [draft["id"]]
        assert find(c, "/me/mailFolders/drafts/messages", COLOR, mark) == []
        sent = c.get(f"/me/messages/{found[0]}", params={"$expand": svep(COLOR)}).json()
        assert sent["isDraft"] is False
        assert sent["singleValueExtendedProperties"] == [{"id": COLOR, "value": mark}]

        # sendMail: the Sent Items copy carries them too
        mark2 = str(uuid.uuid4())
        message = {"subject": unique("sendMail xp"),
                   "toRecipients": [{"emailAddress": {"address": ALEX}}],
                   "singleValueExtendedProperties": [{"id": COLOR, "value": mark2}],
                   "multiValueExtendedProperties": [{"id": PALETTE, "value": ["a"]}]}  # fmt: skip
        assert c.post("/me/sendMail", json={"message": message}).status_code == 202
        [copy] = find(c, "/me/mailFolders/sentitems/messages", COLOR, mark2)
        multi = c.get(
            f"/me/messages/{copy}",
            params={"$expand": f"multiValueExtendedProperties($filter=id eq '{PALETTE}')"},
        ).json()
        assert multi["multiValueExtendedProperties"] == [{"id": PALETTE, "value": ["a"]}]
    # the internet headers namespace is a header of the message on the wire
    [out] = wait_for(lambda: [r for r in sink.handler.received if outside in r.rcpt_tos])
    assert out.message["X-Tracking-Id"] == mark
    assert out.message["X-Color"] is None


def test_received_x_headers_are_found_as_properties(server: RunningServer) -> None:
    """A received message's x- headers are String properties of the internet headers
    namespace (as Exchange exposes them), names compared without case."""
    mark = unique("hdr")
    subject = unique("x-header")
    with server.client() as c:
        draft = make(c, subject=subject, toRecipients=[{"emailAddress": {"address": ALEX}}],
                     internetMessageHeaders=[{"name": "X-Order-Ref", "value": mark}])  # fmt: skip
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
    prop_id = f"String {HEADERS_NS} Name x-order-REF"
    with server.client(server.token(ALEX)) as c:
        [got] = wait_for(lambda: find(c, "/me/mailFolders/inbox/messages", prop_id, mark))
        r = c.get(f"/me/messages/{got}", params={"$expand": svep(prop_id)}).json()
        canonical = "String {00020386-0000-0000-c000-000000000046} Name x-order-ref"
        assert r["singleValueExtendedProperties"] == [{"id": canonical, "value": mark}]
        assert r["subject"] == subject


def test_spoofing_headers_through_properties_is_not_possible(
    server: RunningServer, sink: Sink
) -> None:
    """Only properties that pass the internetMessageHeaders rules become headers."""
    outside = f"{unique('spoof')}@example.net"
    pairs = (("From", "ceo@example.com"), ("Subject", "forged"),
             ("X-Evil", "a\r\nBcc: victim@example.com"), ("X-Long", "y" * 2000),
             ("X-Fine", "kept"))  # fmt: skip
    props = [{"id": f"String {HEADERS_NS} Name {name}", "value": value} for name, value in pairs]
    with server.client() as c:
        draft = make(c, toRecipients=[{"emailAddress": {"address": outside}}],
                     singleValueExtendedProperties=props)  # fmt: skip
        assert c.post(f"/me/messages/{draft['id']}/send").status_code == 202
    [out] = wait_for(lambda: [r for r in sink.handler.received if outside in r.rcpt_tos])
    mail = out.message
    assert mail["Subject"] == draft["subject"] and "ceo@" not in mail["From"]
    assert mail["X-Evil"] is None and mail["X-Long"] is None and mail["X-Fine"] == "kept"
    assert b"victim" not in out.data and out.rcpt_tos == [outside]


def test_bad_properties_are_refused_with_graph_errors(server: RunningServer) -> None:
    with server.client() as c:

        def post(*single: dict[str, Any], **more: Any) -> httpx.Response:
            return c.post("/me/messages", json={"singleValueExtendedProperties": list(single),
                                                **more})  # fmt: skip

        assert_error(post({"id": "Test", "value": "x"}), 400, "ErrorInvalidProperty")
        assert_error(post({"value": "x"}), 400, "ErrorInvalidProperty")
        assert_error(post({"id": f"String {{{GUID}}} Name a\u0007b", "value": "x"}), 400,
                     "ErrorInvalidProperty")  # fmt: skip
        assert_error(post({"id": "StringArray 0x1", "value": "x"}), 400,
                     "ErrorInvalidExtendedProperty")  # fmt: skip
        assert_error(post({"id": "Widget 0x1", "value": "x"}), 400, "ErrorInvalidExtendedProperty")
        assert_error(post({"id": f"Integer {{{GUID}}} Name n", "value": "twelve"}), 400,
                     "ErrorInvalidExtendedPropertyValue")  # fmt: skip
        assert_error(post({"id": COLOR, "value": "x" * 40_000}), 400,
                     "ErrorInvalidExtendedPropertyValue")  # fmt: skip
        assert_error(post({"id": COLOR, "value": 12}), 400, "RequestBodyRead")
        assert_error(post({"id": COLOR, "value": "x", "extra": 1}), 400, "RequestBodyRead")
        multi = {"multiValueExtendedProperties": [{"id": PALETTE, "value": "not a list"}]}
        assert_error(c.post("/me/messages", json=multi), 400, "RequestBodyRead")
        many = [{"id": f"String {{{GUID}}} Name p{i}", "value": "v"} for i in range(101)]
        assert_error(post(*many), 400, "ErrorInvalidExtendedProperty")
        nul = json.dumps({"singleValueExtendedProperties": [{"id": COLOR, "value": "a\u0000"}]})
        r = c.post("/me/messages", content=nul.encode(),
                   headers={"content-type": "application/json"})  # fmt: skip
        assert r.status_code == 400, r.text

        # the cap holds across PATCHes too, and a refused PATCH changes nothing
        m = make(c, singleValueExtendedProperties=many[:60])
        r = c.patch(
            f"/me/messages/{m['id']}",
            json={"subject": "changed", "singleValueExtendedProperties": many[50:]},
        )
        assert_error(r, 400, "ErrorInvalidExtendedProperty")
        after = c.get(f"/me/messages/{m['id']}").json()
        assert after["subject"] == m["subject"] and after["changeKey"] == m["changeKey"]
        r = c.patch(f"/me/messages/{m['id']}",
                    json={"singleValueExtendedProperties": many[40:100]})  # fmt: skip
        assert r.status_code == 200, r.text
        # control characters (but NUL) are data
        v = "tab\tand\u0001bell"
        m = make(c, singleValueExtendedProperties=[{"id": COLOR, "value": v}])
        got = c.get(f"/me/messages/{m['id']}", params={"$expand": svep(COLOR)}).json()
        assert got["singleValueExtendedProperties"][0]["value"] == v


def test_copies_replies_and_basic_readers(server: RunningServer) -> None:
    mark = unique("copy")
    with server.client() as c:
        m = make(c, singleValueExtendedProperties=[{"id": COLOR, "value": mark}])
        copied = c.post(f"/me/messages/{m['id']}/copy", json={"destinationId": "inbox"}).json()
        reply = c.post(f"/me/messages/{m['id']}/createReply", json={}).json()
        assert sorted(find(c, "/me/messages", COLOR, mark)) == sorted([m["id"], copied["id"]])
        assert reply["id"] not in find(c, "/me/messages", COLOR, mark)
        assert c.post(f"/me/messages/{m['id']}/move",
                      json={"destinationId": "archive"}).status_code == 201  # fmt: skip
        assert find(c, "/me/mailFolders/archive/messages", COLOR, mark) == [m["id"]]
    with server.client(server.token(scopes="Mail.Read")) as c:
        assert find(c, "/me/mailFolders/archive/messages", COLOR, mark) == [m["id"]]
        r = c.patch(
            f"/me/messages/{m['id']}",
            json={"singleValueExtendedProperties": [{"id": COLOR, "value": "x"}]},
        )
        assert_error(r, 403, "ErrorAccessDenied")
    with server.client(server.token(scopes="Mail.ReadBasic")) as c:
        got = c.get(f"/me/messages/{m['id']}", params={"$expand": svep(COLOR)}).json()
        assert "singleValueExtendedProperties" not in got
        r = c.get("/me/messages", params={"$filter": "singleValueExtendedProperties/any(ep: "
                  f"ep/id eq '{COLOR}' and ep/value eq '{mark}')"})  # fmt: skip
        assert_error(r, 403, "ErrorAccessDenied")
