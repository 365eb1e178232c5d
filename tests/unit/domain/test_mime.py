from __future__ import annotations

from email import policy
from email.parser import BytesParser, Parser

import msgspec
import pytest

from graphpost.delivery import reports
from graphpost.domain import compose, mime
from graphpost.domain.message import (
    Attachment,
    EmailAddress,
    Header,
)
from graphpost.errors import InvalidRecipientsError
from tests.unit.domain.drafts import draft


def test_build_then_parse_round_trip() -> None:
    msg = draft(
        subject="Grüße", body={"contentType": "html", "content": "<p>Hi <b>you</b></p>"},
        toRecipients=[{"emailAddress": {"address": "b@example.net", "name": "Bé"}}],
        bccRecipients=[{"emailAddress": {"address": "hidden@example.net"}}],
        importance="high",
    )  # fmt: skip
    att = Attachment(id="a", name="r.pdf", content_type="application/pdf", size=3,
                     is_inline=False, content_id=None, last_modified_date_time="",
                     content=b"pdf")  # fmt: skip
    headers = [Header("X-A", "1"), Header("In-Reply-To", "<p@x>")]
    raw = mime.build(msg, headers=headers, attachments=[att], date=1_700_000_000)
    assert b"hidden@example.net" not in raw and b"\r\n" in raw
    em = BytesParser(policy=policy.default).parsebytes(raw)
    assert em["Subject"] == "Grüße" and em["Importance"] == "high"
    assert em["In-Reply-To"] == "<p@x>" and em["X-A"] == "1"
    back = mime.parse(raw)
    assert back.subject == "Grüße" and back.importance == "high"
    assert back.from_ == EmailAddress("Adele Vance", "adele@contoso.com")
    assert back.to == [EmailAddress("Bé", "b@example.net")]
    assert back.body_type == "html" and "<b>you</b>" in back.body
    assert back.thread_index == msg.conversation_index
    assert back.date == 1_700_000_000
    assert [(a[0], a[2]) for a in back.attachments] == [("r.pdf", b"pdf")]


def test_parse_tolerates_junk() -> None:
    p = mime.parse(b"no headers at all")
    assert p.subject is None and p.from_ is None
    p = mime.parse(b"Subject: =?bogus?Q?x?=\r\nDate: not a date\r\nFrom: <<>>\r\n\r\nbody")
    assert p.date is None and p.body.strip() == "body"


def test_reply_composition() -> None:
    original = draft(subject="Plan", toRecipients=[{"emailAddress": {"address": "me@contoso.com"}}],
                     ccRecipients=[{"emailAddress": {"address": "c@example.net"}}])  # fmt: skip
    req = compose.ReplyRequest("replyall", "ok", None, None)
    inp = compose.response_input(original, req, owner="me@contoso.com")
    assert inp.subject == "RE: Plan"
    assert isinstance(inp.to_recipients, list) and isinstance(inp.cc_recipients, list)
    assert [r.email_address.address for r in inp.to_recipients if r.email_address] == [
        "adele@contoso.com"
    ]
    assert [r.email_address.address for r in inp.cc_recipients if r.email_address] == [
        "c@example.net"
    ]
    forward = compose.ReplyRequest("forward", None, None, [])
    assert compose.response_input(original, forward, owner="me@contoso.com").subject == "FW: Plan"
    again = draft(subject="RE: Plan")
    reply = compose.ReplyRequest("reply", None, None, None)
    assert compose.response_input(again, reply, owner="x@y.z").subject == "RE: Plan"


def test_non_delivery_report() -> None:
    raw = reports.non_delivery_report(
        original_mime=b"Subject: hi\r\n\r\nbody", original_subject="hi", sender="a@contoso.com",
        sender_name="A", failures=[reports.Failure("x@y.z", 550, "5.1.1", "no such user")], now=0,
    )  # fmt: skip
    parsed = mime.parse(raw)
    assert parsed.subject == "Undeliverable: hi"
    assert "5.1.1" in parsed.body and "x@y.z" in parsed.body
    assert [a[1] for a in parsed.attachments] == ["message/rfc822"]


def test_no_header_injection_and_encoded_names() -> None:
    msg = draft(
        subject="Hi\r\nBcc: victim@example.com",
        toRecipients=[{"emailAddress": {"address": "b@example.net", "name": "Évé\r\nX-Evil: 1"}}],
    )
    att = Attachment(id="a", name="résumé.pdf", content_type="application/pdf", size=1,
                     is_inline=False, content_id=None, last_modified_date_time="",
                     content=b"x")  # fmt: skip
    raw = mime.build(msg, headers=[], attachments=[att], date=0)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head and b"\r\nX-Evil" not in raw
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()
    em = BytesParser(policy=policy.default).parsebytes(raw)
    assert em["To"].addresses[0].display_name.startswith("Évé")
    assert [p.get_filename() for p in em.iter_attachments()] == ["résumé.pdf"]
    bad = draft(toRecipients=[{"emailAddress": {"address": "not an address"}}])
    with pytest.raises(InvalidRecipientsError):
        mime.build(bad, headers=[], attachments=[], date=0)


