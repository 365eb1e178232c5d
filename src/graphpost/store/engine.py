"""The two engines behind one small contract: run an operation in a write transaction, or read.

Store operations are ``async def op(tx: Tx) -> T``, in SQL that both engines understand (``?``
placeholders, translated to ``$n`` for PostgreSQL); the few that PostgreSQL does better branch
on ``tx.dialect``.

* SQLite: one writer connection on the event loop with **group commit**: operations queued in
  the same loop turn run in one transaction and every caller is answered after the COMMIT.
  If one of them raises, the batch is rolled back and each operation runs once more in a
  transaction of its own, so that the failure stays its own. A SQLite operation never
  really suspends, so it is driven to completion synchronously: no thread hop per statement.
  Reads use a second connection on the loop (WAL lets it read while the writer writes); the
  reads a caller marks ``parallel`` (searches, lists, delta pages: most of their time is
  SQLite's own, which releases the GIL) run on a small pool of reader connections in threads,
  so they use another core while the loop serves other requests. Checkpoints run on one more
  connection in a thread, off the commit path.
* PostgreSQL: an asyncpg pool; a write is a transaction on one pooled connection; statements are
  prepared once per connection by asyncpg's statement cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg

from graphpost.errors import (
    AlreadyExistsError,
    InvalidInputError,
    ReferenceGoneError,
    StoreError,
)
from graphpost.store.urls import pg_url

T = TypeVar("T")
log = logging.getLogger(__name__)

Row = Sequence[Any]


class Tx(Protocol):
    """What a store operation may do. ``for_update`` is the row-lock suffix of the engine."""

    for_update: str
    dialect: str

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def insert_returning(self, sql: str, params: Sequence[Any]) -> int: ...


Op = Callable[[Tx], Coroutine[Any, Any, T]]
# what a queued write gets: its future, and its value or its error
_Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]


class Engine(Protocol):
    dialect: str

    async def write(self, op: Op[T], *, one_statement: bool = False) -> T:
        """Run ``op`` in a write transaction. ``one_statement``: the caller vouches that
        ``op`` issues a single statement, which is atomic on its own (PostgreSQL then skips
        BEGIN and COMMIT: two round trips)."""
        ...

    async def read(self, op: Op[T], *, parallel: bool = False) -> T:
        """Run ``op`` outside any write transaction; it sees every write committed before it
        was called. ``parallel``: a read that spends its time in the database (a search, a
        page of a list), which SQLite then runs on a reader thread, off the event loop."""
        ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------- SQLite


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (SQLite operations) to its end, synchronously."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SQLite store operation awaited something that suspends")


class SqliteTx:
    for_update = ""
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def _run(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise _unstorable(exc) from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._run(sql, params).rowcount

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise _integrity(exc) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"database error: {exc}") from exc
        except UnicodeEncodeError as exc:
            raise _unstorable(exc) from exc

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._run(sql, params).fetchall()

    async def insert_returning(self, sql: str, params: Sequence[Any]) -> int:
        return int(self._run(sql, params).lastrowid or 0)


def _unstorable(exc: Exception) -> InvalidInputError:
    """A value no engine can store (NUL for PostgreSQL, text that is not valid UTF-8): the
    caller's input, refused the same way on both engines, never a 503 to be retried."""
    return InvalidInputError(f"A value in this request cannot be stored: {exc}")


# a foreign key failed: what the write named was removed meanwhile (the services checked it
# was there first), so the answer is theirs, a 404, without the database's text
GONE = "The specified object was not found in the store."


def _integrity(exc: Exception) -> Exception:
    text = str(exc)
    if "UNIQUE" in text or "unique" in text:
        return AlreadyExistsError(text)
    if "FOREIGN KEY" in text:
        return ReferenceGoneError(GONE)
    return StoreError(text)


# WAL frames (pages) after which the writer finishes a checkpoint so the WAL can restart
_WAL_FRAMES = 4000


def _lower(value: str | bytes | int | float | None) -> str | bytes | int | float | None:
    return value.lower() if isinstance(value, str) else value


