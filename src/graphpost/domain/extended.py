"""Legacy extended properties (MAPI): their ids, values and the rules between them.

An id is ``"{type} {guid} Name {name}"``, ``"{type} {guid} Id 0x8012"`` or ``"{type} 0x4001"``
(a property tag). Exchange reads the type, the GUID and the ``Name``/``Id`` keyword without
regard to case and the name with it; ids are stored in one canonical spelling (the type as
the docs write it, the GUID in lower case within braces, numbers as lower-case hex without
leading zeros), so that an id given in any spelling finds the same property.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from msgspec import UnsetType

from graphpost.domain.addresses import shown
from graphpost.domain.reader import GraphInput
from graphpost.domain.times import parse_iso
from graphpost.errors import (
    ExtendedPropertyError,
    ExtendedPropertyIdError,
    ExtendedPropertyValueError,
)

MAX_PROPERTIES = 100
"""Most extended properties (single- and multi-value together) one message holds."""
MAX_VALUE_CHARS = 32768
"""Longest value (of a single-value property, or of each value of a multi-value one)."""
MAX_VALUES = 100
"""Most values of one multi-value property."""
MAX_NAME_CHARS = 255
"""Longest name of a named property."""

# The MAPI property types Graph accepts, by their lower-case spelling.
_SINGLE = {t.lower(): t for t in (
    "ApplicationTime", "Binary", "Boolean", "CLSID", "Currency", "Double", "Float", "Integer",
    "Long", "Short", "String", "SystemTime",
)}  # fmt: skip
_MULTI = {f"{t.lower()}array": f"{t}Array" for k, t in _SINGLE.items() if k != "boolean"}
PS_INTERNET_HEADERS = "{00020386-0000-0000-c000-000000000046}"
"""The namespace whose named String properties are the message's internet headers."""

_ID = re.compile(
    r"\s*(?P<type>[A-Za-z]+)\s+(?:"
    r"(?P<guid>\{[^{}\s]*\}|[0-9A-Fa-f-]{36})\s+(?P<kind>[A-Za-z]+)\s+(?P<rest>.*?)"
    r"|(?P<tag>0[xX][0-9A-Fa-f]+))\s*",
    re.S,
)
_HEX = re.compile(r"0[xX]([0-9A-Fa-f]{1,8})|([0-9]{1,10})")
# what int() and float() read, but ASCII digits only (no 1_000, no other scripts' digits)
_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,20}\s*")
_FLOAT = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

FORMATS = (
    "PropertyId values may only be in one of the following formats: 'MapiPropertyType "
    "namespaceGuid Name propertyName', 'MapiPropertyType namespaceGuid Id propertyId' or "
    "'MapiPropertyType propertyTag'."
)
COMBINATION = "The extended property attribute combination is invalid."


class SingleValueIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.singleValueLegacyExtendedProperty"
    id: str | None = None
    value: str | None = None


class MultiValueIn(GraphInput):
    graph_type: ClassVar[str] = "microsoft.graph.multiValueLegacyExtendedProperty"
    id: str | None = None
    value: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ExtendedProperty:
    """One extended property of a message: its canonical id and its value (a list for a
    multi-value property)."""

    id: str
    value: str | list[str]

    @property
    def multi(self) -> bool:
        return isinstance(self.value, list)

    def wire(self) -> dict[str, str | list[str]]:
        return {"id": self.id, "value": self.value}


def _number(text: str) -> str:
    m = _HEX.fullmatch(text)
    if m is None:
        raise ExtendedPropertyIdError(f"{FORMATS} '{shown(text, 40)}' is not a number.")
    value = int(m.group(1), 16) if m.group(1) else int(m.group(2))
    if value > 0xFFFFFFFF:
        raise ExtendedPropertyIdError(f"{FORMATS} '{shown(text, 40)}' is out of range.")
    return f"0x{value:x}"


def canonical_id(raw: str, *, multi: bool | None = None) -> str:
    """The id in its one stored spelling. ``multi``: True for a multi-value property, False
    for a single-value one, None when either will do (a $filter or $expand names it)."""
    m = _ID.fullmatch(raw)
    if m is None:
        raise ExtendedPropertyIdError(FORMATS)
    kind = m.group("type").lower()
    canon = _SINGLE.get(kind) if multi is False else _MULTI.get(kind) if multi else None
    if multi is None:
        canon = _SINGLE.get(kind) or _MULTI.get(kind)
    if canon is None:
        raise ExtendedPropertyError(
            f"{COMBINATION} '{shown(m.group('type'), 40)}' is not a "
            f"{'multi-value ' if multi else 'single-value ' if multi is False else ''}"
            "MAPI property type."
        )
    if m.group("tag") is not None:
        return f"{canon} {_number(m.group('tag'))}"
    try:
        guid = "{" + str(uuid.UUID(m.group("guid").strip("{}"))) + "}"
    except ValueError:
        raise ExtendedPropertyIdError(
            f"{FORMATS} '{shown(m.group('guid'), 40)}' is not a GUID."
        ) from None
    keyword, rest = m.group("kind").lower(), m.group("rest")
    if keyword == "id":
        return f"{canon} {guid} Id {_number(rest)}"
    if keyword != "name" or not rest:
        raise ExtendedPropertyIdError(FORMATS)
    if len(rest) > MAX_NAME_CHARS or _CONTROL.search(rest):
        raise ExtendedPropertyIdError(
            f"The name of an extended property has at most {MAX_NAME_CHARS} characters and no "
            "control character."
        )
    if guid == PS_INTERNET_HEADERS:  # header names: MAPI compares them without case
        rest = rest.lower()
    return f"{canon} {guid} Name {rest}"


