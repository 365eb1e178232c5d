from __future__ import annotations

import pytest

from graphpost.api import odata
from graphpost.domain.query import (
    And,
    Compare,
    FunctionCall,
    Lambda,
    Lit,
    MessageQuery,
    Not,
    Or,
    OrderBy,
    Prop,
    check_access,
    check_order_rule,
    may_touch,
)
from graphpost.errors import (
    AccessDeniedError,
    ExtendedPropertyError,
    ExtendedPropertyIdError,
    InefficientFilterError,
    QueryError,
)


def test_comparisons_and_literals() -> None:
    assert odata.parse_filter("Subject eq 'let''s meet'") == Compare(
        "eq", Prop(("subject",)), Lit("let's meet", "string")
    )
    assert odata.parse_filter("isRead eq false") == Compare("eq", Prop(("isread",)),
                                                            Lit(False, "bool"))  # fmt: skip
    assert odata.parse_filter("receivedDateTime ge 2017-04-01") == Compare(
        "ge", Prop(("receiveddatetime",)), Lit("2017-04-01", "datetime")
    )
    assert odata.parse_filter("'x' eq subject") == Compare("eq", Prop(("subject",)),
                                                           Lit("x", "string"))  # fmt: skip
    assert odata.parse_filter("receivedDateTime lt 2017-04-01T10:00:00Z").right.kind == "datetime"  # type: ignore[union-attr]


def test_boolean_structure_and_functions() -> None:
    node = odata.parse_filter("a eq 1 or b eq 2 and not (c eq 3)")
    assert isinstance(node, Or) and isinstance(node.right, And)
    assert isinstance(node.right.right, Not)
    assert odata.parse_filter("contains(subject, 'x')") == FunctionCall(
        "contains", Prop(("subject",)), Lit("x", "string"))  # fmt: skip
    assert isinstance(odata.parse_filter("startswith(subject,'x') eq false"), Not)


def test_lambdas() -> None:
    node = odata.parse_filter("toRecipients/any(r:r/emailAddress/address eq 'a@b.c')")
    assert isinstance(node, Lambda) and node.collection == "torecipients" and node.var == "r"
    assert isinstance(odata.parse_filter("categories/any()"), Lambda)
    with pytest.raises(QueryError):
        odata.parse_filter("toRecipients/any(r: r/x/any(y: y eq 1))")


@pytest.mark.parametrize("text", ["", "subject eq", "subject eq 'a", "(a eq 1", "a eq 1)",
                                  "eq eq eq", "subject $ 'a'"])  # fmt: skip
def test_syntax_errors(text: str) -> None:
    with pytest.raises(QueryError):
        odata.parse_filter(text)


def test_order_rule() -> None:
    q = MessageQuery(filter=odata.parse_filter("receivedDateTime ge 2020-01-01 and subject eq 'a'"),
                     orderby=odata.parse_orderby("receivedDateTime desc"))  # fmt: skip
    check_order_rule(q)
    q.orderby = [OrderBy(Prop(("subject",)), False)]
    with pytest.raises(InefficientFilterError):
        check_order_rule(q)


def test_paging_options() -> None:
    q = odata.message_query({"$top": "5", "$skip": "10", "$count": "true"})
    assert (q.top, q.skip, q.count) == (5, 10, True)
    for bad in ({"$top": "0"}, {"$top": "1001"}, {"$skip": "-1"}, {"$count": "maybe"}):
        with pytest.raises(QueryError):
            odata.message_query(bad)
    assert odata.message_query({}).top == 10


def test_select_and_expand() -> None:
    known = {"subject": "subject", "sender": "sender"}
    assert odata.select_list({"$select": "Subject, sender"}, known) == ["subject", "sender"]
    e = odata.parse_expand({"$expand": "extensions($filter=id eq 'Com.X'),attachments"})
    assert e.extensions and e.attachments and e.extension_ids == ["Com.X"]


GUID = "66f5a359-4659-4830-9070-00047ec6ac6e"


def test_expanding_extended_properties() -> None:
    quoted = f"String {{{GUID.upper()}}} Name it''s or not"
    raw = (f"singleValueExtendedProperties($filter=id eq '{quoted}' "
           "or (id eq 'Binary 0x0E0A')),multiValueExtendedProperties($filter=id eq "
           "'StringArray 0x1')")  # fmt: skip
    e = odata.parse_expand({"$expand": raw})
    assert e.single_values == [f"String {{{GUID}}} Name it's or not", "Binary 0xe0a"]
    assert e.multi_values == ["StringArray 0x1"]
    assert odata.parse_expand({}).single_values is None
    for bad in ("singleValueExtendedProperties", "singleValueExtendedProperties($top=1)",
                "singleValueExtendedProperties($filter=id eq 'String 0x1' and 1 eq 1)",
                "singleValueExtendedProperties($filter=id eq 'String 0x1'",
                "extensions($filter=name eq 'x')", "body"):  # fmt: skip
        with pytest.raises(QueryError):
            odata.parse_expand({"$expand": bad})
    with pytest.raises(ExtendedPropertyIdError):
        odata.parse_expand({"$expand": "singleValueExtendedProperties($filter=id eq 'Test')"})
    with pytest.raises(ExtendedPropertyError):
        odata.parse_expand({"$expand": "multiValueExtendedProperties($filter=id eq 'String 0x1')"})


