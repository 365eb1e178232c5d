"""Non-delivery reports: what the delivery queue writes to a sender when recipients fail for
good (Exchange's "Undeliverable: …", RFC 3464 delivery-status, the original attached)."""

from __future__ import annotations

import base64
import html
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from graphpost.domain.body import wrap_html
from graphpost.domain.text import one_line, storable

_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Failure:
    address: str
    code: int | None
    enhanced: str | None
    response: str


def non_delivery_report(
    *,
    original_mime: bytes,
    original_subject: str | None,
    sender: str,
    sender_name: str | None,
    failures: list[Failure],
    now: int,
) -> bytes:
    """An Exchange-style NDR ("Undeliverable: …") for the sender's Inbox, original attached.

    Never fails: every value that goes into a header is put on one line first, and should the
    report still not build (an address the header parser refuses), a plain ASCII report is
    written by hand instead."""
    subject = one_line(f"Undeliverable: {original_subject or ''}")
    failures = [
        Failure(
            one_line(f.address), f.code, one_line(f.enhanced or "") or None, one_line(f.response)
        )
        for f in failures
    ]
    try:
        return _rich_report(
            original_mime, subject, sender, one_line(sender_name or ""), failures, now
        )
    except Exception:  # a report must exist whatever the input: fall back to plain ASCII
        return _plain_report(original_mime, subject, sender, failures, now)


def _domain_of(sender: str) -> str:
    domain = sender.rsplit("@", 1)[-1]
    return domain if _HOSTNAME.match(domain) else "localhost"


def _status(f: Failure) -> str:
    return " ".join(str(x) for x in (f.code, f.enhanced) if x)


def _rich_report(
    original_mime: bytes,
    subject: str,
    sender: str,
    sender_name: str,
    failures: list[Failure],
    now: int,
) -> bytes:
    domain = _domain_of(sender)
    em = EmailMessage(policy=policy.SMTP)
    em["From"] = Address(display_name="Mail Delivery System", username="postmaster",
                         domain=domain)  # fmt: skip
    em["To"] = Address(display_name=sender_name, addr_spec=sender)
    em["Subject"] = subject
    em["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    em["Message-ID"] = f"<NDR{uuid.uuid4().hex.upper()}@{domain}>"
    em["Auto-Submitted"] = "auto-replied"
    em["X-MS-Exchange-Message-Is-Ndr"] = ""
    rows = []
    text_rows = []
    for f in failures:
        status = _status(f)
        rows.append(
            f"<p><b>{html.escape(f.address)}</b><br>\r\nRemote server returned "
            f"'{html.escape(status)} {html.escape(f.response)}'</p>"
        )
        text_rows.append(f"{f.address}\r\nRemote server returned '{status} {f.response}'")
    body_html = wrap_html(
        "<p><b>Your message couldn't be delivered.</b></p>\r\n"
        "<p>Delivery has failed to these recipients or groups:</p>\r\n"
        + "\r\n".join(rows)
        + "\r\n<p>Diagnostic information for administrators: the original message is "
        "attached.</p>"
    )
    em.set_content(
        "Your message couldn't be delivered.\r\n\r\nDelivery has failed to these recipients "
        "or groups:\r\n\r\n" + "\r\n\r\n".join(text_rows) + "\r\n",
        charset="utf-8",
    )
    em.add_alternative(body_html, subtype="html", charset="utf-8")
    em.make_mixed()
    part = EmailMessage(policy=policy.SMTP)
    part["Content-Type"] = "message/rfc822"
    part["Content-Disposition"] = 'attachment; filename="original message.eml"'
    part.set_payload(storable(original_mime.decode("utf-8", "replace")))
    em.attach(part)
    return em.as_bytes(policy=policy.SMTP)


def _plain_report(
    original_mime: bytes, subject: str, sender: str, failures: list[Failure], now: int
) -> bytes:
    """The same report in 7-bit ASCII, written by hand: nothing here can fail."""

    def ascii_line(text: str) -> str:
        return one_line(text.encode("ascii", "backslashreplace").decode("ascii"))

    domain = _domain_of(sender)
    boundary = f"ndr_{uuid.uuid4().hex}"
    rows = "\r\n\r\n".join(
        f"{ascii_line(f.address)}\r\nRemote server returned "
        f"'{ascii_line(_status(f))} {ascii_line(f.response)}'"
        for f in failures
    )
    head = (
        f"From: Mail Delivery System <postmaster@{domain}>\r\n"
        f"To: {ascii_line(sender)}\r\n"
        f"Subject: {ascii_line(subject)[:900]}\r\n"
        f"Date: {format_datetime(datetime.fromtimestamp(now, UTC))}\r\n"
        f"Message-ID: <NDR{uuid.uuid4().hex.upper()}@{domain}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "X-MS-Exchange-Message-Is-Ndr: \r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="us-ascii"\r\n\r\n'
        "Your message couldn't be delivered.\r\n\r\nDelivery has failed to these "
        f"recipients or groups:\r\n\r\n{rows}\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: application/octet-stream\r\n"
        'Content-Disposition: attachment; filename="original message.eml"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    )
    encoded = base64.encodebytes(original_mime).replace(b"\n", b"\r\n")
    return head.encode("ascii") + encoded + f"\r\n--{boundary}--\r\n".encode("ascii")
