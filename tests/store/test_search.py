"""The $search index on SQLite (FTS5) and PostgreSQL (tsvector): kept in the message's
transaction by every write path, and queried with every KQL form."""

from __future__ import annotations

import pytest
from msgspec.structs import replace as replace_struct

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, attachment, item
from graphpost.domain.query import MessageQuery
from graphpost.domain.search import parse_search
from graphpost.ports.directory import User
from graphpost.ports.folders import Folder
from graphpost.ports.messages import NewMessage
from graphpost.services.directory import mailbox_folders
from graphpost.store.engine import Tx
from graphpost.store.search import compile_search
from tests.store.conftest import Stores

pytestmark = pytest.mark.anyio

DAY = 86400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


async def user_of(store: Stores, mail: str) -> User:
    tenant = await store.directory.ensure_tenant(domain="example.com", display_name="Example")
    user = User(ids.guid(), tenant.id, mail.split("@")[0], mail, mail)
    await store.directory.add_user(user, mailbox_folders(user.id))
    return user


def person(name: str, address: str) -> Recipient:
    return Recipient(EmailAddress(name, address))


def new_message(user: User, folder: str, *, subject: str, body: str = "", html: bool = False,
                sender: Recipient | None = None, to: list[Recipient] | None = None,
                cc: list[Recipient] | None = None, at: int = T0,
                files: list[str] | None = None) -> NewMessage:  # fmt: skip
    frm = sender or person("Alice Ashby", "alice@example.com")
    found = [
        attachment(n, "text/plain", b"x", is_inline=False, content_id=None, now=at)
        for n in files or []
    ]
    msg = item(
        message_id=ids.message_id(), folder_id=folder, now=at, web_base="http://x",
        conversation_index=ids.conversation_index(), attachments=found,
        internet_message_id=f"<{ids.guid()}@example.com>", subject=subject,
        body=ItemBody("html" if html else "text", body), sender=frm, from_=frm,
        to=to if to is not None else [person("Bob Brown", "bob@example.com")],
        cc=cc or [], bcc=[], reply_to=[], is_read=False, is_draft=False, categories=[],
    )  # fmt: skip
    return NewMessage(user.id, msg, attachments=found)


async def search(store: Stores, user: User, kql: str, *, folder: str | None = None,
                 top: int = 50) -> list[str]:  # fmt: skip
    query = MessageQuery(top=top, search=parse_search(kql, now=T0 + 10 * DAY))
    found, _, _ = await store.messages.list_messages(user.id, folder, query)
    return [m.message().subject or "" for m in found]


@pytest.fixture
async def mailbox(store: Stores) -> tuple[User, str]:
    user = await user_of(store, "owner@example.com")
    inbox = await store.folders.well_known_folder(user.id, "inbox")
    assert inbox is not None
    carol = person("Carol Çelik", "carol@contoso.com")
    rows = [
        dict(subject="Pizza party on Friday", body="Bring a topping", at=T0),
        dict(subject="Quarterly report", body="<p>The <b>pizza</b> budget is over</p>",
             html=True, at=T0 + DAY, sender=carol),
        dict(subject="Holiday plans", body="Café au lait at the résumé workshop", at=T0 + 2 * DAY,
             cc=[carol], files=["annual-report.pdf"]),
        dict(subject="Re: budget", body="numbers attached", at=T0 + 3 * DAY,
             to=[person("Dave", "dave@fabrikam.com")], files=["numbers.xlsx"]),
    ]  # fmt: skip
    for row in rows:
        await store.messages.insert_message(new_message(user, inbox.id, **row))  # type: ignore[arg-type]
    return user, inbox.id


