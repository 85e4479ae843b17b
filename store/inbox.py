"""The inbox of inbound platform callbacks (table ``inbox``), on SQLite and PostgreSQL.

An accepted callback is stored BEFORE it is acknowledged and processed from here, so nothing is
lost between the ack and the processing, and a platform's retry of the same message is dropped:

- `add` is ONE statement, ``INSERT .. ON CONFLICT (platform, dedupe_key) DO NOTHING RETURNING id``;
  the unique index serialises concurrent deliveries of one message, across processes too.
- `claim` hands out due `pending` rows, oldest first, and marks them `processing` with
  ``claimed_at = now`` (the lease). On PostgreSQL the rows are selected ``FOR UPDATE SKIP LOCKED``,
  so several workers claiming at once never get the same row; on SQLite the write transaction
  holds the database's single write lock, which makes the select-then-update atomic.
- `claim_key` claims one row by its key (the live path: the request that stored it processes it).
- `done` / `failed`: a failure counts an attempt and makes the row due again at `retry_at`; after
  `max_attempts` failures the row is `dead` (kept for inspection and replay).
- `recover` puts rows whose claim is older than the lease back to `pending`: the process that
  claimed them died mid-processing. Processing is therefore at-least-once.

Status values: ``pending`` -> ``processing`` -> ``done`` | ``pending`` (retry) | ``dead``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, literal, or_, select, update
from sqlalchemy.sql.selectable import TextualSelect

from store.db import Database, DialectName, cacheable, upsert
from store.errors import StoreError
from store.tables import UTCDateTime, inbox

MAX_ATTEMPTS = 5
MAX_ERROR_CHARS = 2000
PENDING, PROCESSING, DONE, DEAD = "pending", "processing", "done", "dead"


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    platform: str
    dedupe_key: str
    payload: str
    received_at: datetime
    attempts: int


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def _add_statement(dialect: DialectName) -> TextualSelect:
    c = inbox.c
    stmt = (
        upsert(dialect, inbox)
        .on_conflict_do_nothing(index_elements=[c.platform, c.dedupe_key])
        .returning(c.id)
    )
    keys = ["platform", "dedupe_key", "received_at", "payload", "status", "attempts", "last_error"]
    return cacheable(stmt, dialect, keys).columns(c.id)


_DIALECTS: tuple[DialectName, ...] = ("sqlite", "postgresql")
_ADD = {d: _add_statement(d) for d in _DIALECTS}
_ITEM_COLUMNS = (
    inbox.c.id,
    inbox.c.platform,
    inbox.c.dedupe_key,
    inbox.c.payload,
    inbox.c.received_at,
    inbox.c.attempts,
)


def _item(row: Any) -> InboxItem:
    return InboxItem(
        id=int(row.id),
        platform=row.platform,
        dedupe_key=row.dedupe_key,
        payload=row.payload,
        received_at=row.received_at,
        attempts=int(row.attempts),
    )


class SqlInbox:
    """Inbound callbacks, stored once per (platform, dedupe key), processed from the table."""

    def __init__(self, db: Database, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise StoreError(f"max_attempts must be at least 1, got {max_attempts}")
        self._db = db
        self._max_attempts = max_attempts

    @property
    def max_attempts(self) -> int:
        return self._max_attempts

    async def add(self, platform: str, dedupe_key: str, payload: str, received_at: datetime) -> bool:
        """Store a callback as `pending`; False (and nothing changes) if the key was stored before."""
        _aware("received_at", received_at)
        if not platform or not dedupe_key:
            raise StoreError("platform and dedupe_key must not be empty")
        params: Mapping[str, Any] = {
            "platform": platform,
            "dedupe_key": dedupe_key,
            "received_at": received_at,
            "payload": payload,
            "status": PENDING,
            "attempts": 0,
            "last_error": "",
        }
        async with self._db.write() as conn:
            return (await conn.execute(_ADD[self._db.dialect], params)).first() is not None

    async def claim(self, limit: int, now: datetime, *, platform: str | None = None) -> list[InboxItem]:
        """Up to `limit` due pending rows (of `platform`, if given), oldest first, now `processing`."""
        _aware("now", now)
        if limit < 1:
            return []
        c = inbox.c
        due = and_(c.status == PENDING, or_(c.next_attempt_at.is_(None), c.next_attempt_at <= now))
        if platform is not None:
            due = and_(due, c.platform == platform)
        pick = (
            select(c.id)
            .where(due)
            .order_by(c.received_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # rendered on PostgreSQL; SQLite has one writer
        )
        async with self._db.write() as conn:
            ids = [int(i) for i in (await conn.execute(pick)).scalars()]
            if not ids:
                return []
            rows = await conn.execute(
                update(inbox)
                .where(c.id.in_(ids), c.status == PENDING)
                .values(status=PROCESSING, claimed_at=now)
                .returning(*_ITEM_COLUMNS)
            )
            items = [_item(r) for r in rows]
        return sorted(items, key=lambda i: (i.received_at, i.id))

    async def claim_key(self, platform: str, dedupe_key: str, now: datetime) -> InboxItem | None:
        """The row of (platform, dedupe_key), now `processing`, if it was pending; else None."""
        _aware("now", now)
        c = inbox.c
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(inbox)
                    .where(c.platform == platform, c.dedupe_key == dedupe_key, c.status == PENDING)
                    .values(status=PROCESSING, claimed_at=now)
                    .returning(*_ITEM_COLUMNS)
                )
            ).first()
        return _item(row) if row is not None else None

    async def done(self, id: int, now: datetime) -> bool:
        """Mark a row processed; False if it is not pending/processing (already done or dead)."""
        _aware("now", now)
        c = inbox.c
        async with self._db.write() as conn:
            result = await conn.execute(
                update(inbox)
                .where(c.id == id, c.status.in_((PENDING, PROCESSING)))
                .values(status=DONE, processed_at=now, claimed_at=None, next_attempt_at=None)
            )
        return bool(result.rowcount)

    async def failed(self, id: int, error: str, now: datetime, retry_at: datetime) -> str | None:
        """Count a failed attempt: the row is due again at `retry_at`, or `dead` after
        `max_attempts` failures. Returns the new status, or None if the row was not in flight."""
        _aware("now", now)
        _aware("retry_at", retry_at)
        c = inbox.c
        dead = c.attempts + 1 >= self._max_attempts
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(inbox)
                    .where(c.id == id, c.status.in_((PENDING, PROCESSING)))
                    .values(
                        attempts=c.attempts + 1,
                        status=case((dead, DEAD), else_=PENDING),
                        processed_at=case(
                            (dead, literal(now, UTCDateTime())), else_=None
                        ),  # typed: UTC on SQLite too
                        next_attempt_at=retry_at,
                        claimed_at=None,
                        last_error=error[:MAX_ERROR_CHARS],
                    )
                    .returning(c.status)
                )
            ).first()
        return str(row.status) if row is not None else None

    async def recover(self, now: datetime, lease_seconds: float, *, platform: str | None = None) -> int:
        """Rows `processing` for longer than `lease_seconds` go back to `pending`; returns how many."""
        _aware("now", now)
        if lease_seconds < 0:
            raise StoreError(f"lease_seconds must not be negative, got {lease_seconds}")
        c = inbox.c
        stuck = and_(c.status == PROCESSING, c.claimed_at <= now - timedelta(seconds=lease_seconds))
        if platform is not None:
            stuck = and_(stuck, c.platform == platform)
        async with self._db.write() as conn:
            result = await conn.execute(update(inbox).where(stuck).values(status=PENDING, claimed_at=None))
        return int(result.rowcount or 0)

    async def statuses(self, platform: str | None = None) -> Sequence[tuple[str, str, int]]:
        """(dedupe_key, status, attempts) of every row, oldest first: for tests and the CLI."""
        c = inbox.c
        query = select(c.dedupe_key, c.status, c.attempts).order_by(c.received_at, c.id)
        if platform is not None:
            query = query.where(c.platform == platform)
        async with self._db.read() as conn:
            return [(r.dedupe_key, r.status, int(r.attempts)) for r in await conn.execute(query)]
