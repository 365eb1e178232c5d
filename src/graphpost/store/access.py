"""The access port on either engine: mailbox grants and application access policies."""

from __future__ import annotations

from graphpost.ports.access import AppPolicy, Grant
from graphpost.ports.directory import App
from graphpost.store.engine import Engine, Row, Tx
from graphpost.types import Right

_GRANT_COLS = "mailbox_id, delegate_id, rights, created_at"


def _rights(text: str) -> frozenset[Right]:
    known = {r.value for r in Right}
    return frozenset(Right(word) for word in text.split() if word in known)


def _grant(row: Row) -> Grant:
    return Grant(row[0], row[1], _rights(row[2]), int(row[3]))


def rights_text(rights: frozenset[Right]) -> str:
    """Stored space-separated, in a fixed order (the schema's comment names them)."""
    return " ".join(r.value for r in Right if r in rights)


class SqlAccess:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def put_grant(self, grant: Grant) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                f"INSERT INTO mailbox_grants ({_GRANT_COLS}) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (mailbox_id, delegate_id) DO UPDATE SET rights = excluded.rights",
                (grant.mailbox_id, grant.delegate_id, rights_text(grant.rights), grant.created_at),
            )

        await self.engine.write(op)

    async def remove_grant(self, mailbox_id: str, delegate_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            return (
                await tx.execute(
                    "DELETE FROM mailbox_grants WHERE mailbox_id = ? AND delegate_id = ?",
                    (mailbox_id, delegate_id),
                )
                > 0
            )

        return await self.engine.write(op)

    async def grant(self, mailbox_id: str, delegate_id: str) -> Grant | None:
        async def op(tx: Tx) -> Grant | None:
            row = await tx.fetchone(
                f"SELECT {_GRANT_COLS} FROM mailbox_grants "
                "WHERE mailbox_id = ? AND delegate_id = ?",
                (mailbox_id, delegate_id),
            )
            return _grant(row) if row else None

        return await self.engine.read(op)

    async def grants_of(self, mailbox_id: str) -> list[Grant]:
        async def op(tx: Tx) -> list[Grant]:
            rows = await tx.fetchall(
                f"SELECT {_GRANT_COLS} FROM mailbox_grants WHERE mailbox_id = ? "
                "ORDER BY created_at, delegate_id",
                (mailbox_id,),
            )
            return [_grant(r) for r in rows]

        return await self.engine.read(op)

    async def find_apps(self, key: str) -> list[App]:
        async def op(tx: Tx) -> list[App]:
            rows = await tx.fetchall(
                "SELECT id, tenant_id, name FROM apps WHERE id = ? OR name = ? ORDER BY id",
                (key.lower(), key),
            )
            return [App(r[0], r[1], r[2]) for r in rows]

        return await self.engine.read(op)

    async def put_policy(self, app_id: str, mailbox_ids: list[str], created_at: int) -> None:
        wanted = sorted(set(mailbox_ids))

        async def op(tx: Tx) -> None:
            await tx.execute("DELETE FROM app_access_policies WHERE app_id = ?", (app_id,))
            await tx.execute(
                "INSERT INTO app_access_restrictions (app_id, created_at) VALUES (?, ?) "
                "ON CONFLICT (app_id) DO NOTHING",
                (app_id, created_at),
            )
            await tx.executemany(
                "INSERT INTO app_access_policies (app_id, mailbox_id, created_at) VALUES (?, ?, ?)",
                [(app_id, m, created_at) for m in wanted],
            )

        await self.engine.write(op)

    async def remove_policy(self, app_id: str) -> int:
        async def op(tx: Tx) -> int:
            listed = await tx.execute("DELETE FROM app_access_policies WHERE app_id = ?", (app_id,))
            restricted = await tx.execute(
                "DELETE FROM app_access_restrictions WHERE app_id = ?", (app_id,)
            )
            return listed if restricted else 0

        return await self.engine.write(op)

    async def policy_of(self, app_id: str) -> frozenset[str] | None:
        async def op(tx: Tx) -> frozenset[str] | None:
            rows = await tx.fetchall(
                "SELECT p.mailbox_id FROM app_access_restrictions r "
                "LEFT JOIN app_access_policies p ON p.app_id = r.app_id WHERE r.app_id = ?",
                (app_id,),
            )
            if not rows:
                return None
            return frozenset(r[0] for r in rows if r[0] is not None)

        return await self.engine.read(op)

    async def policies(self) -> list[AppPolicy]:
        async def op(tx: Tx) -> list[AppPolicy]:
            rows = await tx.fetchall(
                "SELECT r.app_id, p.mailbox_id, COALESCE(p.created_at, r.created_at) "
                "FROM app_access_restrictions r "
                "LEFT JOIN app_access_policies p ON p.app_id = r.app_id "
                "ORDER BY r.app_id, p.mailbox_id"
            )
            return [AppPolicy(r[0], r[1], int(r[2])) for r in rows]

        return await self.engine.read(op)