def make_private(path: Path) -> None:
    """The SQLite file readable by this user only: its directory 0700, the file created 0600
    (or tightened to 0600 if it exists). SQLite gives -wal and -shm the database's mode; any
    left by an older version are tightened too."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(name), 0o600)


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # SQLite's own lower() folds ASCII only; PostgreSQL's folds all of Unicode. Match it.
    conn.create_function("lower", 1, _lower, deterministic=True)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA cache_size=-32000")
    conn.execute(f"PRAGMA journal_size_limit={64 * 1024 * 1024}")
    return conn


class SqliteEngine:
    """One writer with group commit on the event loop; one reader on the loop and ``readers``
    in threads for parallel reads; checkpoints in a thread."""

    dialect = "sqlite"

    def __init__(
        self, path: Path, *, synchronous: str = "NORMAL", readers: int = 2, mmap_bytes: int = 0
    ) -> None:
        self.path = path
        make_private(path)
        self._writer = _connect(path, synchronous)
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._reader = _connect(path, synchronous)
        self._wtx = SqliteTx(self._writer)
        self._rtx = SqliteTx(self._reader)
        # as many connections as threads: a thread always finds one idle
        self._pooled = [_connect(path, synchronous) for _ in range(readers)]
        for conn in self._pooled if mmap_bytes else ():
            # pages read through a memory map rather than a read() each: a search touches
            # hundreds of pages all over the file (-25 % of its SQL's CPU, measured). The
            # pages stay the kernel's page cache, but the process's RSS counts every one
            # touched, per connection (a 600 MB file searched: RSS near 1 GB)
            conn.execute(f"PRAGMA mmap_size={mmap_bytes}")
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        for conn in self._pooled:
            self._idle.put(conn)
        self._threads = (
            ThreadPoolExecutor(readers, thread_name_prefix="sqlite-read") if readers else None
        )
        self._queue: list[tuple[Op[Any], asyncio.Future[Any]]] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop,
            args=(synchronous,),
            name="sqlite-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()

    async def write(self, op: Op[T], *, one_statement: bool = False) -> T:
        loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.append((op, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await fut

    async def read(self, op: Op[T], *, parallel: bool = False) -> T:
        if not parallel or self._threads is None:
            return _drive(op(self._rtx))
        # a write's caller is answered after its COMMIT, so a read asked for after that starts
        # its statements after it too, on whichever connection: WAL shows it every commit
        # made before the read transaction began
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, self._read_in_thread, op
        )

    def _read_in_thread(self, op: Op[T]) -> T:
        conn = self._idle.get()
        try:
            return _drive(op(SqliteTx(conn)))
        finally:
            self._idle.put(conn)

    def _flush(self) -> None:
        batch, self._queue, self._scheduled = self._queue, [], False
        outcomes = self._run_batch(batch)
        if isinstance(outcomes, Exception):
            # an operation failed and the batch was undone. Alone, its error is its own;
            # together, each operation runs once more in a transaction of its own, so that the
            # failure stays its own and its neighbours still commit
            failed = outcomes
            outcomes = (
                [(batch[0][1], None, failed)]
                if len(batch) == 1
                else [outcome for item in batch for outcome in self._run_alone(item)]
            )
        for fut, value, error in outcomes:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)

    def _run_batch(
        self, batch: list[tuple[Op[Any], asyncio.Future[Any]]]
    ) -> list[_Outcome] | Exception:
        """All of ``batch`` in one transaction: an outcome per operation, or (rolled back) the
        exception that an operation raised."""
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            error = StoreError(f"database unavailable: {exc}")
            return [(fut, None, error) for _, fut in batch]
        values: list[_Outcome] = []
        for op, fut in batch:
            try:
                values.append((fut, _drive(op(self._wtx)), None))
            except Exception as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                return exc
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            log.exception("group commit failed")
            return [(fut, None, StoreError(f"commit failed: {exc}")) for fut, _, _ in values]
        return values

    def _run_alone(self, item: tuple[Op[Any], asyncio.Future[Any]]) -> list[_Outcome]:
        """One operation in a transaction of its own: committed, or its own error."""
        outcomes = self._run_batch([item])
        return [(item[1], None, outcomes)] if isinstance(outcomes, Exception) else outcomes

    def _checkpoint_loop(self, synchronous: str) -> None:
        """Copy the WAL into the database in the background (PASSIVE: never blocks the writer).

        Under steady writes a background checkpoint never reaches the end of the WAL, and a WAL
        is only reused once a checkpoint has: so when most of it is copied, the writer is asked
        to finish the job between two batches (a few frames, no waiting on anyone).
        """
        conn = _connect(self.path, synchronous)
        try:
            while not self._stop.wait(0.2):
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    continue
                frames, copied = (row[1], row[2]) if row else (0, 0)
                loop = self._loop
                if loop is not None and frames >= _WAL_FRAMES and frames - copied <= 300:
                    with contextlib.suppress(RuntimeError):  # the loop is closing
                        loop.call_soon_threadsafe(self._finish_checkpoint)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def _finish_checkpoint(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def close(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._checkpointer.join, 5)
        if self._threads is not None:
            await asyncio.to_thread(self._threads.shutdown)
        for conn in self._pooled:
            conn.close()
        self._writer.close()
        self._reader.close()


# ---------------------------------------------------------------- PostgreSQL

_translated: dict[str, str] = {}


def to_numbered(sql: str) -> str:
    """``?`` placeholders to asyncpg's ``$1, $2, …`` (cached per statement text)."""
    done = _translated.get(sql)
    if done is None:
        parts = sql.split("?")
        out = [parts[0]]
        for n, part in enumerate(parts[1:], start=1):
            out.append(f"${n}")
            out.append(part)
        done = "".join(out)
        _translated[sql] = done
    return done


