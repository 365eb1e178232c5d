from __future__ import annotations

import msgspec
import pytest

from graphpost.domain import message
from graphpost.domain.message import DraftContext, EmailAddress, MessageInput
from graphpost.errors import (
    InvalidHeaderError,
    InvalidInputError,
    InvalidOperationError,
    PropertyValueError,
    UnprocessableTypeError,
)


def ctx() -> DraftContext:
    return DraftContext(
        message_id="AAMkAGtest",
        folder_id="AQMkADdrafts",
        owner=EmailAddress(name="Adele Vance", address="AdeleV@contoso.onmicrosoft.com"),
        now=1500688436,
        web_base="http://x",
        domain="contoso.onmicrosoft.com",
    )


def parse(raw: dict[str, object]) -> MessageInput:
    return msgspec.json.decode(msgspec.json.encode(raw), type=MessageInput)


def test_new_draft_defaults_and_normalisation() -> None:
    inp = parse({"importance": "Low", "toRecipients": [{"emailAddress": {"address": "A@b.c"}}],
                 "replyTo": [{"emailAddress": {"address": "r@b.c", "name": "Given"}}]})  # fmt: skip
    msg = message.new_draft(inp, ctx(), {"a@b.c": "Resolved Name"})
    assert msg.importance == "low" and msg.is_draft and msg.is_read
    assert msg.to_recipients[0].email_address.name == "Resolved Name"
    assert msg.to_recipients[0].email_address.address == "A@b.c"
    assert msg.reply_to[0].email_address.name == "Given"
    assert msg.flag.flag_status == "notFlagged"
    assert msg.sent_date_time == msg.received_date_time == "2017-07-22T01:53:56Z"
    assert msg.body.content_type == "text" and msg.body.content == ""
    wire = msgspec.json.decode(msgspec.json.encode(msg))
    assert list(wire)[:4] == ["id", "createdDateTime", "lastModifiedDateTime", "changeKey"]
    assert wire["from"] == {
        "emailAddress": {"name": "Adele Vance", "address": "AdeleV@contoso.onmicrosoft.com"}
    }


def test_headers_rule() -> None:
    ok = message.check_headers([message.HeaderIn("X-Thing", "v"), message.HeaderIn("x-a", "")])
    assert [h.name for h in ok] == ["X-Thing", "x-a"]
    with pytest.raises(InvalidHeaderError, match="should start with 'x-' or 'X-'"):
        message.check_headers([message.HeaderIn("References", "<a@b>")])
    with pytest.raises(InvalidHeaderError):
        message.check_headers([message.HeaderIn("x-a", "v\r\nBcc: evil@x")])


def test_patch_rules_on_sent_items() -> None:
    sent = msgspec.structs.replace(message.new_draft(parse({}), ctx(), {}), is_draft=False)
    with pytest.raises(InvalidOperationError, match="subject"):
        message.apply_patch(sent, parse({"subject": "x"}), {}, 1)
    changed = message.apply_patch(sent, parse({"isRead": False, "categories": ["A"]}), {}, 2)
    assert changed.is_read is False and changed.categories == ["A"]
    assert changed.change_key != sent.change_key


def test_flag_rules() -> None:
    with pytest.raises(PropertyValueError):
        message.flag(message.FollowupFlagIn(due_date_time=message.DateTimeTimeZoneIn("2024-01-01")))
    f = message.flag(message.FollowupFlagIn(flag_status="FLAGGED"))
    assert f.flag_status == "flagged"


def test_extension_and_attachment_checks() -> None:
    ext = message.extension(
        {"extensionName": "Com.X", "a": 1, "@odata.type": "#microsoft.graph.openTypeExtension"}
    )
    assert ext == {
        "id": "microsoft.graph.openTypeExtension.Com.X",
        "extensionName": "Com.X",
        "a": 1,
    }
    att = message.file_attachment(
        {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.pdf", "contentBytes": "aGk="},
        1,
    )
    assert att.content == b"hi" and att.size == 2 and att.content_type == "application/pdf"


@pytest.mark.parametrize(
    "name", ["x-a b", "x-a\x0bb", "x-a\x00", "x-a:b", "x-ä", "x-a\tb", "x-\x7f", "x-a\r\nb"]
)
def test_header_names_must_be_field_names(name: str) -> None:
    with pytest.raises(InvalidHeaderError):
        message.check_headers([message.HeaderIn(name, "v")])


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "a\x1bb", "a\u2028b", "a\x85b"])
def test_header_values_have_no_line_break_or_control(value: str) -> None:
    with pytest.raises(InvalidHeaderError):
        message.check_headers([message.HeaderIn("x-a", value)])
    assert message.check_headers([message.HeaderIn("X-Ok~!", "tab\tok ü")])[0].value == "tab\tok ü"


def _att(**over: object) -> dict[str, object]:
    return {"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.txt",
            "contentBytes": "aGk=", **over}  # fmt: skip


@pytest.mark.parametrize(
    "ctype",
    ["text/plain", "Text/Plain", ' text/plain ; charset="utf-8" ; format=flowed ;',
     "application/vnd.ms-excel", 'a/b; c="x\\"y"'],
)  # fmt: skip
def test_content_types_that_are_mime_types(ctype: str) -> None:
    assert message.file_attachment(_att(contentType=ctype), 0).content_type == ctype


