"""Webhook calls (core.webhook_calls) over the ``webhook_call`` table.

- `record_webhooks` is called by the ticket store inside the ticket's own transaction: for a work
  order (core.workorder_changes), one "pending" row per (status the change causes, subscribed app),
  due at once. Its ``dedupe_key`` is ``<app>:<ticket id>:<ticket version, 10 digits>.<position in
  the change>:<status>`` and the insert does nothing on a key already there, so writing the same
  change again (a replay) adds nothing; sorting one app's keys of one ticket gives the order of
  the changes.
- `SqlWebhookCalls.claim_due` claims due rows for one worker (store.claims: ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL, one writer on SQLite). A claim whose claimed_until has passed is
  claimable again. A row is not claimable while an earlier row of the same app and ticket (a
  smaller dedupe_key) is still "pending": one app gets the changes of one work order strictly in
  order, one at a time.
- Every outcome is applied only while the worker still holds the claim, and says whether it was.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.decision import Decision
from core.ticket import Ticket
from core.webhook_calls import DEAD, MAX_ATTEMPTS, PENDING, SENT, STATES, WebhookCall, WebhookRoutes, envelope
from core.workorder_changes import changes_of
from store.claims import UNCLAIMED, Claims, aware, error_text
from store.db import Database, DialectName, upsert
from store.errors import StoreError
from store.tables import webhook_call

_FIELDS = tuple(f.name for f in dataclasses.fields(WebhookCall))
_COLUMNS = tuple(webhook_call.c[name] for name in _FIELDS)


def _call(row: Any) -> WebhookCall:
    values = dict(row._mapping)
    values["payload"] = dict(values["payload"] or {})
    return WebhookCall(**values)


def dedupe_key(app: str, ticket_id: int, version: int, position: int, status: str) -> str:
    return f"{app}:{ticket_id}:{version:010d}.{position}:{status}"


async def record_webhooks(
    conn: AsyncConnection,
    dialect: DialectName,
    routes: WebhookRoutes,
    ticket: Ticket,
    decision: Decision,
    version: int,
) -> list[str]:
    """Inside the ticket's transaction: a "pending" webhook call per status the change causes and
    app subscribed to the ticket's workflow. `ticket` is the stored snapshot (id set), `version`
    the version the change gave it. Returns the envelope ids written (a key already there is
    skipped by the database, so a replay writes nothing)."""
    subscribers = routes.for_workflow(ticket.workflow_id)
    if not subscribers:
        return []
    changes = changes_of(ticket, decision.events, decision.logs)
    if not changes:
        return []
    now = ticket.updated_at
    create_time = int(now.timestamp())
    rows: list[dict[str, Any]] = []
    for position, change in enumerate(changes):
        for sub in subscribers:
            call_id = str(uuid.uuid4())
            rows.append(
                {
                    "id": call_id,
                    "app": sub.app,
                    "url": sub.url,
                    "ticket_id": ticket.id,
                    "status": change.status,
                    "payload": envelope(call_id, routes.corp_id, create_time, change.status, change.msg_data),
                    "dedupe_key": dedupe_key(sub.app, ticket.id, version, position, change.status),
                    "state": PENDING,
                    "retry_count": 0,
                    "next_attempt_at": now,
                    "last_error": "",
                    "response_status": None,
                    "claimed_by": "",
                    "claimed_until": None,
                    "created_at": now,
                    "sent_at": None,
                }
            )
    stmt = upsert(dialect, webhook_call).on_conflict_do_nothing(index_elements=[webhook_call.c.dedupe_key])
    await conn.execute(stmt, rows)
    return [r["id"] for r in rows]


class SqlWebhookCalls:
    """core.webhook_calls.WebhookCalls over a Database (SQLite or PostgreSQL), and the operations
    side (`list_calls`, `find`, `requeue`) of `ticketbot outbox ... --kind webhook`."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._claims = Claims(
            db,
            webhook_call,
            status="state",
            attempts="retry_count",
            open=(PENDING,),
            order=("next_attempt_at", "created_at", "dedupe_key"),
            columns=_COLUMNS,
            max_attempts=MAX_ATTEMPTS,
            pending=PENDING,
            dead=DEAD,
        )

    # ------------------------------------------------------------------------------ claims

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: float) -> Sequence[WebhookCall]:
        c = webhook_call.c
        earlier = webhook_call.alias("earlier")
        waits = exists().where(
            earlier.c.app == c.app,
            earlier.c.ticket_id == c.ticket_id,
            earlier.c.state == PENDING,
            earlier.c.dedupe_key < c.dedupe_key,
        )
        return [_call(r) for r in await self._claims.claim(worker, now, limit, lease, ~waits)]

    # ------------------------------------------------------------------------------ outcomes

    async def mark_sent(self, id: str, worker: str, now: datetime, response_status: int) -> bool:
        aware("now", now)
        values = {"state": SENT, "sent_at": now, "response_status": response_status, "last_error": ""}
        return await self._claims.owned(id, worker, values)

    async def retry_later(
        self, id: str, worker: str, error: str, at: datetime, *, response_status: int | None = None
    ) -> str | None:
        return await self._claims.retry_later(id, worker, error, at, response_status=response_status)

    async def mark_dead(
        self,
        id: str,
        worker: str,
        now: datetime,
        error: str,
        *,
        response_status: int | None = None,
        attempted: bool = True,
    ) -> bool:
        aware("now", now)
        c = webhook_call.c
        values: dict[str, Any] = {
            "state": DEAD,
            "last_error": error_text(error),
            "response_status": response_status,
        }
        if attempted:
            values["retry_count"] = c.retry_count + 1
        return await self._claims.owned(id, worker, values)

    # ------------------------------------------------------------------------------ operations

    async def _select(self, where: Any, order: Sequence[Any], limit: int | None = None) -> list[WebhookCall]:
        query = select(*_COLUMNS).where(where).order_by(*order)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.read() as conn:
            return [_call(r) for r in await conn.execute(query)]

    async def list_calls(
        self, *, state: str | None = None, ticket_id: int | None = None, limit: int = 50
    ) -> list[WebhookCall]:
        """Calls newest first (created_at, then dedupe_key), of one state and/or one ticket."""
        if state is not None and state not in STATES:
            raise StoreError(f"unknown webhook call state {state!r} (known: {', '.join(STATES)})")
        if limit < 1:
            return []
        c = webhook_call.c
        where: list[Any] = []
        if state is not None:
            where.append(c.state == state)
        if ticket_id is not None:
            where.append(c.ticket_id == ticket_id)
        return await self._select(and_(true(), *where), (c.created_at.desc(), c.dedupe_key.desc()), limit)

    async def find(self, ids: Sequence[str]) -> list[WebhookCall]:
        """The calls of `ids` that exist, oldest first."""
        if not ids:
            return []
        c = webhook_call.c
        return await self._select(c.id.in_(sorted(set(ids))), (c.created_at, c.dedupe_key))

    async def for_ticket(self, ticket_id: int) -> list[WebhookCall]:
        """Every call of the ticket, oldest first (the order of the changes)."""
        c = webhook_call.c
        return await self._select(c.ticket_id == ticket_id, (c.created_at, c.dedupe_key))

    async def requeue(self, ids: Sequence[str], now: datetime) -> list[str]:
        """Put the "dead" calls of `ids` back in the queue: "pending", due now, retry_count 0,
        unclaimed (last_error is kept until the next attempt). Others are left alone. Returns the
        ids requeued, sorted."""
        aware("now", now)
        if not ids:
            return []
        c = webhook_call.c
        stmt = (
            update(webhook_call)
            .where(c.id.in_(sorted(set(ids))), c.state == DEAD)
            .values(state=PENDING, next_attempt_at=now, retry_count=0, **UNCLAIMED)
            .returning(c.id)
        )
        async with self._db.write() as conn:
            return sorted(str(r.id) for r in await conn.execute(stmt))
