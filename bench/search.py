"""Fill a mailbox with N messages of varied words for the ``$search`` bench (set-up only).

Words are drawn from a vocabulary of 5,000 made-up words with Zipf's frequencies (s = 1), as
words are in real mail: a subject of 4-9 words, a body of 60-120, a sender and a recipient
among 300 people. Written through graphpost's own store (and so its search index), 1,000
messages a transaction. ``queries`` gives two-word queries of words of middling frequency
(ranks 100-1,000: each is in roughly 1-10 % of the messages).

    python bench/search.py DATA_DIR USER COUNT [DATABASE_URL]
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import sys
import time
from pathlib import Path

from graphpost.domain import ids
from graphpost.domain.message import EmailAddress, ItemBody, Recipient, item
from graphpost.ports.messages import NewMessage
from graphpost.runtime import Runtime, prepare
from graphpost.settings import Settings

VOCABULARY = 5000
SYLLABLES = [a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "ar", "en", "is")]
T0 = 1_700_000_000


def vocabulary(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < VOCABULARY:
        found["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(found)


def queries(n: int = 200, seed: int = 11) -> list[str]:
    words = vocabulary()
    rng = random.Random(seed)
    return [f"{rng.choice(words[100:1000])} {rng.choice(words[100:1000])}" for _ in range(n)]


class Writer:
    def __init__(self, seed: int = 3) -> None:
        self.words = vocabulary()
        self.rng = random.Random(seed)
        weights = [1 / (r + 1) for r in range(VOCABULARY)]
        self.cumulative = list(itertools.accumulate(weights))
        self.people = [
            Recipient(EmailAddress(f"{self.pick().title()} {self.pick().title()}",
                                   f"{self.pick()}.{self.pick()}@example.com"))
            for _ in range(300)
        ]  # fmt: skip

    def pick(self) -> str:
        x = self.rng.random() * self.cumulative[-1]
        return self.words[bisect.bisect_left(self.cumulative, x)]

    def text(self, low: int, high: int) -> str:
        k = self.rng.randint(low, high)
        return " ".join(self.rng.choices(self.words, cum_weights=self.cumulative, k=k))

    def message(self, mailbox: str, folder: str, n: int, me: Recipient) -> NewMessage:
        frm = self.rng.choice(self.people)
        msg = item(
            message_id=ids.message_id(), folder_id=folder, now=T0 + n * 60,
            web_base="http://localhost", conversation_index=ids.conversation_index(),
            attachments=[], internet_message_id=f"<bench-{n}@example.com>",
            subject=self.text(4, 9).capitalize(), body=ItemBody("text", self.text(60, 120)),
            sender=frm, from_=frm, to=[me, self.rng.choice(self.people)], cc=[], bcc=[],
            reply_to=[], is_read=self.rng.random() < 0.7, is_draft=False, categories=[],
        )  # fmt: skip
        return NewMessage(mailbox, msg)


async def seed(data_dir: Path, user: str, count: int, database_url: str | None) -> None:
    runtime = await Runtime.open(Settings(data_dir=data_dir, database_url=database_url))
    try:
        await runtime.directory.seed_demo()
        owner = await runtime.directory.user(user)
        assert owner is not None
        inbox = await runtime.folders.well_known_of(owner.id, "inbox")
        writer = Writer()
        me = Recipient(EmailAddress(owner.display_name, owner.mail))
        pending: set[asyncio.Task[None]] = set()
        for start in range(0, count, 1000):
            batch = [writer.message(owner.id, inbox, n, me)
                     for n in range(start, min(count, start + 1000))]  # fmt: skip
            # a few transactions in flight: the database works while the next batch is made
            pending.add(asyncio.create_task(runtime.message_store.insert_messages(batch)))
            if len(pending) >= 3:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        for task in pending:
            await task
    finally:
        await runtime.close()


if __name__ == "__main__":
    directory, user, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    url = sys.argv[4] if len(sys.argv) > 4 else None
    prepare(Settings(data_dir=directory, database_url=url))
    t = time.perf_counter()
    asyncio.run(seed(directory, user, count, url))
    print(f"seeded {count:,} messages of varied words in {time.perf_counter() - t:.1f}s")
