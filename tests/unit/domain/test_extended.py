"""Extended property ids and values (domain/extended.py)."""

from __future__ import annotations

import pytest

from graphpost.domain import extended
from graphpost.domain.extended import MultiValueIn, SingleValueIn, canonical_id
from graphpost.errors import (
    ExtendedPropertyError,
    ExtendedPropertyIdError,
    ExtendedPropertyValueError,
)

GUID = "66f5a359-4659-4830-9070-00047ec6ac6e"


def test_every_spelling_of_an_id_is_one_canonical_id() -> None:
    canon = f"String {{{GUID}}} Name Color"
    for spelling in (
        canon,
        f"string {{{GUID.upper()}}} NAME Color",
        f"  STRING   {GUID}  name   Color  ",
    ):
        assert canonical_id(spelling, multi=False) == canon
    # the name keeps its case: Exchange compares it with case
    assert canonical_id(f"String {{{GUID}}} Name color") != canon
    assert canonical_id(f"Integer {{{GUID}}} Id 0x08012") == f"Integer {{{GUID}}} Id 0x8012"
    assert canonical_id("Binary 0x0E0A") == "Binary 0xe0a"
    assert canonical_id("StringArray 0x4002101E", multi=True) == "StringArray 0x4002101e"
    assert canonical_id(f"String {{{GUID}}} Name two words") == f"String {{{GUID}}} Name two words"


@pytest.mark.parametrize(
    "bad",
    ["Test", "", "String", f"String {{{GUID}}}", f"String {{{GUID}}} Nom x", "String {x} Name a",
     f"String {{{GUID}}} Id zz", "String 0x1FFFFFFFFF", f"String {{{GUID}}} Name a\nb",
     f"String {{{GUID}}} Name " + "n" * 256, "Str1ng 0x1"],
)  # fmt: skip
def test_malformed_ids_are_graphs_invalid_property(bad: str) -> None:
    with pytest.raises(ExtendedPropertyIdError):
        canonical_id(bad)


def test_types_must_fit_the_collection() -> None:
    with pytest.raises(ExtendedPropertyError):
        canonical_id("StringArray 0x1", multi=False)
    with pytest.raises(ExtendedPropertyError):
        canonical_id("String 0x1", multi=True)
    with pytest.raises(ExtendedPropertyError):
        canonical_id("Widget 0x1")
    with pytest.raises(ExtendedPropertyError):
        canonical_id("BooleanArray 0x1", multi=True)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [("Integer", "-12", "12.5"), ("Integer", "2147483647", "2147483648"), ("Short", "1", "70000"),
     ("Long", "9007199254740993", "x"), ("Boolean", "True", "yes"), ("Double", "1.5e3", "nan"),
     ("SystemTime", "2024-01-31T10:00:00Z", "yesterday"), ("CLSID", GUID, "not-a-guid"),
     ("Binary", "aGk=", "a*b"), ("String", "", "x" * (extended.MAX_VALUE_CHARS + 1))],
)  # fmt: skip
def test_values_must_fit_their_type(kind: str, good: str, bad: str) -> None:
    prop_id = f"{kind} {{{GUID}}} Name v"
    assert extended.single(SingleValueIn(id=prop_id, value=good)).value == good
    with pytest.raises(ExtendedPropertyValueError):
        extended.single(SingleValueIn(id=prop_id, value=bad))


def test_multi_values_and_caps() -> None:
    prop = extended.multiple(MultiValueIn(id=f"StringArray {{{GUID}}} Name p", value=["a", "b"]))
    assert prop.multi and prop.value == ["a", "b"]
    with pytest.raises(ExtendedPropertyValueError):
        extended.multiple(MultiValueIn(id=f"IntegerArray {{{GUID}}} Name p", value=["1", "x"]))
    with pytest.raises(ExtendedPropertyValueError):
        extended.multiple(MultiValueIn(id=f"StringArray {{{GUID}}} Name p", value=["a"] * 101))
    many = [SingleValueIn(id=f"String {{{GUID}}} Name p{i}", value="v") for i in range(101)]
    with pytest.raises(ExtendedPropertyError, match="at most 100"):
        extended.from_input(many, None)
    # the same id twice: the last one given wins
    twice = [SingleValueIn(id=f"String {{{GUID}}} Name p", value=v) for v in ("1", "2")]
    assert [p.value for p in extended.from_input(twice, None)] == ["2"]
    with pytest.raises(ExtendedPropertyIdError):
        extended.from_input([SingleValueIn(value="no id")], None)


def test_internet_headers_namespace() -> None:
    header = extended.single(
        SingleValueIn(id="String {00020386-0000-0000-C000-000000000046} Name X-Foo", value="1")
    )
    # header names compare without case, as MAPI compares them in this namespace
    assert header.id == "String {00020386-0000-0000-c000-000000000046} Name x-foo"
    assert extended.internet_header(header) == ("x-foo", "1")
    other = extended.single(SingleValueIn(id=f"String {{{GUID}}} Name X-Foo", value="1"))
    assert extended.internet_header(other) is None


def test_received_x_headers_are_properties() -> None:
    headers = [("X-Spam", "no"), ("x-spam", "second"), ("Subject", "s"),
               ("X-Big", "v" * 40_000), ("X-" + "n" * 300, "long name")]  # fmt: skip
    headers += [(f"X-H{i}", str(i)) for i in range(200)]
    props = extended.from_headers(headers)
    assert len(props) == extended.MAX_PROPERTIES
    first = props[0]
    assert first == extended.ExtendedProperty(
        "String {00020386-0000-0000-c000-000000000046} Name x-spam", "no"
    )
    assert not [p for p in props if "subject" in p.id or "x-big" in p.id or "nnn" in p.id]


def test_numbers_are_ascii_digits() -> None:
    for kind, bad in (("Integer", "1_000"), ("Integer", "\u0661\u0662"), ("Double", "1_0.5")):
        with pytest.raises(ExtendedPropertyValueError):
            extended.single(SingleValueIn(id=f"{kind} 0x1", value=bad))
    assert extended.single(SingleValueIn(id="Double 0x1", value=" -1.5E3 ")).value == " -1.5E3 "
