"""Claims on the rows of a call table (``hook_call``, ``webhook_call``): due rows are handed to one
worker at a time for a lease, and every outcome is applied only while that worker still holds
the claim.

A claimable table has ``id``, ``next_attempt_at``, ``claimed_by``, ``claimed_until``, a status
column (its open statuses, among them "pending") and a counter of failed attempts.

- `claim` claims due rows for one worker in ONE write transaction: on PostgreSQL ``SELECT ... FOR
  UPDATE SKIP LOCKED`` then ``UPDATE ... SET claimed_by, claimed_until``, so two processes
  claiming at once never get the same row; SQLite has one writer at a time (BEGIN IMMEDIATE), so
  the same statements are enough there. A row is due when it is "pending", its next_attempt_at
  has come and it is not claimed, or its claim has run out (its worker died). The rows come back
  in the claim order.
- `owned` applies values to a row only while `worker` holds its claim and the row is open, and
  releases the claim (unless kept); `retry_later` counts a failed attempt the same way: due again
  at `at`, or "dead" once `max_attempts` attempts failed. Both say whether they were applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, and_, case, literal, or_, select, update

from store.db import Database
from store.errors import StoreError
from store.tables import UTCDateTime

MAX_ERROR_CHARS = 2000
UNCLAIMED: dict[str, Any] = {"claimed_by": "", "claimed_until": None}  # a finished claim


def aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def error_text(text: str) -> str:
    """An error as stored (at most MAX_ERROR_CHARS characters)."""
    return text[:MAX_ERROR_CHARS]


class Claims:
    """The claims on one table of `db`. `status` and `attempts` name its status column and its
    failed attempts counter; `open` are the statuses a claimed row may be finished from; `order`
    names the columns of the claim order; `columns` are what `claim` returns (the `order` columns
    among them)."""

    def __init__(
        self,
        db: Database,
        table: Table,
        *,
        status: str,
        attempts: str,
        open: Sequence[str],
        order: Sequence[str],
        columns: Sequence[Any],
        max_attempts: int,
        pending: str = "pending",
        dead: str = "dead",
    ) -> None:
        self._db = db
        self._table = table
        self._status = status
        self._attempts = attempts
        self._open = tuple(open)
        self._order = tuple(order)
        self._columns = tuple(columns)
        self._max_attempts = max_attempts
        self._pending = pending
        self._dead = dead

    def free(self, now: datetime) -> ColumnElement[bool]:
        """Not claimed, or the claim has run out."""
        c = self._table.c
        return or_(c.claimed_until.is_(None), c.claimed_until <= now)

    async def claim(
        self, worker: str, now: datetime, limit: int, lease: float, *where: ColumnElement[bool]
    ) -> list[Row[Any]]:
        """Up to `limit` due rows (that also meet `where`), claimed by `worker` for `lease` seconds,
        in the claim order."""
        aware("now", now)
        if limit < 1:
            return []
        if not worker:
            raise StoreError("a claim needs a worker name")
        c = self._table.c
        pick = (
            select(c.id)
            .where(c[self._status] == self._pending, c.next_attempt_at <= now, self.free(now), *where)
            .order_by(*(c[name] for name in self._order))
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        until = now + timedelta(seconds=lease)
        async with self._db.write() as conn:
            ids = list((await conn.execute(pick)).scalars())
            if not ids:
                return []
            rows = await conn.execute(
                update(self._table)
                .where(c.id.in_(ids))
                .values(claimed_by=worker, claimed_until=until)
                .returning(*self._columns)
            )
            claimed = list(rows)
        return sorted(claimed, key=lambda row: tuple(row._mapping[name] for name in self._order))

    async def update(self, where: ColumnElement[bool], values: dict[str, Any]) -> bool:
        """Apply `values` to the rows `where`; whether any was changed."""
        async with self._db.write() as conn:
            result = await conn.execute(update(self._table).where(where).values(**values))
        return bool(result.rowcount)

    async def owned(self, id: Any, worker: str, values: dict[str, Any], *, keep_claim: bool = False) -> bool:
        """Apply `values` to the open row `id` while `worker` holds its claim, releasing the claim
        unless `keep_claim`; whether it was applied."""
        c = self._table.c
        if not keep_claim:
            values = {**values, **UNCLAIMED}
        return await self.update(
            and_(c.id == id, c.claimed_by == worker, c[self._status].in_(self._open)), values
        )

    async def retry_later(
        self, id: Any, worker: str, error: str, at: datetime, *, response_status: int | None = None
    ) -> str | None:
        """A failed attempt of the pending row `id` that `worker` holds: attempts + 1 and due again
        at `at`, or "dead" once `max_attempts` attempts failed; claim released. The status
        afterwards; None if the claim was lost."""
        aware("at", at)
        c = self._table.c
        attempts = c[self._attempts]
        give_up = attempts + 1 >= self._max_attempts
        stmt = (
            update(self._table)
            .where(c.id == id, c.claimed_by == worker, c[self._status] == self._pending)
            .values(
                {
                    self._attempts: attempts + 1,
                    self._status: case((give_up, self._dead), else_=self._pending),
                    "next_attempt_at": case((give_up, c.next_attempt_at), else_=literal(at, UTCDateTime())),
                    "last_error": error_text(error),
                    "response_status": response_status,
                    **UNCLAIMED,
                }
            )
            .returning(c[self._status])
        )
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else str(row[0])
