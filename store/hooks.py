"""Hook calls (core.hook_calls.HookCalls) over the ``hook_call`` table.

- `record_hook_calls` is called by the ticket store inside the ticket's own transaction: one
  "pending" row per HookRequested event of the decision (due at once), after marking any open call
  of the same ticket and state "failed" (superseded). The hook token is never stored.
- `SqlHookCalls.claim_due` claims due rows for one worker (store.claims: ``FOR UPDATE SKIP
  LOCKED`` on PostgreSQL, one writer on SQLite), oldest due first. A claim whose claimed_until has
  passed is claimable again (its worker died).
- Every other change is applied only while the worker still holds the claim (``claimed_by``), and
  says whether it was applied.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events import Event, HookRequested
from core.hook_calls import DEAD, DONE, FAILED, MAX_ATTEMPTS, OPEN, PENDING, WAITING, HookCall
from store.claims import Claims, aware, error_text
from store.db import Database, DialectName, upsert
from store.tables import hook_call

SUPERSEDED = "superseded by call "

_FIELDS = tuple(f.name for f in dataclasses.fields(HookCall))
_COLUMNS = tuple(hook_call.c[name] for name in _FIELDS)


def _call(row: Any) -> HookCall:
    return HookCall(**row._mapping)


def new_call_id() -> str:
    return secrets.token_urlsafe(16)


async def record_hook_calls(
    conn: AsyncConnection,
    dialect: DialectName,
    ticket_id: int,
    ticket_version: int,
    events: Iterable[Event],
    now: datetime,
) -> list[str]:
    """Inside the ticket's transaction: a "pending" hook call per HookRequested in `events` (an open
    call of the same ticket and state is superseded). Returns the new call ids."""
    c = hook_call.c
    made: list[str] = []
    for event in events:
        if not isinstance(event, HookRequested):
            continue
        call_id = new_call_id()
        await conn.execute(
            update(hook_call)
            .where(c.ticket_id == ticket_id, c.state_id == event.state_id, c.status.in_(OPEN))
            .values(status=FAILED, last_error=SUPERSEDED + call_id, claimed_by="", claimed_until=None)
        )
        stmt = upsert(dialect, hook_call).on_conflict_do_nothing(index_elements=[c.dedupe_key])
        await conn.execute(
            stmt,
            {
                "ticket_id": ticket_id,
                "state_id": event.state_id,
                "ticket_version": ticket_version,
                "call_id": call_id,
                "url": event.hook.url,
                "wait": event.hook.wait,
                "dedupe_key": f"{ticket_id}:{ticket_version}:{event.state_id}",
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": "",
                "response_status": None,
                "claimed_by": "",
                "claimed_until": None,
                "created_at": now,
                "called_at": None,
                "answered_at": None,
            },
        )
        made.append(call_id)
    return made


class SqlHookCalls:
    """core.hook_calls.HookCalls over a Database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._claims = Claims(
            db,
            hook_call,
            status="status",
            attempts="attempts",
            open=OPEN,
            order=("next_attempt_at", "id"),
            columns=_COLUMNS,
            max_attempts=MAX_ATTEMPTS,
            pending=PENDING,
            dead=DEAD,
        )

    async def _select(self, where: Any, *, newest_first: bool = False) -> list[HookCall]:
        order = (hook_call.c.id.desc(),) if newest_first else (hook_call.c.id,)
        async with self._db.read() as conn:
            return [_call(r) for r in await conn.execute(select(*_COLUMNS).where(where).order_by(*order))]

    # ------------------------------------------------------------------------------ claims

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: float) -> Sequence[HookCall]:
        return [_call(r) for r in await self._claims.claim(worker, now, limit, lease)]

    async def claim_waiting(self, id: int, worker: str, now: datetime, lease: float) -> bool:
        aware("now", now)
        c = hook_call.c
        return await self._claims.update(
            and_(c.id == id, c.status == WAITING, self._claims.free(now)),
            {"claimed_by": worker, "claimed_until": now + timedelta(seconds=lease)},
        )

    async def release(self, id: int, worker: str) -> bool:
        return await self._claims.owned(id, worker, {})

    # ------------------------------------------------------------------------------ outcomes

    async def mark_called(self, id: int, worker: str, now: datetime) -> bool:
        aware("now", now)
        return await self._claims.owned(id, worker, {"called_at": now}, keep_claim=True)

    async def mark_waiting(self, id: int, worker: str, now: datetime, response_status: int) -> bool:
        aware("now", now)
        values = {"status": WAITING, "response_status": response_status, "last_error": ""}
        return await self._claims.owned(id, worker, values)

    async def mark_done(
        self, id: int, worker: str, now: datetime, *, response_status: int | None = None, note: str = ""
    ) -> bool:
        aware("now", now)
        values: dict[str, Any] = {"status": DONE, "answered_at": now, "last_error": error_text(note)}
        if response_status is not None:
            values["response_status"] = response_status
        return await self._claims.owned(id, worker, values)

    async def mark_failed(
        self, id: int, worker: str, now: datetime, error: str, *, response_status: int | None = None
    ) -> bool:
        aware("now", now)
        values: dict[str, Any] = {"status": FAILED, "answered_at": now, "last_error": error_text(error)}
        if response_status is not None:
            values["response_status"] = response_status
        return await self._claims.owned(id, worker, values)

    async def retry_later(
        self, id: int, worker: str, error: str, at: datetime, *, response_status: int | None = None
    ) -> str | None:
        return await self._claims.retry_later(id, worker, error, at, response_status=response_status)

    async def mark_dead(self, id: int, worker: str, now: datetime, error: str) -> bool:
        aware("now", now)
        return await self._claims.owned(
            id, worker, {"status": DEAD, "answered_at": now, "last_error": error_text(error)}
        )

    # ------------------------------------------------------------------------------ reads

    async def waiting_for(self, ticket_id: int, state_id: int) -> HookCall | None:
        c = hook_call.c
        found = await self._select(
            and_(c.ticket_id == ticket_id, c.state_id == state_id, c.status == WAITING), newest_first=True
        )
        return found[0] if found else None

    async def by_call_id(self, call_id: str) -> HookCall | None:
        found = await self._select(hook_call.c.call_id == call_id)
        return found[0] if found else None

    async def get(self, id: int) -> HookCall | None:
        found = await self._select(hook_call.c.id == id)
        return found[0] if found else None

    async def for_ticket(self, ticket_id: int) -> Sequence[HookCall]:
        return await self._select(hook_call.c.ticket_id == ticket_id)
