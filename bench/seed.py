"""Fill a mailbox with N received messages through graphpost's own store (bench set-up only)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from graphpost.runtime import Runtime, prepare
from graphpost.settings import Settings
from graphpost.store.engine import Tx

MIME = (
    "From: Seed <seed@example.org>\r\nTo: {to}\r\nSubject: seeded {n}\r\n"
    "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <seed-{n}@example.org>\r\n\r\n"
    + "seed body "
    * 100
)


async def seed(data_dir: Path, user: str, count: int) -> None:
    settings = Settings(data_dir=data_dir)
    runtime = await Runtime.open(settings)
    try:
        await runtime.directory.seed_demo()
        owner = await runtime.directory.user(user)
        assert owner is not None
        batch = []
        for n in range(count):
            raw = MIME.format(to=user, n=n).encode()
            batch.append(runtime.ingest.message_from_mime(raw, owner))
            if len(batch) == 500:
                copies = await asyncio.gather(*batch)
                await runtime.message_store.insert_messages(list(copies))
                batch = []
        if batch:
            await runtime.message_store.insert_messages(list(await asyncio.gather(*batch)))
    finally:
        await runtime.close()


async def seed_direct(data_dir: Path, user: str, count: int) -> None:
    """The same mailbox without MIME: documents built by the domain's one builder (what a
    delta or a listing reads is the same; seeding 100,000 takes seconds, not minutes)."""
    from graphpost.domain import ids
    from graphpost.domain.message import EmailAddress, ItemBody, Recipient, item
    from graphpost.ports.messages import NewMessage

    settings = Settings(data_dir=data_dir)
    runtime = await Runtime.open(settings)
    try:
        await runtime.directory.seed_demo()
        owner = await runtime.directory.user(user)
        assert owner is not None
        inbox = await runtime.folders.well_known_of(owner.id, "inbox")
        seeder = Recipient(EmailAddress("Seed", "seed@example.org"))
        me = Recipient(EmailAddress(owner.display_name, owner.mail))
        start = int(time.time()) - count
        batch: list[NewMessage] = []
        for n in range(count):
            msg = item(
                message_id=ids.message_id(), folder_id=inbox, now=start + n, web_base="http://x",
                conversation_index=ids.conversation_index(start + n), attachments=[],
                internet_message_id=f"<seed-{n}@example.org>", subject=f"seeded {n}",
                body=ItemBody("text", "seed body " * 100), sender=seeder, from_=seeder,
                to=[me], cc=[], bcc=[], reply_to=[], is_read=False, is_draft=False,
                categories=[],
            )  # fmt: skip
            batch.append(NewMessage(owner.id, msg))
            if len(batch) == 1000:
                await runtime.message_store.insert_messages(batch)
                batch = []
        if batch:
            await runtime.message_store.insert_messages(batch)
        if runtime.engine.dialect == "postgresql":  # what autovacuum does after a bulk load

            async def analyze(tx: Tx) -> None:
                await tx.execute("ANALYZE")

            await runtime.engine.write(analyze)
    finally:
        await runtime.close()


if __name__ == "__main__":
    directory = Path(sys.argv[1])
    prepare(Settings(data_dir=directory))
    t = time.perf_counter()
    direct = sys.argv[4:] == ["direct"]
    asyncio.run((seed_direct if direct else seed)(directory, sys.argv[2], int(sys.argv[3])))
    print(f"seeded {sys.argv[3]} in {time.perf_counter() - t:.1f}s")
