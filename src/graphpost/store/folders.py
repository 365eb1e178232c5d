"""The folders port on either engine: the folder tree and its item counts."""

from __future__ import annotations

from typing import Any

from graphpost.domain.times import now
from graphpost.ports.changes import CREATED, DELETED, FOLDER, MESSAGE, UPDATED
from graphpost.ports.folders import Folder
from graphpost.store.blobs import release_where
from graphpost.store.changes import Pending, record
from graphpost.store.engine import Engine, Row, Tx

_FOLDER_COLS = (
    "id, mailbox_id, parent_id, display_name, well_known, is_hidden, "
    "total_count, unread_count, child_count"
)


# a folder and every folder below it (both engines have recursive CTEs)
_SUBTREE = (
    "WITH RECURSIVE t(id) AS (SELECT id FROM folders WHERE id = ? UNION ALL "
    "SELECT f.id FROM folders f JOIN t ON f.parent_id = t.id) SELECT id FROM t"
)


def _folder(row: Row) -> Folder:
    return Folder(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8])


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
            row = await tx.fetchone(f"SELECT {_FOLDER_COLS} FROM folders WHERE {where}", params)
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
        return await self._one("id = ? AND mailbox_id = ?", (folder_id, mailbox_id))

    async def well_known_folder(self, mailbox_id: str, name: str) -> Folder | None:
        return await self._one("mailbox_id = ? AND well_known = ?", (mailbox_id, name))

    async def create_folder(self, folder: Folder) -> Folder:
        async def op(tx: Tx) -> Folder:
            await insert_folder(tx, folder)
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
            row = await tx.fetchone(
                "SELECT parent_id FROM folders WHERE id = ? AND mailbox_id = ?",
                (folder_id, mailbox_id),
            )
            if row is None:
                return
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
            current: str | None = folder_id
            for _ in range(64):
                if current is None:
                    return False
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
