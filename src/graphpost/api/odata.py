"""OData query options for messages: $filter (parsed to domain.query nodes), $orderby, $select,
$top, $skip, $count, $expand."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from graphpost.domain.extended import canonical_id
from graphpost.domain.query import (
    And,
    BoolProp,
    Compare,
    FunctionCall,
    Lambda,
    Lit,
    MessageQuery,
    Node,
    Not,
    Or,
    OrderBy,
    Prop,
)
from graphpost.domain.search import parse_search
from graphpost.domain.times import now
from graphpost.errors import (
    QueryError,
    SearchWithFilterError,
    SearchWithOrderByError,
    UnknownPropertyError,
)

MAX_TOP = 1000
DEFAULT_TOP = 10
FILTER_LIMIT = 32768
"""Longest $filter, in characters."""
MAX_CONDITIONS = 500
"""Most conditions (comparisons, functions, lambdas, booleans) in one $filter."""
_MAX_DEPTH = 32
MAX_ORDERBY = 32
"""Most properties in one $orderby (SQLite refuses an ORDER BY past 2000 terms)."""

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'(?:[^']|'')*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<punct>[()/,:])
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FLIP = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QueryError(f"Invalid filter clause: unexpected text at '{text[pos : pos + 20]}'.")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.vars: list[str] = []
        self.depth = 0
        self.conditions = 0

    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def word(self, offset: int = 0) -> str:
        tok = self.peek(offset)
        return tok.text.lower() if tok and tok.kind == "name" else ""

    def take(self, text: str | None = None) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise QueryError("Invalid filter clause: the expression ends too early.")
        if text is not None and tok.text.lower() != text:
            raise QueryError(f"Invalid filter clause: expected '{text}' but found '{tok.text}'.")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_expr()
        if self.peek() is not None:
            raise QueryError(f"Invalid filter clause: unexpected '{self.take().text}'.")
        return node

    def or_expr(self) -> Node:
        terms = [self.and_expr()]
        while self.word() == "or":
            self.take()
            terms.append(self.and_expr())
        return _balanced(Or, terms)

    def and_expr(self) -> Node:
        terms = [self.unary()]
        while self.word() == "and":
            self.take()
            terms.append(self.unary())
        return _balanced(And, terms)

    def unary(self) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise QueryError(f"Invalid filter clause: nested deeper than {_MAX_DEPTH} levels.")
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        if self.word() == "not":
            self.take()
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("Invalid filter clause: the expression ends too early.")
        if tok.text != "(":
            self.conditions += 1
            if self.conditions > MAX_CONDITIONS:
                raise QueryError(
                    f"$filter has more than {MAX_CONDITIONS} conditions; split the query "
                    "into several requests."
                )
        if tok.text == "(":
            self.take()
            node = self.or_expr()
            self.take(")")
            return node
        if self.word() in _FUNCTIONS and (nxt := self.peek(1)) is not None and nxt.text == "(":
            return self.function()
        if self.word() == "cast" and (nxt := self.peek(1)) is not None and nxt.text == "(":
            raise QueryError(
                "cast() is not supported in $filter here; compare the value as a string "
                "(ep/value eq '12')."
            )
        if tok.kind == "name":
            return self.from_path()
        # literal op path
        lit = self.literal()
        op = self.word()
        if op not in _COMPARE:
            raise QueryError(f"Invalid filter clause: expected a comparison after '{tok.text}'.")
        self.take()
        prop = self.path()
        if isinstance(prop, Lambda):
            raise QueryError("Invalid filter clause: a lambda cannot be compared.")
        return Compare(_FLIP[op], prop, lit)

    def function(self) -> Node:
        name = self.take().text.lower()
        self.take("(")
        prop = self.path()
        if isinstance(prop, Lambda):
            raise QueryError(f"Invalid filter clause: {name}() takes a property.")
        self.take(",")
        arg = self.literal()
        self.take(")")
        node: Node = FunctionCall(name, prop, arg)
        if self.word() in ("eq", "ne"):
            op = self.take().text.lower()
            value = self.literal()
            if value.kind != "bool":
                raise QueryError(f"Invalid filter clause: {name}() compares only with a boolean.")
            if (op == "eq") != bool(value.value):
                node = Not(node)
        return node

    def from_path(self) -> Node:
        prop = self.path()
        if isinstance(prop, Lambda):
            return prop
        op = self.word()
        if op in _COMPARE:
            self.take()
            return Compare(op, prop, self.literal())
        if op == "in":  # prop in ('a', 'b'): prop eq 'a' or prop eq 'b'
            self.take()
            self.take("(")
            values = [self.literal()]
            while (tok := self.peek()) is not None and tok.text == ",":
                self.take()
                values.append(self.literal())
            self.take(")")
            self.conditions += len(values) - 1
            if self.conditions > MAX_CONDITIONS:
                raise QueryError(
                    f"$filter has more than {MAX_CONDITIONS} conditions; split the query "
                    "into several requests."
                )
            return _balanced(Or, [Compare("eq", prop, v) for v in values])
        return BoolProp(prop)

    def path(self) -> Prop | Lambda:
        parts = [self.name()]
        while (tok := self.peek()) is not None and tok.text == "/":
            self.take()
            word = self.word()
            nxt = self.peek(1)
            if word in ("any", "all") and nxt is not None and nxt.text == "(":
                return self.lambda_(word, parts)
            parts.append(self.name())
        return Prop(tuple(parts))

    def lambda_(self, quantifier: str, parts: list[str]) -> Lambda:
        if self.vars:
            raise QueryError("Invalid filter clause: nested any/all are not supported.")
        self.take()
        self.take("(")
        if (tok := self.peek()) is not None and tok.text == ")":
            self.take()
            return Lambda(quantifier, "/".join(parts), "", None)
        var = self.name()
        self.take(":")
        self.vars.append(var)
        try:
            body = self.or_expr()
        finally:
            self.vars.pop()
        self.take(")")
        return Lambda(quantifier, "/".join(parts), var, body)

    def name(self) -> str:
        tok = self.take()
        if tok.kind != "name":
            raise QueryError(
                f"Invalid filter clause: expected a property name, found '{tok.text}'."
            )
        return tok.text.lower()

    def literal(self) -> Lit:
        tok = self.take()
        if tok.kind == "string":
            return Lit(tok.text[1:-1].replace("''", "'"), "string")
        if tok.kind == "datetime":
            return Lit(tok.text, "datetime")
        if tok.kind == "number":
            try:
                return Lit(float(tok.text) if "." in tok.text else int(tok.text), "number")
            except ValueError:  # more digits than Python converts
                raise QueryError(
                    f"Invalid filter clause: the number '{tok.text[:20]}…' is too long."
                ) from None
        word = tok.text.lower()
        if word in ("true", "false"):
            return Lit(word == "true", "bool")
        if word == "null":
            return Lit(None, "null")
        raise QueryError(f"Invalid filter clause: expected a value, found '{tok.text}'.")


def _balanced(kind: type[And] | type[Or], terms: list[Node]) -> Node:
    """``a or b or c or d`` as ``(a or b) or (c or d)``: a long chain nests only log2(n)
    deep, so neither a recursive walk nor a database's SQL parser runs out of stack."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return kind(_balanced(kind, terms[:middle]), _balanced(kind, terms[middle:]))


