"""RFC 5322 / MIME: build the wire form of a message, and read one that arrived.

Standard library only (``email``). Bcc never appears in headers; names and subjects that are
not ASCII become encoded words; HTML bodies go out as multipart/alternative with a text part,
inline attachments as multipart/related parts with their Content-ID.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime

from graphpost.domain.body import html_to_text
from graphpost.domain.message import Attachment, EmailAddress, Header, Message, Recipient
from graphpost.errors import InvalidRecipientsError

# Headers a client may not set through internetMessageHeaders but the server writes itself.
THREADING = ("in-reply-to", "references")


def _address(r: Recipient) -> Address:
    addr = r.email_address.address or ""
    name = r.email_address.name or ""
    if name == addr:
        name = ""
    try:
        return Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError, TypeError) as exc:
        raise InvalidRecipientsError(
            f"At least one recipient isn't valid: '{addr}' is not an email address."
        ) from exc


def _set_addresses(em: EmailMessage, name: str, recipients: list[Recipient]) -> None:
    if recipients:
        em[name] = [_address(r) for r in recipients]


def _split_type(content_type: str) -> tuple[str, str]:
    main, _, sub = content_type.partition("/")
    if not main or not sub:
        return "application", "octet-stream"
    return main.strip().lower(), sub.split(";")[0].strip().lower()


def build(
    msg: Message,
    *,
    headers: list[Header],
    attachments: list[Attachment],
    date: int,
) -> bytes:
    """The message as it goes over SMTP (CRLF line ends)."""
    em = EmailMessage(policy=policy.SMTP)
    if msg.from_ is not None:
        em["From"] = _address(msg.from_)
    if (
        msg.sender is not None
        and msg.from_ is not None
        and (
            (msg.sender.email_address.address or "").lower()
            != (msg.from_.email_address.address or "").lower()
        )
    ):
        em["Sender"] = _address(msg.sender)
    _set_addresses(em, "To", msg.to_recipients)
    _set_addresses(em, "Cc", msg.cc_recipients)
    _set_addresses(em, "Reply-To", msg.reply_to)
    em["Subject"] = msg.subject or ""
    em["Date"] = format_datetime(datetime.fromtimestamp(date, UTC))
    em["Message-ID"] = msg.internet_message_id
    for h in headers:
        if h.name.lower() in THREADING:
            em[h.name] = h.value
    em["Thread-Index"] = msg.conversation_index
    if msg.importance != "normal":
        em["Importance"] = msg.importance
    if msg.is_read_receipt_requested and msg.from_ is not None:
        em["Disposition-Notification-To"] = _address(msg.from_)
    for h in headers:
        if h.name.lower().startswith("x-"):
            em[h.name] = h.value
    inline = [a for a in attachments if a.is_inline and a.content_id]
    files = [a for a in attachments if not (a.is_inline and a.content_id)]
    if msg.body.content_type == "html":
        em.set_content(html_to_text(msg.body.content) + "\r\n", subtype="plain", charset="utf-8")
        em.add_alternative(msg.body.content, subtype="html", charset="utf-8")
        if inline:
            html_part = em.get_payload()[1]  # type: ignore[index]
            assert isinstance(html_part, EmailMessage)
            for a in inline:
                main, sub = _split_type(a.content_type)
                html_part.add_related(
                    a.content, maintype=main, subtype=sub, cid=f"<{a.content_id}>",
                    filename=a.name, disposition="inline",
                )  # fmt: skip
    else:
        em.set_content(msg.body.content, subtype="plain", charset="utf-8")
        files = list(attachments)
    for a in files:
        main, sub = _split_type(a.content_type)
        if main == "message" and sub == "rfc822":
            part = EmailMessage(policy=policy.SMTP)
            part["Content-Type"] = "message/rfc822"
            part["Content-Disposition"] = f'attachment; filename="{a.name}"'
            part.set_payload(a.content)
            em.make_mixed()
            em.attach(part)
        else:
            em.add_attachment(a.content, maintype=main, subtype=sub, filename=a.name)
    return em.as_bytes(policy=policy.SMTP)


# ---------------------------------------------------------------- reading


@dataclass
class Parsed:
    """What a received MIME message says, in the domain's terms."""

    subject: str | None = None
    from_: EmailAddress | None = None
    sender: EmailAddress | None = None
    to: list[EmailAddress] = field(default_factory=list)
    cc: list[EmailAddress] = field(default_factory=list)
    reply_to: list[EmailAddress] = field(default_factory=list)
    date: int | None = None
    message_id: str | None = None
    body_type: str = "text"
    body: str = ""
    attachments: list[tuple[str, str, bytes, bool, str | None]] = field(default_factory=list)
    headers: list[Header] = field(default_factory=list)
    thread_index: str | None = None
    importance: str = "normal"


def _addresses(values: list[str]) -> list[EmailAddress]:
    out = []
    for name, addr in getaddresses(values):
        if addr:
            out.append(EmailAddress(name=name or addr, address=addr))
    return out


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
    """Read a MIME message; tolerant of what real senders produce."""
    em = BytesParser(policy=policy.default).parsebytes(raw)
    out = Parsed()
    raw_headers: list[tuple[str, str]] = []
    for name, value in em.raw_items():
        try:  # decoded (encoded words and all), as items() would give it
            text = str(em.policy.header_fetch_parse(name, value))
        except Exception:  # a header the policy cannot decode: keep it as it came
            text = str(value)
        raw_headers.append((name, text))
    out.headers = [Header(name=n, value=" ".join(v.split())) for n, v in raw_headers]
    first = {n.lower(): v for n, v in reversed(raw_headers)}
    out.subject = " ".join(first["subject"].split()) if "subject" in first else None
    froms = _addresses([first.get("from", "")])
    out.from_ = froms[0] if froms else None
    senders = _addresses([first.get("sender", "")])
    out.sender = senders[0] if senders else out.from_
    out.to = _addresses([v for n, v in raw_headers if n.lower() == "to"])
    out.cc = _addresses([v for n, v in raw_headers if n.lower() == "cc"])
    out.reply_to = _addresses([v for n, v in raw_headers if n.lower() == "reply-to"])
    if "date" in first:
        try:
            when = parsedate_to_datetime(first["date"])
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            out.date = int(when.timestamp())
        except (TypeError, ValueError, IndexError):
            out.date = None
    out.message_id = first.get("message-id", "").strip() or None
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
            out.body = _text(body.get_content())
        except (LookupError, ValueError):
            payload = body.get_payload(decode=True)
            out.body = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    for part in _leaves(em):
        if part is body:
            continue
        disposition = part.get_content_disposition()
        cid = part.get("Content-ID")
        if disposition is None and cid is None:
            continue  # another alternative of the body
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            head: object = inner[0] if isinstance(inner, list) and inner else None
            data = (
                head.as_bytes(policy=policy.SMTP)
                if isinstance(head, EmailMessage)
                else _text(inner).encode()
            )
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        name = part.get_filename() or (
            "attachment" + (mimetypes.guess_extension(part.get_content_type()) or "")
        )
        content_id = str(cid).strip().strip("<>") if cid else None
        inline = disposition == "inline" or (disposition is None and content_id is not None)
        out.attachments.append((name, part.get_content_type(), data, inline, content_id))
    return out
