"""Attachment bytes, content-addressed, and the upload sessions that stage them.

A blob is named by the SHA-256 of its bytes. ``blobs`` holds one row per digest with the number
of attachments using it (``refs``), counted in the same transaction as the attachment rows; the
bytes live in ``blob_chunks`` (1 MiB rows under the blob's ``location``) or, when
``GRAPHPOST_BLOB_DIR`` is set, in a file named by the digest in that directory (written to a
temporary name, fsynced, renamed).

The one invariant: **a blob with refs > 0 has its bytes.**

* A reference is taken by an upsert (``INSERT … ON CONFLICT DO UPDATE SET refs = refs + 1
  RETURNING refs``) that locks the row; when the answer is 1 (a new row, or one at 0 that the
  sweep has not removed yet) the same transaction makes sure the bytes are there, and writes
  them if not.
* Releasing only counts down; a blob at 0 keeps its row. ``sweep`` removes it later, in a
  transaction of its own that locks the row, checks that it is still at 0, deletes the row and
  then the bytes (the chunks in the same transaction; a file while the lock is held). An insert
  that wants the same digest meanwhile waits on the lock (PostgreSQL) or runs before or after
  (SQLite's one writer), and then finds no row: it writes the bytes again. Should the sweep's
  transaction roll back after the file was unlinked, the row stays at 0 without bytes, which
  the next reference repairs the same way.

Upload sessions stage their parts apart (chunk rows under ``u:{session}``, or part files in
``{blob dir}/uploads``), each part written in the transaction that moves the session's offset
on, guarded by the offset it expected: a part that does not arrive whole is never written, and
of two requests for the same range one wins.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

import msgspec

from graphpost.domain.message import Attachment, Message
from graphpost.domain.times import now, now_ms
from graphpost.errors import BlobMissingError, StoreError
from graphpost.ports.blobs import FINISHED, StagedBlob, UploadSession
from graphpost.store.engine import Engine, Row, Tx

_decode_message = msgspec.json.Decoder(Message).decode

CHUNK = 1024 * 1024  # the size of a blob_chunks row and of a read


_UPSERT = (
    "INSERT INTO blobs (digest, size, refs, location, created_at) VALUES (?, ?, 1, ?, ?) "
    "ON CONFLICT (digest) DO UPDATE SET refs = blobs.refs + 1 RETURNING refs, location"
)
SESSION_COLS = (
    "id, mailbox_id, message_id, app_id, name, content_type, size, is_inline, content_id, "
    "received, parts, expires_at"
)


def session_of(row: Row) -> UploadSession:
    return UploadSession(
        id=str(row[0]),
        mailbox_id=str(row[1]),
        message_id=str(row[2]),
        app_id=str(row[3]),
        name=str(row[4]),
        content_type=str(row[5]),
        size=int(row[6]),
        is_inline=bool(row[7]),
        content_id=None if row[8] is None else str(row[8]),
        received=int(row[9]),
        parts=int(row[10]),
        expires_at_ms=int(row[11]),
    )


class Content(Protocol):
    """Where the bytes of blobs live (the database or a directory)."""

    async def holds(self, tx: Tx, digest: str, location: str | None) -> bool: ...

    async def write(self, tx: Tx, digest: str, data: bytes) -> str | None:
        """Store ``data`` (the bytes of ``digest``); its location."""
        ...

    async def remove(self, tx: Tx, digest: str, location: str | None) -> None: ...

    def read(self, engine: Engine, digest: str, location: str | None) -> AsyncIterator[bytes]: ...

    # upload staging
    def prepare_part(self, session_id: str, part: int, data: bytes) -> object:
        """Work done before the part's transaction (a file written); its handle."""
        ...

    async def stage_part(
        self, tx: Tx, session_id: str, part: int, data: bytes, prepared: object
    ) -> int:
        """Inside the transaction that moves the session on: the part kept; the new count of
        parts."""
        ...

    def discard_part(self, prepared: object) -> None: ...

    def staged(self, engine: Engine, session: UploadSession) -> AsyncIterator[bytes]: ...

    async def seal(self, engine: Engine, session: UploadSession) -> tuple[str, int]:
        """The SHA-256 and size of what the session staged (for a directory also one whole
        file, ready to be renamed)."""
        ...

    async def adopt(self, tx: Tx, session: UploadSession, digest: str) -> str | None:
        """Inside the finishing transaction, for a new blob: the staged bytes become the blob's;
        its location."""
        ...

    async def drop_staged(self, tx: Tx | None, session: UploadSession) -> None: ...

    # bytes staged in one go (a large message's MIME)
    async def stage_stream(
        self, engine: Engine, key: str, chunks: AsyncIterator[bytes]
    ) -> tuple[str, int]:
        """Write ``chunks`` under ``key``; their SHA-256 and size."""
        ...

    async def adopt_key(self, tx: Tx, key: str, digest: str) -> str | None: ...

    async def drop_key(self, engine: Engine, key: str) -> None:
        """Drop bytes staged under ``key`` that no transaction adopted."""
        ...

    def settle_key(self, key: str) -> None:
        """After the transaction that adopted (or not) ``key``: what is left of it goes."""
        ...


