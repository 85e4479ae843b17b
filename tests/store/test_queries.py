"""list_tickets / flow_logs / get_ticket on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from core.decision import Decision
from core.ticket import ActState, InterveneType, Ticket
from store.db import Database
from store.errors import StoreError
from store.queries import flow_logs, get_ticket, list_tickets
from store.tickets import SqlTicketStore
from tests.store.builders import T0, advance, create, log, new_ticket, save


@pytest.fixture
def store(db: Database) -> SqlTicketStore:
    return SqlTicketStore(db)


async def ids(db: Database, **kw: object) -> list[int]:
    tickets, total = await list_tickets(db, **kw)  # type: ignore[arg-type]
    assert total >= len(tickets)
    return [t.id for t in tickets]


@pytest.fixture
async def world(store: SqlTicketStore) -> dict[str, Ticket]:
    """a: alice -> bob (bob approved, now carol's); b: bob -> carol; c: carol -> alice, finished;
    d: alice -> dave, deleted; e: a child of a (parent state 3), workflow 2, created a day later."""
    a = await create(
        store, new_ticket(creator="alice", participants=("bob",), title="VPN access", created_at=T0)
    )
    step = advance(a, "bob", to_state=3, participants=("carol",))
    assert await save(store, step, 1)
    b = await create(
        store,
        new_ticket(
            creator="bob", participants=("carol",), title="Laptop", created_at=T0 + timedelta(hours=1)
        ),
    )
    c = await create(
        store,
        new_ticket(
            creator="carol", participants=("alice",), title="vpn renew", created_at=T0 + timedelta(hours=2)
        ),
    )
    done = advance(c, "alice", to_state=9, participants=(), act_state=ActState.FINISHED)
    assert await save(store, done, 1)
    d = await create(
        store, new_ticket(creator="alice", participants=("dave",), created_at=T0 + timedelta(hours=3))
    )
    gone = dataclasses.replace(d, is_deleted=True)
    assert await save(
        store, Decision(ticket=gone, logs=(log(gone, "alice", intervene_type=InterveneType.DELETE),)), 1
    )
    e = await create(
        store,
        new_ticket(
            creator="erin",
            participants=("alice",),
            workflow_id=2,
            title="child 100%_done",
            created_at=T0 + timedelta(days=1),
            parent_ticket_id=a.id,
            parent_ticket_state_id=3,
        ),
        prefix="hr",
    )
    saved = {"a": step.ticket, "c": done.ticket, "d": gone}
    return {"b": b, "e": e, **{k: dataclasses.replace(t, version=2) for k, t in saved.items()}}


async def test_categories(db: Database, world: dict[str, Ticket]) -> None:
    a, b, c, e = (world[k].id for k in "abce")
    assert await ids(db, username="alice", category="all") == [e, c, b, a]
    assert await ids(db, username="alice", category="owner") == [a]
    assert await ids(db, username="alice", category="duty") == [e]
    assert await ids(db, username="alice", category="worked") == [c, a]
    assert await ids(db, username="alice", category="relation") == [e, c, a]
    assert await ids(db, username="bob", category="duty") == []
    assert await ids(db, username="bob", category="worked") == [b, a]
    assert await ids(db, username="carol", category="duty") == [b, a]
    assert await ids(db, username="carol", category="relation") == [c, b, a]
    assert await ids(db, username="dave", category="relation") == []  # his only ticket is deleted
    assert await ids(db, username="nobody", category="duty") == []


async def test_filters(db: Database, world: dict[str, Ticket]) -> None:
    a, b, c, e = (world[k] for k in "abce")
    q = {"username": "alice", "category": "all"}
    assert await ids(db, **q, title="vpn") == [c.id, a.id]  # case-insensitive substring
    assert await ids(db, **q, title="100%_") == [e.id]  # wildcards are literal
    assert await ids(db, **q, title="100%x") == []
    assert await ids(db, **q, sn_prefix="hr_") == [e.id]
    assert await ids(db, **q, sn_prefix="loonflow_20240515") == [c.id, b.id, a.id]
    assert await ids(db, **q, sn_prefix=a.sn) == [a.id]
    assert await ids(db, **q, sn_prefix="LOONFLOW") == []  # SN prefixes are case-sensitive
    assert await ids(db, **q, sn_prefix="loonflow%") == []
    assert await ids(db, **q, create_start=T0 + timedelta(hours=1), create_end=T0 + timedelta(hours=2)) == [
        c.id,
        b.id,
    ]
    assert await ids(db, **q, create_start=T0 + timedelta(hours=5)) == [e.id]
    assert await ids(db, **q, workflow_ids=[2]) == [e.id]
    assert await ids(db, **q, workflow_ids=[]) == []
    assert await ids(db, **q, state_ids=[3, 9]) == [c.id, a.id]
    assert await ids(db, **q, ticket_ids=[a.id, e.id, 999_999]) == [e.id, a.id]
    assert await ids(db, **q, act_state=ActState.FINISHED) == [c.id]
    assert await ids(db, **q, act_state=1) == [e.id, b.id, a.id]
    assert await ids(db, **q, parent_ticket_id=a.id) == [e.id]
    assert await ids(db, **q, parent_ticket_id=a.id, parent_ticket_state_id=2) == []
    assert await ids(db, **q, parent_ticket_id=0) == [c.id, b.id, a.id]
    assert await ids(db, username="alice", category="relation", workflow_ids=[1], title="VPN") == [c.id, a.id]


async def test_order_and_pages(db: Database, world: dict[str, Ticket]) -> None:
    a, b, c, e = (world[k].id for k in "abce")
    assert await ids(db, username="x", reverse=False) == [a, b, c, e]
    page1, total = await list_tickets(db, username="x", per_page=3)
    page2, total2 = await list_tickets(db, username="x", per_page=3, page=2)
    page3, total3 = await list_tickets(db, username="x", per_page=3, page=3)
    assert [t.id for t in page1] == [e, c, b]
    assert [t.id for t in page2] == [a]
    assert page3 == []
    assert total == total2 == total3 == 4
    assert page1[1] == world["c"]  # full snapshots come back


async def test_bad_arguments(db: Database) -> None:
    with pytest.raises(StoreError, match="category"):
        await list_tickets(db, username="a", category="mine")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="page"):
        await list_tickets(db, username="a", page=0)
    with pytest.raises(StoreError, match="per_page"):
        await list_tickets(db, username="a", per_page=0)
    with pytest.raises(StoreError, match="aware"):
        await list_tickets(db, username="a", create_start=datetime(2024, 1, 1))


async def test_flow_logs_and_get_ticket(db: Database, world: dict[str, Ticket]) -> None:
    a = world["a"]
    newest_first = await flow_logs(db, a.id)
    assert [(entry.actor, entry.state_id) for entry in newest_first] == [("bob", 2), ("alice", 1)]
    assert await flow_logs(db, a.id, desc=False) == newest_first[::-1]
    assert all(entry.ticket_id == a.id for entry in newest_first)
    assert await flow_logs(db, 999_999) == []
    assert await get_ticket(db, a.id) == a
    assert await get_ticket(db, world["d"].id) == world["d"]
    assert await get_ticket(db, 999_999) is None