def test_cast_is_refused_by_name() -> None:
    with pytest.raises(QueryError, match="cast"):
        odata.parse_filter("singleValueExtendedProperties/any(ep: ep/id eq 'Integer 0x1' and "
                           "cast(ep/value, Edm.Int32) eq 12)")  # fmt: skip


def test_custom_data_is_hidden_from_basic_readers() -> None:
    for path in ("extensions", "singleValueExtendedProperties", "multivalueextendedproperties"):
        assert may_touch(path, basic_only=False)
        assert not may_touch(path, basic_only=True)


def test_long_or_chains_nest_log2_deep() -> None:
    """200 `or` terms: a balanced tree (a deep left spine overflowed SQLite's parser stack)."""
    node = odata.parse_filter(" or ".join(f"subject eq 'x{i}'" for i in range(200)))

    def depth(n: object) -> int:
        if isinstance(n, (And, Or)):
            return 1 + max(depth(n.left), depth(n.right))
        return 0

    assert depth(node) == 8  # ceil(log2(200))
    # in-order traversal keeps the terms in their written order (the InefficientFilter rule)
    text = "isRead eq true and subject eq 'a' and importance eq 'low' and hasAttachments eq true"
    q = MessageQuery(filter=odata.parse_filter(text),
                     orderby=[OrderBy(Prop(("isread",)), False),
                              OrderBy(Prop(("subject",)), False)])  # fmt: skip
    check_order_rule(q)


def test_condition_and_length_limits_are_clear_400s() -> None:
    odata.parse_filter(" or ".join(["isRead"] * odata.MAX_CONDITIONS))
    with pytest.raises(QueryError, match="more than 500 conditions"):
        odata.parse_filter(" or ".join(["isRead"] * (odata.MAX_CONDITIONS + 1)))
    with pytest.raises(QueryError, match="longer than"):
        odata.parse_filter("subject eq '" + "x" * odata.FILTER_LIMIT + "'")


@pytest.mark.parametrize(
    ("filter_", "orderby"),
    [
        ("contains(bodyPreview,'password=h')", None), ("bodyPreview eq 'x'", None),
        ("startswith(body/content,'x')", None), ("uniqueBody/content eq 'x'", None),
        ("isRead and (subject eq 'a' or not(contains(BODYPREVIEW,'x')))", None),
        ("toRecipients/any(r: r/emailAddress/address eq 'a' and contains(bodyPreview,'x'))", None),
        (None, "bodyPreview"), (None, "subject,body/content desc"),
    ],
)  # fmt: skip
def test_read_basic_may_not_touch_body_properties(filter_: str | None, orderby: str | None) -> None:
    query = MessageQuery(
        filter=odata.parse_filter(filter_) if filter_ else None,
        orderby=odata.parse_orderby(orderby) if orderby else [],
    )
    with pytest.raises(AccessDeniedError):
        check_access(query, basic_only=True)
    check_access(query, basic_only=False)


def test_read_basic_may_filter_on_the_rest() -> None:
    query = MessageQuery(filter=odata.parse_filter(
        "subject eq 'body' and from/emailAddress/address eq 'bodypreview@x.y' and "
        "toRecipients/any(body: body/emailAddress/name eq 'x')"
    ), orderby=odata.parse_orderby("subject"))  # fmt: skip
    check_access(query, basic_only=True)
    assert may_touch("bodyPreview", basic_only=False)
    assert not may_touch(("uniquebody", "content"), basic_only=True)


def test_numbers_too_long_for_python_are_a_query_error() -> None:
    with pytest.raises(QueryError, match="too long"):
        odata.parse_filter("subject eq " + "1" * 5000)


def test_orderby_is_bounded() -> None:
    assert len(odata.parse_orderby(",".join(["subject"] * odata.MAX_ORDERBY))) == 1  # once
    many = ",".join(f"subject{'/x' * n}" for n in range(odata.MAX_ORDERBY))
    assert len(odata.parse_orderby(many)) == 32
    with pytest.raises(QueryError, match="at most 32"):
        odata.parse_orderby(",".join(["subject"] * (odata.MAX_ORDERBY + 1)))
