"""store.due_work over SQLite and PostgreSQL: rows written with the ticket change that armed them
(and only if it commits), claims that never hand one row to two workers, and the outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.decision import Decision
from core.events import SlaArmed, TimerArmed
from store.db import Database
from store.due_work import DEAD, DONE, MAX_ATTEMPTS, PENDING, SKIPPED, SqlDueWork, dedupe_key
from store.tables import due_work
from store.tickets import SqlTicketStore
from tests.store.builders import T0, create_decision, new_ticket

H = timedelta(hours=1)
LEASE = timedelta(minutes=5)


def armed_decision(n_reminds: int = 1) -> Decision:
    base = create_decision(new_ticket())
    sla = SlaArmed(2, T0, tuple(T0 + (i + 1) * H for i in range(n_reminds)), T0 + 9 * H, T0 + 18 * H)
    return dataclasses.replace(base, events=(*base.events, TimerArmed(21, 2, T0 + 2 * H, T0), sla))


async def insert(db: Database, decision: Decision | None = None) -> int:
    async with SqlTicketStore(db).transaction() as tx:
        stored = await tx.insert(decision or armed_decision(), "loonflow")
    return stored.id


async def test_timer_and_sla_rows_are_written_with_the_ticket(db: Database) -> None:
    ticket_id = await insert(db, armed_decision(n_reminds=2))
    rows = await SqlDueWork(db).for_ticket(ticket_id)
    assert [(r.kind, r.step, r.transition_id, r.due_at) for r in rows] == [
        ("remind", 0, 0, T0 + H),
        ("timer", 0, 21, T0 + 2 * H),
        ("remind", 1, 0, T0 + 2 * H),
        ("urge", 0, 0, T0 + 9 * H),
        ("escalate", 0, 0, T0 + 18 * H),
    ]
    assert all(r.status == PENDING and r.state_id == 2 and r.state_entered_at == T0 for r in rows)
    assert rows[1].dedupe_key == dedupe_key(ticket_id, 2, T0, "timer", 21, 0)
    assert rows[1].dedupe_key == f"{ticket_id}:2:{T0.isoformat()}:timer:21:0"


async def _insert_then_fail(db: Database) -> None:
    async with SqlTicketStore(db).transaction() as tx:
        await tx.insert(armed_decision(), "loonflow")
        raise RuntimeError("the change fails after the write")


async def test_a_rolled_back_change_leaves_no_due_work(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await _insert_then_fail(db)
    async with db.read() as conn:
        assert list(await conn.execute(select(due_work.c.id))) == []


async def test_an_update_arms_its_own_rows_and_a_replayed_event_is_not_doubled(db: Database) -> None:
    ticket_id = await insert(db, create_decision(new_ticket()))
    store = SqlTicketStore(db)
    async with store.transaction() as tx:
        ticket = await tx.get(ticket_id)
        assert ticket is not None
        timer = TimerArmed(21, 2, T0 + H, T0)
        decision = Decision(dataclasses.replace(ticket, updated_at=T0), (), (timer, timer))
        assert await tx.update(decision, ticket.version)
    assert [r.kind for r in await SqlDueWork(db).for_ticket(ticket_id)] == ["timer"]


async def test_claims_hand_out_due_rows_once_until_the_lease_runs_out(db: Database) -> None:
    ticket_id = await insert(db)
    work = SqlDueWork(db)
    assert await work.claim_due("w1", T0 + H - timedelta(seconds=1), 10, LEASE) == []
    (first,) = await work.claim_due("w1", T0 + H, 10, LEASE)
    assert (first.kind, first.claimed_by, first.claimed_until) == ("remind", "w1", T0 + H + LEASE)
    assert await work.claim_due("w2", T0 + H + timedelta(minutes=1), 10, LEASE) == []  # held by w1
    (again,) = await work.claim_due("w2", T0 + H + LEASE, 10, LEASE)  # w1's lease ran out
    assert again.id == first.id and again.claimed_by == "w2"
    assert not await work.mark_done(first.id, "w1", T0 + 2 * H)  # w1 lost it: nothing changes
    assert await work.mark_done(first.id, "w2", T0 + 2 * H)
    assert not await work.mark_done(first.id, "w2", T0 + 2 * H)  # done once
    rows = {r.id: r for r in await work.for_ticket(ticket_id)}
    assert rows[first.id].status == DONE and rows[first.id].done_at == T0 + 2 * H
    assert rows[first.id].claimed_until is None
    claimed = await work.claim_due("w1", T0 + 20 * H, 10, LEASE)
    assert [c.kind for c in claimed] == ["timer", "urge", "escalate"]  # earliest due first
    assert await work.claim_due("w1", T0 + 20 * H, 10, LEASE) == []


async def test_skipped_dead_and_retried_rows(db: Database) -> None:
    ticket_id = await insert(db)
    work = SqlDueWork(db)
    now = T0 + 20 * H
    remind, timer, urge, escalate = await work.claim_due("w", now, 10, 100 * H)
    assert await work.mark_skipped(remind.id, "w", "the ticket has left the state", now)
    assert await work.mark_dead(timer.id, "w", "refused", now)
    assert await work.retry_later(urge.id, "w", "boom", now + H) == PENDING
    assert await work.retry_later(escalate.id, "other", "boom", now + H) is None  # not its claim
    rows = {r.id: r for r in await work.for_ticket(ticket_id)}
    assert (rows[remind.id].status, rows[remind.id].last_error) == (SKIPPED, "the ticket has left the state")
    assert (rows[timer.id].status, rows[timer.id].last_error) == (DEAD, "refused")
    retried = rows[urge.id]
    assert (retried.status, retried.attempts, retried.due_at, retried.claimed_by) == (PENDING, 1, now + H, "")
    assert [r.id for r in await work.claim_due("w", now + H - timedelta(seconds=1), 10, LEASE)] == []
    for attempt in range(2, MAX_ATTEMPTS + 1):
        (item,) = await work.claim_due("w", now + attempt * H, 10, LEASE)
        status = await work.retry_later(item.id, "w", f"boom {attempt}", now + (attempt + 1) * H)
        assert status == (DEAD if attempt == MAX_ATTEMPTS else PENDING)
    assert await work.pending_count() == 1  # the escalation, still claimed by "w"


async def test_two_claimers_never_get_the_same_row(database_url: str) -> None:
    dbs = [Database(database_url), Database(database_url)]
    try:
        for _ in range(20):
            await insert(dbs[0], armed_decision(n_reminds=3))  # 6 rows each
        claimers = [SqlDueWork(dbs[i % 2]) for i in range(6)]
        now = T0 + 30 * H
        got = await asyncio.gather(*(c.claim_due(f"w{i}", now, 10, LEASE) for i, c in enumerate(claimers)))
        ids = [item.id for batch in got for item in batch]
        assert len(ids) == len(set(ids)) == 60
        rest = await claimers[0].claim_due("late", now, 1000, LEASE)
        assert len(rest) == 120 - 60 and not set(ids) & {r.id for r in rest}
    finally:
        for d in dbs:
            await d.dispose()


@pytest.mark.parametrize(  # row locks: PostgreSQL only (SQLite has a single writer)
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_postgres_claims_skip_rows_another_transaction_holds(database_url: str) -> None:
    db, other = Database(database_url), Database(database_url)
    try:
        first, *_ = await SqlDueWork(db).for_ticket(await insert(db))
        async with other.write() as conn:  # another worker in the middle of its claim
            await conn.execute(select(due_work.c.id).where(due_work.c.id == first.id).with_for_update())
            claimed = await asyncio.wait_for(SqlDueWork(db).claim_due("w", T0 + 20 * H, 10, LEASE), 5)
        assert first.id not in {c.id for c in claimed} and len(claimed) == 3
    finally:
        await db.dispose()
        await other.dispose()
