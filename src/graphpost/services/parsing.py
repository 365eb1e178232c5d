"""Reading received MIME off the event loop.

The standard library's parser is pure Python and holds the GIL (about 40 ms per MB): a large
inbound message parsed on the loop stalls every HTTP request and SMTP session of the process,
and a thread would not help (it competes for the same GIL). Messages above ``offload_bytes``
are parsed in a small pool of worker processes; small ones, the common case, stay on the loop
where they cost less than the hop. ``offload_bytes`` 0 parses everything on the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from graphpost.domain import mime

OFFLOAD_BYTES = 256 * 1024


def default_workers() -> int:
    """One core less than the machine has (the loop keeps one), at least one, at most four."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class MimeParser:
    def __init__(self, *, offload_bytes: int = OFFLOAD_BYTES, workers: int | None = None) -> None:
        self.offload_bytes = offload_bytes
        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the workers start clean (no copy of the loop, the database threads or
            # sockets of this process)
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def parse(self, raw: bytes) -> mime.Parsed:
        if not self.offload_bytes or len(raw) < self.offload_bytes:
            return mime.parse(raw)
        pool = self._started()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, mime.parse, raw)
        except BrokenProcessPool:
            # a worker died (killed, out of memory): the next message gets a fresh pool
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
