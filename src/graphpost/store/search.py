"""The ``$search`` index of messages and its queries, on both engines.

SQLite: ``message_search``, an FTS5 table (unicode61, diacritics removed, combining marks
word characters: migration 0016) whose rowid is the
message's ``seq``, one column per field; a trigger deletes its row with the message (also by
cascade, when a folder or a user goes). PostgreSQL: ``message_search`` (``message_seq``, a
``tsvector`` ``doc`` under a GIN index, the ``digest`` of the message's own fields), deleted by
its foreign key's cascade. Each PostgreSQL lexeme is a word tagged with its field
(``s.pizza``: a word of the subject), so one ``tsvector`` holds every field.

Both are given the words of ``domain.search`` (already folded and split), never raw text, and
every word reaches the engine inside a quoted string of its query language (an FTS5 string,
a tsquery lexeme) that is itself one bound parameter: no user text is ever part of the SQL
or of an FTS expression's syntax.

Rows are written in the transaction of the message (insert, replace, attachments added or
removed); migration 0011 fills them for the messages that were there before, and 0016
again when the folding changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from graphpost.domain.search import (
    ATTACHMENT,
    BCC,
    BODY,
    CC,
    DEFAULT_FIELDS,
    FIELDS,
    FROM,
    SUBJECT,
    TO,
    AllOf,
    AnyOf,
    DateRange,
    Flag,
    Importance,
    IndexFields,
    Kind,
    Nope,
    SearchNode,
    Size,
    Text,
    attachment_words,
)
from graphpost.store.engine import Tx

# PostgreSQL: the tag of each field's lexemes
TAGS = {
    "subject": "s", "body": "b", "sender": "f", "torecip": "t", "ccrecip": "c",
    "bccrecip": "x", "attachment": "a",
}  # fmt: skip
_OWN_FIELDS = tuple(f for f in FIELDS if f != ATTACHMENT)
_MAX_POSITIONS = 256  # PostgreSQL keeps at most 256 positions of a lexeme
_MAX_POSITION = 16383

SQLITE_COLUMNS = ", ".join(FIELDS)


def _column_text(groups: list[list[str]]) -> str:
    return " ".join(" ".join(g) for g in groups)


def _lexeme(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


# PostgreSQL: free text looks up each word once under ANY (every field of the message's own,
# one after the other, the body last) and once under the attachments' tag, instead of once per
# field: the GIN index's partial matches are what a query costs
ANY = "w"
_ANY_ORDER = (SUBJECT, FROM, TO, CC, BCC, BODY)


def tsvector_text(fields: dict[str, list[list[str]]], *, any_field: bool = False) -> str:
    """A tsvector's input text: each field's words tagged, with positions (a field starts at
    1; consecutive groups, such as two recipients, one position apart so no phrase spans
    them); with ``any_field`` also under ANY, the fields one after the other."""
    positions: dict[str, list[int]] = {}

    def add(tag: str, groups: list[list[str]], pos: int) -> int:
        for group in groups:
            for w in group:
                found = positions.setdefault(f"{tag}.{w}", [])
                if len(found) < _MAX_POSITIONS:
                    found.append(min(pos, _MAX_POSITION))
                pos += 1
            pos += 1
        return pos

    for field, groups in fields.items():
        add(TAGS[field], groups, 1)
    if any_field:
        pos = 1
        for field in _ANY_ORDER:
            pos = add(ANY, fields.get(field, []), pos)
    return " ".join([f"{_lexeme(lex)}:{','.join(map(str, pos))}" for lex, pos in positions.items()])


def _own(fields: IndexFields) -> dict[str, list[list[str]]]:
    every = fields.by_field()
    return {f: every[f] for f in _OWN_FIELDS}


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class IndexEntry:
    """What is indexed of a message's own fields (not its attachment names), in the form
    each engine takes (made when asked for: an engine needs only its own)."""

    __slots__ = ("_own", "_pg")

    def __init__(self, fields: IndexFields) -> None:
        self._own = _own(fields)
        self._pg: str | None = None

    @property
    def sqlite(self) -> list[str]:
        """The FTS5 columns but the attachment names."""
        return [_column_text(self._own[f]) for f in _OWN_FIELDS]

    @property
    def pg(self) -> str:
        """The tsvector's text."""
        if self._pg is None:
            self._pg = tsvector_text(self._own, any_field=True)
        return self._pg

    @property
    def digest(self) -> str:
        return _digest(self.pg)


