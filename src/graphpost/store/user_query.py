"""A directory ``UserQuery`` compiled to SQL on either engine: ``$filter`` nodes to a WHERE
clause over the users table, with every value a bound parameter."""

from __future__ import annotations

from typing import Any

from graphpost.domain.query import And, Compare, FunctionCall, Node, Not, Or
from graphpost.errors import UnsupportedQueryError

# property (lower case) → the column compared, already lower case or lowered in SQL
COLUMNS = {
    "id": "id",
    "displayname": "lower(display_name)",
    "mail": "mail_lower",
    "userprincipalname": "upn_lower",
}
_OPS = {"eq": "=", "ne": "<>", "ge": ">=", "le": "<=", "gt": ">", "lt": "<"}


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _column(name: str) -> str:
    column = COLUMNS.get(name)
    if column is None:  # the edge lets only these through; never a name into SQL
        raise UnsupportedQueryError(
            f"Unsupported or invalid query filter clause specified for property '{name}' "
            "of resource 'User'."
        )
    return column


def compile_where(node: Node, params: list[Any]) -> str:
    """SQL for ``node``; its values are appended to ``params``."""
    if isinstance(node, And):
        return f"({compile_where(node.left, params)} AND {compile_where(node.right, params)})"
    if isinstance(node, Or):
        return f"({compile_where(node.left, params)} OR {compile_where(node.right, params)})"
    if isinstance(node, Not):
        return f"(NOT {compile_where(node.operand, params)})"
    if isinstance(node, Compare) and node.op in _OPS:
        params.append(str(node.right.value).lower())
        return f"{_column(node.left.name)} {_OPS[node.op]} ?"
    if isinstance(node, FunctionCall) and node.name in ("startswith", "endswith"):
        value = _escape_like(str(node.arg.value).lower())
        params.append(f"{value}%" if node.name == "startswith" else f"%{value}")
        return f"{_column(node.prop.name)} LIKE ? ESCAPE '\\'"
    raise UnsupportedQueryError("Unsupported or invalid query filter clause specified.")
