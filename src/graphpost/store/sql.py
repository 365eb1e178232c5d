"""The MailStore over either engine: every operation written once, in portable SQL."""

from __future__ import annotations

import time
from typing import Any

from graphpost.domain.query import MessageQuery
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.filters import compile_filter, compile_order
from graphpost.store.message_ops import delete_message_op, insert_message_op, replace_message_op
from graphpost.store.outbox import OutboxMixin
from graphpost.store.records import (
    AppRecord,
    AttachmentRow,
    FolderRecord,
    MessageRow,
    NewMessage,
    TenantRecord,
    UserRecord,
)

_USER_COLS = "id, tenant_id, display_name, mail, upn"
_FOLDER_COLS = (
    "id, mailbox_id, parent_id, display_name, well_known, is_hidden, "
    "total_count, unread_count, child_count"
)
_MSG_COLS = (
    "m.id, m.mailbox_id, m.folder_id, m.created_at, m.modified_at, m.received_at, m.sent_at, "
    "m.is_read, m.is_draft, m.has_attachments, m.importance, m.inference, m.flag_status, "
    "m.subject, m.body_preview, m.from_name, m.from_address, m.sender_name, m.sender_address, "
    "m.internet_message_id, m.conversation_id, m.change_key, m.doc, m.headers, m.seq"
)


def _user(row: Row) -> UserRecord:
    return UserRecord(row[0], row[1], row[2], row[3], row[4])


def _folder(row: Row) -> FolderRecord:
    return FolderRecord(
        row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8]
    )


def _message(row: Row) -> MessageRow:
    return MessageRow(
        id=row[0],
        mailbox_id=row[1],
        folder_id=row[2],
        created_at=row[3],
        modified_at=row[4],
        received_at=row[5],
        sent_at=row[6],
        is_read=bool(row[7]),
        is_draft=bool(row[8]),
        has_attachments=bool(row[9]),
        importance=row[10],
        inference=row[11],
        flag_status=row[12],
        subject=row[13],
        body_preview=row[14],
        from_name=row[15],
        from_address=row[16],
        sender_name=row[17],
        sender_address=row[18],
        internet_message_id=row[19],
        conversation_id=row[20],
        change_key=row[21],
        doc=bytes(row[22]),
        headers=bytes(row[23]) if row[23] is not None else None,
        seq=row[24],
    )


