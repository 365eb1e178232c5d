"""The subscriptions port on either engine: subscriptions, their undelivered notifications,
and the per-subscription lease under which one worker dispatches and delivers them."""

from __future__ import annotations

from graphpost.ports.subscriptions import Channel, Notification, ResourceKind, Subscription
from graphpost.store.engine import Engine, Row, Tx

_COLS = (
    "id, tenant_id, app_id, creator_id, delegated, mailbox_id, resource, kind, folder_id, "
    "change_types, notification_url, lifecycle_url, client_state, tls_version, created_ms, "
    "expires_ms, reauth_ms, cursor, change_seq, life_seq, attempts, next_attempt_ms, removed_ms"
)
_MARKS = ", ".join("?" for _ in _COLS.split(", "))


def _subscription(r: Row) -> Subscription:
    return Subscription(
        id=r[0], tenant_id=r[1], app_id=r[2], creator_id=r[3], delegated=bool(r[4]),
        mailbox_id=r[5], resource=r[6], kind=ResourceKind(r[7]), folder_id=r[8],
        change_types=frozenset(t for t in r[9].split(",") if t), notification_url=r[10],
        lifecycle_url=r[11], client_state=r[12], tls_version=r[13], created_ms=r[14],
        expires_ms=r[15], reauth_ms=r[16], cursor=r[17], change_seq=r[18], life_seq=r[19],
        attempts=r[20], next_attempt_ms=r[21], removed_ms=r[22],
    )  # fmt: skip


def _values(s: Subscription) -> tuple[object, ...]:
    return (
        s.id, s.tenant_id, s.app_id, s.creator_id, s.delegated, s.mailbox_id, s.resource,
        s.kind.value, s.folder_id, ",".join(sorted(s.change_types)), s.notification_url,
        s.lifecycle_url, s.client_state, s.tls_version, s.created_ms, s.expires_ms, s.reauth_ms,
        s.cursor, s.change_seq, s.life_seq, s.attempts, s.next_attempt_ms, s.removed_ms,
    )  # fmt: skip


