"""Commands beside the normal flow: accept, deliver (转交), add-node (加签), retreat (撤回),
close and force state."""

from __future__ import annotations

from dataclasses import replace

from core import access
from core.commands import Accept, AddNode, AddNodeEnd, Close, Deliver, ForceState, Retreat
from core.decision import Context, Decision, Outcome
from core.errors import Reason, Rejected
from core.events import (
    NodeAdded,
    NodeAddEnded,
    StateEntered,
    StateForced,
    TicketAccepted,
    TicketClosed,
    TicketDelivered,
    TicketEnded,
    TicketRetreated,
)
from core.history import entry
from core.refusals import not_handler
from core.routing import enter_state
from core.ticket import ActState, InterveneType, Ticket
from core.workflow import Distribute, ParticipantType, State, StateType, Workflow


def accept(ticket: Ticket, state: State, cmd: Accept, ctx: Context) -> Outcome:
    if cmd.expected_state_id is not None and cmd.expected_state_id != ticket.state_id:
        return Rejected(Reason.STALE, f"ticket {ticket.sn} has moved on to '{state.name}'")
    if not access.needs_accept(ticket, state):
        if ticket.accepted_by:
            return Rejected(Reason.STALE, f"ticket {ticket.sn} was already accepted by {ticket.accepted_by}")
        return Rejected(Reason.INVALID, f"ticket {ticket.sn} needs no accept in '{state.name}'")
    if cmd.actor not in ticket.participants:
        return not_handler(ticket, state, cmd.actor)
    new = replace(
        ticket,
        participants=(cmd.actor,),
        participant_type=ParticipantType.PERSON,
        accepted_by=cmd.actor,
        updated_at=ctx.now,
    )
    log = entry(new, state.id, cmd.actor, InterveneType.ACCEPT, ctx, actor_type=ParticipantType.PERSON)
    return Decision(new, (log,), (TicketAccepted(cmd.actor), StateEntered(state.id, (cmd.actor,))))


def deliver(ticket: Ticket, wf: Workflow, state: State, cmd: Deliver, ctx: Context) -> Outcome:
    if not ctx.org.active(cmd.target):
        return Rejected(Reason.UNKNOWN_USER, f"no active user '{cmd.target}' to deliver to")
    if ticket.participant_type == ParticipantType.HOOK:
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} is handled by an automatic step (hook)")
    if cmd.from_admin:
        if not access.can_intervene(wf, ctx.org, cmd.actor):
            return Rejected(
                Reason.NO_PERMISSION,
                f"a forced deliver needs admin or intervene permission on workflow '{wf.name}'",
            )
    elif not access.can_handle(ticket, state, cmd.actor):
        refused = not_handler(ticket, state, cmd.actor)
        if refused.reason == Reason.NOT_PARTICIPANT and access.can_intervene(wf, ctx.org, cmd.actor):
            hint = "; as an admin or intervener you may force the hand-over (强制转交, from_admin)"
            return Rejected(refused.reason, refused.message + hint)
        return refused
    if ticket.handlers == (cmd.target,) and not ticket.in_add_node:
        return Rejected(Reason.INVALID, f"{cmd.target} already handles ticket {ticket.sn}")
    if state.distribute == Distribute.ALL and cmd.actor in ticket.participants and not cmd.from_admin:
        if cmd.target in ticket.participants:  # would leave one voter fewer, and maybe nobody to vote
            return Rejected(
                Reason.INVALID,
                f"{cmd.target} is already one of the people who must handle ticket {ticket.sn}",
            )
        people = tuple(cmd.target if p == cmd.actor else p for p in ticket.participants)
        new = replace(ticket, participants=people)
    else:  # one person takes it over; a forced deliver also ends a consultation (加签) under way
        new = replace(
            ticket,
            participants=(cmd.target,),
            participant_type=ParticipantType.PERSON,
            accepted_by="",
            votes={},
            in_add_node=False,
            add_node_man="",
            add_node_target="",
        )
    new = replace(new, relation=new.relation | {cmd.target, cmd.actor}, updated_at=ctx.now)
    log = entry(
        new, state.id, cmd.actor, InterveneType.DELIVER, ctx, suggestion=cmd.suggestion, extra=cmd.extra
    )
    events = (TicketDelivered(cmd.actor, cmd.target), StateEntered(state.id, (cmd.target,)))
    return Decision(new, (log,), events)