HOSTILE = ["\r\nX-Evil: 1", "\rX-Evil: 1", "\nX-Evil: 1", "\x00X-Evil: 1", "\u2028X-Evil: 1",
           "\x85X-Evil: 1", "\x0bX-Evil: 1", "\ud800X-Evil: 1"]  # fmt: skip


def _lines_starting_evil(raw: bytes) -> list[bytes]:
    return [line for line in raw.split(b"\r\n") if line.lower().startswith(b"x-evil")]


@pytest.mark.parametrize("junk", HOSTILE)
def test_writer_cannot_emit_injected_part_headers(junk: str) -> None:
    """Defence in depth: whatever reached the writer, no value starts a header or a body."""
    msg = draft(
        subject=f"s{junk}", body={"contentType": "html", "content": "<img src='cid:c1'>"},
        toRecipients=[{"emailAddress": {"address": "b@example.net", "name": f"B{junk}"}}],
    )  # fmt: skip
    msg = msgspec.structs.replace(msg, internet_message_id=f"<id@x>{junk}")
    parts = [
        Attachment(id="a", name=f"a{junk}.txt", content_type=f"text/plain{junk}", size=1,
                   is_inline=False, content_id=None, last_modified_date_time="", content=b"x"),
        Attachment(id="b", name="i.png", content_type=f"image/png; x=1{junk}", size=1,
                   is_inline=True, content_id=f"c1>{junk}", last_modified_date_time="",
                   content=b"x"),
        Attachment(id="c", name="m.eml", content_type=f"message/rfc822{junk}", size=1,
                   is_inline=False, content_id=None, last_modified_date_time="", content=b"x"),
    ]  # fmt: skip
    headers = [Header("X-Ok", f"v{junk}"), Header(f"X-Bad{junk}", "v"), Header("X-Sp ace", "v"),
               Header("References", f"<r@x>{junk}")]  # fmt: skip
    raw = mime.build(msg, headers=headers, attachments=parts, date=0)
    assert _lines_starting_evil(raw) == []
    assert b"X-Bad" not in raw and b"X-Sp ace" not in raw
    assert raw.isascii()
    em = BytesParser(policy=policy.default).parsebytes(raw)
    types = [p.get_content_type() for p in em.walk() if not p.is_multipart()]
    # a content type that is not type/subtype goes out as a byte stream, never as written
    assert types == ["text/plain", "text/html", "image/png", "application/octet-stream",
                     "application/octet-stream"]  # fmt: skip
    assert em["X-Ok"].startswith("v")


def test_smtputf8_addresses_are_written_as_utf8() -> None:
    msg = draft(toRecipients=[{"emailAddress": {"address": "bøb@exämple.com", "name": "Bøb"}}])
    raw = mime.build(msg, headers=[], attachments=[], date=0)
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    assert "<bøb@exämple.com>" in head
    em = Parser(policy=policy.default).parsestr(raw.decode("utf-8"))
    assert em["To"].addresses[0].addr_spec == "bøb@exämple.com"


@pytest.mark.parametrize(
    "address", ["a\x00b@example.com", "bad <x@y>", "a b@example.com", "a\u2028@example.com"]
)
def test_writer_refuses_addresses_the_validator_refuses(address: str) -> None:
    bad = draft(toRecipients=[{"emailAddress": {"address": address}}])
    with pytest.raises(InvalidRecipientsError):
        mime.build(bad, headers=[], attachments=[], date=0)


def test_an_oversized_structure_header_keeps_its_first_parameters() -> None:
    params = b"".join(b";\r\n p%d=v" % i for i in range(20000))
    raw = b"From: a@example.org\r\nSubject: s\r\nContent-Type: text/plain; charset=utf-8" + params
    parsed = mime.parse(raw + b"\r\n\r\nbody\r\n")
    assert parsed.subject == "s" and parsed.body.strip() == "body"
    assert parsed.body_type == "text"
    content_type = next(h.value for h in parsed.headers if h.name == "Content-Type")
    assert content_type.startswith("text/plain; charset=utf-8; p0=v") and len(content_type) < 4096


def test_an_attached_message_with_an_oversized_structure_header_is_read_quickly() -> None:
    params = b"".join(b";\r\n p%d=v" % i for i in range(20000))
    inner = b"From: a@example.org\r\nSubject: inner\r\nContent-Type: text/plain" + params
    raw = (
        b"From: b@example.org\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
        b"\r\nhello\r\n--b\r\nContent-Type: message/rfc822\r\n"
        b"Content-Disposition: attachment\r\n\r\n" + inner + b"\r\n\r\nbody\r\n--b--\r\n"
    )
    parsed = mime.parse(raw)
    assert parsed.subject == "outer" and parsed.body.strip() == "hello"
    [(_, ctype, data, _, _)] = parsed.attachments
    assert ctype == "message/rfc822" and isinstance(data, mime.Parsed)
    assert data.subject == "inner" and data.body.startswith("body")