async def test_free_text_and_every_property(store: Stores, mailbox: tuple[User, str]) -> None:
    user, _ = mailbox
    assert await search(store, user, '"pizza"') == ["Quarterly report", "Pizza party on Friday"]
    assert await search(store, user, "PIZ") == ["Quarterly report", "Pizza party on Friday"]
    assert await search(store, user, '"from:carol@contoso.com"') == ["Quarterly report"]
    assert await search(store, user, "from:carol") == ["Quarterly report"]
    assert await search(store, user, "cc:celik") == ["Holiday plans"]  # diacritics folded
    assert await search(store, user, "to:dave@fabrikam.com") == ["Re: budget"]
    assert await search(store, user, "participants:carol") == [
        "Holiday plans", "Quarterly report"
    ]  # fmt: skip
    assert await search(store, user, "recipients:carol") == ["Holiday plans"]
    assert await search(store, user, "subject:budget") == ["Re: budget"]
    assert await search(store, user, "body:budget") == ["Quarterly report"]
    assert await search(store, user, "body:b") == ["Quarterly report", "Pizza party on Friday"]
    assert await search(store, user, "attachment:annual") == ["Holiday plans"]
    assert await search(store, user, "report") == [
        "Holiday plans", "Quarterly report"
    ]  # fmt: skip
    assert await search(store, user, "hasattachments:true") == ["Re: budget", "Holiday plans"]
    assert await search(store, user, "hasAttachment:false") == [
        "Quarterly report", "Pizza party on Friday"
    ]  # fmt: skip
    assert await search(store, user, "cafe resume") == ["Holiday plans"]
    assert len(await search(store, user, "kind:email")) == 4
    assert await search(store, user, "kind:voicemail") == []
    assert len(await search(store, user, "size:1..500000")) == 4
    assert await search(store, user, "size>100000000") == []
    assert await search(store, user, "importance:medium budget") == [
        "Re: budget", "Quarterly report"
    ]  # fmt: skip


async def test_phrases_booleans_and_dates(store: Stores, mailbox: tuple[User, str]) -> None:
    user, _ = mailbox
    # the quotes around the whole value are Graph's delimiters; \" inside them is a quote
    assert await search(store, user, '"budget pizza"') == ["Quarterly report"]
    assert await search(store, user, '"\\"pizza budget\\""') == ["Quarterly report"]
    assert await search(store, user, '"\\"budget pizza\\""') == []
    assert await search(store, user, 'zzz OR "budget pizza"') == []  # a phrase: not in a row
    assert await search(store, user, 'subject:"party on"') == ["Pizza party on Friday"]
    assert await search(store, user, "pizza AND budget") == ["Quarterly report"]
    assert await search(store, user, "pizza budget") == ["Quarterly report"]
    assert await search(store, user, "topping OR numbers") == [
        "Re: budget", "Pizza party on Friday"
    ]  # fmt: skip
    assert await search(store, user, "pizza NOT budget") == ["Pizza party on Friday"]
    assert await search(store, user, "pizza -budget") == ["Pizza party on Friday"]
    assert await search(store, user, "NOT pizza") == ["Re: budget", "Holiday plans"]
    assert await search(store, user, "(pizza OR holiday) AND NOT from:carol") == [
        "Holiday plans", "Pizza party on Friday"
    ]  # fmt: skip
    assert await search(store, user, "subject:(party OR plans)") == [
        "Holiday plans", "Pizza party on Friday"
    ]  # fmt: skip
    assert await search(store, user, "received:2024-01-02") == ["Quarterly report"]
    assert await search(store, user, "received:1/2/2024") == ["Quarterly report"]
    assert await search(store, user, "received>=2024-01-03") == ["Re: budget", "Holiday plans"]
    assert await search(store, user, "received>2024-01-03") == ["Re: budget"]
    assert await search(store, user, "received<2024-01-02") == ["Pizza party on Friday"]
    assert await search(store, user, "received<=2024-01-02") == [
        "Quarterly report", "Pizza party on Friday"
    ]  # fmt: skip
    assert await search(store, user, "received:2024-01-02..2024-01-03") == [
        "Holiday plans", "Quarterly report"
    ]  # fmt: skip
    assert await search(store, user, "sent:2024-01-04 OR pizza received<2024-01-02") == [
        "Re: budget", "Pizza party on Friday"
    ]  # fmt: skip
    assert await search(store, user, "received:today") == []  # T0 + 10 days
    assert await search(store, user, 'received:"last year"') == []
    assert len(await search(store, user, 'received:"this month"')) == 4
    assert await search(store, user, "budget importance:normal") == [
        "Re: budget", "Quarterly report"
    ]  # fmt: skip
    assert await search(store, user, "budget importance:high") == []


