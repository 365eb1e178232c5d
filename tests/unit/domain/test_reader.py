"""The strict reader's pieces: the type named at an error's path, annotations skipped."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from graphpost.domain.folders import MailFolderInput
from graphpost.domain.message import MessageInput, RecipientIn
from graphpost.domain.reader import convert, unknown_property, without_annotations


def _error(raw: Any, kind: Any) -> msgspec.ValidationError:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(raw, kind)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "kind", "type_name", "target"),
    [
        ({"x": 1}, MessageInput, "microsoft.graph.message", "x"),
        ({"from": {"emailAddress": {"address": "a@b.c", "x`y": 1}}}, MessageInput,
         "microsoft.graph.emailAddress", "from.emailAddress.x`y"),
        ({"ccRecipients": [{}, {"z": 1}]}, MessageInput, "microsoft.graph.recipient",
         "ccRecipients.z"),
        ([{"emailAddress": {}, "q": 1}], list[RecipientIn], "microsoft.graph.recipient", "q"),
        ({"isHiden": True}, MailFolderInput, "microsoft.graph.mailFolder", "isHiden"),
    ],
)  # fmt: skip
def test_the_type_at_the_path_is_named(raw: Any, kind: Any, type_name: str, target: str) -> None:
    error = unknown_property(_error(raw, kind), kind)
    assert error is not None
    assert f"does not exist on type '{type_name}'" in error.message
    assert error.target == target


def test_other_validation_errors_are_not_unknown_properties() -> None:
    assert unknown_property(_error({"subject": 5}, MessageInput), MessageInput) is None


def test_annotations_are_skipped_at_any_depth_but_odata_type() -> None:
    deep: Any = {"v@odata.x": 1, "@odata.type": "#t"}
    for _ in range(5000):
        deep = {"a": [deep], "a@odata.count": 1}
    out = without_annotations(deep)
    for _ in range(5000):
        assert set(out) == {"a"}
        out = out["a"][0]
    assert out == {"@odata.type": "#t"}


def test_convert_reads_past_annotations_and_still_refuses_unknowns() -> None:
    got = convert({"subject": "s", "subject@odata.type": "#String"}, MessageInput)
    assert got.subject == "s"
    with pytest.raises(msgspec.ValidationError):
        convert({"subject@odata.type": "#String", "nope": 1}, MessageInput)


def test_a_huge_or_unprintable_name_is_shown_short_and_escaped() -> None:
    raw = {"x" * 100_000 + "\r\n": 1}
    error = unknown_property(_error(raw, MessageInput), MessageInput)
    assert error is not None and len(error.message) < 400
    error = unknown_property(_error({"a\r\nb": 1}, MessageInput), MessageInput)
    assert error is not None and "a\\x0d\\x0ab" in error.message
