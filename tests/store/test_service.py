"""The engine's service over the real store, on SQLite and PostgreSQL: races, SNs, sub-tickets."""

from __future__ import annotations

import asyncio

import pytest

from core import commands as c
from core.catalog import Catalog
from core.service import AlreadyHandled, Done, TicketService
from core.ticket import ActState
from core.workflow import Participant, ParticipantType
from store.db import Database
from store.directory import SqlDirectory, replace_org
from store.errors import StoreError
from store.queries import flow_logs
from store.tables import ticket, ticket_request, work_order
from store.tickets import SqlTicketStore, SqlTicketTx
from tests.core.builders import APPROVE, END, OPS, ORG, SUBMIT, TL, workflow
from tests.fakes import FakeClock
from tests.store.builders import rows


@pytest.fixture
async def service(db: Database) -> TicketService:
    await replace_org(db, ORG, "config")
    wf = workflow()
    return TicketService(SqlTicketStore(db), Catalog([wf]), SqlDirectory(db), FakeClock())


async def new_ticket(service: TicketService, days: int = 2) -> int:
    done = await service.create(c.Create("alice", 1, SUBMIT, {"days": days}))
    assert isinstance(done, Done), done
    return done.ticket.id


async def test_create_assigns_id_and_sn_and_logs(service: TicketService, db: Database) -> None:
    first, second = await new_ticket(service), await new_ticket(service)
    async with SqlTicketStore(db).transaction() as tx:
        a, b = await tx.get(first), await tx.get(second)
    assert a is not None and b is not None
    assert (a.sn, b.sn) == ("loonflow_202601050001", "loonflow_202601050002")
    assert (a.state_id, a.participants, a.version) == (TL, ("bob",), 1)
    assert len(await flow_logs(db, first)) == 1


async def test_fifty_pairs_of_identical_approvals_give_exactly_one_transition(
    service: TicketService, db: Database
) -> None:
    ids = [await new_ticket(service) for _ in range(50)]
    results = await asyncio.gather(
        *(service.execute(i, c.Handle("bob", APPROVE, expected_state_id=TL)) for i in ids for _ in range(2))
    )
    for k, ticket_id in enumerate(ids):
        pair = results[2 * k : 2 * k + 2]
        assert sorted(type(r).__name__ for r in pair) == ["AlreadyHandled", "Done"], pair
        late = next(r for r in pair if isinstance(r, AlreadyHandled))
        assert late.by == "bob"
        assert "already handled (同意) by you" in late.message
        logs = await flow_logs(db, ticket_id, desc=False)
        assert [log.transition_id for log in logs] == [SUBMIT, APPROVE]
        async with SqlTicketStore(db).transaction() as tx:
            t = await tx.get(ticket_id)
        assert t is not None and (t.state_id, t.version) == (OPS, 2)


async def test_a_different_handler_learns_who_was_first(db: Database) -> None:
    await replace_org(db, ORG, "config")
    wf = workflow(tl=Participant(ParticipantType.PEOPLE, "bob,carol"))
    service = TicketService(SqlTicketStore(db), Catalog([wf]), SqlDirectory(db), FakeClock())
    ticket_id = await new_ticket(service)
    assert isinstance(await service.execute(ticket_id, c.Handle("carol", APPROVE)), Done)
    late = await service.execute(ticket_id, c.Handle("bob", APPROVE))
    assert isinstance(late, AlreadyHandled)
    assert late.message.startswith(
        "ticket loonflow_202601050001 was already handled (同意) by carol at 2026-01-05"
    )


async def test_unknown_ticket_and_refusals_change_nothing(service: TicketService, db: Database) -> None:
    missing = await service.execute(999_999, c.Handle("bob", APPROVE))
    assert not missing and "ticket 999999 does not exist" in missing.message  # type: ignore[union-attr]
    ticket_id = await new_ticket(service)
    refused = await service.execute(ticket_id, c.Handle("stranger", APPROVE))
    assert not isinstance(refused, Done | AlreadyHandled)
    assert len(await flow_logs(db, ticket_id)) == 1


