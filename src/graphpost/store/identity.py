"""The identity port on either engine: apps' credentials, passwords, grants, failures."""

from __future__ import annotations

import json

from graphpost.domain.times import now
from graphpost.ports.identity import AppRegistration, Grant
from graphpost.store.engine import Engine, Row, Tx

_APP_COLS = "id, tenant_id, name, secret_digest, roles, redirect_uris, public_client"
_GRANT_COLS = "handle, kind, tenant_id, client_id, user_id, scopes, expires_at, data, user_code"


def _app(row: Row) -> AppRegistration:
    return AppRegistration(
        id=row[0],
        tenant_id=row[1],
        name=row[2],
        secret_digest=row[3],
        roles=tuple((row[4] or "").split()),
        redirect_uris=tuple((row[5] or "").split()),
        public_client=bool(row[6]),
    )


def _grant(row: Row) -> Grant:
    data = json.loads(row[7]) if row[7] else {}
    return Grant(
        handle=row[0],
        kind=row[1],
        tenant_id=row[2],
        client_id=row[3],
        user_id=row[4],
        scopes=tuple(row[5].split()),
        expires_at=int(row[6]),
        data={str(k): str(v) for k, v in data.items()},
        user_code=row[8],
    )


class SqlIdentity:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ apps

    async def add_app(self, app: AppRegistration) -> AppRegistration:
        async def op(tx: Tx) -> AppRegistration:
            await tx.execute(
                f"INSERT INTO apps ({_APP_COLS}, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    app.id, app.tenant_id, app.name, app.secret_digest,
                    " ".join(app.roles) or None, " ".join(app.redirect_uris) or None,
                    app.public_client, now(),
                ),
            )  # fmt: skip
            return app

        return await self.engine.write(op)

    async def find_app(self, client_id: str) -> AppRegistration | None:
        async def op(tx: Tx) -> AppRegistration | None:
            row = await tx.fetchone(f"SELECT {_APP_COLS} FROM apps WHERE id = ?", (client_id,))
            return _app(row) if row else None

        return await self.engine.read(op)

    async def list_apps(self) -> list[AppRegistration]:
        async def op(tx: Tx) -> list[AppRegistration]:
            rows = await tx.fetchall(f"SELECT {_APP_COLS} FROM apps ORDER BY name, id")
            return [_app(r) for r in rows]

        return await self.engine.read(op)

    async def remove_app(self, client_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            await tx.execute("DELETE FROM identity_grants WHERE client_id = ?", (client_id,))
            return await tx.execute("DELETE FROM apps WHERE id = ?", (client_id,)) > 0

        return await self.engine.write(op)

    # ------------------------------------------------------------------ passwords

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> bool:
        async def op(tx: Tx) -> bool:
            changed = await tx.execute(
                "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id)
            )
            # a new password ends the sessions of the old one
            await tx.execute(
                "DELETE FROM identity_grants WHERE user_id = ? AND kind = 'refresh'", (user_id,)
            )
            return changed > 0

        return await self.engine.write(op)

    async def password_hash(self, user_id: str) -> str | None:
        async def op(tx: Tx) -> str | None:
            row = await tx.fetchone("SELECT password_hash FROM users WHERE id = ?", (user_id,))
            return row[0] if row else None

        return await self.engine.read(op)

    # ------------------------------------------------------------------ grants

    async def add_grant(self, grant: Grant) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                f"INSERT INTO identity_grants ({_GRANT_COLS}, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    grant.handle, grant.kind, grant.tenant_id, grant.client_id, grant.user_id,
                    " ".join(grant.scopes), grant.expires_at, json.dumps(grant.data),
                    grant.user_code, now(),
                ),
            )  # fmt: skip

        await self.engine.write(op, one_statement=True)

    async def take_grant(self, handle: str, kind: str) -> Grant | None:
        async def op(tx: Tx) -> Grant | None:
            row = await tx.fetchone(
                f"SELECT {_GRANT_COLS} FROM identity_grants WHERE handle = ? AND kind = ?"
                f"{tx.for_update}",
                (handle, kind),
            )
            if row is None:
                return None
            gone = await tx.execute(
                "DELETE FROM identity_grants WHERE handle = ? AND kind = ?", (handle, kind)
            )
            return _grant(row) if gone else None

        return await self.engine.write(op)

    async def peek_grant(self, handle: str, kind: str) -> Grant | None:
        async def op(tx: Tx) -> Grant | None:
            row = await tx.fetchone(
                f"SELECT {_GRANT_COLS} FROM identity_grants WHERE handle = ? AND kind = ?",
                (handle, kind),
            )
            return _grant(row) if row else None

        return await self.engine.read(op)

    async def grant_by_user_code(self, user_code: str) -> Grant | None:
        async def op(tx: Tx) -> Grant | None:
            row = await tx.fetchone(
                f"SELECT {_GRANT_COLS} FROM identity_grants WHERE user_code = ? AND kind = ?",
                (user_code, "device"),
            )
            return _grant(row) if row else None

        return await self.engine.read(op)

    async def count_live_grants(self, client_id: str, kind: str, now_ms: int) -> int:
        async def op(tx: Tx) -> int:
            row = await tx.fetchone(
                "SELECT COUNT(*) FROM identity_grants "
                "WHERE client_id = ? AND kind = ? AND expires_at > ?",
                (client_id, kind, now_ms),
            )
            return int(row[0]) if row else 0

        return await self.engine.read(op)

    async def settle_device(self, handle: str, *, user_id: str | None, state: str) -> bool:
        async def op(tx: Tx) -> bool:
            row = await tx.fetchone(
                f"SELECT data FROM identity_grants WHERE handle = ? AND kind = 'device'"
                f"{tx.for_update}",
                (handle,),
            )
            if row is None:
                return False
            data = json.loads(row[0]) if row[0] else {}
            if data.get("state", "pending") != "pending":
                return False
            data["state"] = state
            changed = await tx.execute(
                "UPDATE identity_grants SET user_id = ?, data = ? WHERE handle = ?",
                (user_id, json.dumps(data), handle),
            )
            return changed > 0

        return await self.engine.write(op)

    # ------------------------------------------------------------------ failures

    async def record_failure(self, keys: list[str], at_ms: int) -> None:
        async def op(tx: Tx) -> None:
            await tx.executemany(
                "INSERT INTO identity_failures (key, at_ms) VALUES (?, ?)",
                [(key, at_ms) for key in keys],
            )
            for key in keys:  # what no window counts any more (the index is key, at_ms)
                await tx.execute(
                    "DELETE FROM identity_failures WHERE key = ? AND at_ms < ?",
                    (key, at_ms - 3_600_000),
                )

        await self.engine.write(op)

    async def count_failures(self, key: str, since_ms: int) -> int:
        async def op(tx: Tx) -> int:
            row = await tx.fetchone(
                "SELECT COUNT(*) FROM identity_failures WHERE key = ? AND at_ms >= ?",
                (key, since_ms),
            )
            return int(row[0]) if row else 0

        return await self.engine.read(op)

    async def purge(self, now_ms: int, failures_before_ms: int) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute("DELETE FROM identity_grants WHERE expires_at < ?", (now_ms,))
            await tx.execute("DELETE FROM identity_failures WHERE at_ms < ?", (failures_before_ms,))

        await self.engine.write(op)