def pg_index_text(row: IndexEntry, attachment_names: list[str]) -> str:
    """A new message's tsvector text: its own fields and its attachments' names."""
    if not attachment_names:
        return row.pg
    return row.pg + " " + tsvector_text({ATTACHMENT: attachment_words(attachment_names)})


async def insert_index(tx: Tx, seq: int, row: IndexEntry, attachment_names: list[str]) -> None:
    """The index row of a new message (on PostgreSQL the insert CTE writes it instead)."""
    if tx.dialect == "postgresql":
        await tx.execute(
            "INSERT INTO message_search (message_seq, digest, doc) "
            "VALUES (?, ?, ?::text::tsvector)",
            (seq, row.digest, pg_index_text(row, attachment_names)),
        )
        return
    names = attachment_words(attachment_names)
    await tx.execute(
        f"INSERT INTO message_search (rowid, {SQLITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, *row.sqlite, _column_text(names)),
    )


# PostgreSQL: keep the attachment lexemes (a.*) and put the message's own in place
_PG_REPLACE_OWN = (
    "UPDATE message_search SET digest = ?, doc = ?::text::tsvector || ts_delete(doc, "
    "ARRAY(SELECT l FROM unnest(tsvector_to_array(doc)) AS l WHERE l NOT LIKE 'a.%')) "
    "WHERE message_seq = ? AND digest <> ?"
)
_PG_REPLACE_ATTACHMENTS = (
    "UPDATE message_search SET doc = ts_delete(doc, "
    "ARRAY(SELECT l FROM unnest(tsvector_to_array(doc)) AS l WHERE l LIKE 'a.%')) "
    "|| ?::text::tsvector WHERE message_seq = ?"
)
_SQLITE_REPLACE_OWN = (
    "UPDATE message_search SET "
    + ", ".join(f"{f} = ?" for f in _OWN_FIELDS)
    + " WHERE rowid = ? AND NOT ("
    + " AND ".join(f"{f} IS ?" for f in _OWN_FIELDS)
    + ")"
)


async def replace_index(tx: Tx, seq: int, row: IndexEntry) -> None:
    """A changed message's own fields, written only when they differ (a PATCH of isRead
    leaves the index alone)."""
    if tx.dialect == "postgresql":
        digest = row.digest
        await tx.execute(_PG_REPLACE_OWN, (digest, row.pg, seq, digest))
    else:
        columns = row.sqlite
        await tx.execute(_SQLITE_REPLACE_OWN, (*columns, seq, *columns))


async def reindex_attachments(tx: Tx, seq: int) -> None:
    """The attachment names of message ``seq`` as its attachment rows now say."""
    rows = await tx.fetchall(
        "SELECT name FROM attachments WHERE message_seq = ? ORDER BY position", (seq,)
    )
    names = attachment_words([str(r[0] or "") for r in rows])
    if tx.dialect == "postgresql":
        await tx.execute(_PG_REPLACE_ATTACHMENTS, (tsvector_text({ATTACHMENT: names}), seq))
    else:
        await tx.execute(
            f"UPDATE message_search SET {ATTACHMENT} = ? WHERE rowid = ?",
            (_column_text(names), seq),
        )


# ---------------------------------------------------------------- queries


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _fts_text(node: Text) -> str:
    phrase = _fts_string(" ".join(node.words)) + ("" if node.exact else "*")
    if set(node.fields) == set(FIELDS):
        # every column: no filter (FTS5 would check each hit's column, ~25 % of a look-up)
        return phrase
    return "{" + " ".join(node.fields) + "} : " + phrase


