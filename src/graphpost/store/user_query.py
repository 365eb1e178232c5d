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


def _operand(name: str, value: str, params: list[Any]) -> tuple[str, str]:
    """The column and the placeholder to compare it with. Columns stored lower case (mail,
    userPrincipalName, id) were lowered by Python, so the value is too; the display name is
    lowered by the database on both sides, so that the two always agree (SQLite's lower()
    folds ASCII only: there a non-ASCII name matches in its own case)."""
    column = _column(name)
    if column.startswith("lower("):
        params.append(value)
        return column, "lower(?)"
    params.append(value.lower())
    return column, "?"


def compile_where(node: Node, params: list[Any]) -> str:
    """SQL for ``node``; its values are appended to ``params``."""
    if isinstance(node, And):
        return f"({compile_where(node.left, params)} AND {compile_where(node.right, params)})"
    if isinstance(node, Or):
        return f"({compile_where(node.left, params)} OR {compile_where(node.right, params)})"
    if isinstance(node, Not):
        return f"(NOT {compile_where(node.operand, params)})"
    if isinstance(node, Compare) and node.op in _OPS:
        column, mark = _operand(node.left.name, str(node.right.value), params)
        return f"{column} {_OPS[node.op]} {mark}"
    if isinstance(node, FunctionCall) and node.name in ("startswith", "endswith"):
        value = _escape_like(str(node.arg.value))
        pattern = f"{value}%" if node.name == "startswith" else f"%{value}"
        column, mark = _operand(node.prop.name, pattern, params)
        return f"{column} LIKE {mark} ESCAPE '\\'"
    raise UnsupportedQueryError("Unsupported or invalid query filter clause specified.")
