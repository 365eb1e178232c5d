"""Whatever a client sends, the answer is a Graph error or a success: never a 500."""

from __future__ import annotations

import random

import httpx

from tests.conftest import RunningServer

PATHS = [
    "/me/messages", "/me/mailFolders", "/me/mailFolders/inbox/messages",
    "/me/mailFolders/inbox/childFolders", "/me/messages/AAMkADhMGAAA=",
    "/me/mailFolders/drafts", "/users/AlexW@contoso.onmicrosoft.com/messages",
]  # fmt: skip
BODIES: list[bytes] = [
    b"", b"null", b"0", b'"text"', b"{}", b"[]", b"{" * 200, b'{"subject": null}',
    b'{"body": null, "toRecipients": null, "flag": null, "from": null}',
    b'{"toRecipients": [null]}', b'{"toRecipients": [{"emailAddress": null}]}',
    b'{"toRecipients": [{"emailAddress": {"address": 5}}]}', b'{"categories": [1, 2]}',
    b'{"extensions": [null]}', b'{"extensions": [{"extensionName": {"a": 1}}]}',
    b'{"attachments": [{"@odata.type": "#microsoft.graph.itemAttachment", "name": "x"}]}',
    b'{"attachments": [5]}', b'{"internetMessageHeaders": [{"name": null}]}',
    b'{"displayName": 5}', b'{"displayName": "a\\u0000b"}', b'{"isHidden": "yes"}',
    b'{"flag": {"dueDateTime": {"dateTime": "x"}, "startDateTime": {}}}',
    b"\xff\xfe\x00garbage", '{"subject": "ünïcødé ✉"}'.encode(),
]  # fmt: skip
QUERIES = [
    "$filter=", "$filter=subject eq 'x' and", "$filter=toRecipients/any(r: r eq 1)",
    "$filter=categories/any(c: c/x eq 'a')", "$filter=receivedDateTime ge 'soon'",
    "$filter=contains(isRead, 'x')", "$filter=isRead", "$filter=subject",
    "$orderby=nosuch", "$orderby=subject sideways", "$select=", "$expand=everything",
    "$skip=-5", "$top=99999999999999999999", "$count=1", "$search=\"x\"",
    "includeHiddenFolders=maybe", "$filter=" + "(" * 300 + "isRead eq true" + ")" * 300,
]  # fmt: skip


def test_no_input_gives_a_500(server: RunningServer) -> None:
    rng = random.Random(7)
    with server.client() as c:
        for path in PATHS:
            for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
                for body in BODIES:
                    r = c.request(method, path, content=body,
                                  headers={"Content-Type": "application/json"})  # fmt: skip
                    assert r.status_code < 500, (method, path, body, r.text)
                    if r.status_code >= 400:
                        assert r.json()["error"]["code"]
            for query in QUERIES:
                r = c.get(f"{path}?{query}")
                assert r.status_code < 500, (path, query, r.text)
        for _ in range(200):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            r = c.post("/me/messages", content=junk, headers={"Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, r.text
    raw = httpx.get(f"{server.base}/v1.0/me/messages/%ZZ%2", headers=c.headers)
    assert raw.status_code == 400