@pytest.mark.parametrize(
    "over",
    [{"contentType": "text"}, {"contentType": "a/b;c"}, {"contentType": "a/b c"},
     {"contentType": "a/b\r\nX-Evil: 1"}, {"contentType": 'a/b; c="x'}, {"contentType": "a/b;;"},
     {"contentType": "a/b" + "\t" * 5000 + "x"}, {"contentType": "a/b; c=" + "d" * 1000},
     {"contentType": ["a/b"]}, {"name": "a\r\nb"}, {"name": "a\x00"}, {"name": "a\u2028"},
     {"contentId": "c\r\nX: 1", "isInline": True}, {"contentId": "c\x7f"}],
)  # fmt: skip
def test_part_header_values_are_checked(over: dict[str, object]) -> None:
    with pytest.raises(PropertyValueError):
        message.file_attachment(_att(**over), 0)


@pytest.mark.parametrize("imid", ["a b", "<ø@x>", "<a@b>\n", "x" * 999])
def test_internet_message_id_is_printable_ascii(imid: str) -> None:
    with pytest.raises(PropertyValueError):
        message.new_draft(parse({"internetMessageId": imid}), ctx(), {})
    ok = message.new_draft(parse({"internetMessageId": "<" + "x" * 996 + ">"}), ctx(), {})
    assert len(ok.internet_message_id) == 998


OPEN = "microsoft.graph.openTypeExtension"


def test_extension_values_are_primitives_or_arrays_of_them() -> None:
    ok = message.extension({"@odata.type": OPEN, "extensionName": "e", "v": [1, "a", None]})
    assert ok["v"] == [1, "a", None]
    for bad in ({"a": 1}, [[1]], [{"a": 1}]):
        with pytest.raises(PropertyValueError):
            message.extension({"@odata.type": OPEN, "extensionName": "e", "v": bad})
    with pytest.raises(PropertyValueError):
        message.extension({"@odata.type": OPEN, "extensionName": "e" * 256})


def test_an_extension_needs_its_type_a_sane_size_and_plain_property_names() -> None:
    with pytest.raises(UnprocessableTypeError):
        message.extension({"extensionName": "e"})
    with pytest.raises(PropertyValueError):
        message.extension({"@odata.type": "#microsoft.graph.fileAttachment", "extensionName": "e"})
    for key in ("", "a\nb", "k" * 256):
        with pytest.raises(PropertyValueError):
            message.extension({"@odata.type": OPEN, "extensionName": "e", key: 1})
    big = {"@odata.type": OPEN, "extensionName": "e", "v": "x" * message.MAX_EXTENSION_BYTES}
    with pytest.raises(InvalidInputError, match="at most 32768 bytes"):
        message.extension(big)
    legacy = "Microsoft.OutlookServices.OpenTypeExtension"
    assert message.extension({"@odata.type": legacy, "extensionName": "e"})["id"] == OPEN + ".e"
    assert message.extension_key("MICROSOFT.graph.openTypeExtension.Com.X") == "com.x"
    twice = [{"@odata.type": OPEN, "extensionName": n} for n in ("Com.X", "com.x")]
    with pytest.raises(PropertyValueError, match="given twice"):
        message.extensions(twice)


# ---------------------------------------------------------------- attachment input


def _item(depth: int) -> dict[str, object]:
    inner: dict[str, object] = _att(name="bottom.txt")
    for _ in range(depth):
        message_in = {"@odata.type": "#microsoft.graph.message", "attachments": [inner]}
        inner = {"@odata.type": "#microsoft.graph.itemAttachment", "name": "i", "item": message_in}
    return inner


def test_attachment_types_and_payloads() -> None:
    item = message.attachment_input(_item(2), 0)
    assert item.kind == message.ITEM and item.content_type is None and item.item is not None
    assert item.item.message.has_attachments and not item.item.message.is_draft
    stored = message.payload(item)
    assert item.size == len(stored)
    back = message.restored(msgspec.structs.replace(item, item=None), stored)
    assert back == item
    link = message.attachment_input(
        {"@odata.type": "microsoft.graph.referenceattachment", "name": "l",
         "sourceUrl": "https://x/y", "providerType": "ONEDRIVECONSUMER"}, 0)  # fmt: skip
    assert link.reference == message.Reference("https://x/y", provider_type="oneDriveConsumer")
    assert message.restored(msgspec.structs.replace(link, reference=None),
                            message.payload(link)) == link  # fmt: skip


def test_nesting_stops_at_thirty_items() -> None:
    assert message.attachment_input(_item(30), 0).kind == message.ITEM
    with pytest.raises(PropertyValueError, match="at most 30 levels"):
        message.attachment_input(_item(31), 0)


@pytest.mark.parametrize(
    ("name", "data", "ctype"),
    [("smile", b"GIF89a...", "image/gif"), ("p", b"\x89PNG\r\n\x1a\nx", "image/png"),
     ("x.txt", b"GIF89a", "text/plain"), ("blob", b"\x00\x01", "application/octet-stream")],
)  # fmt: skip
def test_content_type_from_name_then_bytes(name: str, data: bytes, ctype: str) -> None:
    import base64

    raw = _att(name=name, contentBytes=base64.b64encode(data).decode())
    assert message.attachment_input(raw, 0).content_type == ctype


def test_patch_refuses_attachments() -> None:
    msg = message.new_draft(parse({}), ctx(), {})
    with pytest.raises(InvalidOperationError):
        message.apply_patch(msg, parse({"attachments": [_att()]}), {}, 0)
    assert message.apply_patch(msg, parse({"attachments": None}), {}, 0).subject is None


def test_base64_may_be_wrapped_over_lines() -> None:
    wrapped = _att(contentBytes="aGVs\r\nbG8g\n d29y bGQ=")
    assert message.attachment_input(wrapped, 0).content == b"hello world"
    with pytest.raises(PropertyValueError, match="not valid base64"):
        message.attachment_input(_att(contentBytes="aGVs-bG8_"), 0)