async def test_hostile_words_are_only_words(store: Stores, mailbox: tuple[User, str]) -> None:
    """FTS5 and tsquery syntax in a query is text: quotes, stars, operators, colons."""
    user, _ = mailbox
    hostile = ['pizza" OR "x', "NEAR(pizza budget)", "pizza' | 'x", "subject:'x':*",
               "{body}:pizza", "a\\\\b", "pizza ^budget", "!pizza", "*", "x:y:z",
               "\u2028"]  # fmt: skip
    for kql in hostile:
        try:
            await search(store, user, kql)
        except Exception as exc:  # only our own refusal is allowed
            assert type(exc).__name__ == "QueryError", (kql, exc)
    assert await search(store, user, "pizza' | 'x") == []  # the words pizza and x, both
    assert await search(store, user, "{body}:pizza") == []  # the words body and pizza


async def test_index_follows_every_write(store: Stores, mailbox: tuple[User, str]) -> None:
    """Replace, attachments added and deleted, delete, folder and user removal."""
    user, inbox = mailbox
    written = await store.messages.insert_message(
        new_message(user, inbox, subject="walrus", body="tusks", at=T0 + 5 * DAY)
    )
    assert await search(store, user, "tusks") == ["walrus"]
    doc = written.message()
    renamed = replace_struct(doc, subject="narwhal", change_key=ids.change_key())
    got = await store.messages.replace_message(user.id, renamed, expected_change_key=doc.change_key)
    assert got is not None
    assert await search(store, user, "walrus") == []
    assert await search(store, user, "narwhal tusks") == ["narwhal"]
    read = replace_struct(renamed, is_read=True, change_key=ids.change_key())  # text unchanged
    assert await store.messages.replace_message(
        user.id, read, expected_change_key=renamed.change_key
    )
    assert await search(store, user, "narwhal") == ["narwhal"]
    file = attachment("iceberg.png", "image/png", b"p", is_inline=False, content_id=None, now=1)
    with_file = replace_struct(read, has_attachments=True, change_key=ids.change_key())
    assert await store.messages.add_attachment(
        user.id, with_file, file, expected_change_key=read.change_key
    )
    assert await search(store, user, "attachment:iceberg") == ["narwhal"]
    again = replace_struct(with_file, subject="beluga", change_key=ids.change_key())
    assert await store.messages.replace_message(
        user.id, again, expected_change_key=with_file.change_key
    )
    assert await search(store, user, "attachment:iceberg subject:beluga") == ["beluga"]
    without = replace_struct(again, has_attachments=False, change_key=ids.change_key())
    assert await store.messages.delete_attachment(
        user.id, without, file.id, expected_change_key=again.change_key
    )
    assert await search(store, user, "iceberg") == []
    assert await search(store, user, "beluga") == ["beluga"]
    assert await store.messages.delete_message(user.id, written.id)
    assert await search(store, user, "beluga") == []
    assert await index_rows(store) == 4
    root = await store.folders.well_known_folder(user.id, "msgfolderroot")
    assert root is not None
    box = Folder(ids.folder_id(), user.id, root.id, "Box", None, False)
    await store.folders.create_folder(box)
    await store.messages.insert_message(new_message(user, box.id, subject="boxed"))
    assert await search(store, user, "boxed") == ["boxed"]
    await store.folders.delete_folder(user.id, box.id)  # its messages go by cascade
    assert await search(store, user, "boxed") == []
    assert await index_rows(store) == 4
    assert await store.directory.remove_user(user.id)
    assert await index_rows(store) == 0


