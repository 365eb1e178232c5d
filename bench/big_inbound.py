"""Large inbound mail: C SMTP clients (aiosmtplib, one process) each sending 10 MB messages back
to back for S seconds; prints the messages stored and the seconds."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
import time

import aiosmtplib

SIZE = 10 * 1024 * 1024


def message(to: str) -> bytes:
    """A 10 MB message: a short text body and a base64 attachment, as mail clients write it."""
    data = base64.encodebytes(os.urandom(SIZE * 3 // 4 - 4096)).replace(b"\n", b"\r\n")
    return (
        (
            f"Subject: large inbound\r\nFrom: big@example.org\r\nTo: {to}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\nsee the attachment\r\n--b\r\n"
            "Content-Type: application/octet-stream\r\n"
            'Content-Disposition: attachment; filename="x.bin"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + data
        + b"--b--\r\n"
    )


async def client(port: int, to: str, raw: bytes, until: float, sent: list[int]) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=300)
    await smtp.connect()
    while time.monotonic() < until:
        await smtp.sendmail("big@example.org", [to], raw)
        sent.append(len(raw))
    await smtp.quit()


async def main(port: int, to: str, seconds: float, connections: int) -> None:
    raw = message(to)
    sent: list[int] = []
    start = time.monotonic()
    await asyncio.gather(
        *(client(port, to, raw, start + seconds, sent) for _ in range(connections))
    )
    print(f"{len(sent)} {time.monotonic() - start:.3f} {len(raw)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