def add_node(ticket: Ticket, state: State, cmd: AddNode, ctx: Context) -> Outcome:
    if not access.can_handle(ticket, state, cmd.actor):
        return not_handler(ticket, state, cmd.actor)
    if not ctx.org.active(cmd.target):
        return Rejected(Reason.UNKNOWN_USER, f"no active user '{cmd.target}' to consult")
    if cmd.target == cmd.actor:
        return Rejected(Reason.INVALID, "you cannot consult yourself (加签)")
    new = replace(
        ticket,
        in_add_node=True,
        add_node_man=cmd.actor,
        add_node_target=cmd.target,
        relation=ticket.relation | {cmd.target},
        updated_at=ctx.now,
    )
    log = entry(new, state.id, cmd.actor, InterveneType.ADD_NODE, ctx, suggestion=cmd.suggestion)
    return Decision(new, (log,), (NodeAdded(cmd.actor, cmd.target), StateEntered(state.id, (cmd.target,))))


def add_node_end(ticket: Ticket, state: State, cmd: AddNodeEnd, ctx: Context) -> Outcome:
    if not ticket.in_add_node:
        return Rejected(Reason.INVALID, f"ticket {ticket.sn} is not out for consultation (加签)")
    if cmd.actor != ticket.add_node_target:
        return Rejected(
            Reason.NOT_PARTICIPANT,
            f"only {ticket.add_node_target} can finish the consultation on ticket {ticket.sn}",
        )
    new = replace(ticket, in_add_node=False, add_node_target="", add_node_man="", updated_at=ctx.now)
    log = entry(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.ADD_NODE_END,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.PERSON,
    )
    log = replace(log, fields=dict(new.fields))
    events = (NodeAddEnded(cmd.actor, ticket.add_node_man), StateEntered(state.id, new.handlers))
    return Decision(new, (log,), events)


def retreat(ticket: Ticket, wf: Workflow, state: State, cmd: Retreat, ctx: Context) -> Outcome:
    if cmd.actor != ticket.creator:
        return Rejected(
            Reason.NO_PERMISSION, f"only the creator ({ticket.creator}) can withdraw ticket {ticket.sn}"
        )
    if not access.can_retreat(ticket, state, cmd.actor):
        return Rejected(Reason.BAD_STATE, f"ticket {ticket.sn} cannot be withdrawn in state '{state.name}'")
    log = entry(
        ticket,
        state.id,
        cmd.actor,
        InterveneType.RETREAT,
        ctx,
        suggestion=cmd.suggestion,
        actor_type=ParticipantType.VARIABLE,
    )
    entered = enter_state(ticket, wf, wf.start_state(), ctx, act_state=ActState.WITHDRAWN)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    return Decision(new, (log,), (TicketRetreated(cmd.actor), *events))


def close(ticket: Ticket, wf: Workflow, state: State, cmd: Close, ctx: Context) -> Outcome:
    if not access.can_close(ticket, wf, ctx.org, state, cmd.actor):
        return Rejected(
            Reason.NO_PERMISSION,
            f"only an admin or intervener of '{wf.name}', or the creator while the ticket is at its start "
            "state, can close it",
        )
    end = next(s for s in wf.states if s.type == StateType.END)
    new = replace(
        ticket,
        state_id=end.id,
        act_state=ActState.CLOSED,
        participants=(),
        participant_type=ParticipantType.NONE,
        in_add_node=False,
        add_node_man="",
        add_node_target="",
        votes={},
        accepted_by="",
        state_entered_at=ctx.now,
        updated_at=ctx.now,
    )
    log = entry(
        ticket, state.id, cmd.actor, InterveneType.CLOSE, ctx, suggestion=cmd.suggestion, extra=cmd.extra
    )
    ended = TicketEnded(int(ActState.CLOSED), ticket.parent_ticket_id, ticket.parent_ticket_state_id)
    return Decision(new, (log,), (TicketClosed(cmd.actor), ended))


def force_state(ticket: Ticket, wf: Workflow, state: State, cmd: ForceState, ctx: Context) -> Outcome:
    if not access.can_intervene(wf, ctx.org, cmd.actor):
        return Rejected(
            Reason.NO_PERMISSION, f"changing the state needs admin or intervene permission on '{wf.name}'"
        )
    target = wf.state(cmd.state_id)
    if target is None:
        known = ", ".join(f"{s.id} ({s.name})" for s in wf.states)
        return Rejected(
            Reason.BAD_STATE, f"workflow '{wf.name}' has no state {cmd.state_id}; states: {known}"
        )
    log = entry(ticket, state.id, cmd.actor, InterveneType.ALTER_STATE, ctx, suggestion=cmd.suggestion)
    entered = enter_state(ticket, wf, target, ctx)
    if not isinstance(entered, tuple):
        return entered
    new, events = entered
    return Decision(new, (log,), (StateForced(cmd.actor, state.id, target.id), *events))