async def test_folder_scope_and_paging(store: Stores, mailbox: tuple[User, str]) -> None:
    user, inbox = mailbox
    drafts = await store.folders.well_known_folder(user.id, "drafts")
    assert drafts is not None
    await store.messages.insert_message(new_message(user, drafts.id, subject="budget draft"))
    assert await search(store, user, "budget") == ["Re: budget", "Quarterly report",
                                                    "budget draft"]  # fmt: skip
    assert await search(store, user, "budget", folder=inbox) == [
        "Re: budget", "Quarterly report"
    ]  # fmt: skip
    assert await search(store, user, "budget", folder=drafts.id) == ["budget draft"]
    query = MessageQuery(top=1, skip=1, search=parse_search("budget", now=T0))
    found, _, more = await store.messages.list_messages(user.id, None, query)
    assert [m.message().subject for m in found] == ["Quarterly report"] and more
    other = await user_of(store, "other@example.com")
    assert await search(store, other, "budget") == []  # one mailbox never sees another's


async def index_rows(store: Stores) -> int:
    async def op(tx: Tx) -> int:
        row = await tx.fetchone("SELECT count(*) FROM message_search", ())
        return int(row[0]) if row else 0

    return await store.engine.read(op)


def _distinct(n: int, length: int, seed: str) -> str:
    """``n`` different words of ``length`` letters (no two alike: each is a lexeme of its own)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for i in range(n):
        stem, k = "", i
        for _ in range(6):
            stem, k = stem + letters[k % 26], k // 26
        out.append((seed + stem + "q" * length)[:length])
    return " ".join(out)


async def test_a_message_of_the_most_distinct_words_is_written_and_found(
    store: Stores, mailbox: tuple[User, str]
) -> None:
    """PostgreSQL's tsvector holds at most 1 MiB: a message whose subject, recipients, body
    and attachment names are all long distinct words is still written (the index keeps what
    fits, alike on both engines), and found by its first words."""
    user, inbox = mailbox
    body = _distinct(16000, 64, "body")  # ~1 MB: the most words of a body that are indexed
    names = [_distinct(4, 60, f"att{i:03d}") for i in range(600)]  # past their own budget
    many = [person(_distinct(3, 64, f"nm{i:03d}"), f"r{i}@example.com") for i in range(500)]
    new = new_message(user, inbox, subject="zebracrossing " + _distinct(2000, 64, "subj"),
                      body=body, to=many, cc=many, files=names)  # fmt: skip
    stored = await store.messages.insert_message(new)
    assert await search(store, user, "zebracrossing") == [stored.message().subject]
    assert await search(store, user, "subject:subjaaaaaa") == [stored.message().subject]
    # the budget keeps the subject whole before the body: the body's words are not all kept
    assert await search(store, user, "body:bodyaaaaaa") == []
    assert await search(store, user, "attachment:att000aaaa") == [stored.message().subject]
    assert await search(store, user, "attachment:att599aaaa") == []  # cut: over the budget
    doc = stored.message()
    changed = replace_struct(doc, subject="yakshaving " + _distinct(100, 64, "new"))
    assert await store.messages.replace_message(
        user.id, changed, expected_change_key=stored.change_key
    )
    assert await search(store, user, "yakshaving") == [changed.subject]
    assert await search(store, user, "zebracrossing") == []


@pytest.mark.parametrize(
    ("kql", "driven"),
    [
        ("pizza", True), ("pizza NOT budget", True), ("pizza OR budget", True),
        ("pizza hasattachments:true", True), ("(pizza OR NOT budget) report", True),
        # nothing positive for the text index to find: every message of every mailbox would be
        # a hit (PostgreSQL's GIN index cannot answer a bare NOT), so the mailbox is walked
        ("NOT pizza", False), ("-pizza -budget", False), ("pizza OR NOT budget", False),
        ("NOT (pizza OR budget)", False), ("hasattachments:true", False),
    ],
)  # fmt: skip
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_only_a_positive_text_condition_drives_a_search(
    kql: str, driven: bool, dialect: str
) -> None:
    found = compile_search(parse_search(kql, now=T0), dialect)
    assert found.text_first is driven
    assert bool(found.hits) is (driven and dialect == "postgresql")
