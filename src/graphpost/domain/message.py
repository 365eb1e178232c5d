"""The message: its stored document, the input a client gives, and the rules between them.

The document is a msgspec Struct whose encoded form is Graph's wire form (``rename="camel"``),
so a message is serialised once, when it changes, and stored and served as those bytes.
msgspec is a pure data library: the domain stays free of I/O.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
from msgspec import UNSET, UnsetType

from graphpost.domain import body as bodies
from graphpost.domain import ids
from graphpost.domain.addresses import shown
from graphpost.domain.reader import GraphInput
from graphpost.domain.times import iso
from graphpost.errors import (
    InvalidHeaderError,
    InvalidOperationError,
    InvalidRecipientsError,
    PropertyValueError,
    UnprocessableTypeError,
)

IMPORTANCE = ("low", "normal", "high")
INFERENCE = ("focused", "other")
FLAG_STATUS = ("notflagged", "complete", "flagged")
_FLAG_CANON = {"notflagged": "notFlagged", "complete": "complete", "flagged": "flagged"}
MAX_HEADERS = 100
MAX_HEADER_LINE = 998
MAX_EXTENSION_NAME = 255
MAX_CONTENT_ID = 900
# internetMessageId: the Message-ID header's value, RFC 5322 printable ASCII on one line
_MESSAGE_ID = re.compile(r"[\x21-\x7e]{1,998}")
# RFC 5322 field name: printable ASCII (33..126) but ':'
FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
# a header value: no control but TAB (so no CR, LF or NUL), no Unicode line separator
_VALUE_BREAK = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
# a file name or content id: no control at all
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 2045 content type: type/subtype, then ; name=token or ; name="quoted string"
MIME_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED_VALUE = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e]|\\[\t\x20-\x7e])*"'
# possessive (*+, ++): whitespace and tokens are never re-split (no quadratic backtracking)
_CONTENT_TYPE = re.compile(
    rf"[ \t]*+{MIME_TCHARS}/{MIME_TCHARS}"
    rf"(?:[ \t]*+;[ \t]*+{MIME_TCHARS}=(?:{MIME_TCHARS}|{_QUOTED_VALUE}))*+"
    r"[ \t]*+;?[ \t]*+"
)
MAX_CONTENT_TYPE = 1000


# ---------------------------------------------------------------- the stored document


class EmailAddress(msgspec.Struct, rename="camel"):
    name: str | None = None
    address: str | None = None


class Recipient(msgspec.Struct, rename="camel"):
    email_address: EmailAddress


class ItemBody(msgspec.Struct, rename="camel"):
    content_type: str = "text"
    content: str = ""


class DateTimeTimeZone(msgspec.Struct, rename="camel"):
    date_time: str
    time_zone: str | None = "UTC"


class FollowupFlag(msgspec.Struct, rename="camel", omit_defaults=True):
    flag_status: str  # always present; the dates only when set
    completed_date_time: DateTimeTimeZone | None = None
    due_date_time: DateTimeTimeZone | None = None
    start_date_time: DateTimeTimeZone | None = None


class Message(msgspec.Struct, rename="camel"):
    """A message as Graph shows it by default; field order is the wire order."""

    id: str
    created_date_time: str
    last_modified_date_time: str
    change_key: str
    categories: list[str]
    received_date_time: str
    sent_date_time: str
    has_attachments: bool
    internet_message_id: str
    subject: str | None
    body_preview: str
    importance: str
    parent_folder_id: str
    conversation_id: str
    conversation_index: str
    is_delivery_receipt_requested: bool | None
    is_read_receipt_requested: bool
    is_read: bool
    is_draft: bool
    web_link: str
    inference_classification: str
    body: ItemBody
    sender: Recipient | None
    from_: Recipient | None = msgspec.field(name="from")
    to_recipients: list[Recipient] = msgspec.field(default_factory=list)
    cc_recipients: list[Recipient] = msgspec.field(default_factory=list)
    bcc_recipients: list[Recipient] = msgspec.field(default_factory=list)
    reply_to: list[Recipient] = msgspec.field(default_factory=list)
    flag: FollowupFlag = msgspec.field(default_factory=lambda: FollowupFlag("notFlagged"))


class Header(msgspec.Struct):
    name: str
    value: str


class Attachment(msgspec.Struct, rename="camel"):
    """A file attachment; ``content`` is kept apart from the JSON document."""

    id: str
    name: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None
    last_modified_date_time: str
    content: bytes = b""
    # the SHA-256 of the stored bytes when ``content`` is not loaded (large files: the store
    # streams them, and a new item refers to the same blob instead of copying it)
    blob: str | None = None


# ---------------------------------------------------------------- what a client sends


class EmailAddressIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.emailAddress"
    name: str | None = None
    address: str | None = None


class RecipientIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.recipient"
    email_address: EmailAddressIn | None = None


class ItemBodyIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.itemBody"
    content_type: str | None = None
    content: str | None = None


class DateTimeTimeZoneIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.dateTimeTimeZone"
    date_time: str | None = None
    time_zone: str | None = None


class FollowupFlagIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.followupFlag"
    flag_status: str | None = None
    completed_date_time: DateTimeTimeZoneIn | None = None
    due_date_time: DateTimeTimeZoneIn | None = None
    start_date_time: DateTimeTimeZoneIn | None = None


class HeaderIn(GraphInput, rename=None):
    graph_type: ClassVar[str] = "microsoft.graph.internetMessageHeader"
    name: str | None = None
    value: str | None = None


class MessageInput(GraphInput):
    """A message as POST and PATCH carry it. Unset = not given. The read-only properties a
    client may echo back (an SDK's or python-o365's whole object) are accepted and ignored,
    as Graph ignores them; any other unknown property is refused."""

    graph_type: ClassVar[str] = "microsoft.graph.message"

    subject: str | UnsetType | None = UNSET
    body: ItemBodyIn | UnsetType | None = UNSET
    importance: str | UnsetType | None = UNSET
    inference_classification: str | UnsetType | None = UNSET
    categories: list[str] | UnsetType | None = UNSET
    to_recipients: list[RecipientIn] | UnsetType | None = UNSET
    cc_recipients: list[RecipientIn] | UnsetType | None = UNSET
    bcc_recipients: list[RecipientIn] | UnsetType | None = UNSET
    reply_to: list[RecipientIn] | UnsetType | None = UNSET
    from_: RecipientIn | UnsetType | None = msgspec.field(default=UNSET, name="from")
    sender: RecipientIn | UnsetType | None = UNSET
    flag: FollowupFlagIn | UnsetType | None = UNSET
    is_read: bool | UnsetType | None = UNSET
    is_read_receipt_requested: bool | UnsetType | None = UNSET
    is_delivery_receipt_requested: bool | UnsetType | None = UNSET
    internet_message_id: str | UnsetType | None = UNSET
    internet_message_headers: list[HeaderIn] | UnsetType | None = UNSET
    extensions: list[dict[str, Any]] | UnsetType | None = UNSET
    attachments: list[dict[str, Any]] | UnsetType | None = UNSET
    # read-only: accepted, never read
    odata_etag: Any = msgspec.field(default=UNSET, name="@odata.etag")
    id: Any = UNSET
    created_date_time: Any = UNSET
    last_modified_date_time: Any = UNSET
    change_key: Any = UNSET
    received_date_time: Any = UNSET
    sent_date_time: Any = UNSET
    has_attachments: Any = UNSET
    body_preview: Any = UNSET
    unique_body: Any = UNSET
    parent_folder_id: Any = UNSET
    conversation_id: Any = UNSET
    conversation_index: Any = UNSET
    is_draft: Any = UNSET
    web_link: Any = UNSET


# ---------------------------------------------------------------- rules


def _enum(value: str | None, allowed: tuple[str, ...], prop: str) -> str | None:
    if value is None:
        return None
    lowered = value.lower()
    if lowered not in allowed:
        raise PropertyValueError(
            f"Invalid value '{value}' for property '{prop}'; "
            f"expected one of: {', '.join(allowed)}.",
            target=prop,
        )
    return lowered


def addresses_of(inp: MessageInput) -> list[str]:
    """Every address in the input's recipient properties (for a directory look-up)."""
    found: list[str] = []
    for group in (inp.to_recipients, inp.cc_recipients, inp.bcc_recipients, inp.reply_to):
        if isinstance(group, list):
            found.extend(
                r.email_address.address
                for r in group
                if r.email_address and r.email_address.address
            )
    for one in (inp.from_, inp.sender):
        if isinstance(one, RecipientIn) and one.email_address and one.email_address.address:
            found.append(one.email_address.address)
    return found


