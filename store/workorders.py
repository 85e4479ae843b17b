"""The work-order side of a ticket (``work_order``): the entity it is about. `relation_type` 1 is a
customer and `relation_id` its WeCom external_userid; a ticket with no row has no relation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from core.workorder import Relation
from store.db import Database, upsert
from store.errors import StoreError
from store.tables import work_order


class SqlWorkOrders:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def relate(self, ticket_id: int, relation_type: int, relation_id: str, now: datetime) -> Relation:
        """Set what the work order is about, once: the first relation stays (a retried or raced
        request can't move an order to another customer). Returns the stored relation; the caller
        compares it with what it asked for."""
        if relation_type < 0 or len(relation_id) > 128:
            raise StoreError("relation_type must be >= 0 and relation_id at most 128 characters")
        stmt = upsert(self._db.dialect, work_order).values(
            ticket_id=ticket_id,
            relation_type=relation_type,
            relation_id=relation_id,
            created_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=[work_order.c.ticket_id])
        async with self._db.write() as conn:
            await conn.execute(stmt)
            row = (await conn.execute(select(work_order).where(work_order.c.ticket_id == ticket_id))).one()
            return Relation(row.ticket_id, row.relation_type, row.relation_id)

    async def relations(self, ticket_ids: Sequence[int]) -> dict[int, Relation]:
        if not ticket_ids:
            return {}
        w = work_order.c
        async with self._db.read() as conn:
            rows = await conn.execute(select(work_order).where(w.ticket_id.in_(sorted(set(ticket_ids)))))
            return {r.ticket_id: Relation(r.ticket_id, r.relation_type, r.relation_id) for r in rows}

    async def tickets_of(self, relation_type: int, relation_id: str) -> list[int]:
        """The work orders about one entity (e.g. a customer), newest first."""
        w = work_order.c
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(w.ticket_id)
                .where(w.relation_type == relation_type, w.relation_id == relation_id)
                .order_by(w.ticket_id.desc())
            )
            return [int(r[0]) for r in rows]


if TYPE_CHECKING:
    from core.workorder import WorkOrders

    def _conforms(s: SqlWorkOrders) -> WorkOrders:
        return s
