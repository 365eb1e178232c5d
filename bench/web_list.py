"""The web page's message list at a 1,000,000-message mailbox (set-up and the positions the
bench reads).

``seed`` fills Adele's Inbox with COUNT received messages and her Archive with OTHER, through
graphpost's own store (documents built by the domain's one builder, no MIME; 1,000 a
transaction, a few transactions in flight), then prints one JSON line: the user's and the two
folders' ids, and the list cursors of a page half-way down the Inbox and of its last page
(the keyset positions the page itself hands out: ``{received}.{seq}``).

    python bench/web_list.py DATA_DIR USER COUNT OTHER [DATABASE_URL]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, item
from graphpost.ports.messages import NewMessage
from graphpost.runtime import Runtime, prepare
from graphpost.settings import Settings
from graphpost.store.engine import Tx

T0 = 1_700_000_000
PEOPLE = [
    Recipient(EmailAddress(f"Sender {n}", f"sender{n}@example.com")) for n in range(200)
]  # fmt: skip


def message(mailbox: str, folder: str, n: int, me: Recipient) -> NewMessage:
    frm = PEOPLE[n % len(PEOPLE)]
    msg = item(
        message_id=ids.message_id(), folder_id=folder, now=T0 + n * 30,
        web_base="http://localhost", conversation_index=ids.conversation_index(T0 + n * 30),
        attachments=[], internet_message_id=f"<list-{folder[-8:]}-{n}@example.com>",
        subject=f"Status report {n}: the numbers for week {n % 52}",
        body=ItemBody("text", f"Hello, here is report {n}. " + "The figures are attached. " * 8),
        sender=frm, from_=frm, to=[me], cc=[], bcc=[], reply_to=[], is_read=n % 3 == 0,
        is_draft=False, categories=[],
    )  # fmt: skip
    return NewMessage(mailbox, msg)


async def fill(runtime: Runtime, mailbox: str, folder: str, count: int, me: Recipient) -> None:
    pending: set[asyncio.Task[None]] = set()
    for start in range(0, count, 1000):
        batch = [message(mailbox, folder, n, me) for n in range(start, min(count, start + 1000))]
        # a few transactions in flight: the database works while the next batch is made
        pending.add(asyncio.create_task(runtime.message_store.insert_messages(batch)))
        if len(pending) >= 3:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
    for task in pending:
        await task


async def cursor_at(runtime: Runtime, folder: str, offset: int) -> str:
    """The cursor the page gives out after ``offset`` messages of the folder (newest first)."""

    async def op(tx: Tx) -> str:
        row = await tx.fetchone(
            "SELECT received_at, seq FROM messages WHERE folder_id = ? "
            "ORDER BY received_at DESC, seq DESC LIMIT 1 OFFSET ?",
            (folder, offset - 1),
        )
        assert row is not None, f"the folder has fewer than {offset} messages"
        return f"{int(row[0])}.{int(row[1])}"

    return await runtime.engine.read(op)


async def seed(
    data_dir: Path, user: str, count: int, other: int, url: str | None
) -> dict[str, str]:
    runtime = await Runtime.open(Settings(data_dir=data_dir, database_url=url))
    try:
        await runtime.directory.seed_demo()
        owner = await runtime.directory.user(user)
        assert owner is not None
        inbox = await runtime.folders.well_known_of(owner.id, "inbox")
        archive = await runtime.folders.well_known_of(owner.id, "archive")
        me = Recipient(EmailAddress(owner.display_name, owner.mail))
        await fill(runtime, owner.id, inbox, count, me)
        await fill(runtime, owner.id, archive, other, me)
        if runtime.engine.dialect == "postgresql":  # what autovacuum does after a bulk load

            async def analyze(tx: Tx) -> None:
                await tx.execute("ANALYZE")

            await runtime.engine.write(analyze)
        return {
            "user": owner.id,
            "inbox": inbox,
            "archive": archive,
            "middle": await cursor_at(runtime, inbox, count // 2),
            "last": await cursor_at(runtime, inbox, max(1, count - 50)),
        }
    finally:
        await runtime.close()


if __name__ == "__main__":
    directory, user = Path(sys.argv[1]), sys.argv[2]
    count, other = int(sys.argv[3]), int(sys.argv[4])
    url = sys.argv[5] if len(sys.argv) > 5 else None
    prepare(Settings(data_dir=directory, database_url=url))
    t = time.perf_counter()
    found = asyncio.run(seed(directory, user, count, other, url))
    found["seconds"] = f"{time.perf_counter() - t:.0f}"
    print(json.dumps(found))