def recipient(item: RecipientIn, names: Mapping[str, str], prop: str) -> Recipient:
    """A stored recipient: the directory's display name when only the address was given."""
    if item.email_address is None:
        raise PropertyValueError(f"A recipient in '{prop}' has no emailAddress.", target=prop)
    address = item.email_address.address
    if address is not None:
        address = address.strip()
        if "\r" in address or "\n" in address:
            raise InvalidRecipientsError(
                f"At least one recipient isn't valid: '{shown(address)}' in '{prop}' contains a "
                "line break.",
                target=prop,
            )
    name = item.email_address.name
    if not name and address:
        name = names.get(address.lower(), address)
    return Recipient(EmailAddress(name=name, address=address))


def recipients(
    items: list[RecipientIn] | None, names: Mapping[str, str], prop: str
) -> list[Recipient]:
    return [recipient(item, names, prop) for item in items or ()]


def check_headers(items: Iterable[HeaderIn]) -> list[Header]:
    """internetMessageHeaders: custom ``x-`` headers only; the name an RFC 5322 field
    name (printable ASCII but ':'), the value on one line without controls."""
    out: list[Header] = []
    for item in items:
        name = item.name or ""
        if not name.lower().startswith("x-"):
            raise InvalidHeaderError(
                f"The internet message header name '{shown(name)}' should start with 'x-' or 'X-'.",
                target="internetMessageHeaders",
            )
        if not FIELD_NAME.fullmatch(name):
            raise InvalidHeaderError(
                f"The internet message header name '{shown(name)}' may hold only printable "
                "ASCII characters other than ':' (no space or control character).",
                target="internetMessageHeaders",
            )
        value = item.value or ""
        if _VALUE_BREAK.search(value):
            raise InvalidHeaderError(
                f"The value of internet message header '{name}' contains a line break or a "
                "control character.",
                target="internetMessageHeaders",
            )
        if len(name) + len(value) + 2 > MAX_HEADER_LINE:
            raise InvalidHeaderError(
                f"The internet message header '{name}' is longer than "
                f"{MAX_HEADER_LINE} characters.",
                target="internetMessageHeaders",
            )
        out.append(Header(name=name, value=value))
    if len(out) > MAX_HEADERS:
        raise InvalidHeaderError(
            f"A message can carry at most {MAX_HEADERS} internet message headers.",
            target="internetMessageHeaders",
        )
    return out


