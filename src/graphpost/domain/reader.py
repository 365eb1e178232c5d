"""The strict request reader's vocabulary: input types that refuse properties they do not have.

Graph reads a request body against its model: a property the type does not define is a 400
``RequestBodyRead`` ("The property 'x' does not exist on type 'microsoft.graph.message'…"),
never a 2xx that drops it. Every input Struct derives from ``GraphInput``: unknown fields are
refused (``forbid_unknown_fields``), ``@odata.type`` is accepted, and each class names its
Graph type. ``unknown_property`` turns msgspec's error into Graph's message for the type at the
error's path, so the reader and the actions word it the same way.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from graphpost.domain.addresses import shown
from graphpost.errors import PropertyValueError

T = TypeVar("T")
_UNKNOWN = re.compile(r"^Object contains unknown field `(.*?)`(?: - at `\$(.*)`)?$", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\['((?:[^']|'')*)'\]")


class GraphInput(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """A type a client writes: unknown properties refused, ``@odata.type`` allowed."""

    graph_type: ClassVar[str] = "microsoft.graph.entity"
    odata_type: str | UnsetType = msgspec.field(default=UNSET, name="@odata.type")


class EntityInput(GraphInput, kw_only=True):
    """An entity a client writes: its read-only ``id`` and ``@odata.etag`` are accepted (an SDK
    echoes the object it read) and never read."""

    id: Any = UNSET
    odata_etag: Any = msgspec.field(default=UNSET, name="@odata.etag")


def _struct_at(kind: Any, steps: list[str]) -> type[GraphInput] | None:
    """The input Struct reached from ``kind`` along the path ``steps`` (names and indexes)."""
    info: Any = msgspec.inspect.type_info(kind)
    for step in steps:
        info = _unwrap(info)
        if isinstance(info, msgspec.inspect.StructType):
            fields = {f.encode_name: f.type for f in info.fields}
            if step not in fields:
                return None
            info = fields[step]
        elif isinstance(info, msgspec.inspect.ListType):
            info = info.item_type
        else:
            return None
    info = _unwrap(info)
    if isinstance(info, msgspec.inspect.StructType) and issubclass(info.cls, GraphInput):
        return info.cls
    return None


def _unwrap(info: Any) -> Any:
    """The Struct or list member of an optional/union type."""
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if isinstance(member, msgspec.inspect.StructType | msgspec.inspect.ListType):
                return member
    return info


def unknown_property(
    exc: msgspec.ValidationError, kind: Any, *, within: str = ""
) -> PropertyValueError | None:
    """Graph's error for a property ``kind`` (at the error's path) does not define, or None
    when ``exc`` is another kind of error. ``within`` prefixes the path in the message."""
    m = _UNKNOWN.match(str(exc))
    if m is None:
        return None
    name, path = m.group(1), m.group(2) or ""
    steps = [a or b or (c or "").replace("''", "'") for a, b, c in _STEP.findall(path)]
    cls = _struct_at(kind, steps)
    type_name = cls.graph_type if cls is not None else "microsoft.graph.entity"
    target = ".".join(shown(s, 100) for s in [within, *steps, name] if s and not s.isdigit())
    return PropertyValueError(
        f"The property '{shown(name, 100)}' does not exist on type '{type_name}'. Make sure to "
        "only use property names that are defined by the type or mark the type as open type.",
        target=target,
    )


def has_annotation_key(exc: msgspec.ValidationError) -> bool:
    """The unknown field msgspec stopped at is an annotation (``x@odata.y``, ``@odata.etag``)."""
    m = _UNKNOWN.match(str(exc))
    return m is not None and "@" in m.group(1)


def without_annotations(value: Any) -> Any:
    """``value`` with every instance annotation but ``@odata.type`` removed, at every depth:
    Graph's reader skips annotations it does not need. Iterative: any depth is safe."""
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any]] = [(root, 0, value)]
    while stack:
        parent, key, item = stack.pop()
        if isinstance(item, dict):
            kept = {k: v for k, v in item.items() if "@" not in k or k == "@odata.type"}
            parent[key] = kept
            stack.extend((kept, k, v) for k, v in kept.items())
        elif isinstance(item, list):
            copy = list(item)
            parent[key] = copy
            stack.extend((copy, i, v) for i, v in enumerate(copy))
    return root[0]


def convert(raw: Any, kind: type[T]) -> T:
    """``raw`` (decoded JSON) as ``kind``; instance annotations the type does not declare are
    skipped, as Graph's reader skips them."""
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as exc:
        if not has_annotation_key(exc):
            raise
    return msgspec.convert(without_annotations(raw), kind)
