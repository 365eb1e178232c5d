"""A non-delivery report is built whatever the original said (issue: a subject with a line
break made building the report fail, and the failed submission was sent again and again)."""

from __future__ import annotations

import random

import pytest

from graphpost.delivery import reports
from graphpost.domain import mime
from graphpost.domain.text import one_line, storable

NASTY = [
    "\r", "\n", "\r\n", "\u2028", "\u2029", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\x7f",
    "\ud800", "\udcff", "é", "漢", "😀", ":", "<", ">", '"', "\\", "=?utf-8?q?x?=", " ", "\t",
]  # fmt: skip


def report(subject: str, *, address: str = "x@example.net", response: str = "no such user",
           name: str = "Adele", sender: str = "adelev@contoso.com") -> bytes:  # fmt: skip
    return reports.non_delivery_report(
        original_mime=b"Subject: hi\r\n\r\nbody\xff\x00",
        original_subject=subject,
        sender=sender,
        sender_name=name,
        failures=[reports.Failure(address, 550, "5.1.1", response)],
        now=0,
    )


@pytest.mark.parametrize("breaker", ["\r\n", "\n", "\r", "\u2028", "\u2029", "\x85", "\x0b"])
def test_report_survives_a_line_break_in_the_subject(breaker: str) -> None:
    raw = report(f"Quarterly{breaker}Bcc: victim@example.com")
    parsed = mime.parse(raw)
    assert parsed.subject == "Undeliverable: Quarterly Bcc: victim@example.com"
    assert not any(h.name.lower() == "bcc" for h in parsed.headers)


def test_report_survives_any_mix_of_nasty_text() -> None:
    rng = random.Random(7)
    for _ in range(400):
        parts = [rng.choice(NASTY) + rng.choice("ab ") for _ in range(rng.randint(0, 40))]
        text = "".join(parts)
        raw = report(text, address=text or "x", response=text, name=text)
        assert raw.isascii() or b"\r\n\r\n" in raw
        parsed = mime.parse(raw)
        assert (parsed.subject or "").startswith("Undeliverable:")
        for value in (parsed.subject or "", parsed.body):
            value.encode("utf-8")
            assert "\x00" not in value


def test_report_for_a_sender_the_header_parser_refuses_is_plain_ascii() -> None:
    raw = report("hi", sender="bad local@contoso.com", name="\ud800")
    assert raw.isascii() and b'charset="us-ascii"' in raw  # the hand-written fallback
    parsed = mime.parse(raw)
    assert parsed.subject == "Undeliverable: hi"
    assert "x@example.net" in parsed.body


def test_storable_and_one_line() -> None:
    assert storable("ok") == "ok"
    assert storable("a\x00b") == "a\ufffdb"
    assert storable("a\udcffb") == "a\ufffdb"
    assert "\ud800" not in storable("a\ud800b")
    storable("a\ud800b").encode("utf-8")
    assert one_line("a\r\nb\u2028c\x00d") == "a b c\ufffdd"


def test_received_headers_are_decoded_in_one_pass() -> None:
    """Encoded words, raw UTF-8 and a comma inside an encoded display name; and a header block
    of hundreds of long names (the header registry's parser took ~1 s on 170 KB of them)."""
    raw = (
        "From: Bø <bøb@example.com>\r\n"
        'To: =?utf-8?q?Vance=2C_Adele?= <adele@x.com>, "Smith, J" <j@x.com>, zoë@contoso.com\r\n'
        "Subject: =?utf-8?q?h=C3=A9llo?= =?utf-8?b?IHfDtnJsZA==?= and w\u00f6rld "
        "=?x-unknown?q?a?=\r\n\r\nhi\r\n"
    ).encode()
    parsed = mime.parse(raw)
    assert parsed.from_ is not None and parsed.from_.address == "bøb@example.com"
    assert [(a.name, a.address) for a in parsed.to] == [
        ("Vance, Adele", "adele@x.com"), ("Smith, J", "j@x.com"),
        ("zoë@contoso.com", "zoë@contoso.com"),
    ]  # fmt: skip
    assert parsed.subject == "héllo wörld and wörld a"
    names = ", ".join(f'"Name {i}, {"Ab " * 60}" <x{i}@example.com>' for i in range(500))
    many = mime.parse(f"To: {names}\r\nSubject: x\r\n\r\nbody".encode())
    assert len(many.to) == 500 and many.to[499].address == "x499@example.com"
