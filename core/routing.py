"""Moving a ticket: choose the destination of a transition and enter a state (participants,
progress, timers, hooks, CC). Shared by every command that changes the state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from core.conditions import evaluate
from core.decision import Context, Decision, NeedsLookup, Outcome
from core.errors import Reason, Rejected
from core.events import (
    CcNotified,
    Event,
    HookRequested,
    SlaArmed,
    StateEntered,
    TicketEnded,
    TicketTransitioned,
    TimerArmed,
)
from core.participants import distribute, fallback, must_accept, resolve, start_participant
from core.ticket import ActState, FlowLog, Ticket
from core.workflow import (
    Attribute,
    Participant,
    ParticipantType,
    Sla,
    State,
    StateType,
    Transition,
    Workflow,
)

MAX_REMINDS = 10  # reminders per stay in a state (the first and its repeats)


def condition_values(ticket: Ticket, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {**fields, "title": ticket.title, "creator": ticket.creator}


def destination(wf: Workflow, transition: Transition, ticket: Ticket) -> State | Rejected:
    """The first condition that holds picks the target; otherwise the transition's destination."""
    target = transition.destination_state_id
    values = condition_values(ticket, ticket.fields)
    for cond in transition.conditions:
        if evaluate(cond.expression, values):
            target = cond.target_state_id
            break
    state = wf.state(target)
    if state is None:  # the loader makes this impossible; keep the engine total anyway
        return Rejected(Reason.BAD_STATE, f"transition '{transition.name}' leads to unknown state {target}")
    return state


def _resolve_many(
    parts: tuple[Participant, ...], ticket: Ticket, state_id: int, ctx: Context
) -> tuple[str, ...] | NeedsLookup:
    people: list[str] = []
    for p in parts:
        r = resolve(p, state_id=state_id, creator=ticket.creator, fields=ticket.fields, ctx=ctx)
        if isinstance(r, NeedsLookup):
            return r
        people.extend(r.people)
    return tuple(dict.fromkeys(people))


def sla_armed(sla: Sla, state_id: int, ctx: Context) -> SlaArmed:
    """When each step of `sla` is due for a ticket entering `state_id` now."""

    def due(after: timedelta) -> datetime:
        return ctx.calendar.add(ctx.now, after) if sla.business_hours else ctx.now + after

    reminds: list[datetime] = []
    if sla.remind_after is not None:
        after = sla.remind_after
        while len(reminds) < MAX_REMINDS and (sla.urge_after is None or after < sla.urge_after):
            reminds.append(due(after))
            if sla.remind_every is None or sla.remind_every <= timedelta(0):
                break
            after += sla.remind_every
    return SlaArmed(
        state_id,
        ctx.now,
        tuple(reminds),
        due(sla.urge_after) if sla.urge_after is not None else None,
        due(sla.escalate_after) if sla.escalate_after is not None else None,
    )


def enter_state(
    ticket: Ticket,
    wf: Workflow,
    state: State,
    ctx: Context,
    *,
    act_state: ActState | None = None,
    via: Transition | None = None,
) -> tuple[Ticket, tuple[Event, ...]] | NeedsLookup | Rejected:
    """The ticket as it is once it waits in `state`, and the events that announce it."""
    events: list[Event] = []
    participant = start_participant(state)
    ptype = participant.type
    people: tuple[str, ...] = ()
    if state.type != StateType.END:
        remembered = ticket.last_handlers.get(state.id, "")
        if state.remember_last_man and remembered and ctx.org.active(remembered):
            ptype, people = ParticipantType.PERSON, (remembered,)
        else:
            r = resolve(participant, state_id=state.id, creator=ticket.creator, fields=ticket.fields, ctx=ctx)
            if isinstance(r, NeedsLookup):
                return r
            people = distribute(state, r.people, ctx.seed)
        if not people and ptype != ParticipantType.HOOK:
            people = fallback(wf, ctx)
            if not people:
                return Rejected(
                    Reason.NO_PARTICIPANT,
                    f"state '{state.name}' resolves to nobody and the workflow has no admin to fall back on",
                )
            ptype = ParticipantType.PEOPLE if len(people) > 1 else ParticipantType.PERSON
    if act_state is None:
        if state.type == StateType.END:
            act_state = ActState.FINISHED
        elif state.type == StateType.START:
            act_state = ActState.DRAFT
        else:
            act_state = ActState.ONGOING
    cc = _resolve_many(state.cc + (via.cc if via else ()), ticket, state.id, ctx)
    if isinstance(cc, NeedsLookup):
        return cc
    new = replace(
        ticket,
        state_id=state.id,
        act_state=act_state,
        participant_type=ptype,
        participants=people,
        accepted_by="",
        in_add_node=False,
        add_node_man="",
        add_node_target="",
        votes={},
        relation=ticket.relation | frozenset(people) | frozenset(cc),
        cc=ticket.cc | frozenset(cc),
        script_run_last_result=True,
        state_entered_at=ctx.now,
        updated_at=ctx.now,
    )
    if state.type == StateType.END:
        events.append(TicketEnded(int(act_state), ticket.parent_ticket_id, ticket.parent_ticket_state_id))
    else:
        events.append(StateEntered(state.id, people, must_accept(state, people, "")))
        for t in wf.transitions_from(state.id):
            if t.timer_seconds > 0:
                events.append(
                    TimerArmed(t.id, state.id, ctx.now + timedelta(seconds=t.timer_seconds), ctx.now)
                )
        if state.sla is not None:
            events.append(sla_armed(state.sla, state.id, ctx))
        if ptype == ParticipantType.HOOK and participant.hook is not None:
            events.append(HookRequested(state.id, participant.hook))
    if cc:
        events.append(CcNotified(cc, state.id))
    return new, tuple(events)


def move(
    ticket: Ticket,
    wf: Workflow,
    transition: Transition,
    ctx: Context,
    actor: str,
    logs: tuple[FlowLog, ...],
    lead: tuple[Event, ...] = (),
) -> Outcome:
    """Take `transition` from the ticket's state: choose the destination and enter it."""
    dest = destination(wf, transition, ticket)
    if isinstance(dest, Rejected):
        return dest
    act_state = None
    if dest.type == StateType.START:
        act_state = ActState.REJECTED if transition.attribute == Attribute.REJECT else ActState.DRAFT
    entered = enter_state(ticket, wf, dest, ctx, act_state=act_state, via=transition)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    moved = TicketTransitioned(actor, ticket.state_id, dest.id, transition.id, int(transition.attribute))
    return Decision(new, logs, (*lead, moved, *events))