def test_item_and_reference_parts() -> None:
    from graphpost.domain import message

    to = [{"emailAddress": {"address": "t@example.net"}}]
    item = message.attachment_input(
        {"@odata.type": "#microsoft.graph.itemAttachment", "name": "fwd",
         "item": {"@odata.type": "#microsoft.graph.message", "subject": "a\r\nBcc: x@y.z",
                  "toRecipients": to}}, 0)  # fmt: skip
    link = message.attachment_input(
        {"@odata.type": "#microsoft.graph.referenceAttachment", "name": "plan",
         "sourceUrl": "https://example.com/plan"}, 0)  # fmt: skip
    raw = mime.build(draft(subject="outer"), headers=[], attachments=[item, link], date=0)
    em = BytesParser(policy=policy.default).parsebytes(raw)
    parts = list(em.iter_attachments())
    assert [p.get_content_type() for p in parts] == ["message/rfc822", "text/uri-list"]
    inner = parts[0].get_content()
    assert inner["Subject"] == "a Bcc: x@y.z" and inner["Bcc"] is None
    assert parts[1].get_payload(decode=True) == b"https://example.com/plan\r\n"


def test_an_attachment_bodys_size_is_known_without_its_bytes() -> None:
    """``Body.encoded_size`` (the send's size check for a streamed message) is the length of
    what ``mime.build`` writes, for every remainder of 57-byte lines."""
    from graphpost.domain.message import attachment as new_attachment
    from graphpost.domain.mime import Body

    for n in [*range(0, 240), 57 * 1000, 57 * 1000 + 1, 1024 * 1024 + 5]:
        a = new_attachment("f", "application/x", b"\xff" * n, is_inline=False, content_id=None,
                           now=0)  # fmt: skip
        body = Body(a, base64=True)
        assert body.encoded_size() == len(body.render()), n


def test_no_client_header_names_a_blob() -> None:
    """``X-Graphpost-Blob`` is ours (a skeleton's parts name their blobs in it): a client's
    header of that name is never written, and a message's own header (not a part's) is never
    read as one, so no sender can make a local copy refer to someone else's file."""
    from graphpost.domain import mime as m
    from graphpost.domain.message import Header

    forged = f"{'ab' * 32} 10"
    msg = m.parse(b"Subject: s\r\n\r\nhi\r\n")
    assert msg.blobs == []
    single = m.parse(
        f"Subject: s\r\nX-Graphpost-Blob: {forged}\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=x.bin\r\n\r\nAAAA\r\n".encode()
    )
    assert len(single.attachments) == 1 and single.blobs == [None]
    part = m.parse(
        b'Subject: s\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/x\r\n"
        b"Content-Disposition: attachment; filename=y\r\nX-Graphpost-Blob: "
        + forged.encode()
        + b"\r\n\r\n\r\n--b--\r\n"
    )
    assert part.blobs == [("ab" * 32, 10)]  # a part's header is read (trusted callers only)
    raw = m.build(draft(), headers=[Header("X-Graphpost-Blob", forged)], attachments=[], date=0)
    assert b"graphpost-blob" not in raw.lower()


def test_attached_messages_are_items_down_to_the_depth_cap() -> None:
    from graphpost.domain.message import ITEM, MAX_ITEM_DEPTH

    raw = b"From: a@example.org\r\nSubject: level 40\r\n\r\nbottom\r\n"
    for level in range(39, -1, -1):
        raw = (
            b"From: a@example.org\r\nSubject: level %d\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" % level
        ) + raw
    [top] = mime.attachments_of(mime.parse(raw), 0)
    levels, a = 0, top
    while a.kind == ITEM and a.item is not None:
        levels += 1
        assert a.name == f"level {levels}" and a.content_type is None
        [a] = a.item.attachments
    assert levels == MAX_ITEM_DEPTH
    assert a.content_type == "message/rfc822" and b"Subject: level 40" in a.content
    assert a.content.startswith(b"From: a@example.org\r\nSubject: level 31")


def test_not_a_message_stays_a_file() -> None:
    for inner in (b"", b"\r\njust text", b"\x00\xff garbage\r\n", b"X-Only: one\r\n\r\nx"):
        raw = (
            b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
            b"\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
            + inner
            + b"\r\n--b--\r\n"
        )
        [a] = mime.attachments_of(mime.parse(raw), 0)
        assert a.kind == "file" and a.content_type == "message/rfc822", inner