def _fts(node: SearchNode) -> str | None:
    """An FTS5 expression for a subtree of text only (NOT only beside something positive,
    FTS5's NOT being binary); None for anything else."""
    if isinstance(node, Text):
        return _fts_text(node)
    if isinstance(node, AnyOf):
        parts = [_fts(i) for i in node.items]
        if any(p is None for p in parts):
            return None
        return "(" + " OR ".join(p for p in parts if p) + ")"
    if isinstance(node, AllOf):
        plus: list[str] = []
        minus: list[str] = []
        for item in node.items:
            if isinstance(item, Nope):
                inner = _fts(item.item)
                if inner is None:
                    return None
                minus.append(inner)
            else:
                got = _fts(item)
                if got is None:
                    return None
                plus.append(got)
        if not plus:
            return None
        expr = "(" + " AND ".join(plus) + ")"
        for m in minus:
            expr = f"({expr} NOT {m})"
        return expr
    return None


def _tsq_text(node: Text) -> str:
    alternatives = []
    tags = (
        [ANY, TAGS[ATTACHMENT]] if node.fields == DEFAULT_FIELDS else [TAGS[f] for f in node.fields]
    )
    for tag in tags:
        lexemes = [_lexeme(f"{tag}.{w}") for w in node.words]
        if not node.exact:
            lexemes[-1] += ":*"
        alternatives.append(" <-> ".join(lexemes))
    joined = " | ".join(f"({a})" for a in alternatives)
    return f"({joined})"


def _tsq(node: SearchNode) -> str | None:
    """A tsquery for a subtree of text only (tsquery has AND, OR and a unary NOT)."""
    if isinstance(node, Text):
        return _tsq_text(node)
    if isinstance(node, Nope):
        inner = _tsq(node.item)
        return None if inner is None else f"!{inner}"
    if isinstance(node, (AllOf, AnyOf)):
        parts = [_tsq(i) for i in node.items]
        if any(p is None for p in parts):
            return None
        op = " & " if isinstance(node, AllOf) else " | "
        return "(" + op.join(p for p in parts if p) + ")"
    return None


_DATE_COLUMNS = {"received": "m.received_at", "sent": "m.sent_at"}


