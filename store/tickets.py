"""The ticket repository: core.ports.TicketStore / TicketTx over SQL.

One `transaction()` is one database transaction (on SQLite the single write connection, held
from BEGIN IMMEDIATE; on PostgreSQL READ COMMITTED). A save writes, atomically: the ticket row
(optimistic `version` check on update), its new flow logs, its ticket_user rows, one outbox
row per domain event, one hook_call row per hook the change asks for (store.hooks), the due
work its timer / SLA events arm (store.due_work) and, for a work order, one webhook_call row per
work_order_change webhook it causes to each subscribed app (store.webhooks). A new work order's
relation (what it is about, e.g. its customer) is written with its ticket row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import TextualSelect

from core.decision import Decision
from core.errors import RequestTaken
from core.events import event_name, event_payload
from core.ticket import SYSTEM_USER, FlowLog, Ticket
from core.webhook_calls import WebhookRoutes
from store.db import Database, DialectName, cacheable, upsert
from store.due_work import due_rows, insert_due_rows
from store.errors import StoreError
from store.hooks import record_hook_calls
from store.rows import log_from_row, log_values, ticket_from_row, ticket_values
from store.tables import flow_log, outbox, sn_counter, ticket, ticket_request, ticket_user, work_order
from store.webhooks import record_webhooks

if TYPE_CHECKING:
    from core.ports import TicketStore, TicketTx

SN_MIN_DIGITS = 4

# The hot statements, built once: their cache keys are memoized on the objects, so a call pays
# neither construction nor cache-key generation. Values are always bound parameters.
_GET = select(ticket).where(ticket.c.id == bindparam("ticket_id"))
_GET_FOR_UPDATE = _GET.with_for_update()
_INSERT_TICKET = insert(ticket).returning(ticket.c.id)
_UPDATE_TICKET = (
    update(ticket)
    .where(ticket.c.id == bindparam("_ticket_id"), ticket.c.version == bindparam("_expected_version"))
    .values(version=ticket.c.version + 1)
)
_INSERT_LOGS = insert(flow_log)
_INSERT_OUTBOX = insert(outbox)
_CREATED_FOR = (
    select(ticket)
    .join(ticket_request, ticket_request.c.ticket_id == ticket.c.id)
    .where(ticket_request.c.request_key == bindparam("request_key"))
)


def _sn_upsert(dialect: DialectName) -> TextualSelect:
    stmt = upsert(dialect, sn_counter).on_conflict_do_update(
        index_elements=[sn_counter.c.prefix, sn_counter.c.day],
        set_={"value": sn_counter.c.value + 1},
    )
    returning = stmt.returning(sn_counter.c.value)
    return cacheable(returning, dialect, ["prefix", "day", "value"]).columns(sn_counter.c.value)


def _request_insert(dialect: DialectName) -> TextualSelect:
    """Record a request key unless it is there; RETURNING gives nothing when it was (on PostgreSQL
    a concurrent insert of the same key waits for the other transaction to end first)."""
    stmt = upsert(dialect, ticket_request).on_conflict_do_nothing(
        index_elements=[ticket_request.c.request_key]
    )
    returning = stmt.returning(ticket_request.c.request_key)
    return cacheable(returning, dialect, ["request_key", "ticket_id", "command", "created_at"]).columns(
        ticket_request.c.request_key
    )


def _users_upsert(dialect: DialectName) -> TextClause:
    stmt = upsert(dialect, ticket_user)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ticket_user.c.ticket_id, ticket_user.c.username],
        # worked is sticky: once someone acted on a ticket, it stays in their "worked" list
        set_={
            "is_current": stmt.excluded.is_current,
            "worked": or_(ticket_user.c.worked, stmt.excluded.worked),
        },
    )
    return cacheable(stmt, dialect, ["ticket_id", "username", "is_current", "worked"])


_DIALECTS: tuple[DialectName, ...] = ("sqlite", "postgresql")
_SN_UPSERT = {d: _sn_upsert(d) for d in _DIALECTS}
_USERS_UPSERT = {d: _users_upsert(d) for d in _DIALECTS}
_REQUEST_INSERT = {d: _request_insert(d) for d in _DIALECTS}


def format_sn(prefix: str, day: str, value: int) -> str:
    """``{prefix}_{YYYYMMDD}{NNNN}``: the counter is zero-padded to 4 digits and grows beyond 9999."""
    return f"{prefix}_{day}{value:0{SN_MIN_DIGITS}d}"


class SqlTicketTx:
    """TicketTx over one open connection (inside a transaction)."""

    def __init__(
        self, conn: AsyncConnection, dialect: DialectName, webhooks: WebhookRoutes | None = None
    ) -> None:
        self._conn = conn
        self._dialect = dialect
        self._webhooks = webhooks

    @property
    def connection(self) -> AsyncConnection:
        return self._conn

    # ----------------------------------------------------------------------------------- reads

    async def get(self, ticket_id: int, *, for_update: bool = False) -> Ticket | None:
        """The ticket, deleted or not (``is_deleted`` is on the snapshot); None if unknown.
        `for_update` takes the row lock on PostgreSQL (SQLite has one writer at a time anyway)."""
        result = await self._conn.execute(_GET_FOR_UPDATE if for_update else _GET, {"ticket_id": ticket_id})
        row = result.mappings().first()
        return None if row is None else ticket_from_row(row)

    async def children(self, parent_ticket_id: int, parent_state_id: int) -> Sequence[Ticket]:
        """Sub-tickets created from a parent's state, oldest first (deleted ones included)."""
        result = await self._conn.execute(
            select(ticket)
            .where(
                ticket.c.parent_ticket_id == parent_ticket_id,
                ticket.c.parent_ticket_state_id == parent_state_id,
            )
            .order_by(ticket.c.id)
        )
        return [ticket_from_row(r) for r in result.mappings()]

    async def last_log(self, ticket_id: int) -> FlowLog | None:
        result = await self._conn.execute(
            select(flow_log).where(flow_log.c.ticket_id == ticket_id).order_by(flow_log.c.id.desc()).limit(1)
        )
        row = result.mappings().first()
        return None if row is None else log_from_row(row)

    async def created_for(self, request_key: str) -> Ticket | None:
        """The ticket `request_key` (a chat message's platform and MsgId) created or changed, if any."""
        result = await self._conn.execute(_CREATED_FOR, {"request_key": request_key})
        row = result.mappings().first()
        return None if row is None else ticket_from_row(row)

    # ----------------------------------------------------------------------------------- writes

    async def record_request(self, request_key: str, ticket_id: int, command: str, at: datetime) -> None:
        """Record that `request_key` created (command "create") or changed the ticket; raises
        RequestTaken if another transaction recorded the key first (this one must roll back)."""
        params = {"request_key": request_key, "ticket_id": ticket_id, "command": command, "created_at": at}
        if (await self._conn.execute(_REQUEST_INSERT[self._dialect], params)).first() is None:
            raise RequestTaken(f"request {request_key!r} was carried out already")

    async def insert(
        self,
        decision: Decision,
        sn_prefix: str,
        *,
        request_key: str = "",
        relation: tuple[int, str] | None = None,
    ) -> Ticket:
        t = decision.ticket
        if t.id != 0:
            raise StoreError(f"insert needs a new ticket (id 0), got id {t.id}")
        if not sn_prefix:
            raise StoreError("the SN prefix must not be empty")
        if relation is not None and (relation[0] < 0 or not relation[1] or len(relation[1]) > 128):
            raise StoreError("a relation needs relation_type >= 0 and a relation_id of 1 to 128 characters")
        sn = await self._next_sn(sn_prefix, t.created_at)
        values = ticket_values(t)
        values["sn"] = sn
        values["version"] = 1
        result = await self._conn.execute(_INSERT_TICKET, values)
        ticket_id = int(result.scalar_one())
        if request_key:
            await self.record_request(request_key, ticket_id, "create", t.created_at)
        if relation is not None:
            await self._conn.execute(
                insert(work_order).values(
                    ticket_id=ticket_id,
                    relation_type=relation[0],
                    relation_id=relation[1],
                    created_at=t.created_at,
                    updated_at=t.created_at,
                )
            )
        stored = dataclasses.replace(t, id=ticket_id, sn=sn, version=1)
        await self._append(stored, decision, 1)
        return stored

    async def update(self, decision: Decision, expected_version: int) -> bool:
        t = decision.ticket
        if t.id <= 0:
            raise StoreError(f"update needs a stored ticket id, got {t.id}")
        values = ticket_values(t)
        del values["created_at"]  # set once, by insert
        values["_ticket_id"] = t.id
        values["_expected_version"] = expected_version
        result = await self._conn.execute(_UPDATE_TICKET, values)
        if result.rowcount != 1:
            return False
        await self._append(t, decision, expected_version + 1)
        return True

    # ----------------------------------------------------------------------------------- helpers

    async def _next_sn(self, prefix: str, created_at: datetime) -> str:
        day = created_at.astimezone(UTC).strftime("%Y%m%d")
        params = {"prefix": prefix, "day": day, "value": 1}
        value = (await self._conn.execute(_SN_UPSERT[self._dialect], params)).scalar_one()
        return format_sn(prefix, day, int(value))

    async def _append(self, t: Ticket, decision: Decision, version: int) -> None:
        logs = [_log_row(log, t.id) for log in decision.logs]
        if logs:
            await self._conn.execute(_INSERT_LOGS, logs)
        await self._refresh_users(t, decision.logs)
        events = [
            {
                "ticket_id": t.id,
                "event": event_name(e),
                "payload": event_payload(e),
                "created_at": t.updated_at,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": t.updated_at,
                "last_error": "",
                "dedupe_key": None,
            }
            for e in decision.events
        ]
        if events:
            await self._conn.execute(_INSERT_OUTBOX, events)
        due = due_rows(t.id, decision.events, t.updated_at)  # timers and SLA steps armed by the change
        if due:
            await insert_due_rows(self._conn, self._dialect, due)
        # every hook call with the change that asks for it (the event stays in the outbox too)
        await record_hook_calls(self._conn, self._dialect, t.id, version, decision.events, t.updated_at)
        # every work_order_change webhook the change causes, to each app subscribed (store.webhooks)
        if self._webhooks is not None:
            await record_webhooks(self._conn, self._dialect, self._webhooks, t, decision, version)

    async def _refresh_users(self, t: Ticket, logs: Iterable[FlowLog]) -> None:
        await self._conn.execute(_USERS_UPSERT[self._dialect], user_rows(t, logs))


