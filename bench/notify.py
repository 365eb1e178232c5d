"""Change notifications under load: creates paced at a fixed rate into one subscribed mailbox,
and the latency from each create's request to its notification's arrival at a webhook receiver
(a process of its own). Run by ``python -m bench --only-notify``.

    python -m bench.notify receive PORT OUT   # the receiver: one line "id arrival" per change
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

# ------------------------------------------------------------------ the receiver process


async def receive(port: int, out: Path) -> None:
    log = out.open("a", buffering=1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                now = time.time()
                token = parse_qs(urlsplit(target).query).get("validationToken")
                if token is not None:
                    answer = token[0].encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                        + answer
                    )
                else:
                    for n in json.loads(body)["value"]:
                        log.write(f"{n['resourceData']['id']} {now} {n['sequenceNumber']}\n")
                    writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# ------------------------------------------------------------------ the paced load


async def create_paced(base: str, token: str, rate: float, seconds: float,
                       connections: int = 32) -> dict[str, float]:  # fmt: skip
    """Creates at ``rate`` per second for ``seconds`` over keep-alive connections; each
    created id with the time its request was sent."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    total = int(rate * seconds)
    body = json.dumps({"subject": "notify bench", "body": {"content": "x" * 200}}).encode()
    request = (
        f"POST /v1.0/me/messages HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    sent: dict[str, float] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    start = time.monotonic() + 0.2
    wall = time.time() - time.monotonic()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not queue.empty():
                i = queue.get_nowait()
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                t = time.monotonic()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                answer = await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 201"):
                    sent[json.loads(answer)["id"]] = wall + t
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return sent


def latencies(sent: dict[str, float], out: Path) -> tuple[list[float], int, int]:
    """Milliseconds from request to arrival (first arrival of each id); how many never
    arrived; how many sequence numbers are missing."""
    first: dict[str, float] = {}
    seqs: set[int] = set()
    for line in out.read_text().splitlines():
        mid, at, seq = line.split()
        seqs.add(int(seq))
        if mid in sent and mid not in first:
            first[mid] = float(at)
    lat = sorted(max(0.0, (first[m] - sent[m]) * 1000) for m in first)
    gaps = len(set(range(1, max(seqs, default=0) + 1)) - seqs)
    return lat, len(sent) - len(first), gaps


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p))]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "receive":
        asyncio.run(receive(int(sys.argv[2]), Path(sys.argv[3])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