class SearchSql:
    """A search's SQL: ``where`` over ``m`` and its ``params``; on PostgreSQL, when a text
    condition must hold for every result, ``hits`` (a CTE of the rows it finds, its parameter
    in ``hits_params``) for the query to join ``messages`` to."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.params: list[Any] = []
        self.where = ""
        self.hits = ""
        self.hits_params: list[Any] = []
        self.text_only = False
        """Whether the text condition is all there is to check (no date, flag or size)."""
        self.text_first = False
        """Whether the index should find the rows (a text condition every result must meet):
        then the mailbox's own index must not be used to walk it in date order (the
        planners' guesses of a text match's selectivity are poor, so it is imposed)."""

    def text_condition(self, node: SearchNode) -> str | None:
        if self.dialect == "postgresql":
            tsq = _tsq(node)
            if tsq is None:
                return None
            self.params.append(tsq)
            return (
                "EXISTS (SELECT 1 FROM message_search s WHERE s.message_seq = m.seq "
                "AND s.doc @@ ?::text::tsquery)"
            )
        fts = _fts(node)
        if fts is None:
            return None
        self.params.append(fts)
        return "m.seq IN (SELECT rowid FROM message_search WHERE message_search MATCH ?)"

    def condition(self, node: SearchNode) -> str:
        found = self.text_condition(node)
        if found is not None:
            return found
        if isinstance(node, Nope):
            return f"NOT ({self.condition(node.item)})"
        if isinstance(node, (AllOf, AnyOf)):
            # the text-only items together: one MATCH (one index lookup) instead of several
            texts = [i for i in node.items if self._texty(i)]
            rest = [i for i in node.items if not self._texty(i)]
            parts: list[str] = []
            if len(texts) > 1:
                grouped = AllOf(tuple(texts)) if isinstance(node, AllOf) else AnyOf(tuple(texts))
                got = self.text_condition(grouped)
                if got is not None:
                    parts.append(got)
                else:
                    rest = list(node.items)
            else:
                rest = list(node.items)
            parts += [self.condition(i) for i in rest]
            op = " AND " if isinstance(node, AllOf) else " OR "
            return "(" + op.join(parts) + ")"
        if isinstance(node, DateRange):
            column = _DATE_COLUMNS[node.field]
            bounds = []
            if node.start is not None:
                self.params.append(node.start)
                bounds.append(f"{column} >= ?")
            if node.end is not None:
                self.params.append(node.end)
                bounds.append(f"{column} < ?")
            return "(" + " AND ".join(bounds) + ")" if bounds else "1 = 1"
        if isinstance(node, Flag):
            self.params.append(node.value)
            return "m.has_attachments = ?"
        if isinstance(node, Importance):
            self.params.append(node.value)
            return "lower(m.importance) = ?"
        if isinstance(node, Kind):
            return "1 = 1" if node.email else "1 = 0"
        if isinstance(node, Size):
            # the item's size: its stored document and its attachments' bytes
            length = "octet_length" if self.dialect == "postgresql" else "length"
            size = (
                f"({length}(m.doc) + (SELECT COALESCE(SUM(a.size), 0) FROM attachments a "
                "WHERE a.message_seq = m.seq))"
            )
            bounds = []
            if node.low is not None:
                self.params.append(node.low)
                bounds.append(f"{size} >= ?")
            if node.high is not None:
                self.params.append(node.high)
                bounds.append(f"{size} <= ?")
            return "(" + " AND ".join(bounds) + ")" if bounds else "1 = 1"
        raise AssertionError(node)  # Text is always texty

    def _texty(self, node: SearchNode) -> bool:
        if self.dialect == "postgresql":
            return _tsq(node) is not None
        return _fts(node) is not None or (isinstance(node, Nope) and _fts(node.item) is not None)


def _positive(node: SearchNode) -> bool:
    """Whether every message ``node`` finds has one of its words (so the text index can find
    them: a bare NOT, or an OR with one, would make every message of every mailbox a hit,
    which PostgreSQL's GIN index cannot answer without reading all of it)."""
    if isinstance(node, Text):
        return True
    if isinstance(node, AllOf):
        return any(_positive(i) for i in node.items)
    if isinstance(node, AnyOf):
        return all(_positive(i) for i in node.items)
    return False


def _driving(node: SearchNode, dialect: str) -> tuple[SearchNode, list[SearchNode]] | None:
    """The text condition every result must meet (the node, or the text items of a top AND
    together) and what is left to check on each row; None if there is none."""
    texty = SearchSql(dialect)._texty
    if texty(node):
        drive: SearchNode = node
        rest: list[SearchNode] = []
    elif isinstance(node, AllOf):
        texts = [i for i in node.items if texty(i)]
        rest = [i for i in node.items if not texty(i)]
        if not texts:
            return None
        drive = texts[0] if len(texts) == 1 else AllOf(tuple(texts))
    else:
        return None
    usable = _tsq(drive) if dialect == "postgresql" else _fts(drive)
    return (drive, rest) if usable is not None and _positive(drive) else None


def compile_search(node: SearchNode, dialect: str) -> SearchSql:
    found = SearchSql(dialect)
    driving = _driving(node, dialect)
    if driving is None:
        found.where = found.condition(node)
        return found
    drive, rest = driving
    found.text_first = True
    found.text_only = not rest
    if dialect == "postgresql":
        found.hits = (
            "hits AS MATERIALIZED (SELECT message_seq FROM message_search "
            "WHERE doc @@ ?::text::tsquery)"
        )
        found.hits_params.append(_tsq(drive))
        parts = [found.condition(r) for r in rest]
    else:
        parts = [found.condition(drive)] + [found.condition(r) for r in rest]
    found.where = " AND ".join(parts) if parts else "1 = 1"
    return found
