"""Inbound SMTP load: N messages over C connections (aiosmtplib), one process; prints the rate."""

from __future__ import annotations

import asyncio
import sys
import time

import aiosmtplib

BODY = (
    "Subject: inbound load\r\nFrom: load@example.org\r\nTo: {to}\r\n\r\n" + ("x" * 70 + "\r\n") * 28
)


async def worker(port: int, to: str, count: int) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
    await client.connect()
    message = BODY.format(to=to).encode()
    for _ in range(count):
        await client.sendmail("load@example.org", [to], message)
    await client.quit()


async def main(port: int, to: str, total: int, connections: int) -> None:
    start = time.perf_counter()
    each = total // connections
    await asyncio.gather(*(worker(port, to, each) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    print(f"{each * connections} {elapsed:.3f}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