class PgTx:
    for_update = " FOR UPDATE"
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self._conn = conn  # a pooled asyncpg connection

    async def _call(self, method: str, sql: str, *args: Any) -> Any:
        try:
            return await getattr(self._conn, method)(to_numbered(sql), *args)
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExistsError(str(exc)) from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise ReferenceGoneError(GONE) from exc
        except asyncpg.DeadlockDetectedError as exc:
            raise _DeadlockError(f"database error: {exc}") from exc
        except (asyncpg.DataError, UnicodeEncodeError) as exc:  # class 22: the value itself
            raise _unstorable(exc) from exc
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StoreError(f"database error: {exc}") from exc

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        status = await self._call("execute", sql, *params)
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._call("executemany", sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = await self._call("fetchrow", sql, *params)
        return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return list(await self._call("fetch", sql, *params))

    async def insert_returning(self, sql: str, params: Sequence[Any]) -> int:
        return int(await self._call("fetchval", sql + " RETURNING seq", *params))


# connection-level failures (errors inside an operation are translated by PgTx)
_PG_DOWN = (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)


async def _keep_session(conn: Any) -> None:
    """graphpost never changes session state (no SET, LISTEN or session locks), so a
    connection goes back to the pool as it is: no reset query, one round trip less."""


class _DeadlockError(StoreError):
    """PostgreSQL broke a lock cycle by aborting this transaction: it is run again."""


# attempts of a write PostgreSQL aborted to break a deadlock (a write into a folder while the
# folder is deleted for good, at the same moment, could make one); the retry runs the op anew
_DEADLOCK_ATTEMPTS = 4


class PostgresEngine:
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, url: str, *, pool_size: int = 10) -> PostgresEngine:
        try:
            pool = await asyncpg.create_pool(
                pg_url(url),
                min_size=1,
                max_size=pool_size,
                statement_cache_size=512,
                reset=_keep_session,
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
        return cls(pool)

    async def write(self, op: Op[T], *, one_statement: bool = False) -> T:
        for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
            try:
                return await self._write_once(op, one_statement)
            except _DeadlockError:
                if attempt == _DEADLOCK_ATTEMPTS:
                    raise
                await asyncio.sleep(0.005 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_once(self, op: Op[T], one_statement: bool) -> T:
        try:
            async with self._pool.acquire() as conn:
                if one_statement:
                    return await op(PgTx(conn))
                async with conn.transaction():
                    return await op(PgTx(conn))
        except _PG_DOWN as exc:
            raise StoreError(f"PostgreSQL unavailable: {exc}") from exc

    async def read(self, op: Op[T], *, parallel: bool = False) -> T:
        # every read is on a pooled connection already, off the loop's CPU while it waits
        try:
            async with self._pool.acquire() as conn:
                return await op(PgTx(conn))
        except _PG_DOWN as exc:
            raise StoreError(f"PostgreSQL unavailable: {exc}") from exc

    async def close(self) -> None:
        await self._pool.close()


async def open_engine(
    *,
    database_url: str | None,
    sqlite_path: Path,
    synchronous: str = "NORMAL",
    pool_size: int = 10,
    sqlite_readers: int = 2,
    sqlite_reader_mmap_bytes: int = 0,
) -> Engine:
    if database_url:
        return await PostgresEngine.connect(database_url, pool_size=pool_size)
    return SqliteEngine(
        sqlite_path,
        synchronous=synchronous,
        readers=sqlite_readers,
        mmap_bytes=sqlite_reader_mmap_bytes,
    )


__all__ = ["Engine", "Op", "Row", "Tx", "make_private", "open_engine"]
