"""Contract tests of SqlTicketStore / SqlTicketTx (core.ports.TicketStore) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

import pytest
from sqlalchemy import update

from core.decision import Decision
from core.errors import RequestTaken
from core.events import CommentAdded, HookRequested, TicketEnded, event_payload
from core.ticket import SYSTEM_USER, ActState, InterveneType
from core.workflow import Hook
from store.db import Database
from store.errors import DatabaseError, StoreError
from store.tables import flow_log, outbox, sn_counter, ticket, ticket_request, ticket_user
from store.tickets import SqlTicketStore, format_sn
from tests.store.builders import T0, advance, create, create_decision, log, new_ticket, rows, save


@pytest.fixture
def store(db: Database) -> SqlTicketStore:
    return SqlTicketStore(db)


class Boom(Exception):
    pass


async def test_insert_assigns_id_sn_and_version_1(store: SqlTicketStore) -> None:
    t = await create(store)
    assert t.id > 0
    assert t.sn == "loonflow_202405150001"
    assert t.version == 1
    async with store.transaction() as tx:
        assert await tx.get(t.id) == t


async def test_round_trip_keeps_every_field(store: SqlTicketStore) -> None:
    entered = T0 + timedelta(seconds=3)
    original = new_ticket(
        participants=("bob", "carol"),
        fields={"reason": "远程办公", "days": 3, "nested": {"a": [1, 2]}, "ok": True, "none": None},
        accepted_by="bob",
        in_add_node=True,
        add_node_man="bob",
        add_node_target="dave",
        votes=MappingProxyType({"carol": 7}),
        cc=frozenset({"erin", "frank"}),
        parent_ticket_id=41,
        parent_ticket_state_id=5,
        script_run_last_result=False,
        last_handlers=MappingProxyType({1: "alice", 2: "bob"}),
    )
    original = dataclasses.replace(original, state_entered_at=entered)
    t = await create(store, original)
    async with store.transaction() as tx:
        got = await tx.get(t.id)
    assert got == dataclasses.replace(original, id=t.id, sn=t.sn, version=1)
    assert got is not None
    assert isinstance(got.fields, MappingProxyType)
    assert isinstance(got.participants, tuple)
    assert isinstance(got.relation, frozenset)
    assert isinstance(got.act_state, ActState)
    assert got.last_handlers[2] == "bob"
    assert got.created_at.tzinfo is UTC
    assert got.state_entered_at == entered


async def test_sn_uses_the_utc_date_of_created_at(store: SqlTicketStore) -> None:
    shanghai = timezone(timedelta(hours=8))
    created = datetime(2024, 5, 16, 1, 0, tzinfo=shanghai)  # 2024-05-15 17:00 UTC
    t = await create(store, new_ticket(created_at=created))
    assert t.sn == "loonflow_202405150001"
    async with store.transaction() as tx:
        got = await tx.get(t.id)
    assert got is not None
    assert got.created_at == created
    assert got.created_at.utcoffset() == timedelta(0)


async def test_sn_counts_per_day_and_prefix(store: SqlTicketStore) -> None:
    sns = [
        (await create(store, new_ticket(created_at=T0))).sn,
        (await create(store, new_ticket(created_at=T0 + timedelta(hours=1)))).sn,
        (await create(store, new_ticket(created_at=T0 + timedelta(days=1)))).sn,
        (await create(store, new_ticket(created_at=T0), prefix="hr")).sn,
        (await create(store, new_ticket(created_at=T0))).sn,
    ]
    assert sns == [
        "loonflow_202405150001",
        "loonflow_202405150002",
        "loonflow_202405160001",
        "hr_202405150001",
        "loonflow_202405150003",
    ]


async def test_sn_grows_beyond_four_digits(store: SqlTicketStore, db: Database) -> None:
    await create(store)
    async with db.write() as conn:
        await conn.execute(update(sn_counter).values(value=9999))
    assert (await create(store)).sn == "loonflow_2024051510000"
    assert format_sn("x", "20240101", 7) == "x_202401010007"


async def test_concurrent_inserts_get_distinct_sns(store: SqlTicketStore) -> None:
    created = await asyncio.gather(*(create(store) for _ in range(50)))
    sns = {t.sn for t in created}
    assert len(sns) == 50
    assert len({t.id for t in created}) == 50
    assert sns == {f"loonflow_20240515{n:04d}" for n in range(1, 51)}


async def test_insert_writes_logs_users_and_outbox(store: SqlTicketStore, db: Database) -> None:
    t = await create(store)
    logs = await rows(db, flow_log, ticket_id=t.id)
    assert [(r["actor"], r["state_id"], r["transition_name"], r["intervene_type"]) for r in logs] == [
        ("alice", 1, "提交", InterveneType.TRANSITION)
    ]
    assert logs[0]["fields"] == {"reason": "remote work"}
    events = await rows(db, outbox, ticket_id=t.id)
    assert [(e["event"], e["status"], e["attempts"]) for e in events] == [
        ("TicketCreated", "pending", 0),
        ("StateEntered", "pending", 0),
    ]
    assert events[1]["payload"] == {"state_id": 2, "participants": ["bob"], "must_accept": False}
    assert events[0]["next_attempt_at"] == T0
    assert events[0]["dedupe_key"] is None


async def test_update_with_the_right_version_saves_and_bumps(store: SqlTicketStore, db: Database) -> None:
    t = await create(store)
    decision = advance(t, "bob", to_state=3, participants=("carol",), fields=MappingProxyType({"x": 1}))
    assert await save(store, decision, expected_version=1)
    async with store.transaction() as tx:
        got = await tx.get(t.id)
        last = await tx.last_log(t.id)
    assert got == dataclasses.replace(decision.ticket, version=2)
    assert last is not None
    assert (last.ticket_id, last.actor, last.state_id, last.transition_id) == (t.id, "bob", 2, 7)
    assert last.id > 0
    assert [e["event"] for e in await rows(db, outbox, ticket_id=t.id)] == [
        "TicketCreated",
        "StateEntered",
        "TicketTransitioned",
        "StateEntered",
    ]
    again = advance(decision.ticket, "carol", to_state=4, participants=("dave",))
    assert await save(store, again, expected_version=2)
    async with store.transaction() as tx:
        got = await tx.get(t.id)
    assert got is not None
    assert got.version == 3


async def test_update_with_a_stale_version_writes_nothing(store: SqlTicketStore, db: Database) -> None:
    t = await create(store)
    assert await save(store, advance(t, "bob", to_state=3, participants=("carol",)), expected_version=1)
    before = (await rows(db, ticket, id=t.id), await rows(db, ticket_user, ticket_id=t.id))
    stale = advance(t, "bob", to_state=9, participants=("zed",), title="lost")
    assert not await save(store, stale, expected_version=1)
    assert len(await rows(db, flow_log, ticket_id=t.id)) == 2
    assert len(await rows(db, outbox, ticket_id=t.id)) == 4
    assert (await rows(db, ticket, id=t.id), await rows(db, ticket_user, ticket_id=t.id)) == before


async def test_update_of_an_unknown_ticket_returns_false(store: SqlTicketStore) -> None:
    ghost = dataclasses.replace(new_ticket(), id=999_999)
    assert not await save(store, Decision(ticket=ghost, logs=(log(ghost, "bob"),)), expected_version=1)


async def test_racing_updates_only_one_wins(store: SqlTicketStore) -> None:
    """Both writers read version 1; whoever saves second loses, on either database."""
    t = await create(store)
    first_saved = asyncio.Event()

    async def first() -> bool:
        async with store.transaction() as tx:
            ok = await tx.update(advance(t, "bob", to_state=3, participants=("carol",)), 1)
            first_saved.set()
            await asyncio.sleep(0)  # let the second writer reach its UPDATE (PG) / its BEGIN (SQLite)
            return ok

    async def second() -> bool:
        await first_saved.wait()
        async with store.transaction() as tx:
            return await tx.update(advance(t, "bob", to_state=5, participants=("erin",)), 1)

    assert list(await asyncio.gather(first(), second())) == [True, False]
    async with store.transaction() as tx:
        got = await tx.get(t.id)
    assert got is not None
    assert (got.state_id, got.version) == (3, 2)


async def test_rollback_leaves_no_ticket_log_user_outbox_or_sn(store: SqlTicketStore, db: Database) -> None:
    async def insert_then_fail() -> None:
        async with store.transaction() as tx:
            t = await tx.insert(create_decision(new_ticket()), "loonflow")
            assert await tx.get(t.id) is not None
            raise Boom

    with pytest.raises(Boom):
        await insert_then_fail()
    for table in (ticket, flow_log, ticket_user, outbox, sn_counter):
        assert await rows(db, table) == []
    assert (await create(store)).sn == "loonflow_202405150001"


async def test_rollback_of_an_update_keeps_the_old_state(store: SqlTicketStore, db: Database) -> None:
    t = await create(store)

    async def update_then_fail() -> None:
        async with store.transaction() as tx:
            assert await tx.update(advance(t, "bob", to_state=3, participants=("carol",)), 1)
            raise Boom

    with pytest.raises(Boom):
        await update_then_fail()
    async with store.transaction() as tx:
        assert await tx.get(t.id) == t
    assert len(await rows(db, outbox, ticket_id=t.id)) == 2


async def test_outbox_payloads_are_json_and_hide_hook_tokens(store: SqlTicketStore, db: Database) -> None:
    t = await create(store)
    hook = HookRequested(state_id=3, hook=Hook(url="https://hooks.example/x", token="s3cret", wait=True))
    ended = TicketEnded(act_state=4, parent_ticket_id=0, parent_ticket_state_id=0)
    comment = CommentAdded(actor="bob", text="看一下")
    decision = advance(t, "bob", to_state=3, participants=(), extra_events=(hook, comment, ended))
    assert await save(store, decision, 1)
    events = (await rows(db, outbox, ticket_id=t.id))[2:]
    assert [e["event"] for e in events] == [
        "TicketTransitioned",
        "StateEntered",
        "HookRequested",
        "CommentAdded",
        "TicketEnded",
    ]
    assert events[2]["payload"] == event_payload(hook)
    assert "token" not in events[2]["payload"]["hook"]
    assert events[3]["payload"] == {"actor": "bob", "text": "看一下"}


def _users(table_rows: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
    return {r["username"]: (bool(r["is_current"]), bool(r["worked"])) for r in table_rows}


async def test_ticket_user_rows_follow_duty_relation_and_work(store: SqlTicketStore, db: Database) -> None:
    t = await create(store, new_ticket(participants=("bob",), cc=frozenset({"erin"})))
    # (is_current, worked)
    assert _users(await rows(db, ticket_user, ticket_id=t.id)) == {
        "alice": (False, True),
        "bob": (True, False),
    }
    step = advance(t, "bob", to_state=3, participants=("carol", "dave"))
    assert await save(store, step, 1)
    assert _users(await rows(db, ticket_user, ticket_id=t.id)) == {
        "alice": (False, True),
        "bob": (False, True),
        "carol": (True, False),
        "dave": (True, False),
    }
    # carol votes in an all-must-process state: she is no longer on duty, dave still is
    voted = dataclasses.replace(
        step.ticket, votes=MappingProxyType({"carol": 7}), updated_at=step.ticket.updated_at + timedelta(1)
    )
    assert await save(store, Decision(ticket=voted, logs=(log(voted, "carol", state_id=3),)), 2)
    assert _users(await rows(db, ticket_user, ticket_id=t.id))["carol"] == (False, True)
    assert _users(await rows(db, ticket_user, ticket_id=t.id))["dave"] == (True, False)
    # dave consults frank (add-node): only frank is on duty
    consult = dataclasses.replace(
        voted,
        in_add_node=True,
        add_node_man="dave",
        add_node_target="frank",
        relation=voted.relation | {"frank"},
    )
    entry = log(consult, "dave", state_id=3, intervene_type=InterveneType.ADD_NODE)
    assert await save(store, Decision(ticket=consult, logs=(entry,)), 3)
    assert _users(await rows(db, ticket_user, ticket_id=t.id)) == {
        "alice": (False, True),
        "bob": (False, True),
        "carol": (False, True),
        "dave": (False, True),
        "frank": (True, False),
    }
    # the system closes it: nobody on duty, the system is nobody's colleague
    closed = dataclasses.replace(consult, act_state=ActState.CLOSED, in_add_node=False)
    entry = log(closed, SYSTEM_USER, state_id=3, intervene_type=InterveneType.CLOSE)
    assert await save(store, Decision(ticket=closed, logs=(entry,)), 4)
    users = _users(await rows(db, ticket_user, ticket_id=t.id))
    assert SYSTEM_USER not in users
    assert not any(current for current, _ in users.values())
    assert users["frank"] == (False, False)


async def test_children_and_last_log(store: SqlTicketStore) -> None:
    parent = await create(store)
    kids = [
        await create(
            store, new_ticket(parent_ticket_id=parent.id, parent_ticket_state_id=2, title=f"kid {i}")
        )
        for i in range(3)
    ]
    await create(store, new_ticket(parent_ticket_id=parent.id, parent_ticket_state_id=9))
    async with store.transaction() as tx:
        assert list(await tx.children(parent.id, 2)) == kids
        assert list(await tx.children(parent.id, 3)) == []
        assert await tx.last_log(999_999) is None
        last = await tx.last_log(kids[0].id)
    assert last is not None
    assert last.actor == "alice"
    assert last.intervene_type is InterveneType.TRANSITION


async def test_get_returns_deleted_tickets_and_none_for_unknown(store: SqlTicketStore) -> None:
    t = await create(store)
    deleted = dataclasses.replace(t, is_deleted=True, updated_at=T0 + timedelta(hours=1))
    entry = log(deleted, "alice", state_id=2, intervene_type=InterveneType.DELETE)
    assert await save(store, Decision(ticket=deleted, logs=(entry,)), 1)
    async with store.transaction() as tx:
        got = await tx.get(t.id)
        assert await tx.get(999_999) is None
    assert got is not None
    assert got.is_deleted
    assert got.version == 2


async def test_bad_input_is_refused_and_changes_nothing(store: SqlTicketStore, db: Database) -> None:
    t = await create(store)
    with pytest.raises(StoreError, match="id 0"):
        async with store.transaction() as tx:
            await tx.insert(create_decision(t), "loonflow")
    with pytest.raises(StoreError, match="prefix"):
        async with store.transaction() as tx:
            await tx.insert(create_decision(new_ticket()), "")
    stray = dataclasses.replace(log(t, "bob"), ticket_id=t.id + 100)
    with pytest.raises(StoreError, match="flow log"):
        async with store.transaction() as tx:
            await tx.update(Decision(ticket=t, logs=(stray,)), 1)
    naive = dataclasses.replace(
        new_ticket(), created_at=datetime(2024, 1, 1), updated_at=datetime(2024, 1, 1)
    )
    with pytest.raises(DatabaseError, match="naive datetime"):
        async with store.transaction() as tx:
            await tx.insert(create_decision(naive), "loonflow")
    assert len(await rows(db, ticket)) == 1
    async with store.transaction() as tx:
        assert await tx.get(t.id) == t


def test_sn_format() -> None:
    assert re.fullmatch(r"loonflow_\d{8}\d{4,}", format_sn("loonflow", "20240515", 12345))


async def test_a_request_key_is_recorded_with_its_ticket_and_refused_twice(
    store: SqlTicketStore, db: Database
) -> None:
    async with store.transaction() as tx:
        assert await tx.created_for("wecom:m1") is None
        first = await tx.insert(create_decision(new_ticket()), "loonflow", request_key="wecom:m1")
    async with store.transaction() as tx:
        assert await tx.created_for("wecom:m1") == first
        assert await tx.created_for("wecom:m2") is None
    with pytest.raises(RequestTaken, match="wecom:m1"):
        async with store.transaction() as tx:
            await tx.insert(create_decision(new_ticket()), "loonflow", request_key="wecom:m1")
    # the refused insert rolled back whole: one ticket, one request row, its SN not used up
    assert [r["id"] for r in await rows(db, ticket)] == [first.id]
    assert [(r["request_key"], r["ticket_id"]) for r in await rows(db, ticket_request)] == [
        ("wecom:m1", first.id)
    ]
    assert (await create(store)).sn == "loonflow_202405150002"


async def test_an_insert_without_a_request_key_records_none(store: SqlTicketStore, db: Database) -> None:
    await create(store)
    await create(store)
    assert await rows(db, ticket_request) == []