class SqlSubscriptions:
    """The subscriptions port on either engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def create(self, subscription: Subscription, *, max_per_mailbox: int) -> bool:
        async def op(tx: Tx) -> bool:
            # the mailbox's row is locked so that two creates cannot both pass the count
            await tx.fetchone(
                f"SELECT id FROM users WHERE id = ?{tx.for_update}", (subscription.mailbox_id,)
            )
            row = await tx.fetchone(
                "SELECT COUNT(*) FROM subscriptions WHERE mailbox_id = ? AND removed_ms IS NULL",
                (subscription.mailbox_id,),
            )
            if row is not None and row[0] >= max_per_mailbox:
                return False
            await tx.execute(
                f"INSERT INTO subscriptions ({_COLS}, lease_owner, lease_until_ms) "
                f"VALUES ({_MARKS}, NULL, NULL)",
                _values(subscription),
            )
            return True

        return await self.engine.write(op)

    async def get(self, subscription_id: str) -> Subscription | None:
        async def op(tx: Tx) -> Subscription | None:
            row = await tx.fetchone(
                f"SELECT {_COLS} FROM subscriptions WHERE id = ? AND removed_ms IS NULL",
                (subscription_id,),
            )
            return _subscription(row) if row else None

        return await self.engine.read(op)

    async def list_for(
        self, tenant_id: str, app_id: str, creator_id: str | None
    ) -> list[Subscription]:
        async def op(tx: Tx) -> list[Subscription]:
            sql = (
                f"SELECT {_COLS} FROM subscriptions WHERE tenant_id = ? AND app_id = ? "
                "AND removed_ms IS NULL"
            )
            params: tuple[str, ...] = (tenant_id, app_id)
            if creator_id is not None:
                sql += " AND creator_id = ?"
                params += (creator_id,)
            rows = await tx.fetchall(sql + " ORDER BY created_ms, id", params)
            return [_subscription(r) for r in rows]

        return await self.engine.read(op)

    async def renew(
        self,
        subscription_id: str,
        *,
        expires_ms: int,
        reauth_ms: int | None,
        notification_url: str | None,
    ) -> Subscription | None:
        async def op(tx: Tx) -> Subscription | None:
            changed = await tx.execute(
                "UPDATE subscriptions SET expires_ms = ?, reauth_ms = ?, "
                "notification_url = COALESCE(?, notification_url) "
                "WHERE id = ? AND removed_ms IS NULL",
                (expires_ms, reauth_ms, notification_url, subscription_id),
            )
            if not changed:
                return None
            row = await tx.fetchone(
                f"SELECT {_COLS} FROM subscriptions WHERE id = ?", (subscription_id,)
            )
            return _subscription(row) if row else None

        return await self.engine.write(op)

    async def delete(self, subscription_id: str) -> bool:
        async def op(tx: Tx) -> bool:
            return bool(
                await tx.execute(
                    "DELETE FROM subscriptions WHERE id = ? AND removed_ms IS NULL",
                    (subscription_id,),
                )
            )

        return await self.engine.write(op)

    # ------------------------------------------------------------------ the worker's side

    async def claim(
        self, *, owner: str, now_ms: int, lease_ms: int, limit: int
    ) -> list[Subscription]:
        async def op(tx: Tx) -> list[Subscription]:
            skip = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
            rows = await tx.fetchall(
                "SELECT id FROM subscriptions WHERE (lease_owner IS NULL OR lease_owner = ? "
                "OR lease_until_ms < ?) ORDER BY COALESCE(lease_until_ms, 0), id "
                f"LIMIT ?{skip}",
                (owner, now_ms, limit),
            )
            if not rows:
                return []
            ids = [r[0] for r in rows]
            marks = ", ".join("?" for _ in ids)
            await tx.execute(
                f"UPDATE subscriptions SET lease_owner = ?, lease_until_ms = ? "
                f"WHERE id IN ({marks})",
                (owner, now_ms + lease_ms, *ids),
            )
            got = await tx.fetchall(
                f"SELECT {_COLS} FROM subscriptions WHERE id IN ({marks}) ORDER BY id", ids
            )
            return [_subscription(r) for r in got]

        return await self.engine.write(op)

    async def release(self, subscription_ids: list[str], *, owner: str) -> None:
        if not subscription_ids:
            return

        async def op(tx: Tx) -> None:
            marks = ", ".join("?" for _ in subscription_ids)
            await tx.execute(
                "UPDATE subscriptions SET lease_owner = NULL, lease_until_ms = NULL "
                f"WHERE lease_owner = ? AND id IN ({marks})",
                (owner, *subscription_ids),
            )

        await self.engine.write(op, one_statement=True)

    async def take_over_leases(self, owner: str) -> int:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "UPDATE subscriptions SET lease_owner = NULL, lease_until_ms = NULL "
                "WHERE lease_owner IS NOT NULL AND lease_owner <> ?",
                (owner,),
            )

        return await self.engine.write(op, one_statement=True)

    async def add_notifications(
        self,
        subscription_id: str,
        *,
        owner: str,
        expected_cursor: int,
        cursor: int,
        changes: list[bytes],
        lifecycle: list[bytes],
        now_ms: int,
        clear_reauth: bool = False,
    ) -> bool:
        async def op(tx: Tx) -> bool:
            row = await tx.fetchone(
                "SELECT cursor, change_seq, life_seq FROM subscriptions WHERE id = ? "
                f"AND lease_owner = ? AND removed_ms IS NULL{tx.for_update}",
                (subscription_id, owner),
            )
            if row is None or row[0] != expected_cursor:
                return False
            change_seq, life_seq = row[1], row[2]
            rows: list[tuple[object, ...]] = []
            for body in changes:
                change_seq += 1
                rows.append((subscription_id, Channel.CHANGE.value, change_seq, body, now_ms))
            for body in lifecycle:
                life_seq += 1
                rows.append((subscription_id, Channel.LIFECYCLE.value, life_seq, body, now_ms))
            if rows:
                await tx.executemany(
                    "INSERT INTO notifications (subscription_id, channel, seq, body, created_ms) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            reauth = ", reauth_ms = NULL" if clear_reauth else ""
            await tx.execute(
                f"UPDATE subscriptions SET cursor = ?, change_seq = ?, life_seq = ?{reauth} "
                "WHERE id = ?",
                (cursor, change_seq, life_seq, subscription_id),
            )
            return True

        return await self.engine.write(op)

    async def pending(
        self, subscription_id: str, channel: Channel, limit: int
    ) -> list[Notification]:
        async def op(tx: Tx) -> list[Notification]:
            rows = await tx.fetchall(
                "SELECT seq, body, created_ms FROM notifications WHERE subscription_id = ? "
                "AND channel = ? ORDER BY seq LIMIT ?",
                (subscription_id, channel.value, limit),
            )
            return [Notification(subscription_id, channel, r[0], bytes(r[1]), r[2]) for r in rows]

        return await self.engine.read(op)

    async def delivered(
        self, subscription_id: str, channel: Channel, up_to_seq: int, *, owner: str
    ) -> int:
        async def op(tx: Tx) -> int:
            held = await tx.fetchone(
                f"SELECT 1 FROM subscriptions WHERE id = ? AND lease_owner = ?{tx.for_update}",
                (subscription_id, owner),
            )
            if held is None:
                return 0
            done = await tx.execute(
                "DELETE FROM notifications WHERE subscription_id = ? AND channel = ? AND seq <= ?",
                (subscription_id, channel.value, up_to_seq),
            )
            await tx.execute(
                "UPDATE subscriptions SET attempts = 0, next_attempt_ms = 0 WHERE id = ?",
                (subscription_id,),
            )
            return done

        return await self.engine.write(op)

    async def deferred(self, subscription_id: str, *, owner: str, next_attempt_ms: int) -> None:
        async def op(tx: Tx) -> None:
            await tx.execute(
                "UPDATE subscriptions SET attempts = attempts + 1, next_attempt_ms = ? "
                "WHERE id = ? AND lease_owner = ?",
                (next_attempt_ms, subscription_id, owner),
            )

        await self.engine.write(op, one_statement=True)

    async def expired(self, now_ms: int, limit: int) -> list[Subscription]:
        async def op(tx: Tx) -> list[Subscription]:
            rows = await tx.fetchall(
                f"SELECT {_COLS} FROM subscriptions WHERE removed_ms IS NULL "
                "AND expires_ms <= ? ORDER BY expires_ms LIMIT ?",
                (now_ms, limit),
            )
            return [_subscription(r) for r in rows]

        return await self.engine.read(op)

    async def remove(self, subscription_id: str, *, lifecycle: bytes | None, now_ms: int) -> bool:
        async def op(tx: Tx) -> bool:
            row = await tx.fetchone(
                "SELECT life_seq FROM subscriptions WHERE id = ? AND removed_ms IS NULL"
                f"{tx.for_update}",
                (subscription_id,),
            )
            if row is None:
                return False
            if lifecycle is None:
                await tx.execute("DELETE FROM subscriptions WHERE id = ?", (subscription_id,))
                return True
            await tx.execute(
                "DELETE FROM notifications WHERE subscription_id = ? AND channel = ?",
                (subscription_id, Channel.CHANGE.value),
            )
            await tx.execute(
                "INSERT INTO notifications (subscription_id, channel, seq, body, created_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                (subscription_id, Channel.LIFECYCLE.value, row[0] + 1, lifecycle, now_ms),
            )
            await tx.execute(
                "UPDATE subscriptions SET removed_ms = ?, life_seq = life_seq + 1, "
                "attempts = 0, next_attempt_ms = 0 WHERE id = ?",
                (now_ms, subscription_id),
            )
            return True

        return await self.engine.write(op)

    async def purge_removed(self, before_ms: int) -> int:
        async def op(tx: Tx) -> int:
            return await tx.execute(
                "DELETE FROM subscriptions WHERE removed_ms IS NOT NULL AND (removed_ms < ? "
                "OR NOT EXISTS (SELECT 1 FROM notifications n "
                "WHERE n.subscription_id = subscriptions.id))",
                (before_ms,),
            )

        return await self.engine.write(op, one_statement=True)

    async def mailboxes(self) -> list[str]:
        async def op(tx: Tx) -> list[str]:
            rows = await tx.fetchall(
                "SELECT DISTINCT mailbox_id FROM subscriptions WHERE removed_ms IS NULL"
            )
            return [r[0] for r in rows]

        return await self.engine.read(op)
