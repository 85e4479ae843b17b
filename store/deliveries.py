"""The notifier's storage (bot.notify.ports.DeliveryStore) over the ``delivery`` and ``outbox`` tables.

A *delivery* is one message to one person on one platform. Its life (statuses):

    "pending" (planned, due_at) --send--> "sent"      --close--> closed_at set (still "sent")
                                --cancel--> "cancelled"
                                --give up--> "dead"

- `commit_plan` is ONE write transaction: the outbox events it consumed are marked "sent", new
  deliveries are inserted (``INSERT .. ON CONFLICT (dedupe_key) DO NOTHING``: a key planned before
  is skipped), closes are requested and cancels applied. Either all of it is stored or nothing.
- A failed send or close counts an attempt (`retry_later`); after `MAX_ATTEMPTS` a send is "dead"
  and a close is given up (closed, with the error).
- `(platform, task_id)` is unique: a card is found again by the task id the platform echoes back.

store must not import bot (import-linter), so `Delivery` and `OutboxEvent` here are frozen
dataclasses with exactly the fields of bot.notify.ports' classes, and the inputs (`NewDeliveryLike`,
`CloseLike`) are Protocols that bot's `NewDelivery` and `Close` satisfy. A dataclass is a nominal
type, though: a method returning store's `Delivery` does not satisfy a Protocol method returning
bot's. The composition root therefore passes bot's classes as the value types,
``SqlDeliveries(db, delivery_type=Delivery, event_type=OutboxEvent)``, which is then exactly a
``DeliveryStore``; ``SqlDeliveries(db)`` returns store's own dataclasses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import TextualSelect

from store.db import Database, DialectName, cacheable, upsert
from store.errors import StoreError
from store.tables import UTCDateTime, delivery, outbox

MAX_ATTEMPTS = 8  # failed attempts of a send (then "dead") or of a close (then given up)
MAX_ERROR_CHARS = 2000

# statuses (bot.notify.ports: PLANNED, SENT, CANCELLED, DEAD)
PENDING, SENT, CANCELLED, DEAD = "pending", "sent", "cancelled", "dead"
URGE = "urge"  # the kind of an urge (催办) delivery
SUPERSEDED = "superseded: "  # last_error prefix of a pending delivery cancelled by a close
CANCELLED_BY_PLAN = "cancelled"  # last_error of a delivery cancelled by `commit_plan`
OUTBOX_PENDING, OUTBOX_SENT = "pending", "sent"
STATUSES = (PENDING, SENT, CANCELLED, DEAD)
RETRYABLE = (DEAD, CANCELLED)  # what `requeue` puts back in the queue
_UNCLAIMED: dict[str, Any] = {"claimed_by": "", "claimed_until": None}  # a finished claim


@dataclass(frozen=True, slots=True)
class Delivery:
    """One row of ``delivery`` (all columns but updated_at): bot.notify.ports.Delivery's fields."""

    id: int
    platform: str
    ticket_id: int
    recipient: str
    address: str
    kind: str
    actor: str
    note: str
    dedupe_key: str
    status: str
    attempts: int
    due_at: datetime
    last_error: str
    task_id: str | None
    msg_id: str
    state_id: int
    version: int
    actions: str
    live: bool
    response_code: str
    code_expires_at: datetime | None
    close_due_at: datetime | None
    close_note: str
    closed_at: datetime | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One pending outbox row: bot.notify.ports.OutboxEvent's fields."""

    id: int
    ticket_id: int | None
    event: str
    payload: Mapping[str, Any]
    created_at: datetime


