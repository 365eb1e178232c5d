"""The folders port on either engine: the folder tree and its item counts."""

from __future__ import annotations

from typing import Any

import msgspec

from graphpost.domain.folders import ROOT
from graphpost.domain.times import now
from graphpost.errors import MoveCopyError
from graphpost.ports.changes import CREATED, DELETED, FOLDER, MESSAGE, UPDATED
from graphpost.ports.folders import Folder, FolderQuery, SearchSpec
from graphpost.store.blobs import release_where
from graphpost.store.changes import Pending, record
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.filters import compile_folder_filter, compile_folder_order

_FOLDER_COLS = (
    "id, mailbox_id, parent_id, display_name, well_known, is_hidden, "
    "total_count, unread_count, child_count"
)
# a folder with its search definition, if it is a search folder (folders f)
_WITH_SEARCH = (
    "f.id, f.mailbox_id, f.parent_id, f.display_name, f.well_known, f.is_hidden, "
    "f.total_count, f.unread_count, f.child_count, "
    "s.filter_query, s.source_ids, s.include_nested"
)
_FROM = "folders f LEFT JOIN mail_search_folders s ON s.folder_id = f.id"
_ids = msgspec.json.Decoder(list[str]).decode


# a folder and every folder below it (both engines have recursive CTEs)
_SUBTREE = (
    "WITH RECURSIVE t(id) AS (SELECT id FROM folders WHERE id = ? UNION ALL "
    "SELECT f.id FROM folders f JOIN t ON f.parent_id = t.id) SELECT id FROM t"
)


def _folder(row: Row) -> Folder:
    search = None
    if len(row) > 9 and row[9] is not None:
        search = SearchSpec(str(row[9]), tuple(_ids(str(row[10]))), bool(row[11]))
    return Folder(
        row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8], search
    )


async def _write_search(tx: Tx, folder_id: str, search: SearchSpec) -> None:
    await tx.execute("DELETE FROM mail_search_folders WHERE folder_id = ?", (folder_id,))
    await tx.execute(
        "INSERT INTO mail_search_folders (folder_id, filter_query, source_ids, include_nested) "
        "VALUES (?, ?, ?, ?)",
        (folder_id, search.filter_query, msgspec.json.encode(list(search.source_ids)).decode(),
         search.include_nested),
    )  # fmt: skip


