"""``$search`` on messages: the KQL subset Outlook understands, parsed into a small tree, and
the words a message is indexed under. Pure: the store compiles the tree to SQLite FTS5 or
PostgreSQL tsquery, and indexes what ``index_fields`` gives.

Both engines index and query the words this module makes (``words``): Unicode NFKD with the
combining marks over letters dropped (``é`` is ``e``), case-folded, the letters with a mark of
their own folded too (``ł`` is ``l``), split on anything that is not a letter, a digit or a
spacing mark, each word at most ``MAX_WORD`` characters. (A change here changes the indexed
words: it needs a migration that rebuilds the index, as 0016 did.) So the two engines match alike,
whatever their own tokenisers would do.

The grammar (KQL operators are upper case; ``and``/``or`` are words)::

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*          -- terms side by side must all match
    unary   := ("NOT" | "-") unary | primary
    primary := "(" or ")" | restriction | phrase | word
    restriction := NAME (":" | "=" | "<" | "<=" | ">" | ">=") (value | "(" or ")")

A word matches words that start with it (as Exchange's search does); a quoted phrase matches
its words in order, each whole. Parsing is a recursive descent bounded by ``MAX_DEPTH``
(parentheses and NOT) and the query by ``MAX_LENGTH`` characters and ``MAX_TERMS`` terms, so
no input can exhaust the stack or build a huge expression.
"""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from graphpost.domain.body import PREVIEW_SCAN_LIMIT, html_to_text
from graphpost.domain.message import Message, Recipient
from graphpost.errors import QueryError

SEARCH_RESULTS = 1000
"""Most results a search gives, over all its pages (Graph's limit)."""
MAX_LENGTH = 4096
"""Longest ``$search`` value, in characters."""
MAX_TERMS = 64
"""Most terms (words, phrases, restrictions) in one query."""
MAX_DEPTH = 16
"""Deepest nesting of parentheses and NOT."""
MAX_WORD = 64
"""Longest indexed word, in characters (a longer one is cut: the same on both sides)."""
MAX_BODY_WORDS = 16000
"""Words of a body that are indexed (PostgreSQL keeps positions up to 16,383)."""
MAX_PHRASE_WORDS = 32
"""Most words in one phrase."""
MAX_INDEX_BYTES = 384 * 1024
"""Most bytes of words indexed of a message's own fields (subject, sender, recipients, then
the body), each word counted as its UTF-8 length and 12 (what it may cost in a PostgreSQL
``tsvector``, which holds at most 1 MiB and holds these words twice: under their field and
under any field). Past it, the rest is not indexed, on both engines alike."""
MAX_ATTACHMENT_INDEX_BYTES = 128 * 1024
"""The same for a message's attachment names, all together."""

# Text fields of the index: the columns of message_search (SQLite) and the tags of the
# lexemes (PostgreSQL).
SUBJECT, BODY, FROM, TO, CC, BCC, ATTACHMENT = (
    "subject", "body", "sender", "torecip", "ccrecip", "bccrecip", "attachment",
)  # fmt: skip
FIELDS = (SUBJECT, BODY, FROM, TO, CC, BCC, ATTACHMENT)
DEFAULT_FIELDS = FIELDS
"""Free text: every field (Graph documents from, subject and body; Outlook matches
recipients and attachment names too)."""
BASIC_FIELDS = (SUBJECT, FROM, TO, CC, BCC)
"""Free text for a caller without body access (Mail.ReadBasic): no body, no attachments."""
SIZE = "size"
"""Not a text field: what ``restricted_fields`` says of a ``size:`` restriction (the size
counts the body's and the attachments' bytes, which Mail.ReadBasic may not read)."""
FULL_READ_FIELDS = frozenset({BODY, ATTACHMENT, SIZE})

# KQL property → the fields it searches
TEXT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "subject": (SUBJECT,),
    "body": (BODY,),
    "from": (FROM,),
    "to": (TO,),
    "cc": (CC,),
    "bcc": (BCC,),
    "participants": (FROM, TO, CC, BCC),
    "recipients": (TO, CC, BCC),
    "attachment": (ATTACHMENT,),
    "attachments": (ATTACHMENT,),
}
DATE_PROPERTIES = {"received": "received", "sent": "sent"}
FLAG_PROPERTIES = {"hasattachment": "hasattachments", "hasattachments": "hasattachments"}
IMPORTANCE = {"low": "low", "normal": "normal", "medium": "normal", "high": "high"}
KINDS = frozenset(
    {"contacts", "docs", "email", "faxes", "im", "journals", "meetings", "notes", "posts",
     "rssfeeds", "tasks", "voicemail"}
)  # fmt: skip
UNSUPPORTED = frozenset({"category", "followupflag", "isread", "isflagged", "messagesize"})