def parse_filter(text: str) -> Node:
    if len(text) > FILTER_LIMIT:
        raise QueryError(f"$filter is longer than {FILTER_LIMIT} characters.")
    if not text.strip():
        raise QueryError("Invalid filter clause: $filter is empty.")
    return _Parser(text).parse()


def parse_orderby(text: str) -> list[OrderBy]:
    out: list[OrderBy] = []
    parts = text.split(",")
    if len(parts) > MAX_ORDERBY:
        raise QueryError(f"$orderby takes at most {MAX_ORDERBY} properties.")
    for part in parts:
        words = part.split()
        if not words or len(words) > 2:
            raise QueryError(f"Invalid $orderby clause: '{part.strip()}'.")
        direction = words[1].lower() if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise QueryError(f"Invalid $orderby direction '{words[1]}': use asc or desc.")
        path = tuple(p.lower() for p in words[0].split("/"))
        if any(o.prop.path == path for o in out):
            continue  # sorting again by the same property changes nothing but the cost
        out.append(OrderBy(Prop(path), direction == "desc"))
    return out


def parse_int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryError(f"The value of {name} must be a whole number, not '{raw}'.") from None
    if not low <= value <= high:
        raise QueryError(f"The value of {name} must be between {low} and {high}.")
    return value


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise QueryError(f"The value of {name} must be true or false, not '{raw}'.")
    return lowered == "true"


def select_list(
    params: Mapping[str, str], known: Mapping[str, str], type_name: str = "microsoft.graph.message"
) -> list[str] | None:
    """$select as canonical property names; ``known`` maps lower case to canonical."""
    raw = params.get("$select")
    if raw is None:
        return None
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        canon = known.get(name.lower())
        if canon is None:
            raise UnknownPropertyError(
                f"Could not find a property named '{name}' on type '{type_name}'."
            )
        if canon not in out:
            out.append(canon)
    return out


ATTACHMENT_TYPE = "microsoft.graph.attachment"
# what $select may name on an attachment (of any of the three types), lower case → canonical
ATTACHMENT_PROPS = {
    name.lower(): name
    for name in ("id", "lastModifiedDateTime", "name", "contentType", "size", "isInline",
                 "contentId", "contentLocation", "contentBytes", "sourceUrl", "providerType",
                 "permission", "thumbnailUrl", "previewUrl", "isFolder")
}  # fmt: skip
_ITEM_EXPAND = ("microsoft.graph.itemattachment/item", "item")