class SqlFolders:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def list_folders(
        self, mailbox_id: str, parent_id: str, *, include_hidden: bool, top: int, skip: int
    ) -> tuple[list[Folder], int]:
        hidden = "" if include_hidden else " AND is_hidden = ?"
        params: tuple[Any, ...] = (mailbox_id, parent_id) if include_hidden else (
            mailbox_id, parent_id, False)  # fmt: skip

        async def op(tx: Tx) -> tuple[list[Folder], int]:
            where = f"WHERE mailbox_id = ? AND parent_id = ?{hidden}"
            rows = await tx.fetchall(
                f"SELECT {_FOLDER_COLS} FROM folders {where} "
                "ORDER BY name_lower, id LIMIT ? OFFSET ?",
                (*params, top, skip),
            )
            total = await tx.fetchone(f"SELECT count(*) FROM folders {where}", params)
            return [_folder(r) for r in rows], int(total[0]) if total else 0

        return await self.engine.read(op)

    async def _one(self, where: str, params: tuple[str, str]) -> Folder | None:
        async def op(tx: Tx) -> Folder | None:
            row = await tx.fetchone(f"SELECT {_WITH_SEARCH} FROM {_FROM} WHERE {where}", params)
            return _folder(row) if row else None

        return await self.engine.read(op)

    async def all_folders(self, mailbox_id: str) -> list[Folder]:
        async def op(tx: Tx) -> list[Folder]:
            rows = await tx.fetchall(
                f"SELECT {_FOLDER_COLS} FROM folders WHERE mailbox_id = ? ORDER BY id",
                (mailbox_id,),
            )
            return [_folder(r) for r in rows]

        return await self.engine.read(op)

    async def get_folder(self, mailbox_id: str, folder_id: str) -> Folder | None:
        return await self._one("f.id = ? AND f.mailbox_id = ?", (folder_id, mailbox_id))

    async def well_known_folder(self, mailbox_id: str, name: str) -> Folder | None:
        return await self._one("f.mailbox_id = ? AND f.well_known = ?", (mailbox_id, name))

    async def query_folders(
        self, mailbox_id: str, parent_id: str, query: FolderQuery
    ) -> tuple[list[Folder], int | None, bool]:
        params: list[Any] = [mailbox_id, parent_id]
        where = "f.mailbox_id = ? AND f.parent_id = ?"
        if not query.include_hidden:
            where += " AND f.is_hidden = ?"
            params.append(False)
        if query.filter is not None:
            where += " AND " + compile_folder_filter(query.filter, params)
        order = compile_folder_order(query.orderby)
        sql = f"SELECT {_WITH_SEARCH} FROM {_FROM} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"

        async def op(tx: Tx) -> tuple[list[Folder], int | None, bool]:
            rows = await tx.fetchall(sql, (*params, query.top + 1, query.skip))
            count = None
            if query.count:
                got = await tx.fetchone(f"SELECT count(*) FROM folders f WHERE {where}", params)
                count = int(got[0]) if got else 0
            return [_folder(r) for r in rows[: query.top]], count, len(rows) > query.top

        return await self.engine.read(op)

    async def subtree(self, mailbox_id: str, folder_id: str) -> list[Folder]:
        async def op(tx: Tx) -> list[Folder]:
            found: list[Folder] = []
            level = [folder_id]
            seen: set[str] = set()
            # breadth first, one query per level: parents come before their children; as deep
            # as the tree is (the API does not bound a tree's depth), each folder once
            while level:
                marks = ", ".join("?" for _ in level)
                column = "f.id" if not found else "f.parent_id"
                rows = await tx.fetchall(
                    f"SELECT {_WITH_SEARCH} FROM {_FROM} WHERE f.mailbox_id = ? "
                    f"AND {column} IN ({marks}) ORDER BY f.name_lower, f.id",
                    (mailbox_id, *level),
                )
                batch = [f for f in map(_folder, rows) if f.id not in seen]
                seen.update(f.id for f in batch)
                found += batch
                level = [f.id for f in batch]
            return found

        return await self.engine.read(op)

    async def update_search_folder(
        self, mailbox_id: str, folder_id: str, name: str, search: SearchSpec
    ) -> None:
        async def op(tx: Tx) -> None:
            row = await tx.fetchone(
                "SELECT parent_id FROM folders WHERE id = ? AND mailbox_id = ?",
                (folder_id, mailbox_id),
            )
            if row is None:
                return
            await tx.execute(
                "UPDATE folders SET display_name = ?, name_lower = ? WHERE id = ?",
                (name, name.lower(), folder_id),
            )
            await _write_search(tx, folder_id, search)
            await record(tx, mailbox_id, [Pending(FOLDER, folder_id, row[0] or "", None, UPDATED)])

        await self.engine.write(op)

    async def purge_messages(self, mailbox_id: str, folder_id: str, limit: int) -> int:
        async def op(tx: Tx) -> int:
            rows = await tx.fetchall(
                "SELECT seq, is_read, id FROM messages WHERE folder_id = ? AND mailbox_id = ? "
                f"ORDER BY seq LIMIT ?{tx.for_update}",
                (folder_id, mailbox_id, limit),
            )
            if not rows:
                return 0
            seqs = [int(r[0]) for r in rows]
            marks = ", ".join("?" for _ in seqs)
            await release_where(tx, f"m.seq IN ({marks})", tuple(seqs))
            await tx.execute(f"DELETE FROM messages WHERE seq IN ({marks})", tuple(seqs))
            unread = sum(1 for r in rows if not r[1])
            await tx.execute(
                "UPDATE folders SET total_count = total_count - ?, "
                "unread_count = unread_count - ? WHERE id = ?",
                (len(seqs), unread, folder_id),
            )
            await record(
                tx,
                mailbox_id,
                [Pending(MESSAGE, str(r[2]), folder_id, None, DELETED) for r in rows],
            )
            return len(seqs)

        return await self.engine.write(op)

    async def create_folder(self, folder: Folder) -> Folder:
        async def op(tx: Tx) -> Folder:
            await insert_folder(tx, folder)
            if folder.search is not None:
                await _write_search(tx, folder.id, folder.search)
            await record(
                tx,
                folder.mailbox_id,
                [Pending(FOLDER, folder.id, folder.parent_id or "", None, CREATED)],
            )
            return folder

        return await self.engine.write(op)

    async def rename_folder(self, mailbox_id: str, folder_id: str, name: str) -> None:
        async def op(tx: Tx) -> None:
            row = await tx.fetchone(
                "UPDATE folders SET display_name = ?, name_lower = ? "
                "WHERE id = ? AND mailbox_id = ? RETURNING parent_id",
                (name, name.lower(), folder_id, mailbox_id),
            )
            if row is not None:
                await record(
                    tx, mailbox_id, [Pending(FOLDER, folder_id, row[0] or "", None, UPDATED)]
                )

        await self.engine.write(op)

    async def move_folder(self, mailbox_id: str, folder_id: str, parent_id: str, name: str) -> None:
        async def op(tx: Tx) -> None:
            # moves in one mailbox take turns (its root's row lock on PostgreSQL; SQLite's one
            # writer already serialises), so two moves at once cannot make a loop of folders
            await tx.fetchone(
                f"SELECT id FROM folders WHERE mailbox_id = ? AND well_known = ?{tx.for_update}",
                (mailbox_id, ROOT),
            )
            row = await tx.fetchone(
                "SELECT parent_id FROM folders WHERE id = ? AND mailbox_id = ?",
                (folder_id, mailbox_id),
            )
            if row is None:
                return
            # up from the destination to the root, however deep (a bounded walk let a deeper
            # destination make a loop of folders cut off from the root)
            current: str | None = parent_id
            seen: set[str] = set()
            while current is not None and current not in seen:
                seen.add(current)
                if current == folder_id:
                    raise MoveCopyError(
                        "The move or copy operation failed: a folder cannot be moved into "
                        "itself or one of its subfolders."
                    )
                up = await tx.fetchone("SELECT parent_id FROM folders WHERE id = ?", (current,))
                current = up[0] if up else None
            await tx.execute(
                "UPDATE folders SET parent_id = ?, display_name = ?, name_lower = ? WHERE id = ?",
                (parent_id, name, name.lower(), folder_id),
            )
            await tx.execute(
                "UPDATE folders SET child_count = child_count - 1 WHERE id = ?", (row[0],)
            )
            await tx.execute(
                "UPDATE folders SET child_count = child_count + 1 WHERE id = ?", (parent_id,)
            )
            moved_from = None if row[0] == parent_id else (row[0] or "")
            await record(
                tx, mailbox_id, [Pending(FOLDER, folder_id, parent_id, moved_from, UPDATED)]
            )

        await self.engine.write(op)

    async def delete_folder(self, mailbox_id: str, folder_id: str) -> None:
        async def op(tx: Tx) -> None:
            row = await tx.fetchone(
                "SELECT parent_id FROM folders WHERE id = ? AND mailbox_id = ?",
                (folder_id, mailbox_id),
            )
            if row is None:
                return
            # what goes, recorded as deleted: its messages, then its folders, deepest last
            gone = [
                Pending(MESSAGE, str(m[0]), str(m[1]), None, DELETED)
                for m in await tx.fetchall(
                    f"SELECT id, folder_id FROM messages WHERE folder_id IN ({_SUBTREE}) "
                    "ORDER BY seq",
                    (folder_id,),
                )
            ]
            gone.extend(
                Pending(FOLDER, str(f[0]), str(f[1] or ""), None, DELETED)
                for f in await tx.fetchall(
                    f"SELECT id, parent_id FROM folders WHERE id IN ({_SUBTREE})", (folder_id,)
                )
            )
            # the folder and everything under it: messages and subfolders go by cascade
            # (their attachments' blobs are released first; the sweep removes them)
            await release_where(tx, f"m.folder_id IN ({_SUBTREE})", (folder_id,))
            await tx.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
            await tx.execute(
                "UPDATE folders SET child_count = child_count - 1 WHERE id = ?", (row[0],)
            )
            await record(tx, mailbox_id, gone)

        await self.engine.write(op)

    async def is_within(self, mailbox_id: str, folder_id: str, ancestor_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            # up to the root, however deep: a bounded walk let a folder be copied into its own
            # subtree below that depth
            current: str | None = folder_id
            seen: set[str] = set()
            while current is not None and current not in seen:
                seen.add(current)
                if current == ancestor_id:
                    return True
                row = await tx.fetchone(
                    "SELECT parent_id FROM folders WHERE id = ? AND mailbox_id = ?",
                    (current, mailbox_id),
                )
                current = row[0] if row else None
            return False

        return await self.engine.read(op)


async def insert_folder(tx: Tx, f: Folder) -> None:
    await tx.execute(
        "INSERT INTO folders (id, mailbox_id, parent_id, display_name, name_lower, well_known, "
        "is_hidden, total_count, unread_count, child_count, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?)",
        (
            f.id, f.mailbox_id, f.parent_id, f.display_name, f.display_name.lower(),
            f.well_known, f.is_hidden, now(),
        ),
    )  # fmt: skip
    if f.parent_id is not None:
        await tx.execute(
            "UPDATE folders SET child_count = child_count + 1 WHERE id = ?", (f.parent_id,)
        )
