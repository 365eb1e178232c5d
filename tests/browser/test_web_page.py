"""The mailbox web page in a real browser (Chromium through Playwright) against a running
`graphpost serve` in emulator mode: mail sent through the Graph API appears live, a hostile
HTML body runs no script and loads nothing remote until asked, an attachment downloads as it
was sent, and a deferred delivery is retried (and another deleted) from the queue view.

With GRAPHPOST_SCREENSHOT=docs/screenshot.png the last test saves the README's picture."""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, ROOT, RunningServer

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the dev dependencies are not installed (conftest.py says how)
    if IN_CI:
        raise
    pytest.skip("browser tests skipped: the playwright package is missing", allow_module_level=True)
from tests.mail_api import ADELE, ALEX, MEGAN, status_of, unique
from tests.sink import Sink, wait_for

# a 1 by 1 transparent PNG
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


class Recorder:
    """A loopback HTTP server that records every request a body makes it (and answers with
    an image), standing in for a tracker on the internet."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(PIXEL)))
                self.end_headers()
                self.wfile.write(PIXEL)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as running:
        yield running


def send(
    server: RunningServer, subject: str, to: str, *, html: str | None = None,
    attachments: list[dict[str, Any]] | None = None, sender: str = ADELE,
) -> str:  # fmt: skip
    """sendMail from ``sender`` through the Graph API; the Sent Items copy's id."""
    message: dict[str, Any] = {
        "subject": subject,
        "toRecipients": [{"emailAddress": {"address": to}}],
        "body": {"contentType": "html", "content": html}
        if html is not None
        else {"contentType": "text", "content": f"About {subject}."},
    }
    if attachments:
        message["attachments"] = attachments
    with server.client(server.token(sender)) as c:
        r = c.post("/me/sendMail", json={"message": message})
    assert r.status_code == 202, r.text
    return r.headers["location"].split("'")[3]


