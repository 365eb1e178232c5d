"""Properties of the MIME writer and reader (hypothesis): ``parse(build(x))`` keeps ``x``
(subject, recipients with any names, bodies, attachments, custom headers), and ``build``
never writes a bare CR or LF, a line over 998 characters, or a header nobody asked for,
whatever the text it is given (controls, line breaks, NUL, lone surrogates included)."""

from __future__ import annotations

import os
import re

import msgspec
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from graphpost.domain import mime
from graphpost.domain.message import (
    Attachment,
    EmailAddress,
    Header,
    ItemBody,
    Message,
    Recipient,
)
from tests.unit.domain.drafts import draft

SEED = int(os.environ.get("GRAPHPOST_PROP_SEED", "20261203"))
EXAMPLES = int(os.environ.get("GRAPHPOST_PROP_EXAMPLES", "150"))
PROPERTIES = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Printable text in any script: what a user types (no controls, no line separators). The
# writer keeps it; controls are the second property's business.
PRINTABLE = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"), blacklist_characters="\x85"
)
# Text that only looks like an RFC 2047 encoded word is read as one (as every reader does)
WORDS = st.text(PRINTABLE, min_size=1, max_size=300).filter(lambda s: "=?" not in s and s.strip())
# every kind of line break and control, often; plain ASCII (written as is), often; anything
NASTY = st.sampled_from(
    [
        "\r",
        "\n",
        "\x00",
        "\x0b",
        "\x0c",
        "\x1b",
        "\x7f",
        "\x85",
        "\u2028",
        "\u2029",
        "\ud800",
        ":",
        ";",
        '"',
        "\\",
        "<",
        ">",
        ",",
        "=",
        "?",
    ]
)
ANY_TEXT = st.text(
    NASTY | st.characters(max_codepoint=127) | st.characters(blacklist_categories=()), max_size=300
)
LOCAL = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
DOMAIN = st.from_regex(r"[a-z0-9]{1,12}\.(com|net|org|example)", fullmatch=True)
ADDRESS = st.builds(lambda a, b: f"{a}@{b}", LOCAL, DOMAIN)
MEDIA = st.sampled_from(
    ["application/pdf", "image/png", "text/plain", "text/csv", "application/octet-stream",
     "application/vnd.ms-excel", "audio/mpeg"]
)  # fmt: skip
HEADER_NAME = st.from_regex(r"X-[A-Za-z0-9-]{1,40}", fullmatch=True)
_NAME_OK = re.compile(r'^[^"\\]*$')


def one_line(text: str) -> str:
    return " ".join(text.split())


@st.composite
def recipients(draw: st.DrawFn) -> list[Recipient]:
    out = []
    for address in draw(st.lists(ADDRESS, min_size=1, max_size=4, unique=True)):
        name = draw(st.none() | WORDS)
        out.append(Recipient(EmailAddress(name=name, address=address)))
    return out


@st.composite
def attachments(draw: st.DrawFn) -> list[Attachment]:
    out = []
    for i in range(draw(st.integers(0, 3))):
        out.append(
            Attachment(
                id=f"a{i}",
                name=draw(WORDS),
                content_type=draw(MEDIA),
                size=0,
                is_inline=False,
                content_id=None,
                last_modified_date_time="",
                content=draw(st.binary(max_size=2000)),
            )
        )
    return out


def message(subject: str, to: list[Recipient], cc: list[Recipient], body: ItemBody) -> Message:
    base = draft()
    return msgspec.structs.replace(
        base, subject=subject, to_recipients=to, cc_recipients=cc, body=body
    )


def expected_name(r: Recipient) -> str:
    name = one_line(r.email_address.name or "")
    return name or str(r.email_address.address)


@seed(SEED)
@PROPERTIES
@given(
    subject=WORDS,
    to=recipients(),
    cc=recipients(),
    html=st.booleans(),
    body=st.lists(st.text(PRINTABLE, max_size=80), max_size=20).map("\r\n".join),
    files=attachments(),
    headers=st.lists(st.tuples(HEADER_NAME, WORDS), max_size=5, unique_by=lambda h: h[0].lower()),
)
def test_parse_of_build_keeps_the_message(
    subject: str,
    to: list[Recipient],
    cc: list[Recipient],
    html: bool,
    body: str,
    files: list[Attachment],
    headers: list[tuple[str, str]],
) -> None:
    content = f"<p>{body}</p>" if html else body
    msg = message(subject, to, cc, ItemBody("html" if html else "text", content))
    raw = mime.build(
        msg,
        headers=[Header(n, v) for n, v in headers],
        attachments=files,
        date=1_700_000_000,
    )
    back = mime.parse(raw)
    assert back.subject == one_line(subject)
    assert [(a.name, a.address) for a in back.to] == [
        (expected_name(r), r.email_address.address) for r in to
    ]
    assert [(a.name, a.address) for a in back.cc] == [
        (expected_name(r), r.email_address.address) for r in cc
    ]
    assert back.body_type == ("html" if html else "text")
    assert back.body.replace("\r\n", "\n") == content.replace("\r\n", "\n")
    assert [(name, ctype, data) for name, ctype, data, _, _ in back.attachments] == [
        (one_line(a.name), a.content_type, a.content) for a in files
    ]
    got = {h.name: h.value for h in back.headers}
    for name, value in headers:
        assert got[name] == one_line(value)
    assert back.date == 1_700_000_000