class NewDeliveryLike(Protocol):
    """A delivery to plan (bot.notify.ports.NewDelivery)."""

    @property
    def platform(self) -> str: ...
    @property
    def ticket_id(self) -> int: ...
    @property
    def recipient(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def dedupe_key(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def note(self) -> str: ...
    @property
    def state_id(self) -> int: ...
    @property
    def version(self) -> int: ...


class CloseLike(Protocol):
    """A close to request (bot.notify.ports.Close)."""

    @property
    def delivery_id(self) -> int: ...
    @property
    def note(self) -> str: ...


D = TypeVar("D")
E = TypeVar("E")

_DELIVERY_FIELDS = tuple(f.name for f in dataclasses.fields(Delivery))
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(OutboxEvent))
_DELIVERY_COLUMNS = tuple(delivery.c[name] for name in _DELIVERY_FIELDS)
_EVENT_COLUMNS = tuple(outbox.c[name] for name in _EVENT_FIELDS)
_INSERT_KEYS = tuple(c.name for c in delivery.columns if c.name != "id")


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value


def _ts(value: datetime) -> Any:
    """`value` as a bound parameter of the column type (aware -> UTC), for use inside CASE."""
    return literal(value, UTCDateTime())


def _error(text: str) -> str:
    return text[:MAX_ERROR_CHARS]


def _insert_statement(dialect: DialectName) -> TextualSelect:
    c = delivery.c
    stmt = upsert(dialect, delivery).on_conflict_do_nothing(index_elements=[c.dedupe_key]).returning(c.id)
    return cacheable(stmt, dialect, list(_INSERT_KEYS)).columns(c.id)


_DIALECTS: tuple[DialectName, ...] = ("sqlite", "postgresql")
_INSERT = {d: _insert_statement(d) for d in _DIALECTS}


def _new_row(new: NewDeliveryLike, now: datetime) -> dict[str, Any]:
    if not new.platform or not new.dedupe_key:
        raise StoreError(f"a delivery needs a platform and a dedupe_key, got {new!r}")
    return {
        "platform": new.platform,
        "ticket_id": new.ticket_id,
        "recipient": new.recipient,
        "address": new.address,
        "kind": new.kind,
        "actor": new.actor,
        "note": new.note,
        "dedupe_key": new.dedupe_key,
        "status": PENDING,
        "attempts": 0,
        "due_at": now,
        "last_error": "",
        "task_id": None,
        "msg_id": "",
        "state_id": new.state_id,
        "version": new.version,
        "actions": "",
        "live": False,
        "response_code": "",
        "code_expires_at": None,
        "close_due_at": None,
        "close_note": "",
        "closed_at": None,
        "created_at": now,
        "sent_at": None,
        "updated_at": now,
        "claimed_by": "",
        "claimed_until": None,
    }


class SqlDeliveries(Generic[D, E]):
    """bot.notify.ports.DeliveryStore over a Database (SQLite or PostgreSQL).

    `delivery_type` / `event_type` build the values returned (called with the fields as keywords);
    by default store's own `Delivery` and `OutboxEvent`.
    """

    @overload
    def __init__(self: SqlDeliveries[Delivery, OutboxEvent], db: Database) -> None: ...
    @overload
    def __init__(
        self, db: Database, *, delivery_type: Callable[..., D], event_type: Callable[..., E]
    ) -> None: ...
    def __init__(
        self,
        db: Database,
        *,
        delivery_type: Callable[..., D] | None = None,
        event_type: Callable[..., E] | None = None,
    ) -> None:
        if (delivery_type is None) != (event_type is None):
            raise StoreError("give both delivery_type and event_type, or neither")
        self._db = db
        self._delivery = cast("Callable[..., D]", delivery_type or Delivery)
        self._event = cast("Callable[..., E]", event_type or OutboxEvent)

    def _to_delivery(self, row: Any) -> D:
        return self._delivery(**row._mapping)

    async def _deliveries(self, where: Any, limit: int | None = None) -> list[D]:
        query = select(*_DELIVERY_COLUMNS).where(where).order_by(delivery.c.id)
        if limit is not None:
            query = query.limit(limit)
        async with self._db.read() as conn:
            return [self._to_delivery(r) for r in await conn.execute(query)]

    # ------------------------------------------------------------------------------ planning

    async def pending_events(self, limit: int) -> Sequence[E]:
        """Outbox rows with status "pending", oldest (lowest id) first."""
        if limit < 1:
            return []
        query = (
            select(*_EVENT_COLUMNS)
            .where(outbox.c.status == OUTBOX_PENDING)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = list(await conn.execute(query))
        return [self._event(**r._mapping) for r in rows]

    async def open_for_ticket(self, ticket_id: int) -> Sequence[D]:
        """The ticket's deliveries that may still change: "pending", or "sent" and (live or with a
        close requested and not done). Lowest id first."""
        c = delivery.c
        close_open = and_(c.close_due_at.is_not(None), c.closed_at.is_(None))
        may_change = or_(c.status == PENDING, and_(c.status == SENT, or_(c.live.is_(True), close_open)))
        return await self._deliveries(and_(c.ticket_id == ticket_id, may_change))

    async def commit_plan(
        self,
        event_ids: Sequence[int],
        new: Sequence[NewDeliveryLike],
        closes: Sequence[CloseLike],
        cancels: Sequence[int],
        now: datetime,
    ) -> list[int]:
        """In ONE transaction: outbox rows `event_ids` (still "pending") -> "sent"; insert `new`, due
        now (a dedupe_key already present, or repeated in `new`, is skipped); each close: a "pending"
        delivery is cancelled ("superseded: <note>"), a "sent" one not yet closed gets close_due_at =
        now and close_note, any other is left alone; `cancels` still "pending" are cancelled.
        Returns the ids of the inserted deliveries, in the order of `new`."""
        _aware("now", now)
        rows = [_new_row(n, now) for n in new]
        c = delivery.c
        inserted: list[int] = []
        async with self._db.write() as conn:
            if event_ids:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(list(event_ids)), outbox.c.status == OUTBOX_PENDING)
                    .values(status=OUTBOX_SENT)
                )
            insert = _INSERT[self._db.dialect]
            for row in rows:
                got = (await conn.execute(insert, row)).first()
                if got is not None:
                    inserted.append(int(got.id))
            for close in closes:
                await self._close(conn, close.delivery_id, close.note, now)
            if cancels:
                await conn.execute(
                    update(delivery)
                    .where(c.id.in_(list(cancels)), c.status == PENDING)
                    .values(status=CANCELLED, last_error=CANCELLED_BY_PLAN, updated_at=now)
                )
        return inserted

    @staticmethod
    async def _close(conn: AsyncConnection, id: int, note: str, now: datetime) -> None:
        c = delivery.c
        await conn.execute(
            update(delivery)
            .where(c.id == id, c.status == PENDING)
            .values(status=CANCELLED, last_error=_error(SUPERSEDED + note), updated_at=now)
        )
        await conn.execute(
            update(delivery)
            .where(c.id == id, c.status == SENT, c.closed_at.is_(None), c.close_due_at.is_(None))
            .values(close_due_at=now, close_note=note, attempts=0, updated_at=now)
        )

    # ------------------------------------------------------------------------------ dispatching

    async def due_sends(self, now: datetime, limit: int) -> Sequence[D]:
        """Status "pending" with due_at <= now, lowest id first."""
        _aware("now", now)
        if limit < 1:
            return []
        c = delivery.c
        return await self._deliveries(and_(c.status == PENDING, c.due_at <= now), limit)

    async def due_closes(self, now: datetime, limit: int) -> Sequence[D]:
        """Status "sent", close_due_at <= now and closed_at null, lowest id first."""
        _aware("now", now)
        if limit < 1:
            return []
        c = delivery.c
        return await self._deliveries(
            and_(c.status == SENT, c.close_due_at <= now, c.closed_at.is_(None)), limit
        )

    async def claim_due_sends(self, worker: str, now: datetime, limit: int, lease: timedelta) -> Sequence[D]:
        """Like `due_sends`, but each delivery returned is claimed for `worker` until now + `lease`:
        no other claim returns it until the claim is finished (mark_sent, retry_later, cancel,
        defer) or has expired (a worker that died). PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so
        concurrent workers never get the same row; SQLite: one writer at a time anyway."""
        c = delivery.c
        return await self._claim(worker, now, limit, lease, and_(c.status == PENDING, c.due_at <= now))

    async def claim_due_closes(self, worker: str, now: datetime, limit: int, lease: timedelta) -> Sequence[D]:
        """Like `due_closes`, claimed for `worker` as in `claim_due_sends` (mark_closed and
        retry_later finish the claim)."""
        c = delivery.c
        return await self._claim(
            worker, now, limit, lease, and_(c.status == SENT, c.close_due_at <= now, c.closed_at.is_(None))
        )

    async def _claim(self, worker: str, now: datetime, limit: int, lease: timedelta, due: Any) -> list[D]:
        _aware("now", now)
        if not worker:
            raise StoreError("a claim needs a worker id")
        if lease <= timedelta(0):
            raise StoreError(f"a claim's lease must be positive, got {lease}")
        if limit < 1:
            return []
        c = delivery.c
        free = or_(c.claimed_until.is_(None), c.claimed_until <= now)
        ids = (
            select(c.id)
            .where(due, free)
            .order_by(c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
        )
        stmt = (
            update(delivery)
            .where(c.id.in_(ids))
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(*_DELIVERY_COLUMNS)
        )
        async with self._db.write() as conn:
            rows = list(await conn.execute(stmt))
        return sorted((self._to_delivery(r) for r in rows), key=lambda d: cast("Any", d).id)

    async def unclaim(self, id: int, worker: str) -> None:
        """Give up `worker`'s claim on `id` (if it still holds it) without changing anything else."""
        c = delivery.c
        async with self._db.write() as conn:
            await conn.execute(
                update(delivery).where(c.id == id, c.claimed_by == worker).values(**_UNCLAIMED)
            )

    async def defer(self, id: int, due_at: datetime, now: datetime) -> None:
        """A planned delivery not sent now on purpose (the recipient's rate limit): due again at
        `due_at`, its claim finished, NOT counted as an attempt. Only if still "pending"."""
        _aware("due_at", due_at)
        _aware("now", now)
        c = delivery.c
        async with self._db.write() as conn:
            await conn.execute(
                update(delivery)
                .where(c.id == id, c.status == PENDING)
                .values(due_at=due_at, updated_at=now, **_UNCLAIMED)
            )

    async def mark_sent(
        self,
        id: int,
        *,
        task_id: str | None,
        msg_id: str,
        response_code: str,
        code_expires_at: datetime | None,
        state_id: int,
        version: int,
        actions: str,
        live: bool,
        now: datetime,
    ) -> None:
        """The delivery `id` went out: status "sent", sent_at = now, and what the platform answered.
        Applied whatever the status was (the message IS out). A (platform, task_id) already used by
        another delivery raises IntegrityViolation; an unknown id raises StoreError."""
        _aware("now", now)
        if code_expires_at is not None:
            _aware("code_expires_at", code_expires_at)
        async with self._db.write() as conn:
            result = await conn.execute(
                update(delivery)
                .where(delivery.c.id == id)
                .values(
                    status=SENT,
                    attempts=0,  # a close of this card gets its own budget of attempts
                    sent_at=now,
                    updated_at=now,
                    task_id=task_id,
                    msg_id=msg_id,
                    response_code=response_code,
                    code_expires_at=code_expires_at,
                    state_id=state_id,
                    version=version,
                    actions=actions,
                    live=live,
                    **_UNCLAIMED,
                )
            )
            if not result.rowcount:
                raise StoreError(f"no delivery {id}")

    async def mark_closed(
        self, id: int, now: datetime, *, error: str = "", used_code: str | None = None
    ) -> None:
        """closed_at = now, live false, close_due_at null, last_error = `error`. The response code
        is cleared (it was used) only if it is still `used_code` (when given): a fresh code that a
        click stored meanwhile is kept for that click's re-render. An unknown id raises StoreError."""
        _aware("now", now)
        code = (
            literal("")
            if used_code is None
            else case((delivery.c.response_code == used_code, literal("")), else_=delivery.c.response_code)
        )
        async with self._db.write() as conn:
            result = await conn.execute(
                update(delivery)
                .where(delivery.c.id == id)
                .values(
                    closed_at=now,
                    live=False,
                    close_due_at=None,
                    response_code=code,
                    last_error=_error(error),
                    updated_at=now,
                    **_UNCLAIMED,
                )
            )
            if not result.rowcount:
                raise StoreError(f"no delivery {id}")

    async def retry_later(self, id: int, error: str, retry_at: datetime, *, close: bool) -> str:
        """Count a failed attempt (attempts + 1, last_error = `error`). A send (status "pending"):
        due again at `retry_at`, or "dead" once `MAX_ATTEMPTS` attempts failed. A close (status
        "sent", not closed): close_due_at = `retry_at`, or given up after the limit (closed_at =
        `retry_at`, live false, close_due_at null). A delivery in neither state is left alone.
        Returns the delivery's status afterwards; an unknown id raises StoreError."""
        _aware("retry_at", retry_at)
        c = delivery.c
        give_up = c.attempts + 1 >= MAX_ATTEMPTS
        at = _ts(retry_at)
        if close:
            stmt = (
                update(delivery)
                .where(c.id == id, c.status == SENT, c.closed_at.is_(None))
                .values(
                    close_due_at=case((give_up, None), else_=at),
                    closed_at=case((give_up, at), else_=None),
                    live=case((give_up, False), else_=c.live),
                )
            )
        else:
            stmt = (
                update(delivery)
                .where(c.id == id, c.status == PENDING)
                .values(
                    status=case((give_up, DEAD), else_=PENDING), due_at=case((give_up, c.due_at), else_=at)
                )
            )
        stmt = stmt.values(attempts=c.attempts + 1, last_error=_error(error), **_UNCLAIMED)
        stmt = stmt.returning(c.status)
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                row = (await conn.execute(select(c.status).where(c.id == id))).first()
            if row is None:
                raise StoreError(f"no delivery {id}")
        return str(row.status)

    async def cancel(self, id: int, reason: str, now: datetime) -> None:
        """A planned delivery that is no longer wanted: "cancelled" with the reason as last_error
        (only if still "pending"; anything else is left alone)."""
        _aware("now", now)
        c = delivery.c
        async with self._db.write() as conn:
            await conn.execute(
                update(delivery)
                .where(c.id == id, c.status == PENDING)
                .values(status=CANCELLED, last_error=_error(reason), updated_at=now, **_UNCLAIMED)
            )

    # ------------------------------------------------------------------------------ cards

    async def by_task_id(self, platform: str, task_id: str) -> D | None:
        c = delivery.c
        found = await self._deliveries(and_(c.platform == platform, c.task_id == task_id))
        return found[0] if found else None

    async def store_response_code(
        self, platform: str, task_id: str, response_code: str, expires_at: datetime, now: datetime
    ) -> D | None:
        """A click brought a fresh single-use code for the card `task_id`: keep it (with its expiry).
        Returns the updated delivery (None if unknown)."""
        _aware("expires_at", expires_at)
        _aware("now", now)
        c = delivery.c
        async with self._db.write() as conn:
            row = (
                await conn.execute(
                    update(delivery)
                    .where(c.platform == platform, c.task_id == task_id)
                    .values(response_code=response_code, code_expires_at=expires_at, updated_at=now)
                    .returning(*_DELIVERY_COLUMNS)
                )
            ).first()
        return self._to_delivery(row) if row is not None else None

    async def request_close(self, id: int, note: str, now: datetime) -> None:
        """Close (again) the sent card `id`: close_due_at = now, close_note = note, closed_at null.
        A delivery that is not "sent" is left alone."""
        _aware("now", now)
        c = delivery.c
        async with self._db.write() as conn:
            await conn.execute(
                update(delivery)
                .where(c.id == id, c.status == SENT)
                .values(close_due_at=now, close_note=note, closed_at=None, attempts=0, updated_at=now)
            )

    # ------------------------------------------------------------------------------ urges

    async def last_urge_at(self, ticket_id: int) -> datetime | None:
        """When the ticket was last urged (newest "urge" delivery, whatever its status), by anyone."""
        c = delivery.c
        query = select(func.max(c.created_at)).where(c.ticket_id == ticket_id, c.kind == URGE)
        async with self._db.read() as conn:
            value: datetime | None = (await conn.execute(query)).scalar_one()
        return value

    async def urged_tickets_since(self, actor: str, since: datetime) -> int:
        """How many distinct tickets `actor` urged at or after `since` ("urge" deliveries, any status)."""
        _aware("since", since)
        c = delivery.c
        query = select(func.count(c.ticket_id.distinct())).where(
            c.actor == actor, c.kind == URGE, c.created_at >= since
        )
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    # ------------------------------------------------------------------------------ operations

    async def list_deliveries(
        self, *, status: str | None = None, ticket_id: int | None = None, limit: int = 50
    ) -> list[D]:
        """Deliveries newest (highest id) first, of one status and/or one ticket (None: any)."""
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown delivery status {status!r} (known: {', '.join(STATUSES)})")
        if limit < 1:
            return []
        c = delivery.c
        query = select(*_DELIVERY_COLUMNS).order_by(c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(c.status == status)
        if ticket_id is not None:
            query = query.where(c.ticket_id == ticket_id)
        async with self._db.read() as conn:
            return [self._to_delivery(r) for r in await conn.execute(query)]

    async def find(self, ids: Sequence[int]) -> list[D]:
        """The deliveries of `ids` that exist, lowest id first."""
        if not ids:
            return []
        return await self._deliveries(delivery.c.id.in_(sorted(set(ids))))

    async def for_ticket(self, ticket_id: int) -> list[D]:
        """Every delivery of the ticket (its ledger), oldest first (created_at, then id)."""
        c = delivery.c
        query = select(*_DELIVERY_COLUMNS).where(c.ticket_id == ticket_id).order_by(c.created_at, c.id)
        async with self._db.read() as conn:
            return [self._to_delivery(r) for r in await conn.execute(query)]

    async def requeue(self, ids: Sequence[int], now: datetime) -> list[int]:
        """Put the "dead" or "cancelled" deliveries of `ids` back in the queue: "pending", due now,
        attempts 0, unclaimed (last_error is kept until the next attempt). Others are left alone.
        Returns the ids requeued, lowest first."""
        _aware("now", now)
        if not ids:
            return []
        c = delivery.c
        stmt = (
            update(delivery)
            .where(c.id.in_(sorted(set(ids))), c.status.in_(RETRYABLE))
            .values(status=PENDING, due_at=now, attempts=0, updated_at=now, **_UNCLAIMED)
            .returning(c.id)
        )
        async with self._db.write() as conn:
            return sorted(int(r.id) for r in await conn.execute(stmt))
