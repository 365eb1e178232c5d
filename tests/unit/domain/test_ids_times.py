from __future__ import annotations

import base64

from graphpost.domain import ids
from graphpost.domain.times import iso, parse_iso


def test_ids_are_url_safe_and_well_formed() -> None:
    for make in (
        ids.message_id,
        ids.folder_id,
        ids.attachment_id,
        lambda: ids.conversation_id_for(ids.conversation_index()),
    ):
        value = make()
        assert "/" not in value and "+" not in value and "=" not in value
        assert ids.is_well_formed(value)
    assert ids.message_id() != ids.message_id()


def test_well_formed_rules() -> None:
    assert ids.is_well_formed("AAMkADNlNYjSAAA=")  # a Graph docs id
    assert ids.is_well_formed("AAMkAD/+NlNYjSAA")
    assert not ids.is_well_formed("abc")
    assert not ids.is_well_formed("not an id")
    assert not ids.is_well_formed("")
    assert not ids.is_well_formed("x" * 600)


def test_change_key_and_conversation_index() -> None:
    assert '"' not in ids.change_key()
    assert len(base64.b64decode(ids.conversation_index(1_500_000_000))) == 22
    assert ids.internet_message_id("contoso.com").endswith("@contoso.com>")


def test_times() -> None:
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1500688436) == "2017-07-22T01:53:56Z"
    assert parse_iso("2017-07-22T01:53:56Z") == 1500688436
    assert parse_iso("2017-07-22") == 1500681600
    assert parse_iso("2017-07-22T03:53:56+02:00") == 1500688436