def _check_value(type_name: str, value: str, prop_id: str) -> None:
    if len(value) > MAX_VALUE_CHARS:
        raise ExtendedPropertyValueError(
            f"The value of extended property '{shown(prop_id, 100)}' is longer than "
            f"{MAX_VALUE_CHARS} characters."
        )
    kind = type_name.lower().removesuffix("array")
    ok = True
    try:
        if kind in ("integer", "short", "long", "currency"):
            bits = {"short": 16, "integer": 32}.get(kind, 64)
            ok = _INTEGER.fullmatch(value) is not None
            ok = ok and -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)
        elif kind in ("double", "float"):
            ok = _FLOAT.fullmatch(value) is not None and math.isfinite(float(value))
        elif kind == "boolean":
            ok = value.strip().lower() in ("true", "false")
        elif kind in ("systemtime", "applicationtime"):
            parse_iso(value)
        elif kind == "clsid":
            uuid.UUID(value.strip().strip("{}"))
        elif kind == "binary":
            base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error, OverflowError):
        ok = False
    if not ok:
        raise ExtendedPropertyValueError(
            f"The value '{shown(value, 40)}' of extended property '{shown(prop_id, 100)}' is "
            f"not a {type_name.removesuffix('Array')}."
        )


def single(item: SingleValueIn) -> ExtendedProperty:
    if not item.id:
        raise ExtendedPropertyIdError(f"An extended property needs an 'id'. {FORMATS}")
    prop_id = canonical_id(item.id, multi=False)
    value = item.value if item.value is not None else ""
    _check_value(prop_id.split(" ", 1)[0], value, prop_id)
    return ExtendedProperty(prop_id, value)


def multiple(item: MultiValueIn) -> ExtendedProperty:
    if not item.id:
        raise ExtendedPropertyIdError(f"An extended property needs an 'id'. {FORMATS}")
    prop_id = canonical_id(item.id, multi=True)
    values = list(item.value or [])
    if len(values) > MAX_VALUES:
        raise ExtendedPropertyValueError(
            f"Extended property '{shown(prop_id, 100)}' has more than {MAX_VALUES} values."
        )
    for value in values:
        _check_value(prop_id.split(" ", 1)[0], value, prop_id)
    return ExtendedProperty(prop_id, values)


def from_input(
    singles: list[SingleValueIn] | UnsetType | None, multis: list[MultiValueIn] | UnsetType | None
) -> list[ExtendedProperty]:
    """The extended properties a create or PATCH gives (one per id: the last given wins)."""
    given = (len(singles) if isinstance(singles, list) else 0) + (
        len(multis) if isinstance(multis, list) else 0
    )
    if given > MAX_PROPERTIES:  # before checking each of them: the work stays bounded
        raise too_many()
    found: dict[str, ExtendedProperty] = {}
    for item in singles if isinstance(singles, list) else ():
        prop = single(item)
        found[prop.id] = prop
    for many in multis if isinstance(multis, list) else ():
        prop = multiple(many)
        found[prop.id] = prop
    if len(found) > MAX_PROPERTIES:
        raise too_many()
    return list(found.values())


def too_many() -> ExtendedPropertyError:
    return ExtendedPropertyError(
        f"A message can hold at most {MAX_PROPERTIES} extended properties."
    )


def from_headers(headers: Iterable[tuple[str, str]]) -> list[ExtendedProperty]:
    """The ``x-`` headers of a received message as Exchange exposes them: String properties of
    the internet headers namespace (the first header of each name; at most
    ``MAX_PROPERTIES``; names or values past the limits are left out)."""
    found: dict[str, ExtendedProperty] = {}
    for name, value in headers:
        if len(found) >= MAX_PROPERTIES:
            break
        if (
            not name.lower().startswith("x-")
            or len(name) > MAX_NAME_CHARS
            or len(value) > MAX_VALUE_CHARS
            or _CONTROL.search(name)
        ):
            continue
        prop_id = f"String {PS_INTERNET_HEADERS} Name {name.lower()}"
        found.setdefault(prop_id, ExtendedProperty(prop_id, value))
    return list(found.values())


def internet_header(prop: ExtendedProperty) -> tuple[str, str] | None:
    """(name, value) of a String property in the internet headers namespace, which Exchange
    writes as a header of the message; None for any other property."""
    prefix = f"String {PS_INTERNET_HEADERS} Name "
    if isinstance(prop.value, str) and prop.id.startswith(prefix):
        return prop.id[len(prefix) :], prop.value
    return None
