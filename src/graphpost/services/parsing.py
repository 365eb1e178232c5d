"""Reading received MIME off the event loop, with a time limit.

The standard library's parser is pure Python and holds the GIL (about 40 ms per MB; several
seconds per MB for a message of many small headers or parts), and some header shapes make it
quadratic: a Content-Type of 20,000 parameters took 10 s, 60 KB of unclosed quoted parameters
59 s (measured; ``mime.parse`` decodes the address and text headers itself, linearly, but the
structure headers still go through the standard library). Parsed
on the event loop, one such message from anyone on the internet would stop every HTTP request
and SMTP session of the process; a thread would not help (it competes for the same GIL). So
received mail is parsed in a small pool of worker processes, and a parse that takes longer
than ``timeout`` seconds is interrupted in its worker (a SIGALRM timer: the parser is Python
code, so the signal lands between two bytecodes) and the caller gets ``ParseTimeoutError``
(inbound SMTP answers 554, for good). Should a worker hang anyway, the caller stops waiting a
while later and the pool is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import FrameType

from graphpost.domain import mime

PARSE_TIMEOUT_SECONDS = 30.0  # a 35 MB message parses in about 1.3 s
# MIME this server wrote itself (local copies of a send, reports) has no hostile structure:
# parsed on the loop up to this size (about 10 ms), past it in a worker like any other
TRUSTED_INLINE_BYTES = 256 * 1024
IN_FLIGHT_PER_WORKER = 4  # enough queued to hide the hop's latency, few enough to wait on


class ParseTimeoutError(Exception):
    """A message whose parse did not finish in time (a pathological structure)."""


class _Expired(BaseException):
    """Raised by the timer inside the parser: a BaseException, so that the parser's own
    ``except Exception`` cannot swallow it."""


def parse_with_deadline(raw: bytes, seconds: float) -> mime.Parsed:
    """``mime.parse`` in a worker process, interrupted after ``seconds``."""

    def expired(signum: int, frame: FrameType | None) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            return mime.parse(raw)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Expired:  # also when the timer fired just as the parse ended
        raise ParseTimeoutError(
            f"the message could not be parsed within {seconds:g} seconds"
        ) from None
    finally:
        signal.signal(signal.SIGALRM, previous)


def default_workers() -> int:
    """One core less than the machine has (the loop keeps one), at least one, at most four."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class MimeParser:
    def __init__(
        self,
        *,
        offload_bytes: int = 0,
        workers: int | None = None,
        timeout: float = PARSE_TIMEOUT_SECONDS,
    ) -> None:
        self.offload_bytes = offload_bytes  # smaller messages are parsed on the loop
        self.workers = workers or default_workers()
        self.timeout = timeout
        self._pool: ProcessPoolExecutor | None = None
        self._slots = asyncio.Semaphore(self.workers * IN_FLIGHT_PER_WORKER)

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the workers start clean (no copy of the loop, the database threads or
            # sockets of this process)
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def parse(self, raw: bytes, *, trusted: bool = False) -> mime.Parsed:
        """``trusted``: MIME written by this server (``mime.build``, reports), whose headers
        and structure no client controls beyond validated values."""
        # an attached message (message/rfc822, e.g. a report's original) is a client's MIME
        # inside ours: its structure is parsed too, so it goes to a worker like received mail
        inline = trusted and len(raw) < TRUSTED_INLINE_BYTES and b"message/rfc822" not in raw
        if inline or len(raw) < self.offload_bytes:
            return mime.parse(raw)
        # a safety net only: the worker interrupts itself after `timeout` of parsing; a
        # message may first wait for the ones queued before it
        patience = self.timeout * (IN_FLIGHT_PER_WORKER + 1)
        async with self._slots:
            for attempt in (1, 2):
                pool = self._started()
                loop = asyncio.get_running_loop()
                future = loop.run_in_executor(pool, parse_with_deadline, raw, self.timeout)
                try:
                    return await asyncio.wait_for(future, patience)
                except TimeoutError:
                    self._discard(pool, kill=True)
                    raise ParseTimeoutError("the parser did not answer") from None
                except BrokenProcessPool:
                    # a worker died (killed, out of memory): once more on a fresh pool; a
                    # message that kills its worker twice is refused
                    self._discard(pool, kill=False)
                    if attempt == 2:
                        raise
        raise AssertionError("not reached")

    def _discard(self, pool: ProcessPoolExecutor, *, kill: bool) -> None:
        if self._pool is pool:
            self._pool = None
        if kill:  # the pool has no way to cancel a running task: end its processes
            processes = getattr(pool, "_processes", None) or {}
            for process in list(processes.values()):
                with contextlib.suppress(Exception):
                    process.kill()
        pool.shutdown(wait=False)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
