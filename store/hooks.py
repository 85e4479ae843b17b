"""Hook calls (core.hook_calls.HookCalls) over the ``hook_call`` table.

- `record_hook_calls` is called by the ticket store inside the ticket's own transaction: one
  "pending" row per HookRequested event of the decision (due at once), after marking any open call
  of the same ticket and state "failed" (superseded). The hook token is never stored.
- `SqlHookCalls.claim_due` claims due rows for one worker in ONE write transaction: on PostgreSQL
  ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE ... SET claimed_by, claimed_until``, so two
  processes claiming at once never get the same row; SQLite has one writer at a time (BEGIN
  IMMEDIATE), so the same statements are enough there. A claim whose claimed_until has passed is
  claimable again (its worker died).
- Every other change is applied only while the worker still holds the claim (``claimed_by``), and
  says whether it was applied.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.events import Event, HookRequested
from core.hook_calls import DEAD, DONE, FAILED, MAX_ATTEMPTS, OPEN, PENDING, WAITING, HookCall
from store.db import Database, DialectName, upsert
from store.errors import StoreError
from store.tables import UTCDateTime, hook_call

MAX_ERROR_CHARS = 2000
SUPERSEDED = "superseded by call "

_FIELDS = tuple(f.name for f in dataclasses.fields(HookCall))
_COLUMNS = tuple(hook_call.c[name] for name in _FIELDS)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def _error(text: str) -> str:
    return text[:MAX_ERROR_CHARS]


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

    async def _select(self, where: Any, *, newest_first: bool = False) -> list[HookCall]:
        order = (hook_call.c.id.desc(),) if newest_first else (hook_call.c.id,)
        async with self._db.read() as conn:
            return [_call(r) for r in await conn.execute(select(*_COLUMNS).where(where).order_by(*order))]

    # ------------------------------------------------------------------------------ claims

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: float) -> Sequence[HookCall]:
        _aware("now", now)
        if limit < 1:
            return []
        if not worker:
            raise StoreError("a claim needs a worker name")
        c = hook_call.c
        free = or_(c.claimed_until.is_(None), c.claimed_until <= now)
        pick = (
            select(c.id)
            .where(c.status == PENDING, c.next_attempt_at <= now, free)
            .order_by(c.next_attempt_at, c.id)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        until = now + timedelta(seconds=lease)
        async with self._db.write() as conn:
            ids = [int(r.id) for r in await conn.execute(pick)]
            if not ids:
                return []
            rows = await conn.execute(
                update(hook_call)
                .where(c.id.in_(ids))
                .values(claimed_by=worker, claimed_until=until)
                .returning(*_COLUMNS)
            )
            claimed = [_call(r) for r in rows]
        return sorted(claimed, key=lambda h: (h.next_attempt_at, h.id))

    async def claim_waiting(self, id: int, worker: str, now: datetime, lease: float) -> bool:
        _aware("now", now)
        c = hook_call.c
        free = or_(c.claimed_until.is_(None), c.claimed_until <= now)
        return await self._apply(
            and_(c.id == id, c.status == WAITING, free),
            {"claimed_by": worker, "claimed_until": now + timedelta(seconds=lease)},
        )

    async def release(self, id: int, worker: str) -> bool:
        return await self._owned(id, worker, {})

    # ------------------------------------------------------------------------------ outcomes

    async def _apply(self, where: Any, values: dict[str, Any]) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(update(hook_call).where(where).values(**values))
        return bool(result.rowcount)

    async def _owned(self, id: int, worker: str, values: dict[str, Any], *, keep_claim: bool = False) -> bool:
        c = hook_call.c
        if not keep_claim:
            values = {**values, "claimed_by": "", "claimed_until": None}
        return await self._apply(and_(c.id == id, c.claimed_by == worker, c.status.in_(OPEN)), values)

    async def mark_called(self, id: int, worker: str, now: datetime) -> bool:
        _aware("now", now)
        return await self._owned(id, worker, {"called_at": now}, keep_claim=True)

    async def mark_waiting(self, id: int, worker: str, now: datetime, response_status: int) -> bool:
        _aware("now", now)
        values = {"status": WAITING, "response_status": response_status, "last_error": ""}
        return await self._owned(id, worker, values)

    async def mark_done(
        self, id: int, worker: str, now: datetime, *, response_status: int | None = None, note: str = ""
    ) -> bool:
        _aware("now", now)
        values: dict[str, Any] = {"status": DONE, "answered_at": now, "last_error": _error(note)}
        if response_status is not None:
            values["response_status"] = response_status
        return await self._owned(id, worker, values)

    async def mark_failed(
        self, id: int, worker: str, now: datetime, error: str, *, response_status: int | None = None
    ) -> bool:
        _aware("now", now)
        values: dict[str, Any] = {"status": FAILED, "answered_at": now, "last_error": _error(error)}
        if response_status is not None:
            values["response_status"] = response_status
        return await self._owned(id, worker, values)

    async def retry_later(
        self, id: int, worker: str, error: str, at: datetime, *, response_status: int | None = None
    ) -> str | None:
        _aware("at", at)
        c = hook_call.c
        give_up = c.attempts + 1 >= MAX_ATTEMPTS
        stmt = (
            update(hook_call)
            .where(c.id == id, c.claimed_by == worker, c.status == PENDING)
            .values(
                attempts=c.attempts + 1,
                status=case((give_up, DEAD), else_=PENDING),
                next_attempt_at=case((give_up, c.next_attempt_at), else_=_literal_ts(at)),
                last_error=_error(error),
                response_status=response_status,
                claimed_by="",
                claimed_until=None,
            )
            .returning(c.status)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else str(row.status)

    async def mark_dead(self, id: int, worker: str, now: datetime, error: str) -> bool:
        _aware("now", now)
        return await self._owned(
            id, worker, {"status": DEAD, "answered_at": now, "last_error": _error(error)}
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


def _literal_ts(value: datetime) -> Any:
    """`value` as a bound parameter of the column type (aware -> UTC), for use inside CASE."""
    return literal(value, UTCDateTime())
