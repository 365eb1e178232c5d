"""The KQL subset of ``$search``: its tree, its refusals, and its bounds on hostile input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphpost.domain import search as s
from graphpost.domain.search import (
    BASIC_FIELDS,
    DEFAULT_FIELDS,
    AllOf,
    AnyOf,
    DateRange,
    Flag,
    Importance,
    Kind,
    Nope,
    Size,
    Text,
    parse_search,
    unquote,
    without_full_read,
    words,
)
from graphpost.errors import QueryError

NOW = 1_717_243_200  # 2024-06-01T12:00:00Z, a Saturday
DAY = 86400
JUNE_1 = 1_717_200_000


def p(value: str) -> s.SearchNode:
    return parse_search(value, now=NOW)


def free(*w: str, exact: bool = False) -> Text:
    return Text(DEFAULT_FIELDS, w, exact)


def test_words_are_folded_split_and_bounded() -> None:
    assert words("Café RÉSUMÉ naïve Straße") == ["cafe", "resume", "naive", "strasse"]
    assert words("help@contoso.com, a_b-c") == ["help", "contoso", "com", "a", "b", "c"]
    assert words("x" * 100) == ["x" * s.MAX_WORD]
    assert words("a b c d", limit=2) == ["a", "b"]
    assert words("!!! ??") == []


def test_letters_with_their_own_marks_fold_as_exchange_folds_them() -> None:
    assert words("Łódź Øresund Æbleskiver Đorđe Cœur Þór Smørrebrød") == [
        "lodz", "oresund", "aebleskiver", "dorde", "coeur", "thor", "smorrebrod",
    ]  # fmt: skip
    assert words("ŁÓDŹ") == words("łódź") == words("lodz")


def test_words_are_not_split_at_combining_marks() -> None:
    # Devanagari: the vowel signs are spacing marks, part of the word
    assert words("हिन्दी भाषा, नमस्ते!") == ["हिनदी", "भाषा", "नमसते"]
    assert words("தமிழ் ไทย") == ["தமிழ", "ไทย"]  # Tamil, Thai
    # the diacritics over a letter, in any script, go (Arabic harakat too)
    assert words("العَرَبِيَّة") == words("العربية")
    assert words("Ελληνικά") == ["ελληνικα"]


def test_the_forms_of_the_graph_docs() -> None:
    assert p('"pizza"') == free("pizza")
    assert p('"from:help@contoso.com"') == Text((s.FROM,), ("help", "contoso", "com"), False)
    assert p('"attachment:api-catalog.md"') == Text((s.ATTACHMENT,), ("api", "catalog", "md"),
                                                     False)  # fmt: skip
    assert p('"participants:danas"') == Text((s.FROM, s.TO, s.CC, s.BCC), ("danas",), False)
    assert p('"recipients:randiq"') == Text((s.TO, s.CC, s.BCC), ("randiq",), False)
    assert p('"hasAttachments:true"') == Flag("hasattachments", True)
    assert p('"importance:high"') == Importance("high")
    assert p('"kind:voicemail"') == Kind(False)
    assert p('"size:1..500000"') == Size(1, 500000)
    july = 1_532_304_000  # 2018-07-23
    assert p('"received:07/23/2018"') == DateRange("received", july, july + DAY)
    assert p('"sent:07/23/2018"') == DateRange("sent", july, july + DAY)


def test_booleans_phrases_and_groups() -> None:
    assert p("a b") == AllOf((free("a"), free("b")))
    assert p("a AND b OR c") == AnyOf((AllOf((free("a"), free("b"))), free("c")))
    assert p("a and b") == AllOf((free("a"), free("and"), free("b")))  # lower case: words
    assert p("NOT a b") == AllOf((Nope(free("a")), free("b")))
    assert p("-a") == Nope(free("a"))
    assert p("e-mail") == free("e", "mail")
    assert p('subject:"a b" c*') == AllOf((Text((s.SUBJECT,), ("a", "b"), True), free("c")))
    assert p("subject:(a OR b)") == AnyOf((Text((s.SUBJECT,), ("a",), False),
                                           Text((s.SUBJECT,), ("b",), False)))  # fmt: skip
    assert p("a OR ***") == free("a")  # punctuation only: nothing to look for
    assert p("foo:bar") == free("foo", "bar")  # not a property: text


def test_dates_and_sizes() -> None:
    assert p("received:today") == DateRange("received", JUNE_1, JUNE_1 + DAY)
    assert p("received:yesterday") == DateRange("received", JUNE_1 - DAY, JUNE_1)
    monday = JUNE_1 - 5 * DAY
    assert p('received:"this week"') == DateRange("received", monday, monday + 7 * DAY)
    assert p('received:"last week"') == DateRange("received", monday - 7 * DAY, monday)
    assert p('received:"last month"') == DateRange("received", JUNE_1 - 31 * DAY, JUNE_1)
    assert p('received:"this year"').start == 1_704_067_200  # type: ignore[union-attr]
    assert p("received>=2024-06-01") == DateRange("received", JUNE_1, None)
    assert p("received>2024-06-01") == DateRange("received", JUNE_1 + DAY, None)
    assert p("received<2024-06-01") == DateRange("received", None, JUNE_1)
    assert p("received<=2024-06-01") == DateRange("received", None, JUNE_1 + DAY)
    assert p("received:2024-06-01..") == DateRange("received", JUNE_1, None)
    assert p("received:2024-06-01T00:00:10Z") == DateRange("received", JUNE_1 + 10, JUNE_1 + 11)
    assert p("size>10") == Size(11, None)
    assert p("size<=10") == Size(None, 10)
    assert p("importance:medium") == Importance("normal")


@pytest.mark.parametrize(
    "bad",
    [
        "", '""', "   ", "(", "a)", "()", "a OR", "AND a", "a AND", "NOT", '"open',
        "received:soon", "received:2024-02-30", "received<>2024-01-01", "hasattachments:maybe",
        "importance:urgent", "kind:spam", "size:big", "size<>3", "subject>x",
        "category:red", "x" * (s.MAX_LENGTH + 1), " ".join(["w"] * (s.MAX_TERMS + 1)),
        "(" * (s.MAX_DEPTH + 2) + "a" + ")" * (s.MAX_DEPTH + 2), "NOT " * 40 + "a",
        "a\x00b", "received:(a OR b)", 'x "' + " ".join(["w"] * 40) + '"',
        # digits that are not decimal ones (str.isdigit says yes, int() says no)
        "size:\u00b2", "size>\u2460", "size:1..\u00b3", "size:\u0661\u0662",
    ],
)  # fmt: skip
def test_refusals_are_query_errors(bad: str) -> None:
    with pytest.raises(QueryError):
        p(bad)


def test_unquote_takes_graphs_outer_quotes_only() -> None:
    assert unquote('"pizza"') == "pizza"
    assert unquote('"from:\\"Randi W\\""') == 'from:"Randi W"'
    assert unquote('"a" OR "b"') == '"a" OR "b"'  # quoted in parts: as it is
    assert unquote("pizza") == "pizza"


def test_without_full_read_narrows_free_text_only() -> None:
    node = p("a subject:b NOT c")
    narrowed = without_full_read(node)
    assert narrowed == AllOf((Text(BASIC_FIELDS, ("a",), False),
                              Text((s.SUBJECT,), ("b",), False),
                              Nope(Text(BASIC_FIELDS, ("c",), False))))  # fmt: skip
    assert s.restricted_fields(p("body:x attachment:y z")) == {s.BODY, s.ATTACHMENT}
    # the size counts the body and the attachments: Mail.ReadBasic may not ask for it
    assert s.restricted_fields(p("a OR NOT (size>10 b)")) == {s.SIZE}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab :()\"-*ANDORT<>=.\\'\x00\u2028é"), max_size=200))
def test_any_text_parses_or_is_refused(text: str) -> None:
    with contextlib.suppress(QueryError):
        p(text)
