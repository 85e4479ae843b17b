"""Due work (table ``due_work``): what the system must do at a time for a ticket that is still where
it was when the work was planned: fire a timer transition, remind or urge the handlers, escalate.

- Rows are written by the ticket repository (store.tickets) in the SAME transaction as the ticket
  change that armed them, from the decision's `TimerArmed` / `SlaArmed` events (`due_rows`): a
  change that rolls back leaves no due work, and a committed one never misses its own. The insert
  is ``ON CONFLICT (dedupe_key) DO NOTHING``; the key is
  ``{ticket_id}:{state_id}:{state_entered_at}:{kind}:{transition_id}:{step}``.
- `claim_due` hands out due rows to one worker: on PostgreSQL they are selected
  ``FOR UPDATE SKIP LOCKED`` and stamped with `claimed_by` / `claimed_until` (the lease) in one
  transaction, so several workers claiming at once never get the same row; on SQLite the write
  transaction holds the single write lock. A row whose lease ran out (its worker died) is due again.
- A claimed row ends `done`, `skipped` (the ticket moved on; nothing to do) or `dead` (given up),
  or is due again later (`retry_later`, `dead` after `MAX_ATTEMPTS`). These only apply while the
  caller still holds the claim (`claimed_by` = the worker): a worker whose lease ran out and whose
  row another worker took learns it from the False they return.

Statuses: ``pending`` -> ``done`` | ``skipped`` | ``dead``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import TextClause

from core.events import Event, SlaArmed, TimerArmed
from store.db import Database, DialectName, cacheable, upsert
from store.errors import StoreError
from store.tables import UTCDateTime, due_work

MAX_ATTEMPTS = 5
MAX_ERROR_CHARS = 2000
PENDING, DONE, SKIPPED, DEAD = "pending", "done", "skipped", "dead"
TIMER, REMIND, URGE, ESCALATE = "timer", "remind", "urge", "escalate"
KINDS = (TIMER, REMIND, URGE, ESCALATE)


@dataclass(frozen=True, slots=True)
class DueWork:
    """One row of ``due_work`` (bot.due_work.DueItem's fields and more)."""

    id: int
    ticket_id: int
    state_id: int
    state_entered_at: datetime
    kind: str
    transition_id: int
    step: int
    dedupe_key: str
    due_at: datetime
    status: str
    attempts: int
    last_error: str
    claimed_by: str
    claimed_until: datetime | None
    created_at: datetime
    done_at: datetime | None


_FIELDS = tuple(c.name for c in due_work.columns)
_COLUMNS = tuple(due_work.c[name] for name in _FIELDS)
_INSERT_KEYS = tuple(name for name in _FIELDS if name != "id")


def _insert_statement(dialect: DialectName) -> TextClause:
    stmt = upsert(dialect, due_work).on_conflict_do_nothing(index_elements=[due_work.c.dedupe_key])
    return cacheable(stmt, dialect, list(_INSERT_KEYS))


_DIALECTS: tuple[DialectName, ...] = ("sqlite", "postgresql")
_INSERT = {d: _insert_statement(d) for d in _DIALECTS}


def dedupe_key(
    ticket_id: int, state_id: int, entered_at: datetime, kind: str, transition_id: int, step: int
) -> str:
    return f"{ticket_id}:{state_id}:{entered_at.isoformat()}:{kind}:{transition_id}:{step}"


def _row(
    ticket_id: int,
    state_id: int,
    entered_at: datetime,
    kind: str,
    due_at: datetime,
    now: datetime,
    *,
    transition_id: int = 0,
    step: int = 0,
) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "state_id": state_id,
        "state_entered_at": entered_at,
        "kind": kind,
        "transition_id": transition_id,
        "step": step,
        "dedupe_key": dedupe_key(ticket_id, state_id, entered_at, kind, transition_id, step),
        "due_at": due_at,
        "status": PENDING,
        "attempts": 0,
        "last_error": "",
        "claimed_by": "",
        "claimed_until": None,
        "created_at": now,
        "done_at": None,
    }


def due_rows(ticket_id: int, events: Iterable[Event], now: datetime) -> list[dict[str, Any]]:
    """The due_work rows a decision's events arm: one per timer, one per SLA step."""
    rows: list[dict[str, Any]] = []
    for e in events:
        if isinstance(e, TimerArmed):
            rows.append(
                _row(
                    ticket_id,
                    e.state_id,
                    e.state_entered_at,
                    TIMER,
                    e.due_at,
                    now,
                    transition_id=e.transition_id,
                )
            )
        elif isinstance(e, SlaArmed):
            at = e.state_entered_at
            for step, due_at in enumerate(e.reminds):
                rows.append(_row(ticket_id, e.state_id, at, REMIND, due_at, now, step=step))
            if e.urge_at is not None:
                rows.append(_row(ticket_id, e.state_id, at, URGE, e.urge_at, now))
            if e.escalate_at is not None:
                rows.append(_row(ticket_id, e.state_id, at, ESCALATE, e.escalate_at, now))
    return rows


