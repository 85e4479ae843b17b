"""Hook calls in the store (SQLite and PostgreSQL): written with the ticket change that asks for them,
claimed by one worker at a time (FOR UPDATE SKIP LOCKED on PostgreSQL), retried, ended."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.decision import Decision
from core.events import HookRequested, StateEntered
from core.hook_calls import DEAD, DONE, FAILED, MAX_ATTEMPTS, PENDING, WAITING
from core.workflow import Hook, ParticipantType
from store.db import Database
from store.hooks import SUPERSEDED, SqlHookCalls
from store.tables import hook_call
from store.tickets import SqlTicketStore
from tests.store.builders import T0, new_ticket

HOOK = Hook("http://hooks.example/grant", "s3cret-hook-token", wait=True, extra_info="grant")
LEASE = 60.0


async def _hook_ticket(db: Database, *, state_id: int = 205) -> int:
    """A ticket created straight into a hook state: its HookRequested makes one call."""
    t = dataclasses.replace(
        new_ticket(state_id=state_id), participant_type=ParticipantType.HOOK, participants=()
    )
    decision = Decision(t, (), (StateEntered(state_id, ()), HookRequested(state_id, HOOK)))
    async with SqlTicketStore(db).transaction() as tx:
        stored = await tx.insert(decision, "loonflow")
    return stored.id


async def _retry_hook(db: Database, ticket_id: int, state_id: int = 205) -> None:
    """A change of the ticket that asks for the hook again (retry_script's decision)."""
    async with SqlTicketStore(db).transaction() as tx:
        t = await tx.get(ticket_id)
        assert t is not None
        new = dataclasses.replace(t, updated_at=t.updated_at + timedelta(seconds=1))
        assert await tx.update(Decision(new, (), (HookRequested(state_id, HOOK),)), t.version)


async def test_a_hook_state_writes_its_call_with_the_change(db: Database) -> None:
    ticket_id = await _hook_ticket(db)
    calls = await SqlHookCalls(db).for_ticket(ticket_id)
    assert len(calls) == 1
    c = calls[0]
    assert (c.ticket_id, c.state_id, c.ticket_version, c.url, c.wait) == (ticket_id, 205, 1, HOOK.url, True)
    assert (c.status, c.attempts, c.next_attempt_at, c.created_at) == (PENDING, 0, T0, T0)
    assert c.dedupe_key == f"{ticket_id}:1:205"
    assert len(c.call_id) >= 20 and c.call_id.replace("-", "").replace("_", "").isalnum()
    async with db.read() as conn:  # the token is never stored
        rows = [dict(r._mapping) for r in await conn.execute(select(hook_call))]
    assert HOOK.token not in repr(rows)


async def test_no_call_without_the_change(db: Database) -> None:
    t = dataclasses.replace(new_ticket(state_id=205), participant_type=ParticipantType.HOOK)

    async def save_then_fail() -> None:
        async with SqlTicketStore(db).transaction() as tx:
            await tx.insert(Decision(t, (), (HookRequested(205, HOOK),)), "loonflow")
            raise RuntimeError("the transaction fails after the save")

    with pytest.raises(RuntimeError):
        await save_then_fail()
    async with db.read() as conn:
        assert list(await conn.execute(select(hook_call))) == []


async def test_a_new_call_supersedes_the_open_one(db: Database) -> None:
    ticket_id = await _hook_ticket(db)
    hooks = SqlHookCalls(db)
    [first] = await hooks.for_ticket(ticket_id)
    await _retry_hook(db, ticket_id)
    old, new = await hooks.for_ticket(ticket_id)
    assert (old.id, old.status) == (first.id, FAILED)
    assert old.last_error == SUPERSEDED + new.call_id
    assert (new.status, new.ticket_version, new.dedupe_key) == (PENDING, 2, f"{ticket_id}:2:205")


async def test_claims_leases_and_outcomes(db: Database) -> None:
    ticket_id = await _hook_ticket(db)
    hooks = SqlHookCalls(db)
    assert await hooks.claim_due("w1", T0 - timedelta(seconds=1), 10, LEASE) == []  # not due yet
    [c] = await hooks.claim_due("w1", T0, 10, LEASE)
    assert (c.claimed_by, c.claimed_until) == ("w1", T0 + timedelta(seconds=LEASE))
    assert await hooks.claim_due("w2", T0 + timedelta(seconds=30), 10, LEASE) == []  # leased
    # w1 died: after the lease the call is claimable again, and w1 can no longer change it
    [again] = await hooks.claim_due("w2", T0 + timedelta(seconds=LEASE), 10, LEASE)
    assert (again.id, again.claimed_by) == (c.id, "w2")
    assert not await hooks.mark_waiting(c.id, "w1", T0, 200)
    assert await hooks.mark_called(c.id, "w2", T0)
    assert await hooks.mark_waiting(c.id, "w2", T0, 200)
    waiting = await hooks.waiting_for(ticket_id, 205)
    assert waiting is not None and (waiting.status, waiting.claimed_by, waiting.called_at) == (
        WAITING,
        "",
        T0,
    )
    assert await hooks.waiting_for(ticket_id, 204) is None
    assert await hooks.by_call_id(c.call_id) == waiting
    assert await hooks.claim_due("w3", T0 + timedelta(hours=1), 10, LEASE) == []  # waiting: not due
    # a callback claims the waiting call; a second one cannot until the first lets go
    assert await hooks.claim_waiting(c.id, "cb1", T0, 30)
    assert not await hooks.claim_waiting(c.id, "cb2", T0, 30)
    assert await hooks.release(c.id, "cb1")
    assert await hooks.claim_waiting(c.id, "cb2", T0, 30)
    assert await hooks.mark_done(c.id, "cb2", T0, response_status=200)
    done = await hooks.by_call_id(c.call_id)
    assert done is not None and (done.status, done.answered_at, done.claimed_by) == (DONE, T0, "")
    assert not await hooks.claim_waiting(c.id, "cb3", T0, 30)
    assert await hooks.waiting_for(ticket_id, 205) is None


async def test_retries_then_dead(db: Database) -> None:
    ticket_id = await _hook_ticket(db)
    hooks = SqlHookCalls(db)
    now = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [c] = await hooks.claim_due("w", now, 10, LEASE)
        assert c.attempts == attempt - 1
        status = await hooks.retry_later(
            c.id, "w", f"HTTP 503 #{attempt}", now + timedelta(seconds=5), response_status=503
        )
        assert status == (DEAD if attempt == MAX_ATTEMPTS else PENDING)
        now += timedelta(seconds=5)
    [dead] = await hooks.for_ticket(ticket_id)
    assert (dead.status, dead.attempts, dead.last_error, dead.response_status) == (
        DEAD,
        MAX_ATTEMPTS,
        f"HTTP 503 #{MAX_ATTEMPTS}",
        503,
    )
    assert await hooks.claim_due("w", now + timedelta(days=1), 10, LEASE) == []
    assert await hooks.retry_later(dead.id, "w", "x", now) is None  # not ours / not pending


async def test_failed_and_dead_are_final(db: Database) -> None:
    a, b = await _hook_ticket(db), await _hook_ticket(db)
    hooks = SqlHookCalls(db)
    ca, cb = await hooks.claim_due("w", T0, 10, LEASE)
    assert await hooks.mark_failed(ca.id, "w", T0, "code 1: no such group", response_status=200)
    assert await hooks.mark_dead(cb.id, "w", T0, "gave up")
    assert not await hooks.mark_done(ca.id, "w", T0)
    assert [c.status for c in await hooks.for_ticket(a)] == [FAILED]
    assert [c.status for c in await hooks.for_ticket(b)] == [DEAD]


async def test_two_claimers_never_get_the_same_call(database_url: str) -> None:
    """Two workers with their own connection pools claim at once, many rounds: every call is claimed
    exactly once (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: one writer at a time)."""
    one, two = Database(database_url), Database(database_url)
    try:
        ids = [await _hook_ticket(one) for _ in range(30)]
        a, b = SqlHookCalls(one), SqlHookCalls(two)
        got: dict[str, list[int]] = {"a": [], "b": []}
        for _ in range(8):
            ra, rb = await asyncio.gather(a.claim_due("a", T0, 3, LEASE), b.claim_due("b", T0, 3, LEASE))
            got["a"] += [c.id for c in ra]
            got["b"] += [c.id for c in rb]
        claimed = got["a"] + got["b"]
        assert len(claimed) == len(set(claimed)) == 30
        assert got["a"] and got["b"]
        rows = [c for t in ids for c in await a.for_ticket(t)]
        by_worker = {c.id: c.claimed_by for c in rows}
        assert all(by_worker[i] == "a" for i in got["a"]) and all(by_worker[i] == "b" for i in got["b"])
    finally:
        await one.dispose()
        await two.dispose()
