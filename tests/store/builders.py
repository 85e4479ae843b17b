"""Hand-built tickets and decisions for the store contract tests (no decide() involved)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import select

from core.decision import Decision
from core.events import Event, StateEntered, TicketCreated, TicketTransitioned
from core.ticket import ActState, FlowLog, InterveneType, Ticket
from core.workflow import ParticipantType
from store.tickets import SqlTicketStore

T0 = datetime(2024, 5, 15, 7, 16, 38, 123456, tzinfo=UTC)


def new_ticket(
    *,
    creator: str = "alice",
    participants: Iterable[str] = ("bob",),
    title: str = "vpn申请",
    workflow_id: int = 1,
    state_id: int = 2,
    created_at: datetime = T0,
    relation: Iterable[str] | None = None,
    fields: dict[str, Any] | None = None,
    **kw: Any,
) -> Ticket:
    people = tuple(participants)
    return Ticket(
        id=0,
        sn="",
        title=title,
        workflow_id=workflow_id,
        workflow_version="1",
        state_id=state_id,
        act_state=ActState.ONGOING,
        creator=creator,
        participant_type=ParticipantType.PERSON if len(people) == 1 else ParticipantType.PEOPLE,
        participants=people,
        created_at=created_at,
        updated_at=created_at,
        fields=MappingProxyType(fields if fields is not None else {"reason": "remote work"}),
        relation=frozenset(relation if relation is not None else (creator, *people)),
        state_entered_at=created_at,
        **kw,
    )


def log(ticket: Ticket, actor: str, *, state_id: int = 1, at: datetime | None = None, **kw: Any) -> FlowLog:
    return FlowLog(
        ticket_id=0,
        state_id=state_id,
        actor=actor,
        actor_type=ParticipantType.PERSON,
        intervene_type=kw.pop("intervene_type", InterveneType.TRANSITION),
        created_at=at or ticket.updated_at,
        fields=ticket.fields,
        **kw,
    )


def create_decision(ticket: Ticket) -> Decision:
    return Decision(
        ticket=ticket,
        logs=(log(ticket, ticket.creator, transition_id=1, transition_name="提交", attribute=1),),
        events=(
            TicketCreated(actor=ticket.creator, workflow_id=ticket.workflow_id),
            StateEntered(state_id=ticket.state_id, participants=ticket.participants),
        ),
    )


def advance(
    ticket: Ticket,
    actor: str,
    *,
    to_state: int,
    participants: Iterable[str],
    minutes: int = 5,
    act_state: ActState = ActState.ONGOING,
    extra_events: tuple[Event, ...] = (),
    **changes: Any,
) -> Decision:
    """`actor` takes transition 7 from the ticket's state to `to_state`, handled by `participants`."""
    now = ticket.updated_at + timedelta(minutes=minutes)
    people = tuple(participants)
    after = dataclasses.replace(
        ticket,
        state_id=to_state,
        participants=people,
        act_state=act_state,
        updated_at=now,
        state_entered_at=now,
        relation=ticket.relation | set(people),
        last_handlers=MappingProxyType({**ticket.last_handlers, ticket.state_id: actor}),
        **changes,
    )
    return Decision(
        ticket=after,
        logs=(log(after, actor, state_id=ticket.state_id, at=now, transition_id=7, transition_name="同意"),),
        events=(
            TicketTransitioned(
                actor=actor, from_state_id=ticket.state_id, to_state_id=to_state, transition_id=7, attribute=1
            ),
            StateEntered(state_id=to_state, participants=people),
            *extra_events,
        ),
    )


async def create(store: SqlTicketStore, ticket: Ticket | None = None, prefix: str = "loonflow") -> Ticket:
    async with store.transaction() as tx:
        return await tx.insert(create_decision(ticket or new_ticket()), prefix)


async def save(store: SqlTicketStore, decision: Decision, expected_version: int) -> bool:
    async with store.transaction() as tx:
        return await tx.update(decision, expected_version)


async def rows(db: Any, table: Any, **where: Any) -> list[dict[str, Any]]:
    """All rows of `table` matching column == value, ordered by the primary key."""
    stmt = (
        select(table).where(*(table.c[k] == v for k, v in where.items())).order_by(*table.primary_key.columns)
    )
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(stmt)).mappings()]