async def insert_due_rows(
    conn: AsyncConnection, dialect: DialectName, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert inside the caller's transaction (a dedupe_key already present is skipped)."""
    statement = _INSERT[dialect]
    for row in rows:
        await conn.execute(statement, row)


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def _item(row: Any) -> DueWork:
    return DueWork(**{name: row._mapping[name] for name in _FIELDS})


class SqlDueWork:
    """Claims and outcomes of due work over a Database (SQLite or PostgreSQL); see the module doc."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim_due(self, worker: str, now: datetime, limit: int, lease: timedelta) -> list[DueWork]:
        """Up to `limit` pending rows due at `now` and not claimed (or whose claim ran out), earliest
        first, now claimed by `worker` until `now + lease`."""
        _aware("now", now)
        if not worker:
            raise StoreError("a claim needs a worker name")
        if limit < 1:
            return []
        c = due_work.c
        free = or_(c.claimed_until.is_(None), c.claimed_until <= now)
        pick = (
            select(c.id)
            .where(c.status == PENDING, c.due_at <= now, free)
            .order_by(c.due_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # rendered on PostgreSQL; SQLite has one writer
        )
        async with self._db.write() as conn:
            ids = [int(i) for i in (await conn.execute(pick)).scalars()]
            if not ids:
                return []
            rows = await conn.execute(
                update(due_work)
                .where(c.id.in_(ids), c.status == PENDING)
                .values(claimed_by=worker, claimed_until=now + lease)
                .returning(*_COLUMNS)
            )
            items = [_item(r) for r in rows]
        return sorted(items, key=lambda i: (i.due_at, i.id))

    async def _finish(self, id: int, worker: str, status: str, now: datetime, note: str) -> bool:
        _aware("now", now)
        c = due_work.c
        async with self._db.write() as conn:
            result = await conn.execute(
                update(due_work)
                .where(c.id == id, c.status == PENDING, c.claimed_by == worker)
                .values(
                    status=status,
                    done_at=now,
                    claimed_until=None,
                    last_error=note[:MAX_ERROR_CHARS],
                )
            )
        return bool(result.rowcount)

    async def mark_done(self, id: int, worker: str, now: datetime) -> bool:
        """Done. False if `worker` no longer holds the claim (nothing changed)."""
        return await self._finish(id, worker, DONE, now, "")

    async def mark_skipped(self, id: int, worker: str, reason: str, now: datetime) -> bool:
        """Nothing to do (the ticket left the state, ended, has nobody to tell...): `reason` is kept."""
        return await self._finish(id, worker, SKIPPED, now, reason)

    async def mark_dead(self, id: int, worker: str, error: str, now: datetime) -> bool:
        """Given up: kept with the error for inspection."""
        return await self._finish(id, worker, DEAD, now, error)

    async def retry_later(self, id: int, worker: str, error: str, retry_at: datetime) -> str | None:
        """A failed attempt: attempts + 1 and due again at `retry_at`, or `dead` once `MAX_ATTEMPTS`
        attempts failed. Returns the status afterwards; None if `worker` no longer holds the claim."""
        _aware("retry_at", retry_at)
        c = due_work.c
        give_up = c.attempts + 1 >= MAX_ATTEMPTS
        at = literal(retry_at, UTCDateTime())
        stmt = (
            update(due_work)
            .where(c.id == id, c.status == PENDING, c.claimed_by == worker)
            .values(
                attempts=c.attempts + 1,
                last_error=error[:MAX_ERROR_CHARS],
                status=case((give_up, DEAD), else_=PENDING),
                due_at=case((give_up, c.due_at), else_=at),
                done_at=case((give_up, at), else_=None),
                claimed_by="",
                claimed_until=None,
            )
            .returning(c.status)
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else str(row.status)

    async def for_ticket(self, ticket_id: int) -> list[DueWork]:
        """Every row of the ticket, earliest due first."""
        c = due_work.c
        query = select(*_COLUMNS).where(c.ticket_id == ticket_id).order_by(c.due_at, c.id)
        async with self._db.read() as conn:
            return [_item(r) for r in await conn.execute(query)]

    async def pending_count(self, now: datetime | None = None) -> int:
        """Pending rows (due at `now`, if given)."""
        c = due_work.c
        where = c.status == PENDING
        if now is not None:
            where = and_(where, c.due_at <= _aware("now", now))
        async with self._db.read() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(due_work).where(where))).scalar_one()
            )
