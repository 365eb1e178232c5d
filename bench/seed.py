"""Fill a mailbox with N received messages through graphpost's own store (bench set-up only)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from graphpost.runtime import Runtime, prepare
from graphpost.settings import Settings

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


if __name__ == "__main__":
    directory = Path(sys.argv[1])
    prepare(Settings(data_dir=directory))
    t = time.perf_counter()
    asyncio.run(seed(directory, sys.argv[2], int(sys.argv[3])))
    print(f"seeded {sys.argv[3]} in {time.perf_counter() - t:.1f}s")
