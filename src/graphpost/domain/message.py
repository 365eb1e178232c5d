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
from graphpost.domain.extended import MultiValueIn, SingleValueIn
from graphpost.domain.reader import EntityInput, GraphInput, convert, unknown_property
from graphpost.domain.times import iso
from graphpost.errors import (
    InvalidHeaderError,
    InvalidInputError,
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


class Reference(msgspec.Struct, rename="camel", omit_defaults=True):
    """What a referenceAttachment links to (the properties Graph's beta names; v1.0 has
    none, yet its service needs ``sourceUrl``)."""

    source_url: str
    provider_type: str | None = None
    permission: str | None = None
    thumbnail_url: str | None = None
    preview_url: str | None = None
    is_folder: bool | None = None


class Attachment(msgspec.Struct, rename="camel"):
    """An attachment: a file (``content``), an attached message (``item``) or a link
    (``reference``). ``kind`` is file, item or reference; the store keeps what ``payload``
    gives (the file's bytes, or the item's or link's JSON) apart from the message."""

    id: str
    name: str
    content_type: str | None
    size: int
    is_inline: bool
    content_id: str | None
    last_modified_date_time: str
    content: bytes = b""
    kind: str = "file"
    # the SHA-256 of the stored bytes when ``content`` is not loaded (large files: the store
    # streams them, and a new item refers to the same blob instead of copying it)
    blob: str | None = None
    item: Item | None = None
    reference: Reference | None = None


class Item(msgspec.Struct, rename="camel"):
    """An attached message: its document, its internet message headers and its own
    attachments (nested to at most ``MAX_ITEM_DEPTH`` levels)."""

    message: Message
    headers: list[Header] = msgspec.field(default_factory=list)
    attachments: list[Attachment] = msgspec.field(default_factory=list)


FILE, ITEM, REFERENCE = "file", "item", "reference"
_encode_json = msgspec.json.Encoder().encode
_decode_item = msgspec.json.Decoder(Item).decode
_decode_reference = msgspec.json.Decoder(Reference).decode


def payload(a: Attachment) -> bytes:
    """What the store keeps of an attachment beside its columns."""
    if a.kind == ITEM and a.item is not None:
        return _encode_json(a.item)
    if a.kind == REFERENCE and a.reference is not None:
        return _encode_json(a.reference)
    return a.content


def restored(a: Attachment, data: bytes) -> Attachment:
    """``a`` (read from the store's columns) with its ``payload`` put back."""
    if a.kind == ITEM:
        return msgspec.structs.replace(a, item=_decode_item(data))
    if a.kind == REFERENCE:
        return msgspec.structs.replace(a, reference=_decode_reference(data))
    return msgspec.structs.replace(a, content=data)


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


class MessageInput(EntityInput):
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
    single_value_extended_properties: list[SingleValueIn] | UnsetType | None = UNSET
    multi_value_extended_properties: list[MultiValueIn] | UnsetType | None = UNSET
    # read-only: accepted, never read
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


MAX_EXTENSION_BYTES = 32768
"""Largest open extension, as JSON."""
MAX_EXTENSIONS = 50
"""Most open extensions one message holds."""
OPEN_EXTENSION_ID = "microsoft.graph.openTypeExtension."
_EXTENSION_PREFIXES = (OPEN_EXTENSION_ID.lower(), "microsoft.outlookservices.opentypeextension.")


def extension_key(value: str) -> str:
    """How an extension is looked up: its name or its fully qualified id (either prefix),
    without regard to case."""
    lowered = value.lower()
    for prefix in _EXTENSION_PREFIXES:
        if lowered.startswith(prefix):
            return lowered[len(prefix) :]
    return lowered


def extension(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An open extension as stored: id, extensionName, then the custom data (primitives or
    arrays of primitives). Its ``@odata.type`` is required: extension is an abstract type."""
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
    kind = raw.get("@odata.type") or raw.get("odata.type")
    if not kind:
        raise UnprocessableTypeError(
            "Cannot process input of abstract type 'Microsoft.OutlookServices.Extension'; "
            "give the extension '@odata.type': 'microsoft.graph.openTypeExtension'.",
            target="extensions",
        )
    if not isinstance(kind, str) or kind.lstrip("#").lower() not in (
        "microsoft.graph.opentypeextension",
        "microsoft.outlookservices.opentypeextension",
    ):
        raise PropertyValueError(
            f"Extension type '{shown(str(kind), 100)}' is not supported; use "
            "microsoft.graph.openTypeExtension.",
            target="extensions",
        )
    data = {
        k: v
        for k, v in raw.items()
        if k not in ("extensionName", "id") and "@" not in k and not k.startswith("odata.")
    }
    for key, value in data.items():
        if not key or len(key) > MAX_EXTENSION_NAME or _CONTROL.search(key):
            raise PropertyValueError(
                f"Extension property names have 1 to {MAX_EXTENSION_NAME} characters and no "
                f"control character: '{shown(key, 100)}'.",
                target="extensions",
            )
        if isinstance(value, dict) or (
            isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
        ):
            raise PropertyValueError(
                f"Extension property '{shown(key, 100)}' must be a primitive value or an array "
                "of them.",
                target="extensions",
            )
    doc = {"id": OPEN_EXTENSION_ID + name, "extensionName": name, **data}
    size = len(msgspec.json.encode(doc))
    if size > MAX_EXTENSION_BYTES:
        raise InvalidInputError(
            f"The open extension '{shown(name, 100)}' is {size} bytes as JSON; an extension "
            f"holds at most {MAX_EXTENSION_BYTES} bytes.",
            target="extensions",
        )
    return doc


def extensions(raw: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The open extensions given in a create: each checked, no name twice, at most
    ``MAX_EXTENSIONS``."""
    given = list(raw)
    if len(given) > MAX_EXTENSIONS:
        raise InvalidInputError(
            f"A message can hold at most {MAX_EXTENSIONS} open extensions.", target="extensions"
        )
    out = [extension(e) for e in given]
    seen: set[str] = set()
    for doc in out:
        key = extension_key(doc["extensionName"])
        if key in seen:
            raise PropertyValueError(
                f"The extension '{shown(doc['extensionName'], 100)}' is given twice.",
                target="extensions",
            )
        seen.add(key)
    return out


class _AttachmentIn(EntityInput):
    name: str | None = None
    content_type: str | None = None
    is_inline: bool | None = None
    # read-only: accepted (an SDK echoes what it read), never read
    last_modified_date_time: Any = UNSET
    size: Any = UNSET


class FileAttachmentIn(_AttachmentIn):
    graph_type: ClassVar[str] = "microsoft.graph.fileAttachment"
    content_bytes: str | None = None
    content_id: str | None = None
    content_location: str | None = None  # "do not use" (Graph): accepted, not kept


class ItemAttachmentIn(_AttachmentIn):
    graph_type: ClassVar[str] = "microsoft.graph.itemAttachment"
    item: dict[str, Any] | None = None


class ReferenceAttachmentIn(_AttachmentIn):
    graph_type: ClassVar[str] = "microsoft.graph.referenceAttachment"
    source_url: str | None = None
    provider_type: str | None = None
    permission: str | None = None
    thumbnail_url: str | None = None
    preview_url: str | None = None
    is_folder: bool | None = None


_ATTACHMENT_TYPES: dict[str, type[_AttachmentIn]] = {
    "microsoft.graph.fileattachment": FileAttachmentIn,
    "microsoft.graph.itemattachment": ItemAttachmentIn,
    "microsoft.graph.referenceattachment": ReferenceAttachmentIn,
}
ABSTRACT_ATTACHMENT = (
    "Cannot process input of abstract type 'Microsoft.OutlookServices.Attachment'; give each "
    "attachment an '@odata.type': #microsoft.graph.fileAttachment, #microsoft.graph."
    "itemAttachment or #microsoft.graph.referenceAttachment."
)
MAX_ITEM_DEPTH = 30  # Graph expands nested item attachments up to 30 levels
PROVIDERS = ("other", "onedrivebusiness", "onedriveconsumer", "dropbox")
_PROVIDER_CANON = {"onedrivebusiness": "oneDriveBusiness", "onedriveconsumer": "oneDriveConsumer"}
PERMISSIONS = ("other", "view", "edit", "anonymousview", "anonymousedit", "organizationview",
               "organizationedit")  # fmt: skip
_PERMISSION_CANON = {p.lower(): p for p in ("anonymousView", "anonymousEdit",
                                            "organizationView", "organizationEdit")}  # fmt: skip
MAX_URL = 8192
_B64_SPACE = re.compile(r"[ \t\r\n]+")


def _odata_type(raw: Mapping[str, Any], where: str) -> str | None:
    kind = raw.get("@odata.type", raw.get("odata.type"))
    if kind is None or kind == "":
        return None
    if not isinstance(kind, str):
        raise PropertyValueError(f"'@odata.type' of {where} must be a string.", target=where)
    return kind.lstrip("#").lower()


def attachment_input(
    raw: object, now: int, *, depth: int = 0, where: str = "attachments"
) -> Attachment:
    """An attachment a client gives (POST …/attachments, or inside a message it creates or
    sends): typed by its ``@odata.type`` (with or without '#', any case), read strictly, checked
    so that nothing in it can break the MIME it will be written into."""
    if not isinstance(raw, Mapping):
        raise PropertyValueError("An attachment must be a JSON object.", target=where)
    kind = _odata_type(raw, where)
    if kind is None or kind == "microsoft.graph.attachment":
        raise UnprocessableTypeError(ABSTRACT_ATTACHMENT, target=where)
    cls = _ATTACHMENT_TYPES.get(kind)
    if cls is None:
        raise PropertyValueError(
            f"'{shown(str(raw.get('@odata.type', raw.get('odata.type'))), 100)}' is not an "
            "attachment type; use #microsoft.graph.fileAttachment, #microsoft.graph."
            "itemAttachment or #microsoft.graph.referenceAttachment.",
            target=where,
        )
    given = {k: v for k, v in raw.items() if k != "odata.type"}
    try:
        inp = convert(given, cls)
    except msgspec.ValidationError as exc:
        unknown = unknown_property(exc, cls, within=where)
        if unknown is not None:
            raise unknown from None
        raise PropertyValueError(
            f"Invalid value in an attachment: {str(exc).replace(' - at `$', ' (at `$')}"
            + ("" if " - at `$" not in str(exc) else ")"),
            target=where,
        ) from None
    name = _name(inp.name, where)
    if isinstance(inp, FileAttachmentIn):
        return _file(inp, name, now, where)
    if isinstance(inp, ItemAttachmentIn):
        return _item_attachment(inp, name, now, depth, where)
    assert isinstance(inp, ReferenceAttachmentIn)
    return _reference(inp, name, now, where)


def file_attachment(raw: object, now: int) -> Attachment:
    """An attachment given inline in a create call (any of the three types)."""
    return attachment_input(raw, now)


def _name(name: str | None, where: str) -> str:
    if not name:
        raise PropertyValueError("An attachment needs a 'name'.", target=where)
    if _CONTROL.search(name):
        raise PropertyValueError(
            f"The name of attachment '{shown(name)}' contains a line break or a control character.",
            target=where,
        )
    return name


def _content_type(ctype: str | None, name: str, where: str) -> str | None:
    if ctype and (len(ctype) > MAX_CONTENT_TYPE or not _CONTENT_TYPE.fullmatch(ctype)):
        raise PropertyValueError(
            f"Attachment '{shown(name)}': contentType '{shown(ctype)}' is not a MIME type "
            "(type/subtype, then optional ;name=value parameters, no control characters).",
            target=where,
        )
    return ctype or None


def _file(inp: FileAttachmentIn, name: str, now: int, where: str) -> Attachment:
    if inp.content_bytes is None:
        raise PropertyValueError(
            f"Attachment '{shown(name)}' needs 'contentBytes' as a base64 string.", target=where
        )
    data = inp.content_bytes
    if _B64_SPACE.search(data):  # line-wrapped base64 (MIME's 76 columns), as Graph reads it
        data = _B64_SPACE.sub("", data)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PropertyValueError(
            f"The contentBytes of attachment '{shown(name)}' is not valid base64 (RFC 4648: "
            "A-Z, a-z, 0-9, '+', '/', padded with '=' to a multiple of 4 characters).",
            target=where,
        ) from None
    ctype = _content_type(inp.content_type, name, where)
    if not ctype:
        ctype = mimetypes.guess_type(name)[0] or sniffed(content)
    content_id = inp.content_id
    if content_id is not None and _CONTROL.search(content_id):
        raise PropertyValueError(
            f"Attachment '{shown(name)}': contentId contains a line break or a control character.",
            target=where,
        )
    if content_id is not None and len(content_id) > MAX_CONTENT_ID:
        # a Content-ID cannot be folded over lines, and a line holds at most 998 characters
        raise PropertyValueError(
            f"Attachment '{shown(name)}': contentId is longer than {MAX_CONTENT_ID} characters.",
            target=where,
        )
    return attachment(
        name, ctype, content, is_inline=bool(inp.is_inline), content_id=content_id, now=now
    )


# the first bytes of common files whose name may not say what they are (Graph answers
# image/gif for a file named "smile")
_MAGIC = (
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"), (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)  # fmt: skip


def sniffed(content: bytes) -> str:
    """The content type of bytes whose name has no known extension, by their first bytes."""
    for magic, ctype in _MAGIC:
        if content.startswith(magic):
            return ctype
    return "application/octet-stream"


def _reference(inp: ReferenceAttachmentIn, name: str, now: int, where: str) -> Attachment:
    url = inp.source_url
    if not url:
        raise PropertyValueError(
            f"Reference attachment '{shown(name)}' needs a 'sourceUrl'.", target=where
        )
    for prop, value in (("sourceUrl", url), ("thumbnailUrl", inp.thumbnail_url),
                        ("previewUrl", inp.preview_url)):  # fmt: skip
        if value is None:
            continue
        if len(value) > MAX_URL or _CONTROL.search(value) or any(c.isspace() for c in value):
            raise PropertyValueError(
                f"Reference attachment '{shown(name)}': {prop} must be a URL of at most "
                f"{MAX_URL} characters without spaces or control characters.",
                target=where,
            )
    provider = _enum(inp.provider_type, PROVIDERS, "providerType")
    permission = _enum(inp.permission, PERMISSIONS, "permission")
    reference = Reference(
        source_url=url,
        provider_type=_PROVIDER_CANON.get(provider, provider) if provider else None,
        permission=_PERMISSION_CANON.get(permission, permission) if permission else None,
        thumbnail_url=inp.thumbnail_url,
        preview_url=inp.preview_url,
        is_folder=inp.is_folder,
    )
    return sized(
        Attachment(
            id=ids.attachment_id(),
            name=name,
            content_type=_content_type(inp.content_type, name, where),
            size=0,
            is_inline=bool(inp.is_inline),
            content_id=None,
            last_modified_date_time=iso(now),
            kind=REFERENCE,
            reference=reference,
        )
    )


def _item_attachment(
    inp: ItemAttachmentIn, name: str, now: int, depth: int, where: str
) -> Attachment:
    if inp.content_type:
        raise PropertyValueError(
            f"Item attachment '{shown(name)}': contentType is always null for an item.",
            target=where,
        )
    raw = inp.item
    if raw is None:
        raise PropertyValueError(
            f"Item attachment '{shown(name)}' needs an 'item' (a message).", target=where
        )
    if depth >= MAX_ITEM_DEPTH:
        raise PropertyValueError(
            f"Item attachments nest at most {MAX_ITEM_DEPTH} levels deep.", target=where
        )
    inner = f"{where}.item"
    kind = _odata_type(raw, inner)
    if kind is None:
        raise UnprocessableTypeError(
            "Cannot process input of abstract type 'Microsoft.OutlookServices.Item'; give the "
            "item an '@odata.type' of #microsoft.graph.message.",
            target=inner,
        )
    if kind != "microsoft.graph.message":
        raise PropertyValueError(
            f"Only messages can be attached as items here (not '{shown(kind, 100)}'); events "
            "and contacts are not resources of this server.",
            target=inner,
        )
    try:
        msg = convert({k: v for k, v in raw.items() if k != "odata.type"}, MessageInput)
    except msgspec.ValidationError as exc:
        unknown = unknown_property(exc, MessageInput, within=inner)
        if unknown is not None:
            raise unknown from None
        raise PropertyValueError(
            f"Invalid value in an attached item: {exc}", target=inner
        ) from None
    if msg.extensions:
        raise PropertyValueError(
            "An attached item cannot carry open extensions.", target=f"{inner}.extensions"
        )
    nested = [
        attachment_input(a, now, depth=depth + 1, where=f"{inner}.attachments")
        for a in msg.attachments or []
    ]
    return sized(
        Attachment(
            id=ids.attachment_id(),
            name=name,
            content_type=None,
            size=0,
            is_inline=bool(inp.is_inline),
            content_id=None,
            last_modified_date_time=iso(now),
            kind=ITEM,
            item=Item(
                message=embedded_message(msg, now, nested),
                headers=check_headers(msg.internet_message_headers or []),
                attachments=nested,
            ),
        )
    )


def embedded_message(inp: MessageInput, now: int, attachments: Sequence[Attachment]) -> Message:
    """The document of a message attached as an item: what the client gave; no id, folder or
    link of its own (it is not an item of the mailbox), not a draft."""
    from_ = recipient(inp.from_, {}, "from") if isinstance(inp.from_, RecipientIn) else None
    sender = recipient(inp.sender, {}, "sender") if isinstance(inp.sender, RecipientIn) else from_
    imid = inp.internet_message_id or ids.internet_message_id("graphpost.localhost")
    if inp.internet_message_id:
        _check_message_id(imid)
    doc = item(
        message_id="",
        folder_id="",
        now=now,
        web_base="",
        conversation_index=ids.conversation_index(now),
        attachments=attachments,
        internet_message_id=imid,
        subject=inp.subject if isinstance(inp.subject, str) else None,
        body=item_body(inp.body or None),
        sender=sender,
        from_=from_,
        to=recipients(_list(inp.to_recipients), {}, "toRecipients"),
        cc=recipients(_list(inp.cc_recipients), {}, "ccRecipients"),
        bcc=recipients(_list(inp.bcc_recipients), {}, "bccRecipients"),
        reply_to=recipients(_list(inp.reply_to), {}, "replyTo"),
        is_read=True if inp.is_read is UNSET or inp.is_read is None else inp.is_read,
        is_draft=False,
        importance=_enum(inp.importance or None, IMPORTANCE, "importance") or "normal",
        inference=_inference(inp.inference_classification),
        categories=list(inp.categories or []),
        flag=flag(inp.flag or None),
        delivery_receipt=bool(inp.is_delivery_receipt_requested),
        read_receipt=bool(inp.is_read_receipt_requested),
    )
    return msgspec.structs.replace(doc, change_key="", web_link="")


def _inference(value: str | UnsetType | None) -> str:
    return _enum(value or None, INFERENCE, "inferenceClassification") or "focused"


def sized(a: Attachment) -> Attachment:
    """``a`` with ``size``: the bytes the store keeps for it."""
    return msgspec.structs.replace(a, size=len(payload(a)))


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


def has_attachments(attachments: Iterable[Attachment]) -> bool:
    """hasAttachments: Graph counts every attachment but the inline ones."""
    return any(not a.is_inline for a in attachments)


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
        has_attachments=has_attachments(attachments),
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
    if inp.attachments is not UNSET and inp.attachments is not None:
        raise InvalidOperationError(
            "attachments cannot be changed by PATCH: POST each one to the message's "
            "attachments, DELETE …/attachments/{id} removes one.",
            target="attachments",
        )
    if inp.extensions is not UNSET and inp.extensions is not None:
        raise InvalidOperationError(
            "extensions cannot be changed by PATCH of the message: POST one to the message's "
            "extensions, PATCH or DELETE …/extensions/{name} changes or removes it.",
            target="extensions",
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