_OPS = (">=", "<=", "<>", ":", "=", ">", "<")
_RESTRICTION = re.compile(r"([A-Za-z]+)(>=|<=|<>|:|=|>|<)(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Text:
    """Words in a row in one of ``fields``; the last one a prefix unless ``exact``."""

    fields: tuple[str, ...]
    words: tuple[str, ...]
    exact: bool


@dataclass(frozen=True, slots=True)
class DateRange:
    """``field`` (received, sent) in [start, end) epoch seconds; None: unbounded."""

    field: str
    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class Flag:
    field: str  # hasattachments
    value: bool


@dataclass(frozen=True, slots=True)
class Importance:
    value: str


@dataclass(frozen=True, slots=True)
class Size:
    """The message's size in bytes in [low, high]; None: unbounded."""

    low: int | None
    high: int | None


@dataclass(frozen=True, slots=True)
class Kind:
    """``kind:email`` (every message here); any other kind matches none."""

    email: bool


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[SearchNode, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[SearchNode, ...]


@dataclass(frozen=True, slots=True)
class Nope:
    item: SearchNode


SearchNode = Text | DateRange | Flag | Importance | Size | Kind | AllOf | AnyOf | Nope


# ---------------------------------------------------------------- words


# Letters that carry their mark in themselves (no decomposition takes it off) and that
# Exchange's search folds like the others: "lodz" finds "Łódź", "oresund" "Øresund". Applied
# after case folding (which already makes ß "ss").
_LETTERS = str.maketrans({
    "ø": "o", "ł": "l", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th", "ħ": "h",
    "ŧ": "t", "ı": "i", "ŀ": "l", "ƒ": "f", "ƚ": "l", "ɨ": "i", "ʉ": "u", "ɍ": "r",
    "ǥ": "g", "ƀ": "b", "ȼ": "c", "ɇ": "e", "ɉ": "j", "ꝁ": "k",
})  # fmt: skip


def fold(text: str) -> str:
    """Diacritics removed and case folded (the form both engines index): the marks that
    combine over a letter (a non-zero combining class: accents, Arabic harakat, a virama)
    are dropped; the spacing ones (Devanagari's vowel signs …) stay, part of their word."""
    decomposed = unicodedata.normalize("NFKD", text)
    if not decomposed.isascii():
        decomposed = "".join(c for c in decomposed if not unicodedata.combining(c))
        return decomposed.casefold().translate(_LETTERS)
    return decomposed.casefold()


_MARKS = ("Mn", "Mc", "Me")


def _mark_ranges() -> str:
    """A regex class body of every combining mark (categories Mn, Mc, Me): those of the
    first two planes, read from the Unicode database once, and the variation selectors
    supplement (the only marks above)."""
    ranges: list[tuple[int, int]] = []
    for n in range(0x20000):
        if unicodedata.category(chr(n)) in _MARKS:
            if ranges and ranges[-1][1] == n - 1:
                ranges[-1] = (ranges[-1][0], n)
            else:
                ranges.append((n, n))
    ranges.append((0xE0100, 0xE01EF))
    return "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)


_SPLIT = re.compile(r"[^\w]+|_+")


@functools.cache
def _split_marked() -> re.Pattern[str]:
    """Words of a text beyond ASCII: letters, digits, and the marks that are part of its
    letters (a Devanagari word is not split at its vowel signs). Built on first use."""
    return re.compile(rf"[^\w{_mark_ranges()}]+|_+")


def words(text: str, limit: int | None = None) -> list[str]:
    """The indexed words of ``text``: letters and digits, folded, at most MAX_WORD long."""
    found: list[str] = []
    folded = fold(text)
    for w in (_SPLIT if folded.isascii() else _split_marked()).split(folded):
        if w:
            found.append(w[:MAX_WORD])
            if limit is not None and len(found) >= limit:
                break
    return found


@dataclass(frozen=True, slots=True)
class IndexFields:
    """What a message is found by: each field's words (recipients as one list per address)."""

    subject: list[str]
    body: list[str]
    sender: list[list[str]]
    to: list[list[str]]
    cc: list[list[str]]
    bcc: list[list[str]]
    attachment: list[list[str]]

    def by_field(self) -> dict[str, list[list[str]]]:
        return {
            SUBJECT: [self.subject], BODY: [self.body], FROM: self.sender, TO: self.to,
            CC: self.cc, BCC: self.bcc, ATTACHMENT: self.attachment,
        }  # fmt: skip


class _Budget:
    """What is left of an index budget (bytes: each word's UTF-8 length and 12)."""

    __slots__ = ("left",)

    def __init__(self, size: int) -> None:
        self.left = size

    def take(self, found: list[str]) -> list[str]:
        """The words of ``found`` the budget still has room for (the first ones)."""
        for n, w in enumerate(found):
            cost = len(w.encode()) + 12
            if cost > self.left:
                self.left = 0
                return found[:n]
            self.left -= cost
        return found


def _person(budget: _Budget, pair: tuple[str | None, str | None]) -> list[str]:
    name, address = pair
    return budget.take(words(f"{name or ''} {address or ''}"))


def attachment_words(names: list[str]) -> list[list[str]]:
    """The indexed words of a message's attachment names (within their budget)."""
    budget = _Budget(MAX_ATTACHMENT_INDEX_BYTES)
    return [budget.take(words(n)) for n in names]


def index_fields(
    *,
    subject: str | None,
    body_text: str,
    sender: tuple[str | None, str | None] | None,
    to: list[tuple[str | None, str | None]],
    cc: list[tuple[str | None, str | None]],
    bcc: list[tuple[str | None, str | None]],
    attachment_names: list[str],
) -> IndexFields:
    """A message's index fields, within MAX_INDEX_BYTES (the body last: it is cut first)."""
    budget = _Budget(MAX_INDEX_BYTES)
    subject_words = budget.take(words(subject or ""))
    sender_words = [_person(budget, sender)] if sender else []
    to_words = [_person(budget, r) for r in to]
    cc_words = [_person(budget, r) for r in cc]
    bcc_words = [_person(budget, r) for r in bcc]
    return IndexFields(
        subject=subject_words,
        body=budget.take(words(body_text, MAX_BODY_WORDS)),
        sender=sender_words,
        to=to_words,
        cc=cc_words,
        bcc=bcc_words,
        attachment=attachment_words(attachment_names),
    )


def _pairs(group: list[Recipient]) -> list[tuple[str | None, str | None]]:
    return [(r.email_address.name, r.email_address.address) for r in group]


def body_text(msg: Message) -> str:
    """The searchable text of a body: an HTML body's visible text (its first MiB)."""
    content = msg.body.content
    if msg.body.content_type.lower() == "html":
        return html_to_text(content, window=PREVIEW_SCAN_LIMIT)
    return content[:PREVIEW_SCAN_LIMIT]


def message_fields(msg: Message) -> IndexFields:
    """The index fields of a message document (attachment names are indexed apart)."""
    frm = msg.from_.email_address if msg.from_ else None
    return index_fields(
        subject=msg.subject,
        body_text=body_text(msg),
        sender=(frm.name, frm.address) if frm else None,
        to=_pairs(msg.to_recipients),
        cc=_pairs(msg.cc_recipients),
        bcc=_pairs(msg.bcc_recipients),
        attachment_names=[],
    )


_PROPERTIES = frozenset(
    {*TEXT_PROPERTIES, *DATE_PROPERTIES, *FLAG_PROPERTIES, "importance", "kind", "size"}
)

# ---------------------------------------------------------------- lexer

_LPAREN, _RPAREN, _AND, _OR, _NOT, _PHRASE, _WORD = "(", ")", "AND", "OR", "NOT", "phrase", "word"
_BREAK = frozenset(' \t\r\n\f\v()"\u3000')


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    at: int


def _invalid(message: str) -> QueryError:
    return QueryError(f"Syntax error in $search: {message}")


def _lex(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            toks.append(_Tok(c, c, i))
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise _invalid(f"the quote at position {i} is not closed.")
            toks.append(_Tok(_PHRASE, text[i + 1 : end], i))
            i = end + 1
        elif c == "-" and i + 1 < n and text[i + 1] not in _BREAK - {'"', "("}:
            toks.append(_Tok(_NOT, "-", i))
            i += 1
        else:
            start = i
            while i < n and text[i] not in _BREAK:
                i += 1
            # a restriction's value may be a phrase or a group right after its operator
            word = text[start:i]
            kind = word if word in (_AND, _OR, _NOT) else _WORD
            toks.append(_Tok(kind, word, start))
    return toks


# ---------------------------------------------------------------- parser


class _Parser:
    def __init__(self, toks: list[_Tok], today: date) -> None:
        self.toks = toks
        self.pos = 0
        self.terms = 0
        self.today = today

    def peek(self) -> _Tok | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def count(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise _invalid(f"more than {MAX_TERMS} terms.")

    def parse_or(self, depth: int, fields: tuple[str, ...] | None) -> SearchNode | None:
        items = [self.parse_and(depth, fields)]
        while (tok := self.peek()) is not None and tok.kind == _OR:
            self.take()
            items.append(self.parse_and(depth, fields))
        kept = [i for i in items if i is not None]  # a side of punctuation only is dropped
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else AnyOf(tuple(kept))

    def parse_and(self, depth: int, fields: tuple[str, ...] | None) -> SearchNode | None:
        items: list[SearchNode | None] = []
        expect_term = True
        while (tok := self.peek()) is not None and tok.kind not in (_OR, _RPAREN):
            if tok.kind == _AND:
                if expect_term:
                    raise _invalid(f"AND at position {tok.at} has nothing before it.")
                self.take()
                expect_term = True
                continue
            items.append(self.parse_unary(depth, fields))
            expect_term = False
        if expect_term:
            tok = self.peek()
            where = f"at position {tok.at}" if tok is not None else "at the end"
            raise _invalid(f"a term is missing {where}.")
        kept = [i for i in items if i is not None]
        if not kept:
            return None
        return kept[0] if len(kept) == 1 else AllOf(tuple(kept))

    def parse_unary(self, depth: int, fields: tuple[str, ...] | None) -> SearchNode | None:
        if depth > MAX_DEPTH:
            raise _invalid(f"nested deeper than {MAX_DEPTH} levels.")
        tok = self.peek()
        if tok is not None and tok.kind == _NOT:
            self.take()
            if self.peek() is None:
                raise _invalid(f"NOT at position {tok.at} has nothing after it.")
            inner = self.parse_unary(depth + 1, fields)
            return Nope(inner) if inner is not None else None
        return self.parse_primary(depth, fields)

    def group(self, depth: int, fields: tuple[str, ...] | None) -> SearchNode | None:
        open_ = self.take()
        if depth + 1 > MAX_DEPTH:
            raise _invalid(f"nested deeper than {MAX_DEPTH} levels.")
        if (tok := self.peek()) is not None and tok.kind == _RPAREN:
            raise _invalid(f"the parentheses at position {open_.at} are empty.")
        inner = self.parse_or(depth + 1, fields)
        tok = self.peek()
        if tok is None or tok.kind != _RPAREN:
            raise _invalid(f"the parenthesis at position {open_.at} is not closed.")
        self.take()
        return inner

    def parse_primary(self, depth: int, fields: tuple[str, ...] | None) -> SearchNode | None:
        tok = self.peek()
        assert tok is not None
        if tok.kind == _LPAREN:
            return self.group(depth, fields)
        if tok.kind == _RPAREN:
            raise _invalid(f"unexpected ')' at position {tok.at}.")
        self.take()
        self.count()
        if tok.kind == _PHRASE:
            return self.text(tok.text, fields, exact=True)
        m = _RESTRICTION.fullmatch(tok.text)
        if m is not None:
            name = m.group(1).lower()
            if name in UNSUPPORTED:
                raise QueryError(
                    f"The $search property '{m.group(1)}' is not supported by this server; "
                    "use from, to, cc, bcc, participants, recipients, subject, body, "
                    "attachment, received, sent, hasAttachments, importance, size or kind."
                )
            if name in _PROPERTIES:
                return self.restriction(name, m.group(2), m.group(3), tok, depth)
        return self.text(tok.text, fields, exact=False)

    def text(self, raw: str, fields: tuple[str, ...] | None, *, exact: bool) -> SearchNode | None:
        found = words(raw.rstrip("*") if not exact else raw)
        if not found:
            return None  # punctuation only: nothing to look for
        if len(found) > MAX_PHRASE_WORDS:
            raise _invalid(f"a phrase of more than {MAX_PHRASE_WORDS} words.")
        return Text(fields or DEFAULT_FIELDS, tuple(found), exact)

    def value(self, op: str, rest: str, tok: _Tok) -> tuple[str, bool] | None:
        """The raw value after ``name op`` (None: a group follows) and whether it was quoted."""
        if rest:
            return rest, False
        nxt = self.peek()
        if nxt is None:
            raise _invalid(f"'{tok.text}' at position {tok.at} has no value.")
        if nxt.kind == _PHRASE:
            self.take()
            return nxt.text, True
        if nxt.kind == _LPAREN:
            return None
        raise _invalid(f"'{tok.text}' at position {tok.at} has no value.")

    def restriction(
        self, name: str, op: str, rest: str, tok: _Tok, depth: int
    ) -> SearchNode | None:
        got = self.value(op, rest, tok)
        if name in TEXT_PROPERTIES:
            if op not in (":", "="):
                raise _invalid(f"'{name}' takes ':' and a word or phrase.")
            fields = TEXT_PROPERTIES[name]
            if got is None:
                return self.group(depth, fields)
            return self.text(got[0], fields, exact=got[1])
        if got is None:
            raise _invalid(f"'{name}' takes one value, not a group.")
        value = got[0].strip()
        if name in FLAG_PROPERTIES:
            lowered = value.lower()
            if op not in (":", "=") or lowered not in ("true", "false", "yes", "no"):
                raise _invalid(f"'{name}' is true or false ('{name}:true').")
            return Flag(FLAG_PROPERTIES[name], lowered in ("true", "yes"))
        if name == "importance":
            lowered = value.lower()
            if op not in (":", "=") or lowered not in IMPORTANCE:
                raise _invalid("importance is low, normal or high ('importance:high').")
            return Importance(IMPORTANCE[lowered])
        if name == "kind":
            lowered = value.lower()
            if op not in (":", "=") or lowered not in KINDS:
                raise _invalid(f"kind is one of {', '.join(sorted(KINDS))} ('kind:email').")
            return Kind(lowered == "email")
        if name == "size":
            return _size(op, value)
        return self.dates(DATE_PROPERTIES[name], op, value)

    def dates(self, field: str, op: str, value: str) -> DateRange:
        if op == "<>":
            raise _invalid(f"'{field}' compares with :, =, <, <=, > or >=.")
        if ".." in value:
            if op not in (":", "="):
                raise _invalid(f"a range ('{field}:2024-01-01..2024-01-31') takes ':'.")
            low, _, high = value.partition("..")
            start = _day_span(low, self.today, field)[0] if low.strip() else None
            end = _day_span(high, self.today, field)[1] if high.strip() else None
            return DateRange(field, start, end)
        start, end = _day_span(value, self.today, field)
        if op in (":", "="):
            return DateRange(field, start, end)
        if op == ">":
            return DateRange(field, end, None)
        if op == ">=":
            return DateRange(field, start, None)
        if op == "<":
            return DateRange(field, None, start)
        return DateRange(field, None, end)  # <=


_SIZE = re.compile(r"[0-9]{1,18}")


def _bytes(raw: str) -> int:
    # ASCII digits only: str.isdigit() takes '²', which int() refuses
    if _SIZE.fullmatch(raw.strip()) is None:
        raise _invalid(f"'{raw.strip()[:40]}' is not a size in bytes ('size:1..500000').")
    return int(raw.strip())


def _size(op: str, value: str) -> Size:
    if ".." in value:
        if op not in (":", "="):
            raise _invalid("a size range ('size:1..500000') takes ':'.")
        low, _, high = value.partition("..")
        return Size(_bytes(low) if low.strip() else None, _bytes(high) if high.strip() else None)
    n = _bytes(value)
    bounds = {":": (n, n), "=": (n, n), ">": (n + 1, None), ">=": (n, None),
              "<": (None, n - 1), "<=": (None, n)}  # fmt: skip
    if op not in bounds:
        raise _invalid("size compares with :, =, <, <=, > or >=.")
    return Size(*bounds[op])


def _seconds(d: date) -> int:
    return calendar.timegm(d.timetuple())


_RELATIVE = ("today", "yesterday", "this week", "last week", "this month", "last month",
             "this year", "last year")  # fmt: skip


def _day_span(raw: str, today: date, field: str) -> tuple[int, int]:
    """[start, end) of a date value: a day (2024-01-31, 1/31/2024), an instant
    (2024-01-31T10:00:00Z: that second), or today, yesterday, this/last week/month/year. UTC."""
    value = " ".join(raw.strip().lower().split())
    if value in _RELATIVE:
        return _relative(value, today)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", value)
    if m is None:
        m2 = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value)
        if m2 is not None:
            m_, d_, y_ = m2.groups()
            parts = (int(y_), int(m_), int(d_))
        else:
            return _instant(raw.strip(), field)
    else:
        parts = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    try:
        day = date(*parts)
    except ValueError:
        raise _invalid(f"'{raw.strip()[:40]}' is not a date for '{field}'.") from None
    start = _seconds(day)
    return start, start + 86400


def _instant(raw: str, field: str) -> tuple[int, int]:
    try:
        moment = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(
            f"'{raw[:40]}' is not a date for '{field}' (2024-01-31, 1/31/2024, "
            "2024-01-31T10:00:00Z, today, yesterday, this week, last month...)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    start = int(moment.timestamp())
    return start, start + 1


def _relative(value: str, today: date) -> tuple[int, int]:
    if value == "today":
        return _seconds(today), _seconds(today) + 86400
    if value == "yesterday":
        return _seconds(today) - 86400, _seconds(today)
    if value.endswith("week"):
        monday = today - timedelta(days=today.weekday())
        if value == "last week":
            monday -= timedelta(days=7)
        return _seconds(monday), _seconds(monday) + 7 * 86400
    if value.endswith("month"):
        first = today.replace(day=1)
        if value == "last month":
            first = (first - timedelta(days=1)).replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return _seconds(first), _seconds(following)
    year = today.year - (1 if value == "last year" else 0)
    return _seconds(date(year, 1, 1)), _seconds(date(year + 1, 1, 1))


# ---------------------------------------------------------------- entry points


def unquote(value: str) -> str:
    """The KQL inside ``$search``'s value: Graph wants it in double quotes
    (``"from:a@b.c"``); a value without them (or quoted in parts) is taken as it is. Inside
    the outer quotes, ``\\"`` is a quote."""
    text = value.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if '"' not in inner.replace('\\"', ""):
            return inner.replace('\\"', '"')
    return text


def parse_search(value: str, *, now: int) -> SearchNode:
    """The tree of a ``$search`` value (the quotes around it included); QueryError if it is
    not one. ``now`` (epoch seconds) gives the relative dates (today: its UTC day)."""
    today = datetime.fromtimestamp(now, UTC).date()
    if len(value) > MAX_LENGTH:
        raise _invalid(f"longer than {MAX_LENGTH} characters.")
    if "\x00" in value:
        raise _invalid("a NUL character.")
    parser = _Parser(_lex(unquote(value)), today)
    if not parser.toks:
        raise _invalid("there is nothing to search for.")
    node = parser.parse_or(0, None)
    if parser.pos < len(parser.toks):
        tok = parser.toks[parser.pos]
        raise _invalid(f"unexpected '{tok.text[:20]}' at position {tok.at}.")
    if node is None:
        raise _invalid("there is no word to search for (only punctuation).")
    return node


def restricted_fields(node: SearchNode) -> set[str]:
    """The fields named by property restrictions (not free text); SIZE for ``size:``."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Text) and n.fields != DEFAULT_FIELDS:
            found.update(n.fields)
        elif isinstance(n, Size):
            found.add(SIZE)
        elif isinstance(n, Nope):
            stack.append(n.item)
        elif isinstance(n, (AllOf, AnyOf)):
            stack.extend(n.items)
    return found


def without_full_read(node: SearchNode) -> SearchNode:
    """The query for a caller who may not read bodies or attachments: free text searches
    BASIC_FIELDS. (A restriction on body or attachment is refused before, by the caller.)"""
    if isinstance(node, Text):
        if node.fields == DEFAULT_FIELDS:
            return Text(BASIC_FIELDS, node.words, node.exact)
        return node
    if isinstance(node, Nope):
        return Nope(without_full_read(node.item))
    if isinstance(node, AllOf):
        return AllOf(tuple(without_full_read(i) for i in node.items))
    if isinstance(node, AnyOf):
        return AnyOf(tuple(without_full_read(i) for i in node.items))
    return node
