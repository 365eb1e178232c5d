"""The mailbox web page (/ and /web/…) on a real `graphpost serve`, on both engines: every
endpoint, the security headers, the body's Content-Security-Policy, sign-in and who sees what
(one user never reads another's mail: 404), CSRF and Origin refusals, server-sent events after
a message is created through the Graph API, the outbound queue's retry and delete; and the
emulator's open page on loopback. Real HTTP (httpx), no browser (tests/browser has those)."""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import RunningServer
from tests.delivery_checks import engine_server
from tests.mail_api import ADELE, ALEX, MEGAN, unique
from tests.sink import Sink, wait_for

SCRIPT = b"<script>x</script>"
PASSWORD = "graphpost-demo"  # the demo tenant's documented password
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
HOSTILE = (
    "<p>hello <img id=inline src='cid:logo@web'> <img src='cid:logo%40web'>"
    "<img src='https://tracker.example/t.png'>"
    "<script>parent.document.title='owned'</script></p>"
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def web(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sink: Sink
) -> Iterator[RunningServer]:
    """A server others can reach (emulator mode off): the page needs a sign-in; Megan is an
    admin."""
    data_dir = tmp_path_factory.mktemp(f"web-{request.param}")
    with engine_server(
        request.param, data_dir, request, relay=sink.url, GRAPHPOST_WEB_ADMINS=f" {MEGAN.upper()} "
    ) as s:
        yield s


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def open_page(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sink: Sink
) -> Iterator[RunningServer]:
    """Emulator mode: the page is open to loopback; retries an hour apart (the queue holds)."""
    data_dir = tmp_path_factory.mktemp(f"web-open-{request.param}")
    with engine_server(
        request.param, data_dir, request, relay=sink.url, GRAPHPOST_EMULATOR="true",
        GRAPHPOST_RETRY_BASE_SECONDS="3600", GRAPHPOST_RETRY_MAX_SECONDS="3600",
        GRAPHPOST_RETRY_WINDOW_SECONDS="86400",
    ) as s:  # fmt: skip
        yield s


class Page:
    """A browser's view of the page: its cookie jar, its CSRF token, its Origin."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        self.csrf = ""

    def sign_in(self, user: str, password: str = PASSWORD) -> httpx.Response:
        form = self.http.get("/web/signin")
        assert form.status_code == 200, form.text
        token = re.search(r'name=csrf value="([^"]+)"', form.text)
        assert token is not None
        answer = self.http.post(
            "/web/signin",
            data={"csrf": token.group(1), "username": user, "password": password},
            headers={"Origin": self.base},
        )
        if answer.status_code == 303:
            self.csrf = self.get("/web/api/session").json()["csrf"]
        return answer

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        headers = {"Origin": self.base, "X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.post(path, headers=headers, **kw)

    def folder(self, user_id: str, well_known: str) -> str:
        folders = self.get(f"/web/api/mailboxes/{user_id}/folders").json()["value"]
        return str(next(f["id"] for f in folders if f["wellKnownName"] == well_known))

    def messages(self, user_id: str, well_known: str, **params: Any) -> dict[str, Any]:
        folder = self.folder(user_id, well_known)
        r = self.get(f"/web/api/mailboxes/{user_id}/folders/{folder}/messages", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())


def graph(server: RunningServer, user: str = ADELE) -> httpx.Client:
    return server.client(server.token(user))


def user_id(server: RunningServer, user: str) -> str:
    with server.client(server.token(user, "User.Read Mail.ReadWrite Mail.Send")) as c:
        return str(c.get("/me").json()["id"])


def send(server: RunningServer, to: list[str], subject: str, **message: Any) -> None:
    body = {
        "subject": subject,
        "body": {"contentType": "html", "content": HOSTILE},
        "toRecipients": [{"emailAddress": {"address": a}} for a in to],
        **message,
    }
    with graph(server) as c:
        r = c.post("/me/sendMail", json={"message": body})
        assert r.status_code == 202, r.text


def assert_secure(r: httpx.Response, *, framed: bool = False) -> None:
    h = r.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == ("SAMEORIGIN" if framed else "DENY")
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp
    assert ("frame-ancestors 'self'" if framed else "frame-ancestors 'none'") in csp


# ------------------------------------------------------------------------------ signed in


def test_the_page_and_its_files_need_no_sign_in_but_the_data_does(web: RunningServer) -> None:
    anon = Page(web.base)
    r = anon.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/web/signin"
    assert_secure(r)
    for path in ("/web/api/session", "/web/api/mailboxes", "/web/api/queue"):
        r = anon.get(path)
        assert r.status_code == 401 and r.json()["error"]["code"] == "NotSignedIn"
        assert_secure(r)
    js = anon.get("/web/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "data-message-id" in js.text
    css = anon.get("/web/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert_secure(css)
    assert anon.get("/web/static/nothing.js").status_code == 404
    assert anon.get("/web/static/..%2F..%2Fsettings.py").status_code == 404
    form = anon.get("/web/signin")
    assert_secure(form)
    assert "script" not in form.text  # the sign-in form runs no script at all
    cookie = form.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie


def test_sign_in_with_a_wrong_password_or_a_forged_form_is_refused(web: RunningServer) -> None:
    page = Page(web.base)
    r = page.sign_in(ALEX, "not the password")
    assert r.status_code == 400 and 'id="signin-error"' in r.text
    assert "graphpost_web=" in r.headers["set-cookie"]
    assert page.get("/web/api/session").status_code == 401
    # no pre-session cookie or another site's form: 403, nobody signed in
    forged = httpx.post(
        f"{web.base}/web/signin",
        data={"csrf": "x", "username": ALEX, "password": PASSWORD},
        headers={"Origin": web.base},
    )
    assert forged.status_code == 403
    page.http.get("/web/signin")
    other_site = page.http.post(
        "/web/signin",
        data={"csrf": "x", "username": ALEX, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    # a tampered cookie is nobody's
    tampered = httpx.get(
        f"{web.base}/web/api/session", cookies={"graphpost_web": "eyJ1IjoiYSJ9.c2ln"}
    )
    assert tampered.status_code == 401


def test_a_user_sees_their_own_mailbox_and_nothing_of_anothers(web: RunningServer) -> None:
    adele_id, alex_id = user_id(web, ADELE), user_id(web, ALEX)
    subject = unique("private")
    # one message each way with an attachment and an inline image
    attachments = [
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "notes.txt",
         "contentBytes": base64.b64encode(b"secret notes").decode()},
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
         "contentType": "image/png", "isInline": True, "contentId": "logo@web",
         "contentBytes": base64.b64encode(PNG).decode()},
    ]  # fmt: skip
    send(web, [ALEX], subject, attachments=attachments)
    alex = Page(web.base)
    assert alex.sign_in(ALEX).status_code == 303
    session = alex.get("/web/api/session").json()
    assert session["user"]["id"] == alex_id and session["admin"] is False
    boxes = alex.get("/web/api/mailboxes").json()["value"]
    assert [u["id"] for t in boxes for u in t["users"]] == [alex_id]
    received = wait_for(
        lambda: [m for m in alex.messages(alex_id, "inbox")["value"] if m["subject"] == subject],
        what="the message in Alex's inbox",
    )[0]
    base = f"/web/api/mailboxes/{alex_id}/messages/{received['id']}"
    detail = alex.get(base).json()
    attachment = next(a for a in detail["attachments"] if a["name"] == "notes.txt")
    # Adele, signed in, asks for all of it by id: 404 every time, as for what does not exist
    adele = Page(web.base)
    adele.sign_in(ADELE)
    inbox = alex.folder(alex_id, "inbox")
    for path in (
        f"/web/api/mailboxes/{alex_id}/folders",
        f"/web/api/mailboxes/{alex_id}/folders/{inbox}/messages",
        f"/web/api/mailboxes/{alex_id}/search?q=private",
        f"/web/api/mailboxes/{alex_id}/events",
        base, f"{base}/body", f"{base}/raw", f"{base}/raw?download=1",
        f"{base}/attachments/{attachment['id']}",
        # Alex's message under Adele's own mailbox: not hers either
        f"/web/api/mailboxes/{adele_id}/messages/{received['id']}",
        f"/web/api/mailboxes/{adele_id}/messages/{received['id']}/raw",
        f"/web/api/mailboxes/{adele_id}/messages/{received['id']}/attachments/{attachment['id']}",
        f"/web/api/mailboxes/{adele_id}/folders/{inbox}/messages",
        f"/web/api/mailboxes/{ALEX}/folders",  # by address
    ):  # fmt: skip
        r = adele.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert subject not in r.text and "secret notes" not in r.text
    assert alex_id not in adele.get("/web/api/mailboxes").text
    # the webLink of Alex's message, opened by Adele: 404; by Alex: the page, that message open
    link = f"/owa/?ItemID={quote(received['id'])}"
    assert adele.get(link).status_code == 404
    opened = alex.get(link)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/#/{alex_id}/{quote(received['id'], safe='')}"


def test_an_admin_sees_every_mailbox(web: RunningServer) -> None:
    megan = Page(web.base)
    assert megan.sign_in(MEGAN).status_code == 303
    assert megan.get("/web/api/session").json()["admin"] is True
    users = [u["mail"] for t in megan.get("/web/api/mailboxes").json()["value"] for u in t["users"]]
    assert ADELE in users and ALEX in users and len(users) >= 20
    alex_id = user_id(web, ALEX)
    assert megan.get(f"/web/api/mailboxes/{alex_id}/folders").status_code == 200
    assert megan.get("/web/api/queue").json()["counts"] is not None


def test_message_list_pages_by_keyset_newest_first(web: RunningServer) -> None:
    adele_id = user_id(web, ADELE)
    folder_name = unique("paging")
    with graph(web) as c:
        folder = c.post("/me/mailFolders", json={"displayName": folder_name}).json()["id"]
        made = []
        for i in range(7):
            r = c.post(f"/me/mailFolders/{folder}/messages", json={"subject": f"{folder_name} {i}"})
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
    page = Page(web.base)
    page.sign_in(ADELE)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = page.get(f"/web/api/mailboxes/{adele_id}/folders/{folder}/messages", params=params)
        assert r.status_code == 200, r.text
        assert_secure(r)
        assert r.headers["content-type"].startswith("application/json")
        body = r.json()
        assert len(body["value"]) <= 3
        seen += [m["id"] for m in body["value"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(made) and len(set(seen)) == 7
    assert seen[0] == made[-1]  # the newest first
    # the folder as the page lists it: counts for the folder tree
    tree = page.get(f"/web/api/mailboxes/{adele_id}/folders").json()["value"]
    mine = next(f for f in tree if f["id"] == folder)
    assert mine["totalCount"] == 7 and mine["displayName"] == folder_name
    for bad in ("x", "1.2.3", "9" * 40, "s-1"):
        r = page.get(
            f"/web/api/mailboxes/{adele_id}/folders/{folder}/messages", params={"cursor": bad}
        )
        assert r.status_code == 400, (bad, r.text)
    for limit in ("0", "201", "-1", "a"):
        r = page.get(
            f"/web/api/mailboxes/{adele_id}/folders/{folder}/messages", params={"limit": limit}
        )
        assert r.status_code == 400
    assert page.get(f"/web/api/mailboxes/{adele_id}/folders/nope/messages").status_code == 404


def test_a_search_folder_lists_live_by_offset_pages(web: RunningServer) -> None:
    """A search folder has no index of its own: its pages are offsets (``s{skip}``)."""
    adele_id = user_id(web, ADELE)
    tag = unique("sf").replace("-", "")
    with graph(web) as c:
        source = c.post("/me/mailFolders", json={"displayName": unique("src")}).json()["id"]
        for i in range(3):
            c.post(f"/me/mailFolders/{source}/messages", json={"subject": f"{tag} {i}"})
        c.post(f"/me/mailFolders/{source}/messages", json={"subject": "other"})
        r = c.post(
            "/me/mailFolders/searchfolders/childFolders",
            json={
                "@odata.type": "#microsoft.graph.mailSearchFolder",
                "displayName": unique("sf"), "sourceFolderIds": [source],
                "filterQuery": f"startswith(subject, '{tag}')",
            },
        )  # fmt: skip
        assert r.status_code == 201, r.text
        search = r.json()["id"]
    page = Page(web.base)
    page.sign_in(ADELE)
    url = f"/web/api/mailboxes/{adele_id}/folders/{search}/messages"
    first = page.get(url, params={"limit": 2}).json()
    assert first["folder"]["isSearchFolder"] is True
    assert len(first["value"]) == 2 and first["nextCursor"] == "s2"
    rest = page.get(url, params={"limit": 2, "cursor": first["nextCursor"]}).json()
    assert len(rest["value"]) == 1 and rest["nextCursor"] is None
    subjects = {m["subject"] for m in first["value"] + rest["value"]}
    assert subjects == {f"{tag} {i}" for i in range(3)}


def test_message_view_body_attachments_raw_and_delivery(web: RunningServer, sink: Sink) -> None:
    adele_id = user_id(web, ADELE)
    subject = unique("view")
    external = f"{unique('x')}@example.net"
    attachments = [
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": '../../etc/pass"wd;.html',
         "contentType": "text/html", "contentBytes": base64.b64encode(SCRIPT).decode()},
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "logo.png",
         "contentType": "image/png", "isInline": True, "contentId": "logo@web",
         "contentBytes": base64.b64encode(PNG).decode()},
    ]  # fmt: skip
    send(web, [ALEX, external, "nobody-here@contoso.onmicrosoft.com"], subject,
         attachments=attachments)  # fmt: skip
    wait_for(lambda: sink.messages_for(external), what="the relayed copy")
    page = Page(web.base)
    page.sign_in(ADELE)

    def sent() -> dict[str, Any] | None:
        items = page.messages(adele_id, "sentitems")["value"]
        found = [m for m in items if m["subject"] == subject]
        return found[0] if found and found[0]["delivery"] == "failed" else None

    item = wait_for(sent, what="the sent message, one recipient failed")
    assert item["hasAttachments"] is True and item["from"]["address"] == ADELE
    base = f"/web/api/mailboxes/{adele_id}/messages/{item['id']}"
    detail = page.get(base).json()
    assert detail["subject"] == subject
    assert [r["address"] for r in detail["toRecipients"]][:2] == [ALEX, external]
    states = {r["recipient"]: r for r in detail["delivery"]["recipients"]}
    assert states[ALEX]["state"] == "delivered" and states[ALEX]["route"] == "local"
    assert states[external]["state"] == "delivered" and states[external]["route"] == "smtp"
    failed = states["nobody-here@contoso.onmicrosoft.com"]
    assert failed["state"] == "failed" and failed["history"]
    assert failed["history"][-1]["outcome"] == "failed"
    # the body: its own URL, no script, images only its own until asked
    body = page.get(detail["bodyUrl"])
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/html")
    assert_secure(body, framed=True)
    csp = body.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "sandbox" in csp.split(";")[-1]
    img = re.search(r"img-src ([^;]*)", csp)
    assert img is not None
    assert "https:" not in img.group(1) and "http:" not in img.group(1).split()[0]
    assert f"{web.base}{base}/cid/" in img.group(1)
    links = re.findall(r"src='(/web/api/[^']*/cid/[^']*)'", body.text)
    assert len(links) == 2, body.text  # as written and URL-encoded (RFC 2392)
    for link in links:
        image = httpx.get(web.base + link)  # no cookie: the signed link is the access
        assert image.status_code == 200 and image.content == PNG
        assert image.headers["content-type"] == "image/png"
        assert_secure(image)
    assert "https://tracker.example/t.png" in body.text  # left as is: the CSP blocks it
    forged = links[0].split("?t=")[0] + "?t=9999999999.AAAA"
    assert httpx.get(web.base + forged).status_code == 404
    remote = page.get(detail["bodyUrl"], params={"remote": "1"})
    assert "https:" in re.search(
        r"img-src ([^;]*)", remote.headers["content-security-policy"]
    ).group(1)  # type: ignore[union-attr]
    assert "script-src 'none'" in remote.headers["content-security-policy"]
    # an attachment: a download, whatever its type, under a safe name
    a = next(x for x in detail["attachments"] if not x["isInline"])
    download = page.get(a["url"])
    assert download.status_code == 200 and download.content == SCRIPT
    assert download.headers["content-type"] == "application/octet-stream"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment; ")
    assert "/" not in disposition.split("filename*=")[0] and "\r" not in disposition
    assert_secure(download)
    assert page.get(f"{base}/attachments/nope").status_code == 404
    # the raw MIME
    raw = page.get(detail["rawUrl"])
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/plain")
    assert f"Subject: {subject}" in raw.text and "sandbox" in raw.headers["content-security-policy"]
    eml = page.get(detail["rawUrl"], params={"download": "1"})
    assert eml.headers["content-type"] == "message/rfc822"
    assert eml.headers["content-disposition"].startswith("attachment;")
    # a message's id that is not one: 404, never 500
    for bad in ("x", "%00", "A" * 600, "..%2F.."):
        r = page.get(f"/web/api/mailboxes/{adele_id}/messages/{bad}")
        assert r.status_code in (400, 404), (bad, r.text)


def test_search_finds_messages_across_the_mailbox(web: RunningServer) -> None:
    adele_id = user_id(web, ADELE)
    word = unique("zebra").replace("-", "")
    with graph(web) as c:
        for folder in ("inbox", "drafts"):
            r = c.post(f"/me/mailFolders/{folder}/messages", json={"subject": f"find {word}"})
            assert r.status_code == 201
    page = Page(web.base)
    page.sign_in(ADELE)
    found = page.get(f"/web/api/mailboxes/{adele_id}/search", params={"q": word})
    assert found.status_code == 200, found.text
    assert len(found.json()["value"]) == 2
    assert page.get(f"/web/api/mailboxes/{adele_id}/search", params={"q": ""}).status_code == 400
    bad = page.get(f"/web/api/mailboxes/{adele_id}/search", params={"q": word, "skip": "x"})
    assert bad.status_code == 400
    odd = page.get(f"/web/api/mailboxes/{adele_id}/search", params={"q": '"\x01 (( OR'})
    assert odd.status_code in (200, 400)


def test_events_stream_a_change_when_mail_arrives(web: RunningServer) -> None:
    adele_id = user_id(web, ADELE)
    page = Page(web.base)
    page.sign_in(ADELE)
    lines: list[str] = []
    ready = threading.Event()
    changed = threading.Event()
    cookies = dict(page.http.cookies)

    def listen() -> None:
        with httpx.stream(
            "GET", f"{web.base}/web/api/mailboxes/{adele_id}/events", cookies=cookies, timeout=30
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-content-type-options"] == "nosniff"
            for line in r.iter_lines():
                lines.append(line)
                if line == "event: ready":
                    ready.set()
                if line == "event: change":
                    changed.set()
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(15), lines
    with graph(web) as c:
        assert c.post("/me/messages", json={"subject": unique("live")}).status_code == 201
    assert changed.wait(15), lines
    thread.join(5)


def test_event_streams_are_capped_per_client(web: RunningServer) -> None:
    adele_id = user_id(web, ADELE)
    page = Page(web.base)
    page.sign_in(ADELE)
    cookies = dict(page.http.cookies)
    url = f"{web.base}/web/api/mailboxes/{adele_id}/events"
    streams = []
    try:
        for _ in range(8):
            s = httpx.stream("GET", url, cookies=cookies, timeout=30)
            r = s.__enter__()
            streams.append(s)
            assert r.status_code == 200
        extra = httpx.get(url, cookies=cookies, timeout=10)
        assert extra.status_code == 429
    finally:
        for s in streams:
            s.__exit__(None, None, None)
    # the streams closed are counted off
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with httpx.stream("GET", url, cookies=cookies, timeout=10) as r:
            if r.status_code == 200:
                break
        time.sleep(0.5)
    else:
        raise AssertionError("closed streams were not counted off")


def test_state_changing_requests_need_the_csrf_token_and_our_origin(web: RunningServer) -> None:
    megan = Page(web.base)
    megan.sign_in(MEGAN)
    target = "/web/api/queue/999999999/retry"
    assert megan.post(target).status_code == 404  # token and origin right: on to the action
    cases = [
        {"X-CSRF-Token": "wrong"},
        {"X-CSRF-Token": ""},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ]
    for headers in cases:
        r = megan.post(target, headers=headers)
        assert r.status_code == 403, (headers, r.text)
    no_origin = megan.http.post(target, headers={"X-CSRF-Token": megan.csrf})
    assert no_origin.status_code == 403
    # a browser's form POST from a no-referrer page says Origin: null, and Sec-Fetch-Site
    for origin in ("null", None):
        headers = {"X-CSRF-Token": megan.csrf, "Sec-Fetch-Site": "same-origin"}
        if origin:
            headers["Origin"] = origin
        assert megan.http.post(target, headers=headers).status_code == 404
        headers["Sec-Fetch-Site"] = "same-site"
        assert megan.http.post(target, headers=headers).status_code == 403
    # GET is not an action; POST where only GET is: 405
    assert megan.get(target).status_code == 405
    assert megan.post("/web/api/mailboxes").status_code == 405
    # sign-out: with the token, the cookie is cleared
    assert megan.post("/web/signout", data={"csrf": "nope"}).status_code == 403
    out = megan.post("/web/signout", data={"csrf": megan.csrf})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
    assert megan.get("/web/api/session").status_code == 401


def test_the_graph_api_is_untouched_by_the_page(web: RunningServer) -> None:
    with graph(web) as c:
        assert c.get("/me/messages", params={"$top": 1}).status_code == 200
    assert httpx.get(f"{web.base}/.well-known/jwks.json").status_code == 200
    other = httpx.get(f"{web.base}/webhooks")  # not the page's (/web/…): Graph answers it
    assert other.status_code == 400 and "request-id" in other.headers


def test_a_session_from_one_server_is_not_accepted_by_another(
    web: RunningServer, tmp_path: Path
) -> None:
    """The cookie is signed with the data directory's key: another server's is nobody."""
    page = Page(web.base)
    page.sign_in(ADELE)
    value = page.http.cookies["graphpost_web"]
    assert httpx.get(f"{web.base}/web/api/session", cookies={"graphpost_web": value}).is_success
    body, mac = value.split(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    r = httpx.get(f"{web.base}/web/api/session", cookies={"graphpost_web": f"{flipped}.{mac}"})
    assert r.status_code == 401


# ------------------------------------------------------------------------------ emulator mode


def test_open_page_on_loopback_sees_everything_without_signing_in(open_page: RunningServer) -> None:
    page = Page(open_page.base)
    index = page.get("/")
    assert index.status_code == 200 and '<script src="/web/static/app.js"' in index.text
    assert_secure(index)
    csp = index.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    session = page.get("/web/api/session").json()
    assert session["open"] is True and session["admin"] is True and session["user"] is None
    users = [u["mail"] for t in page.get("/web/api/mailboxes").json()["value"] for u in t["users"]]
    assert ADELE in users and ALEX in users
    assert page.get("/web/signin").status_code == 303  # nothing to sign in to
    # no CORS for the page's endpoints, whatever GRAPHPOST_CORS_ORIGINS says (* by default)
    foreign = page.get("/web/api/session", headers={"Origin": "https://evil.example"})
    assert not [h for h in foreign.headers if h.startswith("access-control-")]


def test_queue_view_retry_now_and_delete(open_page: RunningServer, sink: Sink) -> None:
    page = Page(open_page.base)
    page.csrf = page.get("/web/api/session").json()["csrf"]
    slow = [f"{unique('slow')}@example.org" for _ in range(2)]
    for address in slow:
        sink.answer(address, "451 4.3.0 try again later", "451 4.3.0 try again later")
    send(open_page, slow, unique("queued"))

    def deferred() -> list[dict[str, Any]]:
        items = page.get("/web/api/queue", params={"state": "deferred"}).json()["value"]
        return [d for d in items if d["recipient"] in slow]

    entries = wait_for(lambda: len(deferred()) == 2 and deferred(), what="two deferred")
    first, second = entries
    assert first["lastCode"] == 451 and "try again later" in first["lastResponse"]
    assert first["history"][0]["code"] == 451
    counts = page.get("/web/api/queue").json()["counts"]
    assert counts["deferred"] >= 2
    # retry now: attempted again at once (the sink says 451 a second time)
    retried = page.post(f"/web/api/queue/{first['id']}/retry")
    assert retried.status_code == 200, retried.text
    wait_for(
        lambda: next(d for d in deferred() if d["id"] == first["id"])["attempts"] == 2,
        what="a second attempt",
    )
    # delete: out of the queue, failed, no second retry
    gone = page.post(f"/web/api/queue/{second['id']}/delete")
    assert gone.status_code == 200 and gone.json()["state"] == "failed"
    assert second["id"] not in [d["id"] for d in deferred()]
    again = page.post(f"/web/api/queue/{second['id']}/delete")
    assert again.status_code == 400
    # paging by cursor; bad filters
    one = page.get("/web/api/queue", params={"limit": 1}).json()
    assert len(one["value"]) == 1 and one["nextCursor"]
    assert page.get("/web/api/queue", params={"state": "bogus"}).status_code == 400
    assert page.get("/web/api/queue", params={"cursor": "-1"}).status_code == 400
    assert page.post("/web/api/queue/abc/retry").status_code == 404
    assert page.post(f"/web/api/queue/{first['id']}/explode").status_code == 404
    # the open page still needs the CSRF token and its Origin
    r = page.http.post(
        f"/web/api/queue/{first['id']}/retry",
        headers={"Origin": open_page.base, "X-CSRF-Token": "forged"},
    )
    assert r.status_code == 403


def test_web_ui_off_serves_no_page(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with engine_server(
        "sqlite", tmp_path / "off", request, relay=None, GRAPHPOST_WEB_UI="false"
    ) as off:
        for path in ("/", "/web/static/app.js", "/web/api/session", "/web/signin"):
            r = httpx.get(f"{off.base}{path}")  # Graph's answer to a path that is not its own
            assert r.status_code in (400, 404) and "request-id" in r.headers, (path, r.text)


def test_serve_stops_at_once_with_an_event_stream_open(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """uvicorn waits for open responses before it stops: the page's stream must end itself
    at SIGTERM, cleanly (its last chunk sent), not be cut by uvicorn's graceful timeout."""
    with engine_server(
        "sqlite", tmp_path / "stop", request, relay=None, GRAPHPOST_EMULATOR="true"
    ) as server:
        page = Page(server.base)
        adele = page.get("/web/api/mailboxes").json()["value"][0]["users"][0]["id"]
        seen: list[str] = []
        ended: list[BaseException | None] = []
        ready = threading.Event()

        def listen() -> None:
            try:
                with page.http.stream("GET", f"/web/api/mailboxes/{adele}/events") as r:
                    for line in r.iter_lines():
                        seen.append(line)
                        if line == "event: ready":
                            ready.set()
                ended.append(None)
            except BaseException as exc:  # the stream cut mid-response
                ended.append(exc)

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        assert ready.wait(15), seen
        server.process.terminate()
        server.process.wait(30)  # uvicorn re-raises the SIGTERM once it has shut down
        thread.join(10)
        assert ended == [None], ended  # the stream ended with its last chunk


# ------------------------------------------------------------------------------ attacks


def _no_500(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.request.url, r.status_code, r.text)


def test_numbers_that_are_not_ascii_digits_or_too_long_are_400(web: RunningServer) -> None:
    page = Page(web.base)
    assert page.sign_in(ADELE).status_code == 303
    me = user_id(web, ADELE)
    inbox = page.folder(me, "inbox")
    listing = f"/web/api/mailboxes/{me}/folders/{inbox}/messages"
    for bad in ("\u00b2", "\u0661", "9" * 5000, "9" * 19, "1." + "9" * 19, "-1", "1e3", " 5"):
        for path, params in (
            (listing, {"limit": bad}),
            (listing, {"cursor": bad}),
            (f"/web/api/mailboxes/{me}/search", {"q": "x", "limit": bad}),
            (f"/web/api/mailboxes/{me}/search", {"q": "x", "skip": bad}),
            ("/web/api/queue", {"cursor": bad}),
            ("/web/api/queue", {"limit": bad}),
        ):
            r = page.get(path, params=params)
            _no_500(r)
            assert r.status_code == 400, (path, params, r.text)
            assert r.json()["error"]["code"] == "BadRequest"
    assert page.get(listing, params={"limit": "0"}).status_code == 400
    assert page.get(listing, params={"cursor": "1." + "9" * 19}).status_code == 400
    for seq in ("\u00b2", "\u0661", "9" * 30, "9" * 19):
        r = page.post(f"/web/api/queue/{seq}/retry")
        _no_500(r)
        assert r.status_code == 404, r.text


def test_cookies_and_signed_links_with_non_ascii_are_refused_not_500(web: RunningServer) -> None:
    page = Page(web.base)
    assert page.sign_in(ALEX).status_code == 303
    me = user_id(web, ALEX)
    for value in ("a.\u00e9", "\u00e9.\u00e9", "a.b.c", "", "."):
        r = httpx.get(
            f"{web.base}/web/api/session",
            headers={b"cookie": f"graphpost_web={value}".encode()},
        )
        _no_500(r)
        assert r.status_code == 401, r.text
    cid = f"/web/api/mailboxes/{me}/messages/AAAA/cid/logo"
    for token in (
        "\u00b2.x",
        "1.\u00e9",
        "\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661.x",
        "9" * 5000 + ".x",
    ):
        r = page.get(cid, params={"t": token})
        _no_500(r)
        assert r.status_code == 404, r.text


def test_sign_in_with_a_nul_or_control_character_shows_the_form_again(web: RunningServer) -> None:
    """Both engines answer the same: the form with its error, not a JSON error about the
    store (PostgreSQL cannot hold U+0000)."""
    for username, password in (("a\x00b", "x"), (ALEX, "a\x00b"), ("a\x01\r\nb", "x")):
        r = Page(web.base).sign_in(username, password)
        _no_500(r)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("text/html") and 'id="signin-error"' in r.text


def test_open_page_is_not_open_to_a_rebound_host_name(open_page: RunningServer) -> None:
    """DNS rebinding: a hostile site whose name resolves to 127.0.0.1 after the page loaded
    reaches the server from loopback, with its own name in Host (and as Origin, which then
    "matches"). The open page answers only names that are loopback's or no site's; the
    rebound one must sign in."""
    port = open_page.base.rsplit(":", 1)[1]
    for host in ("evil.example", "127.0.0.1.nip.io", "localhost.evil.example"):
        rebound = httpx.Client(
            base_url=open_page.base, headers={"host": f"{host}:{port}"}, timeout=30
        )
        r = rebound.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/web/signin", (host, r.text)
        r = rebound.get("/web/api/session")
        assert r.status_code == 401 and r.json()["error"]["code"] == "NotSignedIn", host
        r = rebound.get("/web/api/mailboxes", headers={"origin": f"http://{host}:{port}"})
        assert r.status_code == 401, host
    for host in ("127.0.0.1", "localhost", "app.localhost", "[::1]", "graphpost"):
        r = httpx.get(f"{open_page.base}/web/api/session", headers={"host": f"{host}:{port}"})
        assert r.status_code == 200 and r.json()["open"] is True, (host, r.text)
