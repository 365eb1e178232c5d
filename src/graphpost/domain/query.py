"""The shape of a message query ($filter, $orderby, paging), independent of URL and SQL.

The HTTP edge parses OData text into these nodes; the store compiles them to SQL.
Property paths are lower case (OData names are matched case-insensitively).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

from graphpost.domain.search import FULL_READ_FIELDS, SearchNode, restricted_fields
from graphpost.errors import AccessDeniedError, InefficientFilterError

LiteralKind = TypingLiteral["string", "number", "bool", "null", "datetime"]


@dataclass(frozen=True, slots=True)
class Prop:
    path: tuple[str, ...]

    @property
    def name(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True, slots=True)
class Lit:
    value: str | int | float | bool | None
    kind: LiteralKind


@dataclass(frozen=True, slots=True)
class Compare:
    op: str  # eq ne gt ge lt le
    left: Prop
    right: Lit


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str  # contains startswith endswith
    prop: Prop
    arg: Lit


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class BoolProp:
    """A boolean property used on its own as a condition (``isRead``)."""

    prop: Prop


@dataclass(frozen=True, slots=True)
class Lambda:
    """``collection/any(v: body)`` or ``all``; props in ``body`` start with ``var``."""

    quantifier: str  # any, all
    collection: str
    var: str
    body: Node | None


Node = Compare | FunctionCall | And | Or | Not | BoolProp | Lambda


@dataclass(frozen=True, slots=True)
class OrderBy:
    prop: Prop
    descending: bool


@dataclass(slots=True)
class MessageQuery:
    filter: Node | None = None
    orderby: list[OrderBy] = field(default_factory=list)
    top: int = 10
    skip: int = 0
    count: bool = False
    search: SearchNode | None = None
    """``$search``: newest first, never with $filter or $orderby (the edge refuses them)."""


def filter_properties(node: Node | None) -> list[str]:
    """Property names in the order they first appear in a filter (lambda: its collection)."""
    seen: list[str] = []

    def walk(n: Node | None) -> None:
        if n is None:
            return
        if isinstance(n, Compare):
            name = n.left.name
        elif isinstance(n, (FunctionCall, BoolProp)):
            name = n.prop.name
        elif isinstance(n, Lambda):
            name = n.collection
        elif isinstance(n, Not):
            walk(n.operand)
            return
        else:
            walk(n.left)
            walk(n.right)
            return
        if name not in seen:
            seen.append(name)

    walk(node)
    return seen


def check_order_rule(query: MessageQuery) -> None:
    """Exchange's rule for $filter with $orderby: the sort properties lead the filter, in order."""
    if query.filter is None or not query.orderby:
        return
    in_filter = filter_properties(query.filter)
    wanted = [o.prop.name for o in query.orderby]
    if in_filter[: len(wanted)] != wanted:
        raise InefficientFilterError(
            "The restriction or sort order is too complex for this operation. "
            "Every $orderby property must also appear in $filter, in the same order, "
            "before any other property."
        )


# Properties Mail.ReadBasic does not cover (Graph hides them from such a token): the body,
# and the custom data apps keep on a message (open extensions, extended properties).
BODY_PROPERTIES = frozenset({"body", "bodypreview", "uniquebody"})
CUSTOM_DATA = frozenset(
    {"extensions", "singlevalueextendedproperties", "multivalueextendedproperties"}
)


def may_touch(path: tuple[str, ...] | str, *, basic_only: bool) -> bool:
    """THE rule for which message properties a caller may read, filter, sort or (later)
    search on: a Mail.ReadBasic caller none of the body's, nor extensions or extended
    properties (``basic_only``)."""
    first = (path.split("/", 1)[0] if isinstance(path, str) else path[0]) if path else ""
    return not (basic_only and first.lower() in BODY_PROPERTIES | CUSTOM_DATA)


def query_properties(query: MessageQuery) -> list[tuple[str, ...]]:
    """Every property path a query names: in $filter (inside any/all and functions too)
    and in $orderby."""
    found: list[tuple[str, ...]] = []
    # (node, the lambda variable in scope: paths starting with it name the item, not the message)
    stack: list[tuple[Node, str | None]] = [(query.filter, None)] if query.filter else []
    while stack:
        n, var = stack.pop()
        if isinstance(n, (Compare, FunctionCall, BoolProp)):
            prop = n.left if isinstance(n, Compare) else n.prop
            if var is None or not prop.path or prop.path[0] != var:
                found.append(prop.path)
        elif isinstance(n, Lambda):
            found.append(tuple(n.collection.split("/")))
            if n.body is not None:
                stack.append((n.body, n.var))
        elif isinstance(n, Not):
            stack.append((n.operand, var))
        else:
            stack += [(n.left, var), (n.right, var)]
    found += [o.prop.path for o in query.orderby]
    return found


def check_access(query: MessageQuery, *, basic_only: bool) -> None:
    """403 for a query that would read what the caller may not (a $filter on bodyPreview
    under Mail.ReadBasic answers one character at a time, and so would a $search on the
    body or attachment names: free text simply leaves them out, see search.without_full_read)."""
    if basic_only and query.search is not None:
        named = restricted_fields(query.search) & FULL_READ_FIELDS
        if named:
            raise AccessDeniedError(
                "Access is denied. Check credentials and try again. Mail.ReadBasic does not "
                f"grant reading the {' or '.join(sorted(named))} of messages, so $search "
                "cannot name it."
            )
    for path in query_properties(query):
        if not may_touch(path, basic_only=basic_only):
            raise AccessDeniedError(
                "Access is denied. Check credentials and try again. "
                f"Mail.ReadBasic does not grant reading '{'/'.join(path)}', so it cannot be "
                "used in $filter or $orderby."
            )