async def _in_pieces(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks`` regrouped into pieces of exactly ``CHUNK`` bytes (the last one shorter)."""
    buffer = bytearray()
    async for data in chunks:
        buffer += data
        while len(buffer) >= CHUNK:
            yield bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
    if buffer:
        yield bytes(buffer)


async def _checked(digest: str, blocks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``blocks`` as they are, the last one held back until all of them hash to ``digest``:
    bytes changed or cut in storage end the read with an error before the last block, so a
    reader (a download, a relay's DATA) never takes them for the blob."""
    sha, held = hashlib.sha256(), None
    async for block in blocks:
        sha.update(block)
        if held is not None:
            yield held
        held = block
    if sha.hexdigest() != digest:
        raise StoreError(f"blob {digest} is damaged: its stored bytes do not match their SHA-256")
    if held is not None:
        yield held


async def _chunks_exist(tx: Tx, location: str) -> bool:
    return (
        await tx.fetchone("SELECT 1 FROM blob_chunks WHERE location = ? AND n = 0", (location,))
        is not None
    )


async def _read_chunks(engine: Engine, location: str, first: int = 0) -> AsyncIterator[bytes]:
    n = first
    while True:

        async def op(tx: Tx, n: int = n) -> bytes | None:
            row = await tx.fetchone(
                "SELECT data FROM blob_chunks WHERE location = ? AND n = ?", (location, n)
            )
            return bytes(row[0]) if row is not None else None

        data = await engine.read(op)
        if data is None:
            return
        if data:
            yield data
        n += 1


async def _write_chunks(tx: Tx, location: str, data: bytes, first: int = 0) -> int:
    """``data`` as 1 MiB rows from number ``first`` (one empty row for empty bytes); the
    number of rows written."""
    rows = [
        (location, first + i, data[start : start + CHUNK])
        for i, start in enumerate(range(0, max(len(data), 1), CHUNK))
    ]
    await tx.executemany("INSERT INTO blob_chunks (location, n, data) VALUES (?, ?, ?)", rows)
    return len(rows)


class DbContent:
    """The bytes in ``blob_chunks`` (the default)."""

    async def holds(self, tx: Tx, digest: str, location: str | None) -> bool:
        return location is not None and await _chunks_exist(tx, location)

    async def write(self, tx: Tx, digest: str, data: bytes) -> str | None:
        await tx.execute("DELETE FROM blob_chunks WHERE location = ?", (digest,))
        await _write_chunks(tx, digest, data)
        return digest

    async def remove(self, tx: Tx, digest: str, location: str | None) -> None:
        if location is not None:
            await tx.execute("DELETE FROM blob_chunks WHERE location = ?", (location,))

    def read(self, engine: Engine, digest: str, location: str | None) -> AsyncIterator[bytes]:
        if location is None:
            raise StoreError(f"blob {digest} is kept in a blob directory, and none is set")
        return _checked(digest, _read_chunks(engine, location))

    def prepare_part(self, session_id: str, part: int, data: bytes) -> object:
        return None

    async def stage_part(
        self, tx: Tx, session_id: str, part: int, data: bytes, prepared: object
    ) -> int:
        return part + await _write_chunks(tx, f"u:{session_id}", data, part)

    def discard_part(self, prepared: object) -> None:
        return None

    def staged(self, engine: Engine, session: UploadSession) -> AsyncIterator[bytes]:
        return _read_chunks(engine, f"u:{session.id}")

    async def seal(self, engine: Engine, session: UploadSession) -> tuple[str, int]:
        sha, size = hashlib.sha256(), 0
        async for data in self.staged(engine, session):
            sha.update(data)
            size += len(data)
        return sha.hexdigest(), size

    async def adopt(self, tx: Tx, session: UploadSession, digest: str) -> str | None:
        return f"u:{session.id}"  # no copy: the blob's rows are the staged ones

    async def drop_staged(self, tx: Tx | None, session: UploadSession) -> None:
        if tx is not None:
            await tx.execute("DELETE FROM blob_chunks WHERE location = ?", (f"u:{session.id}",))

    async def stage_stream(
        self, engine: Engine, key: str, chunks: AsyncIterator[bytes]
    ) -> tuple[str, int]:
        sha, size, n = hashlib.sha256(), 0, 0
        async for piece in _in_pieces(chunks):
            sha.update(piece)
            size += len(piece)

            async def op(tx: Tx, piece: bytes = piece, n: int = n) -> None:
                await tx.execute(
                    "INSERT INTO blob_chunks (location, n, data) VALUES (?, ?, ?)",
                    (f"u:{key}", n, piece),
                )

            await engine.write(op)
            n += 1
        if n == 0:

            async def empty(tx: Tx) -> None:
                await _write_chunks(tx, f"u:{key}", b"")

            await engine.write(empty)
        return sha.hexdigest(), size

    async def adopt_key(self, tx: Tx, key: str, digest: str) -> str | None:
        return f"u:{key}"

    def settle_key(self, key: str) -> None:
        return None  # the transaction kept or deleted the rows

    async def drop_key(self, engine: Engine, key: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute("DELETE FROM blob_chunks WHERE location = ?", (f"u:{key}",))

        await engine.write(op)


class _Written:
    """What a ``_new_file`` received: its SHA-256 and size, counted as it is written."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)


@contextlib.contextmanager
def _new_file(path: Path) -> Iterator[_Written]:
    """A new file at ``path``, whole or not at all: written at a temporary name beside it,
    fsynced and renamed into place when the block ends, removed when it fails."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as out:
            written = _Written(out)
            yield written
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _write_file(
    path: Path, parts: list[bytes] | None = None, source: list[Path] | None = None
) -> tuple[str, int]:
    """A new file at ``path`` (see ``_new_file``); its SHA-256 and size. The bytes are
    ``parts``, or the concatenation of the files ``source`` (read 1 MiB at a time)."""
    with _new_file(path) as out:
        for data in parts or []:
            out.write(data)
        for src in source or []:
            with open(src, "rb") as inp:
                while block := inp.read(CHUNK):
                    out.write(block)
    return out.sha.hexdigest(), out.size


@contextlib.contextmanager
def _disk() -> Iterator[None]:
    """The blob directory's OS errors (a full or read-only disk, a path in the way) as a
    ``StoreError``: the client gets a 503 and nothing is half-written, never a 500."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"The attachment storage failed: {exc.strerror or exc}.") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirContent:
    """The bytes as files named by their digest in a directory (``GRAPHPOST_BLOB_DIR``): two
    levels of fan-out (``ab/abcdef…``); upload parts in ``uploads/``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = DbContent()  # blobs written before the directory was set

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def _part(self, session_id: str, part: int) -> Path:
        return self.uploads / f"{session_id}.{part}"

    def _whole(self, session_id: str) -> Path:
        return self.uploads / f"{session_id}.whole"

    async def holds(self, tx: Tx, digest: str, location: str | None) -> bool:
        if location is not None:
            return await self._db.holds(tx, digest, location)
        return self.path(digest).exists()

    async def write(self, tx: Tx, digest: str, data: bytes) -> str | None:
        path = self.path(digest)
        with _disk():
            path.parent.mkdir(exist_ok=True, mode=0o700)
            _write_file(path, [data])
            _fsync_dir(path.parent)
        return None

    async def remove(self, tx: Tx, digest: str, location: str | None) -> None:
        if location is not None:
            await self._db.remove(tx, digest, location)
            return
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def read(self, engine: Engine, digest: str, location: str | None) -> AsyncIterator[bytes]:
        if location is not None:
            return self._db.read(engine, digest, location)
        return _checked(digest, self._read_file(self.path(digest)))

    async def _read_file(self, path: Path) -> AsyncIterator[bytes]:
        """The file 1 MiB at a time, each read in a thread (off the loop)."""
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise StoreError(f"blob file {path.name} is missing") from None
        except OSError as exc:
            raise StoreError(f"The attachment storage failed: {exc.strerror or exc}.") from exc
        with handle, _disk():
            while block := await asyncio.to_thread(handle.read, CHUNK):
                yield block

    def prepare_part(self, session_id: str, part: int, data: bytes) -> object:
        tmp = self.uploads / f".{session_id}.{part}.{uuid.uuid4().hex}"
        with _disk():
            _write_file(tmp, [data])
        return tmp

    async def stage_part(
        self, tx: Tx, session_id: str, part: int, data: bytes, prepared: object
    ) -> int:
        assert isinstance(prepared, Path)
        with _disk():
            try:
                os.replace(prepared, self._part(session_id, part))
            except FileNotFoundError:  # renamed by an earlier run of this transaction
                if not self._part(session_id, part).exists():
                    raise
        return part + 1

    def discard_part(self, prepared: object) -> None:
        if isinstance(prepared, Path):
            with contextlib.suppress(OSError):
                prepared.unlink()

    def staged(self, engine: Engine, session: UploadSession) -> AsyncIterator[bytes]:
        return self._read_parts(session)

    async def _read_parts(self, session: UploadSession) -> AsyncIterator[bytes]:
        for part in range(session.parts):
            async for block in self._read_file(self._part(session.id, part)):
                yield block

    async def seal(self, engine: Engine, session: UploadSession) -> tuple[str, int]:
        sources = [self._part(session.id, part) for part in range(session.parts)]
        with _disk():
            return _write_file(self._whole(session.id), source=sources)

    async def adopt(self, tx: Tx, session: UploadSession, digest: str) -> str | None:
        return await self.adopt_key(tx, session.id, digest)

    async def stage_stream(
        self, engine: Engine, key: str, chunks: AsyncIterator[bytes]
    ) -> tuple[str, int]:
        with _disk(), _new_file(self._whole(key)) as out:
            async for piece in _in_pieces(chunks):
                out.write(piece)
        return out.sha.hexdigest(), out.size

    async def adopt_key(self, tx: Tx, key: str, digest: str) -> str | None:
        path = self.path(digest)
        with _disk():
            path.parent.mkdir(exist_ok=True, mode=0o700)
            try:
                os.replace(self._whole(key), path)
            except FileNotFoundError:
                # renamed by an earlier run of this transaction (SQLite runs a batch's
                # operations once more, alone, when a neighbour failed)
                if not path.exists():
                    raise
            _fsync_dir(path.parent)
        return None

    async def drop_key(self, engine: Engine, key: str) -> None:
        self.settle_key(key)

    def settle_key(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self._whole(key).unlink()

    async def drop_staged(self, tx: Tx | None, session: UploadSession) -> None:
        for part in range(session.parts + 1):
            with contextlib.suppress(OSError):
                self._part(session.id, part).unlink()
        with contextlib.suppress(OSError):
            self._whole(session.id).unlink()


def content_store(blob_dir: Path | None) -> Content:
    return DirContent(blob_dir) if blob_dir is not None else DbContent()


# ---------------------------------------------------------------- references (in a caller's tx)


async def reference_bytes(
    tx: Tx, content: Content, data: bytes, *, digest: str | None = None
) -> str:
    """One more reference to the blob of ``data`` (whose SHA-256 ``digest`` is, when the
    caller has it), writing its bytes if they are not there; its digest."""
    digest = digest or hashlib.sha256(data).hexdigest()
    location = digest if isinstance(content, DbContent) else None
    row = await tx.fetchone(_UPSERT, (digest, len(data), location, now()))
    assert row is not None
    if int(row[0]) == 1 and not await content.holds(tx, digest, row[1]):
        new_location = await content.write(tx, digest, data)
        await tx.execute("UPDATE blobs SET location = ? WHERE digest = ?", (new_location, digest))
    return digest


async def reference_digest(tx: Tx, digest: str) -> None:
    """One more reference to a blob that has one already (its bytes are there)."""
    if not await tx.execute(
        "UPDATE blobs SET refs = refs + 1 WHERE digest = ? AND refs > 0", (digest,)
    ):
        raise BlobMissingError(f"blob {digest} is no longer stored")


async def adopt_staged(tx: Tx, content: Content, staged: StagedBlob) -> None:
    """One reference to the blob of ``staged``: its staged bytes become the blob's when the
    blob is new (or lost its bytes), else they are dropped after the transaction."""
    row = await tx.fetchone(_UPSERT, (staged.digest, staged.size, None, now()))
    assert row is not None
    if int(row[0]) == 1 and not await content.holds(tx, staged.digest, row[1]):
        location = await content.adopt_key(tx, staged.key, staged.digest)
        await tx.execute(
            "UPDATE blobs SET location = ? WHERE digest = ?", (location, staged.digest)
        )
    elif isinstance(content, DbContent):
        await tx.execute("DELETE FROM blob_chunks WHERE location = ?", (f"u:{staged.key}",))


async def release(tx: Tx, digests: list[str]) -> None:
    """One reference fewer to each of ``digests`` (a digest as often as it is named); in
    sorted order, so that two transactions never wait on each other's rows."""
    await tx.executemany(
        "UPDATE blobs SET refs = refs - 1 WHERE digest = ?", [(d,) for d in sorted(digests)]
    )


async def release_where(tx: Tx, condition: str, params: tuple[object, ...]) -> None:
    """Release the blobs of the attachments of the messages matching ``condition`` (SQL over
    ``messages``), before those messages are deleted."""
    rows = await tx.fetchall(
        "SELECT a.blob_digest FROM attachments a JOIN messages m ON m.seq = a.message_seq "
        f"WHERE {condition}",
        params,
    )
    await release(tx, [str(r[0]) for r in rows])


# ---------------------------------------------------------------- the port


class SqlBlobs:
    """The blob port (``ports.blobs.BlobStore``): upload sessions and blob bytes, on either
    engine, with the bytes in the database or a directory."""

    def __init__(self, engine: Engine, content: Content | None = None) -> None:
        self.engine = engine
        self.content = content or DbContent()

    # ---- sessions

    async def create_session(self, session: UploadSession, token_hash: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                f"INSERT INTO upload_sessions ({SESSION_COLS}, token_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.id, session.mailbox_id, session.message_id, session.app_id,
                    session.name, session.content_type, session.size, session.is_inline,
                    session.content_id, 0, 0, session.expires_at_ms, token_hash, now_ms(),
                ),
            )  # fmt: skip

        await self.engine.write(op)

    async def session(self, session_id: str) -> tuple[UploadSession, str] | None:
        async def op(tx: Tx) -> tuple[UploadSession, str] | None:
            row = await tx.fetchone(
                f"SELECT {SESSION_COLS}, token_hash FROM upload_sessions WHERE id = ?",
                (session_id,),
            )
            return (session_of(row), str(row[12])) if row is not None else None

        return await self.engine.read(op)

    async def append(self, session: UploadSession, data: bytes) -> UploadSession | None:
        prepared = self.content.prepare_part(session.id, session.parts, data)

        async def op(tx: Tx) -> int | None:
            row = await tx.fetchone(
                f"SELECT received, parts FROM upload_sessions WHERE id = ?{tx.for_update}",
                (session.id,),
            )
            if row is None or int(row[0]) != session.received or int(row[1]) != session.parts:
                return None
            parts = await self.content.stage_part(tx, session.id, session.parts, data, prepared)
            await tx.execute(
                "UPDATE upload_sessions SET received = ?, parts = ? WHERE id = ?",
                (session.received + len(data), parts, session.id),
            )
            return parts

        try:
            parts = await self.engine.write(op)
        except BaseException:
            self.content.discard_part(prepared)
            raise
        if parts is None:
            self.content.discard_part(prepared)
            return None
        return UploadSession(
            session.id, session.mailbox_id, session.message_id, session.app_id, session.name,
            session.content_type, session.size, session.is_inline, session.content_id,
            session.received + len(data), parts, session.expires_at_ms,
        )  # fmt: skip

    async def finish(
        self,
        session: UploadSession,
        attachment: Attachment,
        update: Callable[[Message], Message],
    ) -> bool:
        """The staged bytes become ``attachment`` of the session's message, whose document
        ``update`` changes (hasAttachments, change key), all in one transaction with the blob's
        reference; the session ends. False: the message is gone (the session ends too)."""
        from graphpost.store.changes import Pending, record
        from graphpost.store.messages import (
            insert_attachment_rows,
            replace_message_op,
        )

        try:
            digest, size = await self.content.seal(self.engine, session)
            if size != session.size:
                raise StoreError(
                    f"upload session {session.id} staged {size} of {session.size} bytes"
                )
        except StoreError:
            # cancelled meanwhile (DELETE of its URL, its expiry): its parts went with it
            if await self.session(session.id) is None:
                return False
            raise

        async def op(tx: Tx) -> bool:
            # kept, finished, to answer its last part sent again (the expiry removes it)
            taken = await tx.execute(
                "UPDATE upload_sessions SET parts = ? WHERE id = ? AND received = ? AND parts >= 0",
                (FINISHED, session.id, session.received),
            )
            if not taken:
                return False
            row = await tx.fetchone(
                f"SELECT doc, seq, change_key FROM messages WHERE id = ? AND mailbox_id = ?"
                f"{tx.for_update}",
                (session.message_id, session.mailbox_id),
            )
            if row is None:
                await tx.execute("DELETE FROM upload_sessions WHERE id = ?", (session.id,))
                await self.content.drop_staged(tx, session)
                return False
            changed = update(_decode_message(bytes(row[0])))
            log: list[Pending] = []  # recorded last (store/changes.py)
            await replace_message_op(tx, session.mailbox_id, changed, str(row[2]), log=log)
            found = await tx.fetchone(_UPSERT, (digest, size, None, now()))
            assert found is not None
            if int(found[0]) == 1 and not await self.content.holds(tx, digest, found[1]):
                location = await self.content.adopt(tx, session, digest)
                await tx.execute(
                    "UPDATE blobs SET location = ? WHERE digest = ?", (location, digest)
                )
            else:
                await self.content.drop_staged(tx, session)
            await insert_attachment_rows(tx, int(row[1]), [(attachment, digest)])
            await record(tx, session.mailbox_id, log)
            return True

        done = await self.engine.write(op)
        await self.content.drop_staged(None, session)  # a directory's part files
        return done

    async def cancel(self, session_id: str) -> bool:
        found = await self.session(session_id)
        if found is None:
            return False
        session = found[0]

        async def op(tx: Tx) -> bool | None:
            """True: ended; None: ended, finished; False: none."""
            row = await tx.fetchone(
                f"SELECT parts FROM upload_sessions WHERE id = ?{tx.for_update}", (session_id,)
            )
            if row is None:
                return False
            await tx.execute("DELETE FROM upload_sessions WHERE id = ?", (session_id,))
            if int(row[0]) == FINISHED:
                return None  # its staged bytes are its attachment's now: never dropped
            await self.content.drop_staged(tx, session)
            return True

        done = await self.engine.write(op)
        if done:
            await self.content.drop_staged(None, session)
        return done is not False

    async def expire(self) -> int:
        """End the sessions past their expiry (their staged bytes with them)."""

        async def op(tx: Tx) -> list[str]:
            rows = await tx.fetchall(
                "SELECT id FROM upload_sessions WHERE expires_at < ? ORDER BY expires_at LIMIT 100",
                (now_ms(),),
            )
            return [str(r[0]) for r in rows]

        count = 0
        for session_id in await self.engine.read(op):
            count += await self.cancel(session_id)
        return count

    # ---- bytes

    async def stage(self, chunks: AsyncIterator[bytes]) -> StagedBlob:
        key = f"s{uuid.uuid4().hex}"
        try:
            digest, size = await self.content.stage_stream(self.engine, key, chunks)
        except BaseException:
            await self.content.drop_key(self.engine, key)
            raise
        return StagedBlob(key, digest, size)

    async def discard(self, staged: StagedBlob) -> None:
        await self.content.drop_key(self.engine, staged.key)

    async def read(self, digest: str) -> AsyncIterator[bytes]:
        async def op(tx: Tx) -> tuple[str | None] | None:
            row = await tx.fetchone("SELECT location FROM blobs WHERE digest = ?", (digest,))
            return (row[0],) if row is not None else None

        found = await self.engine.read(op)
        if found is None:
            raise StoreError(f"blob {digest} does not exist")
        async for block in self.content.read(self.engine, digest, found[0]):
            yield block

    async def blob(self, digest: str) -> tuple[int, int] | None:
        """(size, refs) of a blob, or None."""

        async def op(tx: Tx) -> tuple[int, int] | None:
            row = await tx.fetchone("SELECT size, refs FROM blobs WHERE digest = ?", (digest,))
            return (int(row[0]), int(row[1])) if row is not None else None

        return await self.engine.read(op)

    async def sweep(self, limit: int = 100) -> int:
        """Remove blobs no attachment uses (see the module's note on the race)."""

        async def candidates(tx: Tx) -> list[str]:
            rows = await tx.fetchall(
                "SELECT digest FROM blobs WHERE refs <= 0 ORDER BY digest LIMIT ?", (limit,)
            )
            return [str(r[0]) for r in rows]

        removed = 0
        for digest in await self.engine.read(candidates):

            async def op(tx: Tx, digest: str = digest) -> bool:
                row = await tx.fetchone(
                    f"SELECT refs, location FROM blobs WHERE digest = ?{tx.for_update}", (digest,)
                )
                if row is None or int(row[0]) > 0:
                    return False
                await tx.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
                await self.content.remove(tx, digest, row[1])
                return True

            removed += await self.engine.write(op)
        return removed