def expands_item(params: Mapping[str, str]) -> bool:
    """``$expand=microsoft.graph.itemAttachment/item`` on one attachment (any case, with or
    without '#'); nothing else expands there."""
    raw = params.get("$expand")
    if raw is None:
        return False
    for part in _split_top(raw):
        if part.strip().lstrip("#").lower() not in _ITEM_EXPAND:
            raise QueryError(
                f"Expanding '{part.strip()[:100]}' is not supported on an attachment; use "
                "$expand=microsoft.graph.itemAttachment/item."
            )
    return True


def _attachment_options(inner: str) -> list[str] | None:
    """The nested options of ``attachments(…)``: only $select."""
    select: list[str] | None = None
    for option in inner.split(";"):
        if not option.strip():
            continue
        name, _, value = option.partition("=")
        if name.strip().lower() != "$select":
            raise QueryError(
                f"Only $select is supported inside $expand=attachments(…), not '{name.strip()}'."
            )
        select = select_list({"$select": value}, ATTACHMENT_PROPS, ATTACHMENT_TYPE)
    return select


@dataclass
class Expand:
    attachments: bool = False
    attachment_select: list[str] | None = None
    extensions: bool = False
    extension_ids: list[str] = field(default_factory=list)
    # canonical ids of the extended properties to expand (None: not expanded)
    single_values: list[str] | None = None
    multi_values: list[str] | None = None


_ID_EQ = re.compile(r"\s*\(?\s*id\s+eq\s+'((?:[^']|'')*)'\s*\)?\s*(?:(or)\s+|$)", re.IGNORECASE)
_EXPANDS = "attachments, extensions and singleValueExtendedProperties/multiValueExtendedProperties"


def _expand_ids(inner: str, what: str) -> list[str]:
    """The ids of ``$filter=id eq '…' [or id eq '…']`` inside ``what(…)``."""
    opt, _, value = inner.partition("=")
    if opt.strip().lower() != "$filter" or not value.strip():
        raise QueryError(
            f"Expanding {what} needs $filter=id eq '<id>' (several joined by 'or'): the "
            "service returns no list of all of them."
        )
    ids: list[str] = []
    text, pos = value.strip(), 0
    while True:
        m = _ID_EQ.match(text, pos)
        if m is None or len(ids) >= MAX_CONDITIONS:
            raise QueryError(
                f"Only $expand={what}($filter=id eq '<id>') is supported (at most "
                f"{MAX_CONDITIONS} joined by 'or')."
            )
        ids.append(m.group(1).replace("''", "'"))
        pos = m.end()
        if m.group(2) is None:
            return ids


def parse_expand(params: Mapping[str, str]) -> Expand:
    raw = params.get("$expand")
    out = Expand()
    if raw is None:
        return out
    for part in _split_top(raw):
        name, paren, inner = part.partition("(")
        key = name.strip().lower()
        inner = inner.strip()
        if paren:
            if not inner.endswith(")"):
                raise QueryError(f"Invalid $expand: '{part.strip()[:100]}'.")
            inner = inner[:-1].strip()
        if key == "attachments":
            out.attachments = True
            if inner:
                out.attachment_select = _attachment_options(inner)
        elif key == "extensions":
            out.extensions = True
            if inner:
                out.extension_ids += _expand_ids(inner, "extensions")
        elif key in ("singlevalueextendedproperties", "multivalueextendedproperties"):
            multi = key.startswith("multi")
            wanted = [canonical_id(i, multi=multi) for i in _expand_ids(inner, name.strip())]
            if multi:
                out.multi_values = (out.multi_values or []) + wanted
            else:
                out.single_values = (out.single_values or []) + wanted
        else:
            raise QueryError(
                f"Expanding '{name.strip()[:100]}' is not supported on messages; {_EXPANDS} are."
            )
    return out


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def message_query(params: Mapping[str, str]) -> MessageQuery:
    query = MessageQuery(
        top=parse_int(params, "$top", DEFAULT_TOP, 1, MAX_TOP),
        skip=parse_int(params, "$skip", 0, 0, 2**31 - 1),
        count=parse_bool(params, "$count"),
    )
    if (text := params.get("$filter")) is not None:
        query.filter = parse_filter(text)
    if (text := params.get("$orderby")) is not None:
        query.orderby = parse_orderby(text)
    if (text := params.get("$search")) is not None:
        # Graph's checks, in its order: the combinations first, then the query itself
        if query.filter is not None:
            raise SearchWithFilterError(
                "The query parameter '$filter' is not supported with '$search'."
            )
        if query.orderby:
            raise SearchWithOrderByError(
                "The query parameter '$orderBy' is not supported with '$search'."
            )
        query.search = parse_search(text, now=now())
    return query
