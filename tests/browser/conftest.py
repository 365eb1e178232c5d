"""Real browser tests of the mailbox web page: Playwright driving Debian's Chromium
(``apt-get install chromium``; never ``playwright install``), headless.

Where Chromium (or the playwright package) is missing the tests skip with a message that
says how to get it; under CI=true that is a failure instead (``.ci/run`` installs it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, RunningServer, start_server
from tests.sink import Sink

CHROMIUM = Path(os.environ.get("GRAPHPOST_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--no-sandbox", "--disable-gpu"]

try:
    from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
except ImportError as exc:  # the dev dependencies are not installed
    _missing: str | None = f"the playwright package is not installed ({exc}): make test installs it"
else:
    _missing = None


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true needs the browser tests to run: {why}")
    pytest.skip(f"browser tests skipped: {why}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, headless, for the module: a running Playwright holds an event loop in this
    thread, and another module's asyncio.run beside it would fail."""
    if _missing is not None:
        _unavailable(_missing)
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    ctx.set_default_timeout(20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="module")
def relay() -> Iterator[Sink]:
    """The SMTP relay the web server sends external mail to (answers per recipient)."""
    sink = Sink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, relay: Sink) -> Iterator[RunningServer]:
    """`graphpost serve` in emulator mode (the page open on loopback) on SQLite, relaying to
    ``relay``; a deferred delivery waits an hour unless retried."""
    server = start_server(
        tmp_path_factory.mktemp("web"), relay=relay.url, GRAPHPOST_EMULATOR="true",
        GRAPHPOST_RETRY_BASE_SECONDS="3600", GRAPHPOST_RETRY_MAX_SECONDS="3600",
        GRAPHPOST_RETRY_WINDOW_SECONDS="86400",
    )  # fmt: skip
    yield server
    server.stop()