def _log_row(log: FlowLog, ticket_id: int) -> dict[str, Any]:
    if log.ticket_id not in (0, ticket_id):
        raise StoreError(f"a flow log for ticket {log.ticket_id} in a decision about ticket {ticket_id}")
    return log_values(log, ticket_id)


def user_rows(t: Ticket, logs: Iterable[FlowLog]) -> list[dict[str, Any]]:
    """The ticket_user rows to upsert: one per person involved (creator, relation, current
    handlers, anyone who acted now). `is_current` = may act now (the ticket's `handlers`: add-node
    target while consulting, participants who have not voted, nobody once ended); `worked` = acted
    in these logs (the upsert ORs it with the stored value, so it is sticky)."""
    handlers = set(t.handlers)
    actors = {log.actor for log in logs if log.actor and log.actor != SYSTEM_USER}
    names = {t.creator, *t.relation, *handlers, *actors} - {"", SYSTEM_USER}
    return [
        {"ticket_id": t.id, "username": name, "is_current": name in handlers, "worked": name in actors}
        for name in sorted(names)
    ]


class SqlTicketStore:
    """core.ports.TicketStore over a Database."""

    def __init__(self, db: Database, webhooks: WebhookRoutes | None = None) -> None:
        """`webhooks`: who receives work_order_change webhooks (None: nobody; none are written)."""
        self._db = db
        self._webhooks = webhooks

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlTicketTx]:
        async with self._db.write() as conn:
            yield SqlTicketTx(conn, self._db.dialect, self._webhooks)


if TYPE_CHECKING:

    def _conforms(store: SqlTicketStore, tx: SqlTicketTx) -> tuple[TicketStore, TicketTx]:
        return store, tx
