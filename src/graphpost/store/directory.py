"""The directory port on either engine: tenants, users and applications."""

from __future__ import annotations

from graphpost.domain import ids
from graphpost.domain.times import now
from graphpost.errors import AlreadyExistsError
from graphpost.ports.blobs import UploadSession
from graphpost.ports.directory import App, Tenant, User, UserPage, UserQuery
from graphpost.ports.folders import Folder
from graphpost.store.blobs import SESSION_COLS, Content, DbContent, release_where, session_of
from graphpost.store.changes import forget_mailbox
from graphpost.store.engine import Engine, Row, Tx
from graphpost.store.folders import insert_folder
from graphpost.store.outbox import release_submission
from graphpost.store.user_query import COLUMNS, compile_where

_USER_COLS = "id, tenant_id, display_name, mail, upn"
# One key for pg_advisory_xact_lock: users are added one at a time, so that the check that a new
# user's addresses are nobody else's upn or mail cannot race another insert.
_ADD_USER_LOCK = 0x67706F7374_01


def _user(row: Row) -> User:
    return User(row[0], row[1], row[2], row[3], row[4])


NAMES_PER_QUERY = 1000  # addresses per display-name query (twice as many parameters)


class SqlDirectory:
    def __init__(self, engine: Engine, content: Content | None = None) -> None:
        self.engine = engine
        self.content = content or DbContent()  # where upload sessions stage their parts

    async def ensure_tenant(self, *, domain: str, display_name: str) -> Tenant:
        async def op(tx: Tx) -> Tenant:
            row = await tx.fetchone(
                "SELECT id, domain, display_name FROM tenants WHERE domain = ?", (domain.lower(),)
            )
            if row is not None:
                return Tenant(row[0], row[1], row[2])
            tenant = Tenant(ids.guid(), domain.lower(), display_name)
            await tx.execute(
                "INSERT INTO tenants (id, domain, display_name, created_at) VALUES (?, ?, ?, ?)",
                (tenant.id, tenant.domain, tenant.display_name, now()),
            )
            return tenant

        return await self.engine.write(op)

    async def find_tenant(self, domain: str) -> Tenant | None:
        async def op(tx: Tx) -> Tenant | None:
            row = await tx.fetchone(
                "SELECT id, domain, display_name FROM tenants WHERE domain = ? OR id = ?",
                (domain.lower(), domain),
            )
            return Tenant(row[0], row[1], row[2]) if row else None

        return await self.engine.read(op)

    async def list_tenants(self) -> list[Tenant]:
        async def op(tx: Tx) -> list[Tenant]:
            rows = await tx.fetchall("SELECT id, domain, display_name FROM tenants ORDER BY domain")
            return [Tenant(r[0], r[1], r[2]) for r in rows]

        return await self.engine.read(op)

    async def add_user(self, user: User, folders: list[Folder]) -> User:
        upn, mail = user.upn.lower(), user.mail.lower()

        async def op(tx: Tx) -> User:
            # an address names one user: a new user's upn and mail must each be free in BOTH
            # columns (the UNIQUE constraints guard each column only). SQLite has one writer;
            # on PostgreSQL the lock serializes concurrent adds.
            if tx.dialect == "postgresql":
                await tx.execute("SELECT pg_advisory_xact_lock(?)", (_ADD_USER_LOCK,))
            taken = await tx.fetchone(
                "SELECT upn_lower, mail_lower FROM users WHERE upn_lower IN (?, ?) "
                "OR mail_lower IN (?, ?) LIMIT 1",
                (upn, mail, upn, mail),
            )
            if taken is not None:
                address = upn if upn in (taken[0], taken[1]) else mail
                raise AlreadyExistsError(
                    f"'{address}' is already the userPrincipalName or mail address of a user."
                )
            try:
                await tx.execute(
                    "INSERT INTO users (id, tenant_id, display_name, mail, mail_lower, upn, "
                    "upn_lower, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user.id, user.tenant_id, user.display_name, user.mail, mail, user.upn,
                        upn, now(),
                    ),
                )  # fmt: skip
            except AlreadyExistsError:
                raise AlreadyExistsError(f"A user with id '{user.id}' already exists.") from None
            for folder in folders:
                await insert_folder(tx, folder)
            return user

        return await self.engine.write(op)

    async def find_user(self, key: str) -> User | None:
        lowered = key.lower()

        async def op(tx: Tx) -> User | None:
            # deterministic when an address is both one user's upn and another's mail (data
            # older than the check in add_user): the id, then the upn, then the mail
            row = await tx.fetchone(
                f"SELECT {_USER_COLS} FROM users WHERE id = ? OR upn_lower = ? OR mail_lower = ? "
                "ORDER BY CASE WHEN id = ? THEN 0 WHEN upn_lower = ? THEN 1 ELSE 2 END LIMIT 1",
                (lowered, lowered, lowered, lowered, lowered),
            )
            return _user(row) if row else None

        return await self.engine.read(op)

    async def list_users(self, tenant_id: str | None = None) -> list[User]:
        async def op(tx: Tx) -> list[User]:
            if tenant_id is None:
                rows = await tx.fetchall(f"SELECT {_USER_COLS} FROM users ORDER BY upn_lower")
            else:
                rows = await tx.fetchall(
                    f"SELECT {_USER_COLS} FROM users WHERE tenant_id = ? ORDER BY upn_lower",
                    (tenant_id,),
                )
            return [_user(r) for r in rows]

        return await self.engine.read(op)

    async def query_users(self, query: UserQuery) -> UserPage:
        sort = COLUMNS[query.order] if query.order else "id"
        where = ["tenant_id = ?"]
        params: list[object] = [query.tenant_id]
        if query.where is not None:
            where.append(compile_where(query.where, params))
        counted = list(params)
        counted_where = " AND ".join(where)
        if query.after is not None:
            value, last_id = query.after
            cmp = "<" if query.descending else ">"
            if sort == "id":
                where.append(f"id {cmp} ?")
                params.append(last_id)
            else:
                where.append(f"({sort} {cmp} ? OR ({sort} = ? AND id {cmp} ?))")
                params += [value, value, last_id]
        direction = "DESC" if query.descending else "ASC"
        order = f"id {direction}" if sort == "id" else f"{sort} {direction}, id {direction}"
        sql = (
            f"SELECT {_USER_COLS}, {sort} FROM users WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT {int(query.top) + 1}"
        )

        async def op(tx: Tx) -> UserPage:
            rows = await tx.fetchall(sql, tuple(params))
            count = None
            if query.count:
                row = await tx.fetchone(
                    f"SELECT COUNT(*) FROM users WHERE {counted_where}", tuple(counted)
                )
                count = int(row[0]) if row else 0
            page = rows[: query.top]
            more = len(rows) > query.top
            last = (str(page[-1][5]), str(page[-1][0])) if more and page else None
            return UserPage([_user(r) for r in page], last, count)

        return await self.engine.read(op)

    async def remove_user(self, user_id: str) -> bool:
        sessions: list[UploadSession] = []

        async def op(tx: Tx) -> bool:
            # children first: folders reference each other and messages reference folders
            await release_where(tx, "m.mailbox_id = ?", (user_id,))
            # the user's upload sessions, and what they staged (the rows would go by cascade,
            # and nothing would ever drop their parts)
            # (a finished session's staged bytes are its attachment's blob now: left alone)
            sessions[:] = [
                s
                for r in await tx.fetchall(
                    f"SELECT {SESSION_COLS} FROM upload_sessions WHERE mailbox_id = ?", (user_id,)
                )
                if not (s := session_of(r)).finished
            ]
            for session in sessions:
                await self.content.drop_staged(tx, session)
            await tx.execute("DELETE FROM upload_sessions WHERE mailbox_id = ?", (user_id,))
            for sub in await tx.fetchall(
                "SELECT id, mime_digest, blobs_held FROM submissions WHERE mailbox_id = ? "
                "AND (mime_digest IS NOT NULL OR blobs_held IS NOT NULL)",
                (user_id,),
            ):
                await release_submission(tx, sub[0], sub[1], sub[2])
            await tx.execute("DELETE FROM messages WHERE mailbox_id = ?", (user_id,))
            await forget_mailbox(tx, user_id)
            await tx.execute("UPDATE folders SET parent_id = NULL WHERE mailbox_id = ?", (user_id,))
            await tx.execute("DELETE FROM folders WHERE mailbox_id = ?", (user_id,))
            return await tx.execute("DELETE FROM users WHERE id = ?", (user_id,)) > 0

        done = await self.engine.write(op)
        for session in sessions:
            await self.content.drop_staged(None, session)  # a directory's part files
        return done

    async def display_names(self, addresses: list[str]) -> dict[str, str]:
        wanted = sorted({a.lower() for a in addresses if a})
        if not wanted:
            return {}

        async def op(tx: Tx) -> dict[str, str]:
            names: dict[str, str] = {}
            # in chunks: a message may name tens of thousands of recipients, and a statement
            # takes at most 32,767 parameters (asyncpg; SQLite's limit is the same)
            for at in range(0, len(wanted), NAMES_PER_QUERY):
                chunk = wanted[at : at + NAMES_PER_QUERY]
                marks = ", ".join("?" for _ in chunk)
                rows = await tx.fetchall(
                    f"SELECT mail_lower, upn_lower, display_name FROM users "
                    f"WHERE mail_lower IN ({marks}) OR upn_lower IN ({marks})",
                    (*chunk, *chunk),
                )
                for mail, upn, name in rows:
                    names[mail] = name
                    names[upn] = name
            return names

        return await self.engine.read(op)

    async def ensure_app(self, *, tenant_id: str, name: str, app_id: str) -> App:
        async def op(tx: Tx) -> App:
            row = await tx.fetchone(
                "SELECT id, tenant_id, name FROM apps WHERE tenant_id = ? AND name = ?",
                (tenant_id, name),
            )
            if row is not None:
                return App(row[0], row[1], row[2])
            await tx.execute(
                "INSERT INTO apps (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
                (app_id, tenant_id, name, now()),
            )
            return App(app_id, tenant_id, name)

        return await self.engine.write(op)