async def test_sub_tickets_advance_the_parent_when_the_last_one_ends(
    service: TicketService, db: Database
) -> None:
    parent = await new_ticket(service)
    assert isinstance(await service.execute(parent, c.Handle("bob", APPROVE)), Done)
    assert isinstance(await service.execute(parent, c.Accept("erin")), Done)
    kids = []
    for _ in range(2):
        done = await service.create(
            c.Create("alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=parent, parent_ticket_state_id=OPS)
        )
        assert isinstance(done, Done)
        kids.append(done.ticket.id)
    assert isinstance(await service.execute(kids[0], c.Close("admin")), Done)
    async with SqlTicketStore(db).transaction() as tx:
        still = await tx.get(parent)
    assert still is not None and still.state_id == OPS
    assert isinstance(await service.execute(kids[1], c.Close("admin")), Done)
    async with SqlTicketStore(db).transaction() as tx:
        moved = await tx.get(parent)
    assert moved is not None and (moved.state_id, moved.act_state) == (END, ActState.FINISHED)
    last = (await flow_logs(db, parent))[0]
    assert last.actor == "system" and "sub-tickets" in last.suggestion


async def test_child_of_a_parent_in_another_state_is_refused(service: TicketService) -> None:
    parent = await new_ticket(service)
    refused = await service.create(
        c.Create("alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=parent, parent_ticket_state_id=OPS)
    )
    assert not refused and "is not in state" in refused.message  # type: ignore[union-attr]


async def test_a_transition_of_a_state_never_visited_is_not_a_late_click(service: TicketService) -> None:
    from tests.core.builders import DONE

    ticket_id = await new_ticket(service)
    refused = await service.execute(ticket_id, c.Handle("bob", DONE))
    assert not isinstance(refused, AlreadyHandled | Done)
    assert "not available" in refused.message


async def test_the_creator_clicking_a_button_meant_for_the_leader_is_refused_not_already_handled(
    service: TicketService,
) -> None:
    ticket_id = await new_ticket(service)
    refused = await service.execute(ticket_id, c.Handle("alice", APPROVE))
    assert not isinstance(refused, AlreadyHandled | Done)
    assert "not a current handler" in refused.message


async def test_last_two_sub_tickets_ending_at_once_advance_the_parent(
    service: TicketService, db: Database
) -> None:
    parents = []
    for _ in range(10):
        parent = await new_ticket(service)
        assert isinstance(await service.execute(parent, c.Handle("bob", APPROVE)), Done)
        assert isinstance(await service.execute(parent, c.Accept("erin")), Done)
        kids = []
        for _ in range(2):
            done = await service.create(
                c.Create("alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=parent, parent_ticket_state_id=OPS)
            )
            assert isinstance(done, Done)
            kids.append(done.ticket.id)
        parents.append((parent, kids))
    await asyncio.gather(*(service.execute(k, c.Close("admin")) for _, kids in parents for k in kids))
    async with SqlTicketStore(db).transaction() as tx:
        states = [(await tx.get(p)).state_id for p, _ in parents]  # type: ignore[union-attr]
    assert states == [END] * len(parents)


async def test_deleting_the_last_open_sub_ticket_advances_the_parent(
    service: TicketService, db: Database
) -> None:
    parent = await new_ticket(service)
    await service.execute(parent, c.Handle("bob", APPROVE))
    await service.execute(parent, c.Accept("erin"))
    done = await service.create(
        c.Create("alice", 1, SUBMIT, {"days": 1}, parent_ticket_id=parent, parent_ticket_state_id=OPS)
    )
    assert isinstance(done, Done)
    assert isinstance(await service.execute(done.ticket.id, c.Delete("admin")), Done)
    async with SqlTicketStore(db).transaction() as tx:
        moved = await tx.get(parent)
    assert moved is not None and moved.state_id == END


async def test_a_create_repeated_with_its_request_key_returns_the_first_ticket(
    service: TicketService, db: Database
) -> None:
    cmd = c.Create("alice", 1, SUBMIT, {"days": 2}, request_key="wecom:msg-1")
    first = await service.create(cmd)
    assert isinstance(first, Done) and first.decision.events
    again = await service.create(cmd)
    assert isinstance(again, Done)
    assert again.ticket == first.ticket
    assert again.decision.events == () and again.decision.logs == ()  # nothing published twice
    other = await service.create(c.Create("alice", 1, SUBMIT, {"days": 2}, request_key="wecom:msg-2"))
    assert isinstance(other, Done) and other.ticket.id != first.ticket.id
    assert len(await flow_logs(db, first.ticket.id)) == 1


async def test_racing_creates_with_one_request_key_make_one_ticket(
    service: TicketService, db: Database
) -> None:
    cmd = c.Create("alice", 1, SUBMIT, {"days": 2}, request_key="dingtalk:msg-9")
    results = await asyncio.gather(*(service.create(cmd) for _ in range(8)))
    assert all(isinstance(r, Done) for r in results), results
    assert len({r.ticket.id for r in results if isinstance(r, Done)}) == 1
    assert [r["sn"] for r in await rows(db, ticket)] == ["loonflow_202601050001"]


async def test_a_comment_repeated_with_its_request_key_is_logged_once(
    service: TicketService, db: Database
) -> None:
    ticket_id = await new_ticket(service)
    first = await service.execute(ticket_id, c.Comment("alice", "补充材料"), request_key="wecom:msg-5")
    again = await service.execute(ticket_id, c.Comment("alice", "补充材料"), request_key="wecom:msg-5")
    assert isinstance(first, Done) and isinstance(again, Done)
    assert again.ticket.version == first.ticket.version == 2 and again.decision.events == ()
    assert [log.suggestion for log in await flow_logs(db, ticket_id, desc=False)][1:] == ["补充材料"]
    racing = await asyncio.gather(
        *(
            service.execute(ticket_id, c.Comment("alice", "再补充"), request_key="wecom:msg-6")
            for _ in range(6)
        )
    )
    assert all(isinstance(r, Done) for r in racing)
    assert [log.suggestion for log in await flow_logs(db, ticket_id, desc=False)][1:] == [
        "补充材料",
        "再补充",
    ]
    assert [(r["request_key"], r["command"]) for r in await rows(db, ticket_request)] == [
        ("wecom:msg-5", "Comment"),
        ("wecom:msg-6", "Comment"),
    ]


async def test_a_work_orders_relation_is_kept_with_its_ticket(service: TicketService, db: Database) -> None:
    cmd = c.Create("alice", 1, SUBMIT, {"days": 2}, request_key="api:demo:alice:req-1", relation=(1, "wm-1"))
    results = await asyncio.gather(*(service.create(cmd) for _ in range(4)))  # a retried, raced request
    ids = {r.ticket.id for r in results if isinstance(r, Done)}
    assert len(ids) == 1
    assert [(r["ticket_id"], r["relation_type"], r["relation_id"]) for r in await rows(db, work_order)] == [
        (ids.pop(), 1, "wm-1")
    ]
    plain = await new_ticket(service)
    assert plain not in {r["ticket_id"] for r in await rows(db, work_order)}


async def test_a_create_that_fails_after_the_insert_keeps_neither_ticket_nor_relation(
    service: TicketService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(SqlTicketTx, "_append", broken)
    with pytest.raises(RuntimeError):
        await service.create(c.Create("alice", 1, SUBMIT, {"days": 2}, relation=(1, "wm-2")))
    assert await rows(db, ticket) == [] and await rows(db, work_order) == []


@pytest.mark.parametrize("relation", [(-1, "wm-3"), (1, ""), (1, "x" * 129)])
async def test_a_bad_relation_is_refused_by_the_store(
    service: TicketService, db: Database, relation: tuple[int, str]
) -> None:
    with pytest.raises(StoreError, match="relation"):
        await service.create(c.Create("alice", 1, SUBMIT, {"days": 2}, relation=relation))
    assert await rows(db, ticket) == []