def open_mailbox(page: Page, server: RunningServer, mail: str = ADELE) -> None:
    """The page, Adele's mailbox open on its Inbox, the event stream connected."""
    page.goto(server.base + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.locator(f'a.mailbox[data-mail="{mail}" i]').click()
    expect(page.locator('a.folder.selected[data-well-known="inbox"]')).to_have_count(1)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")


def row(page: Page, subject: str) -> Any:
    return page.locator("#message-list tr.message", has_text=subject)


def hostile_body(base: str) -> str:
    """Every way a body could run script or reach the network without being asked; each
    would leave a distinct path at the recorder, or set a marker on the page."""
    return f"""<html><head>
<meta http-equiv="refresh" content="0;url={base}/refresh">
<link rel="stylesheet" href="{base}/stylesheet">
<script src="{base}/script-src"></script>
<base href="{base}/base/">
</head><body onload="fetch('{base}/onload')">
<p id="hello">Hello from a hostile message.</p>
<script>
  fetch('{base}/inline-script');
  try {{ parent.document.body.dataset.pwned = 'yes'; }} catch (e) {{}}
  document.body.dataset.pwned = 'yes';
</script>
<img id="tracker" src="{base}/remote-image.png" alt="tracker" width="10" height="10">
<img src="nowhere:x" onerror="fetch('{base}/onerror')">
<svg onload="fetch('{base}/svg-onload')"><circle r="1"/></svg>
<a id="js-link" href="javascript:fetch('{base}/javascript-url')">click me</a>
<iframe src="javascript:fetch('{base}/iframe-javascript')"></iframe>
<object data="{base}/object"></object>
<form action="{base}/form" method="post"><button id="form-button">go</button></form>
<div style="background:url({base}/css-background)">styled</div>
</body></html>"""


def test_new_mail_appears_live_and_a_hostile_body_is_inert(
    page: Page, web: RunningServer, recorder: Recorder
) -> None:
    open_mailbox(page, web)
    page.evaluate("window.__sameDocument = true")
    subject = unique("hostile")
    send(web, subject, ADELE, html=hostile_body(recorder.base))

    # it arrives in the Inbox through the event stream, without a reload
    expect(row(page, subject)).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True
    row(page, subject).click()
    expect(page.locator("#message-subject")).to_have_text(subject)
    page.wait_for_timeout(1500)  # time for anything that would run to reach the recorder
    assert recorder.hits == [], "the body reached the network on its own"
    body = page.frame_locator("iframe#message-body")
    expect(body.locator("#hello")).to_have_text("Hello from a hostile message.")
    body.locator("#js-link").click()
    body.locator("#form-button").click()
    page.wait_for_timeout(1000)
    assert recorder.hits == [], "a click in the body reached the network"
    assert page.locator("body").get_attribute("data-pwned") is None
    frame = page.frame_locator("iframe#message-body")
    assert frame.locator("body").get_attribute("data-pwned") is None, "a script ran"
    assert page.locator("iframe#message-body").get_attribute("sandbox") == ""

    # the reader asks for remote content: the image loads, and still no script runs
    expect(page.locator("#load-remote")).to_be_visible()
    page.locator("#load-remote").click()
    expect(page.locator("#load-remote")).to_have_attribute("data-loaded", "true")
    wait_for(lambda: "/remote-image.png" in recorder.hits, what="the remote image's request")
    page.wait_for_timeout(1000)
    scripted = {"/inline-script", "/script-src", "/onload", "/onerror", "/svg-onload",
                "/javascript-url", "/iframe-javascript", "/form"}  # fmt: skip
    assert scripted.isdisjoint(recorder.hits), recorder.hits
    assert frame.locator("body").get_attribute("data-pwned") is None


def test_an_attachment_downloads_as_it_was_sent(page: Page, web: RunningServer) -> None:
    content = bytes(range(256)) * 40 + "naïve\r\n".encode()
    subject = unique("attached")
    send(web, subject, ADELE, attachments=[{
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "report 2026.bin",
        "contentType": "application/octet-stream",
        "contentBytes": base64.b64encode(content).decode(),
    }])  # fmt: skip
    open_mailbox(page, web)
    expect(row(page, subject)).to_have_attribute("data-has-attachments", "true")
    row(page, subject).click()
    link = page.locator("#attachments a.attachment", has_text="report 2026.bin")
    with page.expect_download() as caught:
        link.click()
    download = caught.value
    assert download.suggested_filename == "report 2026.bin"
    assert Path(download.path()).read_bytes() == content


def test_a_deferred_delivery_is_retried_from_the_queue_view_and_another_deleted(
    page: Page, web: RunningServer, relay: Sink
) -> None:
    later = f"{unique('later')}@example.net"
    doomed = f"{unique('doomed')}@example.net"
    relay.answer(later, "451 4.7.1 greylisted, come back later")
    relay.answer(doomed, "452 4.2.2 mailbox full")
    retried_subject = unique("retried")
    retried = send(web, retried_subject, later)
    deleted = send(web, unique("deleted"), doomed)
    for sent in (retried, deleted):
        wait_for(lambda s=sent: status_of(web, s)["status"] == "deferred")  # type: ignore[misc]

    open_mailbox(page, web)
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this delivery?"
    page.locator("#queue-tab").click()
    page.locator('.queue-state[data-state="deferred"]').click()
    mine = page.locator("#queue-list tr.queued-delivery", has_text=later)
    expect(mine).to_have_attribute("data-state", "deferred")
    expect(mine).to_contain_text("451")
    mine.locator("button.retry").click()
    wait_for(lambda: relay.messages_for(later), what="the retried message at the relay")
    wait_for(lambda: status_of(web, retried)["status"] == "delivered")
    page.locator('.queue-state[data-state="deferred"]').click()
    expect(mine).to_have_count(0)
    page.locator('a.folder[data-well-known="sentitems"]').click()
    expect(row(page, retried_subject)).to_have_attribute("data-delivery-state", "delivered")
    row(page, retried_subject).click()
    recipient = page.locator(f'#delivery-table tr.recipient[data-recipient="{later}"]')
    expect(recipient).to_have_attribute("data-state", "delivered")
    page.locator("#queue-tab").click()
    page.locator('.queue-state[data-state="deferred"]').click()

    gone = page.locator("#queue-list tr.queued-delivery", has_text=doomed)
    expect(gone).to_contain_text("452")
    gone.locator("button.delete").click()
    expect(gone).to_have_count(0)
    page.locator('.queue-state[data-state="failed"]').click()
    expect(gone).to_have_attribute("data-state", "failed")
    expect(gone).to_contain_text("deleted from the queue by an operator")
    (rcpt,) = status_of(web, deleted)["recipients"]
    assert rcpt["status"] == "failed"
    assert relay.messages_for(doomed) == []


def test_a_real_mailbox_and_the_readme_screenshot(
    page: Page, web: RunningServer, relay: Sink
) -> None:
    """Megan's mailbox with several messages, one with an attachment, one bounced: each
    shows its marks. Saved as the README's picture when GRAPHPOST_SCREENSHOT names a file."""
    bounced_to = "board@example.net"
    relay.answer(bounced_to, "550 5.1.1 <board@example.net>: no such user here")
    bounced = send(web, "Quarterly numbers for the board", bounced_to, sender=MEGAN)
    send(web, "Your order has shipped", MEGAN, sender=ADELE,
         html="<p>Tracking number <a href='https://example.com'>1Z999AA1</a>.</p>")  # fmt: skip
    send(web, "Lunch on Friday?", MEGAN, sender=ADELE,
         html="<p>Shall we try the <b>new place</b> on the corner?</p>")  # fmt: skip
    send(web, "Design review notes", MEGAN, sender=ALEX, html=(
        "<h3>Design review</h3><p>Thanks all. The notes from today:</p><ul>"
        "<li>The mailbox page ships this week.</li><li>Queue view: retry and delete.</li>"
        "<li>Remote images stay blocked until asked.</li></ul><p>Alex</p>"),
        attachments=[{"@odata.type": "#microsoft.graph.fileAttachment",
                      "name": "review-notes.pdf", "contentType": "application/pdf",
                      "contentBytes": base64.b64encode(b"%PDF-1.4 notes").decode()}])  # fmt: skip
    wait_for(lambda: status_of(web, bounced, MEGAN)["status"] == "failed", what="the bounce")

    page.set_viewport_size({"width": 1600, "height": 820})
    open_mailbox(page, web, MEGAN)
    expect(row(page, "Undeliverable: Quarterly numbers for the board")).to_have_count(1)
    expect(row(page, "Design review notes")).to_have_attribute("data-has-attachments", "true")
    page.locator('a.folder[data-well-known="sentitems"]').click()
    expect(row(page, "Quarterly numbers for the board")).to_have_attribute(
        "data-delivery-state", "failed"
    )
    page.locator('a.folder[data-well-known="inbox"]').click()
    row(page, "Design review notes").click()
    expect(page.frame_locator("iframe#message-body").locator("h3")).to_have_text("Design review")
    expect(page.locator("#attachments a.attachment")).to_have_text("review-notes.pdf")
    target = os.environ.get("GRAPHPOST_SCREENSHOT")
    if target:
        path = Path(target) if Path(target).is_absolute() else ROOT / target
        page.screenshot(path=str(path))
