"""Contract tests of SqlDeliveries (bot.notify.ports.DeliveryStore) on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, select

import store.deliveries as sd
from bot.notify.ports import Close, Delivery, DeliveryStore, NewDelivery, OutboxEvent
from store.db import Database
from store.deliveries import MAX_ATTEMPTS, MAX_ERROR_CHARS, SqlDeliveries
from store.errors import IntegrityViolation, StoreError
from store.tables import delivery, outbox
from tests.fakes import FakeClock

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(db: Database) -> SqlDeliveries[Delivery, OutboxEvent]:
    return SqlDeliveries(db, delivery_type=Delivery, event_type=OutboxEvent)


def nd(key: str, *, ticket_id: int = 1, kind: str = "pending", **kw: Any) -> NewDelivery:
    kw.setdefault("platform", "wecom")
    kw.setdefault("recipient", "alice")
    kw.setdefault("address", "wx_" + str(kw["recipient"]))
    return NewDelivery(ticket_id=ticket_id, kind=kind, dedupe_key=key, **kw)


async def add_event(
    db: Database, event: str = "TicketCreated", *, ticket_id: int | None = 1, status: str = "pending"
) -> int:
    async with db.write() as conn:
        row = (
            await conn.execute(
                insert(outbox)
                .values(
                    ticket_id=ticket_id,
                    event=event,
                    payload={"ticket_id": ticket_id, "who": "王强"},
                    created_at=T0,
                    status=status,
                    attempts=0,
                    next_attempt_at=T0,
                    last_error="",
                    dedupe_key=None,
                )
                .returning(outbox.c.id)
            )
        ).one()
    return int(row.id)


async def outbox_statuses(db: Database) -> dict[int, str]:
    async with db.read() as conn:
        return {int(r.id): r.status for r in await conn.execute(select(outbox.c.id, outbox.c.status))}


async def plan(s: SqlDeliveries[Delivery, OutboxEvent], *new: NewDelivery, now: datetime = T0) -> list[int]:
    return await s.commit_plan([], list(new), [], [], now)


async def get(db: Database, id: int) -> Delivery:
    """The row as the store would return it, read directly."""
    columns = [delivery.c[f.name] for f in dataclasses.fields(Delivery)]
    async with db.read() as conn:
        row = (await conn.execute(select(*columns).where(delivery.c.id == id))).one()
    return Delivery(**row._mapping)


async def sent(
    s: SqlDeliveries[Delivery, OutboxEvent],
    id: int,
    *,
    task_id: str | None = None,
    live: bool = True,
    now: datetime = T0,
) -> None:
    await s.mark_sent(
        id,
        task_id=task_id if task_id is not None else f"task-{id}",
        msg_id=f"msg-{id}",
        response_code=f"code-{id}",
        code_expires_at=now + timedelta(hours=72),
        state_id=3,
        version=2,
        actions="agree:11,reject:12" if live else "",
        live=live,
        now=now,
    )


# ------------------------------------------------------------------------------------ types


def _annotations(cls: type) -> list[tuple[str, object]]:
    return [(f.name, f.type) for f in dataclasses.fields(cls)]


def test_value_types_have_exactly_the_fields_of_the_ports() -> None:
    assert _annotations(sd.Delivery) == _annotations(Delivery)
    assert _annotations(sd.OutboxEvent) == _annotations(OutboxEvent)
    event = sd.OutboxEvent(1, None, "TicketCreated", {}, T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event = "changed"  # type: ignore[misc]
    assert "__slots__" in vars(sd.Delivery) and "__slots__" in vars(sd.OutboxEvent)
    protocol_attrs = {
        sd.NewDeliveryLike: {n for n, v in vars(sd.NewDeliveryLike).items() if isinstance(v, property)},
        sd.CloseLike: {n for n, v in vars(sd.CloseLike).items() if isinstance(v, property)},
    }
    assert protocol_attrs[sd.NewDeliveryLike] == {f.name for f in dataclasses.fields(NewDelivery)}
    assert protocol_attrs[sd.CloseLike] == {f.name for f in dataclasses.fields(Close)}


async def test_conforms_to_delivery_store_and_defaults_to_its_own_types(db: Database) -> None:
    conforming: DeliveryStore = SqlDeliveries(db, delivery_type=Delivery, event_type=OutboxEvent)
    (id,) = await conforming.commit_plan([], [nd("k1")], [], [], T0)
    (d,) = await conforming.due_sends(T0, 10)
    assert type(d) is Delivery and d.id == id

    own = SqlDeliveries(db)
    (d2,) = await own.due_sends(T0, 10)
    assert type(d2) is sd.Delivery
    assert dataclasses.asdict(d2) == dataclasses.asdict(d)
    await add_event(db)
    (e,) = await own.pending_events(10)
    assert type(e) is sd.OutboxEvent

    with pytest.raises(StoreError, match="both"):
        SqlDeliveries(db, delivery_type=Delivery)  # type: ignore[call-overload]


# ------------------------------------------------------------------------------------ outbox


async def test_pending_events_oldest_first_with_limit(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    a = await add_event(db, "TicketCreated")
    await add_event(db, "Old", status="sent")
    b = await add_event(db, "SystemNote", ticket_id=None)
    c = await add_event(db, "TicketTransitioned", ticket_id=7)
    events = await store.pending_events(10)
    assert [e.id for e in events] == [a, b, c]
    assert events[0] == OutboxEvent(a, 1, "TicketCreated", {"ticket_id": 1, "who": "王强"}, T0)
    assert events[1].ticket_id is None
    assert [e.id for e in await store.pending_events(2)] == [a, b]
    assert await store.pending_events(0) == []


# ------------------------------------------------------------------------------------ commit_plan


async def test_commit_plan_inserts_due_now_and_marks_events(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    e1, e2, other = await add_event(db), await add_event(db), await add_event(db)
    ids = await store.commit_plan(
        [e1, e2],
        [
            nd("t1:bob", recipient="bob", state_id=3, version=2),
            nd("t1:carol", recipient="carol", kind="cc", actor="王强", note="已同意"),
        ],
        [],
        [],
        T0,
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    assert await outbox_statuses(db) == {e1: "sent", e2: "sent", other: "pending"}
    assert [e.id for e in await store.pending_events(10)] == [other]

    bob, carol = await store.due_sends(T0, 10)
    assert bob == Delivery(
        id=ids[0], platform="wecom", ticket_id=1, recipient="bob", address="wx_bob", kind="pending",
        actor="", note="", dedupe_key="t1:bob", status="pending", attempts=0, due_at=T0, last_error="",
        task_id=None, msg_id="", state_id=3, version=2, actions="", live=False, response_code="",
        code_expires_at=None, close_due_at=None, close_note="", closed_at=None, created_at=T0, sent_at=None,
    )  # fmt: skip
    assert (carol.kind, carol.actor, carol.note, carol.state_id) == ("cc", "王强", "已同意", 0)
    assert bob.due_at.utcoffset() == timedelta(0)
    async with db.read() as conn:
        assert (
            await conn.execute(select(delivery.c.updated_at).where(delivery.c.id == ids[0]))
        ).scalar_one() == T0


async def test_commit_plan_skips_dedupe_keys_already_planned(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    (first,) = await plan(store, nd("t1:bob"))
    later = T0 + timedelta(minutes=5)
    ids = await plan(
        store,
        nd("t1:carol"),
        nd("t1:bob", recipient="someone else"),
        nd("t1:carol"),
        nd("t1:dave"),
        now=later,
    )
    assert len(ids) == 2
    assert await plan(store, nd("t1:bob"), nd("t1:dave")) == []
    rows = await store.due_sends(later, 10)
    assert [(d.id, d.dedupe_key, d.recipient) for d in rows] == [
        (first, "t1:bob", "alice"),
        (ids[0], "t1:carol", "alice"),
        (ids[1], "t1:dave", "alice"),
    ]
    assert await store.commit_plan([], [], [], [], T0) == []


async def test_commit_plan_close_cancels_pending_requests_sent_and_leaves_closed_alone(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    pending, live, closed, cancelled, dead = await plan(store, nd("a"), nd("b"), nd("c"), nd("d"), nd("e"))
    await sent(store, live)
    await sent(store, closed)
    await store.mark_closed(closed, T0 + timedelta(minutes=1))
    await store.cancel(cancelled, "withdrawn", T0)
    for _ in range(MAX_ATTEMPTS):
        await store.retry_later(dead, "boom", T0, close=False)
    before = {i: await get(db, i) for i in (closed, cancelled, dead)}

    now = T0 + timedelta(minutes=10)
    closes = [Close(i, "已同意 · 王强") for i in (pending, live, closed, cancelled, dead, 999_999)]
    assert await store.commit_plan([], [], closes, [], now) == []

    p = await get(db, pending)
    assert (p.status, p.last_error, p.close_due_at) == ("cancelled", "superseded: 已同意 · 王强", None)
    s = await get(db, live)
    assert (s.status, s.close_due_at, s.close_note, s.closed_at, s.live) == (
        "sent",
        now,
        "已同意 · 王强",
        None,
        True,
    )
    for i, d in before.items():
        assert await get(db, i) == d, "left alone"
    assert [d.id for d in await store.due_closes(now, 10)] == [live]


async def test_commit_plan_cancels_only_pending(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    a, b = await plan(store, nd("a"), nd("b"))
    await sent(store, b)
    now = T0 + timedelta(seconds=5)
    assert await store.commit_plan([], [], [], [a, b, 424242], now) == []
    da, db_ = await get(db, a), await get(db, b)
    assert (da.status, da.last_error) == ("cancelled", sd.CANCELLED_BY_PLAN)
    assert db_.status == "sent"
    assert await store.due_sends(now, 10) == []


async def test_commit_plan_is_one_transaction(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    event = await add_event(db)
    (old,) = await plan(store, nd("old"))
    nobody: Any = None  # NOT NULL: the insert fails after the outbox update and a good insert
    broken = NewDelivery(
        platform="wecom", ticket_id=1, recipient=nobody, address="x", kind="cc", dedupe_key="broken"
    )
    with pytest.raises(IntegrityViolation):
        await store.commit_plan([event], [nd("good"), broken], [Close(old, "x")], [old], T0)
    assert await outbox_statuses(db) == {event: "pending"}
    assert [(d.id, d.status) for d in await store.open_for_ticket(1)] == [(old, "pending")]
    (good,) = await store.commit_plan([event], [nd("good")], [], [], T0)
    assert good > old and await outbox_statuses(db) == {event: "sent"}


async def test_commit_plan_refuses_empty_keys_and_naive_now(
    store: SqlDeliveries[Delivery, OutboxEvent],
) -> None:
    with pytest.raises(StoreError, match="dedupe_key"):
        await plan(store, nd(""))
    with pytest.raises(StoreError, match="timezone-aware"):
        await plan(store, nd("k"), now=T0.replace(tzinfo=None))
    assert await store.due_sends(T0 + timedelta(days=1), 10) == []


# ------------------------------------------------------------------------------------ reading


async def test_open_for_ticket_is_pending_or_live_or_closing(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    ids = await plan(
        store,
        nd("pending"),
        nd("live"),
        nd("notice", kind="notice"),
        nd("closing-notice", kind="notice"),
        nd("closed"),
        nd("cancelled"),
        nd("dead"),
        nd("other-ticket", ticket_id=2),
    )
    pending, live, notice, closing_notice, closed, cancelled, dead, other = ids
    await sent(store, live)
    await sent(store, notice, live=False)
    await sent(store, closing_notice, live=False)
    await store.request_close(closing_notice, "ended", T0)
    await sent(store, closed)
    await store.mark_closed(closed, T0)
    await store.cancel(cancelled, "gone", T0)
    for _ in range(MAX_ATTEMPTS):
        await store.retry_later(dead, "boom", T0, close=False)
    assert [d.id for d in await store.open_for_ticket(1)] == [pending, live, closing_notice]
    assert [d.id for d in await store.open_for_ticket(2)] == [other]
    assert await store.open_for_ticket(3) == []


async def test_due_sends_and_due_closes_lowest_id_first(store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    clock = FakeClock(T0)
    a, b, c = await plan(store, nd("a"), nd("b"), nd("c"))
    (late,) = await plan(store, nd("late"), now=T0 + timedelta(minutes=1))
    assert [d.id for d in await store.due_sends(clock.now(), 10)] == [a, b, c]
    assert [d.id for d in await store.due_sends(clock.now(), 2)] == [a, b]
    assert await store.due_sends(clock.now() - timedelta(seconds=1), 10) == []
    assert await store.due_sends(clock.now(), 0) == []
    clock.advance(minutes=1)
    assert [d.id for d in await store.due_sends(clock.now(), 10)] == [a, b, c, late]

    for i in (c, a, b):
        await sent(store, i)
    assert await store.due_closes(clock.now(), 10) == []
    await store.request_close(c, "done", clock.now())
    await store.request_close(a, "done", clock.now() + timedelta(seconds=30))
    assert [d.id for d in await store.due_closes(clock.now(), 10)] == [c]
    clock.advance(seconds=30)
    assert [d.id for d in await store.due_closes(clock.now(), 10)] == [a, c]
    assert [d.id for d in await store.due_closes(clock.now(), 1)] == [a]
    await store.mark_closed(a, clock.now())
    assert [d.id for d in await store.due_closes(clock.now(), 10)] == [c]


# ------------------------------------------------------------------------------------ sending


async def test_mark_sent_and_by_task_id(db: Database, store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    a, b, c = await plan(store, nd("a"), nd("b"), nd("c", platform="dingtalk"))
    now = T0 + timedelta(seconds=3)
    expires = datetime(2026, 1, 8, 17, 0, tzinfo=timezone(timedelta(hours=8)))
    await store.mark_sent(
        a, task_id="T-1", msg_id="M-1", response_code="RC-1", code_expires_at=expires,
        state_id=5, version=4, actions="agree:11,reject:12", live=True, now=now,
    )  # fmt: skip
    d = await store.by_task_id("wecom", "T-1")
    assert d is not None
    assert (d.id, d.status, d.task_id, d.msg_id, d.response_code) == (a, "sent", "T-1", "M-1", "RC-1")
    assert (d.state_id, d.version, d.actions, d.live, d.sent_at, d.attempts) == (
        5,
        4,
        "agree:11,reject:12",
        True,
        now,
        0,
    )
    assert d.code_expires_at == expires and d.code_expires_at.utcoffset() == timedelta(0)
    assert await store.by_task_id("dingtalk", "T-1") is None
    assert await store.by_task_id("wecom", "T-2") is None
    assert await store.due_sends(now, 10) == [await get(db, b), await get(db, c)]

    # (platform, task_id) is unique; the same task id on another platform is fine; NULLs don't clash
    with pytest.raises(IntegrityViolation):
        await sent(store, b, task_id="T-1")
    await sent(store, c, task_id="T-1")
    await store.mark_sent(
        b, task_id=None, msg_id="text", response_code="", code_expires_at=None,
        state_id=0, version=0, actions="", live=False, now=now,
    )  # fmt: skip
    d_b = await get(db, b)
    assert (d_b.status, d_b.task_id, d_b.code_expires_at) == ("sent", None, None)

    with pytest.raises(StoreError, match="no delivery"):
        await sent(store, 999_999)


async def test_mark_closed(db: Database, store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    (a,) = await plan(store, nd("a"))
    await sent(store, a)
    await store.request_close(a, "已拒绝", T0)
    now = T0 + timedelta(minutes=2)
    await store.mark_closed(a, now, error="code used: sent a fresh notice")
    d = await get(db, a)
    assert (d.status, d.closed_at, d.live, d.close_due_at, d.response_code) == ("sent", now, False, None, "")
    assert (d.close_note, d.last_error, d.msg_id) == ("已拒绝", "code used: sent a fresh notice", f"msg-{a}")
    assert await store.open_for_ticket(1) == []
    with pytest.raises(StoreError, match="no delivery"):
        await store.mark_closed(999_999, now)


async def test_retry_send_then_dead_after_the_limit(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    clock = FakeClock(T0)
    (a,) = await plan(store, nd("a"))
    for attempt in range(1, MAX_ATTEMPTS):
        retry_at = clock.now() + timedelta(seconds=2**attempt)
        assert await store.retry_later(a, f"boom {attempt}", retry_at, close=False) == "pending"
        assert await store.due_sends(clock.now(), 10) == [], "not due before retry_at"
        (d,) = await store.due_sends(retry_at, 10)
        assert (d.attempts, d.due_at, d.last_error) == (attempt, retry_at, f"boom {attempt}")
        clock.current = retry_at
    assert await store.retry_later(a, "x" * 5000, clock.now() + timedelta(hours=1), close=False) == "dead"
    d = await get(db, a)
    assert (d.status, d.attempts, d.due_at, d.last_error) == (
        "dead",
        MAX_ATTEMPTS,
        clock.now(),
        "x" * MAX_ERROR_CHARS,
    )
    assert await store.due_sends(clock.now() + timedelta(days=1), 10) == []
    assert await store.retry_later(a, "late", clock.now(), close=False) == "dead"
    assert (await get(db, a)).attempts == MAX_ATTEMPTS, "a dead delivery is left alone"


async def test_retry_close_then_given_up_after_the_limit(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    (a,) = await plan(store, nd("a"))
    await sent(store, a)
    await store.request_close(a, "已同意", T0)
    retry_at = T0
    for attempt in range(1, MAX_ATTEMPTS):
        retry_at = T0 + timedelta(minutes=attempt)
        local = retry_at.astimezone(timezone(timedelta(hours=8)))  # any aware zone; stored as UTC
        assert await store.retry_later(a, f"update failed {attempt}", local, close=True) == "sent"
        d = await get(db, a)
        assert (d.attempts, d.close_due_at, d.closed_at, d.live) == (attempt, retry_at, None, True)
        assert d.close_due_at is not None and d.close_due_at.utcoffset() == timedelta(0)
        assert [x.id for x in await store.due_closes(retry_at, 10)] == [a]
    give_up = retry_at + timedelta(minutes=1)
    assert await store.retry_later(a, "update failed for good", give_up, close=True) == "sent"
    d = await get(db, a)
    assert (d.attempts, d.close_due_at, d.closed_at, d.live) == (MAX_ATTEMPTS, None, give_up, False)
    assert d.last_error == "update failed for good"
    assert await store.due_closes(give_up + timedelta(days=1), 10) == []
    assert await store.open_for_ticket(1) == []


async def test_retry_leaves_other_states_alone(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    a, b = await plan(store, nd("a"), nd("b"))
    await store.cancel(a, "gone", T0)
    assert await store.retry_later(a, "boom", T0, close=False) == "cancelled"
    assert await store.retry_later(b, "boom", T0, close=True) == "pending", "a close of an unsent delivery"
    assert (await get(db, a)).attempts == (await get(db, b)).attempts == 0
    with pytest.raises(StoreError, match="no delivery"):
        await store.retry_later(999_999, "boom", T0, close=False)


async def test_cancel_only_pending(db: Database, store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    a, b = await plan(store, nd("a"), nd("b"))
    await sent(store, b)
    now = T0 + timedelta(seconds=1)
    await store.cancel(a, "the ticket was closed " + "!" * 3000, now)
    await store.cancel(b, "too late", now)
    await store.cancel(999_999, "unknown", now)
    da = await get(db, a)
    assert (
        da.status == "cancelled"
        and da.last_error == ("the ticket was closed " + "!" * 3000)[:MAX_ERROR_CHARS]
    )
    assert (await get(db, b)).status == "sent"
    await store.cancel(a, "again", now)
    assert (await get(db, a)).last_error.startswith("the ticket was closed")


# ------------------------------------------------------------------------------------ cards


async def test_store_response_code(db: Database, store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    (a,) = await plan(store, nd("a"))
    await sent(store, a, task_id="T-9")
    expires = T0 + timedelta(hours=72)
    d = await store.store_response_code("wecom", "T-9", "fresh", expires, T0 + timedelta(minutes=1))
    assert d is not None and (d.id, d.response_code, d.code_expires_at) == (a, "fresh", expires)
    assert d == await get(db, a)
    assert await store.store_response_code("wecom", "T-unknown", "x", expires, T0) is None
    assert await store.store_response_code("dingtalk", "T-9", "x", expires, T0) is None
    assert (await get(db, a)).response_code == "fresh"


async def test_request_close_reopens_a_closed_card(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    a, b = await plan(store, nd("a"), nd("b"))
    await sent(store, a)
    await store.mark_closed(a, T0)
    now = T0 + timedelta(hours=1)
    await store.request_close(a, "已转交给 bob", now)
    await store.request_close(b, "not sent yet", now)
    d = await get(db, a)
    assert (d.close_due_at, d.close_note, d.closed_at) == (now, "已转交给 bob", None)
    assert [x.id for x in await store.due_closes(now, 10)] == [a]
    pb = await get(db, b)
    assert (pb.status, pb.close_due_at, pb.close_note) == ("pending", None, "")


# ------------------------------------------------------------------------------------ urges


async def test_urge_queries(store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    assert await store.last_urge_at(1) is None
    assert await store.urged_tickets_since("bob", T0) == 0
    await plan(store, nd("u1", kind="urge", actor="bob"), nd("p1", ticket_id=2, actor="bob"))
    later = T0 + timedelta(minutes=30)
    (u2, _, _) = await plan(
        store,
        nd("u2", kind="urge", actor="carol", recipient="dave"),
        nd("u3", kind="urge", actor="bob", ticket_id=3),
        nd("u4", kind="urge", actor="bob", ticket_id=3, recipient="erin"),
        now=later,
    )
    await store.cancel(u2, "superseded", later)  # an urge counts whatever became of its message
    last = await store.last_urge_at(1)
    assert last == later and last.utcoffset() == timedelta(0)
    assert await store.last_urge_at(3) == later
    assert await store.last_urge_at(2) is None, "only urge deliveries"
    assert await store.urged_tickets_since("bob", T0) == 2
    assert await store.urged_tickets_since("bob", T0 + timedelta(seconds=1)) == 1
    assert await store.urged_tickets_since("bob", later) == 1
    assert await store.urged_tickets_since("carol", T0) == 1
    assert await store.urged_tickets_since("dave", T0) == 0


# ------------------------------------------------------------------------------------ validation


async def test_naive_datetimes_are_refused(store: SqlDeliveries[Delivery, OutboxEvent]) -> None:
    naive = T0.replace(tzinfo=None)
    (a,) = await plan(store, nd("a"))
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.commit_plan([], [], [], [], naive),
        lambda: store.due_sends(naive, 10),
        lambda: store.due_closes(naive, 10),
        lambda: store.mark_closed(a, naive),
        lambda: store.retry_later(a, "boom", naive, close=False),
        lambda: store.retry_later(a, "boom", naive, close=True),
        lambda: store.cancel(a, "x", naive),
        lambda: store.store_response_code("wecom", "T", "c", naive, T0),
        lambda: store.store_response_code("wecom", "T", "c", T0, naive),
        lambda: store.request_close(a, "x", naive),
        lambda: store.urged_tickets_since("bob", naive),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="timezone-aware"):
            await call()
    for kw in ({"now": naive}, {"code_expires_at": naive}):
        args: dict[str, Any] = {"now": T0, "code_expires_at": None, **kw}
        with pytest.raises(StoreError, match="timezone-aware"):
            await store.mark_sent(
                a,
                task_id="T",
                msg_id="M",
                response_code="",
                state_id=0,
                version=0,
                actions="",
                live=False,
                **args,
            )
    (d,) = await store.due_sends(T0, 10)
    assert (d.status, d.attempts, d.last_error) == ("pending", 0, ""), "nothing changed"


async def test_closing_keeps_a_code_a_click_stored_meanwhile(
    db: Database, store: SqlDeliveries[Delivery, OutboxEvent]
) -> None:
    """The close used the code it claimed; a concurrent click stored a fresh one: only the used
    one is cleared, so the click's re-render can update the card instead of sending a message."""
    (a,) = await plan(store, nd("a"))
    await sent(store, a, task_id="task-a")
    used = (await get(db, a)).response_code
    await store.request_close(a, "已同意", T0)
    await store.store_response_code("wecom", "task-a", "fresh-code", T0 + timedelta(hours=24), T0)
    await store.mark_closed(a, T0, used_code=used)
    assert (await get(db, a)).response_code == "fresh-code"
    await store.mark_closed(a, T0, used_code="fresh-code")
    assert (await get(db, a)).response_code == ""