def item_body(inp: ItemBodyIn | None) -> ItemBody:
    if inp is None:
        return ItemBody()
    try:
        kind = bodies.content_type(inp.content_type or "text")
    except ValueError:
        raise PropertyValueError(
            f"Invalid value '{inp.content_type}' for property 'contentType'; "
            "expected one of: text, html.",
            target="body.contentType",
        ) from None
    content = inp.content or ""
    if kind == "html":
        content = bodies.wrap_html(content)
    return ItemBody(content_type=kind, content=content)


def flag(inp: FollowupFlagIn | None) -> FollowupFlag:
    if inp is None:
        return FollowupFlag("notFlagged")
    status = _enum(inp.flag_status, FLAG_STATUS, "flag.flagStatus")
    if inp.due_date_time is not None and inp.start_date_time is None:
        raise PropertyValueError(
            "flag.dueDateTime needs flag.startDateTime as well.", target="flag.startDateTime"
        )

    def when(value: DateTimeTimeZoneIn | None, prop: str) -> DateTimeTimeZone | None:
        if value is None:
            return None
        if not value.date_time:
            raise PropertyValueError(f"{prop}.dateTime is required.", target=prop)
        return DateTimeTimeZone(date_time=value.date_time, time_zone=value.time_zone or "UTC")

    return FollowupFlag(
        flag_status=_FLAG_CANON[status or "notflagged"],
        completed_date_time=when(inp.completed_date_time, "flag.completedDateTime"),
        due_date_time=when(inp.due_date_time, "flag.dueDateTime"),
        start_date_time=when(inp.start_date_time, "flag.startDateTime"),
    )


