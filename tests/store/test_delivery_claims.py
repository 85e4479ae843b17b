"""Claims of due sends and closes (SqlDeliveries.claim_due_sends / claim_due_closes) on SQLite and
PostgreSQL: a claimed delivery is given to no other worker until its claim is finished or has
expired; on PostgreSQL concurrent workers never get the same row and a locked row is skipped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.notify.ports import Close, Delivery, DeliveryStore, NewDelivery, OutboxEvent
from store.db import Database
from store.deliveries import MAX_ATTEMPTS, SqlDeliveries
from store.errors import StoreError
from store.tables import delivery

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
Store = SqlDeliveries[Delivery, OutboxEvent]

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def store(db: Database) -> Store:
    return SqlDeliveries(db, delivery_type=Delivery, event_type=OutboxEvent)


def nd(n: int, *, ticket_id: int = 1) -> NewDelivery:
    return NewDelivery(
        platform="wecom",
        ticket_id=ticket_id,
        recipient=f"user{n}",
        address=f"wx_user{n}",
        kind="pending",
        dedupe_key=f"pending:wecom:{ticket_id}:{n}",
    )


async def planned(s: Store, count: int, now: datetime = T0) -> list[int]:
    return await s.commit_plan([], [nd(n) for n in range(count)], [], [], now)


async def claims(db: Database) -> dict[int, tuple[str, datetime | None]]:
    c = delivery.c
    async with db.read() as conn:
        rows = await conn.execute(select(c.id, c.claimed_by, c.claimed_until))
        return {int(r.id): (r.claimed_by, r.claimed_until) for r in rows}


async def send(s: Store, id: int, now: datetime = T0) -> None:
    await s.mark_sent(
        id,
        task_id=f"task-{id}",
        msg_id=f"m{id}",
        response_code="rc",
        code_expires_at=now + timedelta(hours=24),
        state_id=1,
        version=1,
        actions="transition:1",
        live=True,
        now=now,
    )


def test_the_store_still_conforms_to_the_port(db: Database) -> None:
    conforming: DeliveryStore = SqlDeliveries(db, delivery_type=Delivery, event_type=OutboxEvent)
    assert conforming is not None


async def test_a_claimed_send_is_given_to_no_other_worker_until_the_lease_expires(
    store: Store, db: Database
) -> None:
    a, b, c = await planned(store, 3)
    first = await store.claim_due_sends("w1", T0, 2, LEASE)
    assert [d.id for d in first] == [a, b]  # lowest id first
    assert (await claims(db))[a] == ("w1", T0 + LEASE)
    assert [d.id for d in await store.claim_due_sends("w2", T0, 10, LEASE)] == [c]
    assert await store.claim_due_sends("w3", T0 + LEASE - timedelta(seconds=1), 10, LEASE) == []
    # w1 and w2 died: their claims are taken over once expired
    taken = await store.claim_due_sends("w3", T0 + LEASE, 10, LEASE)
    assert [d.id for d in taken] == [a, b, c]
    assert {who for who, _ in (await claims(db)).values()} == {"w3"}


async def test_finishing_a_claim_clears_it(store: Store, db: Database) -> None:
    a, b, c, d = await planned(store, 4)
    await store.claim_due_sends("w1", T0, 10, LEASE)
    await send(store, a)
    await store.cancel(b, "moot", T0)
    status = await store.retry_later(c, "busy", T0 + timedelta(seconds=30), close=False)
    await store.defer(d, T0 + timedelta(seconds=20), T0)
    assert status == "pending"
    assert set((await claims(db)).values()) == {("", None)}
    # the retried and the deferred one come back when due, to any worker
    later = await store.claim_due_sends("w2", T0 + timedelta(seconds=30), 10, LEASE)
    assert [x.id for x in later] == [c, d]
    assert [x.attempts for x in later] == [1, 0]  # a deferral is not an attempt


async def test_the_last_failed_attempt_makes_it_dead_and_unclaimed(store: Store, db: Database) -> None:
    (a,) = await planned(store, 1)
    now = T0
    for _ in range(MAX_ATTEMPTS):
        (got,) = await store.claim_due_sends("w1", now, 10, LEASE)
        status = await store.retry_later(got.id, "HTTP 502", now, close=False)
    assert status == "dead"
    assert (await claims(db))[a] == ("", None)
    assert await store.claim_due_sends("w1", now + timedelta(days=1), 10, LEASE) == []


async def test_closes_are_claimed_and_finished_the_same_way(store: Store, db: Database) -> None:
    a, b = await planned(store, 2)
    await send(store, a)
    await send(store, b)
    await store.commit_plan([], [], [Close(a, "已同意"), Close(b, "已同意")], [], T0)
    assert [d.id for d in await store.claim_due_closes("w1", T0, 1, LEASE)] == [a]
    assert [d.id for d in await store.claim_due_closes("w2", T0, 10, LEASE)] == [b]
    assert await store.claim_due_closes("w3", T0, 10, LEASE) == []
    await store.mark_closed(a, T0)
    await store.retry_later(b, "busy", T0 + timedelta(seconds=10), close=True)
    assert set((await claims(db)).values()) == {("", None)}
    assert [d.id for d in await store.claim_due_closes("w3", T0 + timedelta(seconds=10), 10, LEASE)] == [b]


async def test_unclaim_gives_up_only_ones_own_claim(store: Store, db: Database) -> None:
    (a,) = await planned(store, 1)
    await store.claim_due_sends("w1", T0, 10, LEASE)
    await store.unclaim(a, "w2")
    assert (await claims(db))[a][0] == "w1"
    await store.unclaim(a, "w1")
    assert [d.id for d in await store.claim_due_sends("w2", T0, 10, LEASE)] == [a]


@pytest.mark.parametrize(
    ("worker", "lease", "now"),
    [
        ("", LEASE, T0),
        ("w1", timedelta(0), T0),
        ("w1", timedelta(seconds=-1), T0),
        ("w1", LEASE, T0.replace(tzinfo=None)),
    ],
)
async def test_bad_claims_are_refused_and_change_nothing(
    store: Store, db: Database, worker: str, lease: timedelta, now: datetime
) -> None:
    await planned(store, 2)
    before = await claims(db)
    with pytest.raises(StoreError):
        await store.claim_due_sends(worker, now, 10, lease)
    with pytest.raises(StoreError):
        await store.claim_due_closes(worker, now, 10, lease)
    assert await claims(db) == before
    assert await store.claim_due_sends("w1", T0, 0, LEASE) == []


# ------------------------------------------------------------------------------------ PostgreSQL


@POSTGRES_ONLY
async def test_concurrent_workers_never_claim_the_same_delivery(database_url: str) -> None:
    databases = [Database(database_url) for _ in range(4)]
    try:
        stores: list[Store] = [
            SqlDeliveries(d, delivery_type=Delivery, event_type=OutboxEvent) for d in databases
        ]
        ids = await planned(stores[0], 120)
        got: dict[str, list[int]] = {f"w{i}": [] for i in range(len(stores))}

        async def work(i: int) -> None:
            while True:
                batch = await stores[i].claim_due_sends(f"w{i}", T0, 7, LEASE)
                if not batch:
                    return
                got[f"w{i}"] += [d.id for d in batch]

        await asyncio.gather(*(work(i) for i in range(len(stores))))
        everything = [id for batch in got.values() for id in batch]
        assert sorted(everything) == ids  # each exactly once
        assert sum(1 for batch in got.values() if batch) >= 2  # and really shared
        owners = await claims(databases[0])
        assert all(owners[id][0] == who for who, batch in got.items() for id in batch)
    finally:
        for d in databases:
            await d.dispose()


@POSTGRES_ONLY
async def test_a_row_locked_by_another_worker_is_skipped_not_waited_for(database_url: str) -> None:
    mine, other = Database(database_url), Database(database_url)
    try:
        store: Store = SqlDeliveries(mine, delivery_type=Delivery, event_type=OutboxEvent)
        theirs: Store = SqlDeliveries(other, delivery_type=Delivery, event_type=OutboxEvent)
        a, b, c = await planned(store, 3)
        async with other.write() as conn:  # another worker is in the middle of claiming a and b
            c_ = delivery.c
            await conn.execute(select(c_.id).where(c_.id.in_([a, b])).with_for_update())
            async with asyncio.timeout(10):  # a guard against a hang, never a wait
                got = await store.claim_due_sends("w1", T0, 10, LEASE)
        assert [d.id for d in got] == [c]
        assert [d.id for d in await theirs.claim_due_sends("w2", T0, 10, LEASE)] == [a, b]
    finally:
        await mine.dispose()
        await other.dispose()
