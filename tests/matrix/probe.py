"""What the store says about the matrix's tickets: a ticket, its flow log, and the counts any change
anywhere would move (so a refused request can be shown to have changed nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from core.ticket import FlowLog, Ticket
from store.db import Database
from store.queries import SqlTicketQueries
from store.tables import delivery, flow_log
from store.tables import ticket as ticket_table


@dataclass(frozen=True, slots=True)
class Seen:
    """One ticket as stored, its flow log, and the store's counts."""

    ticket: Ticket
    logs: tuple[FlowLog, ...]
    counts: tuple[int, ...]


class Probe:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.queries = SqlTicketQueries(db)

    async def ticket(self, ticket_id: int) -> Ticket:
        found = await self.queries.get_ticket(ticket_id)
        assert found is not None, ticket_id
        return found

    async def logs(self, ticket_id: int) -> tuple[FlowLog, ...]:
        return tuple(await self.queries.flow_logs(ticket_id, desc=False))

    async def counts(self) -> tuple[int, ...]:
        """Tickets, the sum of their versions, flow-log entries and urge cards planned (one query)."""
        query = select(
            select(func.count()).select_from(ticket_table).scalar_subquery(),
            select(func.coalesce(func.sum(ticket_table.c.version), 0)).scalar_subquery(),
            select(func.count()).select_from(flow_log).scalar_subquery(),
            select(func.count()).select_from(delivery).where(delivery.c.kind == "urge").scalar_subquery(),
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).one()
        return tuple(int(n) for n in row)

    async def seen(self, ticket_id: int) -> Seen:
        return Seen(await self.ticket(ticket_id), await self.logs(ticket_id), await self.counts())
