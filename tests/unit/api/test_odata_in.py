"""``$filter``'s ``in`` operator: a list of values read as ``eq`` joined by ``or``."""

from __future__ import annotations

import pytest

from graphpost.api.odata import MAX_CONDITIONS, parse_filter
from graphpost.domain.query import Compare, Lit, Or, Prop
from graphpost.errors import QueryError


def test_in_is_eq_or_eq() -> None:
    mail = Prop(("mail",))
    assert parse_filter("mail in ('a@x', 'b@x')") == Or(
        Compare("eq", mail, Lit("a@x", "string")), Compare("eq", mail, Lit("b@x", "string"))
    )
    assert parse_filter("mail in ('a@x')") == Compare("eq", mail, Lit("a@x", "string"))


@pytest.mark.parametrize("text", ["mail in ()", "mail in ('a'", "mail in 'a'", "mail in ('a',)"])
def test_malformed_lists_are_refused(text: str) -> None:
    with pytest.raises(QueryError):
        parse_filter(text)


def test_a_long_list_counts_every_value() -> None:
    values = ",".join(f"'{i}'" for i in range(MAX_CONDITIONS + 1))
    with pytest.raises(QueryError, match="conditions"):
        parse_filter(f"id in ({values})")
