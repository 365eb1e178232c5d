"""Unit regressions from a hostile pass (issue 7 follow-up): what `mime.parse` and the relay
transport must survive. Each test is named after what it protects; the e2e reproductions are
in tests/e2e/test_attack_regressions.py."""

from __future__ import annotations

import pytest

from graphpost.delivery.transport import reply
from graphpost.domain import mime
from tests.delivery_checks import nested_multipart

HEAD = b"From: someone@example.org\r\nTo: adele@example.com\r\n"


def _nested_message(depth: int) -> bytes:
    inner = b"Subject: innermost\r\n\r\nbody"
    for _ in range(depth):
        inner = b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner
    return HEAD + b"Subject: outer\r\n" + inner


UNREADABLE = {
    # parsedate_to_datetime: OverflowError (mime.parse catches TypeError/ValueError/IndexError)
    "date-year-overflow": HEAD + b"Subject: s\r\nDate: 1 Jan 9999999999 00:00:00 +0000\r\n\r\nx",
    # the header registry's address parser recurses per comment level
    "from-nested-comments": b"From: " + b"(" * 3000 + b"a@b.example\r\nSubject: s\r\n\r\nx",
    "content-type-nested-comments": HEAD + b"Subject: s\r\nContent-Type: text/plain" + b"(" * 3000
    + b"\r\n\r\nx",
    "multipart-1500-deep": HEAD + b"Subject: s\r\n" + nested_multipart(1500),
    "message-rfc822-2000-deep": _nested_message(2000),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_parse_reads_every_message_without_raising(kind: str) -> None:
    """Found: each of these raises (OverflowError, RecursionError) out of mime.parse, so
    inbound SMTP answers 451 forever and a local delivery of such an attachment never ends
    but in a report. A message must parse to what can be read of it."""
    parsed = mime.parse(UNREADABLE[kind])
    assert parsed.subject is not None or kind.startswith("from")


@pytest.mark.parametrize(
    "text",
    [
        "queued as \udcff\udcfe ok",  # aiosmtplib's surrogate escapes for bytes not UTF-8
        "queued \x00 as 12",  # a NUL, which PostgreSQL cannot store
        "Benutzer unbekannt: \udcfc\udce4\udcf6",
    ],
)
def test_relay_reply_text_is_storable(text: str) -> None:
    """Found: a relay's reply text with bytes that are not UTF-8 reaches the store as lone
    surrogates (and a NUL as is); recording the outcome then fails on both engines and the
    message is sent again on every lease expiry. The reply's text must be storable text."""
    r = reply(250, text)
    r.text.encode("utf-8")  # no lone surrogate
    assert "\x00" not in r.text