class SqlMailStore(OutboxMixin):
    """MailStore on SQLite or PostgreSQL (the difference lives in the Engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect

    # ------------------------------------------------------------ directory

    async def ensure_tenant(self, *, domain: str, display_name: str) -> TenantRecord:
        from graphpost.domain import ids

        async def op(tx: Tx) -> TenantRecord:
            row = await tx.fetchone(
                "SELECT id, domain, display_name FROM tenants WHERE domain = ?", (domain.lower(),)
            )
            if row is not None:
                return TenantRecord(row[0], row[1], row[2])
            tenant = TenantRecord(ids.guid(), domain.lower(), display_name)
            await tx.execute(
                "INSERT INTO tenants (id, domain, display_name, created_at) VALUES (?, ?, ?, ?)",
                (tenant.id, tenant.domain, tenant.display_name, int(time.time())),
            )
            return tenant

        return await self.engine.write(op)

    async def find_tenant(self, domain: str) -> TenantRecord | None:
        async def op(tx: Tx) -> TenantRecord | None:
            row = await tx.fetchone(
                "SELECT id, domain, display_name FROM tenants WHERE domain = ? OR id = ?",
                (domain.lower(), domain),
            )
            return TenantRecord(row[0], row[1], row[2]) if row else None

        return await self.engine.read(op)

    async def list_tenants(self) -> list[TenantRecord]:
        async def op(tx: Tx) -> list[TenantRecord]:
            rows = await tx.fetchall("SELECT id, domain, display_name FROM tenants ORDER BY domain")
            return [TenantRecord(r[0], r[1], r[2]) for r in rows]

        return await self.engine.read(op)

    async def add_user(self, user: UserRecord, folders: list[FolderRecord]) -> UserRecord:
        async def op(tx: Tx) -> UserRecord:
            await tx.execute(
                "INSERT INTO users (id, tenant_id, display_name, mail, mail_lower, upn, "
                "upn_lower, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user.id, user.tenant_id, user.display_name, user.mail, user.mail.lower(),
                    user.upn, user.upn.lower(), int(time.time()),
                ),
            )  # fmt: skip
            for folder in folders:
                await _insert_folder(tx, folder)
            return user

        return await self.engine.write(op)

    async def find_user(self, key: str) -> UserRecord | None:
        lowered = key.lower()

        async def op(tx: Tx) -> UserRecord | None:
            row = await tx.fetchone(
                f"SELECT {_USER_COLS} FROM users WHERE id = ? OR upn_lower = ? OR mail_lower = ?",
                (lowered, lowered, lowered),
            )
            return _user(row) if row else None

        return await self.engine.read(op)

    async def list_users(self, tenant_id: str | None = None) -> list[UserRecord]:
        async def op(tx: Tx) -> list[UserRecord]:
            if tenant_id is None:
                rows = await tx.fetchall(f"SELECT {_USER_COLS} FROM users ORDER BY upn_lower")
            else:
                rows = await tx.fetchall(
                    f"SELECT {_USER_COLS} FROM users WHERE tenant_id = ? ORDER BY upn_lower",
                    (tenant_id,),
                )
            return [_user(r) for r in rows]

        return await self.engine.read(op)

    async def remove_user(self, user_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            # children first: folders reference each other and messages reference folders
            await tx.execute("DELETE FROM messages WHERE mailbox_id = ?", (user_id,))
            await tx.execute("UPDATE folders SET parent_id = NULL WHERE mailbox_id = ?", (user_id,))
            await tx.execute("DELETE FROM folders WHERE mailbox_id = ?", (user_id,))
            return await tx.execute("DELETE FROM users WHERE id = ?", (user_id,)) > 0

        return await self.engine.write(op)

    async def display_names(self, addresses: list[str]) -> dict[str, str]:
        wanted = sorted({a.lower() for a in addresses if a})
        if not wanted:
            return {}

        async def op(tx: Tx) -> dict[str, str]:
            marks = ", ".join("?" for _ in wanted)
            rows = await tx.fetchall(
                f"SELECT mail_lower, upn_lower, display_name FROM users "
                f"WHERE mail_lower IN ({marks}) OR upn_lower IN ({marks})",
                (*wanted, *wanted),
            )
            names: dict[str, str] = {}
            for mail, upn, name in rows:
                names[mail] = name
                names[upn] = name
            return names

        return await self.engine.read(op)

    async def ensure_app(self, *, tenant_id: str, name: str, app_id: str) -> AppRecord:
        async def op(tx: Tx) -> AppRecord:
            row = await tx.fetchone(
                "SELECT id, tenant_id, name FROM apps WHERE tenant_id = ? AND name = ?",
                (tenant_id, name),
            )
            if row is not None:
                return AppRecord(row[0], row[1], row[2])
            await tx.execute(
                "INSERT INTO apps (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
                (app_id, tenant_id, name, int(time.time())),
            )
            return AppRecord(app_id, tenant_id, name)

        return await self.engine.write(op)

    # ------------------------------------------------------------ folders

    async def list_folders(
        self, mailbox_id: str, parent_id: str, *, include_hidden: bool, top: int, skip: int
    ) -> tuple[list[FolderRecord], int]:
        hidden = "" if include_hidden else " AND is_hidden = ?"
        params: tuple[Any, ...] = (mailbox_id, parent_id) if include_hidden else (
            mailbox_id, parent_id, False)  # fmt: skip

        async def op(tx: Tx) -> tuple[list[FolderRecord], int]:
            where = f"WHERE mailbox_id = ? AND parent_id = ?{hidden}"
            rows = await tx.fetchall(
                f"SELECT {_FOLDER_COLS} FROM folders {where} "
                "ORDER BY name_lower, id LIMIT ? OFFSET ?",
                (*params, top, skip),
            )
            total = await tx.fetchone(f"SELECT count(*) FROM folders {where}", params)
            return [_folder(r) for r in rows], int(total[0]) if total else 0

        return await self.engine.read(op)

    async def get_folder(self, mailbox_id: str, folder_id: str) -> FolderRecord | None:
        async def op(tx: Tx) -> FolderRecord | None:
            row = await tx.fetchone(
                f"SELECT {_FOLDER_COLS} FROM folders WHERE id = ? AND mailbox_id = ?",
                (folder_id, mailbox_id),
            )
            return _folder(row) if row else None

        return await self.engine.read(op)

    async def well_known_folder(self, mailbox_id: str, name: str) -> FolderRecord | None:
        async def op(tx: Tx) -> FolderRecord | None:
            row = await tx.fetchone(
                f"SELECT {_FOLDER_COLS} FROM folders WHERE mailbox_id = ? AND well_known = ?",
                (mailbox_id, name),
            )
            return _folder(row) if row else None

        return await self.engine.read(op)

    async def create_folder(self, folder: FolderRecord) -> FolderRecord:
        async def op(tx: Tx) -> FolderRecord:
            await _insert_folder(tx, folder)
            return folder

        return await self.engine.write(op)

    async def rename_folder(self, mailbox_id: str, folder_id: str, name: str) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                "UPDATE folders SET display_name = ?, name_lower = ? "
                "WHERE id = ? AND mailbox_id = ?",
                (name, name.lower(), folder_id, mailbox_id),
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

        await self.engine.write(op)

    async def delete_folder(self, mailbox_id: str, folder_id: str) -> None:
        async def op(tx: Tx) -> None:
            row = await tx.fetchone(
                "SELECT parent_id FROM folders WHERE id = ? AND mailbox_id = ?",
                (folder_id, mailbox_id),
            )
            if row is None:
                return
            # the folder and everything under it: messages and subfolders go by cascade
            await tx.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
            await tx.execute(
                "UPDATE folders SET child_count = child_count - 1 WHERE id = ?", (row[0],)
            )

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

    # ------------------------------------------------------------ messages

    async def insert_message(
        self,
        row: MessageRow,
        *,
        attachments: list[AttachmentRow],
        extensions: list[tuple[str, bytes]],
    ) -> int:
        async def op(tx: Tx) -> int:
            return await insert_message_op(tx, row, attachments, extensions)

        # on PostgreSQL a message without attachments or extensions is one statement
        return await self.engine.write(op, one_statement=not attachments and not extensions)

    async def get_message(self, mailbox_id: str, message_id: str) -> MessageRow | None:
        async def op(tx: Tx) -> MessageRow | None:
            row = await tx.fetchone(
                f"SELECT {_MSG_COLS} FROM messages m WHERE m.id = ? AND m.mailbox_id = ?",
                (message_id, mailbox_id),
            )
            return _message(row) if row else None

        return await self.engine.read(op)

    async def list_messages(
        self, mailbox_id: str, folder_id: str | None, query: MessageQuery
    ) -> tuple[list[MessageRow], int | None, bool]:
        params: list[Any] = []
        if folder_id is None:
            where = "m.mailbox_id = ?"
            params.append(mailbox_id)
        else:
            where = "m.folder_id = ?"
            params.append(folder_id)
        if query.filter is not None:
            where += " AND " + compile_filter(query.filter, params)
        order = compile_order(query.orderby)
        sql = f"SELECT {_MSG_COLS} FROM messages m WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"

        async def op(tx: Tx) -> tuple[list[MessageRow], int | None, bool]:
            rows = await tx.fetchall(sql, (*params, query.top + 1, query.skip))
            more = len(rows) > query.top
            count = None
            if query.count:
                got = await tx.fetchone(f"SELECT count(*) FROM messages m WHERE {where}", params)
                count = int(got[0]) if got else 0
            return [_message(r) for r in rows[: query.top]], count, more

        return await self.engine.read(op)

    async def replace_message(self, row: MessageRow, *, expected_change_key: str) -> bool:
        """Write a changed message if its change key is still ``expected_change_key``."""

        async def op(tx: Tx) -> bool:
            return await replace_message_op(tx, row, expected_change_key)

        return await self.engine.write(op)

    async def move_message(
        self, row: MessageRow, folder_id: str, *, expected_change_key: str
    ) -> bool:
        """Move (id kept) and store the new document, if the change key still matches."""
        row.folder_id = folder_id

        async def op(tx: Tx) -> bool:
            return await replace_message_op(tx, row, expected_change_key, move=True)

        return await self.engine.write(op)

    async def delete_message(self, mailbox_id: str, message_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            return await delete_message_op(tx, mailbox_id, message_id)

        return await self.engine.write(op)

    async def insert_messages(self, messages: list[NewMessage]) -> None:
        """Several messages in one transaction (one inbound mail to several mailboxes)."""

        async def op(tx: Tx) -> None:
            for new in messages:
                await insert_message_op(tx, new.row, new.attachments, [])

        await self.engine.write(op)

    async def find_by_internet_message_id(
        self, mailbox_id: str, internet_message_id: str
    ) -> MessageRow | None:
        async def op(tx: Tx) -> MessageRow | None:
            row = await tx.fetchone(
                f"SELECT {_MSG_COLS} FROM messages m WHERE m.mailbox_id = ? "
                "AND m.internet_message_id = ? ORDER BY m.seq LIMIT 1",
                (mailbox_id, internet_message_id),
            )
            return _message(row) if row else None

        return await self.engine.read(op)

    async def list_attachments(self, seq: int) -> list[AttachmentRow]:
        async def op(tx: Tx) -> list[AttachmentRow]:
            rows = await tx.fetchall(
                "SELECT id, name, content_type, size, is_inline, content_id, modified_at, content "
                "FROM attachments WHERE message_seq = ? ORDER BY position",
                (seq,),
            )
            return [
                AttachmentRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], bytes(r[7]))
                for r in rows
            ]

        return await self.engine.read(op)

    async def list_extensions(self, seq: int) -> list[bytes]:
        async def op(tx: Tx) -> list[bytes]:
            rows = await tx.fetchall(
                "SELECT doc FROM message_extensions WHERE message_seq = ? ORDER BY name", (seq,)
            )
            return [bytes(r[0]) for r in rows]

        return await self.engine.read(op)


async def _insert_folder(tx: Tx, f: FolderRecord) -> None:
    await tx.execute(
        "INSERT INTO folders (id, mailbox_id, parent_id, display_name, name_lower, well_known, "
        "is_hidden, total_count, unread_count, child_count, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, ?)",
        (
            f.id, f.mailbox_id, f.parent_id, f.display_name, f.display_name.lower(),
            f.well_known, f.is_hidden, int(time.time()),
        ),
    )  # fmt: skip
    if f.parent_id is not None:
        await tx.execute(
            "UPDATE folders SET child_count = child_count + 1 WHERE id = ?", (f.parent_id,)
        )
