"""The mailbox settings port on either engine: ``mailbox_settings``, ``master_categories`` and
``inference_overrides``."""

from __future__ import annotations

import unicodedata

from graphpost.domain.settings import Category, Override
from graphpost.ports.mailbox import Change, StoredSettings
from graphpost.store.engine import Engine, Row, Tx

_CAT = "id, display_name, color"
_OVR = "id, address, name, classify_as"


def _category(row: Row) -> Category:
    return Category(row[0], row[1], row[2])


def _override(row: Row) -> Override:
    return Override(row[0], row[1], row[2], row[3])


def name_key(display_name: str) -> str:
    """What makes two category names the same: case, and Unicode normalization (``é`` as one
    code point or as ``e`` and a combining accent, as macOS writes it, look alike)."""
    return unicodedata.normalize("NFC", display_name).lower()


class SqlMailboxSettings:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------ settings

    async def settings(self, mailbox_id: str) -> StoredSettings:
        async def op(tx: Tx) -> StoredSettings:
            row = await tx.fetchone(
                "SELECT document, reply_epoch FROM mailbox_settings WHERE mailbox_id = ?",
                (mailbox_id,),
            )
            return StoredSettings(bytes(row[0]), int(row[1])) if row else StoredSettings(None, 0)

        return await self.engine.read(op)

    async def update_settings(
        self, mailbox_id: str, change: Change, *, now_ms: int
    ) -> StoredSettings:
        async def op(tx: Tx) -> StoredSettings:
            row = await tx.fetchone(
                "SELECT document, reply_epoch FROM mailbox_settings WHERE mailbox_id = ?"
                + tx.for_update,
                (mailbox_id,),
            )
            document, replies_changed = change(bytes(row[0]) if row else None)
            epoch = (int(row[1]) if row else 0) + (1 if replies_changed else 0)
            await tx.execute(
                "INSERT INTO mailbox_settings (mailbox_id, document, reply_epoch, modified_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (mailbox_id) DO UPDATE SET "
                "document = excluded.document, reply_epoch = excluded.reply_epoch, "
                "modified_ms = excluded.modified_ms",
                (mailbox_id, document, epoch, now_ms),
            )
            return StoredSettings(document, epoch)

        return await self.engine.write(op)

    # ------------------------------------------------------------ categories

    async def categories(self, mailbox_id: str) -> list[Category]:
        async def op(tx: Tx) -> list[Category]:
            rows = await tx.fetchall(
                f"SELECT {_CAT} FROM master_categories WHERE mailbox_id = ? "
                "ORDER BY created_ms, id",
                (mailbox_id,),
            )
            return [_category(r) for r in rows]

        return await self.engine.read(op)

    async def category(self, mailbox_id: str, category_id: str) -> Category | None:
        async def op(tx: Tx) -> Category | None:
            row = await tx.fetchone(
                f"SELECT {_CAT} FROM master_categories WHERE mailbox_id = ? AND id = ?",
                (mailbox_id, category_id),
            )
            return _category(row) if row else None

        return await self.engine.read(op)

    async def add_category(
        self, mailbox_id: str, category: Category, *, limit: int, now_ms: int
    ) -> bool:
        async def op(tx: Tx) -> bool:
            row = await tx.fetchone(
                "SELECT COUNT(*) FROM master_categories WHERE mailbox_id = ?", (mailbox_id,)
            )
            if row is not None and int(row[0]) >= limit:
                return False
            await tx.execute(
                "INSERT INTO master_categories (mailbox_id, id, display_name, name_lower, color, "
                "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (mailbox_id, category.id, category.display_name,
                 name_key(category.display_name), category.color, now_ms),
            )  # fmt: skip
            return True

        return await self.engine.write(op)

    async def set_color(self, mailbox_id: str, category_id: str, color: str) -> bool:
        async def op(tx: Tx) -> bool:
            return (
                await tx.execute(
                    "UPDATE master_categories SET color = ? WHERE mailbox_id = ? AND id = ?",
                    (color, mailbox_id, category_id),
                )
                > 0
            )

        return await self.engine.write(op)

    async def remove_category(self, mailbox_id: str, category_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            return (
                await tx.execute(
                    "DELETE FROM master_categories WHERE mailbox_id = ? AND id = ?",
                    (mailbox_id, category_id),
                )
                > 0
            )

        return await self.engine.write(op)

    # ------------------------------------------------------------ Focused Inbox overrides

    async def overrides(self, mailbox_id: str) -> list[Override]:
        async def op(tx: Tx) -> list[Override]:
            rows = await tx.fetchall(
                f"SELECT {_OVR} FROM inference_overrides WHERE mailbox_id = ? "
                "ORDER BY created_ms, id",
                (mailbox_id,),
            )
            return [_override(r) for r in rows]

        return await self.engine.read(op)

    async def override(self, mailbox_id: str, override_id: str) -> Override | None:
        async def op(tx: Tx) -> Override | None:
            row = await tx.fetchone(
                f"SELECT {_OVR} FROM inference_overrides WHERE mailbox_id = ? AND id = ?",
                (mailbox_id, override_id),
            )
            return _override(row) if row else None

        return await self.engine.read(op)

    async def put_override(
        self, mailbox_id: str, override: Override, *, limit: int, now_ms: int
    ) -> Override | None:
        async def op(tx: Tx) -> Override | None:
            found = await tx.fetchone(
                f"SELECT {_OVR} FROM inference_overrides WHERE mailbox_id = ? AND address = ?"
                + tx.for_update,
                (mailbox_id, override.address),
            )
            if found is not None:
                await tx.execute(
                    "UPDATE inference_overrides SET name = ?, classify_as = ? "
                    "WHERE mailbox_id = ? AND id = ?",
                    (override.name, override.classify_as, mailbox_id, found[0]),
                )
                return Override(found[0], override.address, override.name, override.classify_as)
            row = await tx.fetchone(
                "SELECT COUNT(*) FROM inference_overrides WHERE mailbox_id = ?", (mailbox_id,)
            )
            if row is not None and int(row[0]) >= limit:
                return None
            await tx.execute(
                "INSERT INTO inference_overrides (mailbox_id, id, address, name, classify_as, "
                "created_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (mailbox_id, override.id, override.address, override.name,
                 override.classify_as, now_ms),
            )  # fmt: skip
            return override

        return await self.engine.write(op)

    async def set_classification(self, mailbox_id: str, override_id: str, classify_as: str) -> bool:
        async def op(tx: Tx) -> bool:
            return (
                await tx.execute(
                    "UPDATE inference_overrides SET classify_as = ? "
                    "WHERE mailbox_id = ? AND id = ?",
                    (classify_as, mailbox_id, override_id),
                )
                > 0
            )

        return await self.engine.write(op)

    async def remove_override(self, mailbox_id: str, override_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            return (
                await tx.execute(
                    "DELETE FROM inference_overrides WHERE mailbox_id = ? AND id = ?",
                    (mailbox_id, override_id),
                )
                > 0
            )

        return await self.engine.write(op)

    async def classification_of(self, mailbox_id: str, address: str) -> str | None:
        async def op(tx: Tx) -> str | None:
            row = await tx.fetchone(
                "SELECT classify_as FROM inference_overrides WHERE mailbox_id = ? AND address = ?",
                (mailbox_id, address.lower()),
            )
            return str(row[0]) if row else None

        return await self.engine.read(op)
