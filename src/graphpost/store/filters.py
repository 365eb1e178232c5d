"""Compile a $filter and $orderby to SQL: a MessageQuery's over the messages table (alias m),
a FolderQuery's over the folders table (alias f, ``FOLDER_COLUMNS``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphpost.domain.extended import canonical_id
from graphpost.domain.message import extension_key
from graphpost.domain.query import (
    And,
    Compare,
    FunctionCall,
    Lambda,
    Lit,
    Node,
    Not,
    Or,
    OrderBy,
    Prop,
)
from graphpost.domain.times import parse_iso
from graphpost.errors import QueryError, UnknownPropertyError

# property path → (column, kind); kind: text (case-insensitive), exact, bool, date, enum, lower
# (a column that only ever holds lower case: compared with the literal in lower case, without
# lower() around the column, so that an index on it answers)
SCALARS: dict[str, tuple[str, str]] = {
    "id": ("m.id", "exact"),
    "subject": ("m.subject", "text"),
    "bodypreview": ("m.body_preview", "text"),
    "importance": ("m.importance", "text"),
    "inferenceclassification": ("m.inference", "lower"),
    "isread": ("m.is_read", "bool"),
    "isdraft": ("m.is_draft", "bool"),
    "hasattachments": ("m.has_attachments", "bool"),
    "receiveddatetime": ("m.received_at", "date"),
    "sentdatetime": ("m.sent_at", "date"),
    "createddatetime": ("m.created_at", "date"),
    "lastmodifieddatetime": ("m.modified_at", "date"),
    "internetmessageid": ("m.internet_message_id", "exact"),
    "conversationid": ("m.conversation_id", "exact"),
    "parentfolderid": ("m.folder_id", "exact"),
    "changekey": ("m.change_key", "exact"),
    "flag/flagstatus": ("m.flag_status", "text"),
    "from/emailaddress/address": ("m.from_address", "text"),
    "from/emailaddress/name": ("m.from_name", "text"),
    "sender/emailaddress/address": ("m.sender_address", "text"),
    "sender/emailaddress/name": ("m.sender_name", "text"),
}

# a mail folder's properties; number: compared with a number, never a function's argument
FOLDER_COLUMNS: dict[str, tuple[str, str]] = {
    "id": ("f.id", "exact"),
    "displayname": ("f.display_name", "text"),
    "parentfolderid": ("f.parent_id", "exact"),
    "childfoldercount": ("f.child_count", "number"),
    "unreaditemcount": ("f.unread_count", "number"),
    "totalitemcount": ("f.total_count", "number"),
    "ishidden": ("f.is_hidden", "bool"),
}
MESSAGE_TYPE = "microsoft.graph.message"
FOLDER_TYPE = "microsoft.graph.mailFolder"

RECIPIENT_KINDS = {
    "torecipients": "to",
    "ccrecipients": "cc",
    "bccrecipients": "bcc",
    "replyto": "rt",
}

# lambda collections of keyed items: item property → (column, kind); kind extid: an extended
# property id (canonical spelling), extname: an open extension's name or id (any case)
_KEYED_COLLECTIONS = {
    "singlevalueextendedproperties": {"id": ("prop_id", "extid"), "value": ("value", "text")},
    "extensions": {"id": ("name", "extname")},
}

_OPS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


class Compiled:
    def __init__(
        self, columns: Mapping[str, tuple[str, str]] = SCALARS, entity: str = MESSAGE_TYPE
    ) -> None:
        self.params: list[Any] = []
        self.columns = columns
        self.entity = entity

    def add(self, value: Any) -> str:
        self.params.append(value)
        return "?"


def _unknown(name: str, entity: str = MESSAGE_TYPE) -> UnknownPropertyError:
    return UnknownPropertyError(
        f"Could not find a property named '{name}' on type '{entity}', "
        "or it cannot be used in $filter/$orderby."
    )


def _literal(lit: Lit, kind: str, prop: str) -> Any:
    if lit.kind == "null":
        return None
    if kind == "bool":
        if lit.kind != "bool":
            raise QueryError(f"'{prop}' is a boolean; compare it with true or false.")
        return bool(lit.value)
    if kind == "date":
        if lit.kind == "datetime" or lit.kind == "string":
            try:
                return parse_iso(str(lit.value))
            except ValueError:
                raise QueryError(f"'{lit.value}' is not a date for '{prop}'.") from None
        raise QueryError(
            f"'{prop}' is a date; compare it with a date such as 2024-01-31T00:00:00Z."
        )
    if kind == "number":  # Int32 counts: a whole number both engines can bind
        value = lit.value
        if lit.kind != "number" or not isinstance(value, int) or isinstance(value, bool):
            raise QueryError(f"'{prop}' is a whole number; compare it with one such as 0.")
        if not -(2**31) <= value < 2**31:
            raise QueryError(f"'{prop}' is a 32-bit whole number; {value} is out of its range.")
        return value
    if lit.kind not in ("string",):
        raise QueryError(f"'{prop}' is a string; compare it with a quoted value.")
    return str(lit.value)


def _like(value: str, call: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    if call == "contains":
        return f"%{escaped}%"
    if call == "startswith":
        return f"{escaped}%"
    return f"%{escaped}"


def _column_compare(column: str, kind: str, op: str, lit: Lit, prop: str, c: Compiled) -> str:
    if kind in ("extid", "extname"):
        if op not in ("eq", "ne") or lit.kind != "string":
            raise QueryError(f"'{prop}' compares only with eq or ne and a quoted string.")
        if kind == "extid":
            return f"{column} {_OPS[op]} {c.add(canonical_id(str(lit.value)))}"
        return f"lower({column}) {_OPS[op]} {c.add(extension_key(str(lit.value)))}"
    value = _literal(lit, kind, prop)
    if value is None:
        if op == "eq":
            return f"{column} IS NULL"
        if op == "ne":
            return f"{column} IS NOT NULL"
        raise QueryError(f"null can only be compared with eq or ne ('{prop}').")
    if kind == "text":
        if op == "ne":
            return f"({column} IS NULL OR lower({column}) <> {c.add(value.lower())})"
        return f"lower({column}) {_OPS[op]} {c.add(value.lower())}"
    if kind == "lower":
        return f"{column} {_OPS[op]} {c.add(value.lower())}"
    if kind == "bool" and op not in ("eq", "ne"):
        raise QueryError(f"'{prop}' is a boolean; use eq or ne.")
    return f"{column} {_OPS[op]} {c.add(value)}"


def _call(column: str, kind: str, call: FunctionCall, prop: str, c: Compiled) -> str:
    if kind not in ("text", "exact", "lower") or call.arg.kind != "string":
        raise QueryError(f"{call.name}() needs a string property and a quoted string ({prop}).")
    return f"lower({column}) LIKE {c.add(_like(str(call.arg.value), call.name))} ESCAPE '\\'"


def _scalar(prop: Prop, c: Compiled | None = None) -> tuple[str, str]:
    columns = c.columns if c is not None else SCALARS
    found = columns.get(prop.name)
    if found is None:
        raise _unknown(prop.name, c.entity if c is not None else MESSAGE_TYPE)
    return found


def _compile(node: Node, c: Compiled, scope: tuple[str, str, str] | None) -> str:
    """``scope`` is (var, collection, alias) inside a lambda body."""
    if isinstance(node, And):
        return f"({_compile(node.left, c, scope)} AND {_compile(node.right, c, scope)})"
    if isinstance(node, Or):
        return f"({_compile(node.left, c, scope)} OR {_compile(node.right, c, scope)})"
    if isinstance(node, Not):
        return f"(NOT {_compile(node.operand, c, scope)})"
    if isinstance(node, Lambda):
        if scope is not None:
            raise QueryError("Nested lambda expressions are not supported.")
        if c.columns is not SCALARS:
            raise _unknown(node.collection, c.entity)
        return _lambda(node, c)
    prop = node.left if isinstance(node, Compare) else node.prop
    column, kind = _resolve(prop, scope, c)
    if isinstance(node, Compare):
        return _column_compare(column, kind, node.op, node.right, prop.name, c)
    if isinstance(node, FunctionCall):
        return _call(column, kind, node, prop.name, c)
    if kind != "bool":
        raise QueryError(f"'{prop.name}' is not a boolean and cannot stand alone in $filter.")
    return f"{column} = {c.add(True)}"


def _resolve(prop: Prop, scope: tuple[str, str, str] | None, c: Compiled) -> tuple[str, str]:
    if scope is None:
        return _scalar(prop, c)
    var, collection, alias = scope
    if not prop.path or prop.path[0] != var:
        return _scalar(prop, c)
    rest = "/".join(prop.path[1:])
    if collection in _KEYED_COLLECTIONS:
        column = _KEYED_COLLECTIONS[collection].get(rest)
        if column is None:
            raise _unknown(prop.name)
        return f"{alias}.{column[0]}", column[1]
    if collection == "categories":
        if rest:
            raise _unknown(prop.name)
        return f"{alias}.name", "text"
    if rest == "emailaddress/address":
        return f"{alias}.address", "text"
    if rest == "emailaddress/name":
        return f"{alias}.name", "text"
    raise _unknown(prop.name)


def _lambda(node: Lambda, c: Compiled) -> str:
    alias = "x"
    if node.collection == "categories":
        base = f"SELECT 1 FROM message_categories {alias} WHERE {alias}.message_seq = m.seq"
    elif node.collection == "singlevalueextendedproperties":
        base = (
            f"SELECT 1 FROM message_extended_props {alias} "
            f"WHERE {alias}.message_seq = m.seq AND {alias}.multi = {c.add(False)}"
        )
    elif node.collection == "extensions":
        base = f"SELECT 1 FROM message_extensions {alias} WHERE {alias}.message_seq = m.seq"
    elif node.collection in RECIPIENT_KINDS:
        kind = c.add(RECIPIENT_KINDS[node.collection])
        base = (
            f"SELECT 1 FROM message_recipients {alias} "
            f"WHERE {alias}.message_seq = m.seq AND {alias}.kind = {kind}"
        )
    else:
        raise _unknown(node.collection)
    if node.body is None:
        if node.quantifier == "all":
            return "1 = 1"
        return f"EXISTS ({base})"
    body = _compile(node.body, c, (node.var, node.collection, alias))
    if node.quantifier == "any":
        return f"EXISTS ({base} AND {body})"
    return f"NOT EXISTS ({base} AND NOT ({body}))"


def compile_filter(node: Node, params: list[Any]) -> str:
    c = Compiled()
    c.params = params
    return _compile(node, c, None)


def compile_folder_filter(node: Node, params: list[Any]) -> str:
    """A folder $filter over ``folders f``: its scalar properties only (no lambdas)."""
    c = Compiled(FOLDER_COLUMNS, FOLDER_TYPE)
    c.params = params
    return _compile(node, c, None)


def compile_order(orderby: list[OrderBy]) -> str:
    if not orderby:
        return "m.received_at DESC, m.seq DESC"
    parts = []
    for item in orderby:
        column, kind = _scalar(item.prop)
        expr = f"lower({column})" if kind == "text" else column
        parts.append(f"{expr} {'DESC' if item.descending else 'ASC'}")
    parts.append(f"m.seq {'DESC' if orderby[0].descending else 'ASC'}")
    return ", ".join(parts)


def compile_folder_order(orderby: list[OrderBy]) -> str:
    """Folders sort by name (any case) unless told otherwise; the id breaks ties."""
    c = Compiled(FOLDER_COLUMNS, FOLDER_TYPE)
    parts = []
    for item in orderby:
        column, _ = _scalar(item.prop, c)
        expr = "f.name_lower" if column == "f.display_name" else column
        parts.append(f"{expr} {'DESC' if item.descending else 'ASC'}")
    if not parts:
        parts.append("f.name_lower ASC")
    parts.append(f"f.id {'DESC' if orderby and orderby[0].descending else 'ASC'}")
    return ", ".join(parts)