@st.composite
def hostile_message(draw: st.DrawFn) -> tuple[Message, list[Header], list[Attachment]]:
    def person() -> Recipient:
        return Recipient(EmailAddress(name=draw(ANY_TEXT), address=draw(ADDRESS)))

    msg = message(
        draw(ANY_TEXT),
        [person() for _ in range(draw(st.integers(1, 3)))],
        [person() for _ in range(draw(st.integers(0, 2)))],
        ItemBody(draw(st.sampled_from(["text", "html"])), draw(ANY_TEXT)),
    )
    msg = msgspec.structs.replace(msg, reply_to=[person()])
    headers = [
        Header(draw(HEADER_NAME), draw(ANY_TEXT)) for _ in range(draw(st.integers(0, 3)))
    ] + [Header("References", draw(ANY_TEXT)), Header("In-Reply-To", draw(ANY_TEXT))]
    files = [
        Attachment(id="a", name=draw(ANY_TEXT), content_type=draw(ANY_TEXT), size=1,
                   is_inline=draw(st.booleans()), content_id=draw(ANY_TEXT),
                   last_modified_date_time="", content=b"x")
        for _ in range(draw(st.integers(0, 2)))
    ]  # fmt: skip
    return msg, headers, files


FIELDS = {"from", "to", "cc", "reply-to", "subject", "date", "message-id", "thread-index",
          "mime-version", "in-reply-to", "references", "importance", "sender",
          "disposition-notification-to"}  # fmt: skip
PART_FIELDS = {"content-type", "content-disposition", "content-id", "content-transfer-encoding"}


def header_names(block: bytes) -> list[str]:
    """The field names of a header block (continuation lines start with white space)."""
    return [
        line.split(b":", 1)[0].decode("ascii").lower()
        for line in block.split(b"\r\n")
        if line and line[:1] not in (b" ", b"\t")
    ]


@seed(SEED)
@PROPERTIES
@given(hostile_message())
def test_build_never_breaks_a_header_line(
    case: tuple[Message, list[Header], list[Attachment]],
) -> None:
    msg, headers, files = case
    raw = mime.build(msg, headers=headers, attachments=files, date=1_700_000_000)
    asked = {h.name.lower() for h in headers}
    # every header block: the message's and each part's (parts start after a boundary line)
    head, _, rest = raw.partition(b"\r\n\r\n")
    blocks = [head]
    for m in re.finditer(rb"\r\n--[^\r\n]+\r\n((?:[^\r\n]+\r\n)*?)\r\n", b"\r\n" + rest):
        blocks.append(m.group(1).rstrip(b"\r\n"))
    for i, block in enumerate(blocks):
        assert b"\r" not in block.replace(b"\r\n", b""), "a bare CR in a header"
        assert b"\n" not in block.replace(b"\r\n", b""), "a bare LF in a header"
        assert all(len(line) <= 998 for line in block.split(b"\r\n")), "a line over 998"
        allowed = FIELDS | asked | PART_FIELDS if i == 0 else PART_FIELDS
        assert set(header_names(block)) <= allowed, header_names(block)
    # and read back, the message has exactly the recipients it was given
    back = mime.parse(raw)
    assert [a.address for a in back.to] == [r.email_address.address for r in msg.to_recipients]
    assert [a.address for a in back.cc] == [r.email_address.address for r in msg.cc_recipients]
    assert back.bcc == []


# MIME-ish bytes: header lines, boundaries, encoded words and charsets, and any byte at all
PIECES = st.sampled_from([
    b"To: ", b"From: ", b"Subject: ", b"Content-Type: multipart/mixed; boundary=b",
    b"Content-Type: text/plain; charset=", b"Content-Disposition: attachment; filename*=",
    b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"--b\r\n", b"--b--", b"=?", b"?=", b"?q?", b"?b?",
    b"utf-8", b"undefined", b"idna", b"x-unknown", b"utf-16", b"''", b"%E9", b"=E9", b"<", b">",
    b"@", b",", b'"', b":", b";", b"\x00", b"\xff", b"a@b.c", b" ",
    b"=?undefined?q?a=E9?=", b"=?idna?b?/w==?=", b"=?x-unknown?q?=FF?=", b"=?utf-8?q?=0D=0A?=",
    b"=?utf-16?b?2D3d?=", b"undefined''caf%E9",
])  # fmt: skip
MIME_ISH = st.lists(PIECES | st.binary(max_size=8), max_size=60).map(b"".join)


def storable(text: str) -> bool:
    return "\x00" not in text and text.encode("utf-8", "strict") is not None


@seed(SEED)
@PROPERTIES
@given(MIME_ISH)
def test_parse_reads_anything_into_storable_text(raw: bytes) -> None:
    back = mime.parse(raw)  # never raises
    texts = [back.subject or "", back.body, *(h.name + h.value for h in back.headers)]
    for a in [back.from_, back.sender, *back.to, *back.cc, *back.bcc, *back.reply_to]:
        if a is not None:
            texts += [a.name or "", a.address or ""]
    for name, ctype, _, _, cid in back.attachments:
        texts += [name, ctype, cid or ""]
        assert "\r" not in name and "\n" not in name
    assert all(storable(t) for t in texts)
