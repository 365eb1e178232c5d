"""An ordinary aiosmtpd sink in its own process; it writes how many messages it has taken to a
file, so the benchmark can tell when everything sent has arrived."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP


class Counter:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.count = 0
        self.recipients = 0
        self.seen: set[bytes] = set()
        self.duplicates = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        self.recipients += len(envelope.rcpt_tos)
        data = envelope.original_content or envelope.content or b""
        start = data.find(b"Message-ID:")
        key = data[start : data.find(b"\r\n", start)] if start >= 0 else data
        if key in self.seen:
            self.duplicates += 1
        self.seen.add(key)
        return "250 2.0.0 OK"


async def main(port: int, out: Path) -> None:
    counter = Counter(out)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(counter, hostname="sink", data_size_limit=0), "127.0.0.1", port
    )
    async with server:
        while True:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(f"{counter.count} {counter.recipients} {counter.duplicates}")
            tmp.replace(out)  # atomic: a reader never sees a half-written file
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2])))
