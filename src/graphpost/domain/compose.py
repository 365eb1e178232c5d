"""Replies, forwards and non-delivery reports, composed from an original message."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import msgspec
from msgspec import UNSET

from graphpost.domain.body import wrap_html
from graphpost.domain.message import (
    EmailAddressIn,
    Header,
    ItemBodyIn,
    Message,
    MessageInput,
    Recipient,
    RecipientIn,
)
from graphpost.errors import InvalidOperationError

_BODY_OPEN = re.compile(r"<body\b[^<>]*>", re.IGNORECASE)
_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_PREFIX = {"reply": "RE: ", "replyall": "RE: ", "forward": "FW: "}


@dataclass(frozen=True)
class ReplyRequest:
    """What createReply/createReplyAll/createForward (and reply/... ) were given."""

    kind: str  # reply, replyall, forward
    comment: str | None
    message: MessageInput | None
    to_recipients: list[RecipientIn] | None  # forward only


def _who(r: Recipient | None) -> str:
    if r is None:
        return ""
    e = r.email_address
    return f"{e.name} <{e.address}>" if e.name and e.name != e.address else str(e.address)


def _as_input(r: Recipient) -> RecipientIn:
    return RecipientIn(EmailAddressIn(r.email_address.name, r.email_address.address))


def _inner_html(original: Message) -> str:
    content = original.body.content
    if original.body.content_type != "html":
        return "<div>" + html.escape(content).replace("\n", "<br>\r\n") + "</div>"
    # the first <body ...> to the last </body> (linear: no pattern scans from many starts)
    m = _BODY_OPEN.search(content)
    end = content.lower().rfind("</body>")
    return content[m.end() : end] if m and end >= m.end() else content


def quoted_body(original: Message, comment: str | None) -> str:
    """The new draft's HTML: the comment, then the original under Outlook's header block."""
    to = "; ".join(_who(r) for r in original.to_recipients)
    cc = "; ".join(_who(r) for r in original.cc_recipients)
    block = (
        '<hr style="display:inline-block;width:98%" tabindex="-1">\r\n'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        'style="font-size:11pt" color="#000000">'
        f"<b>From:</b> {html.escape(_who(original.from_))}<br>\r\n"
        f"<b>Sent:</b> {html.escape(original.sent_date_time)}<br>\r\n"
        f"<b>To:</b> {html.escape(to)}<br>\r\n"
        + (f"<b>Cc:</b> {html.escape(cc)}<br>\r\n" if cc else "")
        + f"<b>Subject:</b> {html.escape(original.subject or '')}</font>\r\n<div>&nbsp;</div>\r\n"
        "</div>\r\n"
    )
    top = f"<div>{html.escape(comment)}</div>\r\n" if comment else ""
    return wrap_html(f"{top}<div><br>\r\n</div>\r\n{block}{_inner_html(original)}")


def _subject(kind: str, subject: str | None) -> str:
    text = subject or ""
    prefix = _PREFIX[kind]
    if text.upper().startswith(prefix.strip().upper()):
        return text
    return prefix + text


def _dedupe(items: list[Recipient], exclude: str) -> list[RecipientIn]:
    seen = {exclude.lower()}
    out: list[RecipientIn] = []
    for r in items:
        addr = (r.email_address.address or "").lower()
        if addr and addr not in seen:
            seen.add(addr)
            out.append(_as_input(r))
    return out


def response_input(original: Message, req: ReplyRequest, *, owner: str) -> MessageInput:
    """The MessageInput of a reply/reply-all/forward draft, before the caller's overrides."""
    user = req.message
    if req.comment and user is not None and isinstance(user.body, ItemBodyIn):
        raise InvalidOperationError(
            "Give either 'comment' or 'message.body', not both.", target="comment"
        )
    if (
        req.kind == "forward"
        and req.to_recipients
        and user is not None
        and isinstance(user.to_recipients, list)
        and user.to_recipients
    ):
        raise InvalidOperationError(
            "Give the forward's recipients either in 'toRecipients' or in "
            "'message.toRecipients', not both.",
            target="toRecipients",
        )
    if req.kind == "forward":
        to = list(req.to_recipients or [])
    else:
        source = original.reply_to or ([original.from_] if original.from_ else [])
        mine = [(r.email_address.address or "").lower() for r in source] == [owner.lower()]
        if mine:
            # answering one's own message (Sent Items): Outlook addresses its recipients
            source = list(original.to_recipients)
        if req.kind == "replyall":
            source = source + original.to_recipients
        to = _dedupe(source, owner if req.kind == "replyall" else "")
        if not to:
            to = _dedupe(source, "")
    cc = _dedupe(original.cc_recipients, owner) if req.kind == "replyall" else []
    base = MessageInput(
        subject=_subject(req.kind, original.subject),
        body=ItemBodyIn(content_type="html", content=quoted_body(original, req.comment)),
        to_recipients=to,
        cc_recipients=[r for r in cc if r.email_address and r.email_address.address and
                       r.email_address.address.lower() not in
                       {(t.email_address.address or "").lower() for t in to if t.email_address}],
    )  # fmt: skip
    if user is None:
        return base
    overrides = {
        f.name: getattr(user, f.name)
        for f in msgspec.structs.fields(MessageInput)
        if getattr(user, f.name) is not UNSET
    }
    if isinstance(user.body, ItemBodyIn):
        overrides["body"] = user.body
    return msgspec.structs.replace(base, **overrides)


def threading_headers(original: Message, original_headers: list[Header]) -> list[Header]:
    """In-Reply-To and References for a reply or forward of ``original``."""
    refs = next((h.value for h in original_headers if h.name.lower() == "references"), "").split()
    refs.append(original.internet_message_id)
    return [
        Header(name="In-Reply-To", value=original.internet_message_id),
        Header(name="References", value=" ".join(refs[-20:])),
    ]