def extension(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An open extension as stored: id, extensionName, then the custom data."""
    name = raw.get("extensionName")
    if not isinstance(name, str) or not name.strip():
        raise PropertyValueError(
            "An open extension needs a non-empty 'extensionName'.", target="extensions"
        )
    if len(name) > MAX_EXTENSION_NAME or _CONTROL.search(name):
        raise PropertyValueError(
            f"An extensionName has at most {MAX_EXTENSION_NAME} characters and no control "
            "character.",
            target="extensions",
        )
    kind = str(raw.get("@odata.type") or raw.get("odata.type") or "").lstrip("#").lower()
    if kind and kind != "microsoft.graph.opentypeextension":
        raise PropertyValueError(
            f"Extension type '{kind}' is not supported; use microsoft.graph.openTypeExtension.",
            target="extensions",
        )
    data = {
        k: v
        for k, v in raw.items()
        if k not in ("extensionName", "id") and not k.startswith(("@", "odata."))
    }
    for key, value in data.items():
        if isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
        ):
            raise PropertyValueError(
                f"Extension property '{key}' must be a primitive value or an array of them.",
                target="extensions",
            )
    return {"id": f"microsoft.graph.openTypeExtension.{name}", "extensionName": name, **data}


def file_attachment(raw: Mapping[str, Any], now: int) -> Attachment:
    """A fileAttachment given inline in a create call; bytes decoded and measured."""
    kind = raw.get("@odata.type") or raw.get("odata.type")
    if not kind:
        raise UnprocessableTypeError(
            "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'; "
            "give each attachment an '@odata.type' such as '#microsoft.graph.fileAttachment'.",
            target="attachments",
        )
    if str(kind).lstrip("#").lower() != "microsoft.graph.fileattachment":
        raise PropertyValueError(
            f"Attachment type '{kind}' is not supported yet; use #microsoft.graph.fileAttachment.",
            target="attachments",
        )
    name = raw.get("name")
    data = raw.get("contentBytes")
    if not isinstance(name, str) or not name:
        raise PropertyValueError("A file attachment needs a 'name'.", target="attachments")
    if not isinstance(data, str):
        raise PropertyValueError(
            f"Attachment '{name}' needs 'contentBytes' as a base64 string.", target="attachments"
        )
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PropertyValueError(
            f"The contentBytes of attachment '{name}' is not valid base64.", target="attachments"
        ) from None
    if _CONTROL.search(name):
        raise PropertyValueError(
            f"The name of attachment '{shown(name)}' contains a line break or a control character.",
            target="attachments",
        )
    ctype = raw.get("contentType")
    if ctype is not None and not isinstance(ctype, str):
        raise PropertyValueError(
            f"Attachment '{name}': contentType must be a string.", target="attachments"
        )
    if ctype and (len(ctype) > MAX_CONTENT_TYPE or not _CONTENT_TYPE.fullmatch(ctype)):
        raise PropertyValueError(
            f"Attachment '{name}': contentType '{shown(ctype)}' is not a MIME type "
            "(type/subtype, then optional ;name=value parameters, no control characters).",
            target="attachments",
        )
    if not ctype:
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    content_id = raw.get("contentId")
    is_inline = raw.get("isInline", False)
    if not isinstance(is_inline, bool) or not (content_id is None or isinstance(content_id, str)):
        raise PropertyValueError(
            f"Attachment '{name}': isInline must be a boolean and contentId a string.",
            target="attachments",
        )
    if content_id is not None and _CONTROL.search(content_id):
        raise PropertyValueError(
            f"Attachment '{name}': contentId contains a line break or a control character.",
            target="attachments",
        )
    if content_id is not None and len(content_id) > MAX_CONTENT_ID:
        # a Content-ID cannot be folded over lines, and a line holds at most 998 characters
        raise PropertyValueError(
            f"Attachment '{name}': contentId is longer than {MAX_CONTENT_ID} characters.",
            target="attachments",
        )
    return attachment(name, ctype, content, is_inline=is_inline, content_id=content_id, now=now)


def attachment(
    name: str, content_type: str, content: bytes, *, is_inline: bool, content_id: str | None,
    now: int,
) -> Attachment:  # fmt: skip
    """Every new file attachment starts here (given in a request, or read off MIME)."""
    return Attachment(
        id=ids.attachment_id(),
        name=name,
        content_type=content_type,
        size=len(content),
        is_inline=is_inline,
        content_id=content_id,
        last_modified_date_time=iso(now),
        content=content,
    )


class DraftContext(msgspec.Struct, kw_only=True):
    """What the server decides about a new item: ids, time, owner, folder."""

    message_id: str
    folder_id: str
    owner: EmailAddress
    now: int
    web_base: str
    domain: str
    conversation_index: str | None = None  # a reply continues its original's conversation


def item(
    *,
    message_id: str,
    folder_id: str,
    now: int,
    web_base: str,
    conversation_index: str,
    attachments: Sequence[Attachment],
    internet_message_id: str,
    subject: str | None,
    body: ItemBody,
    sender: Recipient | None,
    from_: Recipient | None,
    to: list[Recipient],
    cc: list[Recipient],
    bcc: list[Recipient],
    reply_to: list[Recipient],
    is_read: bool,
    is_draft: bool,
    importance: str = "normal",
    inference: str = "focused",
    categories: list[str] | None = None,
    flag: FollowupFlag | None = None,
    delivery_receipt: bool | None = False,
    read_receipt: bool = False,
    sent_at: int | None = None,
) -> Message:
    """Every new message starts here (a draft, a received copy, a report): the content given,
    and what the server sets: times, change key, conversation, preview, link."""
    stamp = iso(now)
    return Message(
        id=message_id,
        created_date_time=stamp,
        last_modified_date_time=stamp,
        change_key=ids.change_key(),
        categories=categories or [],
        received_date_time=stamp,
        sent_date_time=stamp if sent_at is None else iso(sent_at),
        has_attachments=any(not a.is_inline for a in attachments),
        internet_message_id=internet_message_id,
        subject=subject,
        body_preview=bodies.preview(body.content_type, body.content),
        importance=importance,
        parent_folder_id=folder_id,
        conversation_id=ids.conversation_id_for(conversation_index),
        conversation_index=conversation_index,
        is_delivery_receipt_requested=delivery_receipt,
        is_read_receipt_requested=read_receipt,
        is_read=is_read,
        is_draft=is_draft,
        web_link=web_link(web_base, message_id),
        inference_classification=inference,
        body=body,
        sender=sender,
        from_=from_,
        to_recipients=to,
        cc_recipients=cc,
        bcc_recipients=bcc,
        reply_to=reply_to,
        flag=flag or FollowupFlag("notFlagged"),
    )


def new_draft(
    inp: MessageInput,
    ctx: DraftContext,
    names: Mapping[str, str],
    attachments: Sequence[Attachment] = (),
) -> Message:
    """The stored document of a new draft made from ``inp``."""
    body = item_body(inp.body or None)
    importance = _enum(inp.importance or None, IMPORTANCE, "importance") or "normal"
    inference = (
        _enum(inp.inference_classification or None, INFERENCE, "inferenceClassification")
        or "focused"
    )
    owner = Recipient(EmailAddress(name=ctx.owner.name, address=ctx.owner.address))
    from_ = recipient(inp.from_, names, "from") if isinstance(inp.from_, RecipientIn) else owner
    sender = (
        recipient(inp.sender, names, "sender") if isinstance(inp.sender, RecipientIn) else from_
    )
    imid = inp.internet_message_id or ids.internet_message_id(ctx.domain)
    if inp.internet_message_id:
        _check_message_id(imid)
    return item(
        message_id=ctx.message_id,
        folder_id=ctx.folder_id,
        now=ctx.now,
        web_base=ctx.web_base,
        conversation_index=ctx.conversation_index or ids.conversation_index(ctx.now),
        attachments=attachments,
        internet_message_id=imid,
        subject=inp.subject if isinstance(inp.subject, str) else None,
        body=body,
        sender=sender,
        from_=from_,
        to=recipients(_list(inp.to_recipients), names, "toRecipients"),
        cc=recipients(_list(inp.cc_recipients), names, "ccRecipients"),
        bcc=recipients(_list(inp.bcc_recipients), names, "bccRecipients"),
        reply_to=recipients(_list(inp.reply_to), names, "replyTo"),
        is_read=True if inp.is_read is UNSET or inp.is_read is None else inp.is_read,
        is_draft=True,
        importance=importance,
        inference=inference,
        categories=list(inp.categories or []),
        flag=flag(inp.flag or None),
        delivery_receipt=bool(inp.is_delivery_receipt_requested),
        read_receipt=bool(inp.is_read_receipt_requested),
    )


def is_message_id(value: str) -> bool:
    """An RFC 5322 Message-ID value we store: 1 to 998 printable ASCII characters."""
    return _MESSAGE_ID.fullmatch(value) is not None


def _check_message_id(value: str) -> str:
    if not is_message_id(value):
        raise PropertyValueError(
            "internetMessageId must be 1 to 998 printable ASCII characters without spaces "
            "(an RFC 5322 Message-ID such as <id@example.com>).",
            target="internetMessageId",
        )
    return value


def _list(value: list[RecipientIn] | UnsetType | None) -> list[RecipientIn]:
    return value if isinstance(value, list) else []


def web_link(base: str, message_id: str) -> str:
    return f"{base}/owa/?ItemID={message_id}&exvsurl=1&viewmodel=ReadMessageItem"


# Properties PATCH may change only while the item is a draft.
DRAFT_ONLY = ("subject", "body", "reply_to", "internet_message_id")


def apply_patch(msg: Message, inp: MessageInput, names: Mapping[str, str], now: int) -> Message:
    """The document after a PATCH: writable properties changed, changeKey and time bumped."""
    if not msg.is_draft:
        for prop in DRAFT_ONLY:
            if getattr(inp, prop) is not UNSET:
                wire = {"reply_to": "replyTo", "internet_message_id": "internetMessageId"}
                raise InvalidOperationError(
                    f"The property '{wire.get(prop, prop)}' can be changed only while the "
                    "message is a draft.",
                    target=wire.get(prop, prop),
                )
    if inp.internet_message_headers is not UNSET:
        raise InvalidOperationError(
            "internetMessageHeaders can be set only when the message is created.",
            target="internetMessageHeaders",
        )
    changes: dict[str, Any] = {}
    if inp.subject is not UNSET:
        changes["subject"] = inp.subject
    if inp.body is not UNSET:
        body = item_body(inp.body)
        changes["body"] = body
        changes["body_preview"] = bodies.preview(body.content_type, body.content)
    if inp.importance is not UNSET:
        changes["importance"] = _enum(inp.importance, IMPORTANCE, "importance") or "normal"
    if inp.inference_classification is not UNSET:
        changes["inference_classification"] = (
            _enum(inp.inference_classification, INFERENCE, "inferenceClassification") or "focused"
        )
    if inp.categories is not UNSET:
        changes["categories"] = list(inp.categories or [])
    for prop, camel in (
        ("to_recipients", "toRecipients"),
        ("cc_recipients", "ccRecipients"),
        ("bcc_recipients", "bccRecipients"),
        ("reply_to", "replyTo"),
    ):
        group = getattr(inp, prop)
        if group is not UNSET:
            changes[prop] = recipients(group, names, camel)
    if inp.from_ is not UNSET:
        changes["from_"] = recipient(inp.from_, names, "from") if inp.from_ else None
    if inp.sender is not UNSET:
        changes["sender"] = recipient(inp.sender, names, "sender") if inp.sender else None
    if inp.flag is not UNSET:
        changes["flag"] = flag(inp.flag)
    for prop in ("is_read", "is_read_receipt_requested", "is_delivery_receipt_requested"):
        value = getattr(inp, prop)
        if value is not UNSET:
            changes[prop] = bool(value)
    if inp.internet_message_id is not UNSET:
        if not inp.internet_message_id:
            raise PropertyValueError(
                "internetMessageId cannot be empty.", target="internetMessageId"
            )
        changes["internet_message_id"] = _check_message_id(inp.internet_message_id)
    changes["change_key"] = ids.change_key()
    changes["last_modified_date_time"] = iso(now)
    return msgspec.structs.replace(msg, **changes)
