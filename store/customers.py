"""WeCom external contacts (客户) in the ``customer`` table, on SQLite and PostgreSQL.

Filled from `externalcontact/get` when a change_external_contact event names a contact (and by the
full reconcile, bot/wecom/customer_reconcile.py), and read by the work-order API (relation_name /
relation_avatar / relation_corp_name) and the sidebar.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from core.workorder import Customer
from store.db import Database, upsert
from store.errors import StoreError
from store.tables import customer


def _of(row: Any) -> Customer:
    return Customer(
        external_userid=row["external_userid"],
        name=row["name"],
        avatar=row["avatar"],
        corp_name=row["corp_name"],
        type=row["type"],
        gender=row["gender"],
        unionid=row["unionid"],
        follow_users=tuple(row["follow_users"] or ()),
        deleted=row["deleted"],
    )


class SqlCustomers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def upsert(self, c: Customer, now: datetime) -> None:
        """Insert or replace the contact (it is live again if it was marked deleted)."""
        if not c.external_userid or len(c.external_userid) > 128:
            raise StoreError("a customer needs an external_userid of 1 to 128 characters")
        values = {
            "external_userid": c.external_userid,
            "name": c.name,
            "avatar": c.avatar,
            "corp_name": c.corp_name,
            "type": c.type,
            "gender": c.gender,
            "unionid": c.unionid,
            "follow_users": [dict(f) for f in c.follow_users],
            "deleted": c.deleted,
            "updated_at": now,
        }
        stmt = upsert(self._db.dialect, customer).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[customer.c.external_userid],
            set_={k: v for k, v in values.items() if k != "external_userid"},
        )
        async with self._db.write() as conn:
            await conn.execute(stmt)

    async def mark_deleted(self, external_userid: str, now: datetime) -> bool:
        """No staff member has the contact any more (kept: work orders still name them)."""
        async with self._db.write() as conn:
            result = await conn.execute(
                update(customer)
                .where(customer.c.external_userid == external_userid)
                .values(deleted=True, updated_at=now)
            )
            return bool(result.rowcount)

    async def get(self, external_userid: str) -> Customer | None:
        async with self._db.read() as conn:
            row = (
                (await conn.execute(select(customer).where(customer.c.external_userid == external_userid)))
                .mappings()
                .first()
            )
        return None if row is None else _of(row)

    async def live_ids(self) -> list[str]:
        """The external_userids of the customers not marked deleted, sorted (the full reconcile's
        list of who should still be someone's customer)."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(customer.c.external_userid)
                .where(customer.c.deleted.is_(False))
                .order_by(customer.c.external_userid)
            )
            return [r[0] for r in rows]

    async def many(self, ids: Sequence[str]) -> dict[str, Customer]:
        if not ids:
            return {}
        async with self._db.read() as conn:
            rows = (
                await conn.execute(select(customer).where(customer.c.external_userid.in_(sorted(set(ids)))))
            ).mappings()
            return {r["external_userid"]: _of(r) for r in rows}


if TYPE_CHECKING:
    from core.workorder import Customers

    def _conforms(s: SqlCustomers) -> Customers:
        return s
