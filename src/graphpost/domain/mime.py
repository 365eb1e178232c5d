"""RFC 5322 / MIME: build the wire form of a message, and read one that arrived.

Standard library only (``email``). Bcc never appears in headers; names and subjects that are
not ASCII become encoded words; HTML bodies go out as multipart/alternative with a text part,
inline attachments as multipart/related parts with their Content-ID.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import mimetypes
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC
from email import policy
from email.header import Header as EmailHeader
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import encode_rfc2231, formataddr, formatdate, getaddresses, parsedate_to_datetime

import msgspec

from graphpost.domain import addresses, ids
from graphpost.domain.body import html_to_text
from graphpost.domain.message import (
    FIELD_NAME,
    ITEM,
    MAX_ITEM_DEPTH,
    MIME_TCHARS,
    REFERENCE,
    Attachment,
    EmailAddress,
    Header,
    Item,
    ItemBody,
    Message,
    Recipient,
    attachment,
    is_message_id,
    item,
    sized,
)
from graphpost.domain.text import storable
from graphpost.domain.times import iso, parse_iso
from graphpost.errors import InvalidRecipientsError

# Headers a client may not set through internetMessageHeaders but the server writes itself.
THREADING = ("in-reply-to", "references")
# RFC 3834's values of Auto-Submitted, the one header beyond x- ones a sender may give
AUTO_SUBMITTED = ("auto-replied", "auto-generated", "auto-notified", "no")


# every line break Python or a mail reader may honour, and every other control but TAB
_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]+")
_MEDIA_TYPE = re.compile(rf"({MIME_TCHARS})/({MIME_TCHARS})")


def _clean(value: str) -> str:
    """A header value on one line: no CR, LF or other control can reach the wire (no header
    injection), and no lone surrogate (which no encoder can write)."""
    value = _BREAKS.sub(" ", value)
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _ascii(value: str) -> str:
    """A header value that must be ASCII (message ids, Content-ID): cleaned, the rest '?'."""
    return _clean(value).encode("ascii", "replace").decode("ascii")


def _id_list(value: str) -> str:
    """In-Reply-To/References: message ids, one line when short, else one per folded line;
    an id too long for any line (a line holds 998 characters) is left out."""
    found = [word for word in _ascii(value).split() if len(word) <= _SHORT_NAME * 4]
    joined = " ".join(found)
    return joined if len(joined) <= 900 else _FOLD.join(found)


def _address(r: Recipient) -> str:
    addr = (r.email_address.address or "").strip()
    name = _clean(r.email_address.name or "").strip()
    why = addresses.problem(addr)
    if why is not None:
        raise InvalidRecipientsError(
            f"At least one recipient isn't valid: '{addresses.shown(addr)}' is not an email "
            f"address ({why})."
        )
    if not name or name == addr:
        return addr
    if len(name) > _SHORT_NAME:
        # a long name goes out as encoded words folded over several lines: a header line
        # never passes RFC 5322's 998 characters, however long the name
        return f"{EmailHeader(name, 'utf-8', maxlinelen=76).encode(linesep=_FOLD)}\r\n <{addr}>"
    if addr.isascii():
        return formataddr((name, addr), charset="utf-8")
    # an SMTPUTF8 address (RFC 6532) goes out as UTF-8; formataddr insists on ASCII
    return formataddr((name, "x@x"), charset="utf-8")[: -len("<x@x>")] + f"<{addr}>"


def _address_list(recipients: list[Recipient]) -> str:
    return ",\r\n ".join(_address(r) for r in recipients)


def _text_header(value: str, name: str = "Subject") -> str:
    """Unstructured text: as is when short ASCII (the line, ``name`` and all, within RFC
    5322's 998 characters), else RFC 2047 encoded words, folded."""
    value = _clean(value)
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE:
        return value
    return EmailHeader(value, "utf-8", maxlinelen=76, header_name=name).encode(linesep="\r\n")


MAX_LINE = 998  # RFC 5322 §2.1.1


def _split_type(content_type: str) -> tuple[str, str]:
    """``type/subtype`` of a content type, lower case; anything else is a byte stream."""
    m = _MEDIA_TYPE.fullmatch(content_type.partition(";")[0].strip())
    if m is None:
        return "application", "octet-stream"
    return m.group(1).lower(), m.group(2).lower()


def _qp(text: str) -> bytes:
    """Quoted-printable with CRLF line ends (binascii does the work, in C)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8", "replace")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _b64(data: bytes) -> bytes:
    raw = base64.b64encode(data)
    return b"\r\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))


def _param(name: str, value: str) -> str:
    """A filename or name parameter: quoted when short plain ASCII, else RFC 2231 (percent
    encoded), in numbered continuations of at most 60 characters on lines of their own."""
    value = _clean(value)
    if value.isascii() and '"' not in value and "\\" not in value and len(value) <= _SHORT_NAME:
        return f'{name}="{value}"'
    encoded = encode_rfc2231(value, "utf-8")
    if len(encoded) <= _SHORT_NAME:
        return f"{name}*={encoded}"
    chunks: list[str] = []
    at = 0
    while at < len(encoded):
        end = min(at + 60, len(encoded))
        percent = encoded.rfind("%", max(at, end - 2), end)
        if percent >= 0 and end < len(encoded):
            end = percent  # never split a %XX escape
        chunks.append(encoded[at:end])
        at = end
    return f";{_FOLD}".join(f"{name}*{n}*={chunk}" for n, chunk in enumerate(chunks))


_SHORT_NAME = 200  # longer names and file names are encoded and folded
_FOLD = "\r\n "


def _boundary() -> str:
    return f"----=_graphpost_{uuid.uuid4().hex}"


def _text_part(subtype: str, content: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode() + _qp(content)


@dataclass(frozen=True, slots=True)
class Body:
    """Where an attachment's bytes go in a message being written: base64 in 76-character lines
    (CRLF between them), or as they are (an attached message/rfc822)."""

    attachment: Attachment
    base64: bool

    def render(self) -> bytes:
        return _b64(self.attachment.content) if self.base64 else self.attachment.content

    def encoded_size(self) -> int:
        """The length of ``render()`` for ``attachment.size`` bytes, without the bytes."""
        n = self.attachment.size
        if not self.base64:
            return n
        chars = 4 * ((n + 2) // 3)
        return chars + 2 * max(0, (chars + 75) // 76 - 1)


Segment = bytes | Body
BLOB_HEADER = "X-Graphpost-Blob"  # in a local copy's skeleton: "{sha256} {size}"


def _attachment_part(a: Attachment, *, inline: bool) -> list[Segment]:
    if a.kind == ITEM and a.item is not None:
        disposition = f"attachment; {_param('filename', a.name)}"
        head = f"Content-Type: message/rfc822\r\nContent-Disposition: {disposition}\r\n\r\n"
        return [head.encode() + item_mime(a.item)]
    if a.kind == REFERENCE and a.reference is not None:
        # a link goes out as a URI list (RFC 2483) named as the attachment
        head = (
            f'Content-Type: text/uri-list; charset="utf-8"; {_param("name", a.name)}\r\n'
            f"Content-Disposition: attachment; {_param('filename', a.name)}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        )
        return [head.encode() + _b64(a.reference.source_url.encode("utf-8", "replace") + b"\r\n")]
    main, sub = _split_type(a.content_type or "")
    if main == "message" and sub == "rfc822":
        disposition = f"attachment; {_param('filename', a.name)}"
        head = f"Content-Type: message/rfc822\r\nContent-Disposition: {disposition}\r\n\r\n"
        return [head.encode(), Body(a, base64=False)]
    disposition = "inline" if inline else "attachment"
    head = (
        f"Content-Type: {main}/{sub}; {_param('name', a.name)}\r\n"
        f"Content-Disposition: {disposition}; {_param('filename', a.name)}\r\n"
        + (f"Content-ID: <{_content_id(a.content_id or '')}>\r\n" if inline else "")
        + "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    return [head.encode(), Body(a, base64=True)]


def item_mime(item: Item) -> bytes:
    """An attached message as RFC 822 text (its ``$value``, and the message/rfc822 part it
    becomes when sent), by the same writer, its own attachments inside it."""
    msg = item.message
    try:
        date = parse_iso(msg.sent_date_time)
    except (ValueError, OverflowError):
        date = 0
    return build(msg, headers=item.headers, attachments=item.attachments, date=date)


def _content_id(value: str) -> str:
    return re.sub(r"[\s<>]", "", _ascii(value))


def _multipart(subtype: str, parts: list[list[Segment]]) -> list[Segment]:
    boundary = _boundary()
    out: list[Segment] = [
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    ]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode())
        out += part
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return out


def build(
    msg: Message,
    *,
    headers: list[Header],
    attachments: list[Attachment],
    date: int,
) -> bytes:
    """The message as it goes over SMTP: CRLF line ends, 7-bit clean (quoted-printable and
    base64 bodies, RFC 2047 headers), Bcc never written."""
    found = segments(msg, headers=headers, attachments=attachments, date=date)
    return b"".join(s if isinstance(s, bytes) else s.render() for s in found)


def size_of(found: list[Segment]) -> int:
    """The size of the message ``found`` describes, without its attachments' bytes."""
    return sum(len(s) if isinstance(s, bytes) else s.encoded_size() for s in found)


def skeleton(found: list[Segment]) -> bytes:
    """The message without its attachments' bytes: each attachment part names its blob in an
    ``X-Graphpost-Blob`` header and has an empty body (a local copy is read from it, and
    refers to the same blobs). Only this server's own skeletons are read so (``trusted``)."""
    out: list[bytes] = []
    for s in found:
        if isinstance(s, bytes):
            out.append(s)
            continue
        a = s.attachment
        head = out.pop()  # the part's header block, which ends in its blank line
        out.append(head[:-2] + f"{BLOB_HEADER}: {a.blob} {a.size}\r\n\r\n".encode())
    return b"".join(out)


def segments(
    msg: Message,
    *,
    headers: list[Header],
    attachments: list[Attachment],
    date: int,
) -> list[Segment]:
    """``build``'s message as its pieces: bytes, and a ``Body`` where each attachment's bytes
    go (so that they can be streamed from storage)."""
    lines: list[str] = []
    if msg.from_ is not None:
        lines.append(f"From: {_address(msg.from_)}")
        if msg.sender is not None and (
            (msg.sender.email_address.address or "").lower()
            != (msg.from_.email_address.address or "").lower()
        ):
            lines.append(f"Sender: {_address(msg.sender)}")
    if msg.to_recipients:
        lines.append(f"To: {_address_list(msg.to_recipients)}")
    if msg.cc_recipients:
        lines.append(f"Cc: {_address_list(msg.cc_recipients)}")
    if msg.reply_to:
        lines.append(f"Reply-To: {_address_list(msg.reply_to)}")
    lines.append(f"Subject: {_text_header(msg.subject or '')}")
    lines.append(f"Date: {formatdate(date, usegmt=True)}")
    lines.append(f"Message-ID: {_ascii(msg.internet_message_id)}")
    for h in headers:
        if h.name.lower() in THREADING:
            ids_value = _id_list(h.value)
            if ids_value:
                lines.append(f"{h.name}: {ids_value}")
    lines.append(f"Thread-Index: {_ascii(msg.conversation_index)}")
    for h in headers:
        if h.name.lower() == "auto-submitted" and h.value.strip().lower() in AUTO_SUBMITTED:
            lines.append(f"Auto-Submitted: {h.value.strip().lower()}")
            break
    if msg.importance != "normal":
        lines.append(f"Importance: {msg.importance}")
    if msg.is_read_receipt_requested and msg.from_ is not None:
        lines.append(f"Disposition-Notification-To: {_address(msg.from_)}")
    for h in headers:
        # a name that is not a field name is never written (it would be part of a value)
        # nor one too long to leave room on its line for a word of its value
        # nor ours: a skeleton's parts name their blobs in it (see ``skeleton``)
        if (
            h.name.lower().startswith("x-")
            and len(h.name) <= _SHORT_NAME
            and FIELD_NAME.fullmatch(h.name)
            and h.name.lower() != BLOB_HEADER.lower()
        ):
            lines.append(f"{h.name}: {_text_header(h.value, h.name)}")
    lines.append("MIME-Version: 1.0")
    inline = [a for a in attachments if a.is_inline and a.content_id]
    files = [a for a in attachments if not (a.is_inline and a.content_id)]
    body: list[Segment]
    if msg.body.content_type == "html":
        html_part: list[Segment] = [_text_part("html", msg.body.content)]
        if inline:
            html_part = _multipart(
                "related", [html_part, *(_attachment_part(a, inline=True) for a in inline)]
            )
        body = _multipart(
            "alternative",
            [[_text_part("plain", html_to_text(msg.body.content) + "\r\n")], html_part],
        )
    else:
        body = [_text_part("plain", msg.body.content)]
        files = list(attachments)
    if files:
        body = _multipart("mixed", [body, *(_attachment_part(a, inline=False) for a in files)])
    # ASCII but for SMTPUTF8 addresses (RFC 6532), which only such a relay is given
    return [("\r\n".join(lines) + "\r\n").encode("utf-8", "replace"), *body]


# ---------------------------------------------------------------- reading


@dataclass
class Parsed:
    """What a received MIME message says, in the domain's terms."""

    subject: str | None = None
    from_: EmailAddress | None = None
    sender: EmailAddress | None = None
    to: list[EmailAddress] = field(default_factory=list)
    cc: list[EmailAddress] = field(default_factory=list)
    bcc: list[EmailAddress] = field(default_factory=list)  # a draft's; received mail has none
    reply_to: list[EmailAddress] = field(default_factory=list)
    date: int | None = None
    message_id: str | None = None
    body_type: str = "text"
    body: str = ""
    # (name, content type, bytes, inline, Content-ID); an attached message (message/rfc822)
    # read as a message is a Parsed of its own (content type then "message/rfc822")
    attachments: list[tuple[str, str, bytes | Parsed, bool, str | None]] = field(
        default_factory=list
    )
    # per attachment: (sha256, size) its part names in X-Graphpost-Blob, else None (honoured
    # only for this server's own skeletons: see ``skeleton``)
    blobs: list[tuple[str, int] | None] = field(default_factory=list)
    headers: list[Header] = field(default_factory=list)
    thread_index: str | None = None
    importance: str = "normal"


def attachments_of(parsed: Parsed, now: int) -> list[Attachment]:
    """The attachments of a read message as the domain's: a file for every part, an item
    (as Exchange shows one) for every attached message read as a message, its own attached
    messages items in turn."""
    out: list[Attachment] = []
    for name, ctype, data, inline, cid in parsed.attachments:
        if isinstance(data, Parsed):
            out.append(_item_of(name, data, inline, now))
        else:
            out.append(attachment(name, ctype, data, is_inline=inline, content_id=cid, now=now))
    return out


def document(
    parsed: Parsed,
    *,
    message_id: str,
    folder_id: str,
    now: int,
    web_base: str,
    conversation_index: str,
    attachments: list[Attachment],
    is_read: bool,
    with_bcc: bool,
) -> Message:
    """A read message as the domain's document: one that arrived, or one attached to another
    (``now`` its arrival; sent then too when it has no Date)."""

    def one(a: EmailAddress | None) -> Recipient | None:
        return Recipient(a) if a is not None else None

    return item(
        message_id=message_id,
        folder_id=folder_id,
        now=now,
        web_base=web_base,
        conversation_index=conversation_index,
        attachments=attachments,
        internet_message_id=parsed.message_id or ids.internet_message_id("graphpost.localhost"),
        subject=parsed.subject,
        body=ItemBody(content_type=parsed.body_type, content=parsed.body),
        sender=one(parsed.sender),
        from_=one(parsed.from_),
        to=[Recipient(a) for a in parsed.to],
        cc=[Recipient(a) for a in parsed.cc],
        bcc=[Recipient(a) for a in parsed.bcc] if with_bcc else [],
        reply_to=[Recipient(a) for a in parsed.reply_to],
        is_read=is_read,
        is_draft=False,
        importance=parsed.importance,
        read_receipt=asks_read_receipt(parsed),
        sent_at=parsed.date or now,
    )


def asks_read_receipt(parsed: Parsed) -> bool:
    """Whether the message asks for a read receipt (Disposition-Notification-To)."""
    return any(h.name.lower() == "disposition-notification-to" for h in parsed.headers)


def _item_of(name: str, inner: Parsed, inline: bool, now: int) -> Attachment:
    nested = attachments_of(inner, now)
    when = inner.date if inner.date is not None else now
    # received (and created) when it was sent, as far as anyone can tell
    doc = document(
        inner, message_id="", folder_id="", now=when, web_base="",
        conversation_index=inner.thread_index or ids.conversation_index(when),
        attachments=nested, is_read=True, with_bcc=True,
    )  # fmt: skip
    doc = msgspec.structs.replace(doc, change_key="", web_link="")
    return sized(
        Attachment(
            id=ids.attachment_id(),
            name=name,
            content_type=None,
            size=0,
            is_inline=inline,
            content_id=None,
            last_modified_date_time=iso(now),
            kind=ITEM,
            item=Item(message=doc, headers=list(inner.headers), attachments=nested),
        )
    )


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decoded(value: str) -> str:
    """A header value with its RFC 2047 encoded words decoded, in one linear pass. Neither of
    the standard library's decoders: the header registry's parser takes about 10 µs a byte on
    address lists (a size a sender controls), and the legacy one mangles raw 8-bit text mixed
    with encoded words. White space between two encoded words is dropped (RFC 2047 §6.2)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    at = 0
    for m in _ENCODED_WORD.finditer(value):
        gap = value[at : m.start()]
        if not out or gap.strip():  # out holds a word already: the gap follows one
            out.append(gap)
        out.append(_word(m.group(1), m.group(2), m.group(3)))
        at = m.end()
    out.append(value[at:])
    return "".join(out)


def _word(charset: str, encoding: str, text: str) -> str:
    """One encoded word's text; undecodable bytes become U+FFFD, an unknown charset UTF-8."""
    try:
        if encoding in "bB":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = binascii.a2b_qp(text.replace("_", " ").encode("ascii", "replace"))
    except (ValueError, binascii.Error):
        return text
    try:
        return data.decode(charset.split("*", 1)[0], "replace")
    except (LookupError, ValueError):  # unknown, not a text encoding, or one that refuses
        return data.decode("utf-8", "replace")  # "replace" (undefined, idna: UnicodeError)


def _addresses(raw_values: list[str]) -> list[EmailAddress]:
    """Addresses of raw (undecoded) header values: split first, so that a comma inside an
    encoded display name cannot split an address; then each name is decoded."""
    out = []
    # unfolded first (RFC 5322 §2.2.3): a fold inside a quoted name would end the list
    unfolded = [_FOLD_TEXT.sub("", value) for value in raw_values]
    for name, addr in getaddresses(unfolded):
        if addr:
            addr = storable(addr)
            out.append(EmailAddress(name=_one_line(_decoded(name)) or addr, address=addr))
    return out


_FOLD_TEXT = re.compile(r"\r?\n(?=[ \t])")


def _one_line(value: str) -> str:
    """A name read off a header (a display name, a file name, a Content-ID): storable, on one
    line, without control characters, whatever its encoded words decoded to."""
    return storable(" ".join(_BREAKS.sub(" ", value).split()))


def _text(value: object) -> str:
    return str(value) if value is not None else ""


def _leaves(part: EmailMessage) -> list[EmailMessage]:
    """The leaf parts, with an attached message (message/rfc822) counted as one leaf."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        return [part]
    out: list[EmailMessage] = []
    for child in part.iter_parts():
        if isinstance(child, EmailMessage):
            out += _leaves(child)
    return out


def parse(raw: bytes) -> Parsed:
    """Read a MIME message; tolerant of what real senders produce. Every text it gives is
    storable (no NUL, valid UTF-8), whatever bytes arrived. Never raises: a message the
    standard library cannot read (structure nested thousands deep, a header it recurses on)
    is read as its headers and a plain text body."""
    for reader in (_parse, _parse_plainly):
        # RecursionError, OverflowError, a parser bug: read it plainly (then not at all)
        with contextlib.suppress(Exception):
            return reader(raw)
    return Parsed(body=storable(raw.decode("utf-8", "replace")))  # the bytes as text


_FIRST_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]{1,998}[ \t]*:")


def is_message(raw: bytes) -> bool:
    """Whether ``raw`` can be an RFC 5322 message: it begins with a header field. (The parser
    reads anything; a client's MIME that does not even start so is refused, not stored as a
    message of no headers.)"""
    return _FIRST_FIELD.match(raw) is not None


_FOLDED = re.compile(rb"\r?\n(?=[ \t])")
_HEADER_LINE = re.compile(rb"^([\x21-\x39\x3b-\x7e]+)[ \t]*:(.*)$", re.DOTALL)


def _parse_plainly(raw: bytes) -> Parsed:
    """The headers (unfolded, encoded words decoded) and the rest as plain text."""
    head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    out = Parsed()
    for line in _FOLDED.sub(b"", head).split(b"\n"):
        m = _HEADER_LINE.match(line)
        if m is not None:
            name = m.group(1).decode("ascii")
            value = storable(_decoded(m.group(2).decode("utf-8", "surrogateescape")))
            out.headers.append(Header(name=name, value=" ".join(value.split())))
    first = {h.name.lower(): h.value for h in reversed(out.headers)}
    out.subject = first.get("subject")
    for field_name, target in (
        ("to", out.to),
        ("cc", out.cc),
        ("bcc", out.bcc),
        ("reply-to", out.reply_to),
    ):
        with contextlib.suppress(Exception):
            target.extend(_addresses([first[field_name]] if field_name in first else []))
    with contextlib.suppress(Exception):
        froms = _addresses([first["from"]] if "from" in first else [])
        out.from_ = out.sender = froms[0] if froms else None
    message_id = first.get("message-id", "").strip()
    out.message_id = message_id if is_message_id(message_id) else None
    out.body = storable(body.decode("utf-8", "replace").replace("\n", "\r\n"))
    return out


# A structure header (Content-Type, Content-Disposition) longer than this keeps its first
# parameters only: the standard library re-parses it on every look, superlinearly in its
# parameter count (20,000 folded parameters took 23 s), and no real sender writes one this long.
MAX_STRUCTURE_HEADER = 4096
_STRUCTURE_FIELD = re.compile(
    rb"^(content-type|content-disposition)[ \t]*:.*(?:\r?\n[ \t].*)*", re.I | re.M
)


def _bounded(raw: bytes) -> bytes:
    """``raw`` with every oversized structure header (of the message or of any part, attached
    messages too) cut short at a parameter boundary. A header that long needs over a thousand
    parameters, so a message with fewer semicolons is returned as it is, after one count;
    otherwise one linear scan (about 0.1 s for 10 MB)."""
    if raw.count(b";") < MAX_STRUCTURE_HEADER // 4:
        return raw

    def cut(m: re.Match[bytes]) -> bytes:
        field = m.group(0)
        if len(field) <= MAX_STRUCTURE_HEADER:
            return field
        field = field[:MAX_STRUCTURE_HEADER]
        return field[: field.rfind(b";")] if b";" in field else field

    return _STRUCTURE_FIELD.sub(cut, raw)


def _parse(raw: bytes) -> Parsed:
    return _read(BytesParser(policy=policy.default).parsebytes(_bounded(raw)), 0)


def _read(em: EmailMessage, depth: int) -> Parsed:
    """A parsed message (at ``depth`` attached messages inside the one received)."""
    out = Parsed()
    undecoded = [(name, str(value)) for name, value in em.raw_items()]
    raw_headers = [(storable(n), storable(_decoded(v))) for n, v in undecoded]
    out.headers = [Header(name=n, value=" ".join(v.split())) for n, v in raw_headers]
    first = {n.lower(): v for n, v in reversed(raw_headers)}
    out.subject = " ".join(first["subject"].split()) if "subject" in first else None

    def address_values(field: str) -> list[str]:
        return [v for n, v in undecoded if n.lower() == field]

    froms = _addresses(address_values("from")[:1])
    out.from_ = froms[0] if froms else None
    senders = _addresses(address_values("sender")[:1])
    out.sender = senders[0] if senders else out.from_
    out.to = _addresses(address_values("to"))
    out.cc = _addresses(address_values("cc"))
    out.bcc = _addresses(address_values("bcc"))
    out.reply_to = _addresses(address_values("reply-to"))
    if "date" in first:
        try:
            when = parsedate_to_datetime(first["date"])
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            # in UTC still within years 1 to 9999 (else OverflowError: no date), so that it
            # renders as an ISO 8601 date every reader (and parse_iso) takes
            out.date = int(when.astimezone(UTC).timestamp())
        except (TypeError, ValueError, IndexError, OverflowError):
            out.date = None
    # a Message-ID we could not index or send on (too long, not ASCII): the item gets its own
    message_id = first.get("message-id", "").strip()
    out.message_id = message_id if is_message_id(message_id) else None
    thread = first.get("thread-index", "").strip()
    if thread:
        try:
            if len(base64.b64decode(thread, validate=True)) >= 22:
                out.thread_index = thread
        except ValueError:
            pass
    importance = first.get("importance", "").strip().lower()
    priority = first.get("x-priority", "").strip()[:1]
    if importance in ("high", "low"):
        out.importance = importance
    elif priority in ("1", "2"):
        out.importance = "high"
    elif priority in ("4", "5"):
        out.importance = "low"
    body = em.get_body(preferencelist=("html", "plain"))
    if body is not None:
        out.body_type = "html" if body.get_content_subtype() == "html" else "text"
        try:
            out.body = storable(_text(body.get_content()))
        except (LookupError, ValueError, AssertionError):
            payload = body.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            out.body = storable(text)
    for part in _leaves(em):
        if part is body:
            continue
        top = part is em  # its headers are the message's: never a skeleton part's
        disposition = part.get_content_disposition()
        cid = part.get("Content-ID")
        if disposition is None and cid is None:
            continue  # another alternative of the body
        data: bytes | Parsed
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            head: object = inner[0] if isinstance(inner, list) and inner else None
            attached = _attached(head, depth) if isinstance(head, EmailMessage) else None
            if attached is not None:
                data = attached
            else:
                data = (
                    head.as_bytes(policy=policy.SMTP)
                    if isinstance(head, EmailMessage)
                    else _text(inner).encode()
                )
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        ctype = part.get_content_type()
        if _MEDIA_TYPE.fullmatch(ctype) is None:
            ctype = "application/octet-stream"
        try:
            filename = part.get_filename() or ""
        except (LookupError, ValueError):  # an RFC 2231 charset no decoder takes
            filename = ""
        if isinstance(data, Parsed):
            name = _one_line(filename) or data.subject or "Untitled"
        else:
            name = _one_line(filename) or ("attachment" + (mimetypes.guess_extension(ctype) or ""))
        content_id = _one_line(str(cid)).strip("<>") or None if cid else None
        inline = disposition == "inline" or (disposition is None and content_id is not None)
        out.attachments.append((name, ctype, data, inline, content_id))
        out.blobs.append(None if top else _blob_of(part.get(BLOB_HEADER)))
    return out


_BLOB_REF = re.compile(r"([0-9a-f]{64}) ([0-9]{1,15})")


def _blob_of(value: object) -> tuple[str, int] | None:
    m = _BLOB_REF.fullmatch(str(value).strip()) if value is not None else None
    return (m.group(1), int(m.group(2))) if m else None


def _attached(head: EmailMessage, depth: int) -> Parsed | None:
    """An attached message read as a message (an item attachment), or None when it stays a
    file: nested deeper than an item may be (``MAX_ITEM_DEPTH``), without a single header
    field (empty, or not a message at all), or unreadable."""
    if depth >= MAX_ITEM_DEPTH or not _any_field(head):
        return None
    try:
        return _read(head, depth + 1)
    except Exception:  # RecursionError, a parser bug: the part stays a file
        return None


def _any_field(head: EmailMessage) -> bool:
    """Whether the attached message has a header field a message has."""
    names = {n.lower() for n in head}
    return bool(names & {"from", "subject", "date", "to", "message-id", "mime-version"})
